"""Batched augmentation with per-sample randomness, on any device.

torchvision.transforms.v2 applied to a batch draws ONE parameter set for the whole batch; here
every sample gets its own flip, crop offset, resized-crop box and jitter factors, as tensor ops
over the batch (airbench style). Input: float NCHW in [0, 1] (before normalization). For
segmentation pass the mask (float (B, 1, H, W) in {0, 1}): it gets the same geometric transform,
resampled with nearest neighbour so it stays binary, and no colour jitter.

Order: random resized crop -> padded random crop and flips (one gather) -> colour jitter
(brightness, contrast, saturation, in that fixed order). Random numbers come from a
`torch.Generator` (on any device; parameters are drawn on the generator's device and moved), so
a seed reproduces a batch exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from .errors import DataError


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply (all off by default).

    Args:
        hflip: flip left-right with probability 0.5 per sample.
        vflip: flip upside-down with probability 0.5 per sample.
        crop_padding: zero-pad by this many pixels, then crop back to the input size at a random
            offset per sample (torchvision's RandomCrop(size, padding=p)).
        random_resized_crop: (min, max) fraction of the area to crop, aspect ratio in [3/4, 4/3],
            resized back to the input size (bilinear; nearest for masks).
        color_jitter: strength c; brightness, contrast and saturation factors drawn per sample
            from [1 - c, 1 + c] (saturation only for 3-channel images).
    """

    hflip: bool = False
    vflip: bool = False
    crop_padding: int = 0
    random_resized_crop: tuple[float, float] | None = None
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip"):
            if not isinstance(getattr(self, name), bool):
                raise DataError(f"augment {name}={getattr(self, name)!r} is not valid; use a bool")
        if (
            isinstance(self.crop_padding, bool)
            or not isinstance(self.crop_padding, int)
            or (self.crop_padding < 0)
        ):
            raise DataError(
                f"augment crop_padding={self.crop_padding!r} is not valid; use an int >= 0 (e.g. 4)"
            )
        rrc = self.random_resized_crop
        if rrc is not None:
            try:
                lo, hi = (float(v) for v in rrc)
            except (TypeError, ValueError):
                lo, hi = -1.0, -1.0
            if not 0.0 < lo <= hi <= 1.0:
                raise DataError(
                    f"augment random_resized_crop={rrc!r} is not valid; use (min, max) area "
                    "fractions with 0 < min <= max <= 1, e.g. (0.35, 1.0)"
                )
            object.__setattr__(self, "random_resized_crop", (lo, hi))
        if not isinstance(self.color_jitter, int | float) or not 0.0 <= self.color_jitter < 1.0:
            raise DataError(
                f"augment color_jitter={self.color_jitter!r} is not valid; use a number in [0, 1)"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> AugmentConfig:
        """Build from a config dict; unknown keys raise a DataError naming them."""
        if d is None:
            return cls()
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise DataError(
                f"unknown augment key(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
            )
        return cls(**dict(d))

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return bool(
            self.hflip
            or self.vflip
            or self.crop_padding
            or self.random_resized_crop
            or self.color_jitter
        )


def _on(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    # TensorLoader's generator lives on the batch's device, so nothing moves: a CPU generator
    # with CUDA batches cost 3 host-to-device copies per batch (49 in a 16-batch epoch on one
    # H200). A generator on another device (a caller's choice) still works, with the copy.
    return t if t.device == device else t.to(device)


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """n uniforms in [0, 1) drawn on the generator's device (normally the batch's)."""
    return _on(torch.rand(n, generator=generator, device=generator.device), device)


def _randint(high: int, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return _on(torch.randint(0, high, (n,), generator=generator, device=generator.device), device)


def random_crop_flip(
    x: torch.Tensor,
    padding: int,
    hflip: bool,
    vflip: bool,
    generator: torch.Generator,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Padded random crop and random flips in ONE gather, with per-sample parameters.

    Equivalent to torchvision's RandomCrop(size, padding) (zero padding) followed by
    RandomHorizontalFlip / RandomVerticalFlip, but every sample draws its own offset and flips.
    Folding crop and flips into a single index map reads and writes the batch once (instead of
    pad + crop + flip + where), and works for any dtype, uint8 included.
    """
    b, _, h, w = x.shape
    dev = x.device
    zeros = torch.zeros(b, dtype=torch.long, device=dev)
    dy = _randint(2 * padding + 1, b, generator, dev) if padding else zeros
    dx = _randint(2 * padding + 1, b, generator, dev) if padding else zeros
    no_flip = torch.zeros(b, dtype=torch.bool, device=dev)
    flip_h = _rand(b, generator, dev) < 0.5 if hflip else no_flip
    flip_v = _rand(b, generator, dev) < 0.5 if vflip else no_flip
    r, c = torch.arange(h, device=dev), torch.arange(w, device=dev)
    # Output pixel (i, j) reads padded[dy + i', dx + j'] with i' = H-1-i when flipped up-down.
    rows = torch.where(flip_v[:, None], h - 1 - r, r) + dy[:, None]  # (B, H)
    cols = torch.where(flip_h[:, None], w - 1 - c, c) + dx[:, None]  # (B, W)
    wp = w + 2 * padding
    index = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w)

    def apply(t: torch.Tensor) -> torch.Tensor:
        if padding:
            t = F.pad(t, (padding, padding, padding, padding))
        flat = t.reshape(b, t.shape[1], -1)
        return flat.gather(2, index.expand(-1, t.shape[1], -1)).view(b, t.shape[1], h, w)

    return apply(x), (apply(mask) if mask is not None else None)


def random_resized_crop(
    x: torch.Tensor,
    scale: tuple[float, float],
    generator: torch.Generator,
    mask: torch.Tensor | None = None,
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Crop a random box per sample (area fraction in `scale`) and resize it to (H, W)."""
    b = x.shape[0]
    area = scale[0] + (scale[1] - scale[0]) * _rand(b, generator, x.device)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * _rand(
        b, generator, x.device
    )
    aspect = torch.exp(log_r)
    # Box width/height as fractions of the image; clamped so the box stays inside.
    bw = torch.sqrt(area * aspect).clamp(max=1.0)
    bh = torch.sqrt(area / aspect).clamp(max=1.0)
    # affine_grid works in [-1, 1]: the box centre may move by (1 - size) either way.
    cx = (1 - bw) * (2 * _rand(b, generator, x.device) - 1)
    cy = (1 - bh) * (2 * _rand(b, generator, x.device) - 1)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = bw, cx
    theta[:, 1, 1], theta[:, 1, 2] = bh, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out_mask = None
    if mask is not None:
        out_mask = F.grid_sample(
            mask, grid.to(mask.dtype), mode="nearest", padding_mode="border", align_corners=False
        )
    return out, out_mask


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and (3 channels) saturation factors in [1-s, 1+s]."""
    b, c = x.shape[:2]

    def factor() -> torch.Tensor:
        return (1 + strength * (2 * _rand(b, generator, x.device) - 1)).to(x.dtype).view(b, 1, 1, 1)

    x = x * factor()
    m = _gray(x).mean(dim=(2, 3), keepdim=True)
    x = (x - m) * factor() + m
    if c == 3:
        gray = _gray(x)
        x = (x - gray) * factor() + gray
    return x.clamp_(0.0, 1.0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    # ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
    return (x * _luma(x.device, x.dtype)).sum(dim=1, keepdim=True)


_LUMA: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _luma(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The weights once per device (a torch.tensor from a list per batch is a copy)."""
    key = (device, dtype)
    if key not in _LUMA:
        _LUMA[key] = torch.tensor([0.299, 0.587, 0.114], device=device, dtype=dtype).view(
            1, 3, 1, 1
        )
    return _LUMA[key]


def augment_geometry(
    x: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The geometric part of `config` (resized crop, padded crop, flips) on NCHW images.

    Crops and flips only move pixels, so they also run on uint8 batches (4x less memory
    traffic than float; TensorLoader uses this); the random resized crop interpolates and needs
    a floating dtype. `mask` (B, 1, H, W) gets the same transform.
    """
    if x.ndim != 4:
        raise DataError(f"augmentation expects NCHW images, got shape {tuple(x.shape)}")
    if mask is not None and (mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:]):
        raise DataError(
            f"mask shape {tuple(mask.shape)} does not match images {tuple(x.shape)}; "
            "expected (B, 1, H, W)"
        )
    if config.random_resized_crop is not None:
        if not (x.is_floating_point() and (mask is None or mask.is_floating_point())):
            raise DataError(
                f"random_resized_crop needs float images and masks, got {x.dtype}; "
                "convert with x.float() / 255 first"
            )
        x, mask = random_resized_crop(x, config.random_resized_crop, generator, mask)
    if config.crop_padding or config.hflip or config.vflip:
        x, mask = random_crop_flip(
            x, config.crop_padding, config.hflip, config.vflip, generator, mask
        )
    return x, mask


def augment_color(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """The colour part of `config` on float NCHW images in [0, 1] (identity if off)."""
    if config.color_jitter:
        x = color_jitter(x, config.color_jitter, generator)
    return x


def augment_batch(
    x: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply `config` to a float NCHW batch in [0, 1] with per-sample parameters.

    Args:
        x: images (B, C, H, W), float in [0, 1].
        config: what to apply.
        generator: source of randomness (any device).
        mask: optional (B, 1, H, W) float {0, 1} mask that receives the same geometric transform.

    Returns:
        (augmented images, augmented mask or None).
    """
    x, mask = augment_geometry(x, config, generator, mask)
    return augment_color(x, config, generator), mask
