"""Stratified seeded splits and normalization statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainables.data import (
    DataError,
    DataSpec,
    channel_stats,
    load_bundle,
    stratified_split,
    write_tiny_imagenet,
)


def test_stratified_split_keeps_class_proportions() -> None:
    labels = np.repeat(np.arange(4), [100, 200, 50, 400])
    train, val, test = stratified_split(labels, 0.1, 0.2, seed=0)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == 0
    assert len(train) + len(val) + len(test) == len(labels)
    for idx, fraction in ((val, 0.1), (test, 0.2), (train, 0.7)):
        counts = np.bincount(labels[idx], minlength=4)
        assert np.allclose(counts, np.array([100, 200, 50, 400]) * fraction, atol=1)


def test_seeds_are_reproducible_and_distinct() -> None:
    labels = np.repeat(np.arange(3), 30)
    a = stratified_split(labels, 0.2, 0.2, seed=4)
    b = stratified_split(labels, 0.2, 0.2, seed=4)
    c = stratified_split(labels, 0.2, 0.2, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_empty_split_with_nonzero_fraction_is_an_error() -> None:
    with pytest.raises(DataError, match=r"val_fraction=0.01 of 6 samples leaves the val split"):
        stratified_split(np.arange(6) % 2, 0.01, 0.0, seed=0)


def test_tiny_strata_keep_a_training_row() -> None:
    # One class of a single row and a split smaller than the number of classes: scikit-learn
    # refuses both, the fallback still splits and keeps every class in train.
    labels = np.array([0] * 10 + [1] * 10 + [2])
    train, val, test = stratified_split(labels, 0.1, 0.1, seed=0)
    assert len(train) + len(val) + len(test) == len(labels)
    assert set(labels[train]) == {0, 1, 2} and len(val) >= 1 and len(test) >= 1
    assert len(np.intersect1d(val, test)) == 0


def test_bundle_official_vs_holdout(tmp_path: Path) -> None:
    root = write_tiny_imagenet(tmp_path / "t", n_classes=3, train_per_class=20, val_per_class=4)
    official = load_bundle(DataSpec("tiny_imagenet", root, val_fraction=0.25), tmp_path / "c")
    assert (len(official.train), len(official.val), len(official.test)) == (45, 15, 12)
    holdout = load_bundle(
        DataSpec(
            "tiny_imagenet", root, val_fraction=0.25, test_fraction=0.25, test_split="holdout"
        ),
        tmp_path / "c",
    )
    assert (len(holdout.train), len(holdout.val), len(holdout.test)) == (30, 15, 15)
    assert np.bincount(holdout.test.targets).tolist() == [5, 5, 5]


def test_channel_stats_match_numpy() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=7)
    x = images.reshape(-1, 3) / 255
    assert np.allclose(mean, x.mean(0)) and np.allclose(std, x.std(0))
    _, flat = channel_stats(np.full((2, 4, 4, 1), 9, np.uint8))
    assert flat[0] > 0  # a constant channel still normalizes without dividing by zero
