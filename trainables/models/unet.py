"""U-Net (EXPERIMENTS.md B2) and the decoder shared with ``unet_backbone`` (B3).

The decoder is built from an encoder's ``feature_channels`` / ``feature_strides`` only
(segmentation_models_pytorch style), so the plain U-Net and the U-Net with a classifier backbone
differ only in their encoder.

Parameter counts of the plain U-Net (in 3, out 1, BatchNorm, bias-free 3x3 convs), checked by
``tests/test_models_unet.py``:

=====================================================  ==========  ==========
config (depth 4)                                       transpose   bilinear
=====================================================  ==========  ==========
base_channels=16 (widths 16-32-64-128-256)              1,942,577   1,812,017
base_channels=32, max_width=128 (32-64-128-128-128)     2,075,105   1,946,081
base_channels=32, max_width=160 (32-64-128-160-160)     2,663,297   2,494,337
base_channels=32, max_width=192 (32-64-128-192-192)     3,370,273   3,155,233
base_channels=32 (widths 32-64-128-256-512)             7,763,041   7,240,801
base_channels=64 (widths 64-128-256-512-1024)          31,037,633  28,948,673
=====================================================  ==========  ==========

The course budget is <= ~2.5M (+-10%, i.e. 2.25M-2.75M) with base 32 or 64: plain base 32 is
3x over, so ``max_width`` caps the doubling; ``base_channels=32, depth=4, max_width=160`` meets
the budget with either upsampling mode (``UNET_BUDGET_CONFIG``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import EncoderDecoderModel
from .layers import get_act
from .registry import (
    check_activation,
    check_choice,
    check_positive_int,
    check_prob,
    register_family,
)

__all__ = [
    "UNET_BUDGET_CONFIG",
    "DoubleConv",
    "UNet",
    "UNetConfig",
    "UNetDecoder",
    "UNetEncoder",
    "UpBlock",
]

UNET_BUDGET_CONFIG: dict[str, object] = {
    "model": "unet",
    "base_channels": 32,
    "depth": 4,
    "max_width": 160,
}
DOWN_MODES = ("maxpool", "stride")
UP_MODES = ("transpose", "bilinear")


def conv_norm_act(
    in_channels: int, out_channels: int, act: type[nn.Module], kernel_size: int = 3, stride: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False
            ),
            bn=nn.BatchNorm2d(out_channels),
            act=act(inplace=True),
        )
    )


class DoubleConv(nn.Module):
    """(conv3x3 -> BN -> act) x 2 with optional Dropout2d between; first conv may have stride 2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        act: type[nn.Module] = nn.ReLU,
        stride: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = conv_norm_act(in_channels, out_channels, act, stride=stride)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv_norm_act(out_channels, out_channels, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.drop(self.conv1(x)))


class UNetEncoder(nn.Module):
    """Contracting path: level 0 = DoubleConv at full resolution, level i halves the resolution
    (MaxPool2d(2) before the DoubleConv, or stride 2 in its first conv) and has ``widths[i]``.

    Same feature interface as the classifiers: ``forward_features`` -> one map per level.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        *,
        down: str = "maxpool",
        act: type[nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("down", down, DOWN_MODES)
        levels: list[nn.Module] = [DoubleConv(in_channels, widths[0], act=act, dropout=dropout)]
        for prev, width in itertools.pairwise(widths):
            if down == "maxpool":
                levels.append(
                    nn.Sequential(
                        OrderedDict(
                            pool=nn.MaxPool2d(2),
                            block=DoubleConv(prev, width, act=act, dropout=dropout),
                        )
                    )
                )
            else:
                levels.append(DoubleConv(prev, width, act=act, stride=2, dropout=dropout))
        self.levels = nn.ModuleList(levels)
        self.feature_channels: tuple[int, ...] = tuple(widths)
        self.feature_strides: tuple[int, ...] = tuple(2**i for i in range(len(widths)))
        self.feature_names: tuple[str, ...] = tuple(f"level{i}" for i in range(len(widths)))

    def feature_modules(self) -> list[nn.Module]:
        return list(self.levels)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class UpBlock(nn.Module):
    """Upsample by ``scale`` to ``out_channels``, concatenate the skip (if any), DoubleConv.

    "transpose": ConvTranspose2d(kernel=stride=scale); "bilinear": bilinear upsampling then a
    1x1 conv (cheaper: ``in*out`` instead of ``scale**2*in*out`` weights). A map whose size still
    differs from the skip's (odd sizes) is interpolated to it.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        up: str = "transpose",
        act: type[nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("up", up, UP_MODES)
        if up == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, scale, scale)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        self.conv = DoubleConv(out_channels + skip_channels, out_channels, act=act, dropout=dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        if skip is not None:
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


@dataclasses.dataclass(frozen=True)
class _Step:
    """One decoder step: from ``in_stride`` up to ``out_stride``, with an optional skip."""

    in_stride: int
    out_stride: int
    skip: int | None  # index into the encoder's feature list


def plan_decoder(feature_strides: Sequence[int]) -> tuple[int, list[_Step]]:
    """Choose the decoder's input and skips from the encoder feature strides.

    The deepest feature is the decoder input; for every smaller stride the *deepest* feature with
    that stride is its skip (shallower ones at the same stride are unused); if the shallowest
    skip is not at stride 1 a last step without a skip upsamples to the input resolution.

    Returns:
        ``(bottom_index, steps)`` with steps ordered deep -> shallow.
    """
    strides = list(feature_strides)
    if any(b < a for a, b in itertools.pairwise(strides)):
        raise ValueError(f"encoder feature strides must not decrease, got {tuple(strides)}")
    bottom = len(strides) - 1
    deepest_at: dict[int, int] = {}
    for i, s in enumerate(strides[:-1]):
        if s < strides[bottom]:
            deepest_at[s] = i
    steps, current = [], strides[bottom]
    for s in sorted(deepest_at, reverse=True):
        steps.append(_Step(current, s, deepest_at[s]))
        current = s
    if current > 1:
        steps.append(_Step(current, 1, None))
    for step in steps:
        if step.in_stride % step.out_stride:
            raise ValueError(
                f"encoder strides {tuple(strides)}: {step.in_stride} is not a multiple of "
                f"{step.out_stride}, so the decoder cannot upsample by an integer factor"
            )
    return bottom, steps


class UNetDecoder(nn.Module):
    """Expanding path built from an encoder's feature channels and strides only.

    Step ``j`` upsamples to ``decoder_channels[j]``, concatenates its skip (passed through a
    1x1 conv + BN + act adapter when the skip's width differs from ``decoder_channels[j]``,
    Identity otherwise) and applies a DoubleConv. A 1x1 conv head gives ``out_channels`` logits.
    ``decoder_channels=None`` uses each skip's own width (a classic U-Net: no adapters) and half
    the previous width (at least 16) for a final skip-less step.
    """

    def __init__(
        self,
        feature_channels: Sequence[int],
        feature_strides: Sequence[int],
        *,
        feature_names: Sequence[str] | None = None,
        decoder_channels: Sequence[int] | None = None,
        out_channels: int = 1,
        up: str = "transpose",
        act: type[nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("up", up, UP_MODES)
        self.feature_channels = tuple(feature_channels)
        self.feature_strides = tuple(feature_strides)
        self.feature_names = tuple(
            feature_names or (f"feature{i}" for i in range(len(feature_channels)))
        )
        self.up_mode = up
        self.bottom, self.steps = plan_decoder(self.feature_strides)
        self.decoder_channels = self._decoder_widths(decoder_channels)
        adapters, blocks = [], []
        in_ch = self.feature_channels[self.bottom]
        for step, width in zip(self.steps, self.decoder_channels, strict=True):
            adapter, block = self._make_step(step, in_ch, width, up, act, dropout)
            adapters.append(adapter)
            blocks.append(block)
            in_ch = width
        self.adapters = nn.ModuleList(adapters)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(in_ch, out_channels, 1)
        self.out_channels = out_channels

    def _decoder_widths(self, decoder_channels: Sequence[int] | None) -> tuple[int, ...]:
        """The given widths (checked: one per step), or each skip's own width / half the last."""
        if decoder_channels is None:
            derived: list[int] = []
            for step in self.steps:
                prev = derived[-1] if derived else self.feature_channels[self.bottom]
                skip_ch = self.feature_channels[step.skip] if step.skip is not None else None
                derived.append(skip_ch if skip_ch is not None else max(prev // 2, 16))
            return tuple(derived)
        widths = tuple(decoder_channels)
        if len(widths) != len(self.steps):
            plan = ", ".join(f"{s.in_stride}->{s.out_stride}" for s in self.steps)
            raise ValueError(
                f"decoder_channels needs {len(self.steps)} entries, one per up step "
                f"(strides {plan}), got {len(widths)}: {widths}"
            )
        return widths

    def _make_step(
        self,
        step: _Step,
        in_ch: int,
        width: int,
        up: str,
        act: type[nn.Module],
        dropout: float,
    ) -> tuple[nn.Module, UpBlock]:
        """(skip adapter, up block) of one step; the adapter maps the skip to ``width``."""
        skip_ch = 0
        adapter: nn.Module = nn.Identity()
        if step.skip is not None:
            skip_ch = width
            if self.feature_channels[step.skip] != width:
                adapter = conv_norm_act(self.feature_channels[step.skip], width, act, 1)
        block = UpBlock(
            in_ch,
            skip_ch,
            width,
            scale=step.in_stride // step.out_stride,
            up=up,
            act=act,
            dropout=dropout,
        )
        return adapter, block

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = features[self.bottom]
        for step, adapter, block in zip(self.steps, self.adapters, self.blocks, strict=True):
            skip = adapter(features[step.skip]) if step.skip is not None else None
            x = block(x, skip)
        return self.head(x)

    def describe(self) -> str:
        """Which encoder feature feeds which skip at which scale, step by step."""
        names, chans, strides = self.feature_names, self.feature_channels, self.feature_strides
        used = {s.skip: j for j, s in enumerate(self.steps) if s.skip is not None}
        lines = ["encoder features (shallow -> deep):"]
        for i, (n, c, s) in enumerate(zip(names, chans, strides, strict=True)):
            if i == self.bottom:
                role = "decoder input (bottom of the U)"
            elif i in used:
                role = f"skip of decoder step {used[i] + 1} (scale 1/{s})"
            else:
                role = "unused (a deeper feature has the same stride)"
            lines.append(f"  {n}: {c} ch, stride {s} -> {role}")
        lines.append(f"decoder steps (up={self.up_mode}):")
        in_ch = chans[self.bottom]
        for j, (step, width) in enumerate(zip(self.steps, self.decoder_channels, strict=True)):
            line = (
                f"  step {j + 1}: stride {step.in_stride} -> {step.out_stride}, "
                f"up x{step.in_stride // step.out_stride} {in_ch}->{width} ch"
            )
            if step.skip is not None:
                skip_c = chans[step.skip]
                adapter = "identity" if skip_c == width else f"1x1 adapter {skip_c}->{width}"
                line += (
                    f", concat skip {names[step.skip]} ({skip_c} ch, stride {strides[step.skip]},"
                    f" {adapter}) -> DoubleConv {2 * width}->{width}"
                )
            else:
                line += f", no skip -> DoubleConv {width}->{width}"
            lines.append(line)
            in_ch = width
        lines.append(f"head: 1x1 conv {in_ch}->{self.out_channels} at stride 1 (logits)")
        return "\n".join(lines)


def check_divisible(x: torch.Tensor, divisor: int, what: str) -> None:
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(
            f"input size {h}x{w} is not divisible by {divisor} ({what}); "
            f"resize or crop to a multiple of {divisor}"
        )


class UNet(EncoderDecoderModel):
    """Plain U-Net: :class:`UNetEncoder` + :class:`UNetDecoder`; outputs logits (no sigmoid).

    Level widths are ``min(base_channels * 2**i, max_width)`` for ``i = 0..depth`` (depth
    downsamplings, depth upsamplings with skips). Input height and width must be divisible by
    ``2**depth``.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 1,
        base_channels: int = 32,
        depth: int = 4,
        max_width: int | None = None,
        down: str = "maxpool",
        up: str = "transpose",
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        act = get_act(activation)
        widths = [base_channels * 2**i for i in range(depth + 1)]
        if max_width is not None:
            widths = [min(w, max_width) for w in widths]
        self.depth = depth
        self.encoder = UNetEncoder(in_channels, widths, down=down, act=act, dropout=dropout)
        self.decoder = UNetDecoder(
            self.encoder.feature_channels,
            self.encoder.feature_strides,
            feature_names=self.encoder.feature_names,
            out_channels=out_channels,
            up=up,
            act=act,
            dropout=dropout,
        )
        self._init_freezing()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_divisible(x, 2**self.depth, f"2**depth, depth={self.depth}")
        return self.decoder(self.encoder.forward_features(x))

    def describe(self) -> str:
        return f"U-Net, depth {self.depth}\n" + self.decoder.describe()


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Config of the ``"unet"`` family.

    Attributes:
        in_channels: image channels (filled in by the trainable).
        out_channels: logit channels (1 for binary masks; apply sigmoid in the loss/metrics).
        base_channels: width of level 0 (32 or 64 in the course); doubles per level.
        depth: number of downsamplings (= upsamplings with skips); 4 in the course.
        max_width: cap on the level widths (None = plain doubling); 160 fits the 2.5M budget.
        down: "maxpool" | "stride" (stride-2 first conv of the level, same parameter count).
        up: "transpose" (ConvTranspose2d 2x2/2) | "bilinear" (bilinear upsampling + 1x1 conv).
        activation: name for :func:`get_act`.
        dropout: Dropout2d between the two convs of every DoubleConv (0 = none).
    """

    in_channels: int = 3
    out_channels: int = 1
    base_channels: int = 32
    depth: int = 4
    max_width: int | None = None
    down: str = "maxpool"
    up: str = "transpose"
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "base_channels", "depth"):
            check_positive_int(name, getattr(self, name))
        if self.max_width is not None:
            check_positive_int("max_width", self.max_width)
        check_choice("down", self.down, DOWN_MODES)
        check_choice("up", self.up, UP_MODES)
        check_activation(self.activation)
        check_prob("dropout", self.dropout)


def build_unet(cfg: UNetConfig) -> UNet:
    """Build a ``"unet"`` model from its config."""
    return UNet(**dataclasses.asdict(cfg))


register_family("unet", UNetConfig, build_unet)
