"""Small networks of sections C, D and E."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables.models import build_model, count_parameters
from trainables.models.layers import GatedConv2d, L2Pool2d, SqueezeExcite
from trainables.models.resnet import BasicBlock, PlainBlock, ResidualBlock
from trainables.models.small import KERNELS


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("target", [100_000, 250_000])
def test_kernel_cnn_hits_target_params_within_5_percent(kernel: str, target: int) -> None:
    cfg = {"model": "kernel_cnn", "kernel": kernel, "target_params": target}
    n = count_parameters(cfg)
    assert abs(n - target) <= 0.05 * target, (kernel, n)


def test_kernel_cnn_kernels_and_unreachable_target() -> None:
    model = build_model({"model": "kernel_cnn", "kernel": "1x1+3x3", "width": 8})
    sizes = [m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sizes == [(1, 1), (3, 3)] * 3
    model = build_model({"model": "kernel_cnn", "kernel": "7x7", "width": 8})
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="within 5%"):
        build_model({"model": "kernel_cnn", "target_params": 50})
    with pytest.raises(ValueError, match="target_params must be a positive number"):
        build_model({"model": "kernel_cnn", "target_params": "big"})
    assert count_parameters({"model": "kernel_cnn", "target_params": 2.5e5}) > 0  # JSON float


@pytest.mark.parametrize("n_conv", [2, 4, 6, 8])
@pytest.mark.parametrize("residual", [False, True])
def test_depth_cnn_counts_convs(n_conv: int, residual: bool) -> None:
    model = build_model({"model": "depth_cnn", "n_conv": n_conv, "residual": residual, "width": 8})
    convs3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) == n_conv
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock | PlainBlock)]
    assert len(blocks) == n_conv // 2
    assert all(isinstance(b, ResidualBlock) == residual for b in blocks)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_depth_cnn_without_batch_norm() -> None:
    model = build_model({"model": "depth_cnn", "n_conv": 4, "batch_norm": False, "width": 8})
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fc_layers_and_input_check() -> None:
    cfg = {
        "model": "fc",
        "hidden": [1024, 512, 512, 256],
        "dropout": 0.3,
        "in_channels": 3,
        "image_size": 32,
    }
    model = build_model(cfg)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1024, 512, 512, 256, 10]
    assert linears[0].in_features == 3 * 32 * 32
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 4
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\).*got \(2, 1, 28, 28\)"):
        model(torch.randn(2, 1, 28, 28))
    mnist = {"model": "fc", "in_channels": 1, "image_size": 28}
    assert count_parameters(mnist) == (784 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128) + (
        128 * 10 + 10
    )


@pytest.mark.parametrize(
    ("fields", "layer"),
    [
        ({"conv": "gated"}, GatedConv2d),
        ({"pool": "l2"}, L2Pool2d),
        ({"pool": "avg"}, nn.AvgPool2d),
        ({"attention": "se"}, SqueezeExcite),
    ],
)
def test_simple_cnn_custom_layer_options(fields: dict, layer: type[nn.Module]) -> None:
    model = build_model({"model": "simple_cnn", "channels": [8, 16, 16], **fields})
    assert sum(isinstance(m, layer) for m in model.modules()) == 3
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 10)


def test_simple_cnn_on_mnist_shape() -> None:
    model = build_model({"model": "simple_cnn", "in_channels": 1, "kernel_size": 5})
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_residual_cnn_regularized_variant() -> None:
    model = build_model({"model": "residual_cnn", "dropout": 0.2, "blocks": 2})
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 6
    assert all(isinstance(b.drop, nn.Dropout2d) for b in blocks)
    assert model.stem.conv.kernel_size == (3, 3)
