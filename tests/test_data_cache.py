"""The decoded-array cache: hits skip decoding, changes rebuild, corruption is repaired."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import data_warnings

import trainables.data.cache as cache_mod
import trainables.data.tiny_imagenet as tin_mod
from trainables.data import DataSpec, load_bundle, write_tiny_imagenet
from trainables.data.cache import default_cache_dir


@pytest.fixture
def tin(tmp_path: Path) -> Path:
    return write_tiny_imagenet(tmp_path / "tin", n_classes=3, train_per_class=10, val_per_class=2)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls of the JPEG decoder used by the Tiny ImageNet reader."""
    calls: list[int] = []
    real = tin_mod.decode_images

    def counting(paths, size, workers=None):  # type: ignore[no-untyped-def]
        calls.append(len(paths))
        return real(paths, size, workers)

    monkeypatch.setattr(tin_mod, "decode_images", counting)
    return calls


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("ARCHSWEEP_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "archsweep"


def test_second_load_is_a_hit_without_decoding(tin: Path, tmp_path: Path, decode_calls) -> None:
    spec = DataSpec("tiny_imagenet", tin)
    first = load_bundle(spec, tmp_path / "c")
    assert not first.from_cache and decode_calls == [30, 6]
    second = load_bundle(spec, tmp_path / "c")
    assert second.from_cache and decode_calls == [30, 6]  # no decoding on a hit
    assert second.cache_path == first.cache_path
    assert np.array_equal(first.train.images, second.train.images)
    # A new split seed is an index operation on the same cache entry.
    third = load_bundle(DataSpec("tiny_imagenet", tin, split_seed=3), tmp_path / "c")
    assert third.from_cache and not np.array_equal(third.val.images, first.val.images)


def test_changed_file_or_option_rebuilds(tin: Path, tmp_path: Path, decode_calls) -> None:
    spec = DataSpec("tiny_imagenet", tin)
    first = load_bundle(spec, tmp_path / "c")
    image = next((tin / "train" / "n90000001" / "images").iterdir())
    image.write_bytes(image.read_bytes())
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_bundle(spec, tmp_path / "c")
    assert not again.from_cache and again.cache_path != first.cache_path
    resized = load_bundle(DataSpec("tiny_imagenet", tin, image_size=96), tmp_path / "c")
    assert not resized.from_cache and resized.image_size == 96
    fewer = load_bundle(DataSpec("tiny_imagenet", tin, classes=2), tmp_path / "c")
    assert not fewer.from_cache
    assert len(decode_calls) == 8


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_cache_is_reported_and_rebuilt(tin: Path, tmp_path: Path, damage: str) -> None:
    spec = DataSpec("tiny_imagenet", tin)
    good = load_bundle(spec, tmp_path / "c")
    path = good.cache_path
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF  # inside the train images: caught by zip's CRC-32
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not a zip at all")
    path.write_bytes(bytes(data))
    with data_warnings() as caught:
        rebuilt = load_bundle(spec, tmp_path / "c")
    assert len(caught) == 1 and str(path) in str(caught[0].message)
    assert "corrupt" in str(caught[0].message) and not rebuilt.from_cache
    assert np.array_equal(rebuilt.train.images, good.train.images)
    assert load_bundle(spec, tmp_path / "c").from_cache


def test_interrupted_write_leaves_no_entry(
    tin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(f, **arrays):  # type: ignore[no-untyped-def]
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        load_bundle(DataSpec("tiny_imagenet", tin), tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []  # neither the entry nor a temp file
