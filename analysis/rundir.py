"""Load an experiment directory (docs/interfaces.md) into plain dataclasses.

Reads only files: study.json, each trial folder's result.json and params.json, and
evaluation/<stage>.json/.npz, through the run directory's layout (trainables/run_dir.py: the file
names, `resolve`, Ray's rows). Besides that and the dependency-free contract
(trainables/contract.py) it imports no part of the writer, nor torch or Ray, so a run directory
copied onto a laptop can be reported.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.contract import RecordError, StageRecord, StudyRecord, TrialRecord
from trainables.run_dir import (
    CHECKPOINT_PREFIX,
    PARAMS_FILE,
    RESULT_FILE,
    RunDirError,
    parse_result_rows,
    read_study_json,
    resolve,
    study_path,
)


class ReportError(Exception):
    """A run directory the report cannot read; the message names the path and what is expected."""


@dataclass
class Trial(TrialRecord):
    """One trial of a stage: its study.json record plus its per-epoch curve."""

    stage: str = ""
    curve: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, record: TrialRecord, stage: str) -> Trial:
        return cls(**vars(record), stage=stage)


@dataclass
class StageResults(StageRecord):
    """One stage (one Ray Tune experiment) of a study, its trials with their curves."""

    trials: list[Trial] = field(default_factory=list)  # type: ignore[assignment]
    notes: list[str] = field(default_factory=list)


@dataclass
class StudyResults:
    """The resolved study of one run directory."""

    root: Path
    record: StudyRecord
    stages: list[StageResults]

    @property
    def name(self) -> str:
        return self.record.study

    @property
    def trainable(self) -> str:
        return self.record.trainable

    @property
    def metric(self) -> str:
        return self.record.metric

    @property
    def mode(self) -> str:
        return self.record.mode

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def data(self) -> dict[str, Any]:
        return self.record.data

    def data_of(self, dataset: str | None, stage: str | None = None) -> dict[str, Any]:
        """The data block that describes `stage`'s data (its own, recorded since wave 3), else
        the latest block of `dataset` (a stage's or the study's); {} when none is recorded."""
        own = next((s.data for s in self.stages if s.name == stage and s.data), None)
        if own is not None:
            return own
        blocks = [s.data for s in reversed(self.stages) if s.data] + [self.data]
        return next((b for b in blocks if dataset is not None and b.get("dataset") == dataset), {})

    @property
    def constraints(self) -> dict[str, Any]:
        return self.record.constraints

    @property
    def evaluations(self) -> dict[str, str]:
        return self.record.evaluations

    @property
    def description(self) -> str:
        return self.record.description

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def all_trials(self) -> list[Trial]:
        return [t for s in self.stages for t in s.trials]


def load_study(run_dir: str | Path) -> StudyResults:
    """Read RUN_DIR/study.json and every trial's curve.

    Raises:
        ReportError: the directory or study.json is missing, unreadable or of another format.
    """
    root = local_copy(run_dir)
    if not root.is_dir():
        raise ReportError(
            f"run directory {root} does not exist; expected an experiment directory "
            "(runs/<study>/) written by `python -m orchestrator.run`"
        )
    path = study_path(root)
    try:
        raw = read_study_json(root)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    if isinstance(raw, dict) and "study" not in raw:
        raw = {**raw, "study": root.name}  # early format-1 files named the study by folder only
    try:
        record = StudyRecord.from_dict(raw, str(path))
    except RecordError as exc:
        raise ReportError(str(exc)) from exc
    stages = [_load_stage(root, s) for s in record.stages]
    return StudyResults(root=root, record=record, stages=stages)


def local_copy(run_dir: str | Path) -> Path:
    """The run directory on this machine; a remote one (s3://, gs://) is downloaded first into
    the archsweep cache, without its checkpoints (the report reads none)."""
    if "://" not in str(run_dir) or str(run_dir).startswith("file://"):
        return Path(str(run_dir).removeprefix("file://"))
    # Only a remote run needs the storage layer (pyarrow); a local report imports none of it.
    from trainables.storage import Location, StorageError, mirror_dir

    location = Location(run_dir)
    cache = Path(os.environ.get("ARCHSWEEP_CACHE") or Path.home() / ".cache" / "archsweep")
    target = mirror_dir(location, cache)
    try:
        location.download(target, exclude_dirs=(CHECKPOINT_PREFIX,))
    except (OSError, StorageError) as exc:
        raise ReportError(f"cannot read the run at {location}: {exc}") from exc
    print(f"downloaded {location} to {target}", flush=True)
    return target


def _load_stage(root: Path, record: StageRecord) -> StageResults:
    fields = {k: v for k, v in vars(record).items() if k != "trials"}
    fields["title"] = record.title or record.name
    stage = StageResults(**fields, trials=[Trial.of(t, record.name) for t in record.trials])
    for trial in stage.trials:
        _attach_curve(root, trial)
    _add_unlisted_trials(root, stage)
    return stage


def _attach_curve(root: Path, trial: Trial) -> None:
    """Fill trial.curve from result.json; a crashed trial's missing or torn file becomes a note."""
    if trial.status == "infeasible" or not trial.trial_dir:
        return
    path = resolve(root, trial.trial_dir, trial.stage) / RESULT_FILE
    if not path.is_file():
        trial.notes.append(f"no per-epoch results ({trial.trial_dir}/{RESULT_FILE} missing)")
        return
    curve, bad = read_result_json(path)
    trial.curve = curve
    if bad:
        trial.notes.append(f"{bad} unreadable line(s) in {trial.trial_dir}/{RESULT_FILE} skipped")
    if not curve:
        trial.notes.append(f"{trial.trial_dir}/{RESULT_FILE} holds no epochs")
    if trial.epochs_run is None and curve:
        trial.epochs_run = len(curve)
    if trial.wall_time_s is None and curve and "time_total_s" in curve[-1]:
        trial.wall_time_s = curve[-1]["time_total_s"]


def read_result_json(path: Path) -> tuple[list[dict[str, float]], int]:
    """Read Ray's result.json (one JSON object per reported epoch; trainables.run_dir parses it).

    Returns the rows sorted by epoch (numbers only; Ray's nested "config" dropped) and the count of
    lines that could not be parsed (a trial killed mid-write leaves a torn last line). A trial that
    was retried from a checkpoint reports some epochs twice; the later row wins.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [], 1
    objects, bad = parse_result_rows(text)
    rows: dict[float, dict[str, float]] = {}
    for obj in objects:
        row = {k: float(v) for k, v in obj.items() if _is_number(v)}
        epoch = row.get("epoch", row.get("training_iteration"))
        if epoch is None:
            bad += 1
            continue
        row["epoch"] = epoch
        rows[epoch] = row
    return [rows[e] for e in sorted(rows)], bad


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _add_unlisted_trials(root: Path, stage: StageResults) -> None:
    """Show trial folders that study.json does not list yet (a study still running)."""
    folder = root / stage.name
    if not folder.is_dir():
        return
    listed = {Path(t.trial_dir).name for t in stage.trials if t.trial_dir}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name in listed or not (sub / RESULT_FILE).is_file():
            continue
        curve, _ = read_result_json(sub / RESULT_FILE)
        config = _read_params(sub / PARAMS_FILE)
        trial = Trial(
            trial_id=sub.name,
            stage=stage.name,
            config=config,
            status="running",
            epochs_run=len(curve),
            wall_time_s=curve[-1].get("time_total_s") if curve else None,
            trial_dir=f"{stage.name}/{sub.name}",
            curve=curve,
        )
        trial.notes.append("trial folder not yet recorded in study.json")
        stage.trials.append(trial)


def _read_params(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def finite(x: Any) -> float | None:
    """x as a float if it is a finite number, else None (NaN/inf of a diverged trial)."""
    if not _is_number(x) or not math.isfinite(x):
        return None
    return float(x)
