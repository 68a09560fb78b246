"""The lunar rock segmentation layout (MOON_SEGMENTATION_BINARY, also MARS_ROCKS_BINARY).

```
<folder>/images/render/renderNNNN.png   # input image (RGB; .jpg also accepted)
<folder>/images/ground/groundNNNN.png   # its mask, paired by the number NNNN
```

Mask rule (documented policy):

* grayscale masks (mode L, 1, I, I;16, LA) must hold only {0, 255} or only {0, 1}; anything else
  is an error naming the file and the values found. Nonzero = rock.
* colour masks (RGB, RGBA, P): any non-black pixel is rock. The original MOON data set colours
  its ground-truth rocks by size; this rule merges them into one "rock" class.

Pairs are strict: a render without a mask or a mask without a render is an error listing the
unmatched files, and so is a mask whose size differs from its render. With `image_size`, renders
are resized bilinearly and masks with nearest neighbour (so they stay binary). Unreadable files
follow the classification policy: the pair is skipped with one warning naming the files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .decode import Pool, Source, require_dir, warn_skipped
from .errors import DataError, preview
from .lunar_synth import write_lunar
from .registry import register_dataset
from .spec import DataSpec

LAYOUT_HINT = (
    "expected images/render/renderNNNN.png inputs and images/ground/groundNNNN.png masks "
    "(0 = background, 255 = rock), paired by NNNN"
)
RENDER_RE = re.compile(r"^render(\d+)\.(png|jpe?g)$", re.IGNORECASE)
GROUND_RE = re.compile(r"^ground(\d+)\.png$", re.IGNORECASE)
GRAY_MODES = ("L", "1", "I", "I;16", "LA")


def _numbered(folder: Path, pattern: re.Pattern[str]) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        m = pattern.match(p.name)
        if not m:
            continue  # other files (.DS_Store, notes) are not part of the layout
        number = int(m.group(1))
        if number in found:
            raise DataError(
                f"{found[number].name} and {p.name} in {folder} have the same number {number}; "
                "keep one file per number"
            )
        found[number] = p
    return found


def list_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(render, ground) paths paired by number, sorted; unmatched files raise a DataError."""
    root = Path(root)
    require_dir(root, "segmentation data folder", LAYOUT_HINT)
    render_dir, ground_dir = root / "images" / "render", root / "images" / "ground"
    require_dir(render_dir, "render folder", LAYOUT_HINT)
    require_dir(ground_dir, "ground folder", LAYOUT_HINT)
    renders, grounds = _numbered(render_dir, RENDER_RE), _numbered(ground_dir, GROUND_RE)
    if not renders:
        raise DataError(f"{render_dir} holds no renderNNNN.png file; {LAYOUT_HINT}")
    no_mask = sorted(renders.keys() - grounds.keys())
    no_render = sorted(grounds.keys() - renders.keys())
    if no_mask or no_render:
        parts = []
        if no_mask:
            parts.append(f"render without mask: {preview(renders[n].name for n in no_mask)}")
        if no_render:
            parts.append(f"mask without render: {preview(grounds[n].name for n in no_render)}")
        raise DataError(
            f"unpaired files in {root / 'images'}: {'; '.join(parts)}. Add the missing "
            "counterparts or remove these files"
        )
    return [(renders[n], grounds[n]) for n in sorted(renders)]


def binarize_mask(image: Image.Image, path: Path | str = "mask") -> np.ndarray:
    """uint8 (H, W) mask in {0, 1} following the module's mask rule."""
    if image.mode in GRAY_MODES:
        values = np.asarray(image.getchannel(0) if image.mode == "LA" else image)
        found = np.unique(values)
        allowed = (set(found.tolist()) <= {0, 255}) or (set(found.tolist()) <= {0, 1})
        if not allowed:
            raise DataError(
                f"mask {path} has values {preview(found.tolist(), 8)}; a grayscale mask must "
                "hold only 0/255 or only 0/1 (0 = background). Re-export it as binary"
            )
        return (values > 0).astype(np.uint8)
    rgb = np.asarray(image.convert("RGB"))
    return (rgb.max(axis=-1) > 0).astype(np.uint8)  # any non-black pixel is rock


def load_pair(
    render: Path, ground: Path, size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB (H, W, 3), uint8 {0,1} mask (H, W)); `size` is PIL's (width, height)."""
    with Image.open(render) as im_r, Image.open(ground) as im_g:
        if im_r.size != im_g.size:
            raise DataError(
                f"mask {ground} is {im_g.size[0]}x{im_g.size[1]} but its render {render.name} is "
                f"{im_r.size[0]}x{im_r.size[1]}; a mask must have its render's size"
            )
        image = im_r.convert("RGB")
        mask = binarize_mask(im_g, ground)
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
        mask_im = Image.fromarray(mask * 255).resize(size, Image.Resampling.NEAREST)
        mask = (np.asarray(mask_im) > 0).astype(np.uint8)
    return np.asarray(image, dtype=np.uint8), mask


def decode_pairs(
    pairs: list[tuple[Path, Path]], size: tuple[int, int] | None, root: Path
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stack all pairs; unreadable pairs are skipped and returned by name (relative to root)."""
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    skipped: list[str] = []
    for render, ground in pairs:
        try:
            image, mask = load_pair(render, ground, size)
        except (OSError, UnidentifiedImageError, SyntaxError):
            # Which of the two failed is not worth a second open: name both.
            skipped.append(f"{render.relative_to(root)} / {ground.relative_to(root)}")
            continue
        if images and image.shape != images[0].shape:
            raise DataError(
                f"{render} is {image.shape[1]}x{image.shape[0]} but earlier renders are "
                f"{images[0].shape[1]}x{images[0].shape[0]}; set image_size to resize them all"
            )
        images.append(image)
        masks.append(mask)
    if not images:
        raise DataError(f"no readable render/ground pair in {root}; {LAYOUT_HINT}")
    return np.stack(images), np.stack(masks), skipped


def lunar_source(spec: DataSpec) -> Source:
    """The segmentation reader for the lunar layout (no official test set: always a holdout)."""
    root = spec.path
    pairs = list_pairs(root)
    size = (spec.image_size, spec.image_size) if spec.image_size else None

    def decode() -> Pool:
        images, masks, skipped = decode_pairs(pairs, size, root)
        warn_skipped(skipped, str(root))
        return Pool("segmentation", ["rock"], ["rock"], images, masks, skipped=skipped)

    files = [p for pair in pairs for p in pair]
    return Source(
        spec.dataset,
        root,
        "segmentation",
        ["rock"],
        ["rock"],
        files,
        decode,
        {"image_size": spec.image_size},
    )


def _present(folder: Path) -> bool:
    return (folder / "images" / "render").is_dir() and (folder / "images" / "ground").is_dir()


register_dataset(
    "lunar",
    folder="MOON_SEGMENTATION_BINARY",
    markers=("images/render",),
    task="segmentation",
    official_test=False,  # always a stratified holdout
    reader=lunar_source,
    synthetic=write_lunar,
    download=None,  # the MOON data set has no public direct URL
    manual=(
        f"put MOON_SEGMENTATION_BINARY there ({LAYOUT_HINT}), or write a synthetic stand-in "
        "with: python -m trainables.data.make_lunar {path} --n 500"
    ),
    present=_present,
)
