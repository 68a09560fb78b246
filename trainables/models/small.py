"""Small networks for sections C (CNN vs FC), D (kernel size, depth) and E (custom layers).

Families: ``fc``, ``simple_cnn``, ``residual_cnn``, ``depth_cnn``, ``kernel_cnn``. All take
``num_classes``, ``in_channels`` (filled in by the trainable) and ``activation``; the conv nets end
in global average pooling + Linear, so they accept any input size, except ``simple_cnn`` with
``head="fc"`` (flatten -> Linear layers, the course's reference SimpleCNN), which is built for the
data set's ``image_size``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .layers import GatedConv2d, L2Pool2d, SqueezeExcite, get_act
from .registry import (
    check_activation,
    check_choice,
    check_positive_int,
    check_positive_ints,
    check_prob,
    register_family,
)
from .resnet import BasicBlock, PlainBlock, ResNet, expand_blocks, make_stages

__all__ = [
    "FC",
    "DepthCNN",
    "DepthCNNConfig",
    "FCConfig",
    "KernelCNN",
    "KernelCNNConfig",
    "ResidualCNNConfig",
    "SimpleCNN",
    "SimpleCNNConfig",
    "solve_kernel_cnn_width",
]


def _classifier_head(in_features: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            drop=nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            fc=nn.Linear(in_features, num_classes),
        )
    )


# --- fc ------------------------------------------------------------------------------------------


class FC(nn.Module):
    """Flatten -> [Linear -> (BN) -> act -> (Dropout)] per hidden width -> Linear."""

    def __init__(
        self,
        *,
        in_channels: int,
        image_size: int,
        num_classes: int,
        hidden: Sequence[int],
        dropout: float = 0.0,
        activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        act = get_act(activation)
        self.input_shape = (in_channels, image_size, image_size)
        layers: list[nn.Module] = [nn.Flatten(1)]
        width = in_channels * image_size * image_size
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            layers.append(nn.BatchNorm1d(h) if batch_norm else nn.Identity())
            layers.append(act(inplace=True))
            layers.append(nn.Dropout(dropout) if dropout > 0 else nn.Identity())
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"fc expects inputs of shape (N, {', '.join(map(str, self.input_shape))}) "
                f"(in_channels, image_size, image_size), got {tuple(x.shape)}"
            )
        return self.layers(x)


@dataclasses.dataclass(frozen=True)
class FCConfig:
    """Config of the ``"fc"`` family (fully connected baseline, section C).

    Attributes:
        hidden: hidden layer widths; (512, 256, 128) for MNIST, (1024, 512, 512, 256) for CIFAR.
        dropout: nn.Dropout after every hidden layer (0 = none).
        activation: name for :func:`get_act`.
        batch_norm: BatchNorm1d after every hidden Linear.
        in_channels, image_size, num_classes: input shape (square images) and classes, filled in
            by the trainable (``image_size`` is the same key as the data config's).
    """

    hidden: tuple[int, ...] = (512, 256, 128)
    dropout: float = 0.0
    activation: str = "relu"
    batch_norm: bool = False
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10

    def __post_init__(self) -> None:
        check_positive_ints("hidden", self.hidden, min_len=0)
        check_prob("dropout", self.dropout)
        check_activation(self.activation)
        for name in ("in_channels", "image_size", "num_classes"):
            check_positive_int(name, getattr(self, name))


def build_fc(cfg: FCConfig) -> FC:
    """Build an ``"fc"`` model from its config."""
    return FC(**dataclasses.asdict(cfg))


# --- simple_cnn ----------------------------------------------------------------------------------

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d, "l2": L2Pool2d}
CONVS = ("standard", "gated")
HEADS = ("gap", "fc")


class SimpleCNN(nn.Module):
    """Per width: conv(k) -> (BN) -> act -> [SE] -> pool(2); then a head.

    ``head="gap"``: GAP -> (Dropout) -> Linear (any input size). ``head="fc"``: Flatten ->
    [Linear -> act -> (Dropout)] per ``fc_hidden`` width -> Linear, the classic LeNet-style head of
    the course's reference SimpleCNN (needs ``image_size`` to size the first Linear).
    """

    def __init__(
        self,
        *,
        channels: Sequence[int],
        kernel_size: int = 3,
        pool: str = "max",
        conv: str = "standard",
        attention: str = "none",
        batch_norm: bool = True,
        dropout: float = 0.0,
        head: str = "gap",
        fc_hidden: Sequence[int] = (128,),
        activation: str = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        act = get_act(activation)
        layers: list[nn.Module] = []
        for width in channels:
            layers += _conv_unit(
                conv, in_channels, width, kernel_size, batch_norm, act, attention, pool
            )
            in_channels = width
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)  # each pool(2) floors the side
        self.feature_shape = (in_channels, side, side)
        if head == "fc":
            if side < 1:
                raise ValueError(
                    f"simple_cnn head='fc': {len(channels)} pool(2) layers shrink "
                    f"image_size={image_size} to nothing; use fewer channels or head='gap'"
                )
            flat = in_channels * side * side
            self.head: nn.Module = _fc_head(flat, fc_hidden, num_classes, act, dropout)
        else:
            self.head = _classifier_head(in_channels, num_classes, dropout)
        self.head_kind = head
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        if self.head_kind == "fc" and tuple(features.shape[1:]) != self.feature_shape:
            raise ValueError(
                f"simple_cnn head='fc' was built for image_size={self.image_size} (features "
                f"{self.feature_shape}), got input {tuple(x.shape)}; set image_size to the data's "
                "size or use head='gap'"
            )
        return self.head(features)


def _conv_unit(
    conv: str,
    in_channels: int,
    width: int,
    kernel_size: int,
    batch_norm: bool,
    act: type[nn.Module],
    attention: str,
    pool: str,
) -> list[nn.Module]:
    """conv(k) -> (BN) -> act -> [SE] -> pool(2): five modules (Identity where switched off)."""
    pad = kernel_size // 2
    # bias=False with BN: its shift makes a conv bias redundant.
    conv_cls = GatedConv2d if conv == "gated" else nn.Conv2d
    return [
        conv_cls(in_channels, width, kernel_size, padding=pad, bias=not batch_norm),
        nn.BatchNorm2d(width) if batch_norm else nn.Identity(),
        act(inplace=True),
        SqueezeExcite(width, act=act) if attention == "se" else nn.Identity(),
        POOLS[pool](2),
    ]


def _fc_head(
    in_features: int,
    hidden: Sequence[int],
    num_classes: int,
    act: type[nn.Module],
    dropout: float,
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten(1)]
    for width in hidden:
        layers += [nn.Linear(in_features, width), act(inplace=True)]
        layers.append(nn.Dropout(dropout) if dropout > 0 else nn.Identity())
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


@dataclasses.dataclass(frozen=True)
class SimpleCNNConfig:
    """Config of the ``"simple_cnn"`` family (section C; hosts the custom layers of E1).

    The course's reference SimpleCNN (EXPERIMENTS.md C, 421,642 parameters on MNIST) is
    ``channels=(32, 64), batch_norm=False, head="fc", fc_hidden=(128,)``.

    Attributes:
        channels: width of each conv layer (2-3 layers in the course), each followed by pool(2).
        kernel_size: odd kernel size of every conv ("same" padding).
        pool: "max" | "avg" | "l2" (:class:`L2Pool2d`).
        conv: "standard" (nn.Conv2d) | "gated" (:class:`GatedConv2d`).
        attention: "none" | "se" (:class:`SqueezeExcite` after every conv).
        batch_norm: BatchNorm2d after every conv (convs then have no bias).
        dropout: nn.Dropout before the final Linear ("gap") or after every hidden Linear ("fc").
        head: "gap" (global average pooling -> Linear) | "fc" (flatten -> ``fc_hidden`` Linear
            layers -> Linear).
        fc_hidden: hidden widths of the "fc" head (ignored by "gap").
        activation, num_classes, in_channels: as everywhere.
        image_size: input side, filled in by the trainable; sizes the "fc" head's first Linear.
    """

    channels: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    pool: str = "max"
    conv: str = "standard"
    attention: str = "none"
    batch_norm: bool = True
    dropout: float = 0.0
    head: str = "gap"
    fc_hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 28

    def __post_init__(self) -> None:
        check_positive_ints("channels", self.channels)
        check_positive_int("kernel_size", self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {self.kernel_size}")
        check_choice("pool", self.pool, POOLS)
        check_choice("conv", self.conv, CONVS)
        check_choice("attention", self.attention, ("none", "se"))
        check_prob("dropout", self.dropout)
        check_choice("head", self.head, HEADS)
        check_positive_ints("fc_hidden", self.fc_hidden, min_len=0)
        check_activation(self.activation)
        for name in ("num_classes", "in_channels", "image_size"):
            check_positive_int(name, getattr(self, name))


def build_simple_cnn(cfg: SimpleCNNConfig) -> SimpleCNN:
    """Build a ``"simple_cnn"`` model from its config."""
    return SimpleCNN(**dataclasses.asdict(cfg))


# --- residual_cnn --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResidualCNNConfig:
    """Config of the ``"residual_cnn"`` family: a small CIFAR-style ResNet (section C).

    conv3x3/1 stem of ``channels[0]`` -> basic-block stages (stride 2 from the second stage) ->
    GAP -> Linear. The "regularized" variant of C2 is ``dropout > 0`` here plus the trainer's
    ``weight_decay``. It is a :class:`ResNet`, so it also works as a U-Net encoder.

    Attributes:
        channels: per-stage width.
        blocks: basic blocks per stage (same length as ``channels``), or one int for all.
        dropout: Dropout2d inside every residual block (0 = none).
        activation, num_classes, in_channels: as everywhere.
    """

    channels: tuple[int, ...] = (32, 64, 128)
    blocks: int | tuple[int, ...] = (1, 1, 1)
    dropout: float = 0.0
    activation: str = "relu"
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        check_positive_ints("channels", self.channels)
        object.__setattr__(self, "blocks", expand_blocks(self.blocks, self.channels))
        check_prob("dropout", self.dropout)
        check_activation(self.activation)
        check_positive_int("num_classes", self.num_classes)
        check_positive_int("in_channels", self.in_channels)


def build_residual_cnn(cfg: ResidualCNNConfig) -> ResNet:
    """Build a ``"residual_cnn"`` model (a ResNet with the "cifar" stem and basic blocks)."""
    return ResNet(block="basic", stem="cifar", **dataclasses.asdict(cfg))


# --- depth_cnn -----------------------------------------------------------------------------------


class DepthCNN(nn.Module):
    """``n_conv`` 3x3 convs in pairs, with or without skip connections (depth study, D2).

    Pairs are split as evenly as possible into ``min(3, n_conv // 2)`` stages of width
    ``width * 2**stage``; every stage after the first starts with a stride-2 conv. With
    ``residual`` each pair is a :class:`BasicBlock` (a 1x1 projection shortcut where the shape
    changes, not counted in ``n_conv``), otherwise a :class:`PlainBlock`; both have the same convs.
    """

    def __init__(
        self,
        *,
        n_conv: int = 4,
        residual: bool = False,
        width: int = 32,
        batch_norm: bool = True,
        activation: str = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        pairs = n_conv // 2
        n_stages = min(3, pairs)
        blocks = [pairs // n_stages + (1 if i < pairs % n_stages else 0) for i in range(n_stages)]
        channels = [width * 2**i for i in range(n_stages)]
        block = BasicBlock if residual else PlainBlock
        norm = nn.BatchNorm2d if batch_norm else nn.Identity
        stages, out = make_stages(
            block, in_channels, channels, blocks, act=get_act(activation), norm=norm
        )
        self.stages = nn.Sequential(*stages)
        self.head = _classifier_head(out[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(x))


@dataclasses.dataclass(frozen=True)
class DepthCNNConfig:
    """Config of the ``"depth_cnn"`` family (section D2).

    Attributes:
        n_conv: number of 3x3 conv layers; even, >= 2 (2 shallow, 4 medium, 6+ deep).
        residual: wrap every pair of convs in a skip connection.
        width: width of the first stage (doubles per stage, at most 3 stages).
        batch_norm: BatchNorm after every conv (False shows vanishing gradients more clearly).
        activation, num_classes, in_channels: as everywhere.
    """

    n_conv: int = 4
    residual: bool = False
    width: int = 32
    batch_norm: bool = True
    activation: str = "relu"
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        check_positive_int("n_conv", self.n_conv)
        if self.n_conv % 2:
            raise ValueError(
                f"n_conv must be even (convs come in pairs so the residual and plain variants "
                f"match), got {self.n_conv}"
            )
        check_positive_int("width", self.width)
        check_activation(self.activation)
        check_positive_int("num_classes", self.num_classes)
        check_positive_int("in_channels", self.in_channels)


def build_depth_cnn(cfg: DepthCNNConfig) -> DepthCNN:
    """Build a ``"depth_cnn"`` model from its config."""
    return DepthCNN(**dataclasses.asdict(cfg))


# --- kernel_cnn ----------------------------------------------------------------------------------

KERNELS = ("3x3", "5x5", "7x7", "1x1+3x3")


def _kernel_unit(kernel: str, in_ch: int, out_ch: int, act: type[nn.Module]) -> nn.Sequential:
    def cba(cin: int, cout: int, k: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(cout),
            act(inplace=True),
        ]

    if kernel == "1x1+3x3":
        # 1x1 mixes channels cheaply, the 3x3 then sees the mixed features (NiN / bottleneck).
        return nn.Sequential(*cba(in_ch, out_ch, 1), *cba(out_ch, out_ch, 3))
    k = int(kernel.split("x")[0])
    return nn.Sequential(*cba(in_ch, out_ch, k))


class KernelCNN(nn.Module):
    """``n_conv`` units of the chosen kernel, widths ``width * 2**i``, MaxPool2d(2) after each
    unit, then GAP -> Linear (kernel-size study, D1).

    A unit is conv(k) -> BN -> act, or for "1x1+3x3" conv1x1 -> BN -> act -> conv3x3 -> BN -> act.
    """

    def __init__(
        self,
        *,
        kernel: str = "3x3",
        width: int = 32,
        n_conv: int = 3,
        activation: str = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_choice("kernel", kernel, KERNELS)
        act = get_act(activation)
        self.width = width
        layers: list[nn.Module] = []
        for i in range(n_conv):
            out = width * 2**i
            layers += [_kernel_unit(kernel, in_channels, out, act), nn.MaxPool2d(2)]
            in_channels = out
        self.features = nn.Sequential(*layers)
        self.head = _classifier_head(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@functools.cache
def _kernel_cnn_params(
    kernel: str, width: int, n_conv: int, num_classes: int, in_channels: int
) -> int:
    with torch.device("meta"):
        model = KernelCNN(
            kernel=kernel,
            width=width,
            n_conv=n_conv,
            num_classes=num_classes,
            in_channels=in_channels,
        )
    return sum(p.numel() for p in model.parameters())


def solve_kernel_cnn_width(
    kernel: str,
    target_params: int,
    *,
    n_conv: int = 3,
    num_classes: int = 10,
    in_channels: int = 3,
    tolerance: float = 0.05,
) -> int:
    """Width whose KernelCNN parameter count is closest to ``target_params``.

    The count grows monotonically with the width, so a binary search over widths 1..4096 finds
    the bracketing pair; the closer one is returned.

    Raises:
        ValueError: the closest count is further than ``tolerance`` from the target.
    """

    def count(w: int) -> int:
        return _kernel_cnn_params(kernel, w, n_conv, num_classes, in_channels)

    lo, hi = 1, 4096
    while lo < hi:  # smallest width with count >= target
        mid = (lo + hi) // 2
        if count(mid) < target_params:
            lo = mid + 1
        else:
            hi = mid
    best = min({max(lo - 1, 1), lo}, key=lambda w: abs(count(w) - target_params))
    if abs(count(best) - target_params) > tolerance * target_params:
        raise ValueError(
            f"kernel_cnn {kernel!r}: no width gives {target_params:,} parameters within "
            f"{tolerance:.0%} (closest: width {best} with {count(best):,}); change target_params"
        )
    return best


@dataclasses.dataclass(frozen=True)
class KernelCNNConfig:
    """Config of the ``"kernel_cnn"`` family (section D1).

    Attributes:
        kernel: "3x3" | "5x5" | "7x7" | "1x1+3x3".
        target_params: if set, ``width`` is solved so the parameter count is within 5% of it
            (equal budgets across kernels); None uses ``width`` as given.
        width: width of the first unit (doubles per unit) when ``target_params`` is None.
        n_conv: number of conv units (each followed by MaxPool2d(2)).
        activation, num_classes, in_channels: as everywhere.
    """

    kernel: str = "3x3"
    target_params: int | None = None
    width: int = 32
    n_conv: int = 3
    activation: str = "relu"
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        check_choice("kernel", self.kernel, KERNELS)
        if self.target_params is not None and (
            isinstance(self.target_params, bool)
            or not isinstance(self.target_params, int | float)
            or self.target_params < 1
        ):
            raise ValueError(f"target_params must be a positive number, got {self.target_params!r}")
        for name in ("width", "n_conv", "num_classes", "in_channels"):
            check_positive_int(name, getattr(self, name))
        check_activation(self.activation)


def build_kernel_cnn(cfg: KernelCNNConfig) -> KernelCNN:
    """Build a ``"kernel_cnn"`` model, solving ``width`` from ``target_params`` when given."""
    width = cfg.width
    if cfg.target_params is not None:
        width = solve_kernel_cnn_width(
            cfg.kernel,
            int(cfg.target_params),
            n_conv=cfg.n_conv,
            num_classes=cfg.num_classes,
            in_channels=cfg.in_channels,
        )
    return KernelCNN(
        kernel=cfg.kernel,
        width=width,
        n_conv=cfg.n_conv,
        activation=cfg.activation,
        num_classes=cfg.num_classes,
        in_channels=cfg.in_channels,
    )


register_family("fc", FCConfig, build_fc)
register_family("simple_cnn", SimpleCNNConfig, build_simple_cnn)
register_family("residual_cnn", ResidualCNNConfig, build_residual_cnn, encoder=True)
register_family("depth_cnn", DepthCNNConfig, build_depth_cnn)
register_family("kernel_cnn", KernelCNNConfig, build_kernel_cnn)
