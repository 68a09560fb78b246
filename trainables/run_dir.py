"""The run directory's layout: which file is where, and how Ray's per-epoch rows read.

```
runs/<study>/                  the run directory (RUN_DIR)
  study.json                   STUDY_FILE: the run's record (orchestrator/records.py writes it)
  <stage>/<label>_<id>/        a trial's folder (its path, relative to RUN_DIR, is in study.json)
    result.json                RESULT_FILE: Ray's rows, one JSON object per reported epoch
    params.json                PARAMS_FILE: the trial's config as Ray gave it
    checkpoint_000003/         CHECKPOINT_PREFIX + Ray's index
      checkpoint.pt            CHECKPOINT_FILE (trainables/ray_io.py writes and loads it)
  evaluation/<stage>.json/.npz EVALUATION_FOLDER (trainables/evaluate.write_evaluation)
  replays/<label>-<time>/      REPLAY_FOLDER: `python -m orchestrator.replay` output
```

Everything that reads or names these goes through this module: the driver (orchestrator/records.py,
history.py, replay.py), the trial (trainables/ray_io.py) and the report (analysis/rundir.py).
Standard library and the contract only: the report imports it without loading torch or Ray.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trainables.contract import RecordError, StudyRecord

STUDY_FILE = "study.json"
RESULT_FILE = "result.json"
PARAMS_FILE = "params.json"
CHECKPOINT_PREFIX = "checkpoint_"
CHECKPOINT_FILE = "checkpoint.pt"
EVALUATION_FOLDER = "evaluation"
REPLAY_FOLDER = "replays"
LOCK_FILE = ".archsweep.lock"  # the live run's pid and host (orchestrator/lock.py)


class RunDirError(ValueError):
    """A run directory or one of its files that cannot be read; the message names the path."""


def study_path(run_dir: Path) -> Path:
    return Path(run_dir) / STUDY_FILE


def read_study_json(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR/study.json as a dict (orchestrator/records.py and analysis/rundir.py turn it into
    a StudyRecord).

    Raises:
        RunDirError: the file is missing, unreadable, or not a JSON object.
    """
    path = study_path(run_dir)
    if not path.is_file():
        raise RunDirError(
            f"{path} not found: RUN_DIR must be a run directory (runs/<study>/, written by "
            "`python -m orchestrator.run`), or the run has not started"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunDirError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise RunDirError(f"{path} holds a {type(raw).__name__}, not the study record's object")
    return raw


def load_study_record(run_dir: Path) -> StudyRecord:
    """RUN_DIR/study.json as a StudyRecord (for readers without their own error type: replay).

    Raises:
        RunDirError: missing, unreadable, or not a study record this archsweep reads.
    """
    raw = read_study_json(run_dir)
    try:
        return StudyRecord.from_dict(raw, str(study_path(run_dir)))
    except RecordError as err:
        raise RunDirError(str(err)) from None


def resolve(run_dir: Path, recorded: str, folder: str = "") -> Path:
    """A path study.json records (relative to the run directory, or absolute where the run's
    storage was elsewhere).

    An absolute path that no longer exists (a run directory copied from another machine) is
    looked up by its last component under run_dir/`folder` (the trial's stage), so the copy
    still reads.
    """
    path = Path(run_dir) / recorded  # an absolute `recorded` replaces run_dir
    if path.exists() or not Path(recorded).is_absolute():
        return path
    return Path(run_dir) / folder / Path(recorded).name


def parse_result_rows(text: str) -> tuple[list[dict[str, Any]], int]:
    """Ray's result.json text: (every line that is a JSON object, in file order; the count of
    the other non-empty lines: a trial killed mid-write leaves a torn last one)."""
    rows: list[dict[str, Any]] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def read_result_rows(trial_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """parse_result_rows of the trial folder's result.json; ([], 0) where there is none, ([], 1)
    where it cannot be read."""
    path = Path(trial_dir) / RESULT_FILE
    if not path.is_file():
        return [], 0
    try:
        return parse_result_rows(path.read_text(errors="replace"))
    except OSError:
        return [], 1


def epoch_of(row: Any) -> int:
    """A row's epoch; 0 for one without a usable epoch (NaN from a DataFrame, a torn line)."""
    try:
        return int(row["epoch"])
    except (KeyError, TypeError, ValueError):
        return 0


def rows_by_epoch(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Trained epochs' rows by epoch. A trial resumed from a checkpoint may report an epoch
    twice (before and after the interruption): the later row wins. Infeasible reports (epoch 0,
    nothing trained) are left out."""
    return {int(r["epoch"]): r for r in rows if "epoch" in r and not r.get("infeasible")}


def recorded_rows(trial_dir: Path) -> dict[int, dict[str, Any]]:
    """The trial's trained epochs as Ray recorded them (result.json), by epoch (rows_by_epoch)."""
    rows, _ = read_result_rows(trial_dir)
    return rows_by_epoch(rows)


def checkpoint_folders(trial_dir: Path) -> list[Path]:
    """The trial's checkpoint folders, oldest first."""
    return sorted(Path(trial_dir).glob(f"{CHECKPOINT_PREFIX}*"), key=lambda p: p.name)


def replay_dir(run_dir: Path, label: str, stamp: str) -> Path:
    """Where a replay of the trial `label` started at `stamp` writes its output."""
    return Path(run_dir) / REPLAY_FOLDER / f"{label}-{stamp}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host still runs (a lock whose owner is gone is stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
