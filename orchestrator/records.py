"""study.json, assembled in one place: open/resume, trial records from Ray results, best trial.

The record types live in `trainables.contract` (shared with the report); this module fills them.
study.json is written atomically after every change (temp file + rename), so a killed driver
leaves either the old or the new record, never half of one; resume reads it to skip finished
stages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.history import restore_lost_rows
from orchestrator.study import StudyError
from trainables.contract import (
    REPORTED_AGAIN,
    TRIAL_RANKED,
    BestRecord,
    RecordError,
    StageRecord,
    StudyRecord,
    TrialRecord,
    best_of,
    jsonable,
    kept_metric_names,
)
from trainables.jsonio import write_json_atomic
from trainables.run_dir import STUDY_FILE
from trainables.storage import Location, StorageError
from trainables.trial_config import TrialConfig

FRESH_HINT = "run with --fresh to start over (the old run is kept aside) or pick a new --name"


class StudyFile:
    """The in-memory study.json of one run directory, saved after every update.

    `run_dir` is local: the run directory itself, or for remote storage its local mirror;
    `location` is where the run lives (the same folder, or the bucket), written after every save.
    """

    def __init__(
        self, run_dir: Path, record: StudyRecord, location: Location | None = None
    ) -> None:
        self.run_dir = run_dir
        self.record = record
        self.location = location or Location(run_dir)

    @property
    def path(self) -> Path:
        return self.run_dir / STUDY_FILE

    @classmethod
    def open(
        cls, run_dir: Path, header: StudyRecord, location: Location | None = None
    ) -> StudyFile:
        """Resume the run directory's study.json, or start `header` as a new one.

        A resumed record must have the same stages and run settings (--set, --smoke, ...):
        finished stages are not run again, so resuming with others would mix two experiments.
        """
        path = run_dir / STUDY_FILE
        if not path.is_file():
            return cls(run_dir, header, location)
        record = read_study(path)
        known = [s.name for s in record.stages]
        wanted = [s.name for s in header.stages]
        if known != wanted:
            raise StudyError(
                f"{path} records stages {known}, but the study file now has {wanted}; " + FRESH_HINT
            )
        settings = jsonable(header.run_settings)
        if record.run_settings != settings:
            raise StudyError(
                f"{path} was run with {record.run_settings}, this command has {settings}; "
                f"resuming would mix the two. {FRESH_HINT[0].upper()}{FRESH_HINT[1:]}"
            )
        for key in ("description", "constraints", "metric", "mode"):
            setattr(record, key, getattr(header, key))
        record.status = "running"
        return cls(run_dir, record, location)

    def stage(self, name: str) -> StageRecord:
        return self.record.stage(name)

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.record.to_dict())
        self.publish(self.path)

    def publish(self, local_file: Path) -> None:
        """Copy a file of the local run directory to remote storage (no-op when local)."""
        if self.location.remote:
            rel = local_file.relative_to(self.run_dir).as_posix()
            self.location.join(rel).upload(local_file)


def read_study(path: Path | Location) -> StudyRecord:
    """A study.json as a record; a torn or malformed file is a StudyError naming the fix."""
    location = path if isinstance(path, Location) else Location(path)
    try:
        raw = json.loads(location.read_text())
        return StudyRecord.from_dict(raw, str(location))
    except (OSError, json.JSONDecodeError, RecordError, StorageError) as err:
        raise StudyError(
            f"{location} is unreadable ({err}); restore it from a backup, or {FRESH_HINT}"
        ) from None


def best_row(rows: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The epoch row with the best finite `metric` (diverged epochs never count)."""
    trained = [r for r in rows if not r.get("diverged")]
    return best_of(trained, lambda r: r.get(metric), mode)


def trial_record(
    result: Any,
    location: Location,
    metric: str,
    mode: str,
    asha_stops: dict[str, dict[str, Any]],
) -> TrialRecord:
    """One trial of study.json from Ray Tune's `Result` (its metrics history and checkpoints);
    its paths are relative to the run's `location`."""
    last = dict(result.metrics or {})
    # The effective config: every data and trainer default (the seed a run used is then on
    # record even when the study left it unset), and what the trial reported it resolved (the
    # precision "auto" chose).
    config = TrialConfig.from_dict(dict(result.config or {})).with_reported(last).as_dict()
    history = result.metrics_dataframe
    rows = history.to_dict("records") if history is not None and len(history) else []
    rows = [r for r in rows if metric in r and not r.get("infeasible")]
    rows = restore_lost_rows(result, rows)
    best = best_row(rows, metric, mode)
    epochs_run = max((int(r.get("epoch", 0)) for r in rows), default=0)
    trial_id = last.get("trial_id") or Path(result.path).name
    status, reason = stop_status(
        result, last, epochs_run, int(config["epochs"]), asha_stops.get(trial_id), metric
    )
    keep = kept_metric_names()
    attempts = attempts_of(rows)
    if status == "completed" and len(attempts) > 1:
        reason = f"completed in {len(attempts)} attempts (resumed from its checkpoint)"
    return TrialRecord(
        trial_id=trial_id,
        label=config.get("label"),
        config=config,
        status=status,
        reason=reason,
        epochs_run=epochs_run,
        best_epoch=int(best["epoch"]) if best else None,
        final={k: last[k] for k in keep if k in last},
        best={k: best[k] for k in keep if best and k in best},
        wall_time_s=last.get("time_total_s"),
        trial_dir=location.relative(result.path),
        best_checkpoint=(
            None if status == "infeasible" else best_checkpoint(result, location, metric, mode)
        ),
        attempts=attempts,
    )


def attempts_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per start of the trial (first run, ASHA resume, retry after a failure):
    the node it ran on and the first epoch it trained.

    A start's first row is usually its first epoch. When the start before had checkpointed an
    epoch that Ray never logged, the new start first reports that epoch again: the row was
    trained on the earlier node, and the start trains from the next epoch on its own node
    (seen after a node loss, tests/test_multinode.py)."""
    attempts = []
    for row in rows:
        if int(row.get("iterations_since_restore", 1)) != 1:
            continue
        epoch = int(row.get("epoch", 0))
        if row.get(REPORTED_AGAIN):
            attempts.append({"node": row[REPORTED_AGAIN], "from_epoch": epoch + 1})
        else:
            attempts.append({"node": row.get("node") or row.get("node_ip"), "from_epoch": epoch})
    return attempts


def best_checkpoint(result: Any, location: Location, metric: str, mode: str) -> str | None:
    """The trial's checkpoint of its best epoch, else its last one."""
    try:
        ckpt = result.get_best_checkpoint(metric, mode)
    except (RuntimeError, ValueError):
        ckpt = None
    ckpt = ckpt or result.checkpoint
    return location.relative(ckpt.path) if ckpt is not None else None


def stop_status(
    result: Any,
    last: dict,
    epochs_run: int,
    epochs: int,
    asha_stop: dict[str, Any] | None,
    metric: str,
) -> tuple[str, str | None]:
    if last.get("infeasible"):
        return "infeasible", last.get("reason")
    if result.error is not None:
        # The traceback's end names the failing line and exception; 10k characters keep it.
        return "error", str(result.error)[-10_000:]
    if last.get("diverged"):
        return "diverged", last.get("reason")
    if epochs_run >= epochs:
        return "completed", None
    if last.get("early_stopped"):
        return "stopped", (
            f"early stopping after {epochs_run} of {epochs} epochs: no better {metric} in "
            "early_stop_patience epochs"
        )
    if asha_stop is not None:
        return "asha_stopped", (
            f"stopped by ASHA after {asha_stop['epoch']} of {epochs} epochs "
            f"({metric} {asha_stop['value']:.4f} below the rung's cutoff)"
        )
    return "stopped", f"ended after {epochs_run} of {epochs} epochs without an ASHA decision"


def infeasible_record(point: Any) -> TrialRecord:
    """A grid point rejected before training (its constraint violations as the reason)."""
    return TrialRecord(
        label=point.label,
        config=point.config,
        params=point.params,
        status="infeasible",
        reason="; ".join(point.violations),
        wall_time_s=0.0,
    )


def pick_best(trials: list[TrialRecord], metric: str, mode: str) -> BestRecord | None:
    """The stage's best trial by its best epoch's `metric`."""
    ranked = [t for t in trials if t.status in TRIAL_RANKED and metric in t.best]
    best = best_of(ranked, lambda t: t.best[metric], mode)
    if best is None:
        return None
    return BestRecord(
        trial_id=best.trial_id,
        label=best.label,
        config=best.config,
        checkpoint=best.best_checkpoint,
        value=best.best[metric],
    )


__all__ = [
    "STUDY_FILE",
    "StudyFile",
    "best_checkpoint",
    "infeasible_record",
    "pick_best",
    "read_study",
    "stop_status",
    "trial_record",
]
