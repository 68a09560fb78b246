"""Before a study trains on a cluster: does every node see the run's storage?

Ray writes each trial's checkpoints and files to the run's storage from the node that runs it. A
folder on the head's own disk, an NFS share a worker never mounted, or a bucket a worker has no
route or credentials for lets such a trial train and then fail when it saves ("Unable to set up
cluster storage"), once per trial. One zero-CPU task per node reading a marker the driver wrote
finds that in seconds, before anything trains. Nodes that join later (autoscaling) are not
covered here; their failed trials end the study with exit code 3 and the same advice.
"""

from __future__ import annotations

import secrets

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
