"""A synthetic stand-in for the lunar rock data set (MOON_SEGMENTATION_BINARY is not public).

Each tile is rendered from a height field lit by a low sun, so that what separates rock from
ground is what separates them in the real renders: shape, shading and shadow, not colour.

* Ground: fractal value noise (octaves from 1/4 of the tile down to 2 pixels) for relief and
  for albedo, plus a few shallow craters.
* Rocks: sizes from a power law (many pebbles, few boulders, radius 1.5 px to 1/7 of the tile),
  irregular outlines (a few angular harmonics), dome heights with surface bumps.
* Light: Lambert shading from one sun per tile (random azimuth, 15-40 degree elevation) and cast
  shadows from a horizon test along the sun direction, so rocks have a lit side, a dark side
  and a shadow on the ground behind them.
* Mask: 255 where a rock is visible, 0 elsewhere (shadows are ground).

`write_lunar` writes ``images/render/renderNNNN.png`` (RGB) and ``images/ground/groundNNNN.png``
(8-bit, 0/255); ``python -m trainables.data.make_lunar DIR --n 500`` is the command.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def fractal_noise(size: int, rng: np.random.Generator, persistence: float = 0.55) -> np.ndarray:
    """(size, size) noise in about [-1, 1]: bilinear-upsampled random grids, coarse to fine."""
    out = np.zeros((size, size))
    amplitude, total = 1.0, 0.0
    cells = 4
    while cells <= size // 2:
        grid = rng.normal(size=(cells + 1, cells + 1))
        coords = np.linspace(0, cells, size, endpoint=False)
        i = coords.astype(int)
        f = coords - i
        f = f * f * (3 - 2 * f)  # smoothstep: no creases along the grid lines
        rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]  # interpolate along y
        layer = rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]  # then along x
        out += amplitude * layer
        total += amplitude
        amplitude *= persistence
        cells *= 2
    return out / total


def _rock_radii(size: int, rng: np.random.Generator) -> np.ndarray:
    """Rock radii in pixels: a Pareto tail (many small, few large), at least one rock."""
    r_min, r_max = max(1.5, size / 80), size / 7
    count = int(rng.integers(1, 5) + rng.poisson(18 * (size / 128) ** 2))
    radii = r_min * (1 - rng.uniform(size=count)) ** (-1 / 1.6)
    return np.sort(np.minimum(radii, r_max))[::-1]  # big first: small rocks may sit on them


def _add_rock(
    height: np.ndarray,
    mask: np.ndarray,
    texture: np.ndarray,
    radius: float,
    rng: np.random.Generator,
) -> None:
    """Raise one irregular dome of `radius` pixels into `height`; mark its footprint in `mask`.

    `texture` is fine noise (size, size) that roughens the rock surface.
    """
    size = height.shape[0]
    cy, cx = rng.uniform(0, size, 2)
    pad = int(np.ceil(radius * 1.5)) + 1
    y0, y1 = max(0, int(cy) - pad), min(size, int(cy) + pad + 1)
    x0, x1 = max(0, int(cx) - pad), min(size, int(cx) + pad + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    angle = np.arctan2(dy, dx)
    # Irregular outline: radius modulated by a few random harmonics, and an elongation.
    outline = np.ones_like(angle)
    for k in (2, 3, 5):
        outline += rng.uniform(0, 0.18 / k * 2) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    stretch = rng.uniform(0.65, 1.0)
    turn = rng.uniform(0, np.pi)
    along = dx * np.cos(turn) + dy * np.sin(turn)
    across = -dx * np.sin(turn) + dy * np.cos(turn)
    d = np.sqrt(along**2 + (across / stretch) ** 2) / (radius * outline)
    inside = d < 1
    if not inside.any():
        return
    tall = radius * rng.uniform(0.6, 1.1) + 1.0  # pixel units; pebbles still stand out
    dome = tall * np.sqrt(np.clip(1 - d**2, 0, None)) ** 0.8
    dome += inside * 0.15 * tall * texture[y0:y1, x0:x1]  # rough, faceted surface
    base = height[y0:y1, x0:x1]
    # The rock sits on the mean ground level under it, not draped over the ground's relief.
    height[y0:y1, x0:x1] = np.where(inside, np.maximum(base, base[inside].mean() + dome), base)
    mask[y0:y1, x0:x1] |= inside


def _add_craters(height: np.ndarray, rng: np.random.Generator) -> None:
    """A few shallow bowls with raised rims (ground texture, not rocks)."""
    size = height.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for _ in range(rng.integers(0, 4)):
        cy, cx = rng.uniform(0, size, 2)
        radius = rng.uniform(size / 20, size / 5)
        d = np.hypot(yy - cy, xx - cx) / radius
        depth = radius * rng.uniform(0.08, 0.2)
        bowl = -depth * np.clip(1 - d**2, 0, None) + 0.35 * depth * np.exp(-(((d - 1) / 0.15) ** 2))
        height += bowl


def _sun(rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """(unit sun vector (x, y, z), azimuth, elevation) of one tile."""
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.deg2rad(rng.uniform(15, 40))
    flat = np.cos(elevation)
    vector = np.array([flat * np.cos(azimuth), flat * np.sin(azimuth), np.sin(elevation)])
    return vector, azimuth, elevation


def _shadow(height: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """Cast shadows: a pixel is dark if the terrain toward the sun rises above its sun ray."""
    size = height.shape[0]
    rise = np.tan(elevation)
    reach = int(min(size, np.ceil((height.max() - height.min()) / rise))) + 1
    shadow = np.zeros(height.shape, dtype=bool)
    padded = np.pad(height, reach, mode="edge")
    for step in range(1, reach + 1):
        oy = round(step * np.sin(azimuth))
        ox = round(step * np.cos(azimuth))
        ahead = padded[reach + oy : reach + oy + size, reach + ox : reach + ox + size]
        shadow |= ahead > height + step * rise + 0.05
    return shadow


def lunar_pair(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (render uint8 RGB (size, size, 3), mask uint8 {0, 255} (size, size)) pair."""
    height = 0.04 * size * fractal_noise(size, rng) + 0.35 * fractal_noise(size, rng, 0.8)
    _add_craters(height, rng)
    mask = np.zeros((size, size), dtype=bool)
    texture = fractal_noise(size, rng, 0.9)
    for radius in _rock_radii(size, rng):
        _add_rock(height, mask, texture, radius, rng)
    sun, azimuth, elevation = _sun(rng)
    gy, gx = np.gradient(height)
    normal = np.stack([-gx, -gy, np.ones_like(height)])
    normal /= np.linalg.norm(normal, axis=0)
    lambert = np.clip(np.tensordot(sun, normal, axes=1), 0, None)
    lit = np.where(_shadow(height, azimuth, elevation), 0.0, lambert)
    albedo = 0.55 + 0.12 * fractal_noise(size, rng, 0.6)
    albedo = np.where(mask, albedo * rng.uniform(1.0, 1.2), albedo)
    ambient = rng.uniform(0.06, 0.14)
    exposure = rng.uniform(1.1, 1.5) / max(np.percentile(lambert, 95), 1e-3)
    gray = albedo * (ambient + exposure * 0.75 * lit) * 255
    gray += rng.normal(0, 3.0, gray.shape)  # sensor noise
    tint = np.array([1.0, 0.98, 0.95]) * rng.uniform(0.97, 1.03, 3)
    rgb = np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)
    return rgb, mask.astype(np.uint8) * 255


def write_lunar(root: str | Path, n: int = 24, size: int = 128, seed: int = 0) -> Path:
    """Write `n` lunar-layout pairs: images/render/renderNNNN.png + images/ground/groundNNNN.png.

    Masks are 8-bit grayscale PNGs with 0 = background and 255 = rock, numbered from 0001. Tile
    i depends only on (seed, i), so a larger `n` extends a smaller set with the same tiles.

    Returns:
        `root` as a Path.
    """
    if n < 1 or size < 16:
        raise ValueError(f"n={n}, size={size} is not valid; use n >= 1 and size >= 16")
    root = Path(root)
    render_dir, ground_dir = root / "images" / "render", root / "images" / "ground"
    render_dir.mkdir(parents=True, exist_ok=True)
    ground_dir.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        rgb, mask = lunar_pair(size, np.random.default_rng([seed, i]))
        Image.fromarray(rgb).save(render_dir / f"render{i:04d}.png")
        Image.fromarray(mask, mode="L").save(ground_dir / f"ground{i:04d}.png")
    return root
