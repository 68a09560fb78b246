"""Two Ray nodes on this machine: trial outputs reach the run's storage from either node.

Wave 1 tested one node only; on two, a trial on the worker wrote its TensorBoard events into the
driver's staging folder of its own node, never into storage. The cluster runs in a subprocess
(ray.cluster_utils.Cluster: head + worker on 127.0.0.1), apart from the suite's shared Ray, and
is shut down by its own handle: never a bare `ray stop`.
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

DRIVER = """
import sys
from ray.cluster_utils import Cluster
from orchestrator.run import main

# One CPU per node and trials of one CPU: two trials at a time, one on each node.
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
try:
    code = main([sys.argv[1], "--data-root", sys.argv[2], "--storage", sys.argv[3],
                 "--address", cluster.address])
finally:
    import ray
    ray.shutdown()
    cluster.shutdown()
sys.exit(code)
"""


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainables.data import write_tiny_imagenet

    root = tmp_path_factory.mktemp("multinode")
    write_tiny_imagenet(root / "data" / "tiny-imagenet-200", n_classes=3, train_per_class=24,
                        val_per_class=6)
    (root / "spread.py").write_text(textwrap.dedent(STUDY))
    res = subprocess.run(
        [sys.executable, "-c", DRIVER, str(root / "spread.py"), str(root / "data"),
         str(root / "runs")],
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
