"""Batched augmentation: per-sample randomness, shared geometry for masks, config validation."""

from __future__ import annotations

import pytest
import torch

from trainables.data import AugmentConfig, DataError, augment_batch


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp(b: int = 16, c: int = 3, h: int = 16, w: int = 16) -> torch.Tensor:
    """Distinct, asymmetric images (a ramp), identical across the batch."""
    base = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w) / (h * w)
    return base.expand(b, c, h, w).contiguous()


def test_from_dict_rejects_unknown_keys() -> None:
    assert AugmentConfig.from_dict({"hflip": True, "crop_padding": 4}) == AugmentConfig(
        hflip=True, crop_padding=4
    )
    assert AugmentConfig.from_dict(None) == AugmentConfig()
    with pytest.raises(DataError, match=r"'hflp'.*valid: hflip, vflip, crop_padding"):
        AugmentConfig.from_dict({"hflp": True})


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"crop_padding": -1}, "crop_padding=-1"),
        ({"random_resized_crop": (0.9, 0.2)}, r"random_resized_crop=\(0.9, 0.2\)"),
        ({"color_jitter": 2.0}, "color_jitter=2.0"),
        ({"hflip": "yes"}, "hflip='yes'"),
    ],
)
def test_bad_values_are_named(kwargs: dict, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        AugmentConfig(**kwargs)


def test_list_rrc_becomes_tuple() -> None:
    assert AugmentConfig.from_dict({"random_resized_crop": [0.5, 1]}).random_resized_crop == (
        0.5,
        1.0,
    )


def test_flips_differ_per_sample() -> None:
    x = _ramp()
    out, _ = augment_batch(x, AugmentConfig(hflip=True), _gen())
    flipped = [bool(torch.equal(o, x[0].flip(-1))) for o in out]
    kept = [bool(torch.equal(o, x[0])) for o in out]
    assert any(flipped) and any(kept) and all(f != k for f, k in zip(flipped, kept, strict=True))


def test_crops_differ_per_sample_and_match_torchvision_semantics() -> None:
    x = _ramp()
    out, _ = augment_batch(x, AugmentConfig(crop_padding=4), _gen())
    assert out.shape == x.shape
    assert len({o.numpy().tobytes() for o in out}) > 4  # many distinct offsets in one batch
    padded = torch.nn.functional.pad(x[0], (4, 4, 4, 4))
    windows = {
        padded[:, i : i + 16, j : j + 16].numpy().tobytes() for i in range(9) for j in range(9)
    }
    assert all(o.numpy().tobytes() in windows for o in out)  # each is a zero-padded crop


def test_random_resized_crop_per_sample() -> None:
    x = torch.rand(8, 3, 32, 32, generator=_gen(1))
    x = x[:1].expand(8, -1, -1, -1).contiguous()
    out, _ = augment_batch(x, AugmentConfig(random_resized_crop=(0.3, 0.6)), _gen())
    assert out.shape == x.shape and len({o.numpy().tobytes() for o in out}) == 8


def test_color_jitter_per_sample_and_in_range() -> None:
    x = torch.rand(1, 3, 8, 8, generator=_gen(2)).expand(6, -1, -1, -1).contiguous()
    out, mask = augment_batch(x, AugmentConfig(color_jitter=0.4), _gen())
    assert mask is None and out.min() >= 0 and out.max() <= 1
    assert len({round(float(o.mean()), 5) for o in out}) == 6
    gray, _ = augment_batch(x[:, :1], AugmentConfig(color_jitter=0.4), _gen())
    assert gray.shape == (6, 1, 8, 8)


def test_same_seed_same_batch() -> None:
    cfg = AugmentConfig(
        hflip=True, vflip=True, crop_padding=2, random_resized_crop=(0.5, 1.0), color_jitter=0.2
    )
    x = torch.rand(4, 3, 16, 16, generator=_gen(3))
    a, _ = augment_batch(x, cfg, _gen(7))
    b, _ = augment_batch(x, cfg, _gen(7))
    c, _ = augment_batch(x, cfg, _gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentConfig(hflip=True, vflip=True, crop_padding=3),
        AugmentConfig(hflip=True, random_resized_crop=(0.3, 1.0)),
    ],
)
def test_image_and_mask_get_the_same_geometry(cfg: AugmentConfig) -> None:
    gen = _gen(5)
    mask = (torch.rand(8, 1, 24, 24, generator=gen) > 0.7).float()
    # Channel 0 of the image *is* the mask: after the same transform they must still agree.
    image = torch.cat([mask, torch.rand(8, 2, 24, 24, generator=gen)], dim=1)
    out, out_mask = augment_batch(image, cfg, _gen(9), mask=mask)
    assert out_mask is not None and set(out_mask.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(out_mask, mask)
    if cfg.random_resized_crop is None:
        assert torch.equal(out[:, :1], out_mask)
    else:
        # Bilinear vs nearest sampling: the image channel rounds to the mask almost everywhere.
        agree = ((out[:, :1] > 0.5).float() == out_mask).float().mean()
        assert agree > 0.9


def test_mask_shape_is_checked() -> None:
    with pytest.raises(DataError, match="mask shape"):
        augment_batch(
            torch.rand(2, 3, 8, 8), AugmentConfig(hflip=True), _gen(), mask=torch.rand(2, 1, 4, 4)
        )
