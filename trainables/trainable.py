"""The trainables Ray Tune runs: plain functions, config -> per-epoch reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainables.data import DataBundle
from trainables.loop import TrialSetup, run_trial


def train_classifier(config: dict[str, Any], *, bundle: DataBundle, setup: TrialSetup) -> None:
    """One classification trial (ResNets, small CNNs, fully connected nets)."""
    run_trial(config, bundle, setup)


def train_segmenter(config: dict[str, Any], *, bundle: DataBundle, setup: TrialSetup) -> None:
    """One binary segmentation trial (U-Net, U-Net with a classifier backbone)."""
    run_trial(config, bundle, setup)


TRAINABLES: dict[str, Callable[..., None]] = {
    "classification": train_classifier,
    "segmentation": train_segmenter,
}
DEFAULT_METRIC = {"classification": ("val_acc", "max"), "segmentation": ("val_iou", "max")}
