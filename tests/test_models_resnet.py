"""ResNet family: torchvision parity, published parameter counts, blocks, stems, features."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from trainables.models import build_model, count_parameters, get_act
from trainables.models.resnet import BasicBlock, Bottleneck, ResidualBlock

RESNET18_IMAGENET = {
    "model": "resnet",
    "channels": [64, 128, 256, 512],
    "blocks": [2, 2, 2, 2],
    "block": "basic",
    "stem": "imagenet",
    "num_classes": 1000,
}


def torchvision_to_ours(key: str) -> str:
    """Rename a torchvision ResNet state_dict key to this family's names."""
    if key.startswith("conv1."):
        return "stem.conv." + key.removeprefix("conv1.")
    if key.startswith("bn1."):
        return "stem.bn." + key.removeprefix("bn1.")
    if key.startswith("fc."):
        return "head." + key
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.*)", key)
    assert m, key
    rest = m.group(3).replace("downsample.", "shortcut.")
    return f"stages.{int(m.group(1)) - 1}.{m.group(2)}.{rest}"


def test_resnet18_parameter_count_matches_torchvision() -> None:
    tv = torchvision.models.resnet18(weights=None)
    assert count_parameters(RESNET18_IMAGENET) == sum(p.numel() for p in tv.parameters())
    assert count_parameters(RESNET18_IMAGENET) == 11_689_512


def test_resnet18_outputs_match_torchvision_after_state_dict_copy() -> None:
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    # Non-trivial BN statistics and affine parameters, so the mapping is really exercised.
    for m in tv.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    ours = build_model(RESNET18_IMAGENET)
    state = {torchvision_to_ours(k): v for k, v in tv.state_dict().items()}
    ours.load_state_dict(state, strict=True)
    tv.eval()
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=1e-4, atol=1e-5)


def test_cifar_resnet18_parameter_counts() -> None:
    cfg = {"model": "resnet", "stem": "cifar", "num_classes": 10}
    assert count_parameters(cfg) == 11_173_962
    assert count_parameters({**cfg, "in_channels": 1}) == 11_172_810


@pytest.mark.parametrize(
    ("stem", "extra", "strides"),
    [
        ("cifar", {}, (1, 1, 2)),
        ("imagenet", {}, (2, 4, 8)),
        ("imagenet_nopool", {}, (2, 2, 4)),
        ("cifar", {"maxpool_after_first_block": True}, (1, 2, 4)),
    ],
)
def test_features_match_declared_channels_and_strides(stem: str, extra: dict, strides) -> None:
    model = build_model(
        {"model": "resnet", "channels": [8, 16], "blocks": [2, 1], "stem": stem, **extra}
    )
    assert model.feature_strides == strides
    assert model.feature_channels == (8, 8, 16)
    assert model.feature_names == ("stem", "stage1", "stage2")
    feats = model.forward_features(torch.randn(2, 3, 32, 32))
    assert [f.shape[1] for f in feats] == list(model.feature_channels)
    assert [32 // f.shape[-1] for f in feats] == list(strides)


def test_three_stage_resnet_and_stem_channels() -> None:
    model = build_model(
        {
            "model": "resnet",
            "channels": [64, 128, 256],
            "blocks": 2,
            "stem_channels": 32,
            "num_classes": 5,
        }
    )
    assert len(model.stages) == 3 and [len(s) for s in model.stages] == [2, 2, 2]
    assert model.stem.conv.out_channels == 32
    assert model.stages[0][0].conv1.in_channels == 32
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_block_types() -> None:
    base = {"model": "resnet", "channels": [8, 16], "blocks": [1, 1]}
    bottleneck = build_model({**base, "block": "bottleneck"})
    assert isinstance(bottleneck.stages[0][0], Bottleneck)
    assert bottleneck.feature_channels == (8, 32, 64)  # expansion 4
    assert bottleneck.head.fc.in_features == 64
    wide = build_model({**base, "block": "wide", "width_factor": 3})
    assert wide.stages[1][0].conv1.out_channels == 48 and wide.feature_channels[-1] == 16
    assert count_parameters({**base, "block": "wide"}) > count_parameters(base)


def test_shortcut_projection_only_when_shape_changes() -> None:
    model = build_model({"model": "resnet", "channels": [8, 16], "blocks": [2, 2]})
    assert isinstance(model.stages[0][0].shortcut, nn.Identity)
    proj = model.stages[1][0].shortcut
    assert isinstance(proj[0], nn.Conv2d) and proj[0].kernel_size == (1, 1)
    assert proj[0].stride == (2, 2) and isinstance(proj[1], nn.BatchNorm2d)
    assert isinstance(model.stages[1][1].shortcut, nn.Identity)


def test_dropout_in_every_block_only_when_positive() -> None:
    base = {"model": "resnet", "channels": [8, 16], "blocks": [2, 1]}
    with_drop = build_model({**base, "dropout": 0.2})
    blocks = [m for m in with_drop.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 3
    assert all(isinstance(b.drop, nn.Dropout2d) and b.drop.p == 0.2 for b in blocks)
    no_drop = build_model(base)
    assert not any(isinstance(m, nn.Dropout2d) for m in no_drop.modules())


def test_maxpool_after_first_block() -> None:
    model = build_model(
        {
            "model": "resnet",
            "channels": [8, 16],
            "blocks": [2, 1],
            "maxpool_after_first_block": True,
        }
    )
    stage0 = list(model.stages[0])
    assert isinstance(stage0[0], BasicBlock) and isinstance(stage0[1], nn.MaxPool2d)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_zero_init_residual_makes_blocks_start_as_identity() -> None:
    model = build_model(
        {"model": "resnet", "channels": [8, 8], "blocks": [1, 1], "zero_init_residual": True}
    )
    block = model.stages[0][0]
    assert torch.count_nonzero(block.bn2.weight) == 0
    block.eval()
    x = torch.rand(1, 8, 8, 8)  # non-negative, so the final ReLU is the identity
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_squeeze_excite_attention(block: str) -> None:
    base = {"model": "resnet", "channels": [32, 64], "blocks": [1, 1], "block": block}
    model = build_model({**base, "attention": "se", "se_reduction": 8})
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    width = 1 if block == "basic" else 4
    # Each SE adds 2*C*R + R + C parameters, R = C // 8.
    extra = sum(2 * c * (c // 8) + c // 8 + c for c in (32 * width, 64 * width))
    assert count_parameters({**base, "attention": "se", "se_reduction": 8}) == (
        count_parameters(base) + extra
    )


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu"])
def test_activations(activation: str) -> None:
    model = build_model(
        {"model": "resnet", "channels": [8], "blocks": [1], "activation": activation}
    )
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 10)
    assert any(isinstance(m, get_act(activation)) for m in model.modules())
