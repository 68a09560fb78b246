"""What a stage's images went through before the first layer (course B.1: resize/crop
documented), written from the trials' effective configuration in study.json (`image_size`,
`augment`) and, where the stage was evaluated, from its evaluation's recorded facts (the data
set's own image side, the normalization of the checkpoint).

The meaning of each augment key is the data layer's (trainables/data/augment.AugmentConfig): one
sentence per key, its numbers always from the configuration.
"""

from __future__ import annotations

import json
from typing import Any

from analysis.evaluation import Evaluation
from analysis.rundir import StageResults


def _side(size: Any) -> str:
    if isinstance(size, list | tuple):
        return "×".join(str(s) for s in size)
    return f"{size}×{size}"


def _same(size: Any, other: Any) -> bool:
    as_pair = lambda v: tuple(v) if isinstance(v, list | tuple) else (v, v)  # noqa: E731
    return as_pair(size) == as_pair(other)


def resize_text(image_size: Any, facts: dict[str, Any], task: str = "classification") -> str:
    source = facts.get("source_size")
    dataset = facts.get("dataset")
    own = f" ({dataset}'s own size)" if dataset else " (the data set's own size)"
    if image_size is None:
        return (
            "Size: "
            + (f"{_side(source)}{own}" if source else "the data set's own size")
            + ", no resize."
        )
    if source and _same(source, image_size):
        return f"Size: {_side(image_size)}{own}, no resize (image_size={image_size})."
    start = f"from {_side(source)}{own} " if source else ""
    return (
        f"Resize: {start}to {_side(image_size)} (image_size={image_size}), once when the data set "
        "is decoded: the whole image, bilinear, no crop"
        + (" (masks: nearest neighbour)" if task == "segmentation" else "")
        + ". Train, val and test images all get this resize."
    )


def augment_text(augment: dict[str, Any] | None, image_size: Any) -> str:
    """The training augmentation of one config, one clause per active key."""
    aug = augment or {}
    side = _side(image_size) if image_size is not None else "the input size"
    parts = []
    rrc = aug.get("random_resized_crop")
    if rrc:
        lo, hi = (float(v) for v in rrc)
        parts.append(
            f"random resized crop of {100 * lo:.0f}–{100 * hi:.0f}% of the image area (aspect "
            f"ratio 3/4–4/3), resized back to {side} (bilinear)"
        )
    pad = aug.get("crop_padding")
    if pad:
        parts.append(f"random crop of {side} after zero-padding by {pad} px")
    if aug.get("hflip"):
        parts.append("horizontal flip with probability 0.5")
    if aug.get("vflip"):
        parts.append("vertical flip with probability 0.5")
    jitter = aug.get("color_jitter")
    if jitter:
        c = float(jitter)
        parts.append(
            f"colour jitter {c:g}: brightness, contrast and saturation factors drawn per image "
            f"from [{1 - c:.2f}, {1 + c:.2f}]"
        )
    if not parts:
        return "Augmentation: none (augment not set)."
    return (
        "Training augmentation (train split only, drawn per image for every batch): "
        + "; ".join(parts)
        + ". Val and test images are not augmented."
    )


def normalize_text(facts: dict[str, Any], encoder: bool = False) -> str:
    """Where the mean/std came from: a pretrained encoder keeps the normalization it was trained
    with (trainables/loop.encoder_normalization), so its U-Net does not use its own split's."""
    mean, std = facts.get("mean"), facts.get("std")
    numbers = ""
    if mean and std:
        fmt = ", ".join
        numbers = (
            " (mean "
            + fmt(f"{float(m):.3f}" for m in mean)
            + "; std "
            + fmt(f"{float(s):.3f}" for s in std)
            + ", as stored in the evaluated checkpoint)"
        )
    if encoder:
        return (
            "Normalization: per channel, with the pretrained encoder's training mean and std"
            + numbers
            + ": the classifier's data statistics, which its features expect, not "
            "this data set's own."
        )
    split = f"the {facts['dataset']} train split" if facts.get("dataset") else "the train split"
    return f"Normalization: per channel, with {split}'s mean and std{numbers}."


def preprocessing_lines(stage: StageResults, ev: Evaluation | None, task: str) -> list[str]:
    """Bullets describing the stage's preprocessing; one group per distinct setting."""
    facts = ev.preprocessing if ev is not None and ev.preprocessing else {}
    groups: dict[str, list[str]] = {}
    settings: dict[str, tuple[Any, Any]] = {}
    for t in stage.trials:
        if not t.config:
            continue
        key = json.dumps([t.config.get("image_size"), t.config.get("augment")], sort_keys=True)
        groups.setdefault(key, []).append(t.name)
        settings[key] = (t.config.get("image_size"), t.config.get("augment"))
    lines = []
    for key, names in groups.items():
        size, augment = settings[key]
        who = "" if len(groups) == 1 else f"{', '.join(names)}: "
        lines.append(who + resize_text(size, facts, task))
        lines.append(who + augment_text(augment, size))
    if lines:
        encoder = any(t.config.get("encoder_checkpoint") for t in stage.trials)
        lines.append(normalize_text(facts, encoder))
    return lines
