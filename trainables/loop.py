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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainables import ray_io
from trainables.config import bundle_info
from trainables.contract import REPORTED_AGAIN, is_better, worst_value
from trainables.data import AugmentConfig, DataBundle, TensorLoader
from trainables.ema import eval_weights, make_ema
from trainables.mixing import make_mixer
from trainables.models import EncoderDecoderModel, build_model, check_constraints
from trainables.optim import build_optimizer, build_scheduler, is_frozen
from trainables.precision import autocast_context
from trainables.progress_reporter import ProgressReporter
from trainables.tasks import make_task, targets_for
from trainables.tb_logger import TrialLogger, denormalize
from trainables.timeline import TrialClock
from trainables.trial_config import TrialConfig
from trainables.trial_probes import (
    GradientRecorder,
    feature_maps,
    receptive_fields,
    write_probes,
)


@dataclass(frozen=True)
class TrialSetup:
    """What the orchestrator fixes for every trial of a stage (passed via tune.with_parameters)."""

    task: str  # "classification" | "segmentation"
    metric: str = "val_acc"
    mode: str = "max"
    constraints: dict[str, Any] = field(default_factory=dict)
    image_every: int = 5  # epochs between TensorBoard image summaries
    # Name of the stage's progress board actor (orchestrator.live_view); None: no live progress.
    progress_board: str | None = None


def select_device() -> torch.device:
    """CUDA when this trial was given a GPU (Ray sets CUDA_VISIBLE_DEVICES per trial).

    A trial that Ray gave a GPU must not fall back to the CPU silently (hours at a tenth of
    the speed): it fails, naming the driver/CUDA mismatch.
    """
    gpus = ray_io.assigned_gpus()
    if gpus and not torch.cuda.is_available():
        raise RuntimeError(
            f"Ray assigned GPU(s) {gpus} to this trial, but torch {torch.__version__} (CUDA "
            f"{torch.version.cuda}) cannot use them: the NVIDIA driver is missing or too old "
            "for this CUDA build (check nvidia-smi), or torch is a CPU build. Fix the node's "
            "driver, or run with --gpus-per-trial 0"
        )
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
    on_batch: Callable[[int, int], None] | None = None,
    after_backward: Callable[[], None] | None = None,
    mix: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]] | None = None,
) -> dict[str, float]:
    """Train (optimizer given) or evaluate over `batches`; returns the task's running sums.

    `on_batch(batches_done, images_done)` is called after every batch (live progress; it
    throttles itself).
    """
    training = optimizer is not None
    sums = task.new_sums()
    images = 0
    with torch.set_grad_enabled(training):
        for done, (x, y) in enumerate(batches, start=1):
            y = targets_for(task.name, y)
            target = y
            if mix is not None and training:  # mixup/cutmix: soft targets, accuracy vs dominant
                x, target, y = mix(x, y)
            with autocast():
                logits = model(x)
                loss = task.loss(logits.float(), target)
            if not torch.isfinite(loss):
                raise Diverged("training" if training else "validation", float(loss.detach()))
            if optimizer is not None:  # training
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if after_backward is not None:  # gradient-flow probe (trial_probes)
                    after_backward()
                if grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                if step_scheduler is not None:
                    step_scheduler()
            task.add(sums, logits.detach().float(), y, loss.detach())
            images += len(x)
            if on_batch is not None:
                on_batch(done, images)
    return sums


@dataclass
class TrialState:
    """What one trial trains with; `start_epoch`/`best` come from a checkpoint on resume."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    per_batch: bool
    loaders: dict
    task: Any
    autocast: Callable[[], contextlib.AbstractContextManager]
    start_epoch: int = 1
    best: float | None = None
    best_epoch: int = 0
    # Input (mean, std): the data's own, or a pretrained encoder's (what its weights expect).
    norm: tuple[tuple[float, ...], tuple[float, ...]] = ((0.0,), (1.0,))
    gradients: GradientRecorder = field(default_factory=lambda: GradientRecorder(nn.Identity()))
    rf: list[dict[str, Any]] = field(default_factory=list)  # receptive field of every layer
    # Every epoch reported so far (saved with each checkpoint; see contract.CHECKPOINT_HISTORY)
    # and how many epochs this process has trained (1 marks the first epoch of an attempt).
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_this_start: int = 0
    clock: TrialClock | None = None  # this attempt's start and set-up (the run's timeline)
    mix: Any = None  # trainables.mixing.Mixer when mixup/cutmix is on
    ema: Any = None  # trainables.ema.ModelEma when ema_decay > 0


def run_trial(
    config: TrialConfig | Mapping[str, Any], bundle: DataBundle, setup: TrialSetup
) -> None:
    """Train one configuration, reporting every epoch; returns when done, stopped or diverged.

    `config` as Ray gives it (a dict) is built into a TrialConfig here, once, and validated."""
    clock = TrialClock.start()
    config = TrialConfig.from_dict(config, setup.task)
    model_cfg = config.model_config(bundle_info(bundle))
    if report_infeasible(model_cfg, setup):
        return
    device = select_device()
    torch.manual_seed(config.trainer["seed"])
    run = config.on_device(device)
    state = build_trial(model_cfg, run, bundle, setup, device)
    resume_from_checkpoint(state)
    state.clock = clock
    logger = TrialLogger(ray_io.trial_dir(), run.as_dict(), setup.task)
    try:
        train_epochs(state, run, model_cfg, bundle, setup, logger)
    finally:
        logger.close()


def report_infeasible(model_cfg: dict[str, Any], setup: TrialSetup) -> bool:
    """Sampled (random/Optuna) configs are checked here; grid points never get this far."""
    violations = check_constraints(model_cfg, setup.constraints) if setup.constraints else []
    if violations:
        reason = "; ".join(v.message for v in violations)
        ray_io.report(
            {"epoch": 0, setup.metric: worst_value(setup.mode), "infeasible": 1, "reason": reason},
            None,
        )
    return bool(violations)


def build_trial(
    model_cfg: dict[str, Any],
    run: TrialConfig,
    bundle: DataBundle,
    setup: TrialSetup,
    device: torch.device,
) -> TrialState:
    """Model (with its encoder checkpoint), loaders, optimizer and LR schedule of one trial;
    `run` is its config on `device` (TrialConfig.on_device)."""
    trainer = run.trainer
    model = build_model(model_cfg).to(device)
    if trainer["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    norm = (tuple(bundle.mean), tuple(bundle.std))
    if trainer["encoder_checkpoint"]:
        encoder = ray_io.load_state(trainer["encoder_checkpoint"])
        if not isinstance(model, EncoderDecoderModel):
            raise ValueError(
                f"encoder_checkpoint is set, but model {model_cfg['model']!r} has no encoder; "
                "use it with an encoder/decoder family such as 'unet_backbone'"
            )
        model.load_encoder_state(eval_weights(encoder))
        norm = encoder_normalization(encoder, bundle)
    loaders = make_loaders(bundle, trainer, device, norm)
    optimizer = build_optimizer(model, trainer)
    scheduler, per_batch = build_scheduler(optimizer, trainer, len(loaders["train"]))
    return TrialState(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        per_batch=per_batch,
        loaders=loaders,
        task=make_task(setup.task, trainer),
        norm=norm,
        gradients=GradientRecorder(model),
        rf=receptive_fields(model),
        autocast=autocast_context(device, trainer["precision"]),
        mix=make_mixer(trainer, setup.task, bundle_info(bundle)["num_classes"]),
        ema=make_ema(model, optimizer, trainer["ema_decay"]),
    )


def resume_from_checkpoint(state: TrialState) -> None:
    """Continue exactly where the last checkpoint left off (ASHA pause, failure retry)."""
    saved = ray_io.load_latest_state()
    if saved is None:
        return
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    if state.scheduler is not None:
        state.scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"])
    if state.ema is not None and saved.get("ema"):
        state.ema.load_state_dict(saved["ema"])
    state.start_epoch, state.best = saved["epoch"] + 1, saved["best"]
    if saved.get("unrecorded") and saved.get("metrics"):
        # The run stopped after this epoch was checkpointed but before Ray logged it: report
        # it (with its checkpoint) so every epoch is recorded once and trained once.
        again = {k: v for k, v in saved.items() if k != "unrecorded"}
        ray_io.report({**saved["metrics"], REPORTED_AGAIN: ray_io.node_id()}, again)
    state.best_epoch = saved.get("best_epoch", saved["epoch"])
    state.gradients.history = dict(saved.get("grad_history") or {})
    state.history = list(saved.get("history") or [])


def train_epochs(
    state: TrialState,
    run: TrialConfig,
    model_cfg: dict[str, Any],
    bundle: DataBundle,
    setup: TrialSetup,
    logger: TrialLogger,
) -> None:
    trainer = run.trainer
    train_loader = state.loaders["train"]
    progress = ProgressReporter(
        setup.progress_board,
        label=str(run.label or "trial"),
        epochs=trainer["epochs"],
        batches=len(train_loader),
        epoch_images=min(len(train_loader.images), len(train_loader) * train_loader.batch_size),
    )
    for epoch in range(state.start_epoch, trainer["epochs"] + 1):
        progress.start_epoch(epoch)
        if state.clock is not None:
            state.clock.training_starts()
        metrics = train_and_validate(state, trainer, epoch, progress)
        if state.clock is not None:
            metrics.update(state.clock.fields())
        if not metrics.get("diverged"):
            progress.end_training(metrics["images_per_s"], metrics["train_time_s"])
        metrics["node"] = ray_io.node_id()  # study.json's attempts say where each ran
        metrics.update(run.reported())  # what "auto" chose on this device
        logger.scalars(metrics, epoch)
        if metrics.get("diverged"):
            # Ray requires the metric in every result; the worst value keeps ASHA and Optuna
            # from mistaking a diverged trial for a good one.
            metrics[setup.metric] = worst_value(setup.mode)
            logger.flush()
            ray_io.report(metrics, None)
            return
        if is_better(setup.mode, metrics[setup.metric], state.best):
            state.best, state.best_epoch = metrics[setup.metric], epoch
        stale = epoch - state.best_epoch
        patience = trainer["early_stop_patience"]
        metrics["early_stopped"] = int(bool(patience) and stale >= patience)
        probes_from = time.perf_counter()
        if epoch == 1 or epoch == trainer["epochs"] or epoch % setup.image_every == 0:
            log_images(
                logger,
                state.model,
                state.loaders["val"],
                setup.task,
                state.norm,
                state.autocast,
                epoch,
            )
        last = epoch == trainer["epochs"] or bool(metrics["early_stopped"])
        record_probes(state, last)
        metrics["probe_s"] = time.perf_counter() - probes_from  # image summaries + probes
        logger.flush()  # the epoch's events reach storage with this epoch's checkpoint sync
        state.epochs_this_start += 1
        state.history.append(history_row(metrics, epoch, state.epochs_this_start))
        saved = checkpoint_state(state, epoch, run, model_cfg, bundle)
        ray_io.report(metrics, {**saved, "metrics": metrics})
        if metrics["early_stopped"]:  # no better val metric in `patience` epochs
            return


def history_row(metrics: dict[str, Any], epoch: int, since_start: int) -> dict[str, Any]:
    """One epoch as Ray's result.json would hold it (the scalar metrics, the epoch, and the
    count Ray calls iterations_since_restore), kept so a lost result.json row can be restored."""
    row = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
    return {**row, "epoch": epoch, "iterations_since_restore": since_start}


def record_probes(state: TrialState, with_maps: bool) -> None:
    """probes.json (gradient norms so far, receptive fields) into the trial's folder; at the
    last epoch also the feature maps of one fixed validation image (probes.npz)."""
    maps = image = None
    if with_maps:
        x, _ = next(iter(state.loaders["val"]))
        with state.autocast():
            maps = feature_maps(state.model, x)
        image = (denormalize(x[:1], *state.norm)[0].permute(1, 2, 0) * 255).round()
        image = image.to(torch.uint8).cpu().numpy()
    write_probes(ray_io.trial_dir(), state.gradients, state.rf, maps, image)


def checkpoint_state(
    state: TrialState,
    epoch: int,
    run: TrialConfig,
    model_cfg: dict[str, Any],
    bundle: DataBundle,
) -> dict[str, Any]:
    """Everything a resumed trial, the evaluation and a replay need from this epoch (the config
    as the study gave it: a replay resolves it on its own device)."""
    return {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
        "ema": state.ema.state_dict() if state.ema is not None else None,
        "epoch": epoch,
        "best": state.best,
        "best_epoch": state.best_epoch,
        "grad_history": state.gradients.history,
        "history": list(state.history),
        "rng": rng_state(),
        "config": dict(run.given),
        "model_config": model_cfg,
        "class_names": list(bundle.class_names),
        "mean": list(state.norm[0]),
        "std": list(state.norm[1]),
    }


def encoder_normalization(
    encoder: dict[str, Any], bundle: DataBundle
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The pretrained encoder's input normalization (course B.3: frozen classifier features
    expect the classifier's mean/std), when its channels match this data; else the data's."""
    mean, std = encoder.get("mean"), encoder.get("std")
    if mean is None or std is None or len(mean) != len(bundle.mean):
        return tuple(bundle.mean), tuple(bundle.std)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def make_loaders(
    bundle: DataBundle,
    trainer: Mapping[str, Any],
    device: torch.device,
    norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> dict:
    mean, std = norm or (tuple(bundle.mean), tuple(bundle.std))
    common = {
        "batch_size": trainer["batch_size"],
        "device": device,
        "mean": mean,
        "std": std,
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
    state: TrialState,
    trainer: Mapping[str, Any],
    epoch: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """One epoch: freeze schedule, train, validate, LR step; the epoch's flat metric dict.

    `on_batch` follows the training batches (run_epoch's live-progress hook)."""
    model, optimizer = state.model, state.optimizer
    frozen = apply_freeze_schedule(model, trainer, epoch)
    state.gradients.start_epoch()
    encoder_before = encoder_snapshot(model)
    state.loaders["train"].set_epoch(epoch)
    t0 = time.perf_counter()
    try:
        model.train()
        train_sums = run_epoch(
            model,
            iter(state.loaders["train"]),
            state.task,
            state.autocast,
            optimizer,
            state.scheduler.step if state.per_batch else None,
            trainer["grad_clip"],
            on_batch,
            state.gradients,
            state.mix,
        )
        state.gradients.end_epoch(epoch)
        train_time = time.perf_counter() - t0
        model.eval()
        val_sums = run_epoch(model, iter(state.loaders["val"]), state.task, state.autocast)
        if state.ema is not None:  # val metrics of the EMA weights (trainables/ema.py)
            raw = state.task.finish(val_sums, "val")
            val_sums = run_epoch(
                state.ema.module, iter(state.loaders["val"]), state.task, state.autocast
            )
    except Diverged as err:
        lr = optimizer.param_groups[-1]["lr"]
        return {"epoch": epoch, "diverged": 1, "reason": str(err), "lr": lr}
    metrics = {
        "epoch": epoch,
        **state.task.finish(train_sums, "train"),
        **state.task.finish(val_sums, "val"),
        "lr": optimizer.param_groups[-1]["lr"],  # last group = the head / decoder (base LR)
    }
    if state.ema is not None:
        metrics.update({f"{k}_raw": v for k, v in raw.items()})
    step_epoch_scheduler(state, trainer, metrics["val_loss"])
    if encoder_before is not None:
        metrics["encoder_update_norm"] = encoder_distance(model, encoder_before)
    metrics.update(
        encoder_frozen=int(frozen),
        diverged=0,
        train_time_s=train_time,
        epoch_time_s=time.perf_counter() - t0,
        images_per_s=train_sums["n"] / max(train_time, 1e-9),
    )
    return metrics


def apply_freeze_schedule(model: nn.Module, trainer: Mapping[str, Any], epoch: int) -> bool:
    """Freeze or unfreeze an encoder for this epoch; True when it is frozen."""
    if not isinstance(model, EncoderDecoderModel):
        return False
    frozen = is_frozen(epoch, trainer["freeze_schedule"], trainer["unfreeze_epoch"])
    if frozen:
        model.freeze_encoder()
    else:
        model.unfreeze_encoder(trainer["unfreeze_stages"])
    return frozen


def encoder_snapshot(model: nn.Module) -> list[Tensor] | None:
    """The encoder's weights before the epoch, to measure how far it moved (makes a freeze
    schedule visible in the curves)."""
    if not isinstance(model, EncoderDecoderModel):
        return None
    return [p.detach().clone() for p in model.encoder_parameters()]


def encoder_distance(model: EncoderDecoderModel, before: list[Tensor]) -> float:
    moved = sum(
        float((p.detach() - b).float().pow(2).sum())
        for p, b in zip(model.encoder_parameters(), before, strict=True)
    )
    return math.sqrt(moved)


def step_epoch_scheduler(state: TrialState, trainer: Mapping[str, Any], val_loss: float) -> None:
    if state.scheduler is None or state.per_batch:
        return
    if trainer["scheduler"] == "plateau":
        state.scheduler.step(val_loss)
    else:
        state.scheduler.step()


@torch.no_grad()
def log_images(
    logger: TrialLogger,
    model: nn.Module,
    val_loader: TensorLoader,
    task: str,
    norm: tuple[tuple[float, ...], tuple[float, ...]],
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
    images = denormalize(x, norm[0], norm[1])
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
