"""Load an experiment directory (docs/interfaces.md) into plain dataclasses.

Reads only files: study.json, each trial folder's result.json and params.json, and
evaluation/<stage>.json/.npz. It never imports the orchestrator, trainables or Ray, so a run
directory copied onto a laptop can be reported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# orchestrator/records.py writes "schema_version" (docs/interfaces.md's example omits it); a
# study.json without one is read as version 1. A writer that bumps it must teach this reader first.
SUPPORTED_VERSIONS = (1,)
TRAINABLES = ("classification", "segmentation")
TRIAL_STATUSES = (
    "completed", "asha_stopped", "stopped", "diverged", "error", "infeasible"
)


class ReportError(Exception):
    """A run directory the report cannot read; the message names the path and what is expected."""


@dataclass
class Trial:
    """One trial of a stage, as recorded in study.json plus its per-epoch curve."""

    trial_id: str
    stage: str
    label: str | None
    config: dict[str, Any]
    params: int | None
    status: str
    reason: str | None
    epochs_run: int | None
    best_epoch: int | None
    final: dict[str, float]
    best: dict[str, float]
    wall_time_s: float | None
    trial_dir: str | None
    best_checkpoint: str | None
    curve: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The label if the study gave one, else the trial id."""
        return self.label or self.trial_id


@dataclass
class Stage:
    """One stage (one Ray Tune experiment) of a study."""

    name: str
    title: str
    status: str
    epochs: int | None
    scheduler: str | None
    compare: list[str]
    trials: list[Trial]
    best: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


@dataclass
class Study:
    """The resolved study of one run directory."""

    root: Path
    name: str
    trainable: str
    metric: str
    mode: str
    status: str
    data: dict[str, Any]
    constraints: dict[str, Any]
    stages: list[Stage]
    evaluations: dict[str, str]
    raw: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def all_trials(self) -> list[Trial]:
        return [t for s in self.stages for t in s.trials]


def load_study(run_dir: str | Path) -> Study:
    """Read RUN_DIR/study.json and every trial's curve.

    Raises:
        ReportError: the directory or study.json is missing, unreadable or of another version.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ReportError(
            f"run directory {root} does not exist; expected an experiment directory "
            "(runs/<study>/) written by `python -m orchestrator.run`"
        )
    path = root / "study.json"
    if not path.is_file():
        raise ReportError(
            f"{path} not found; expected the study record that orchestrator.run writes at the top "
            "of the experiment directory (is this the right directory, or did the run not start?)"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ReportError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    _check_schema(raw, path)

    stages = [_load_stage(root, s) for s in raw["stages"]]
    return Study(
        root=root,
        name=str(raw.get("study", root.name)),
        trainable=raw["trainable"],
        metric=raw.get("metric") or _default_metric(raw["trainable"]),
        mode=raw.get("mode") or "max",
        status=raw.get("status", "running"),
        data=raw.get("data") or {},
        constraints=raw.get("constraints") or {},
        stages=stages,
        evaluations=dict(raw.get("evaluations") or {}),
        raw=raw,
    )


def _default_metric(trainable: str) -> str:
    return "val_iou" if trainable == "segmentation" else "val_acc"


def _check_schema(raw: dict[str, Any], path: Path) -> None:
    version = raw.get("schema_version", raw.get("version", 1))
    if version not in SUPPORTED_VERSIONS:
        raise ReportError(
            f"{path} has schema_version {version!r}; this report reads study.json version(s) "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}. Update archsweep on this machine."
        )
    missing = [k for k in ("trainable", "stages") if k not in raw]
    if missing:
        raise ReportError(
            f"{path} lacks {', '.join(missing)}; expected the study.json schema of "
            "docs/interfaces.md (study, trainable, metric, mode, status, stages, evaluations)"
        )
    if raw["trainable"] not in TRAINABLES:
        raise ReportError(
            f"{path}: unknown trainable {raw['trainable']!r}; valid: {', '.join(TRAINABLES)}"
        )
    if not isinstance(raw["stages"], list) or not all(isinstance(s, dict) for s in raw["stages"]):
        raise ReportError(f"{path}: 'stages' must be a list of stage objects")


def _load_stage(root: Path, raw: dict[str, Any]) -> Stage:
    name = str(raw.get("name", "stage"))
    trials = [_make_trial(name, t) for t in raw.get("trials") or []]
    stage = Stage(
        name=name,
        title=str(raw.get("title") or name),
        status=str(raw.get("status", "pending")),
        epochs=raw.get("epochs"),
        scheduler=raw.get("scheduler"),
        compare=list(raw.get("compare") or []),
        trials=trials,
        best=raw.get("best"),
    )
    for trial in trials:
        _attach_curve(root, trial)
    _add_unlisted_trials(root, stage)
    return stage


def _make_trial(stage: str, raw: dict[str, Any]) -> Trial:
    status = str(raw.get("status") or "error")
    trial = Trial(
        trial_id=str(raw.get("trial_id", "?")),
        stage=stage,
        label=raw.get("label") or None,
        config=dict(raw.get("config") or {}),
        params=raw.get("params"),
        status=status,
        reason=raw.get("reason"),
        epochs_run=raw.get("epochs_run"),
        best_epoch=raw.get("best_epoch"),
        final=dict(raw.get("final") or {}),
        best=dict(raw.get("best") or {}),
        wall_time_s=raw.get("wall_time_s"),
        trial_dir=raw.get("trial_dir"),
        best_checkpoint=raw.get("best_checkpoint"),
    )
    if status not in TRIAL_STATUSES:
        trial.notes.append(f"unknown status {status!r} in study.json")
    return trial


def _attach_curve(root: Path, trial: Trial) -> None:
    """Fill trial.curve from result.json; a crashed trial's missing or torn file becomes a note."""
    if trial.status == "infeasible" or not trial.trial_dir:
        return
    path = resolve(root, trial.trial_dir, trial.stage) / "result.json"
    if not path.is_file():
        trial.notes.append(f"no per-epoch results ({trial.trial_dir}/result.json missing)")
        return
    curve, bad = read_result_json(path)
    trial.curve = curve
    if bad:
        trial.notes.append(f"{bad} unreadable line(s) in {trial.trial_dir}/result.json skipped")
    if not curve:
        trial.notes.append(f"{trial.trial_dir}/result.json holds no epochs")
    if trial.epochs_run is None and curve:
        trial.epochs_run = len(curve)
    if trial.wall_time_s is None and curve and "time_total_s" in curve[-1]:
        trial.wall_time_s = curve[-1]["time_total_s"]


def resolve(root: Path, recorded: str, folder: str) -> Path:
    """A path recorded in study.json, relative to the run directory.

    An absolute path (or one from another machine) that no longer exists is looked up by its
    last component under root/folder, so a run directory copied elsewhere still reads.
    """
    path = root / recorded  # an absolute `recorded` replaces root
    if path.exists() or not Path(recorded).is_absolute():
        return path
    return root / folder / Path(recorded).name


def read_result_json(path: Path) -> tuple[list[dict[str, float]], int]:
    """Read Ray's result.json (one JSON object per reported epoch).

    Returns the rows sorted by epoch (numbers only; Ray's nested "config" dropped) and the count of
    lines that could not be parsed (a trial killed mid-write leaves a torn last line). A trial that
    was retried from a checkpoint reports some epochs twice; the later row wins.
    """
    rows: dict[float, dict[str, float]] = {}
    bad = 0
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [], 1
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(obj, dict):
            bad += 1
            continue
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


def _add_unlisted_trials(root: Path, stage: Stage) -> None:
    """Show trial folders that study.json does not list yet (a study still running)."""
    folder = root / stage.name
    if not folder.is_dir():
        return
    listed = {Path(t.trial_dir).name for t in stage.trials if t.trial_dir}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name in listed or not (sub / "result.json").is_file():
            continue
        curve, _ = read_result_json(sub / "result.json")
        config = _read_params(sub / "params.json")
        trial = Trial(
            trial_id=sub.name,
            stage=stage.name,
            label=None,
            config=config,
            params=None,
            status="running",
            reason=None,
            epochs_run=len(curve),
            best_epoch=None,
            final={},
            best={},
            wall_time_s=curve[-1].get("time_total_s") if curve else None,
            trial_dir=f"{stage.name}/{sub.name}",
            best_checkpoint=None,
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
