"""The data-set registry: every entry's synthetic copy loads through its reader; lookups by name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import trainables.data as data
from trainables.data import (
    DataError,
    DataSpec,
    dataset_dir,
    ensure_downloaded,
    get_dataset,
    list_datasets,
    load_bundle,
    register_dataset,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list_datasets())
def test_every_entry_round_trips_its_synthetic_copy(name: str, tmp_path: Path) -> None:
    entry = get_dataset(name)
    root = tmp_path / "data"
    folder = dataset_dir(name, root)
    assert folder == root / entry.folder
    assert not entry.is_present(folder)
    assert entry.synthetic(folder, seed=0) == folder
    assert entry.is_present(folder)
    assert ensure_downloaded(DataSpec(name, folder)) == folder  # present: nothing to fetch
    spec = DataSpec.from_config({"dataset": name, "val_fraction": 0.2}, root)
    assert spec.path == folder and spec.task == entry.task
    assert spec.uses_holdout_test == (not entry.official_test)
    b = load_bundle(spec, tmp_path / "cache")
    assert b.name == name and b.task == entry.task
    assert len(b.train) > 0 and len(b.val) > 0 and len(b.test) > 0
    assert b.train.images.dtype == np.uint8 and b.train.images.ndim == 4
    if entry.task == "segmentation":
        assert b.train.targets.shape == b.train.images.shape[:3]
        assert set(np.unique(b.train.targets)) <= {0, 1}
    else:
        assert set(np.unique(b.train.targets)) == set(range(len(b.class_ids)))


@pytest.mark.parametrize("name", list_datasets())
def test_a_root_holding_the_layout_is_the_dataset_folder(name: str, tmp_path: Path) -> None:
    entry = get_dataset(name)
    if entry.folder == ".":
        pytest.skip(f"{name}'s folder is the data root itself")
    own = entry.synthetic(tmp_path / "my-copy", seed=1)
    assert dataset_dir(name, own) == own


def test_duplicate_and_bad_registrations_are_refused() -> None:
    lunar = get_dataset("lunar")
    fields = {k: getattr(lunar, k) for k in ("folder", "markers", "task", "official_test")}
    fields |= {"reader": lunar.reader, "synthetic": lunar.synthetic, "download": None}
    with pytest.raises(DataError, match="'lunar' is already registered"):
        register_dataset("lunar", manual="", **fields)
    with pytest.raises(DataError, match=r"task='detection'.*classification"):
        register_dataset("boxes", manual="", **(fields | {"task": "detection"}))
    assert "boxes" not in list_datasets()


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'moon'; valid: cifar10, .*lunar"):
        get_dataset("moon")


def test_missing_data_without_download_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot be downloaded automatically") as err:
        ensure_downloaded(DataSpec("lunar", tmp_path / "moon"))
    assert str(tmp_path / "moon") in str(err.value) and "images/render" in str(err.value)


def test_flat_config_defaults_match_the_data_layer() -> None:
    from trainables.config import DATA_DEFAULTS

    assert DATA_DEFAULTS == data.DATA_DEFAULTS


def test_no_code_tests_a_dataset_name() -> None:
    """Behaviour follows the registry entry (task, official test), never `dataset == "lunar"`."""
    names = "|".join(map(re.escape, list_datasets()))
    pattern = re.compile(rf"(==|!=|\bin)\s*\(?\s*[\"']({names})[\"']")
    hits = [
        f"{path.relative_to(REPO)}:{i}"
        for folder in ("trainables", "orchestrator", "analysis")
        for path in sorted((REPO / folder).rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, f"dataset-name tests outside the registry: {hits}"


def test_native_sizes_are_the_readers_own() -> None:
    """What an evaluation records as the data set's own image side (course B.1)."""
    from trainables.data.mnist_cifar import CIFAR_NATIVE
    from trainables.data.tiny_imagenet import NATIVE_SIZE

    expected = {"cifar10": CIFAR_NATIVE, "fashion_mnist": 28, "mnist": 28, "tiny_imagenet": 64}
    assert NATIVE_SIZE == 64
    for name, size in expected.items():
        assert get_dataset(name).native_size == size, name
    assert get_dataset("lunar").native_size is None  # the renders decide
