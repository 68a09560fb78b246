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
    deadline = time.monotonic() + 240
    try:
        # Kill once trial R-A has finished and R-B has reported at least one epoch.
        while time.monotonic() < deadline:
            a = [epochs_of(d) for d in stage_dir.glob("R-A_*")]
            b = [epochs_of(d) for d in stage_dir.glob("R-B_*")]
            if a and a[0] == [1, 2, 3, 4, 5, 6] and b and b[0]:
                break
            if proc.poll() is not None:
                pytest.fail(
                    "study ended before it could be killed:\n"
                    + (tmp_path / "first.log").read_text()[-3000:]
                )
            time.sleep(0.2)
        else:
            pytest.fail(
                "study did not reach the kill point:\n"
                + (tmp_path / "first.log").read_text()[-3000:]
            )
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
