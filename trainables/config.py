"""The flat trial config: which keys exist, their defaults, and validation.

One flat dict per trial is what Ray Tune samples, what TensorBoard's HParams tab compares and what
study.json records. Its keys fall into data, trainer and model groups; a key that belongs to none
is a typo, and typos must fail before Ray starts, naming the key and the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.contract import DEFAULT_EPOCHS
from trainables.data import DATA_DEFAULTS, AugmentConfig
from trainables.models import family_fields, list_families
from trainables.optim import PRESETS
from trainables.precision import PRECISION_CHOICES

TRAINER_DEFAULTS: dict[str, Any] = {
    "epochs": DEFAULT_EPOCHS,
    # The fraction of `epochs` this trial trains (its LR schedule spans the shortened run): a
    # study searches the run length with it and keeps `epochs` as the budget ASHA's last rung
    # and --smoke see (trainables.contract.planned_epochs).
    "epoch_fraction": 1.0,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "scheduler": "none",
    "label_smoothing": 0.0,
    # Regularizers for small data (trainables/mixing.py, trainables/ema.py); 0 = off. Mixup and
    # CutMix are Beta(alpha, alpha) mixing weights; with both on, each batch uses one of them.
    "mixup_alpha": 0.0,
    "cutmix_alpha": 0.0,
    "ema_decay": 0.0,  # per optimizer step; val and test then use the EMA weights
    "tta": False,  # evaluation: average the softmax of each image and its horizontal flip
    # A named optimizer + LR schedule (trainables/optim.py PRESETS) that sets optimizer,
    # scheduler and momentum; "custom" uses those keys as given.
    "optim_preset": "custom",
    "grad_clip": 0.0,  # max global grad norm; 0 = off
    # "auto": bf16 autocast where the hardware runs it natively (CUDA Ampere+, CPUs with
    # AVX512-BF16/AMX), else fp32 (trainables/precision.py); the trial logs what it used.
    "precision": "auto",
    # NHWC activations on CUDA (what tensor cores want); on a CPU only where a probe measures
    # it faster and torch's oneDNN does not crash with it (trainables/memory_format.py).
    "channels_last": True,
    "augment": {},
    "loss": "auto",  # classification: cross_entropy; segmentation: bce | dice | bce_dice
    "pos_weight": 1.0,  # BCE weight of the positive (rock) class: class-imbalance aware loss
    "seed": 0,
    "freeze_schedule": "none",  # none | frozen | unfreeze_at (with unfreeze_epoch)
    "unfreeze_epoch": 0,
    "unfreeze_stages": None,  # None = whole encoder, N = the N deepest stages
    "encoder_lr_mult": 1.0,
    "encoder_checkpoint": None,
    "max_batches": None,  # cap on batches per epoch (smoke runs)
    # Stop a trial after this many epochs without a better study metric (val_iou for the
    # U-Nets, as the course recommends); 0 = train every epoch.
    "early_stop_patience": 0,
    "label": None,  # the course's name for this configuration, e.g. "3.2-B"
}

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "onecycle", "step", "plateau")
OPTIM_PRESETS = tuple(PRESETS)
FREEZE_SCHEDULES = ("none", "frozen", "unfreeze_at")
LOSSES = {
    "classification": ("auto", "cross_entropy"),
    "segmentation": ("auto", "bce", "dice", "bce_dice"),
}

DATA_KEYS = frozenset(DATA_DEFAULTS)
TRAINER_KEYS = frozenset(TRAINER_DEFAULTS)


class ConfigError(ValueError):
    """A trial config that cannot run; the message names the key and what would be valid."""


def model_family(config: Mapping[str, Any]) -> str:
    family = config.get("model")
    if family not in list_families():
        raise ConfigError(
            f"model={family!r} is not a model family; valid: {', '.join(list_families())}"
        )
    return family


def model_keys(config: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(family_fields(model_family(config))) | {"model"}


def valid_keys(config: Mapping[str, Any]) -> frozenset[str]:
    return DATA_KEYS | TRAINER_KEYS | model_keys(config)


def validate_config(config: Mapping[str, Any], task: str) -> None:
    """Raise ConfigError for unknown keys or out-of-range choices (before any trial runs)."""
    allowed = valid_keys(config)
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown} for model {config['model']!r}; valid keys: "
            f"{', '.join(sorted(allowed))}"
        )
    choices = {
        "optimizer": OPTIMIZERS,
        "scheduler": SCHEDULERS,
        "precision": PRECISION_CHOICES,
        "freeze_schedule": FREEZE_SCHEDULES,
        "loss": LOSSES[task],
        "optim_preset": OPTIM_PRESETS,
    }
    for key, valid in choices.items():
        if key in config and config[key] not in valid:
            raise ConfigError(f"{key}={config[key]!r} is not valid; choose one of {valid}")
    if "augment" in config:
        try:
            AugmentConfig.from_dict(config["augment"] or {})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"augment={config['augment']!r}: {err}") from None
    patience = config.get("early_stop_patience", 0)
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
        raise ConfigError(
            f"early_stop_patience={patience!r} must be a whole number of epochs >= 0 (0 = off)"
        )
    validate_regularizers(config, task)
    for key in ("epochs", "batch_size"):
        if key in config and (not isinstance(config[key], int) or config[key] < 1):
            raise ConfigError(f"{key}={config[key]!r} must be a positive integer")
    if "lr" in config and not (isinstance(config["lr"], int | float) and config["lr"] > 0):
        raise ConfigError(f"lr={config['lr']!r} must be a positive number")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_regularizers(config: Mapping[str, Any], task: str) -> None:
    """mixup_alpha, cutmix_alpha >= 0 (mixing only where the labels are classes);
    0 <= ema_decay < 1; 0 < epoch_fraction <= 1; tta a bool."""
    for key in ("mixup_alpha", "cutmix_alpha"):
        value = config.get(key, 0.0)
        if not _is_number(value) or value < 0:
            raise ConfigError(
                f"{key}={value!r} must be a number >= 0 (the Beta(alpha, alpha) parameter of "
                "the mixing weight; 0 = off, 0.2-1.0 is usual)"
            )
        if value > 0 and task != "classification":
            raise ConfigError(
                f"{key}={value!r}: mixing images needs class labels; {task} trials take {key}=0"
            )
    decay = config.get("ema_decay", 0.0)
    if not _is_number(decay) or not 0 <= decay < 1:
        raise ConfigError(
            f"ema_decay={decay!r} must be a number in [0, 1): the per-step decay of the weight "
            "average (0 = off, 0.99-0.9999 is usual)"
        )
    fraction = config.get("epoch_fraction", 1.0)
    if not _is_number(fraction) or not 0 < fraction <= 1:
        raise ConfigError(
            f"epoch_fraction={fraction!r} must be a number in (0, 1]: the part of `epochs` the "
            "trial trains (1 = all)"
        )
    tta = config.get("tta", False)
    if not isinstance(tta, bool):
        raise ConfigError(f"tta={tta!r} must be True or False (flip test-time augmentation)")


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with every data and trainer key present (model defaults stay in the model).
    The code reads a trial's config through trainables.trial_config.TrialConfig, which applies
    these once."""
    return {**DATA_DEFAULTS, **TRAINER_DEFAULTS, **config}


def model_config(config: Mapping[str, Any], data_info: Mapping[str, Any]) -> dict[str, Any]:
    """The model part of a trial config, with the data set's facts filled in.

    `data_info`: num_classes (None for segmentation), in_channels, image_size. The model never
    sees a class count in the study file: it follows the data, so `classes=7` just works.
    """
    keys = model_keys(config)
    model_cfg = {k: v for k, v in config.items() if k in keys}
    fields = family_fields(model_cfg["model"])
    for key in ("num_classes", "in_channels", "image_size"):
        if key in fields and data_info.get(key) is not None:
            model_cfg[key] = data_info[key]
    return model_cfg


def bundle_info(bundle: Any) -> dict[str, Any]:
    """`data_info` of a DataBundle."""
    return {
        "num_classes": len(bundle.class_names) if bundle.task == "classification" else None,
        "in_channels": bundle.in_channels,
        "image_size": bundle.image_size,
    }
