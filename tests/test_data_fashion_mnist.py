"""FashionMNIST: registered like every data set; idx files written by its synthetic writer."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from trainables.data import DataError, DataSpec, ensure_downloaded, load_bundle, write_fashion_mnist
from trainables.data.fashion_mnist import CLASS_NAMES, URL


def test_reads_idx_files_with_named_classes(tmp_path: Path) -> None:
    root = write_fashion_mnist(tmp_path / "data", train_per_class=6, test_per_class=2)
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    b = load_bundle(DataSpec("fashion_mnist", root, val_fraction=0.0), tmp_path / "c")
    assert b.class_names == list(CLASS_NAMES) and b.class_ids == [str(i) for i in range(10)]
    assert b.train.images.shape == (60, 28, 28, 1) and len(b.test) == 20
    assert np.bincount(b.test.targets).tolist() == [2] * 10


def test_classes_by_name_or_id_and_resized(tmp_path: Path) -> None:
    root = write_fashion_mnist(tmp_path, train_per_class=4, test_per_class=1)
    spec = DataSpec("fashion_mnist", root, classes=["Bag", "0"], image_size=32, val_fraction=0.0)
    b = load_bundle(spec, tmp_path / "c")
    assert b.class_names == ["Bag", "T-shirt/top"] and b.class_ids == ["8", "0"]
    assert b.image_size == 32 and len(b.train) == 8
    with pytest.raises(DataError, match=r"'Hat'.*valid ids include 0, 1"):
        load_bundle(DataSpec("fashion_mnist", root, classes=["Hat"]), tmp_path / "c")


def test_missing_files_name_folder_and_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"FashionMNIST/raw lacks train-images-idx3-ubyte"):
        load_bundle(DataSpec("fashion_mnist", tmp_path), tmp_path / "c")


def test_offline_download_fails_with_folder_and_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="could not download fashion_mnist") as err:
        ensure_downloaded(DataSpec("fashion_mnist", tmp_path), timeout=1)
    assert URL in str(err.value) and str(tmp_path / "FashionMNIST" / "raw") in str(err.value)
