"""Shared decoding pieces: the decoded `Pool`, a reader's `Source`, file manifests, PIL decoding.

A reader (tiny_imagenet, mnist_cifar, segmentation) turns a `DataSpec` into a `Source`: the
resolved classes, the manifest of the files it will read (for the cache key) and a `decode()` that
returns a `Pool` of uint8 arrays. Splitting happens later on the pool, so a different split seed
reuses the same cache entry.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .errors import DataError, DataWarning, preview

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


@dataclass
class Pool:
    """Decoded arrays before splitting: the training pool and the official test set if any."""

    task: str
    class_ids: list[str]
    class_names: list[str]
    train_images: np.ndarray  # uint8 (N, H, W, C)
    train_targets: np.ndarray  # int64 (N,) labels or uint8 (N, H, W) masks in {0, 1}
    test_images: np.ndarray | None = None
    test_targets: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)  # unreadable files left out, for warnings


@dataclass
class Source:
    """What a reader will decode: enough to build the cache key without decoding anything."""

    dataset: str
    root: Path
    task: str
    class_ids: list[str]
    class_names: list[str]
    files: list[Path]  # every file decode() reads, for the cache manifest
    decode: Callable[[], Pool]
    options: dict[str, object] = field(default_factory=dict)  # decode options for the cache key


def manifest(root: Path, files: Sequence[Path]) -> list[tuple[str, int, int]]:
    """(path relative to root, size, mtime in ns) of each file; a changed file changes the key."""
    out = []
    for f in files:
        st = f.stat()
        out.append((os.path.relpath(f, root), st.st_size, st.st_mtime_ns))
    return out


def require_dir(path: Path, what: str, hint: str) -> None:
    """Raise DataError naming `path` if it is not a folder; `hint` says what was expected."""
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"{what} {path} {state}; {hint}")


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder (by suffix, case-insensitive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """Decode one image as uint8 RGB (H, W, 3); grayscale, CMYK, palette and RGBA become RGB.

    `size` is (width, height) for PIL; images of another size are resized bilinearly.
    """
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != size:
            im = im.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def decode_images(
    paths: Sequence[Path], size: tuple[int, int], workers: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Decode images into one uint8 (N, H, W, 3) array with a thread pool.

    Pillow releases the GIL while decoding, so threads scale without pickling arrays between
    processes. Unreadable files (zero-byte, truncated, not an image) are not raised: the returned
    bool mask marks the decoded rows and the list names the failures, for the caller's policy.
    """
    width, height = size
    out = np.zeros((len(paths), height, width, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)

    def work(i: int) -> Path | None:
        try:
            out[i] = load_rgb(paths[i], size)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            # Pillow raises OSError for truncated data, UnidentifiedImageError for non-images,
            # and SyntaxError/ValueError from a few plugins on garbage headers.
            return paths[i]
        ok[i] = True
        return None

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        failed = [p for p in pool.map(work, range(len(paths)), chunksize=256) if p is not None]
    return out, ok, failed


def warn_skipped(skipped: Sequence[str], where: str) -> None:
    """One warning for all unreadable files that were left out (the documented policy)."""
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image file(s) in {where} (zero-byte, truncated "
            f"or not an image): {preview(skipped)}; delete or replace them to silence this",
            DataWarning,
            stacklevel=3,
        )


def check_classes_nonempty(labels: np.ndarray, class_ids: Sequence[str], where: str) -> None:
    """DataError if a selected class has no usable image left (e.g. all files were unreadable)."""
    counts = np.bincount(labels, minlength=len(class_ids))
    empty = [class_ids[int(i)] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(
            f"class {preview(empty)} has no readable image in {where}; add images to its folder "
            "or leave the class out of `classes`"
        )


def resize_array(images: np.ndarray, side: int | None) -> np.ndarray:
    """Resize uint8 NHWC images to side x side (antialiased bilinear, vectorised in chunks)."""
    if side is None or images.shape[1:3] == (side, side):
        return images
    out = np.empty((len(images), side, side, images.shape[3]), dtype=np.uint8)
    for start in range(0, len(images), 4096):  # bounded float memory for 60k images
        x = torch.from_numpy(images[start : start + 4096]).permute(0, 3, 1, 2).float()
        y = F.interpolate(
            x, size=(side, side), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + 4096] = y.round_().clamp_(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def select_labels(
    labels: np.ndarray, all_ids: list[str], chosen: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(row mask, new labels) keeping the chosen classes, relabelled by their order in `chosen`."""
    new_label = np.full(len(all_ids), -1, dtype=np.int64)
    for i, cid in enumerate(chosen):
        new_label[all_ids.index(cid)] = i
    mapped = new_label[labels]
    keep = mapped >= 0
    return keep, mapped[keep]
