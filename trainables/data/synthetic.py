"""Small synthetic data sets in the REAL on-disk formats, for tests and smoke runs.

The files go through exactly the readers users' data go through (JPEG/PNG on disk, the official
text files), and the images carry learnable signal: Tiny ImageNet-style classes differ by colour
and stripe orientation. The lunar stand-in lives in `lunar_synth` (a command: `make_lunar`).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def class_image(k: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB: hue by class, stripes at a class angle, random phase, shift and noise."""
    r, g, b = colorsys.hsv_to_rgb(k / max(n, 1), 0.7, 0.85)
    base = np.array([r, g, b]) * 255
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = np.pi * k / max(n, 1)
    phase = rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * 4 * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    img = base * (0.65 + 0.3 * stripes[..., None]) + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_tiny_imagenet(
    root: str | Path,
    n_classes: int = 4,
    train_per_class: int = 30,
    val_per_class: int = 6,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write a Tiny ImageNet-layout data set into `root` (the tiny-imagenet-200 folder).

    Writes wnids.txt, words.txt (with extra unrelated entries, like the real file),
    train/<wnid>/images/<wnid>_<i>.JPEG, train/<wnid>/<wnid>_boxes.txt, val/images/val_<i>.JPEG
    and val/val_annotations.txt. Class k's wnid is ``n9000000k`` and its name ``pattern<k>``.

    Returns:
        `root` as a Path.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    wnids = [f"n{90000000 + k:08d}" for k in range(n_classes)]
    (root / "val" / "images").mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    words = (
        ["n00001740\tentity"]
        + [f"{w}\tpattern{k}, synthetic class {k}" for k, w in enumerate(wnids)]
        + ["n99999999\tunused, not selected"]
    )
    (root / "words.txt").write_text("\n".join(words) + "\n")
    box = f"0\t0\t{size - 1}\t{size - 1}"
    for k, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(train_per_class):
            name = f"{wnid}_{i}.JPEG"
            Image.fromarray(class_image(k, n_classes, size, rng)).save(folder / name, quality=90)
            lines.append(f"{name}\t{box}")
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(lines) + "\n")
    ann = []
    for i in range(n_classes * val_per_class):
        k = i % n_classes
        name = f"val_{i}.JPEG"
        img = class_image(k, n_classes, size, rng)
        Image.fromarray(img).save(root / "val" / "images" / name, quality=90)
        ann.append(f"{name}\t{wnids[k]}\t{box}")
    (root / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    return root


def write_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("airplane", "automobile", "bird"),
    train_per_class: int = 20,
    test_per_class: int = 5,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """Write a CIFAR-10-style image folder: train/<class>/NNNN.jpg and test/<class>/NNNN.jpg."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = class_image(k, len(classes), size, rng)
                Image.fromarray(img).save(folder / f"{i:04d}.jpg", quality=90)
    return root
