"""Receptive field per layer of a conv/pool stack (EXPERIMENTS.md D1).

Standard recurrences (Araujo et al. 2019, "Computing receptive fields of CNNs", Distill), with
``k_eff = dilation * (kernel - 1) + 1``::

    rf_out   = rf_in + (k_eff - 1) * jump_in
    jump_out = jump_in * stride                    # distance in input pixels between outputs
    start_out = start_in + ((k_eff - 1) / 2 - padding) * jump_in   # centre of the first output

For a model, its leaf conv/pool layers are taken in registration order (the order of
``nn.Sequential``) along the main path: shortcut / downsample branches and squeeze-excitation
layers are skipped (a shortcut only gives a smaller receptive field, and SE's 1x1 convs act on
pooled maps). For residual models the result is the receptive field of the longest path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from torch import nn

from .layers import GatedConv2d, L2Pool2d, SqueezeExcite

__all__ = ["RFLayer", "receptive_field", "rf_layers"]

_RF_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.LPPool2d,
    GatedConv2d,
    L2Pool2d,
)
_SKIP_NAMES = ("shortcut", "downsample")


@dataclasses.dataclass(frozen=True)
class RFLayer:
    """Receptive field after one layer (square kernels; first spatial dimension)."""

    name: str
    kind: str
    kernel: int
    stride: int
    padding: int
    dilation: int
    rf: int  # receptive field size in input pixels
    jump: int  # cumulative stride: input pixels between neighbouring outputs
    start: float  # input coordinate of the centre of the first output's field


def _first(v: int | tuple[int, ...]) -> int:
    return int(v[0] if isinstance(v, tuple) else v)


def _default_skip(name: str, module: nn.Module) -> bool:
    return isinstance(module, SqueezeExcite) or any(part in _SKIP_NAMES for part in name.split("."))


def rf_layers(
    model: nn.Module, skip: Callable[[str, nn.Module], bool] = _default_skip
) -> list[tuple[str, nn.Module]]:
    """The conv/pool layers of ``model`` in order, each composite layer (GatedConv2d) once."""
    layers: list[tuple[str, nn.Module]] = []
    skipped: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in skipped):
            continue
        if name and skip(name, m):
            skipped.append(name)
            continue
        if isinstance(m, _RF_TYPES):
            layers.append((name, m))
            skipped.append(name)  # don't descend: GatedConv2d's inner convs are one layer
    return layers


def receptive_field(
    model: nn.Module | Iterable[tuple[str, nn.Module]],
    skip: Callable[[str, nn.Module], bool] = _default_skip,
) -> list[RFLayer]:
    """Receptive field, jump and start after every conv/pool layer of ``model``.

    Args:
        model: an ``nn.Sequential``-like stack or any model (its conv/pool layers are walked in
            order, see the module docstring), or an iterable of ``(name, layer)`` pairs.
        skip: ``skip(name, module)`` -> True to leave a branch out (default: shortcuts, SE).

    Returns:
        One :class:`RFLayer` per conv/pool layer, input side first.
    """
    layers = rf_layers(model, skip) if isinstance(model, nn.Module) else list(model)
    rf, jump, start = 1, 1, 0.5
    out = []
    for name, m in layers:
        k = _first(m.kernel_size)
        s = _first(m.stride) if m.stride is not None else k
        p = _first(getattr(m, "padding", 0))
        d = _first(getattr(m, "dilation", 1))
        k_eff = d * (k - 1) + 1
        rf = rf + (k_eff - 1) * jump
        start = start + ((k_eff - 1) / 2 - p) * jump
        jump = jump * s
        out.append(RFLayer(name, type(m).__name__, k, s, p, d, rf, jump, start))
    return out
