"""Before a study trains on a cluster: does every node see the run's storage?

Ray writes each trial's checkpoints and files to the run's storage from the node that runs it. A
folder on the head's own disk, an NFS share a worker never mounted, or a bucket a worker has no
route or credentials for lets such a trial train and then fail when it saves ("Unable to set up
cluster storage"), once per trial. One zero-CPU task per node reading a marker the driver wrote
finds that in seconds, before anything trains. Nodes that join later (autoscaling) are not
covered here; their failed trials end the study with exit code 3 and the same advice.
"""

from __future__ import annotations

import errno
import secrets
import shutil
from pathlib import Path

from orchestrator import ray_setup
from orchestrator.study import StudyError
from trainables.storage import Location

MARKER = ".archsweep-node-check"
SHARED_STORAGE_FIX = (
    "Every node must see the same storage: give --storage a bucket (s3://BUCKET/runs, "
    "gs://...) or a shared folder mounted at the same path on every node (NFS); a folder on "
    "the head's own disk only works on one machine"
)


def read_marker(uri: str) -> str:
    """The marker's text as this node sees it, or what went wrong reading it."""
    try:
        return Location(uri).read_text()
    except Exception as err:  # any failure is the answer: this node cannot read the storage
        return f"unreadable: {type(err).__name__}: {err}"


def check_storage_on_every_node(location: Location) -> None:
    """Refuse to start (StudyError) when an alive node cannot read what the driver wrote to
    the run's storage, naming the nodes, the storage and the fix."""
    marker = location.join(MARKER)
    token = secrets.token_hex(8)
    marker.write_bytes(token.encode())
    try:
        seen = ray_setup.run_on_every_node(read_marker, str(marker))
    finally:
        marker.delete()
    blind = {node: text for node, text in seen.items() if text != token}
    if blind:
        names = ", ".join(
            f"{node[:12]} ({text if text.startswith('unreadable') else 'sees another folder'})"
            for node, text in blind.items()
        )
        raise StudyError(
            f"the run's storage {location} is not visible from {len(blind)} of {len(seen)} "
            f"node(s): {names}. {SHARED_STORAGE_FIX}"
        )


# Room a run needs before it starts: study.json, logs, TensorBoard events and the first
# checkpoints of a small model fit in this; less means the first save fails mid-stage.
MIN_FREE_BYTES = 64 * 2**20
NO_SPACE = "No space left on device"


class StorageFull(Exception):
    """The run's disk filled up while the study ran (exit 3: it ended, but not as planned)."""


def free_bytes(path: Path) -> int | None:
    """Free space of the disk that holds `path` (its nearest existing folder)."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    try:
        return shutil.disk_usage(existing).free if existing is not None else None
    except OSError:
        return None


def check_free_space(run_dir: Path, minimum: int = MIN_FREE_BYTES) -> None:
    """Refuse to start a run on a disk that cannot hold its first checkpoints."""
    free = free_bytes(run_dir)
    if free is not None and free < minimum:
        raise StudyError(
            f"--storage: the disk of {run_dir} has {free / 2**20:.1f} MiB free, and a run needs "
            f"at least {minimum / 2**20:.0f} MiB (study.json, logs, checkpoints); free space "
            "there or give --storage a folder on another disk"
        )


def disk_full(run_dir: Path, err: BaseException) -> bool:
    """Whether `err` (or its cause) is a full disk, or the run's disk has no room left."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if NO_SPACE in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    free = free_bytes(run_dir)
    return free is not None and free < 2**20


def full_message(run_dir: Path) -> str:
    return (
        f"the disk of {run_dir} is full ({NO_SPACE}); the study stopped. What was saved "
        "before is kept: free space there (or move the run folder to a larger disk and give "
        "--storage its new parent) and run the same command again to resume"
    )
