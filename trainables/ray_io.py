"""The only place that touches Ray's per-trial API.

Ray has renamed report/checkpoint three times (session.report, train.report, tune.report); keeping
every call here means the next rename is a one-file change. Outside Ray (a bare loop, a unit test)
the same functions work against a plain folder, so the epoch loop never branches on "am I in Ray".
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from trainables.contract import CHECKPOINT_HISTORY, jsonable
from trainables.run_dir import (
    CHECKPOINT_FILE,
    CHECKPOINT_PREFIX,
    RESULT_FILE,
    epoch_of,
    parse_result_rows,
)


class LocalSession:
    """Stands in for Ray outside a Tuner: collects reports, keeps the last checkpoint on disk."""

    def __init__(self, trial_dir: Path) -> None:
        self.trial_dir = Path(trial_dir)
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        self.reports: list[dict] = []
        self.checkpoint_dir: Path | None = None

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is not None:
            target = self.trial_dir / f"{CHECKPOINT_PREFIX}{len(self.reports) - 1:06d}"
            shutil.copytree(checkpoint_dir, target, dirs_exist_ok=True)
            self.checkpoint_dir = target


_local: LocalSession | None = None


def use_local_session(session: LocalSession | None) -> None:
    """Route reports to `session` instead of Ray (benchmarks, tests)."""
    global _local
    _local = session


def trial_dir() -> Path:
    """Where a trial writes its own files (TensorBoard events), on whatever node it runs.

    Under Ray this is the trial's working directory (Ray chdirs into it), which Ray syncs to the
    run's storage with SyncConfig(sync_artifacts=True), from any node. `get_trial_dir()` would
    be the driver's staging folder: fine on one machine, lost on a worker node (checked with
    Ray 2.58 on two nodes; see tests/test_multinode.py).
    """
    if _local is not None:
        return _local.trial_dir
    if os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", "1") != "0":
        return Path.cwd()
    from ray import tune

    return Path(tune.get_context().get_trial_dir())


def node_id() -> str:
    """The Ray node this trial runs on ("local" outside Ray), recorded per attempt."""
    if _local is not None:
        return "local"
    import ray

    return ray.get_runtime_context().get_node_id()[:12]


def assigned_gpus() -> list[str]:
    """The GPU ids Ray gave this trial (empty outside Ray or without GPUs)."""
    if _local is not None:
        return []
    import ray

    return [str(g) for g in ray.get_gpu_ids()]


def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
    """Report one epoch's metrics, with a checkpoint of `state` when given.

    `checkpoint_s` in the reported metrics: seconds to serialize the checkpoint (Ray's copy into
    the run's storage follows inside tune.report; the run's timeline counts it as overhead)."""
    with tempfile.TemporaryDirectory(prefix="archsweep-ckpt-") as tmp:
        ckpt_dir = None
        if state is not None:
            started = time.perf_counter()
            ckpt_dir = Path(tmp)
            torch.save(state, ckpt_dir / CHECKPOINT_FILE)
            if state.get("history") is not None:
                # Small and torch-free, so the driver can read it without loading the weights.
                (ckpt_dir / CHECKPOINT_HISTORY).write_text(json.dumps(jsonable(state["history"])))
            metrics = {**metrics, "checkpoint_s": time.perf_counter() - started}
        if _local is not None:
            _local.report(metrics, ckpt_dir)
            return
        from ray import tune

        checkpoint = tune.Checkpoint.from_directory(str(ckpt_dir)) if ckpt_dir else None
        tune.report(metrics, checkpoint=checkpoint)


_boards: dict[str, Any] = {}  # progress board handles of this trial process, by name


def progress(board: str | None, update: dict[str, Any]) -> None:
    """Send a within-epoch progress update to the stage's board actor, fire-and-forget.

    The board is a named actor (orchestrator.live_view), reachable from a trial on any node.
    Nothing here may fail a trial: no board, a dead board or any Ray error just drops the update
    (the next one looks the board up again). Outside Ray (LocalSession, bare loop) a no-op.
    """
    if board is None or _local is not None:
        return
    try:
        import ray
        from ray import tune

        if not ray.is_initialized():  # a bare process: never start a Ray just for progress
            return
        handle = _boards.get(board)
        if handle is None:
            handle = _boards[board] = ray.get_actor(board)
        handle.update.remote(tune.get_context().get_trial_id(), update)
    except Exception:
        _boards.pop(board, None)


def load_latest_state() -> dict[str, Any] | None:
    """The state saved with the last reported checkpoint (Ray restores it on resume/retry)."""
    if _local is not None:
        if _local.checkpoint_dir is None:
            return None
        return load_state(_local.checkpoint_dir)
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        # Ray restarts the trial from scratch when its experiment state never recorded a
        # checkpoint; on remote storage a hard stop can leave exactly that while the trial's
        # checkpoints are already in its folder (seen in CI: S3, SIGKILL). Resume from those.
        storage = tune.get_context().get_storage()  # DeveloperAPI: the trial's storage folder
        return newest_checkpoint_state(storage.storage_filesystem, storage.trial_fs_path)
    path = checkpoint.path.rstrip("/")
    parent, _, name = path.rpartition("/")
    newer = newest_checkpoint_state(checkpoint.filesystem, parent, after=name)
    if newer is not None:
        return newer
    with checkpoint.as_directory() as folder:
        return load_state(Path(folder))


def newest_checkpoint_state(fs: Any, parent: str, after: str = "") -> dict[str, Any] | None:
    """The newest complete checkpoint in a trial's storage folder (newer than `after`).

    When a run is stopped (Ctrl-C, SIGTERM) just after a trial reported an epoch, Ray can
    have written that epoch's checkpoint to storage without recording it in the experiment
    state, and would then restore the one before (or none): the epoch would be trained twice
    (seen with Ray 2.58, tests/test_resume.py). The trial's checkpoints are siblings in storage,
    so the newest one that loads is used instead.
    """
    import pyarrow.fs

    parent, name = parent.rstrip("/"), after
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(parent))
    except OSError:
        return None
    later = sorted(
        (
            i.base_name
            for i in infos
            if i.type == pyarrow.fs.FileType.Directory
            and i.base_name.startswith(CHECKPOINT_PREFIX)
            and i.base_name > name
        ),
        reverse=True,
    )
    for candidate in later:
        try:
            with fs.open_input_stream(f"{parent}/{candidate}/{CHECKPOINT_FILE}") as f:
                data = f.read()
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        except Exception:  # missing or torn by the stop: try the one before
            continue
        # Ray may also have lost that epoch's result row: then the trial reports it again.
        state["unrecorded"] = state["epoch"] not in recorded_epochs(fs, parent)
        return state
    return None


def recorded_epochs(fs: Any, trial_path: str) -> set[int]:
    """Epochs in the trial's result.json on storage (what Ray logged)."""
    try:
        with fs.open_input_stream(f"{trial_path}/{RESULT_FILE}") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return set()
    rows, _ = parse_result_rows(text)
    return {epoch_of(r) for r in rows if "epoch" in r} - {0}


def load_state(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint folder's state; `folder` may be a URI (s3://...) on remote run storage,
    fetched into the local cache first (a FromStudy encoder on another node, an evaluation)."""
    from trainables.data import default_cache_dir
    from trainables.storage import fetch_local

    local = fetch_local(str(folder), default_cache_dir())
    path = local / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in checkpoint folder {folder}")
    # weights_only=False: our own checkpoints hold RNG states and scheduler dicts, not just tensors.
    return torch.load(path, map_location=map_location, weights_only=False)
