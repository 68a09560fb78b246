"""Lunar-layout segmentation: pairing, mask rules, sizes, and the real MARS_ROCKS_BINARY set."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import shared_dataset
from PIL import Image

from trainables.data import DataError, DataSpec, binarize_mask, list_pairs, load_bundle, write_lunar


@pytest.fixture
def lunar(tmp_path: Path) -> Path:
    return write_lunar(tmp_path / "MOON_SEGMENTATION_BINARY", n=12, size=64)


def test_synthetic_lunar_loads(lunar: Path, tmp_path: Path) -> None:
    b = load_bundle(DataSpec("lunar", lunar, val_fraction=0.25, test_fraction=0.25), tmp_path / "c")
    assert b.task == "segmentation" and b.class_names == ["rock"] and b.in_channels == 3
    assert (len(b.train), len(b.val), len(b.test)) == (6, 3, 3)
    assert b.train.targets.dtype == np.uint8 and b.train.targets.shape == (6, 64, 64)
    assert set(np.unique(b.train.targets)) <= {0, 1} and b.train.targets.mean() > 0.005


def test_render_without_mask_and_mask_without_render(lunar: Path) -> None:
    (lunar / "images" / "ground" / "ground0003.png").unlink()
    (lunar / "images" / "render" / "render0007.png").unlink()
    with pytest.raises(DataError) as err:
        list_pairs(lunar)
    message = str(err.value)
    assert "render without mask: render0003.png" in message
    assert "mask without render: ground0007.png" in message


def test_missing_folder_names_layout(tmp_path: Path) -> None:
    (tmp_path / "x" / "images" / "render").mkdir(parents=True)
    with pytest.raises(DataError, match=r"ground folder .*ground does not exist.*groundNNNN.png"):
        list_pairs(tmp_path / "x")


def test_mask_of_different_size(lunar: Path, tmp_path: Path) -> None:
    ground = lunar / "images" / "ground" / "ground0002.png"
    Image.new("L", (32, 32)).save(ground)
    with pytest.raises(
        DataError, match=rf"{ground} is 32x32 but its render render0002.png is 64x64"
    ):
        load_bundle(DataSpec("lunar", lunar), tmp_path / "c")


def test_mask_with_undocumented_values(lunar: Path, tmp_path: Path) -> None:
    ground = lunar / "images" / "ground" / "ground0005.png"
    mask = np.zeros((64, 64), np.uint8)
    mask[:4, :4] = 128
    mask[10:12] = 255
    Image.fromarray(mask).save(ground)
    with pytest.raises(DataError, match=rf"{ground} has values 0, 128, 255.*0/255 or only 0/1"):
        load_bundle(DataSpec("lunar", lunar), tmp_path / "c")


def test_mask_rules() -> None:
    m01 = np.array([[0, 1], [1, 0]], np.uint8)
    assert binarize_mask(Image.fromarray(m01)).tolist() == m01.tolist()
    assert binarize_mask(Image.fromarray(m01 * 255)).tolist() == m01.tolist()
    # RGB: any non-black pixel is rock (MOON colours rocks by size).
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 1] = (0, 0, 40)
    assert binarize_mask(Image.fromarray(rgb)).tolist() == [[1, 0], [0, 1]]
    assert binarize_mask(Image.fromarray(m01.astype(bool))).tolist() == m01.tolist()


def test_rgb_and_01_masks_load(lunar: Path, tmp_path: Path) -> None:
    ground = lunar / "images" / "ground"
    first = np.asarray(Image.open(ground / "ground0001.png"))
    Image.fromarray(np.stack([first, first * 0, first * 0], -1)).save(ground / "ground0001.png")
    second = np.asarray(Image.open(ground / "ground0002.png"))
    Image.fromarray((second > 0).astype(np.uint8)).save(ground / "ground0002.png")
    b = load_bundle(DataSpec("lunar", lunar, val_fraction=0.0, test_fraction=0.0), tmp_path / "c")
    assert np.array_equal(b.train.targets[0], first > 0)
    assert np.array_equal(b.train.targets[1], second > 0)


def test_resize_keeps_masks_binary(lunar: Path, tmp_path: Path) -> None:
    b = load_bundle(DataSpec("lunar", lunar, image_size=32), tmp_path / "c")
    assert b.image_size == 32 and set(np.unique(b.train.targets)) <= {0, 1}


def test_unreadable_pair_is_skipped_with_warning(lunar: Path, tmp_path: Path) -> None:
    (lunar / "images" / "render" / "render0004.png").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipped 1 .*render0004.png"):
        b = load_bundle(DataSpec("lunar", lunar, val_fraction=0.0, test_fraction=0.0), tmp_path)
    assert len(b.train) == 11


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_mars_rocks_binary_loads_unchanged(tmp_path: Path) -> None:
    root = shared_dataset("MARS_ROCKS_BINARY")
    b = load_bundle(DataSpec("lunar", root), cache_dir=tmp_path)
    assert b.image_size == 256 and b.in_channels == 3
    assert len(b.train) + len(b.val) + len(b.test) == 400
    loaded = {
        _digest(img): mask
        for split in (b.train, b.val, b.test)
        for img, mask in zip(split.images, split.targets, strict=True)
    }
    for n in (1, 57, 200, 333, 400):  # pixel-exact against the raw files
        render = np.asarray(Image.open(root / f"images/render/render{n:04d}.png").convert("RGB"))
        ground = np.asarray(Image.open(root / f"images/ground/ground{n:04d}.png"))
        assert np.array_equal(loaded[_digest(render)], ground // 255)
    # Stratified on "has rocks": every split keeps tiles without rocks.
    for split in (b.train, b.val, b.test):
        assert (split.targets.reshape(len(split), -1).max(1) == 0).any()


def test_mars_rocks_binary_at_128(tmp_path: Path) -> None:
    root = shared_dataset("MARS_ROCKS_BINARY")
    b = load_bundle(DataSpec("lunar", root, image_size=128), cache_dir=tmp_path)
    assert b.train.images.shape[1:] == (128, 128, 3) and b.train.targets.shape[1:] == (128, 128)
    assert set(np.unique(b.train.targets)) == {0, 1}


def test_non_square_renders_and_mixed_sizes(tmp_path: Path) -> None:
    root = tmp_path / "moon"
    (root / "images" / "render").mkdir(parents=True)
    (root / "images" / "ground").mkdir(parents=True)
    for i, (w, h) in enumerate([(48, 32), (48, 32)], start=1):
        Image.new("RGB", (w, h), (90, 90, 90)).save(root / f"images/render/render{i:04d}.png")
        Image.new("L", (w, h), 255).save(root / f"images/ground/ground{i:04d}.png")
    spec = DataSpec("lunar", root, val_fraction=0.0, test_fraction=0.0)
    b = load_bundle(spec, tmp_path / "c")
    assert b.image_size == (32, 48) and b.image_shape == (32, 48)
    Image.new("RGB", (40, 40)).save(root / "images/render/render0003.png")
    Image.new("L", (40, 40)).save(root / "images/ground/ground0003.png")
    with pytest.raises(DataError, match=r"render0003.png is 40x40 but earlier renders are 48x32"):
        load_bundle(spec, tmp_path / "c")
    assert (
        load_bundle(
            DataSpec("lunar", root, image_size=32, val_fraction=0.0, test_fraction=0.0),
            tmp_path / "c",
        ).image_size
        == 32
    )
