"""The course sample solution's reference models (EXPERIMENTS.md section C table, issue 14)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from orchestrator.study import load_study
from trainables.config import model_config, with_defaults
from trainables.models import build_model, count_parameters
from trainables.models.reference import DATA_FACTS, REFERENCE_MODELS, reference

REPO = Path(__file__).resolve().parents[1]

# EXPERIMENTS.md section C, "parameters" column, copied by hand (not computed).
TABLE = {
    "FC_MNIST": 567_434,
    "SimpleCNN": 421_642,
    "ModelWithBasicBlocks (MNIST)": 11_172_810,
    "FC_CIFAR": 9_050_378,
    "ModelWithBasicBlocks (CIFAR)": 11_173_962,
    "ModelWithRegularization": 11_173_962,
    "Bottleneck variant (E.2)": 13_958_986,
}


def test_every_table_row_has_a_reference_model() -> None:
    assert [r.name for r in REFERENCE_MODELS] == list(TABLE)


@pytest.mark.parametrize("name", list(TABLE))
def test_parameter_count_equals_the_table(name: str) -> None:
    assert count_parameters(reference(name).model_config()) == TABLE[name]


def test_simple_cnn_reference_structure() -> None:
    # conv3x3 1->32, ReLU, MaxPool2; conv3x3 32->64, ReLU, MaxPool2; FC 3136->128, ReLU; FC 128->10
    model = build_model(reference("SimpleCNN").model_config())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    assert [(fc.in_features, fc.out_features) for fc in linears] == [(3136, 128), (128, 10)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_fc_head_refuses_another_image_size() -> None:
    model = build_model(reference("SimpleCNN").model_config())
    with pytest.raises(ValueError, match="image_size=28"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="to nothing"):
        build_model({"model": "simple_cnn", "head": "fc", "channels": (8,) * 6, "image_size": 28})
    with pytest.raises(ValueError, match="unknown head 'flat'; valid values: gap, fc"):
        build_model({"model": "simple_cnn", "head": "flat"})


def test_gap_head_still_takes_any_size() -> None:
    model = build_model({"model": "simple_cnn", "channels": (8, 16), "in_channels": 1})
    assert model(torch.randn(2, 1, 28, 28)).shape == model(torch.randn(2, 1, 40, 40)).shape


def test_unknown_reference_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid: FC_MNIST, SimpleCNN"):
        reference("LeNet")


def _stage_model_params(path: Path) -> dict[str, int]:
    """Parameters of every stage's model as the trainable builds it for the stage's data set."""
    study = load_study(path)
    counts = {}
    for stage in study.stages:
        config = with_defaults({**study.base, **stage.config})
        counts[stage.name] = count_parameters(model_config(config, DATA_FACTS[config["dataset"]]))
    return counts


def test_cnn_vs_fc_study_trains_the_reference_models() -> None:
    counts = _stage_model_params(REPO / "search_spaces" / "cnn_vs_fc.py")
    assert counts == {
        "mnist_fc": TABLE["FC_MNIST"],
        "mnist_cnn": TABLE["SimpleCNN"],
        "mnist_resnet18": TABLE["ModelWithBasicBlocks (MNIST)"],
        "cifar_fc": TABLE["FC_CIFAR"],
        "cifar_resnet18": TABLE["ModelWithBasicBlocks (CIFAR)"],
        "cifar_regularized": TABLE["ModelWithRegularization"],
    }
    study = load_study(REPO / "search_spaces" / "cnn_vs_fc.py")
    budgets = {s.name: (s.config["epochs"], s.config["lr"]) for s in study.stages}
    assert budgets["mnist_cnn"] == (5, 1e-3) and budgets["cifar_resnet18"] == (10, 1e-3)
    assert study.stages[-1].config["weight_decay"] > 0  # ModelWithRegularization


def test_blocks_and_layers_e2_is_the_reference_resnet18() -> None:
    study = load_study(REPO / "search_spaces" / "blocks_and_layers.py")
    (stage,) = [s for s in study.stages if s.name == "block_types"]
    blocks = stage.space["block"]["grid_search"]
    base = with_defaults(study.base)
    counts = {
        b: count_parameters(model_config({**base, "block": b}, DATA_FACTS["cifar10"]))
        for b in blocks
    }
    assert counts["basic"] == TABLE["ModelWithBasicBlocks (CIFAR)"]
    assert counts["bottleneck"] == TABLE["Bottleneck variant (E.2)"]


def _reference_table_module():
    """benchmarks/reference_table.py, loaded from its path (benchmarks is not a package)."""
    path = REPO / "benchmarks" / "reference_table.py"
    spec = importlib.util.spec_from_file_location("reference_table", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_reference_table_time_box_stops_after_the_epoch(tmp_path: Path) -> None:
    table = _reference_table_module()
    checkpoints = []
    for epoch in (1, 2):
        folder = tmp_path / f"ckpt{epoch}"
        folder.mkdir()
        (folder / "checkpoint.pt").write_bytes(b"x")
        checkpoints.append(folder)
    session = table.TimeBoxedSession(tmp_path / "trial", deadline=time.monotonic() + 3600)
    session.report({"epoch": 1}, checkpoints[0])  # before the deadline: goes on
    first = session.checkpoint_dir
    session.deadline = time.monotonic() - 1
    with pytest.raises(table.TimeBoxReached):
        session.report({"epoch": 2}, checkpoints[1])
    assert [r["epoch"] for r in session.reports] == [1, 2]
    assert session.checkpoint_dir.is_dir() and not first.exists()  # only the newest is kept

    # Stops early when one more epoch as long as the last would end past the deadline.
    session = table.TimeBoxedSession(tmp_path / "trial2", deadline=time.monotonic() + 50)
    session.last_report_at = time.monotonic() - 100  # the epoch took 100 s
    with pytest.raises(table.TimeBoxReached):
        session.report({"epoch": 1}, None)
