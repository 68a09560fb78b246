"""Two Ray nodes on this machine: trial outputs reach the run's storage from either node.

Wave 1 tested one node only; on two, a trial on the worker wrote its TensorBoard events into the
driver's staging folder of its own node, never into storage. The cluster runs in a subprocess
(ray.cluster_utils.Cluster: head + worker on 127.0.0.1), apart from the suite's shared Ray, and
is shut down by its own handle: never a bare `ray stop`. Where mount namespaces are allowed
(root), the worker is a `ray start` in its own namespace with a private /tmp/ray, as on another
machine: without that, both nodes share one session folder and a file a trial leaves in its
node's session folder still looks stored (checked: with `ray_io.trial_dir()` returning Ray's
staging folder, the spread test and the node-loss test fail only when the worker has its own
/tmp/ray). Node loss there is every process of the worker's namespace SIGKILLed at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="spread", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 2, "batch_size": 16,
          "max_batches": 2, "model": "resnet", "channels": (8, 16), "blocks": (1, 1),
          "stem": "cifar"},
    stages=[Stage("acts", label="1", scheduler="fifo",
                  space={"activation": tune.grid_search(["relu", "elu", "gelu", "silu"])})],
)
"""

# A worker node started by `ray start` in its own mount namespace, as on another machine: the
# folders in `hide` are empty there (a private tmpfs), e.g. /tmp/ray, so the worker's session
# folder is its own, not the head's. Stopped by its process group, never a bare `ray stop`.
WORKER = """
import os, subprocess, sys, time
from pathlib import Path
import ray

def start_worker(address, hide, num_cpus=1):
    mounts = " && ".join(f"mkdir -p {h} && mount -t tmpfs tmpfs {h}" for h in hide)
    ray_cli = Path(sys.executable).parent / "ray"
    worker = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"{mounts} && exec {ray_cli} start --address={address} --num-cpus={num_cpus} --block"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    ray.init(address=address)
    deadline = time.monotonic() + 60
    while sum(n["Alive"] for n in ray.nodes()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    ray.shutdown()
    return worker

def stop_worker(worker):
    os.killpg(worker.pid, 15)
    worker.wait(timeout=60)

def kill_node(worker):
    # The machine dies: SIGKILL to every process in the worker's mount namespace (the raylet
    # and its workers are not in the process group of `ray start`).
    try:
        ns = os.readlink(f"/proc/{worker.pid}/ns/mnt")
    except OSError:  # killed already
        return
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") == ns:
                os.kill(int(pid), 9)
        except OSError:
            pass
"""

DRIVER = (
    WORKER
    + """
from ray.cluster_utils import Cluster
from orchestrator.run import main

# One CPU per node and trials of one CPU: two trials at a time, one on each node. The worker has
# its own /tmp/ray: what a trial leaves in its node's session folder never reaches storage.
# Without mount namespaces (not root) both nodes share /tmp/ray: the test then runs but cannot
# catch a trial writing into its node's session folder.
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
if sys.argv[4] == "own-tmp":
    worker = start_worker(cluster.address, ["/tmp/ray"])
else:
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
try:
    code = main([sys.argv[1], "--data-root", sys.argv[2], "--storage", sys.argv[3],
                 "--address", cluster.address])
finally:
    ray.shutdown()
    if sys.argv[4] == "own-tmp":
        stop_worker(worker)
    cluster.shutdown()
sys.exit(code)
"""
)


def can_unshare_mounts() -> bool:
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainables.data import write_tiny_imagenet

    root = tmp_path_factory.mktemp("multinode")
    write_tiny_imagenet(
        root / "data" / "tiny-imagenet-200", n_classes=3, train_per_class=24, val_per_class=6
    )
    (root / "spread.py").write_text(textwrap.dedent(STUDY))
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            str(root / "spread.py"),
            str(root / "data"),
            str(root / "runs"),
            "own-tmp" if can_unshare_mounts() else "shared-tmp",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**_env(), "ARCHSWEEP_CACHE": str(root / "cache")},
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return root / "runs" / "spread"


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_trials_spread_over_both_nodes_and_outputs_reach_storage(two_node_run: Path) -> None:
    study = json.loads((two_node_run / "study.json").read_text())
    trials = study["stages"][0]["trials"]
    assert [t["status"] for t in trials] == ["completed"] * 4
    nodes = {a["node"] for t in trials for a in t["attempts"]}
    assert len(nodes) == 2, f"trials ran on {nodes}, expected both nodes"
    for t in trials:
        folder = two_node_run / t["trial_dir"]
        events = list(folder.glob("events.out.tfevents.*"))
        assert events, f"{t['label']} (node {t['attempts']}) has no TensorBoard file in storage"
        assert sorted(p.name for p in folder.glob("checkpoint_*")), f"{t['label']}: no checkpoint"
        assert (two_node_run / t["best_checkpoint"] / "checkpoint.pt").is_file()


def test_event_files_hold_every_epoch(two_node_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    study = json.loads((two_node_run / "study.json").read_text())
    for t in study["stages"][0]["trials"]:
        acc = EventAccumulator(str(two_node_run / t["trial_dir"]))
        acc.Reload()
        steps = [e.step for e in acc.Scalars("val_acc")]
        assert steps == [1, 2], f"{t['label']}: val_acc steps {steps}"


LOSS_DRIVER = (
    WORKER
    + """
import json, threading
from ray.cluster_utils import Cluster
from orchestrator.run import main

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
head_id = cluster.head_node.node_id[:12]
own_tmp = sys.argv[4] == "own-tmp"
if own_tmp:
    # A worker as on another machine (its own /tmp/ray), lost the hard way: every process of
    # the node SIGKILLed at once, as when the machine dies.
    worker = start_worker(cluster.address, ["/tmp/ray"])
    lose = lambda: kill_node(worker)
else:
    node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    lose = lambda: cluster.remove_node(node)
runs = Path(sys.argv[3])
killed = {}

def kill_worker_mid_trial():
    # Once a trial on the worker has reported epoch 2 (and its checkpoint), the node dies.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for result in runs.glob("*/*/*/result.json"):
            rows = [json.loads(l) for l in result.read_text().splitlines() if l.strip()]
            if rows and rows[-1].get("node") not in (None, head_id) and rows[-1]["epoch"] >= 2:
                killed["trial"] = result.parent.name
                killed["epoch"] = rows[-1]["epoch"]
                lose()
                return
        time.sleep(0.1)

threading.Thread(target=kill_worker_mid_trial, daemon=True).start()
try:
    code = main([sys.argv[1], "--data-root", sys.argv[2], "--storage", sys.argv[3],
                 "--address", cluster.address])
finally:
    ray.shutdown()
    if own_tmp:
        kill_node(worker)  # gone already, or the study ended before the worker was lost
    cluster.shutdown()
(runs / "killed.json").write_text(json.dumps(killed))
sys.exit(code)
"""
)


def test_node_loss_resumes_the_trial_on_the_other_node(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainables.data import write_tiny_imagenet

    write_tiny_imagenet(
        tmp_path / "data" / "tiny-imagenet-200", n_classes=3, train_per_class=24, val_per_class=6
    )
    study = STUDY.replace('"epochs": 2', '"epochs": 6').replace(
        '["relu", "elu", "gelu", "silu"]', '["relu", "elu"]'
    )
    (tmp_path / "spread.py").write_text(textwrap.dedent(study))
    runs = tmp_path / "runs"
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            LOSS_DRIVER,
            str(tmp_path / "spread.py"),
            str(tmp_path / "data"),
            str(runs),
            "own-tmp" if can_unshare_mounts() else "shared-tmp",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**_env(), "ARCHSWEEP_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    killed = json.loads((runs / "killed.json").read_text())
    assert killed, "no trial ran on the worker node before the study ended"
    trials = json.loads((runs / "spread" / "study.json").read_text())["stages"][0]["trials"]
    assert [t["status"] for t in trials] == ["completed", "completed"]
    (retried,) = [t for t in trials if t["trial_dir"].endswith(killed["trial"])]
    nodes = [a["node"] for a in retried["attempts"]]
    assert len(nodes) == 2 and nodes[0] != nodes[1], retried["attempts"]
    assert "2 attempts" in retried["reason"]
    # Resumed from its last checkpoint: every epoch once in the record, none lost in TensorBoard.
    rows = [
        json.loads(line)
        for line in (runs / "spread" / retried["trial_dir"] / "result.json")
        .read_text()
        .splitlines()
    ]
    assert sorted({r["epoch"] for r in rows}) == [1, 2, 3, 4, 5, 6]
    assert retried["attempts"][1]["from_epoch"] > 1
    acc = EventAccumulator(str(runs / "spread" / retried["trial_dir"]))
    acc.Reload()
    assert sorted({e.step for e in acc.Scalars("val_acc")}) == [1, 2, 3, 4, 5, 6]


BLIND_DRIVER = (
    WORKER
    + """
from ray.cluster_utils import Cluster
from orchestrator.run import main

study, data, storage = sys.argv[1:4]
Path(storage).mkdir(parents=True, exist_ok=True)
# The head runs no trial; the worker sees an empty folder where the storage is, as a worker that
# never mounted the run's NFS share would.
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
worker = start_worker(cluster.address, [storage])
try:
    code = main([study, "--data-root", data, "--storage", storage, "--address", cluster.address])
finally:
    ray.shutdown()
    stop_worker(worker)
    cluster.shutdown()
sys.exit(code)
"""
)


@pytest.mark.skipif(not can_unshare_mounts(), reason="needs `unshare --mount` (root)")
def test_storage_a_worker_cannot_see_stops_the_study_before_training(tmp_path: Path) -> None:
    from trainables.data import write_tiny_imagenet

    write_tiny_imagenet(
        tmp_path / "data" / "tiny-imagenet-200", n_classes=3, train_per_class=24, val_per_class=6
    )
    (tmp_path / "blind.py").write_text(textwrap.dedent(STUDY))
    runs = tmp_path / "runs"
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            BLIND_DRIVER,
            str(tmp_path / "blind.py"),
            str(tmp_path / "data"),
            str(runs),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**_env(), "ARCHSWEEP_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"storage {runs / 'spread'} is not visible from 1 of 2 node(s)" in res.stderr
    assert "s3://BUCKET/runs" in res.stderr and "NFS" in res.stderr
    # Refused before anything trained, and the run directory is free for the rerun.
    assert not list((runs / "spread").glob("acts/1-*"))
    assert not (runs / "spread" / ".archsweep.lock").exists()
