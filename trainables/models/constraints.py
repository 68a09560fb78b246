"""Course constraints checked before training (EXPERIMENTS.md: "[...]" brackets).

The model is built on the meta device, so checking a 100M-parameter configuration allocates no
weights; rules inspect the built module tree (layer widths, residual blocks, dropout) or the
resolved config (activations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .registry import parse_config, resolve_config
from .resnet import ResidualBlock

__all__ = ["VALID_RULES", "Violation", "check_constraints"]

VALID_RULES: tuple[str, ...] = (
    "max_params",
    "max_channels",
    "max_residual_blocks",
    "first_layer_widths",
    "maxpool_after_first_block",
    "dropout_range",
    "param_budget",
    "activations",
)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule; ``message`` names the offending value and the limit."""

    rule: str
    message: str


@dataclasses.dataclass
class _Model:
    cfg: Mapping[str, Any]
    module: nn.Module
    params: int


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M ({int(n):,})"


def _number(rule: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"rule {rule} needs a number, got {value!r}")
    return float(value)


def _max_params(m: _Model, limit: Any) -> Iterator[str]:
    if m.params > _number("max_params", limit):
        yield f"{_millions(m.params)} parameters > max {_millions(limit)}"


def _layer_widths(module: nn.Module) -> list[tuple[str, int]]:
    """Output width of every conv and every Linear except the last (its width is the class
    count, set by the data, not by the architecture)."""
    widths: list[tuple[str, int]] = []
    linears: list[tuple[str, int]] = []
    for name, mod in module.named_modules():
        if isinstance(mod, _CONVS):
            widths.append((name, mod.out_channels))
        elif isinstance(mod, nn.Linear):
            linears.append((name, mod.out_features))
    return widths + linears[:-1]


def _max_channels(m: _Model, limit: Any) -> Iterator[str]:
    limit = _number("max_channels", limit)
    over = [(n, w) for n, w in _layer_widths(m.module) if w > limit]
    if over:
        widest = max(w for _, w in over)
        names = ", ".join(n for n, _ in over[:3]) + (" ..." if len(over) > 3 else "")
        yield (
            f"{widest} channels > max {int(limit)} ({len(over)} layers above the limit: {names})"
        )


def _residual_blocks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, b) for n, b in module.named_modules() if isinstance(b, ResidualBlock)]


def _max_residual_blocks(m: _Model, limit: Any) -> Iterator[str]:
    n = len(_residual_blocks(m.module))
    if n > _number("max_residual_blocks", limit):
        yield f"{n} residual blocks > max {int(limit)}"


def _first_layer_widths(m: _Model, allowed: Any) -> Iterator[str]:
    if not isinstance(allowed, list | tuple) or not allowed:
        raise ValueError(f"rule first_layer_widths needs a list of widths, got {allowed!r}")
    first = next(((n, mod) for n, mod in m.module.named_modules() if isinstance(mod, _CONVS)), None)
    if first is None:
        yield f"no convolution, so no first-layer width in the allowed {list(allowed)}"
    elif first[1].out_channels not in allowed:
        yield (
            f"first layer width {first[1].out_channels} ({first[0]}) not in allowed {list(allowed)}"
        )


def _maxpool_after_first_block(m: _Model, required: Any) -> Iterator[str]:
    if not isinstance(required, bool):
        raise ValueError(f"rule maxpool_after_first_block needs true/false, got {required!r}")
    if not required:
        return
    modules = list(m.module.named_modules())
    index = next((i for i, (_, mod) in enumerate(modules) if isinstance(mod, ResidualBlock)), None)
    if index is None:
        yield "no residual block, so no MaxPool2d right after the first one (required)"
        return
    block_name = modules[index][0]
    # Module registration order follows nn.Sequential order: skip the block's own submodules.
    after = next(
        ((n, mod) for n, mod in modules[index + 1 :] if not n.startswith(block_name + ".")), None
    )
    if after is None or not isinstance(after[1], nn.MaxPool2d):
        what = "nothing" if after is None else f"{after[0]} ({type(after[1]).__name__})"
        yield (
            f"first residual block {block_name} is followed by {what}, not by the required "
            "MaxPool2d"
        )


def _dropout_range(m: _Model, bounds: Any) -> Iterator[str]:
    if not isinstance(bounds, list | tuple) or len(bounds) != 2:
        raise ValueError(f"rule dropout_range needs [lo, hi], got {bounds!r}")
    lo, hi = (_number("dropout_range", b) for b in bounds)
    bad = []
    blocks = _residual_blocks(m.module)
    for name, block in blocks:
        ps = [d.p for d in block.modules() if isinstance(d, _DROPOUTS)]
        p = max(ps) if ps else 0.0
        if not lo <= p <= hi:
            bad.append((name, p))
    if bad:
        values = sorted({p for _, p in bad})
        yield (
            f"dropout {', '.join(f'{p:g}' for p in values)} in {len(bad)} of {len(blocks)} "
            f"residual blocks outside the required [{lo:g}, {hi:g}] (first: {bad[0][0]})"
        )


def _param_budget(m: _Model, budget: Any) -> Iterator[str]:
    if not isinstance(budget, Mapping) or set(budget) != {"target", "tolerance"}:
        raise ValueError(f"rule param_budget needs {{'target': N, 'tolerance': f}}, got {budget!r}")
    target = _number("param_budget", budget["target"])
    tol = _number("param_budget", budget["tolerance"])
    lo, hi = target * (1 - tol), target * (1 + tol)
    if not lo <= m.params <= hi:
        yield (
            f"{_millions(m.params)} parameters outside the budget {target / 1e6:.2f}M "
            f"± {tol:.0%} ({lo / 1e6:.2f}M-{hi / 1e6:.2f}M)"
        )


def _activation_names(cfg: Any) -> Iterator[str]:
    """Every ``activation`` value in a resolved config, nested encoder configs included."""
    if isinstance(cfg, Mapping):
        if "model" in cfg:
            cfg = resolve_config(cfg)
        for key, value in cfg.items():
            if key == "activation":
                yield str(value).lower()
            else:
                yield from _activation_names(value)


def _activations(m: _Model, allowed: Any) -> Iterator[str]:
    if not isinstance(allowed, list | tuple) or not allowed:
        raise ValueError(f"rule activations needs a list of names, got {allowed!r}")
    allowed_names = [str(a).lower() for a in allowed]
    for name in dict.fromkeys(_activation_names(m.cfg)):
        if name not in allowed_names:
            yield f"activation {name!r} not in allowed {allowed_names}"


_CHECKS: dict[str, Callable[[_Model, Any], Iterator[str]]] = {
    "max_params": _max_params,
    "max_channels": _max_channels,
    "max_residual_blocks": _max_residual_blocks,
    "first_layer_widths": _first_layer_widths,
    "maxpool_after_first_block": _maxpool_after_first_block,
    "dropout_range": _dropout_range,
    "param_budget": _param_budget,
    "activations": _activations,
}


def check_constraints(model_cfg: Mapping[str, Any], rules: Mapping[str, Any]) -> list[Violation]:
    """Check a model config against course rules without allocating weights.

    Args:
        model_cfg: ``{"model": family, **fields}`` as for ``build_model``.
        rules: any of ``VALID_RULES``; a rule whose value is None is skipped.
            ``max_params``: int; ``max_channels``: widest conv / hidden Linear;
            ``max_residual_blocks``: int; ``first_layer_widths``: allowed widths of the first
            conv; ``maxpool_after_first_block``: bool; ``dropout_range``: [lo, hi] required in
            every residual block; ``param_budget``: {"target": N, "tolerance": f};
            ``activations``: allowed activation names.

    Returns:
        One :class:`Violation` per broken rule (empty when the config is feasible).

    Raises:
        ValueError: unknown rule (listing ``VALID_RULES``), malformed rule value, or an invalid
            model config.
    """
    unknown = sorted(set(rules) - set(VALID_RULES))
    if unknown:
        raise ValueError(
            f"unknown constraint rule(s) {unknown}; valid rules: {', '.join(VALID_RULES)}"
        )
    family, cfg = parse_config(model_cfg)
    with torch.device("meta"):
        module = family.builder(cfg)
    model = _Model(model_cfg, module, sum(p.numel() for p in module.parameters()))
    violations = []
    for rule in VALID_RULES:
        if rules.get(rule) is not None:
            violations += [Violation(rule, msg) for msg in _CHECKS[rule](model, rules[rule])]
    return violations
