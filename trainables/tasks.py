"""What differs between classification and segmentation inside the one epoch loop.

A task owns its loss, how a batch adds to the epoch's running sums, and how the sums become the
flat metric dict (names from `trainables.metric_names`). Sums, not per-batch means, so IoU and
Dice are computed over the whole split (a per-batch mean over-weights small batches and
rock-free images).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """Soft Dice loss per image, averaged; eps=1 keeps rock-free images from dividing by zero."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    dice = (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)
    return 1 - dice.mean()


@dataclass
class ClassificationTask:
    label_smoothing: float = 0.0
    name: str = "classification"
    metric: str = "val_acc"

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def new_sums(self) -> dict[str, float]:
        return {"loss": 0.0, "correct": 0.0, "n": 0.0}

    def add(self, sums: dict[str, float], logits: Tensor, y: Tensor, loss: Tensor) -> None:
        n = y.shape[0]
        sums["loss"] += float(loss) * n
        sums["correct"] += float((logits.argmax(1) == y).sum())
        sums["n"] += n

    def finish(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        n = max(sums["n"], 1.0)
        return {f"{prefix}_loss": sums["loss"] / n, f"{prefix}_acc": sums["correct"] / n}


@dataclass
class SegmentationTask:
    loss_name: str = "bce_dice"
    pos_weight: float = 1.0
    name: str = "segmentation"
    metric: str = "val_iou"
    _pos_weight: Tensor | None = field(default=None, repr=False)

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        if self._pos_weight is None or self._pos_weight.device != logits.device:
            self._pos_weight = torch.tensor([self.pos_weight], device=logits.device)
        bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=self._pos_weight)
        if self.loss_name == "bce":
            return bce
        if self.loss_name == "dice":
            return dice_loss(logits, y)
        return 0.5 * bce + 0.5 * dice_loss(logits, y)  # the course's weighted mix

    def new_sums(self) -> dict[str, float]:
        return {"loss": 0.0, "n": 0.0, "tp": 0.0, "fp": 0.0, "fn": 0.0, "tn": 0.0}

    def add(self, sums: dict[str, float], logits: Tensor, y: Tensor, loss: Tensor) -> None:
        n = y.shape[0]
        pred = logits > 0  # sigmoid(x) > 0.5
        truth = y > 0.5
        sums["loss"] += float(loss) * n
        sums["n"] += n
        sums["tp"] += float((pred & truth).sum())
        sums["fp"] += float((pred & ~truth).sum())
        sums["fn"] += float((~pred & truth).sum())
        sums["tn"] += float((~pred & ~truth).sum())

    def finish(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        tp, fp, fn, tn = sums["tp"], sums["fp"], sums["fn"], sums["tn"]
        # An empty prediction on an empty mask is perfect agreement, not 0/0.
        iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
        dice = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        out = {
            f"{prefix}_loss": sums["loss"] / max(sums["n"], 1.0),
            f"{prefix}_iou": iou,
            f"{prefix}_dice": dice,
            f"{prefix}_pixel_acc": (tp + tn) / max(tp + fp + fn + tn, 1.0),
        }
        # Accuracy under the generic name too, so tables that show acc work for both tasks.
        out[f"{prefix}_acc"] = out[f"{prefix}_pixel_acc"]
        return out


def make_task(task: str, trainer: Mapping[str, Any]) -> ClassificationTask | SegmentationTask:
    if task == "classification":
        return ClassificationTask(label_smoothing=trainer["label_smoothing"])
    loss = "bce_dice" if trainer["loss"] == "auto" else trainer["loss"]
    return SegmentationTask(loss_name=loss, pos_weight=float(trainer["pos_weight"]))


def targets_for(task: str, y: Tensor) -> Tensor:
    """Loader targets -> what the loss takes (masks as float (B,1,H,W))."""
    if task == "segmentation" and y.dim() == 3:
        return y.unsqueeze(1).float()
    if task == "segmentation":
        return y.float()
    return y
