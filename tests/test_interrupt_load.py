"""Ctrl-C and SIGTERM at every moment of a run, on a loaded CPU: exit 130, then an exact resume.

The signal goes to the run's whole process group (what a terminal's Ctrl-C and `kill -- -PGID`
do), so the driver, Ray's processes and the trials all get it at once, while a busy process
competes for the CPU: the races issue 21 found (trials ended TERMINATED by the stop, a stage
marked finished) are then likely. One study is interrupted at start-up (Ray starting), at a
trial's start, mid-trial, between stages and during the last stage's evaluation, and resumed
each time; in the end every trial trained every epoch exactly once and every stage finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from trainables.data import write_tiny_imagenet

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3
# Tune's save, stopping the trials, Ray's shutdown: 5-33 s measured on the 2-core machine
# loaded by this test's busy process and two other engineers' work.
STOP_WITHIN_S = 60
# A SIGTERM while Ray starts is held until ray.init returns (orchestrator/ray_setup.py:
# sigterm_held_from_ray); on this loaded 2-core machine Ray's start took up to ~60 s.
RAY_START_S = 90
EPOCH_AFTER_STOP_S = 15  # an epoch in flight may still report until its actor is stopped
INTERRUPTED = "interrupted: run the same command again to resume"

STUDY = f"""
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="stops", trainable="classification",
    base={{"dataset": "tiny_imagenet", "classes": 3, "epochs": {EPOCHS}, "batch_size": 16,
          "model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"}},
    stages=[
        Stage("first", label="R", scheduler="fifo",
              space={{"lr": tune.grid_search([0.01, 0.003, 0.001])}}),
        Stage("second", label="S", scheduler="fifo", evaluate=True,
              space={{"activation": tune.grid_search(["elu", "gelu"])}}),
    ])
"""
LABELS = {"first": ["R-A", "R-B", "R-C"], "second": ["S-A", "S-B"]}


class Run:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        write_tiny_imagenet(
            self.data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
        )
        self.study = tmp / "stops.py"
        self.study.write_text(textwrap.dedent(STUDY))
        self.runs = tmp / "runs"
        self.run_dir = self.runs / "stops"
        self.count = 0

    def start(self) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        log = self.tmp / f"run{self.count}.log"
        env = {**os.environ, "ARCHSWEEP_CACHE": str(self.tmp / "cache"), "PYTHONUNBUFFERED": "1"}
        argv = [
            sys.executable,
            "-m",
            "orchestrator.run",
            str(self.study),
            "--data-root",
            str(self.data),
            "--storage",
            str(self.runs),
            "--max-concurrent",
            "2",
        ]
        with open(log, "w") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return proc, log

    def record(self) -> dict:
        path = self.run_dir / "study.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except json.JSONDecodeError:  # never torn (atomic), but be safe while polling
            return {}

    def epochs(self, stage: str, label: str) -> list[list[int]]:
        return [epochs_of(d) for d in (self.run_dir / stage).glob(f"{label}_*")]


def epochs_of(trial_dir: Path) -> list[int]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines if line.strip().endswith("}")]


def result_times(run: Run) -> list[float]:
    """When each epoch of every trial was reported (Ray's per-row Unix timestamp)."""
    times = []
    for path in run.run_dir.glob("*/*_*/result.json"):
        for line in path.read_text().splitlines():
            if line.strip().endswith("}"):
                times.append(float(json.loads(line)["timestamp"]))
    return times


def stage_status(record: dict, index: int) -> str | None:
    stages = record.get("stages") or []
    return stages[index]["status"] if len(stages) > index else None


# When to send the signal: a predicate over the run, polled every 20 ms.
def at_trial_start(run: Run, log: Path) -> bool:
    return any((run.run_dir / "first").glob("R-*_*"))


def mid_trial(run: Run, log: Path) -> bool:
    trained = [e for label in LABELS["first"] for e in run.epochs("first", label)]
    return any(e and len(e) < EPOCHS for e in trained)


def between_stages(run: Run, log: Path) -> bool:
    return stage_status(run.record(), 0) == "finished"


def at_evaluation(run: Run, log: Path) -> bool:
    """The last stage's trials are recorded, the stage is not finished: its best trial's test
    evaluation (a Ray task) and the stage's timeline are under way."""
    stages = run.record().get("stages") or []
    trials = stages[1]["trials"] if len(stages) > 1 else []
    return stages[1]["status"] == "running" and len(trials) == len(LABELS["second"])


def after_ray_start_began(run: Run, log: Path) -> bool:
    """Half a second after the data line: ray.init is starting Ray's processes."""
    if "data:" not in log.read_text():
        return False
    time.sleep(0.5)
    return True


MOMENTS: list[tuple[str, Callable[[Run, Path], bool], signal.Signals]] = [
    ("Ray start-up", after_ray_start_began, signal.SIGTERM),
    ("trial start", at_trial_start, signal.SIGINT),
    ("mid-trial", mid_trial, signal.SIGTERM),
    ("between stages", between_stages, signal.SIGINT),
    ("evaluation", at_evaluation, signal.SIGTERM),
]


def interrupt(run: Run, moment: str, when: Callable[[Run, Path], bool], sig: int) -> bool:
    """Start the command, signal its process group when `when` holds; False if it finished
    before the moment came (a resume can pass a moment by)."""
    proc, log = run.start()
    try:
        deadline = time.monotonic() + 300
        while not when(run, log):
            if proc.poll() is not None:
                assert proc.returncode == 0, f"{moment}: ended early\n{log.read_text()[-3000:]}"
                return False
            assert time.monotonic() < deadline, f"{moment} never came\n{log.read_text()[-3000:]}"
            time.sleep(0.02)
        os.killpg(proc.pid, sig)
        signalled = time.time()
        code = proc.wait(timeout=120)
        took = time.time() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    if code == 0 and stage_status(run.record(), 1) == "finished":
        return False  # the signal came after the study's last save: nothing was lost
    assert code == 130, f"{moment} ({signal.Signals(sig).name}): exit {code}\n{text[-3000:]}"
    assert INTERRUPTED in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    # Promptly: no later stage trains on, no trial reports an epoch well after the stop.
    print(f"stop at {moment} ({signal.Signals(sig).name}): exit {code} after {took:.1f} s")
    limit = STOP_WITHIN_S + (RAY_START_S if moment == "Ray start-up" else 0)
    assert took < limit, f"{moment}: {took:.0f} s from the signal to the exit"
    late = [t for t in result_times(run) if t > signalled + EPOCH_AFTER_STOP_S]
    assert not late, f"{moment}: epochs reported {[round(t - signalled) for t in late]} s after"
    record = run.record()
    assert record.get("status") != "finished", moment
    for index, stage in enumerate(("first", "second")):
        if stage_status(record, index) == "finished":  # only ever with every trial completed
            trials = record["stages"][index]["trials"]
            assert [(t["label"], t["status"]) for t in trials] == [
                (label, "completed") for label in LABELS[stage]
            ], f"{moment}: {stage} marked finished with {trials}"
    return True


@pytest.mark.slow
def test_process_group_stop_at_every_moment_under_load(tmp_path: Path) -> None:
    run = Run(tmp_path)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        for moment, when, sig in MOMENTS:
            interrupt(run, moment, when, sig)
        proc, log = run.start()
        assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
    finally:
        busy.kill()
        busy.wait()
    record = run.record()
    assert record["status"] == "finished"
    for index, stage in enumerate(("first", "second")):
        srec = record["stages"][index]
        assert srec["status"] == "finished"
        assert [(t["label"], t["status"], t["epochs_run"]) for t in srec["trials"]] == [
            (label, "completed", EPOCHS) for label in LABELS[stage]
        ]
        for label in LABELS[stage]:
            (folder,) = (run.run_dir / stage).glob(f"{label}_*")
            assert epochs_of(folder) == list(range(1, EPOCHS + 1)), f"{label}: lost or repeated"
    assert (run.run_dir / "evaluation" / "second.json").is_file()
