"""An exponential moving average of a model's weights (`ema_decay`, 0 = off), as timm's ModelEmaV3.

After every optimizer step: ema = d * ema + (1 - d) * weights, for every floating-point entry of
the state_dict (BatchNorm's running statistics included); integer buffers (num_batches_tracked)
are copied. d = min(ema_decay, (1 + n) / (10 + n)) after n earlier updates: the warm-up keeps the
first epochs' average from being dominated by the random initial weights (timm's `use_warmup`,
TensorFlow's `num_updates`), and after ~10 / (1 - ema_decay) steps d is ema_decay itself.

With EMA on, a trial's per-epoch val metrics (what ASHA, Optuna and the stage's best use) and the
test evaluation are of the EMA weights, like timm's `--model-ema` (the raw weights' val accuracy
and loss are reported beside them as val_acc_raw / val_loss_raw). The checkpoint keeps both:
"model" the raw weights (what training resumes from), "ema" the average and its update count.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


def warmup_decay(decay: float, updates: int) -> float:
    """The decay of update number `updates` + 1 (see the module docstring)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class ModelEma:
    """The averaged copy of `model` (in eval mode, no gradients), updated by `update(model)`."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay={decay!r} must be in (0, 1) (0 = EMA off)")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = warmup_decay(self.decay, self.updates)
        current = model.state_dict()
        for name, avg in self.module.state_dict().items():
            value = current[name].detach()
            if avg.dtype.is_floating_point:
                avg.lerp_(value.to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(value)
        self.updates += 1

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Update after every step of `optimizer` (a post-step hook: the loop stays as it is)."""
        optimizer.register_step_post_hook(lambda _opt, _args, _kwargs: self.update(model))

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def make_ema(model: nn.Module, optimizer: torch.optim.Optimizer, decay: float) -> ModelEma | None:
    """The trial's EMA, updating after each optimizer step; None when `decay` is 0."""
    if not decay:
        return None
    ema = ModelEma(model, float(decay))
    ema.attach(model, optimizer)
    return ema


def eval_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The weights a checkpoint is evaluated with: the EMA's when the trial kept one."""
    ema = state.get("ema")
    return ema["model"] if ema else state["model"]
