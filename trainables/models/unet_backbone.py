"""U-Net whose encoder is a classifier (EXPERIMENTS.md B3, segmentation_models_pytorch style)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .base import EncoderDecoderModel
from .layers import get_act
from .registry import (
    build_model,
    check_activation,
    check_choice,
    check_positive_int,
    check_positive_ints,
    check_prob,
    get_family,
    list_encoder_families,
    register_family,
)
from .unet import UP_MODES, UNetDecoder, check_divisible

__all__ = ["UNetBackboneConfig", "UNetWithBackbone"]


class UNetWithBackbone(EncoderDecoderModel):
    """U-Net decoder on top of a classifier's stage features; outputs logits.

    The classifier is built from ``encoder`` (any family in ``list_encoder_families()``), its
    GAP/FC head is removed, and ``forward_features`` supplies ``[stem, stage1, ..., stageN]``.
    Skip wiring (:func:`~trainables.models.unet.plan_decoder`): the deepest feature is the decoder
    input; for each smaller stride the deepest feature at that stride is the skip of the step that
    upsamples to that stride; if no feature is at stride 1, a last skip-less step upsamples to the
    input size. Where a skip's width differs from ``decoder_channels`` a 1x1 conv + BN + act
    adapter maps it; where a stride ratio is not 2 the up step scales by that ratio (and any odd
    size left over is fixed by bilinear interpolation to the skip's size).

    ResNet-18 encoder with the "imagenet" stem (128x128 input)::

        stem   64 ch, stride 2  -> skip of step 4 (64x64)
        stage1 64 ch, stride 4  -> skip of step 3 (32x32)
        stage2 128 ch, stride 8 -> skip of step 2 (16x16)
        stage3 256 ch, stride 16 -> skip of step 1 (8x8)
        stage4 512 ch, stride 32 -> decoder input (4x4)
        step 5: stride 2 -> 1 without skip (128x128), then the 1x1 head

    With the "cifar" stem (strides 1, 1, 2, 4, 8) ``stem`` is unused (``stage1`` is deeper at the
    same stride), stage1-3 are the skips at strides 1, 2, 4 and stage4 the input. ``describe()``
    prints this table for the actual configuration.

    Freezing: ``freeze_encoder()`` sets ``requires_grad=False`` and puts the encoder (BatchNorm
    included) in eval mode; ``train()`` keeps frozen encoder stages in eval, so their BatchNorm
    running statistics never change. ``unfreeze_encoder(stages)`` unfreezes all or only the
    deepest stages. ``load_encoder_state`` (from :class:`EncoderDecoderModel`) loads a trained
    classifier's state_dict into the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        decoder_channels: Sequence[int] | None = None,
        out_channels: int = 1,
        up: str = "transpose",
        activation: str = "relu",
        dropout: float = 0.0,
        encoder_family: str = "",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_family = encoder_family
        self.decoder = UNetDecoder(
            encoder.feature_channels,
            encoder.feature_strides,
            feature_names=encoder.feature_names,
            decoder_channels=decoder_channels,
            out_channels=out_channels,
            up=up,
            act=get_act(activation),
            dropout=dropout,
        )
        self._init_freezing()

    # --- forward -------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_divisible(x, max(self.encoder.feature_strides), "the encoder's deepest stride")
        return self.decoder(self.encoder.forward_features(x))

    def describe(self) -> str:
        """Which feature map (name, channels, stride) feeds which skip at which scale."""
        return f"U-Net with a {self.encoder_family} encoder\n" + self.decoder.describe()


def _default_encoder() -> dict[str, Any]:
    return {"model": "resnet"}


@dataclasses.dataclass(frozen=True)
class UNetBackboneConfig:
    """Config of the ``"unet_backbone"`` family.

    Attributes:
        encoder: a classifier model_cfg, e.g. ``{"model": "resnet", "channels": [64, 128, 256]}``;
            its ``num_classes`` is ignored (the head is removed) and its ``in_channels``, if
            given, must equal this config's.
        decoder_channels: width of each decoder step, deep -> shallow (see ``describe()``);
            None = each skip's own width (no adapters).
        out_channels: logit channels (1 for binary masks).
        up: "transpose" | "bilinear".
        in_channels: image channels (filled in by the trainable).
        activation: decoder activation (the encoder's is part of ``encoder``).
        dropout: Dropout2d in the decoder's DoubleConvs.
    """

    encoder: dict[str, Any] = dataclasses.field(default_factory=_default_encoder)
    decoder_channels: tuple[int, ...] | None = None
    out_channels: int = 1
    up: str = "transpose"
    in_channels: int = 3
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, Mapping) or "model" not in self.encoder:
            raise ValueError(
                "encoder must be a classifier model config with a 'model' key, one of "
                f"{', '.join(list_encoder_families())}; got {self.encoder!r}"
            )
        if not get_family(self.encoder["model"]).encoder:
            raise ValueError(
                f"model family {self.encoder['model']!r} cannot be an encoder (no "
                f"forward_features); valid encoder families: {', '.join(list_encoder_families())}"
            )
        enc_in = self.encoder.get("in_channels", self.in_channels)
        if enc_in != self.in_channels:
            raise ValueError(
                f"encoder in_channels={enc_in} differs from unet_backbone "
                f"in_channels={self.in_channels}"
            )
        if self.decoder_channels is not None:
            check_positive_ints("decoder_channels", self.decoder_channels)
        check_positive_int("out_channels", self.out_channels)
        check_positive_int("in_channels", self.in_channels)
        check_choice("up", self.up, UP_MODES)
        check_activation(self.activation)
        check_prob("dropout", self.dropout)


def build_unet_backbone(cfg: UNetBackboneConfig) -> UNetWithBackbone:
    """Build the classifier encoder (head removed) and a U-Net decoder on its features."""
    enc_cfg = {**cfg.encoder, "in_channels": cfg.in_channels}
    enc_cfg.setdefault("num_classes", 1)  # any value: the head is removed below
    encoder = build_model(enc_cfg)
    encoder.remove_head()
    return UNetWithBackbone(
        encoder,
        decoder_channels=cfg.decoder_channels,
        out_channels=cfg.out_channels,
        up=cfg.up,
        activation=cfg.activation,
        dropout=cfg.dropout,
        encoder_family=enc_cfg["model"],
    )


register_family("unet_backbone", UNetBackboneConfig, build_unet_backbone)
