"""Initialization / gradient probes (section F) and receptive fields (section D1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables.models import build_model
from trainables.models.init_gradients import GradientDepthNet, WeightVarianceNet, layer_grad_norms
from trainables.models.receptive_field import receptive_field


def _var(w: torch.Tensor) -> float:
    return float(w.detach().double().var(unbiased=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_variance_net_third_layer_twice_second_and_fourth(seed: int) -> None:
    net = WeightVarianceNet(seed=seed)
    convs = net.convs()
    assert len(convs) == 5
    v2, v3, v4 = (_var(c.weight) for c in convs[1:4])
    assert v3 / v2 == pytest.approx(2.0, rel=1e-5)
    assert v3 / v4 == pytest.approx(2.0, rel=1e-5)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 512, 1, 1)


def test_weight_variance_net_control_and_effect() -> None:
    control = WeightVarianceNet(third_layer_factor=1.0)
    v = [_var(c.weight) for c in control.convs()]
    assert v[2] == pytest.approx(v[1], rel=1e-5)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        spread = WeightVarianceNet()(x).std() / control(x).std()
    assert spread > 1.1  # doubled variance widens the pooled-activation distribution


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gradient_depth_net_first_layer_gradient_smaller(seed: int) -> None:
    torch.manual_seed(seed)
    net = GradientDepthNet()
    kinds = [type(m) for m in net.layers]
    assert len(kinds) >= 6 and kinds[::2] == [nn.Conv2d] * 6 and kinds[1::2] == [nn.ReLU] * 6
    out = net(torch.randn(4, 3, 8, 8))
    assert out.shape == (4, 64, 8, 8)
    out.mean().backward()
    norms = layer_grad_norms(net)
    assert [n for n, _ in norms] == [f"layers.{i}" for i in range(0, 12, 2)]
    assert norms[0][1] < norms[-1][1]


def test_layer_grad_norms_skips_layers_without_grad() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert layer_grad_norms(model) == []
    model(torch.randn(1, 3)).sum().backward()
    assert [n for n, _ in layer_grad_norms(model)] == ["0", "1"]


def _rf(layers: list[nn.Module]) -> list[tuple[int, int]]:
    return [(r.rf, r.jump) for r in receptive_field(nn.Sequential(*layers))]


@pytest.mark.parametrize(
    ("k", "expected"),
    [(3, [3, 5, 7]), (5, [5, 9, 13]), (7, [7, 13, 19])],
)
def test_receptive_field_kxk_stacks(k: int, expected: list[int]) -> None:
    layers = [m for _ in range(3) for m in (nn.Conv2d(4, 4, k, padding=k // 2), nn.ReLU())]
    assert _rf(layers) == [(r, 1) for r in expected]


def test_receptive_field_with_stride_and_pool() -> None:
    # 3x3/1 -> 3x3/2 -> 3x3/1: rf 3, 5, 5 + 2*2 = 9; jump 1, 2, 2.
    layers = [
        nn.Conv2d(1, 1, 3, padding=1),
        nn.Conv2d(1, 1, 3, stride=2, padding=1),
        nn.Conv2d(1, 1, 3, padding=1),
    ]
    assert _rf(layers) == [(3, 1), (5, 2), (9, 2)]
    # conv3 -> maxpool2 -> conv3: rf 3, 4, 4 + 2*2 = 8; jump 1, 2, 2.
    assert _rf([nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)]) == [
        (3, 1),
        (4, 2),
        (8, 2),
    ]
    # dilation 2 makes a 3x3 kernel span 5 pixels.
    assert _rf([nn.Conv2d(1, 1, 3, dilation=2)]) == [(5, 1)]
    first = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1)))[0]
    assert first.start == 0.5  # padding 1 centres the first output on pixel 0


def test_receptive_field_of_models() -> None:
    resnet = build_model({"model": "resnet", "channels": [8, 16], "blocks": [1, 1]})
    layers = receptive_field(resnet)
    # stem 3x3, stage1 two 3x3, stage2 two 3x3 (the first with stride 2); shortcuts skipped.
    assert layers[0].name == "stem.conv"
    assert [(r.rf, r.jump) for r in layers] == [(3, 1), (5, 1), (7, 1), (9, 2), (13, 2)]
    gated = build_model({"model": "simple_cnn", "channels": [4, 4], "conv": "gated"})
    assert [r.kind for r in receptive_field(gated)] == ["GatedConv2d", "MaxPool2d"] * 2
    kernel = build_model({"model": "kernel_cnn", "kernel": "5x5", "width": 4, "n_conv": 2})
    assert [r.rf for r in receptive_field(kernel)] == [5, 6, 14, 16]
