"""Custom layers (section E1): reference computations and their standard analogues."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import SqueezeExcitation

from trainables.models.layers import (
    GatedConv2d,
    L2Pool2d,
    SqueezeExcite,
    Swish,
    act_names,
    get_act,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_swish_reference_and_silu() -> None:
    x = torch.randn(2, 3, 5, 5)
    swish = Swish(inplace=True)
    x_copy = x.clone()
    out = swish(x)
    torch.testing.assert_close(out, x_copy * (1 / (1 + torch.exp(-x_copy))))
    torch.testing.assert_close(out, nn.SiLU()(x_copy))
    torch.testing.assert_close(x, x_copy)  # inplace=True is ignored: the input is untouched
    assert out.shape == nn.SiLU()(x).shape and n_params(swish) == n_params(nn.SiLU()) == 0


def test_swish_gradient_matches_silu() -> None:
    x1 = torch.randn(10, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    Swish()(x1).sum().backward()
    F.silu(x2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("name", act_names())
def test_every_activation_accepts_inplace(name: str) -> None:
    act = get_act(name)(inplace=True)
    x = torch.randn(3, 4)
    assert act(x.clone()).shape == x.shape


def test_get_act_unknown_lists_valid_names() -> None:
    with pytest.raises(ValueError) as err:
        get_act("relu7")
    assert "relu7" in str(err.value)
    for name in ("relu", "leaky_relu", "elu", "gelu", "swish", "silu"):
        assert name in str(err.value)
    assert get_act("LEAKY_RELU") is nn.LeakyReLU and get_act("leaky-relu") is nn.LeakyReLU


def test_squeeze_excite_reference() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(32, reduction=4)
    x = torch.randn(2, 32, 6, 6)
    squeezed = x.mean(dim=(2, 3))  # (N, C)
    hidden = F.relu(squeezed @ se.fc1.weight.view(8, 32).T + se.fc1.bias)
    gate = torch.sigmoid(hidden @ se.fc2.weight.view(32, 8).T + se.fc2.bias)
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])
    # Analogue: no attention. Same shape; 2*C*R + R + C extra parameters.
    assert se(x).shape == nn.Identity()(x).shape
    assert n_params(se) == 2 * 32 * 8 + 8 + 32


def test_gated_conv_reference_and_conv2d() -> None:
    torch.manual_seed(0)
    gated = GatedConv2d(4, 6, kernel_size=3, stride=2)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    x = torch.randn(2, 4, 9, 9)
    ref = F.conv2d(x, gated.conv.weight, gated.conv.bias, stride=2, padding=1) * torch.sigmoid(
        F.conv2d(x, gated.gate.weight, gated.gate.bias, stride=2, padding=1)
    )
    torch.testing.assert_close(gated(x), ref)
    assert gated(x).shape == conv(x).shape
    assert n_params(gated) == 2 * n_params(conv)


def test_l2pool_reference_and_standard_pools() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    pool = L2Pool2d(2)
    windows = F.unfold(x, kernel_size=2, stride=2).view(2, 3, 4, 16)  # (N, C, k*k, L)
    ref = torch.sqrt(windows.pow(2).mean(dim=2) + pool.eps).view(2, 3, 4, 4)
    out = pool(x)
    torch.testing.assert_close(out, ref)
    avg, mx = nn.AvgPool2d(2)(x.abs()), nn.MaxPool2d(2)(x.abs())
    assert out.shape == avg.shape == mx.shape
    # Power means: mean|x| <= sqrt(mean x^2) <= max|x| (eps shifts the value by <= sqrt(eps)).
    assert (avg <= out + 1e-6).all() and (out <= mx + pool.eps**0.5).all()
    # torch's LPPool2d sums instead of averaging: lp = k * l2 (without eps).
    torch.testing.assert_close(F.lp_pool2d(x, 2, 2), 2 * torch.sqrt(out**2 - pool.eps))
    assert n_params(pool) == n_params(nn.AvgPool2d(2)) == 0


def test_l2pool_gradient_finite_at_zero() -> None:
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    L2Pool2d(2)(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    y = torch.zeros(1, 1, 4, 4, requires_grad=True)
    torch.sqrt(F.avg_pool2d(y * y, 2)).sum().backward()  # without eps: NaN
    assert not torch.isfinite(y.grad).all()


def test_squeeze_excite_is_torchvisions() -> None:
    # Ours only adds the (channels, reduction, act) constructor; the computation and the
    # state_dict keys are torchvision.ops.SqueezeExcitation's.
    torch.manual_seed(0)
    ours = SqueezeExcite(32, reduction=4, act=nn.SiLU)
    theirs = SqueezeExcitation(32, 8, activation=nn.SiLU)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 32, 5, 5)
    torch.testing.assert_close(ours(x), theirs(x))
    assert SqueezeExcite(8, reduction=16).rd_channels == 1  # never zero squeeze channels
