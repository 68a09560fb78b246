"""Restore per-epoch rows that Ray's result.json lost when a run was stopped hard.

On remote storage (s3://, gs://) the driver writes result.json into a local staging folder and
uploads it with the experiment state, a few files at a time. A SIGKILL or a lost driver between
a trial's checkpoint upload and the next sync leaves the bucket with the new checkpoint but an
older result.json; on resume Ray appends to that older file, so the first epochs vanish from
the trial's curve, its best epoch and its attempts (seen in CI, Ray 2.58, moto S3). Every
checkpoint carries the rows reported up to it (contract.CHECKPOINT_HISTORY), so the driver puts
the missing ones back: into the rows the trial record is built from, and into result.json,
which the report reads.
"""

from __future__ import annotations

import json
from typing import Any

from trainables.contract import CHECKPOINT_HISTORY, jsonable
from trainables.run_dir import RESULT_FILE, epoch_of


def checkpoint_history(result: Any) -> list[dict[str, Any]]:
    """The rows saved with the trial's latest checkpoint ([] when it has none or no history)."""
    checkpoint = getattr(result, "checkpoint", None)
    if checkpoint is None:
        return []
    try:
        with checkpoint.filesystem.open_input_stream(
            f"{checkpoint.path.rstrip('/')}/{CHECKPOINT_HISTORY}"
        ) as f:
            rows = json.loads(f.read().decode())
    except (OSError, ValueError):  # a checkpoint written before history existed, or torn
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("epoch"), int)]


def missing_rows(rows: list[dict[str, Any]], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows of epochs that `rows` (Ray's) lacks, marked as restored."""
    have = {epoch_of(r) for r in rows}
    return [{**r, "restored_from_checkpoint": True} for r in history if r["epoch"] not in have]


def restore_lost_rows(result: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with the epochs Ray lost put back from the checkpoint, in epoch order; when any
    were lost, the trial's result.json on storage is rewritten to hold them too."""
    lost = missing_rows(rows, checkpoint_history(result))
    if not lost:
        return rows
    merged = sorted([*lost, *rows], key=epoch_of)
    rewrite_result_json(result, lost)
    return merged


def rewrite_result_json(result: Any, lost: list[dict[str, Any]]) -> None:
    """Put `lost` rows into the trial's result.json (Ray's lines kept as they are), in epoch
    order. Best effort: the trial record already has the rows if storage refuses the write."""
    fs, path = result.filesystem, f"{result.path.rstrip('/')}/{RESULT_FILE}"
    try:
        with fs.open_input_stream(path) as f:
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    keyed = [(int(r["epoch"]), json.dumps(jsonable(r))) for r in lost]
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            row = {}  # an unreadable line keeps its place at the front; the report skips it
        keyed.append((epoch_of(row), line))
    keyed.sort(key=lambda pair: pair[0])
    try:
        with fs.open_output_stream(path) as f:
            f.write(("\n".join(line for _, line in keyed) + "\n").encode())
    except OSError as err:
        print(f"warning: could not restore lost rows into {path}: {err}", flush=True)
