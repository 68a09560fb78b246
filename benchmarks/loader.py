"""Seconds per epoch: per-item PIL Dataset + DataLoader versus the cached TensorLoader.

Both pipelines iterate the full train split of the first 10 Tiny ImageNet classes (4,500 images
with the default val_fraction 0.1) in batches of 128 with the same augmentation: random crop with
4 pixels of zero padding, horizontal flip, then normalization with the train mean/std.

    python benchmarks/loader.py [--root ../shared/datasets/tiny-imagenet-200] [--workers 2]

(a) TinyImageNetDataset (one JPEG opened per item) + torchvision transforms + torch DataLoader.
(b) load_bundle (decode once, cache) + TensorLoader on CPU; its first epoch is a warm-up and
    excluded, and the cold decode and the cache hit are reported separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.data import (
    AugmentConfig,
    DataSpec,
    TensorLoader,
    TinyImageNetDataset,
    load_bundle,
)

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tiny-imagenet-200"


def time_epoch(loader: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Wall seconds of one full pass over `loader`."""
    start = time.perf_counter()
    n = 0
    for x, _y in loader:
        n += x.shape[0]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for (a)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per pipeline")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads of the main process (b runs here; a's workers use 1 each)",
    )
    args = parser.parse_args()
    # One thread by default: on a shared 2-core machine OpenMP's spinning barriers make 2-thread
    # runs up to 10x slower whenever another process holds a core, which drowns the comparison.
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as cache_dir:
        spec = DataSpec("tiny_imagenet", args.root, classes=args.classes)
        start = time.perf_counter()
        bundle = load_bundle(spec, cache_dir=Path(cache_dir))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        bundle = load_bundle(spec, cache_dir=Path(cache_dir))
        warm = time.perf_counter() - start
    n_train = len(bundle.train)

    # (a) the course pipeline over as many images as (b)'s train split (a shuffled subset of the
    # same folders: the per-item dataset has no split of its own).
    tf = transforms.Compose(
        [
            transforms.RandomCrop(64, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(bundle.mean, bundle.std),
        ]
    )
    dataset = TinyImageNetDataset(args.root, classes=args.classes, transform=tf)
    subset = torch.utils.data.Subset(dataset, list(range(n_train)))
    loader_a = torch.utils.data.DataLoader(
        subset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )
    loader_b = TensorLoader(
        bundle.train,
        args.batch_size,
        "cpu",
        augment=AugmentConfig(hflip=True, crop_padding=4),
        mean=bundle.mean,
        std=bundle.std,
    )
    # Alternate the epochs so both pipelines see the same machine load (a shared machine is
    # noisy); epoch 0 of each is a warm-up (worker start-up for (a)) and not counted.
    times_a, times_b = [], []
    for epoch in range(args.epochs + 1):
        ta, tb = time_epoch(loader_a), time_epoch(loader_b)
        if epoch > 0:
            times_a.append(ta)
            times_b.append(tb)

    a, b = statistics.median(times_a), statistics.median(times_b)
    print(
        f"Tiny ImageNet, first {args.classes} classes, train split {n_train} images, "
        f"batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
        f"CPU cores {os.cpu_count()}"
    )
    print("augmentation: random crop (pad 4, zeros) + horizontal flip + normalize\n")
    print(f"{'pipeline':<58} {'s/epoch':>8} {'min':>7} {'img/s':>8}")
    print(
        f"{'(a) TinyImageNetDataset + DataLoader, workers=' + str(args.workers):<58} "
        f"{a:8.3f} {min(times_a):7.3f} {n_train / a:8.0f}"
    )
    print(
        f"{'(b) TensorLoader (cached uint8 tensor, batched augment)':<58} "
        f"{b:8.3f} {min(times_b):7.3f} {n_train / b:8.0f}"
    )
    print(
        f"\nspeed-up (a)/(b): {a / b:.1f}x by median, {min(times_a) / min(times_b):.1f}x by min "
        f"({args.epochs} timed epochs each, alternated)"
    )
    print(f"one-off for (b): cold decode + cache write {cold:.2f} s, cache hit load {warm:.2f} s")


if __name__ == "__main__":
    main()
