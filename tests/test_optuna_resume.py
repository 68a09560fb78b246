"""Optuna keeps its history across a resume: an 8-trial TPE stage killed (SIGKILL) after 4 trials
finished and run again must end with ONE Optuna study that holds all 8 trials (not the 4 new ones
on top of a forgotten past, ray-project/ray#30861)."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import textwrap
import time
from pathlib import Path

import pytest
from test_resume import start  # the same driver process as the SIGKILL resume test

from trainables.data import write_tiny_imagenet

SAMPLES, KILL_AFTER, EPOCHS = 8, 4, 2

STUDY = f"""
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="tpe", trainable="classification",
    base={{"dataset": "tiny_imagenet", "classes": 3, "epochs": {EPOCHS}, "batch_size": 16,
          "max_batches": 2, "model": "resnet", "channels": (8, 16), "blocks": (1, 1),
          "stem": "cifar"}},
    stages=[Stage("tpe", label="T", scheduler="fifo", search="optuna", num_samples={SAMPLES},
                  space={{"lr": tune.loguniform(1e-4, 1e-1)}})])
"""


def finished_trials(stage_dir: Path) -> int:
    """Trial folders whose result.json reached the last epoch."""
    done = 0
    for path in stage_dir.glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        done += any(r.get("epoch") == EPOCHS for r in rows)
    return done


def optuna_study(stage_dir: Path):
    """The Optuna study the stage ended with.

    Read from archsweep's SQLite store when the stage has one (orchestrator.optuna_store), else
    from the searcher Ray pickled with the experiment (OptunaSearch keeps it in memory).
    """
    import optuna

    db = stage_dir / "optuna.db"
    if db.is_file():
        (summary,) = optuna.study.get_all_study_summaries(f"sqlite:///{db}")
        return optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{db}")
    (state,) = sorted(stage_dir.glob("searcher-state-*.pkl"))[-1:]
    with open(state, "rb") as f:
        return pickle.load(f)["_ot_study"]


@pytest.mark.slow
def test_killed_optuna_stage_resumes_with_its_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
    )
    study = tmp_path / "tpe.py"
    study.write_text(textwrap.dedent(STUDY))
    runs = tmp_path / "runs"
    stage_dir = runs / "tpe" / "tpe"

    proc = start(study, data, runs, tmp_path / "first.log")
    deadline = time.monotonic() + 300
    try:
        while finished_trials(stage_dir) < KILL_AFTER:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "study did not reach the kill point:\n"
                    + (tmp_path / "first.log").read_text()[-3000:]
                )
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert finished_trials(stage_dir) < SAMPLES, "the stage finished before the kill"

    second = start(study, data, runs, tmp_path / "second.log")
    assert second.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert "resuming the interrupted stage" in (tmp_path / "second.log").read_text()
    record = json.loads((runs / "tpe" / "study.json").read_text())
    trials = record["stages"][0]["trials"]
    assert len(trials) == SAMPLES
    assert all(t["status"] == "completed" for t in trials), [t["reason"] for t in trials]

    import optuna

    ot_study = optuna_study(stage_dir)
    done = ot_study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    # One history of all 8 trials, each told its result: the sampler saw them all.
    assert len(ot_study.trials) == SAMPLES, [t.params for t in ot_study.trials]
    assert len(done) == SAMPLES
    ray_lrs = sorted(t["config"]["lr"] for t in trials)
    assert sorted(t.params["lr"] for t in done) == pytest.approx(ray_lrs)
    # Optuna's values are the trials' final results (the last reported val_acc).
    by_lr = {round(t["config"]["lr"], 12): t["final"]["val_acc"] for t in trials}
    for t in done:
        assert t.value == pytest.approx(by_lr[round(t.params["lr"], 12)])
