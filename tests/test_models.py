"""Registry-wide tests: every family builds a tiny model that trains (timm tests/test_models.py)."""

from __future__ import annotations

import pytest
import torch

from trainables.models import (
    build_model,
    count_parameters,
    family_fields,
    list_encoder_families,
    list_families,
    register_family,
    resolve_config,
)
from trainables.models.resnet import ResNetConfig, build_resnet

NUM_CLASSES = 7
SIZE = 64

# One tiny config per family; a new family without an entry fails test_every_family_has_tiny_cfg.
TINY: dict[str, dict] = {
    "resnet": {"channels": [8, 16], "blocks": [1, 1]},
    "residual_cnn": {"channels": [8, 16], "blocks": [1, 1], "dropout": 0.1},
    "unet": {"base_channels": 4, "depth": 2},
    "unet_backbone": {"encoder": {"model": "resnet", "channels": [8, 16], "blocks": [1, 1]}},
    "fc": {"hidden": [16, 8], "image_size": SIZE},
    "simple_cnn": {"channels": [8, 16]},
    "depth_cnn": {"n_conv": 4, "width": 8},
    "kernel_cnn": {"width": 4, "n_conv": 2},
}
SEGMENTATION = {"unet", "unet_backbone"}


def tiny_cfg(family: str) -> dict:
    cfg = {"model": family, **TINY[family], "in_channels": 3}
    if family not in SEGMENTATION:
        cfg["num_classes"] = NUM_CLASSES
    return cfg


def test_every_family_has_tiny_cfg() -> None:
    assert sorted(TINY) == list_families()


@pytest.mark.parametrize("family", sorted(TINY))
def test_tiny_forward_backward(family: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg(family))
    assert repr(model)  # print(model) works
    x = torch.randn(2, 3, SIZE, SIZE)
    out = model(x)
    expected = (2, 1, SIZE, SIZE) if family in SEGMENTATION else (2, NUM_CLASSES)
    assert tuple(out.shape) == expected
    assert torch.isfinite(out).all()
    # A random projection, not out.sum(): a plain sum can be invariant to some BN parameters.
    (out * torch.randn_like(out)).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("family", sorted(TINY))
def test_count_parameters_matches_built_model(family: str) -> None:
    cfg = tiny_cfg(family)
    assert count_parameters(cfg) == sum(p.numel() for p in build_model(cfg).parameters())


@pytest.mark.parametrize("family", sorted(TINY))
def test_fields_include_data_filled_keys(family: str) -> None:
    fields = family_fields(family)
    assert "in_channels" in fields
    if family not in SEGMENTATION:
        assert "num_classes" in fields
    assert set(TINY[family]) <= set(fields)


def test_unknown_family_lists_valid_families() -> None:
    with pytest.raises(ValueError, match="unknown model family 'resnet99'") as err:
        build_model({"model": "resnet99"})
    for name in list_families():
        assert name in str(err.value)
    with pytest.raises(ValueError, match="valid families"):
        build_model({"channels": [8]})


def test_unknown_field_names_field_and_lists_valid_fields() -> None:
    with pytest.raises(ValueError, match="unknown field 'chanels'") as err:
        build_model({"model": "resnet", "chanels": [8, 16]})
    assert "channels" in str(err.value) and "zero_init_residual" in str(err.value)


@pytest.mark.parametrize(
    ("cfg", "bad", "valid"),
    [
        ({"model": "resnet", "activation": "relu7"}, "relu7", "leaky_relu"),
        ({"model": "resnet", "block": "basik"}, "basik", "bottleneck"),
        ({"model": "resnet", "stem": "big"}, "big", "imagenet_nopool"),
        ({"model": "resnet", "attention": "cbam"}, "cbam", "se"),
        ({"model": "unet", "up": "nearest"}, "nearest", "bilinear"),
        ({"model": "unet", "down": "avg"}, "avg", "stride"),
        ({"model": "simple_cnn", "pool": "min"}, "min", "l2"),
        ({"model": "kernel_cnn", "kernel": "9x9"}, "9x9", "1x1+3x3"),
        ({"model": "fc", "activation": "Relu9"}, "Relu9", "gelu"),
    ],
)
def test_unknown_choice_lists_valid_names(cfg: dict, bad: str, valid: str) -> None:
    with pytest.raises(ValueError) as err:
        build_model(cfg)
    assert bad in str(err.value) and valid in str(err.value)


@pytest.mark.parametrize(
    "cfg",
    [
        {"model": "resnet", "channels": [8, 16], "blocks": [1]},
        {"model": "resnet", "channels": [8, -16], "blocks": [1, 1]},
        {"model": "resnet", "dropout": 1.5},
        {"model": "fc", "hidden": [16, 0]},
        {"model": "depth_cnn", "n_conv": 3},
        {"model": "simple_cnn", "kernel_size": 4},
    ],
)
def test_invalid_values_raise_value_error(cfg: dict) -> None:
    with pytest.raises(ValueError):
        build_model(cfg)


def test_lists_accepted_and_resolved_as_tuples() -> None:
    resolved = resolve_config({"model": "resnet", "channels": [8, 16], "blocks": [1, 1]})
    assert resolved["channels"] == (8, 16) and resolved["blocks"] == (1, 1)
    assert resolved["stem"] == "cifar" and resolved["model"] == "resnet"


def test_register_family_raises_on_duplicate() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_family("resnet", ResNetConfig, build_resnet)
    with pytest.raises(TypeError):
        register_family("not_a_dataclass", dict, build_resnet)


def test_encoder_families() -> None:
    assert list_encoder_families() == ["residual_cnn", "resnet"]
