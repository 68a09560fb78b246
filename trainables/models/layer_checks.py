"""Checks of the course's custom layers (section E.1) inside a built model, with measured values.

`check_model_layers(model)` finds every Swish, SqueezeExcite, GatedConv2d and L2Pool2d of a
model, runs each instance on a fixed random input and compares it with a reference computation
written out from its own weights (not by calling the layer again), with its standard analogue
(nn.SiLU, no attention, nn.Conv2d, nn.AvgPool2d / max-pool) and with its parameter count.
tests/test_layers.py holds the same facts as unit tests; this module lets a study's report show
them, measured on the layers the study trained (analysis/custom_layers.py).

Each check is a dict {"layer", "instances", "check", "measured", "passed"}; a numeric check takes
the worst value over the model's instances of that layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainables.models.layers import GatedConv2d, L2Pool2d, SqueezeExcite, Swish

# Relative tolerance of a reference comparison: |layer - reference| <= TOL * (1 + max|ref|).
TOL = 1e-5
BATCH, SIDE = 2, 8  # the random input: (BATCH, C, SIDE, SIDE)


def check_model_layers(model: nn.Module, seed: int = 0) -> list[dict[str, Any]]:
    """Every check of every custom layer type in `model` (empty when it has none).

    The model is put in eval mode for the checks and back in its mode afterwards; its weights
    are not changed.
    """
    found: dict[type, list[tuple[str, nn.Module]]] = {}
    for name, module in model.named_modules():
        for cls in CHECKS:
            if type(module) is cls:
                found.setdefault(cls, []).append((name, module))
    was_training = model.training
    model.eval()
    rows: list[dict[str, Any]] = []
    try:
        with torch.no_grad():
            for cls, instances in found.items():
                gen = torch.Generator().manual_seed(seed)
                for check, measure in CHECKS[cls].items():
                    values = [measure(m, gen) for _, m in instances]
                    worst = max(values, key=lambda v: (not v[1], v[2]))
                    rows.append(
                        {
                            "layer": cls.__name__,
                            "instances": [n for n, _ in instances],
                            "check": check,
                            "measured": worst[0],
                            "passed": all(ok for _, ok, _ in values),
                        }
                    )
    finally:
        model.train(was_training)
    return rows


# A measure returns (text of the measured value, passed, badness for picking the worst instance).
Measure = Callable[[nn.Module, torch.Generator], tuple[str, bool, float]]


def _input(channels: int, gen: torch.Generator, like: nn.Module) -> torch.Tensor:
    p = next(like.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    device = p.device if p is not None else torch.device("cpu")
    x = torch.randn(BATCH, channels, SIDE, SIDE, generator=gen, dtype=torch.float32)
    return x.to(device=device, dtype=dtype)


def _close(out: torch.Tensor, ref: torch.Tensor) -> tuple[str, bool, float]:
    err = float((out.float() - ref.float()).abs().max())
    bound = TOL * (1 + float(ref.float().abs().max()))
    return f"max |error| {err:.1e} (tolerance {bound:.0e})", err <= bound, err


def _same_shape(out: torch.Tensor, ref: torch.Tensor, what: str) -> tuple[str, bool, float]:
    a, b = tuple(out.shape), tuple(ref.shape)
    ok = a == b
    return f"{a} {'=' if ok else '≠'} {what} {b}", ok, float(not ok)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- Swish ------------------------------------------------------------------------------------


def _swish_shape(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    return _same_shape(m(x), x, "input")


def _swish_reference(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    return _close(m(x), x * (1 / (1 + torch.exp(-x))))


def _swish_silu(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    return _close(m(x), nn.SiLU()(x))


def _swish_input_kept(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    copy = x.clone()
    m(x)
    change = float((x - copy).abs().max())
    return f"max |change of x| {change:.1e}", change == 0.0, change


# --- SqueezeExcite ----------------------------------------------------------------------------


def _se_gate(m: SqueezeExcite, x: torch.Tensor) -> torch.Tensor:
    """sigmoid(fc2(act(fc1(mean over H, W of x)))), from the layer's weights: (N, C, 1, 1)."""
    s = x.mean(dim=(2, 3), keepdim=True)
    z = F.conv2d(s, m.fc1.weight, m.fc1.bias)
    z = m.activation(z)
    return torch.sigmoid(F.conv2d(z, m.fc2.weight, m.fc2.bias))


def _se_shape(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(m.channels, gen, m)
    return _same_shape(m(x), x, "input")


def _se_reference(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(m.channels, gen, m)
    return _close(m(x), x * _se_gate(m, x))


def _se_gate_range(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(m.channels, gen, m)
    gate = _se_gate(m, x)
    lo, hi = float(gate.min()), float(gate.max())
    ok = lo > 0.0 and hi < 1.0
    return f"gate in [{lo:.3f}, {hi:.3f}], one per (image, channel)", ok, float(not ok)


def _se_params(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    c, r = m.channels, m.rd_channels
    want = 2 * c * r + r + c
    got = _n_params(m)
    return (
        f"{got:,} = 2CR+R+C = {want:,} (C={c}, R={r}); no attention: 0",
        got == want,
        float(got != want),
    )


# --- GatedConv2d ------------------------------------------------------------------------------


def _conv_args(m: GatedConv2d) -> dict[str, Any]:
    return {"stride": m.stride, "padding": m.padding, "dilation": m.dilation}


def _gated_shape(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(m.in_channels, gen, m)
    plain = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, **_conv_args(m))
    plain = plain.to(device=x.device, dtype=x.dtype)
    return _same_shape(m(x), plain(x), "nn.Conv2d's")


def _gated_reference(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(m.in_channels, gen, m)
    conv = F.conv2d(x, m.conv.weight, m.conv.bias, **_conv_args(m))
    gate = F.conv2d(x, m.gate.weight, m.gate.bias, **_conv_args(m))
    return _close(m(x), conv * torch.sigmoid(gate))


def _gated_bounded(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(m.in_channels, gen, m)
    conv = F.conv2d(x, m.conv.weight, m.conv.bias, **_conv_args(m))
    excess = float((m(x).abs() - conv.abs()).max())
    ok = excess <= TOL * (1 + float(conv.abs().max()))
    return f"max(|out| - |conv(x)|) {excess:.1e}", ok, max(excess, 0.0)


def _gated_params(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    plain = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, bias=m.conv.bias is not None)
    got, one = _n_params(m), _n_params(plain)
    return f"{got:,} = 2 × nn.Conv2d's {one:,}", got == 2 * one, float(got != 2 * one)


# --- L2Pool2d ---------------------------------------------------------------------------------


def _l2_windows(m: L2Pool2d, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(N, C, k*k, L) windows of x as the pool sees them, and the output side (h, w)."""
    k, s, p = m.kernel_size, m.stride, m.padding
    cols = F.unfold(x, k, padding=p, stride=s)  # (N, C*k*k, L)
    n, c = x.shape[:2]
    h = (x.shape[2] + 2 * p - k) // s + 1
    w = (x.shape[3] + 2 * p - k) // s + 1
    return cols.view(n, c, k * k, h * w), h, w


def _l2_shape(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    avg = nn.AvgPool2d(m.kernel_size, m.stride, m.padding)(x)
    return _same_shape(m(x), avg, "nn.AvgPool2d's")


def _l2_reference(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    win, h, w = _l2_windows(m, x)
    ref = torch.sqrt((win * win).mean(dim=2) + m.eps).view(*x.shape[:2], h, w)
    return _close(m(x), ref)


def _l2_between(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    x = _input(4, gen, m)
    win, _, _ = _l2_windows(m, x)
    out = m(x).flatten(2)
    mean_abs = win.abs().mean(dim=2)
    max_abs = win.abs().amax(dim=2)
    slack = m.eps**0.5 + TOL  # eps shifts outputs up by at most sqrt(eps)
    ok = (mean_abs <= out + TOL) & (out <= max_abs + slack)
    share = float(ok.float().mean())
    return (
        f"{100 * share:.0f}% of {ok.numel()} outputs (slack sqrt(eps) = {m.eps**0.5:.0e})",
        share == 1.0,
        1.0 - share,
    )


def _l2_params(m: nn.Module, gen: torch.Generator) -> tuple[str, bool, float]:
    got = _n_params(m)
    return f"{got} parameters (nn.AvgPool2d: 0)", got == 0, float(got)


CHECKS: dict[type, dict[str, Measure]] = {
    Swish: {
        "shape preserved": _swish_shape,
        "output = x·σ(x) (reference)": _swish_reference,
        "equals nn.SiLU (standard analogue)": _swish_silu,
        "input left unchanged (inplace ignored)": _swish_input_kept,
    },
    SqueezeExcite: {
        "shape preserved": _se_shape,
        "output = x·σ(fc2(act(fc1(mean_HW x)))) (reference)": _se_reference,
        "gate strictly in (0, 1)": _se_gate_range,
        "parameters vs no attention": _se_params,
    },
    GatedConv2d: {
        "output shape = nn.Conv2d's (standard analogue)": _gated_shape,
        "output = conv(x)·σ(gate(x)) (reference)": _gated_reference,
        "gating only shrinks: |out| ≤ |conv(x)|": _gated_bounded,
        "parameters = 2 × nn.Conv2d's": _gated_params,
    },
    L2Pool2d: {
        "output shape = nn.AvgPool2d's (standard analogue)": _l2_shape,
        "output = √(mean of x² per window + eps) (reference)": _l2_reference,
        "avg|x| ≤ L2 ≤ max|x| per window (power means)": _l2_between,
        "no parameters": _l2_params,
    },
}
