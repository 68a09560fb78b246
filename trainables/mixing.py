"""Mixup and CutMix for a training batch (classification only), as timm's Mixup does them.

`mixup_alpha` / `cutmix_alpha` (0 = off) are the Beta(alpha, alpha) parameters of the mixing
weight lambda. With both on, each batch uses one of them, CutMix with probability 0.5 (timm's
`switch_prob`). The partner of image i is image B-1-i (the batch flipped, as timm does), so no
random permutation is drawn; lambda and the CutMix box come from torch's global CPU generator,
which the trial seeds and its checkpoint saves, so a trial mixes the same way every time it runs
and a resumed trial exactly as an uninterrupted one.

The loss takes the soft targets lam * onehot(y) + (1 - lam) * onehot(y_partner):
F.cross_entropy accepts class probabilities (and applies label smoothing to them), so the loss
equals lam * CE(logits, y) + (1 - lam) * CE(logits, y_partner). Training accuracy is counted
against the dominant label (y where lam >= 0.5, else the partner's), the label the mixed image
mostly shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

SWITCH_PROB = 0.5  # timm's Mixup default: with both alphas on, CutMix for half the batches


def cutmix_box(lam: float, height: int, width: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a box of area ~(1 - lam) * H * W, centred uniformly, clipped to the
    image (timm's rand_bbox)."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = (int(v) for v in torch.randint(0, 1 << 30, (2,)) % torch.tensor([height, width]))
    y0, y1 = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
    x0, x1 = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    return int(y0), int(y1), int(x0), int(x1)


def soft_targets(y: Tensor, partner: Tensor, lam: float, num_classes: int) -> Tensor:
    """lam * onehot(y) + (1 - lam) * onehot(partner), float (B, C)."""
    one = F.one_hot(y, num_classes).float()
    two = F.one_hot(partner, num_classes).float()
    return lam * one + (1.0 - lam) * two


@dataclass
class Mixer:
    """Mixes a batch: `mixer(x, y) -> (x_mixed, soft targets, dominant label)`."""

    num_classes: int
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    switch_prob: float = SWITCH_PROB

    def choose(self) -> tuple[str, float]:
        """("mixup" | "cutmix", lambda drawn from that method's Beta(alpha, alpha))."""
        use_cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha <= 0 or float(torch.rand(())) < self.switch_prob
        )
        alpha = torch.tensor(self.cutmix_alpha if use_cutmix else self.mixup_alpha)
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        return ("cutmix" if use_cutmix else "mixup"), lam

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        method, lam = self.choose()
        partner = y.flip(0)
        if method == "mixup":
            x = x * lam + x.flip(0) * (1.0 - lam)
        else:
            y0, y1, x0, x1 = cutmix_box(lam, x.shape[-2], x.shape[-1])
            x = x.clone()
            x[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]
            # The box was clipped at the border: lambda is the area really kept (timm's
            # correct_lam), so the targets say what the image shows.
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (x.shape[-2] * x.shape[-1])
        dominant = y if lam >= 0.5 else partner
        return x, soft_targets(y, partner, lam, self.num_classes), dominant


def make_mixer(trainer: Mapping[str, Any], task: str, num_classes: int | None) -> Mixer | None:
    """The trial's Mixer, or None when both alphas are 0 (or the task is not classification;
    config validation refuses mixing for segmentation before any trial runs)."""
    mixup, cutmix = float(trainer["mixup_alpha"]), float(trainer["cutmix_alpha"])
    if task != "classification" or not num_classes or (mixup <= 0 and cutmix <= 0):
        return None
    return Mixer(num_classes=num_classes, mixup_alpha=mixup, cutmix_alpha=cutmix)
