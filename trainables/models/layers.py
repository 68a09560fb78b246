"""Activation factory and the custom layers of the course (section E1).

Every activation returned by :func:`get_act` accepts ``inplace=`` so blocks can call
``act(inplace=True)`` without knowing which activation they got (timm ``create_act.py``).

Custom layers, each with its standard analogue:

- :class:`Swish` ``x * sigmoid(x)``            -- analogue ``nn.SiLU`` (identical function)
- :class:`SqueezeExcite` channel attention     -- analogue: no attention (``nn.Identity``)
- :class:`GatedConv2d` ``conv(x) * sigmoid(gate(x))`` -- analogue ``nn.Conv2d`` (half the params)
- :class:`L2Pool2d` ``sqrt(avg_pool(x**2))``   -- analogues ``nn.AvgPool2d`` / ``nn.MaxPool2d``
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import SqueezeExcitation

__all__ = [
    "GELU",
    "GatedConv2d",
    "L2Pool2d",
    "Sigmoid",
    "SqueezeExcite",
    "Swish",
    "Tanh",
    "act_names",
    "get_act",
]


class Swish(nn.Module):
    """Swish activation ``x * sigmoid(x)`` (Ramachandran et al. 2017, arXiv 1710.05941).

    Mathematically identical to ``nn.SiLU``; kept as an explicit layer for the custom-layer study.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        # `inplace` is accepted and ignored: the backward pass of x * sigmoid(x) needs x itself,
        # so overwriting x in place would corrupt a tensor autograd has saved.
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class GELU(nn.GELU):
    """``nn.GELU`` that accepts (and ignores) ``inplace=`` like the other activations."""

    def __init__(self, inplace: bool = False, approximate: str = "none") -> None:
        super().__init__(approximate=approximate)


class Tanh(nn.Tanh):
    """``nn.Tanh`` that accepts (and ignores) ``inplace=`` (for saturation / gradient studies)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()


class Sigmoid(nn.Sigmoid):
    """``nn.Sigmoid`` that accepts (and ignores) ``inplace=`` (for saturation studies)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "gelu": GELU,
    "silu": nn.SiLU,
    "swish": Swish,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
}


def act_names() -> list[str]:
    """Valid activation names for :func:`get_act` (and every model's ``activation`` field)."""
    return sorted(_ACTIVATIONS)


def get_act(name: str) -> type[nn.Module]:
    """Return the activation class registered under ``name`` (case-insensitive).

    Args:
        name: e.g. ``"relu"``, ``"leaky_relu"``, ``"elu"``, ``"gelu"``, ``"swish"``, ``"silu"``.

    Returns:
        A module class whose constructor accepts ``inplace=``.

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    key = str(name).lower().replace("-", "_")
    if key not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; valid activations: {', '.join(act_names())}"
        )
    return _ACTIVATIONS[key]


class SqueezeExcite(SqueezeExcitation):
    """Squeeze-and-excitation channel attention (Hu et al. 2018, arXiv 1709.01507).

    ``x * sigmoid(fc2(act(fc1(mean_hw(x)))))`` with the two FC layers as 1x1 convolutions: this is
    ``torchvision.ops.SqueezeExcitation`` (same computation, same ``fc1`` / ``fc2`` state_dict
    keys), constructed from a reduction ratio and our activation names' classes.
    Adds ``2 * C * R + R + C`` parameters where ``R = max(1, C // reduction)``.
    """

    def __init__(self, channels: int, reduction: int = 16, act: type[nn.Module] = nn.ReLU) -> None:
        rd_channels = max(1, channels // reduction)
        super().__init__(channels, rd_channels, activation=act)
        self.channels = channels
        self.rd_channels = rd_channels


class GatedConv2d(nn.Module):
    """Gated convolution ``conv(x) * sigmoid(gate(x))`` (Dauphin et al. 2017, arXiv 1612.08083).

    Same output shape as ``nn.Conv2d`` with the same arguments, twice its parameters (a second
    convolution computes the gate). ``padding=None`` means "same" padding for stride 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        # Kept as attributes so receptive_field() treats the gated conv as one layer.
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        self.in_channels = in_channels
        self.out_channels = out_channels
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, bias=bias)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs)
        self.gate = nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.sigmoid(self.gate(x))


class L2Pool2d(nn.Module):
    """L2 pooling ``sqrt(mean over the window of x**2)`` (a power mean with p = 2).

    Lies between average pooling of ``|x|`` (p = 1) and max pooling of ``|x|`` (p = inf).
    No parameters, same output shape as ``nn.AvgPool2d`` with the same arguments.
    """

    def __init__(
        self,
        kernel_size: int = 2,
        stride: int | None = None,
        padding: int = 0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        # d sqrt(u)/du = 1 / (2 sqrt(u)) is infinite at u = 0, which happens for every all-zero
        # window (common after ReLU) and would turn gradients into inf/NaN. eps = 1e-6 caps the
        # gradient at 1 / (2 * 1e-3) = 500 and shifts outputs by at most sqrt(eps) = 1e-3.
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_sq = F.avg_pool2d(x * x, self.kernel_size, self.stride, self.padding)
        return torch.sqrt(mean_sq + self.eps)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"eps={self.eps}"
        )
