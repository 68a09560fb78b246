"""Optimizers, LR schedules and the freeze schedule, all chosen by config names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trainables.models import EncoderDecoderModel

# Named optimizer + LR schedule pairs (config key `optim_preset`); "custom" leaves the keys as
# given. A preset sets these keys and nothing else: lr and weight_decay stay the study's (an SGD
# preset wants a larger lr, ~0.05-0.2, than AdamW's ~1e-3).
PRESETS: dict[str, dict[str, Any]] = {
    "custom": {},
    # AdamW with cosine decay to 0 over the trial's epochs: the course's final-model recipe.
    "adamw_cosine": {"optimizer": "adamw", "scheduler": "cosine"},
    # SGD with Nesterov momentum 0.9 and one LR cycle per trial (per-batch steps: warm-up from
    # lr/25 over the first 30% of steps, cosine down to lr/25e4; momentum cycles 0.95 -> 0.85 ->
    # 0.95), the small-data recipe of Smith & Topin 2017 (arXiv 1708.07120).
    "sgd_nesterov_onecycle": {"optimizer": "sgd", "momentum": 0.9, "scheduler": "onecycle"},
}


def apply_preset(trainer: dict[str, Any]) -> dict[str, Any]:
    """`trainer` with its `optim_preset`'s keys set (in place: HParams show what trained)."""
    name = trainer.get("optim_preset", "custom")
    if name not in PRESETS:
        raise ValueError(f"optim_preset={name!r} is not valid; choose one of {tuple(PRESETS)}")
    trainer.update(PRESETS[name])
    return trainer


def param_groups(model: nn.Module, trainer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One group, or encoder + rest when the model has an encoder (encoder LR multiplier).

    The base-LR group comes last so `param_groups[-1]["lr"]` is always the LR to log.
    """
    lr = trainer["lr"]
    if not isinstance(model, EncoderDecoderModel):
        return [{"params": list(model.parameters()), "lr": lr}]
    encoder = list(model.encoder_parameters())
    ids = {id(p) for p in encoder}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [
        {"params": encoder, "lr": lr * trainer["encoder_lr_mult"]},
        {"params": rest, "lr": lr},
    ]


def build_optimizer(model: nn.Module, trainer: Mapping[str, Any]) -> torch.optim.Optimizer:
    groups = param_groups(model, trainer)
    wd = trainer["weight_decay"]
    name = trainer["optimizer"]
    if name == "sgd":
        momentum = trainer["momentum"]
        # Nesterov needs momentum > 0; plain SGD when the study sets momentum=0.
        return torch.optim.SGD(groups, momentum=momentum, weight_decay=wd, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=wd)
    raise ValueError(f"optimizer={name!r} is not valid; choose one of sgd, adam, adamw")


def build_scheduler(
    optimizer: torch.optim.Optimizer, trainer: Mapping[str, Any], steps_per_epoch: int
) -> tuple[Any, bool]:
    """(scheduler or None, whether it steps per batch)."""
    name, epochs = trainer["scheduler"], trainer["epochs"]
    if name == "none":
        return None, False
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), False
    if name == "step":
        # Three equal phases, each 10x lower: the classic ResNet recipe scaled to the budget.
        step = max(1, epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=0.1), False
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2), False
    if name == "onecycle":
        max_lr = [g["lr"] for g in optimizer.param_groups]
        total = max(1, epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total
        ), True
    raise ValueError(
        f"scheduler={name!r} is not valid; choose one of none, cosine, step, plateau, onecycle"
    )


def is_frozen(epoch: int, schedule: str, unfreeze_epoch: int) -> bool:
    """Whether the encoder is frozen in `epoch` (1-based).

    "none": never frozen; "frozen": always; "unfreeze_at": frozen for epochs < unfreeze_epoch.
    """
    if schedule == "none":
        return False
    if schedule == "frozen":
        return True
    if schedule == "unfreeze_at":
        return epoch < unfreeze_epoch
    raise ValueError(f"freeze_schedule={schedule!r} is not valid; choose none, frozen, unfreeze_at")
