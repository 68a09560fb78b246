"""Resume for real: a study killed mid-stage (SIGKILL of the driver) and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trainables.data import write_tiny_imagenet

REPO = Path(__file__).resolve().parents[1]

STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="resume", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 6, "batch_size": 16,
          "model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"},
    stages=[
        Stage("first", label="R", scheduler="fifo",
              space={"lr": tune.grid_search([0.01, 0.003, 0.001])}),
        Stage("second", label="S", scheduler="fifo",
              space={"activation": tune.grid_search(["relu", "elu"])}),
    ])
"""


def start(study: Path, data: Path, runs: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "ARCHSWEEP_CACHE": str(data.parent / "cache"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.run",
            str(study),
            "--data-root",
            str(data),
            "--storage",
            str(runs),
            "--max-concurrent",
            "1",
        ],
        cwd=REPO,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes Ray's workers too
    )


def epochs_of(trial_dir: Path) -> list[int]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines() if line.strip()]


def test_killed_study_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
    )
    study = tmp_path / "resume.py"
    study.write_text(textwrap.dedent(STUDY))
    runs = tmp_path / "runs"
    stage_dir = runs / "resume" / "first"

    proc = start(study, data, runs, tmp_path / "first.log")
    try:
        # Kill once trial R-A has finished and R-B has reported at least one epoch.
        wait_until_mid_stage(proc, stage_dir, tmp_path / "first.log")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    interrupted = json.loads((runs / "resume" / "study.json").read_text())
    assert interrupted["status"] == "running"

    second = start(study, data, runs, tmp_path / "second.log")
    assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    record = json.loads((runs / "resume" / "study.json").read_text())
    assert record["status"] == "finished"
    first, later = record["stages"]
    assert [t["label"] for t in first["trials"]] == ["R-A", "R-B", "R-C"]
    assert all(t["status"] == "completed" for t in first["trials"] + later["trials"])
    assert len(later["trials"]) == 2
    # R-A finished before the kill: one folder, six epochs, each reported exactly once.
    (a_dir,) = stage_dir.glob("R-A_*")
    assert epochs_of(a_dir) == [1, 2, 3, 4, 5, 6]
    # R-B was interrupted: it went on from its checkpoint, not from scratch in a new folder.
    (b_dir,) = stage_dir.glob("R-B_*")
    assert epochs_of(b_dir)[-1] == 6
    log = (tmp_path / "second.log").read_text()
    assert "resuming the interrupted stage" in log
    assert "[first] 3/3 finished" in log  # the progress view counts the resumed trials


def wait_until_mid_stage(proc: subprocess.Popen, stage_dir: Path, log: Path) -> None:
    """Until trial R-A has finished and R-B has reported an epoch (the study mid-stage)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        a = [epochs_of(d) for d in stage_dir.glob("R-A_*")]
        b = [epochs_of(d) for d in stage_dir.glob("R-B_*")]
        if a and a[0] == [1, 2, 3, 4, 5, 6] and b and b[0]:
            return
        if proc.poll() is not None:
            pytest.fail("study ended before the interrupt:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    pytest.fail("study did not reach the interrupt point:\n" + log.read_text()[-3000:])


@pytest.mark.parametrize(
    ("how", "sig"),
    [("ctrl-c", signal.SIGINT), ("kill", signal.SIGTERM)],
)
def test_interrupted_study_exits_130_and_resumes_each_epoch_once(
    tmp_path: Path, how: str, sig: signal.Signals
) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) and `kill` (SIGTERM to the driver)
    leave the stage unfinished; the same command then trains exactly the missing epochs."""
    data = tmp_path / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
    )
    study = tmp_path / "resume.py"
    study.write_text(textwrap.dedent(STUDY))
    runs = tmp_path / "runs"
    stage_dir = runs / "resume" / "first"
    log = tmp_path / "first.log"
    proc = start(study, data, runs, log)
    try:
        wait_until_mid_stage(proc, stage_dir, log)
        if how == "ctrl-c":
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 130, log.read_text()[-3000:]
    assert "interrupted: run the same command again to resume" in log.read_text()
    interrupted = json.loads((runs / "resume" / "study.json").read_text())
    assert interrupted["status"] == "running"
    assert interrupted["stages"][0]["status"] == "running"  # not recorded as finished

    second = start(study, data, runs, tmp_path / "second.log")
    assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    record = json.loads((runs / "resume" / "study.json").read_text())
    first, later = record["stages"]
    # What an uninterrupted run records, trial for trial.
    assert [(t["label"], t["status"], t["epochs_run"]) for t in first["trials"]] == [
        ("R-A", "completed", 6),
        ("R-B", "completed", 6),
        ("R-C", "completed", 6),
    ]
    assert [(t["label"], t["status"]) for t in later["trials"]] == [
        ("S-A", "completed"),
        ("S-B", "completed"),
    ]
    for label in ("R-A", "R-B", "R-C"):
        (folder,) = stage_dir.glob(f"{label}_*")
        assert epochs_of(folder) == [1, 2, 3, 4, 5, 6], f"{label}: an epoch twice or lost"
