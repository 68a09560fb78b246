"""Base class of every encoder/decoder model (the U-Nets), so callers test ``isinstance``.

The trainable needs four things from such a model: ``freeze_encoder()``,
``unfreeze_encoder(stages)``, ``encoder_parameters()`` (for a separate learning rate) and
``load_encoder_state(state_dict)`` (start from a trained classifier). They live here once, built
on two attributes a subclass sets: ``self.encoder`` (with ``feature_modules()``, one module per
entry of ``forward_features``) and ``self.decoder``; it then calls ``self._init_freezing()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

__all__ = ["HEAD_PREFIX", "EncoderDecoderModel"]

HEAD_PREFIX = "head."  # the classifiers' pool/flatten/fc live under `head`


class EncoderDecoderModel(nn.Module):
    """Base of the U-Nets: ``self.encoder`` (with ``feature_modules()``) + ``self.decoder``.

    Freezing is a model method (segmentation_models_pytorch ``base/model.py``); the schedule
    (which epoch) belongs to the trainable. ``freeze_encoder()`` sets ``requires_grad=False`` and
    puts the encoder in eval (BatchNorm statistics and dropout fixed); ``train()`` keeps frozen
    stages in eval; ``unfreeze_encoder(stages)`` unfreezes all stages or only the deepest ones.
    """

    encoder: nn.Module
    decoder: nn.Module
    encoder_family: str = ""  # named in load_encoder_state's errors

    def _init_freezing(self) -> None:
        self._frozen = [False] * len(self.encoder.feature_modules())

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Encoder parameters (for a separate learning rate, ``encoder_lr_mult``)."""
        return self.encoder.parameters()

    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        """Decoder parameters: up blocks, adapters and head."""
        return self.decoder.parameters()

    @property
    def frozen_stages(self) -> tuple[bool, ...]:
        """Per encoder stage (the entries of ``forward_features``): True when frozen."""
        return tuple(self._frozen)

    def freeze_encoder(self) -> None:
        """Stop training the whole encoder: no gradients, BatchNorm statistics fixed (eval)."""
        self._frozen = [True] * len(self._frozen)
        self._apply_freeze()

    def unfreeze_encoder(self, stages: int | Sequence[int] | None = None) -> None:
        """Unfreeze encoder stages (partial unfreezing when ``stages`` is given).

        Args:
            stages: None = all; an int ``n`` = the ``n`` deepest stages (of the encoder's
                ``feature_names``, e.g. stem, stage1, ...); a list of indices into that list.
        """
        for i in self._stage_indices(stages):
            self._frozen[i] = False
        self._apply_freeze()

    def _stage_indices(self, stages: int | Sequence[int] | None) -> list[int]:
        n = len(self._frozen)
        if stages is None:
            return list(range(n))
        if isinstance(stages, int):
            if isinstance(stages, bool) or not 0 <= stages <= n:
                raise ValueError(f"stages={stages}: the encoder has {n} stages (0..{n} allowed)")
            return list(range(n - stages, n))
        indices = list(stages)
        bad = [i for i in indices if not isinstance(i, int) or not -n <= i < n]
        if bad:
            raise ValueError(f"stage indices {bad} out of range for {n} encoder stages")
        return indices

    def _apply_freeze(self) -> None:
        for module, frozen in zip(self.encoder.feature_modules(), self._frozen, strict=True):
            for p in module.parameters():
                p.requires_grad_(not frozen)
        self._sync_encoder_mode()

    def _sync_encoder_mode(self) -> None:
        # A frozen stage stays in eval so its BatchNorm running stats (and dropout) are fixed.
        self.encoder.train(self.training and not all(self._frozen))
        for module, frozen in zip(self.encoder.feature_modules(), self._frozen, strict=True):
            if frozen:
                module.eval()

    def train(self, mode: bool = True) -> EncoderDecoderModel:
        super().train(mode)
        self._sync_encoder_mode()
        return self

    def load_encoder_state(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load a classifier's full state_dict into the encoder.

        The classifier head (``head.*``: its fc layer) is dropped; every other key must match the
        encoder exactly (names and shapes).

        Raises:
            ValueError: missing / unexpected keys or a shape mismatch, listing them.
        """
        state = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIX)}
        problems = _state_mismatches(self.encoder.state_dict(), state)
        if problems:
            raise ValueError(
                "encoder checkpoint does not match the encoder config "
                f"({self.encoder_family or type(self.encoder).__name__}): " + "; ".join(problems)
            )
        self.encoder.load_state_dict(state, strict=True)


def _state_mismatches(
    own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]
) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches, at most 8 of each."""

    def listed(keys: list[str]) -> str:
        return f"{keys[:8]}{' ...' if len(keys) > 8 else ''}"

    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs encoder {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    parts = []
    if missing:
        parts.append(f"missing keys {listed(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {listed(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches {shapes[:8]}")
    return parts
