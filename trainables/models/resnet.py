"""ResNet family (EXPERIMENTS.md A, B1, E2) built from plain data.

``channels=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` with the "imagenet" stem and basic blocks is
torchvision's ResNet-18 (same parameter count and, after renaming the state_dict keys, the same
outputs). Any number of stages works, e.g. ``channels=(64, 128, 256)``.

Layout (names are the state_dict prefixes)::

    stem       conv (3x3/1 "cifar", 7x7/2 "imagenet*") -> bn -> act
    stem_pool  MaxPool 3x3/2 ("imagenet") or Identity
    stages.i   residual blocks; stage 0 keeps the resolution, every later stage starts with
               stride 2; with maxpool_after_first_block a MaxPool2d(2) follows stage 0's first block
    head       pool (AdaptiveAvgPool2d(1)) -> flatten -> fc (Linear)

Feature interface (the smp-style encoder contract used by ``unet_backbone``):
``forward_features(x)`` returns ``[stem, stage1, ..., stageN]``: the stem output *before*
``stem_pool`` (so the "imagenet" stem's stride-2 map is available as a skip), then each stage's
output, shallow to deep. ``feature_channels`` / ``feature_strides`` / ``feature_names`` describe
that list; e.g. the "imagenet" ResNet-18 gives channels (64, 64, 128, 256, 512) at strides
(2, 4, 8, 16, 32), the "cifar" one strides (1, 1, 2, 4, 8).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .layers import SqueezeExcite, get_act
from .registry import (
    check_activation,
    check_choice,
    check_positive_int,
    check_positive_ints,
    check_prob,
    register_family,
)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "DropPath",
    "PlainBlock",
    "ResNet",
    "ResNetConfig",
    "ResidualBlock",
    "make_stages",
    "make_stem",
    "set_drop_path",
]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # bias=False: a BatchNorm follows and its shift makes a conv bias redundant.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def make_shortcut(
    in_channels: int, out_channels: int, stride: int, norm: type[nn.Module]
) -> nn.Module:
    """Identity, or 1x1 conv + norm when the block changes shape (EXPERIMENTS.md A)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), norm(out_channels))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016, arXiv 1603.09382; timm's DropPath): in training,
    each sample's residual branch is dropped whole with probability ``p`` and kept ones are
    scaled by 1 / (1 - p), so the expected output is unchanged; in eval, the identity."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class ResidualBlock(nn.Module):
    """Base of every block with a skip connection (what ``max_residual_blocks`` counts).

    ``drop_path`` wraps the residual branch before the addition (stochastic depth); blocks are
    built with the identity and :func:`set_drop_path` gives them their rates.
    """

    out_channels: int
    drop_path: nn.Module

    def zero_init_last(self) -> None:
        raise NotImplementedError


class BasicBlock(ResidualBlock):
    """conv3x3(stride) -> bn -> act -> dropout -> conv3x3 -> bn -> [SE] -> + shortcut -> act.

    ``width_factor > 1`` widens the inner convolution only (the "wide" block): the block's output
    keeps ``width`` channels, so stage shapes and shortcuts are unchanged (torchvision's
    wide_resnet convention).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        *,
        act: type[nn.Module] = nn.ReLU,
        norm: type[nn.Module] = nn.BatchNorm2d,
        drop: float = 0.0,
        attn: Callable[[int], nn.Module] | None = None,
        width_factor: int = 1,
    ) -> None:
        super().__init__()
        mid = width * width_factor
        self.out_channels = width
        self.conv1 = conv3x3(in_channels, mid, stride)
        self.bn1 = norm(mid)
        self.act1 = act(inplace=True)
        self.drop = nn.Dropout2d(drop) if drop > 0 else nn.Identity()
        self.conv2 = conv3x3(mid, width)
        self.bn2 = norm(width)
        self.attn = attn(width) if attn is not None else nn.Identity()
        self.shortcut = make_shortcut(in_channels, width, stride, norm)
        self.act2 = act(inplace=True)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(self.act1(self.bn1(self.conv1(x))))
        out = self.attn(self.bn2(self.conv2(out)))
        return self.act2(self.drop_path(out) + self.shortcut(x))

    def zero_init_last(self) -> None:
        # Each block then starts as the identity, which eases early training of deep nets
        # (Goyal et al. 2017, arXiv 1706.02677, section 5.1; torchvision's zero_init_residual).
        if isinstance(self.bn2, nn.BatchNorm2d):
            nn.init.zeros_(self.bn2.weight)


class Bottleneck(ResidualBlock):
    """conv1x1 -> bn -> act -> conv3x3(stride) -> bn -> act -> dropout -> conv1x1 (x expansion)
    -> bn -> [SE] -> + shortcut -> act. Output channels ``width * expansion`` (torchvision v1.5).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        *,
        act: type[nn.Module] = nn.ReLU,
        norm: type[nn.Module] = nn.BatchNorm2d,
        drop: float = 0.0,
        attn: Callable[[int], nn.Module] | None = None,
        expansion: int = 4,
    ) -> None:
        super().__init__()
        out = width * expansion
        self.out_channels = out
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = norm(width)
        self.act1 = act(inplace=True)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = norm(width)
        self.act2 = act(inplace=True)
        self.drop = nn.Dropout2d(drop) if drop > 0 else nn.Identity()
        self.conv3 = conv1x1(width, out)
        self.bn3 = norm(out)
        self.attn = attn(out) if attn is not None else nn.Identity()
        self.shortcut = make_shortcut(in_channels, out, stride, norm)
        self.act3 = act(inplace=True)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.drop(self.act2(self.bn2(self.conv2(out))))
        out = self.attn(self.bn3(self.conv3(out)))
        return self.act3(self.drop_path(out) + self.shortcut(x))

    def zero_init_last(self) -> None:
        # Identity-at-init residual branches, arXiv 1706.02677 section 5.1 (see BasicBlock).
        if isinstance(self.bn3, nn.BatchNorm2d):
            nn.init.zeros_(self.bn3.weight)


class PlainBlock(nn.Module):
    """BasicBlock without the skip connection (the non-residual arm of the depth study, D2)."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        *,
        act: type[nn.Module] = nn.ReLU,
        norm: type[nn.Module] = nn.BatchNorm2d,
        drop: float = 0.0,
        attn: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.out_channels = width
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = norm(width)
        self.act1 = act(inplace=True)
        self.drop = nn.Dropout2d(drop) if drop > 0 else nn.Identity()
        self.conv2 = conv3x3(width, width)
        self.bn2 = norm(width)
        self.attn = attn(width) if attn is not None else nn.Identity()
        self.act2 = act(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(self.act1(self.bn1(self.conv1(x))))
        return self.act2(self.attn(self.bn2(self.conv2(out))))


def make_stages(
    block: Callable[..., nn.Module],
    in_channels: int,
    channels: Sequence[int],
    blocks: Sequence[int],
    *,
    strides: Sequence[int] | None = None,
    pool_after_first_block: bool = False,
    **block_kwargs: object,
) -> tuple[list[nn.Sequential], list[int]]:
    """Build the body's stages from plain data (no hidden ``inplanes`` state).

    Args:
        block: block class (or partial) called as ``block(in_channels, width, stride, **kw)``;
            the built block's ``out_channels`` feeds the next one.
        in_channels: channels entering the first stage (the stem's width).
        channels: per-stage width.
        blocks: per-stage number of blocks.
        strides: per-stage stride of the first block; default 1 for stage 0, then 2.
        pool_after_first_block: insert ``nn.MaxPool2d(2)`` right after the first block of
            stage 0 (the stricter course variant).
        **block_kwargs: passed to every block (act, norm, drop, attn, ...).

    Returns:
        ``(stages, out_channels)``: one ``nn.Sequential`` per stage and each stage's output width.
    """
    if len(channels) != len(blocks):
        raise ValueError(f"channels {tuple(channels)} and blocks {tuple(blocks)} differ in length")
    if strides is None:
        strides = [1] + [2] * (len(channels) - 1)
    stages, out_channels = [], []
    for i, (width, n, stride) in enumerate(zip(channels, blocks, strides, strict=True)):
        layers: list[nn.Module] = []
        for j in range(n):
            b = block(in_channels, width, stride if j == 0 else 1, **block_kwargs)
            layers.append(b)
            in_channels = b.out_channels
            if pool_after_first_block and i == 0 and j == 0:
                layers.append(nn.MaxPool2d(2))
        stages.append(nn.Sequential(*layers))
        out_channels.append(in_channels)
    return stages, out_channels


def set_drop_path(module: nn.Module, rate: float) -> list[float]:
    """Give the residual blocks of `module`, in order, drop rates rising linearly from 0 to
    `rate` (timm's ``torch.linspace(0, drop_path_rate, n_blocks)``: shallow blocks, whose
    features every later block uses, are dropped least). Returns the rates."""
    blocks = [m for m in module.modules() if isinstance(m, ResidualBlock)]
    rates = [rate * i / max(len(blocks) - 1, 1) for i in range(len(blocks))]
    for block, p in zip(blocks, rates, strict=True):
        block.drop_path = DropPath(p) if p > 0 else nn.Identity()
    return rates


STEMS = ("cifar", "imagenet", "imagenet_nopool")


def make_stem(
    kind: str, in_channels: int, out_channels: int, act: type[nn.Module]
) -> tuple[nn.Sequential, nn.Module, int, int]:
    """Build a stem.

    Returns:
        ``(stem, stem_pool, stem_stride, pool_stride)``: ``stem`` is conv -> bn -> act
        ("cifar": 3x3/1; "imagenet", "imagenet_nopool": 7x7/2), ``stem_pool`` MaxPool 3x3/2 for
        "imagenet" and Identity otherwise.
    """
    check_choice("stem", kind, STEMS)
    if kind == "cifar":
        conv = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
        stride = 1
    else:
        conv = nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False)
        stride = 2
    stem = nn.Sequential(
        OrderedDict(conv=conv, bn=nn.BatchNorm2d(out_channels), act=act(inplace=True))
    )
    if kind == "imagenet":
        return stem, nn.MaxPool2d(3, stride=2, padding=1), stride, 2
    return stem, nn.Identity(), stride, 1


def expand_blocks(blocks: int | tuple[int, ...], channels: tuple[int, ...]) -> tuple[int, ...]:
    """Validate ``blocks``; an int means that many blocks in every stage."""
    if isinstance(blocks, int) and not isinstance(blocks, bool):
        blocks = (blocks,) * len(channels)
    check_positive_ints("blocks", blocks)
    assert isinstance(blocks, tuple)  # check_positive_ints refused a bool
    if len(channels) != len(blocks):
        raise ValueError(
            f"channels {channels} and blocks {blocks} must have the same length (one entry per "
            "stage), or give blocks as one integer for every stage"
        )
    return blocks


BLOCKS = ("basic", "bottleneck", "wide")
ATTENTION = ("none", "se")


def block_factory(
    block: str, width_factor: int, bottleneck_expansion: int
) -> Callable[..., nn.Module]:
    """The block class for ``block`` with its width argument bound (for :func:`make_stages`)."""
    check_choice("block", block, BLOCKS)
    factories: dict[str, Callable[..., nn.Module]] = {
        "basic": BasicBlock,
        "wide": functools.partial(BasicBlock, width_factor=width_factor),
        "bottleneck": functools.partial(Bottleneck, expansion=bottleneck_expansion),
    }
    return factories[block]


def attention_factory(
    attention: str, se_reduction: int, act: type[nn.Module]
) -> Callable[[int], nn.Module] | None:
    """``channels -> attention module`` for every block's residual branch, or None."""
    check_choice("attention", attention, ATTENTION)
    if attention == "se":
        return functools.partial(SqueezeExcite, reduction=se_reduction, act=act)
    return None


def feature_strides(
    stem_stride: int, pool_stride: int, n_stages: int, maxpool_after_first_block: bool
) -> tuple[int, ...]:
    """Strides of ``forward_features``: the stem (before its pool), then every stage."""
    strides = [stem_stride]
    stride = stem_stride * pool_stride
    for i in range(n_stages):
        # stage 0 keeps the resolution unless the post-first-block MaxPool2d(2) halves it
        stride *= 2 if i > 0 or maxpool_after_first_block else 1
        strides.append(stride)
    return tuple(strides)


def classifier_head(in_features: int, num_classes: int) -> nn.Sequential:
    """GAP -> flatten -> Linear, under the names ``head.pool`` / ``head.flatten`` / ``head.fc``."""
    return nn.Sequential(
        OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            fc=nn.Linear(in_features, num_classes),
        )
    )


class ResNet(nn.Module):
    """ResNet classifier built from plain data; see the module docstring for layout and features."""

    def __init__(
        self,
        *,
        channels: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        block: str = "basic",
        stem: str = "cifar",
        stem_channels: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        maxpool_after_first_block: bool = False,
        zero_init_residual: bool = False,
        attention: str = "none",
        se_reduction: int = 16,
        width_factor: int = 2,
        bottleneck_expansion: int = 4,
        drop_path: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        act = get_act(activation)
        stem_channels = channels[0] if stem_channels is None else stem_channels
        self.num_classes = num_classes

        self.stem, self.stem_pool, stem_stride, pool_stride = make_stem(
            stem, in_channels, stem_channels, act
        )
        stages, stage_channels = make_stages(
            block_factory(block, width_factor, bottleneck_expansion),
            stem_channels,
            channels,
            blocks,
            pool_after_first_block=maxpool_after_first_block,
            act=act,
            drop=dropout,
            attn=attention_factory(attention, se_reduction, act),
        )
        self.stages = nn.Sequential(*stages)
        set_drop_path(self.stages, drop_path)

        self.feature_channels: tuple[int, ...] = (stem_channels, *stage_channels)
        self.feature_strides: tuple[int, ...] = feature_strides(
            stem_stride, pool_stride, len(channels), maxpool_after_first_block
        )
        self.feature_names: tuple[str, ...] = (
            "stem",
            *(f"stage{i + 1}" for i in range(len(channels))),
        )
        self.head: nn.Module = classifier_head(stage_channels[-1], num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He init for convs feeding ReLU-like activations (torchvision's ResNet init).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_last()

    def feature_modules(self) -> list[nn.Module]:
        """Modules producing each entry of ``forward_features`` (for per-stage freezing)."""
        return [self.stem, *self.stages]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[stem (before stem_pool), stage1, ..., stageN]``, shallow to deep."""
        features = [self.stem(x)]
        x = self.stem_pool(features[0])
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem_pool(self.stem(x)))
        return self.head(x)

    def remove_head(self) -> None:
        """Drop pool/flatten/fc (used as an encoder); ``forward`` then returns the last stage."""
        self.head = nn.Identity()
        self.num_classes = 0


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """Config of the ``"resnet"`` family.

    Attributes:
        channels: per-stage width (bottleneck blocks output ``width * bottleneck_expansion``).
        blocks: residual blocks per stage (same length as ``channels``), or one int for all
            stages (``blocks=2`` with 3 stages is ``(2, 2, 2)``).
        block: "basic" | "bottleneck" | "wide" (basic block, inner width x ``width_factor``).
        stem: "cifar" (conv3x3/1) | "imagenet" (conv7x7/2 + maxpool3x3/2) | "imagenet_nopool".
        stem_channels: first layer width; None = ``channels[0]``.
        activation: name for :func:`get_act`.
        dropout: ``nn.Dropout2d`` probability inside every residual block (0 = none).
        maxpool_after_first_block: MaxPool2d(2) right after the first residual block.
        zero_init_residual: zero the last BN of every block (arXiv 1706.02677).
        attention: "none" | "se" (squeeze-and-excitation on every block's residual branch).
        se_reduction: SE channel reduction ratio.
        width_factor: inner-width multiplier of the "wide" block.
        bottleneck_expansion: output/inner width ratio of the "bottleneck" block.
        drop_path: stochastic depth: the deepest residual block's drop probability in training,
            rising linearly from 0 at the first block (0 = off; identity in eval).
        num_classes, in_channels: filled in by the trainable from the data set.
    """

    channels: tuple[int, ...] = (64, 128, 256, 512)
    blocks: int | tuple[int, ...] = (2, 2, 2, 2)
    block: str = "basic"
    stem: str = "cifar"
    stem_channels: int | None = None
    activation: str = "relu"
    dropout: float = 0.0
    maxpool_after_first_block: bool = False
    zero_init_residual: bool = False
    attention: str = "none"
    se_reduction: int = 16
    width_factor: int = 2
    bottleneck_expansion: int = 4
    drop_path: float = 0.0
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        check_positive_ints("channels", self.channels)
        object.__setattr__(self, "blocks", expand_blocks(self.blocks, self.channels))
        check_choice("block", self.block, BLOCKS)
        check_choice("stem", self.stem, STEMS)
        check_choice("attention", self.attention, ATTENTION)
        if self.stem_channels is not None:
            check_positive_int("stem_channels", self.stem_channels)
        check_activation(self.activation)
        check_prob("dropout", self.dropout)
        check_prob("drop_path", self.drop_path)
        for name in (
            "se_reduction",
            "width_factor",
            "bottleneck_expansion",
            "num_classes",
            "in_channels",
        ):
            check_positive_int(name, getattr(self, name))


def build_resnet(cfg: ResNetConfig) -> ResNet:
    """Build a ``"resnet"`` model from its config."""
    return ResNet(**dataclasses.asdict(cfg))


register_family("resnet", ResNetConfig, build_resnet, encoder=True)
