"""Tiny ImageNet: the per-item dataset, class selection, layout errors, bad files, real data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import data_warnings, shared_dataset
from PIL import Image

from trainables.data import DataError, DataSpec, TinyImageNetDataset, load_bundle
from trainables.data import write_tiny_imagenet as write_tin
from trainables.data.tiny_imagenet import resolve_classes

WNIDS = [f"n{90000000 + k:08d}" for k in range(4)]


@pytest.fixture
def tin(tmp_path: Path) -> Path:
    return write_tin(
        tmp_path / "tiny-imagenet-200", n_classes=4, train_per_class=8, val_per_class=3
    )


def test_dataset_items_labels_and_names(tin: Path) -> None:
    ds = TinyImageNetDataset(tin, classes=["n90000002", "pattern0"])
    assert ds.wnids == ["n90000002", "n90000000"]
    assert ds.class_names == ["pattern2", "pattern0"]  # first synonym of words.txt
    assert len(ds) == 16
    image, label = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (64, 64)
    assert label == 0 and sorted(set(ds.targets)) == [0, 1]


def test_dataset_transform_val_split_and_resize(tin: Path) -> None:
    ds = TinyImageNetDataset(
        tin,
        split="val",
        classes=2,
        transform=lambda im: torch.tensor(np.asarray(im)),
        image_size=128,
    )
    assert len(ds) == 6
    x, y = ds[5]
    assert x.shape == (128, 128, 3) and y in (0, 1)


def test_first_n_and_seeded_draw(tin: Path) -> None:
    assert resolve_classes(tin, 2)[0] == WNIDS[:2]
    a = TinyImageNetDataset(tin, classes={"n": 2, "seed": 5}).wnids
    assert a == TinyImageNetDataset(tin, classes=2, class_seed=5).wnids
    assert set(a) <= set(WNIDS)


def test_unknown_wnid_lists_valid_ones(tin: Path) -> None:
    with pytest.raises(DataError, match=r"'n01443537'.*wnids.txt.*n90000000"):
        TinyImageNetDataset(tin, classes=["n01443537"])


def test_missing_root_says_what_is_expected(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"{missing}.*does not exist.*wnids.txt"):
        load_bundle(DataSpec("tiny_imagenet", missing), cache_dir=tmp_path / "c")


def test_wrong_layout_names_the_missing_piece(tin: Path, tmp_path: Path) -> None:
    (tin / "wnids.txt").unlink()
    with pytest.raises(DataError, match=r"wnids.txt is missing.*official Tiny ImageNet layout"):
        TinyImageNetDataset(tin)


def test_flattened_class_folder_is_a_layout_error(tin: Path) -> None:
    images = tin / "train" / WNIDS[1] / "images"
    for f in images.iterdir():
        f.rename(images.parent / f.name)
    images.rmdir()
    with pytest.raises(DataError, match=rf"{images}.*does not exist.*train/<wnid>/images"):
        TinyImageNetDataset(tin)


def test_empty_class_folder(tin: Path) -> None:
    folder = tin / "train" / WNIDS[2] / "images"
    shutil.rmtree(folder)
    folder.mkdir()
    with pytest.raises(DataError, match=rf"{folder} holds no image"):
        TinyImageNetDataset(tin)


def test_missing_val_annotations_suggests_holdout(tin: Path, tmp_path: Path) -> None:
    (tin / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataError, match=r"val_annotations\.txt is missing.*holdout"):
        load_bundle(DataSpec("tiny_imagenet", tin), cache_dir=tmp_path / "c")
    b = load_bundle(DataSpec("tiny_imagenet", tin, test_split="holdout"), cache_dir=tmp_path / "c")
    assert len(b.test) > 0


def _break_files(folder: Path) -> list[str]:
    """Turn three images of `folder` into a zero-byte, a truncated and a non-image file."""
    files = sorted(folder.iterdir())[:3]
    files[0].write_bytes(b"")
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 3])
    files[2].write_text("not an image")
    return [f.name for f in files]


def test_bad_files_skipped_with_one_warning(tin: Path, tmp_path: Path) -> None:
    names = _break_files(tin / "train" / WNIDS[0] / "images")
    with data_warnings() as caught:
        b = load_bundle(DataSpec("tiny_imagenet", tin, val_fraction=0.0), cache_dir=tmp_path / "c")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 3 unreadable" in message and all(n in message for n in names)
    assert len(b.train) == 4 * 8 - 3
    assert np.bincount(b.train.targets).tolist() == [5, 8, 8, 8]
    # The policy warns on every load, also from the cache.
    with data_warnings() as caught:
        load_bundle(DataSpec("tiny_imagenet", tin, val_fraction=0.0), cache_dir=tmp_path / "c")
    assert len(caught) == 1


def test_class_left_empty_by_bad_files_is_an_error(tmp_path: Path) -> None:
    root = write_tin(tmp_path / "t", n_classes=2, train_per_class=3, val_per_class=1)
    _break_files(root / "train" / WNIDS[1] / "images")
    with pytest.raises(DataError, match=rf"{WNIDS[1]} has no readable image"):
        load_bundle(DataSpec("tiny_imagenet", root), cache_dir=tmp_path / "c")


def test_grayscale_and_cmyk_jpegs_become_rgb(tin: Path, tmp_path: Path) -> None:
    folder = tin / "train" / WNIDS[0] / "images"
    first, second = sorted(folder.iterdir())[:2]
    Image.open(first).convert("L").save(first, format="JPEG")
    Image.open(second).convert("CMYK").save(second, format="JPEG")
    assert Image.open(first).mode == "L" and Image.open(second).mode == "CMYK"
    ds = TinyImageNetDataset(tin, classes=1)
    for i in range(2):
        image, _ = ds[ds.samples.index((sorted(folder.iterdir())[i], 0))]
        assert image.mode == "RGB"
    b = load_bundle(DataSpec("tiny_imagenet", tin, classes=1, val_fraction=0.0), tmp_path / "c")
    assert b.train.images.shape == (8, 64, 64, 3)
    gray = b.train.images[0]  # sorted file order: the grayscale one comes first
    assert np.array_equal(gray[..., 0], gray[..., 1])


def test_image_size_128_resizes_bilinear(tin: Path, tmp_path: Path) -> None:
    b = load_bundle(DataSpec("tiny_imagenet", tin, classes=2, image_size=128), tmp_path / "c")
    assert b.image_size == 128 and b.train.images.shape[1:] == (128, 128, 3)
    assert b.test.images.shape[1:] == (128, 128, 3)


def test_synthetic_classes_are_separable(tmp_path: Path) -> None:
    """Nearest class mean colour already separates them: a small CNN learns them fast."""
    root = write_tin(tmp_path / "t", n_classes=6, train_per_class=20, val_per_class=10)
    b = load_bundle(DataSpec("tiny_imagenet", root, val_fraction=0.0), tmp_path / "c")
    feats = b.train.images.reshape(len(b.train), -1, 3).mean(1)
    centroids = np.stack([feats[b.train.targets == k].mean(0) for k in range(6)])
    test = b.test.images.reshape(len(b.test), -1, 3).mean(1)
    pred = np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == b.test.targets).mean() > 0.9


def test_real_shared_subset(tmp_path: Path) -> None:
    root = shared_dataset("tiny-imagenet-200")
    ds = TinyImageNetDataset(root, classes=3)
    assert len(ds) == 1500 and ds.class_names[0] == "Egyptian cat"
    assert all(ds[i][0].mode == "RGB" for i in range(0, 1500, 50))
    b = load_bundle(DataSpec("tiny_imagenet", root, classes=3), cache_dir=tmp_path / "c")
    assert (len(b.train), len(b.val), len(b.test)) == (1350, 150, 150)
    assert np.bincount(b.test.targets).tolist() == [50, 50, 50]
    assert b.class_ids == ds.wnids and b.in_channels == 3


def test_per_item_dataset_names_unreadable_file(tin: Path) -> None:
    ds = TinyImageNetDataset(tin, classes=1)
    path = ds.samples[0][0]
    path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"cannot read image {path}"):
        ds[0]
