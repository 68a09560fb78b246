"""The one epoch loop both trainables share.

Per epoch: freeze schedule -> train -> validate -> one flat metric dict -> report with a
checkpoint (model, optimizer, scheduler, epoch, RNG state) so ASHA-paused and retried trials
resume exactly. A non-finite loss ends the trial as "diverged" with its last metrics instead of
raising, so the study records it and goes on.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainables import ray_io
from trainables.config import bundle_info, model_config, split_config, with_defaults
from trainables.data import AugmentConfig, DataBundle, TensorLoader
from trainables.models import build_model, check_constraints
from trainables.optim import build_optimizer, build_scheduler, is_frozen
from trainables.tasks import make_task, targets_for
from trainables.tb_logger import TrialLogger, denormalize


@dataclass(frozen=True)
class TrialSetup:
    """What the orchestrator fixes for every trial of a stage (passed via tune.with_parameters)."""

    task: str  # "classification" | "segmentation"
    metric: str = "val_acc"
    mode: str = "max"
    constraints: dict[str, Any] = field(default_factory=dict)
    image_every: int = 5  # epochs between TensorBoard image summaries


def worst_value(mode: str) -> float:
    return -math.inf if mode == "max" else math.inf


def uses_channels_last(trainer: dict[str, Any], device: torch.device) -> bool:
    """channels_last only on CUDA (see trainables.config: oneDNN crashes with it on CPU)."""
    return bool(trainer["channels_last"]) and device.type == "cuda"


def select_device() -> torch.device:
    """CUDA only when this trial was given a GPU (Ray sets CUDA_VISIBLE_DEVICES per trial)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def autocast_for(
    device: torch.device, precision: str
) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


class Diverged(Exception):
    def __init__(self, where: str, value: float) -> None:
        super().__init__(f"non-finite loss ({value}) during {where}")


def run_epoch(
    model: nn.Module,
    batches: Iterator[tuple[Tensor, Tensor]],
    task: Any,
    autocast: Callable[[], contextlib.AbstractContextManager],
    optimizer: torch.optim.Optimizer | None = None,
    step_scheduler: Callable[[], None] | None = None,
    grad_clip: float = 0.0,
) -> dict[str, float]:
    """Train (optimizer given) or evaluate over `batches`; returns the task's running sums."""
    training = optimizer is not None
    sums = task.new_sums()
    with torch.set_grad_enabled(training):
        for x, y in batches:
            y = targets_for(task.name, y)
            with autocast():
                logits = model(x)
                loss = task.loss(logits.float(), y)
            if not torch.isfinite(loss):
                raise Diverged("training" if training else "validation", float(loss.detach()))
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                if step_scheduler is not None:
                    step_scheduler()
            task.add(sums, logits.detach().float(), y, loss.detach())
    return sums


def run_trial(config: dict[str, Any], bundle: DataBundle, setup: TrialSetup) -> None:
    """Train one configuration, reporting every epoch; returns when done, stopped or diverged."""
    _, trainer, _ = split_config(config)
    model_cfg = model_config(with_defaults(config), bundle_info(bundle))
    device = select_device()
    torch.manual_seed(trainer["seed"])

    violations = check_constraints(model_cfg, setup.constraints) if setup.constraints else []
    if violations:
        # Sampled (random/Optuna) configs are checked here; grid points never get this far.
        reason = "; ".join(v.message for v in violations)
        ray_io.report(
            {"epoch": 0, setup.metric: worst_value(setup.mode), "infeasible": 1, "reason": reason},
            None,
        )
        return

    model = build_model(model_cfg).to(device)
    trainer["channels_last"] = uses_channels_last(trainer, device)
    if trainer["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    if trainer["encoder_checkpoint"]:
        state = ray_io.load_state(trainer["encoder_checkpoint"])
        model.load_encoder_state(state["model"])

    task = make_task(setup.task, trainer)
    loaders = make_loaders(bundle, trainer, device)
    steps = len(loaders["train"])
    optimizer = build_optimizer(model, trainer)
    scheduler, per_batch = build_scheduler(optimizer, trainer, steps)

    start_epoch, best = 1, None
    saved = ray_io.load_latest_state()
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"])
        start_epoch, best = saved["epoch"] + 1, saved["best"]

    logger = TrialLogger(ray_io.trial_dir(), config, setup.task)
    autocast = autocast_for(device, trainer["precision"])
    try:
        for epoch in range(start_epoch, trainer["epochs"] + 1):
            metrics = train_and_validate(
                model, loaders, task, optimizer, scheduler, per_batch, trainer, epoch, autocast
            )
            logger.scalars(metrics, epoch)
            if metrics.get("diverged"):
                # Ray requires the metric in every result; the worst value keeps ASHA and Optuna
                # from mistaking a diverged trial for a good one.
                metrics[setup.metric] = worst_value(setup.mode)
                ray_io.report(metrics, None)
                return
            value = metrics[setup.metric]
            improved = best is None or (value > best if setup.mode == "max" else value < best)
            best = value if improved else best
            if epoch == 1 or epoch == trainer["epochs"] or epoch % setup.image_every == 0:
                log_images(logger, model, loaders["val"], setup.task, bundle, autocast, epoch)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "epoch": epoch,
                "best": best,
                "rng": rng_state(),
                "config": dict(config),
                "model_config": model_cfg,
                "class_names": list(bundle.class_names),
                "mean": list(bundle.mean),
                "std": list(bundle.std),
            }
            ray_io.report(metrics, state)
    finally:
        logger.close()


def make_loaders(bundle: DataBundle, trainer: dict[str, Any], device: torch.device) -> dict:
    common = {
        "batch_size": trainer["batch_size"],
        "device": device,
        "mean": bundle.mean,
        "std": bundle.std,
        "channels_last": trainer["channels_last"],
        "max_batches": trainer["max_batches"],
    }
    augment = AugmentConfig.from_dict(trainer["augment"] or {})
    return {
        "train": TensorLoader(
            bundle.train,
            shuffle=True,
            augment=augment,
            seed=trainer["seed"],
            drop_last=False,
            **common,
        ),
        # Shuffled once with a fixed seed: the same order every epoch, and a capped (smoke) or
        # image-summary batch is a sample of every class rather than the first class only.
        "val": TensorLoader(bundle.val, shuffle=True, augment=None, seed=0, **common),
    }


def train_and_validate(
    model: nn.Module,
    loaders: dict,
    task: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    per_batch: bool,
    trainer: dict[str, Any],
    epoch: int,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> dict[str, float]:
    frozen = is_frozen(epoch, trainer["freeze_schedule"], trainer["unfreeze_epoch"])
    if hasattr(model, "freeze_encoder"):
        if frozen:
            model.freeze_encoder()
        else:
            model.unfreeze_encoder(trainer["unfreeze_stages"])
    loaders["train"].set_epoch(epoch)
    # How far the encoder moved this epoch: makes a freeze schedule visible in the curves.
    encoder_before = (
        [p.detach().clone() for p in model.encoder_parameters()]
        if hasattr(model, "encoder_parameters")
        else None
    )
    t0 = time.perf_counter()
    model.train()
    try:
        train_sums = run_epoch(
            model,
            iter(loaders["train"]),
            task,
            autocast,
            optimizer,
            scheduler.step if per_batch else None,
            trainer["grad_clip"],
        )
        train_time = time.perf_counter() - t0
        model.eval()
        val_sums = run_epoch(model, iter(loaders["val"]), task, autocast)
    except Diverged as err:
        return {
            "epoch": epoch,
            "diverged": 1,
            "reason": str(err),
            "lr": optimizer.param_groups[-1]["lr"],
        }
    metrics = {"epoch": epoch, **task.finish(train_sums, "train"), **task.finish(val_sums, "val")}
    lr = optimizer.param_groups[-1]["lr"]  # last group = the head / decoder (base LR)
    if scheduler is not None and not per_batch:
        if trainer["scheduler"] == "plateau":
            scheduler.step(metrics["val_loss"])
        else:
            scheduler.step()
    if encoder_before is not None:
        moved = sum(
            float((p.detach() - b).float().pow(2).sum())
            for p, b in zip(model.encoder_parameters(), encoder_before, strict=True)
        )
        metrics["encoder_update_norm"] = math.sqrt(moved)
    metrics.update(
        lr=lr,
        encoder_frozen=int(frozen) if hasattr(model, "freeze_encoder") else 0,
        diverged=0,
        train_time_s=train_time,
        epoch_time_s=time.perf_counter() - t0,
        images_per_s=train_sums["n"] / max(train_time, 1e-9),
    )
    return metrics


@torch.no_grad()
def log_images(
    logger: TrialLogger,
    model: nn.Module,
    val_loader: TensorLoader,
    task: str,
    bundle: DataBundle,
    autocast: Callable[[], contextlib.AbstractContextManager],
    epoch: int,
    count: int = 8,
) -> None:
    """A few validation predictions: a green/red frame for right/wrong classes, or a triptych of
    input | predicted mask | ground truth for segmentation."""
    model.eval()
    x, y = next(iter(val_loader))
    x, y = x[:count], y[:count]
    with autocast():
        logits = model(x).float()
    images = denormalize(x, bundle.mean, bundle.std)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if task == "classification":
        right = (logits.argmax(1) == y).view(-1, 1, 1, 1)
        frame = torch.where(
            right,
            torch.tensor([0.0, 0.8, 0.0], device=x.device).view(1, 3, 1, 1),
            torch.tensor([0.9, 0.0, 0.0], device=x.device).view(1, 3, 1, 1),
        )
        padded = frame.expand(-1, -1, images.shape[2] + 4, images.shape[3] + 4).clone()
        padded[:, :, 2:-2, 2:-2] = images
        logger.images("val/predictions", padded, epoch)
    else:
        pred = (logits > 0).float().expand(-1, 3, -1, -1)
        truth = targets_for(task, y).float().expand(-1, 3, -1, -1)
        logger.images("val/input_prediction_truth", torch.cat([images, pred, truth], dim=3), epoch)
