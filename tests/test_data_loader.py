"""TensorLoader: batching, seeding, normalization, segmentation targets, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.data import (
    AugmentConfig,
    DataError,
    Split,
    TensorLoader,
    augment_batch,
    channel_stats,
)


def _split(n: int = 50, seg: bool = False) -> Split:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 12, 12, 3), dtype=np.uint8)
    if seg:
        targets = (rng.random((n, 12, 12)) > 0.8).astype(np.uint8)
    else:
        targets = np.arange(n, dtype=np.int64)  # label = row, to trace samples
    return Split(images, targets)


def _loader(split: Split, **kwargs: object) -> TensorLoader:
    mean, std = channel_stats(split.images)
    options = {"mean": mean, "std": std, "seed": 0} | kwargs
    return TensorLoader(split, 16, "cpu", **options)  # type: ignore[arg-type]


def test_epoch_covers_every_sample_once() -> None:
    loader = _loader(_split())
    assert len(loader) == 4
    batches = list(loader)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(50)) and seen.dtype == torch.int64
    x, _ = batches[0]
    assert x.dtype == torch.float32 and x.shape == (16, 3, 12, 12) and x.is_contiguous()


def test_normalization_without_augment() -> None:
    split = _split()
    loader = _loader(split, shuffle=False)
    x = torch.cat([b for b, _ in loader])
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in channel_stats(split.images))
    expected = (torch.from_numpy(split.images[:16]).permute(0, 3, 1, 2) / 255 - mean) / std
    assert torch.allclose(x[:16], expected, atol=1e-5)


def test_seeded_permutations_differ_by_epoch_and_resume_exactly() -> None:
    a = _loader(_split())
    epoch0 = [y.tolist() for _, y in a]
    epoch1 = [y.tolist() for _, y in a]
    assert epoch0 != epoch1
    b = _loader(_split())
    b.set_epoch(1)
    assert [y.tolist() for _, y in b] == epoch1  # resume at epoch 1 sees the same batches
    c = _loader(_split(), seed=1)
    assert [y.tolist() for _, y in c] != epoch0


def test_options_drop_last_max_batches_channels_last() -> None:
    assert len(_loader(_split(), drop_last=True)) == 3
    loader = _loader(_split(), max_batches=2, channels_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)


def test_augmented_batches_and_segmentation_targets() -> None:
    cfg = AugmentConfig(hflip=True, crop_padding=2)
    loader = _loader(_split(seg=True), augment=cfg)
    x, y = next(iter(loader))
    assert x.shape == (16, 3, 12, 12) and y.shape == (16, 1, 12, 12) and y.dtype == torch.float32
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    plain = _loader(_split(seg=True), shuffle=False)
    _, y_plain = next(iter(plain))
    assert torch.equal(y_plain[:, 0].byte(), torch.from_numpy(_split(seg=True).targets[:16]))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(DataError, match="batch_size=0"):
        TensorLoader(_split(), 0, mean=(0.5,) * 3, std=(0.2,) * 3)
    with pytest.raises(DataError, match="mean/std have 1/1 values but the images have 3"):
        TensorLoader(_split(), 4, mean=(0.5,), std=(0.2,))
    with pytest.raises(DataError, match="empty split"):
        TensorLoader(
            Split(np.zeros((0, 4, 4, 3), np.uint8), np.zeros(0, np.int64)),
            4,
            mean=(0.5,) * 3,
            std=(0.2,) * 3,
        )


def test_uint8_fast_path_matches_float_augment_batch() -> None:
    """Crops/flips on uint8 then fused normalization == the documented float pipeline."""
    split = _split()
    cfg = AugmentConfig(hflip=True, vflip=True, crop_padding=3)
    loader = _loader(split, augment=cfg, shuffle=False, max_batches=1)
    x, _ = next(iter(loader))
    # Unshuffled, the loader's first draws are the augmentation's: epoch 0 of seed 0.
    g = torch.Generator().manual_seed(0)
    raw = torch.from_numpy(split.images[:16]).permute(0, 3, 1, 2).float() / 255
    expected, _ = augment_batch(raw, cfg, g)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in channel_stats(split.images))
    assert torch.allclose(x, (expected - mean) / std, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_segmentation_with_resized_crop_and_jitter(channels_last: bool) -> None:
    cfg = AugmentConfig(hflip=True, random_resized_crop=(0.5, 1.0), color_jitter=0.3)
    loader = _loader(_split(seg=True), augment=cfg, channels_last=channels_last)
    for x, y in loader:
        assert x.shape[1:] == (3, 12, 12) and y.shape[1:] == (1, 12, 12)
        assert set(y.unique().tolist()) <= {0.0, 1.0} and torch.isfinite(x).all()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        assert x.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize(
    "augment",
    [
        {"hflip": True, "vflip": True, "crop_padding": 4},
        {"random_resized_crop": (0.35, 1.0), "hflip": True, "color_jitter": 0.2},
    ],
)
def test_augmentation_moves_nothing_between_devices_per_batch(monkeypatch, augment) -> None:
    """Random parameters are drawn on the data's device: an epoch calls Tensor.to (a
    host-to-device copy on a GPU) fewer times than it has batches. The CPU shape of
    tests/test_gpu.py::test_training_split_stays_on_device (49 copies in 16 batches before)."""
    loader = _loader(_split(256), augment=AugmentConfig.from_dict(augment))
    next(iter(loader))  # one-off set-up (cached weights) is not per batch
    calls = []
    real_to = torch.Tensor.to

    def counting_to(self, *args, **kwargs):
        targets = [*args, kwargs.get("device")]
        if any(isinstance(a, torch.device | str) for a in targets):  # not a dtype cast
            calls.append(args)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    batches = sum(1 for _ in loader)
    assert batches == 16
    assert len(calls) < batches, f"{len(calls)} Tensor.to calls in an epoch of {batches} batches"
