"""Model-family registry: family name -> (frozen dataclass config, builder).

A trial's model keys arrive as one flat dict ``{"model": "<family>", **fields}`` (from a study file,
JSON or Ray Tune). :func:`parse_config` turns it into the family's frozen dataclass, rejecting
unknown fields by name; lists become tuples because JSON and Ray have no tuples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .layers import get_act

__all__ = [
    "Family",
    "build_model",
    "count_parameters",
    "family_fields",
    "get_family",
    "list_encoder_families",
    "list_families",
    "parse_config",
    "register_family",
    "resolve_config",
]


@dataclasses.dataclass(frozen=True)
class Family:
    """One registered model family."""

    name: str
    config_cls: type
    builder: Callable[[Any], nn.Module]
    encoder: bool = False  # built models expose forward_features / feature_channels / strides


_FAMILIES: dict[str, Family] = {}


def register_family(
    name: str,
    config_cls: type,
    builder: Callable[[Any], nn.Module],
    *,
    encoder: bool = False,
) -> None:
    """Register a model family.

    Args:
        name: the value of ``model_cfg["model"]``.
        config_cls: a frozen dataclass whose fields are the family's config keys.
        builder: ``builder(config) -> nn.Module``.
        encoder: True when built models can serve as a U-Net encoder (``forward_features``).

    Raises:
        ValueError: ``name`` is already registered (torchvision ``_api.py`` does the same).
        TypeError: ``config_cls`` is not a dataclass.
    """
    if name in _FAMILIES:
        raise ValueError(f"model family {name!r} is already registered")
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls for {name!r} must be a dataclass, got {config_cls!r}")
    _FAMILIES[name] = Family(name, config_cls, builder, encoder)


def list_families() -> list[str]:
    """Names of all registered model families, sorted."""
    return sorted(_FAMILIES)


def list_encoder_families() -> list[str]:
    """Families whose models can be the encoder of ``unet_backbone``."""
    return sorted(name for name, fam in _FAMILIES.items() if fam.encoder)


def get_family(name: str) -> Family:
    """The registered :class:`Family` ``name``; unknown names list the valid ones."""
    if name not in _FAMILIES:
        raise ValueError(
            f"unknown model family {name!r}; valid families: {', '.join(list_families())}"
        )
    return _FAMILIES[name]


def family_fields(name: str) -> tuple[str, ...]:
    """Valid config keys of family ``name`` (besides ``"model"``)."""
    return tuple(f.name for f in dataclasses.fields(get_family(name).config_cls))


def _to_plain(value: Any) -> Any:
    """JSON / Ray values -> config values: lists become tuples (recursively); dicts stay dicts."""
    if isinstance(value, list | tuple):
        return tuple(_to_plain(v) for v in value)
    if isinstance(value, Mapping):
        return dict(value)  # a nested model config (unet_backbone's encoder): parsed when built
    return value


def parse_config(model_cfg: Mapping[str, Any]) -> tuple[Family, Any]:
    """Validate ``{"model": family, **fields}`` and return ``(family, config dataclass)``.

    Raises:
        ValueError: missing/unknown family, unknown field (naming it and listing the valid
            fields), or an invalid field value (raised by the config's ``__post_init__``).
    """
    if not isinstance(model_cfg, Mapping):
        raise ValueError(f"model_cfg must be a dict, got {type(model_cfg).__name__}")
    if "model" not in model_cfg:
        raise ValueError(
            "model_cfg needs a 'model' key naming the family; valid families: "
            + ", ".join(list_families())
        )
    family = get_family(model_cfg["model"])
    fields = family_fields(family.name)
    kwargs = {}
    for key, value in model_cfg.items():
        if key == "model":
            continue
        if key not in fields:
            raise ValueError(
                f"unknown field {key!r} for model family {family.name!r}; "
                f"valid fields: {', '.join(fields)}"
            )
        kwargs[key] = _to_plain(value)
    return family, family.config_cls(**kwargs)


def resolve_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``model_cfg`` with every default filled in (what to save next to the results)."""
    family, cfg = parse_config(model_cfg)
    return {"model": family.name, **dataclasses.asdict(cfg)}


def build_model(model_cfg: Mapping[str, Any]) -> nn.Module:
    """Build a model from ``{"model": "<family>", **fields}``.

    Args:
        model_cfg: family name under ``"model"`` plus any of ``family_fields(name)``; omitted
            fields take the family's defaults, lists are accepted where tuples are declared.

    Returns:
        The built ``nn.Module`` (on the current default device).

    Raises:
        ValueError: unknown family / field / choice; the message lists the valid names.
    """
    family, cfg = parse_config(model_cfg)
    return family.builder(cfg)


def count_parameters(model_cfg: Mapping[str, Any]) -> int:
    """Number of parameters of ``build_model(model_cfg)``, built on the meta device.

    The meta device records shapes only, so a 100M-parameter config costs no weight memory.
    """
    with torch.device("meta"):
        model = build_model(model_cfg)
    return sum(p.numel() for p in model.parameters())


# --- validation helpers shared by the family configs -----------------------------------------


def check_choice(field: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices`` (listed in the message)."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {field} {value!r}; valid values: {', '.join(choices)}")


def check_positive_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")


def check_positive_ints(field: str, values: Any, *, min_len: int = 1) -> None:
    if not isinstance(values, tuple) or len(values) < min_len:
        raise ValueError(f"{field} must be a list of at least {min_len} integers, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{field} must contain positive integers, got {values!r}")


def check_prob(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{field} must be a probability in [0, 1), got {value!r}")


def check_activation(value: Any) -> None:
    get_act(value)  # raises ValueError listing the valid activations
