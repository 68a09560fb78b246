"""BundleCache (the driver's data cache) and data_summary (study.json's data block)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.data import (
    BundleCache,
    DataError,
    DataSpec,
    data_summary,
    write_lunar,
    write_tiny_imagenet,
)

TIN = {"dataset": "tiny_imagenet", "classes": 2, "val_fraction": 0.25, "lr": 0.1, "model": "x"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_tiny_imagenet(data / "tiny-imagenet-200", n_classes=3, train_per_class=8)
    write_lunar(data / "MARS_ROCKS_BINARY", n=8, size=32)
    return data


def test_spec_resolves_data_dir_against_the_root(root: Path, tmp_path: Path) -> None:
    cache = BundleCache(root, tmp_path / "c")
    assert cache.spec(TIN) == DataSpec("tiny_imagenet", root / "tiny-imagenet-200", classes=2,
                                       val_fraction=0.25)  # fmt: skip
    mars = cache.spec({"dataset": "lunar", "data_dir": "MARS_ROCKS_BINARY"})
    assert mars.path == root / "MARS_ROCKS_BINARY"
    assert cache.spec({"dataset": "lunar", "data_dir": None}).path == (
        root / "MOON_SEGMENTATION_BINARY"
    )
    assert cache.spec({"dataset": "lunar", "data_dir": str(tmp_path)}).path == tmp_path


def test_get_decodes_once_and_prints_the_summary_line(root: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    cache = BundleCache(root, tmp_path / "c", log=lines.append)
    first = cache.get(TIN)
    assert cache.get({**TIN, "lr": 0.5}) is first  # non-data keys do not matter
    assert cache.get({**TIN, "split_seed": 1}) is not first
    assert len(lines) == 2
    assert lines[0].startswith(
        f"data: tiny_imagenet from {root / 'tiny-imagenet-200'}: 12 train / 4 val / 12 test, "
        "2 classes ("
    )
    assert lines[0].endswith(" s)")


def test_summary_names_the_folder_read_and_binary_masks(root: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    cache = BundleCache(root, tmp_path / "c", log=lines.append)
    config = {"dataset": "lunar", "data_dir": "MARS_ROCKS_BINARY", "val_fraction": 0.25}
    summary = data_summary(cache.get(config))
    assert summary == {
        "dataset": "lunar",
        "data_dir": str(root / "MARS_ROCKS_BINARY"),
        "data_root": str(root.absolute()),
        "folder": "MARS_ROCKS_BINARY",
        "task": "segmentation",
        "class_names": ["rock"],
        "targets": "binary masks",
        "train": 5,
        "val": 2,
        "test": 1,
        "image_size": 32,
    }
    assert json.loads(json.dumps(summary)) == summary
    assert "binary masks" in lines[0] and "1 class" not in lines[0]
    tin = data_summary(cache.get(TIN))
    assert tin["targets"] == "2 classes" and tin["task"] == "classification"


def test_missing_data_names_the_data_root(tmp_path: Path) -> None:
    cache = BundleCache(tmp_path / "empty", tmp_path / "c")
    with pytest.raises(DataError, match="cannot be downloaded automatically") as err:
        cache.get({"dataset": "lunar"})
    assert f"data root: {tmp_path / 'empty'}; set it with --data-root" in str(err.value)
