"""`load_bundle`: spec -> cached pool -> stratified splits + normalization statistics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import load_or_build
from .decode import Pool, warn_skipped
from .errors import DataError
from .registry import get_dataset
from .spec import DataSpec
from .split import stratified_split


@dataclass
class Split:
    """One split: uint8 NHWC images and int64 (N,) labels or uint8 (N, H, W) {0,1} masks."""

    images: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class DataBundle:
    """Everything a trial needs from the data set (picklable, shared via Ray's object store).

    `mean`/`std` are per channel in [0, 1], computed on the train split only. `image_size` is the
    side of the square images (every data set at native size, and any with `spec.image_size`);
    only non-square images (e.g. raw 720x480 MOON renders without `image_size`) give a
    (height, width) tuple. `image_shape` is always (height, width). `cache_path`/`from_cache` say
    where the decoded pool lives and whether this load was a cache hit; `path` is the data set
    folder it was read from (`DataSpec.path`).
    """

    name: str
    task: str
    class_names: list[str]
    class_ids: list[str]
    train: Split
    val: Split
    test: Split
    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_channels: int
    image_size: int | tuple[int, int]
    cache_path: Path | None = None
    from_cache: bool = False
    path: Path | None = None
    data_root: Path | None = None  # the root `path` was found under (replay reads it back)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return (int(self.train.images.shape[1]), int(self.train.images.shape[2]))

    @property
    def num_classes(self) -> int:
        """Number of classes (1 for binary segmentation: one sigmoid output)."""
        return len(self.class_ids)


def channel_stats(images: np.ndarray, chunk: int = 2048) -> tuple[tuple[float, ...], ...]:
    """Per-channel (mean, std) of uint8 NHWC images scaled to [0, 1], in float64 chunks."""
    if len(images) == 0:
        raise DataError("the train split is empty; cannot compute normalization statistics")
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].reshape(-1, channels).astype(np.float64)
        total += x.sum(0)
        total_sq += np.square(x).sum(0)
    count = images.size / channels
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    # A constant channel would divide by zero in normalization; 1/255 keeps it finite.
    std = np.maximum(std, 1.0)
    return tuple((mean / 255).tolist()), tuple((std / 255).tolist())


def split_pool(pool: Pool, spec: DataSpec) -> tuple[Split, Split, Split]:
    """Stratified train/val/test; test is the official set or a holdout per `spec.test_split`."""
    if pool.task == "segmentation":
        # Stratify on "has any rock": e.g. 70 of MARS_ROCKS_BINARY's 400 tiles have none.
        strata = pool.train_targets.reshape(len(pool.train_targets), -1).max(1)
    else:
        strata = pool.train_targets
    holdout = spec.uses_holdout_test or pool.test_images is None
    test_fraction = spec.test_fraction if holdout else 0.0
    tr, va, te = stratified_split(strata, spec.val_fraction, test_fraction, spec.split_seed)

    def take(idx: np.ndarray) -> Split:
        return Split(pool.train_images[idx], pool.train_targets[idx])

    if holdout or pool.test_images is None or pool.test_targets is None:
        return take(tr), take(va), take(te)
    return take(tr), take(va), Split(pool.test_images, pool.test_targets)


def load_bundle(spec: DataSpec, cache_dir: Path | None = None) -> DataBundle:
    """Decode (or load from cache) the data set of `spec` and split it.

    Args:
        spec: what to load.
        cache_dir: cache folder; None means ``$ARCHSWEEP_CACHE`` or ``~/.cache/archsweep``.

    Raises:
        DataError: missing folder, wrong layout, unknown class, bad mask, empty class.
    """
    source = get_dataset(spec.dataset).reader(spec)
    pool, path, hit = load_or_build(source, cache_dir)
    if hit:
        warn_skipped(pool.skipped, str(source.root))  # the policy warns on every load
    train, val, test = split_pool(pool, spec)
    mean, std = channel_stats(train.images)
    height, width = int(train.images.shape[1]), int(train.images.shape[2])
    return DataBundle(
        name=spec.dataset,
        task=pool.task,
        class_names=list(pool.class_names),
        class_ids=list(pool.class_ids),
        train=train,
        val=val,
        test=test,
        mean=mean,
        std=std,
        in_channels=int(train.images.shape[-1]),
        image_size=height if height == width else (height, width),
        cache_path=path,
        from_cache=hit,
        path=spec.path,
    )
