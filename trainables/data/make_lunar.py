"""``python -m trainables.data.make_lunar DIR --n 500 [--size 128] [--seed 0]``.

Writes a synthetic lunar rock data set in the exact MOON_SEGMENTATION_BINARY layout
(``DIR/images/render/renderNNNN.png``, ``DIR/images/ground/groundNNNN.png`` with 0/255 masks), for
when the course's data set is not at hand. See `trainables.data.lunar_synth` for what is drawn.
Put it at ``<data root>/MOON_SEGMENTATION_BINARY`` to make it the default lunar folder, or name
it with ``--set data_dir=<folder>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .lunar_synth import write_lunar


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m trainables.data.make_lunar",
        description="Write synthetic lunar rock tiles and masks in the MOON_SEGMENTATION_BINARY "
        "layout (images/render/renderNNNN.png, images/ground/groundNNNN.png).",
    )
    p.add_argument(
        "dir", type=Path, help="the data set folder to write, e.g. data/MOON_SEGMENTATION_BINARY"
    )
    p.add_argument("--n", type=int, default=500, help="number of image/mask pairs (default 500)")
    p.add_argument("--size", type=int, default=128, help="tile side in pixels (default 128)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error(f"--n {args.n} is not valid; use 1 or more")
    if args.size < 16:
        p.error(f"--size {args.size} is not valid; use 16 or more")
    existing = args.dir / "images" / "render"
    if existing.is_dir() and any(existing.iterdir()):
        p.error(f"{existing} already holds files; pick an empty folder (pairs would be mixed)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    root = write_lunar(args.dir, n=args.n, size=args.size, seed=args.seed)
    masks = root / "images" / "ground"
    share = np.mean([np.asarray(Image.open(p)).mean() / 255 for p in sorted(masks.iterdir())])
    print(
        f"wrote {args.n} pairs of {args.size}x{args.size} to {root} "
        f"(rock pixels {100 * share:.1f}%, {time.perf_counter() - t0:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
