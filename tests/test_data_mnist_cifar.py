"""MNIST (shared, torchvision layout), CIFAR-10 (pickles and image folder), downloads offline."""

from __future__ import annotations

import pickle
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import shared_dataset

from trainables.data import (
    DataError,
    DataSpec,
    ensure_downloaded,
    load_bundle,
    write_image_folder,
)
from trainables.data.tiny_imagenet import URL as TIN_URL

CLASSES = ("airplane", "automobile", "bird")


def test_mnist_from_shared(tmp_path: Path) -> None:
    root = shared_dataset("MNIST").parent
    b = load_bundle(DataSpec("mnist", root, classes=["3", "7"]), cache_dir=tmp_path)
    assert b.class_ids == ["3", "7"] and b.in_channels == 1 and b.image_size == 28
    assert b.train.images.dtype == np.uint8 and b.train.images.shape[1:] == (28, 28, 1)
    # Official counts: 6131 threes + 6265 sevens in train, 1010 + 1028 in test.
    assert len(b.train) + len(b.val) == 6131 + 6265 and len(b.test) == 1010 + 1028
    assert set(np.unique(b.test.targets)) == {0, 1}


def test_mnist_full_and_resized(tmp_path: Path) -> None:
    root = shared_dataset("MNIST").parent
    b = load_bundle(DataSpec("mnist", root, image_size=32, test_split="holdout"), tmp_path)
    assert len(b.train) + len(b.val) + len(b.test) == 60000
    assert abs(len(b.val) - 6000) <= 5 and abs(len(b.test) - 6000) <= 5  # per-class rounding
    assert b.image_size == 32
    assert abs(b.mean[0] - 0.1307) < 0.01  # the usual MNIST mean


def test_mnist_missing_names_folder_and_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"MNIST/raw lacks train-images-idx3-ubyte.*ossci"):
        load_bundle(DataSpec("mnist", tmp_path), cache_dir=tmp_path / "c")


def test_cifar_image_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "cifar10-images", CLASSES, train_per_class=10)
    b = load_bundle(DataSpec("cifar10", root, val_fraction=0.2), cache_dir=tmp_path / "c")
    assert b.class_ids == list(CLASSES) and b.image_size == 32
    assert (len(b.train), len(b.val), len(b.test)) == (24, 6, 15)
    assert np.bincount(b.val.targets).tolist() == [2, 2, 2]


def test_cifar_image_folder_missing_test_split(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "c10", CLASSES, train_per_class=4, test_per_class=0)
    with pytest.raises(DataError, match=r"class folder of 'airplane'.*test/airplane|holds no"):
        load_bundle(DataSpec("cifar10", root), cache_dir=tmp_path / "c")


def test_cifar_unknown_class_lists_valid(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "c10", CLASSES, train_per_class=2, test_per_class=1)
    with pytest.raises(DataError, match=r"'cat'.*airplane, automobile, bird"):
        load_bundle(DataSpec("cifar10", root, classes=["cat"]), cache_dir=tmp_path / "c")


def _write_pickles(root: Path, per_batch: int = 20) -> np.ndarray:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": names}, f)
    rng = np.random.default_rng(0)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(per_batch)]
        with (folder / name).open("wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        first = data if first is None else first
    return first


def test_cifar_pickles(tmp_path: Path) -> None:
    first = _write_pickles(tmp_path)
    b = load_bundle(
        DataSpec("cifar10", tmp_path, classes=["cat", "dog"], val_fraction=0.0), tmp_path
    )
    assert b.class_ids == ["cat", "dog"] and len(b.train) == 20 and len(b.test) == 4
    # Row 3 of data_batch_1 is a cat (label 3): CHW bytes -> HWC pixels.
    assert np.array_equal(b.train.images[0], first[3].reshape(3, 32, 32).transpose(1, 2, 0))


def test_ensure_downloaded_offline_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "tiny-imagenet-200"
    with pytest.raises(DataError) as err:
        ensure_downloaded(DataSpec("tiny_imagenet", dest), timeout=1)
    assert TIN_URL in str(err.value) and str(dest) in str(err.value)
    assert not dest.exists()
    with pytest.raises(DataError, match="cannot be downloaded automatically"):
        ensure_downloaded(DataSpec("lunar", tmp_path / "moon"))


def test_ensure_downloaded_present_is_a_no_op(tmp_path: Path) -> None:
    root = shared_dataset("MNIST").parent
    assert ensure_downloaded(DataSpec("mnist", root)) == root
    folder = write_image_folder(tmp_path / "c", CLASSES, train_per_class=1, test_per_class=1)
    assert ensure_downloaded(DataSpec("cifar10", folder)) == folder


@pytest.mark.slow
def test_cifar10_images_full(tmp_path: Path) -> None:
    root = shared_dataset("cifar10-images")
    b = load_bundle(DataSpec("cifar10", root), cache_dir=tmp_path)
    assert len(b.train) + len(b.val) == 50000 and len(b.test) == 10000
    assert b.class_ids[:3] == ["airplane", "automobile", "bird"]
