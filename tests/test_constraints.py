"""Course constraints: each rule present / absent, messages naming value and limit, no weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables.models import VALID_RULES, Violation, check_constraints, count_parameters
from trainables.models.unet import UNET_BUDGET_CONFIG

RESNET18 = {"model": "resnet", "num_classes": 10}  # 11.17M, 512 channels, 8 blocks, width 64
STRICT_OK = {  # the stricter course variant, feasible
    "model": "resnet",
    "channels": [64, 128, 256],
    "blocks": [2, 2, 1],
    "maxpool_after_first_block": True,
    "dropout": 0.2,
    "activation": "elu",
}
STRICT_RULES = {
    "max_params": 5e6,
    "max_channels": 256,
    "max_residual_blocks": 5,
    "first_layer_widths": [64, 128],
    "maxpool_after_first_block": True,
    "dropout_range": [0.1, 0.3],
    "activations": ["relu", "leaky_relu", "elu", "gelu"],
}


def one(cfg: dict, rule: str, value) -> list[Violation]:
    found = check_constraints(cfg, {rule: value})
    assert all(v.rule == rule for v in found)
    return found


def test_strict_variant_feasible_and_resnet18_not() -> None:
    assert check_constraints(STRICT_OK, STRICT_RULES) == []
    rules = {v.rule for v in check_constraints(RESNET18, STRICT_RULES)}
    assert rules == {
        "max_params",
        "max_channels",
        "max_residual_blocks",
        "maxpool_after_first_block",
        "dropout_range",
    }


def test_max_params() -> None:
    (v,) = one(RESNET18, "max_params", 5_000_000)
    assert "11.17M" in v.message and "11,173,962" in v.message and "max 5.00M" in v.message
    assert one(RESNET18, "max_params", 12_000_000) == []


def test_max_channels() -> None:
    (v,) = one(RESNET18, "max_channels", 256)
    assert v.message.startswith("512 channels > max 256")
    assert one({**RESNET18, "channels": [32, 64, 128, 256]}, "max_channels", 256) == []
    # Hidden Linear widths count, the classifier output (class count) does not.
    (v,) = one({"model": "fc", "hidden": [1024, 256], "num_classes": 1000}, "max_channels", 512)
    assert "1024 channels > max 512" in v.message
    assert one({"model": "fc", "hidden": [256], "num_classes": 1000}, "max_channels", 512) == []


def test_max_residual_blocks() -> None:
    (v,) = one(RESNET18, "max_residual_blocks", 5)
    assert v.message == "8 residual blocks > max 5"
    assert one({**RESNET18, "blocks": [1, 1, 1, 1]}, "max_residual_blocks", 5) == []
    assert one({"model": "depth_cnn", "n_conv": 12}, "max_residual_blocks", 5) == []  # plain


def test_first_layer_widths() -> None:
    cfg = {**RESNET18, "channels": [32, 64, 128, 256]}
    (v,) = one(cfg, "first_layer_widths", [64, 128])
    assert "first layer width 32" in v.message and "[64, 128]" in v.message
    assert one({**cfg, "stem_channels": 128}, "first_layer_widths", [64, 128]) == []


def test_maxpool_after_first_block() -> None:
    (v,) = one(RESNET18, "maxpool_after_first_block", True)
    assert "stages.0.0" in v.message and "MaxPool2d" in v.message
    assert (
        one({**RESNET18, "maxpool_after_first_block": True}, "maxpool_after_first_block", True)
        == []
    )
    assert one(RESNET18, "maxpool_after_first_block", False) == []
    (v,) = one({"model": "simple_cnn"}, "maxpool_after_first_block", True)
    assert "no residual block" in v.message


def test_dropout_range() -> None:
    (v,) = one(RESNET18, "dropout_range", [0.1, 0.3])
    assert "dropout 0 in 8 of 8 residual blocks" in v.message and "[0.1, 0.3]" in v.message
    (v,) = one({**RESNET18, "dropout": 0.5}, "dropout_range", [0.1, 0.3])
    assert "dropout 0.5" in v.message
    assert one({**RESNET18, "dropout": 0.1}, "dropout_range", [0.1, 0.3]) == []


def test_param_budget() -> None:
    budget = {"target": 2.5e6, "tolerance": 0.10}
    (v,) = one({"model": "unet", "base_channels": 32}, "param_budget", budget)
    assert "7.76M" in v.message and "2.50M ± 10%" in v.message and "2.25M-2.75M" in v.message
    assert one(UNET_BUDGET_CONFIG, "param_budget", budget) == []


def test_activations() -> None:
    allowed = ["relu", "leaky_relu", "elu", "gelu"]
    (v,) = one({**RESNET18, "activation": "swish"}, "activations", allowed)
    assert "'swish'" in v.message and "relu" in v.message and "gelu" in v.message
    assert one({**RESNET18, "activation": "GELU"}, "activations", allowed) == []
    # The default activation counts, and so does a nested encoder's.
    assert one(RESNET18, "activations", ["gelu"]) != []
    nested = {"model": "unet_backbone", "encoder": {"model": "resnet", "activation": "mish"}}
    (v,) = one(nested, "activations", allowed)
    assert "'mish'" in v.message


def test_unknown_rule_and_none_rule() -> None:
    with pytest.raises(ValueError) as err:
        check_constraints(RESNET18, {"max_param": 5})
    assert "max_param" in str(err.value)
    assert all(rule in str(err.value) for rule in VALID_RULES)
    assert check_constraints(RESNET18, {"max_params": None}) == []
    with pytest.raises(ValueError, match="dropout_range needs"):
        check_constraints(RESNET18, {"dropout_range": 0.1})


def test_check_constraints_allocates_no_weights() -> None:
    huge = {"model": "resnet", "channels": [256, 512, 1024, 2048], "num_classes": 1000}
    materialized: list[int] = []

    def hook(module: nn.Module, name: str, param: torch.Tensor | None) -> None:
        if param is not None and param.device.type != "meta":
            materialized.append(param.numel())

    handle = nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        n = count_parameters(huge)
        violations = check_constraints(huge, {"max_params": 5e6, "max_channels": 512})
    finally:
        handle.remove()
    assert n > 100_000_000
    assert {v.rule for v in violations} == {"max_params", "max_channels"}
    assert materialized == []
