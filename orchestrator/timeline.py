"""The run's timeline, recorded by the driver: when each trial attempt ran and what it cost.

`TimelineRecorder` is a Tune callback: it opens a span when Ray hands a trial its actor, takes
the trial's own measurements from its first result of the attempt (process start, set-up; see
trainables/timeline.py) and sums per-epoch training, checkpoint and probe seconds from every
result, then appends the closed span to `<stage>/timeline.jsonl` in the local run directory.
`attach_timelines` puts the spans into study.json's trial records; `write_tensorboard` turns the
summary into scalars under `<run>/timeline/` (the report draws the same numbers as a Gantt).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from trainables.contract import REPORTED_AGAIN, StudyRecord, TrialRecord, run_timeline, trial_bar

TIMELINE_LOG = "timeline.jsonl"
TENSORBOARD_DIR = "timeline"


class TimelineRecorder(Callback):
    def __init__(self, log_path: str) -> None:
        self.log_path = log_path
        self.open: dict[str, dict[str, Any]] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A restored Tuner unpickles this callback: spans of the stopped driver are gone.
        self.__dict__.update(state)
        self.open = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.open[trial.trial_id] = {
            "trial_id": trial.trial_id,
            "start": time.time(),
            "end": None,
            "epochs": 0,
            "train_s": 0.0,
            "checkpoint_s": 0.0,
            "probe_s": 0.0,
        }

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        span = self.open.get(trial.trial_id)
        if span is None or result.get("infeasible") or result.get(REPORTED_AGAIN):
            # An epoch reported again was trained (and timed) by the start before.
            return
        if "setup_s" in result and "setup_s" not in span:  # the attempt's first epoch
            for key in ("started_at", "actor_start_s", "setup_s", "node"):
                span[key] = result.get(key)
        span["epochs"] += 1
        for key, total in (
            ("epoch_time_s", "train_s"),
            ("checkpoint_s", "checkpoint_s"),
            ("probe_s", "probe_s"),
        ):
            value = result.get(key)
            if isinstance(value, int | float):
                span[total] += float(value)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.close(trial.trial_id, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.close(trial.trial_id, "ERROR")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial_id in list(self.open):  # interrupted: the span still counts as time used
            self.close(trial_id, "INTERRUPTED")

    def close(self, trial_id: str, status: str) -> None:
        span = self.open.pop(trial_id, None)
        if span is None:
            return
        span.update(end=time.time(), status=status)
        with open(self.log_path, "a") as f:
            f.write(json.dumps(span) + "\n")


def read_spans(stage_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every recorded attempt of the stage's trials, by trial id, in order."""
    path = stage_dir / TIMELINE_LOG
    spans: dict[str, list[dict[str, Any]]] = {}
    if not path.is_file():
        return spans
    for line in path.read_text().splitlines():
        try:
            span = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a hard stop
            continue
        spans.setdefault(span.pop("trial_id", "?"), []).append(span)
    for items in spans.values():
        items.sort(key=lambda s: s["start"])
    return spans


def attach_timelines(trials: list[TrialRecord], stage_dir: Path, cpus: float, gpus: float) -> None:
    spans = read_spans(stage_dir)
    for trial in trials:
        if trial.trial_id in spans:
            trial.timeline = {"spans": spans[trial.trial_id], "cpus": cpus, "gpus": gpus}


def stage_timelines(record: StudyRecord) -> list[tuple[str, dict[str, Any], list[dict]]]:
    return [(s.name, s.timeline, [t.timeline for t in s.trials]) for s in record.stages]


def write_tensorboard(run_dir: Path, record: StudyRecord) -> Path | None:
    """The timeline as TensorBoard scalars: per stage (step = its index) the share of wall time
    with a trial training and the trials at once; and `running_trials` over the run's seconds.
    Rewritten whole at each stage's end (one event file, no duplicate points)."""
    from torch.utils.tensorboard import SummaryWriter

    stages = stage_timelines(record)
    summary = run_timeline(stages)
    if not summary.stages:
        return None
    folder = run_dir / TENSORBOARD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    writer = SummaryWriter(str(folder))
    try:
        for step, stage in enumerate(summary.stages):
            if stage.wall_s > 0:
                writer.add_scalar(
                    "timeline/training_fraction", stage.training_s / stage.wall_s, step
                )
                writer.add_scalar("timeline/stage_wall_s", stage.wall_s, step)
            if stage.at_once is not None:
                writer.add_scalar("timeline/trials_at_once", stage.at_once, step)
            if stage.setup_s:
                writer.add_scalar(
                    "timeline/mean_setup_s", sum(stage.setup_s) / len(stage.setup_s), step
                )
        bars = [b for _, _, ts in stages for t in ts if (b := trial_bar(t)) is not None]
        if bars:
            origin = min(a for a, _ in bars)
            events = sorted([(a, 1) for a, _ in bars] + [(b, -1) for _, b in bars])
            running = 0
            for t, change in events:
                running += change
                writer.add_scalar("timeline/running_trials", running, int(t - origin))
        writer.add_text("timeline/summary", summary.line(), 0)
    finally:
        writer.close()
    return folder
