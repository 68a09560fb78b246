"""`python -m trainables.data.make_lunar`: the synthetic lunar set in the exact layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainables.data import DataError, DataSpec, ensure_downloaded, list_pairs, load_bundle
from trainables.data.lunar_synth import lunar_pair
from trainables.data.make_lunar import main

REPO = Path(__file__).resolve().parents[1]


def test_command_writes_n_aligned_binary_pairs(tmp_path: Path) -> None:
    out = tmp_path / "MOON_SEGMENTATION_BINARY"
    done = subprocess.run(
        [sys.executable, "-m", "trainables.data.make_lunar", str(out), "--n", "6", "--size", "48"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"wrote 6 pairs of 48x48 to {out}" in done.stdout
    renders = sorted(p.name for p in (out / "images" / "render").iterdir())
    grounds = sorted(p.name for p in (out / "images" / "ground").iterdir())
    assert renders == [f"render{i:04d}.png" for i in range(1, 7)]
    assert grounds == [f"ground{i:04d}.png" for i in range(1, 7)]
    pairs = list_pairs(out)  # the reader pairs every file by number
    assert len(pairs) == 6
    for render, ground in pairs:
        with Image.open(render) as r, Image.open(ground) as g:
            assert r.mode == "RGB" and g.mode == "L" and r.size == g.size == (48, 48)
            mask = np.asarray(g)
        assert set(np.unique(mask)) <= {0, 255} and mask.any()


def test_masks_are_where_the_rocks_are() -> None:
    """Aligned: rock pixels differ from ground pixels in the render (lit or shaded relief)."""
    rng = np.random.default_rng(3)
    rgb, mask = lunar_pair(128, rng)
    gray = rgb.astype(float).mean(-1)
    rock = mask > 0
    assert 0.005 < rock.mean() < 0.5
    # Rocks stand out from their surroundings: their brightness spreads more (lit and dark
    # sides) than the ground's, and a misaligned mask (shifted by half a tile) loses that.
    shifted = np.roll(rock, 64, axis=(0, 1)) & ~rock
    assert gray[rock].std() > 1.3 * gray[shifted].std()


def test_same_seed_same_tiles_and_larger_n_extends(tmp_path: Path) -> None:
    main([str(tmp_path / "a"), "--n", "2", "--size", "32", "--seed", "5"])
    main([str(tmp_path / "b"), "--n", "3", "--size", "32", "--seed", "5"])
    for name in ("render/render0002.png", "ground/ground0002.png"):
        a = (tmp_path / "a" / "images" / name).read_bytes()
        assert a == (tmp_path / "b" / "images" / name).read_bytes()


def test_refuses_bad_arguments_and_a_used_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x"), "--n", "0"])
    main([str(tmp_path / "y"), "--n", "1", "--size", "32"])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "y"), "--n", "1"])


def test_written_set_loads_and_missing_lunar_names_the_command(tmp_path: Path) -> None:
    main([str(tmp_path / "moon"), "--n", "10", "--size", "32"])
    b = load_bundle(DataSpec("lunar", tmp_path / "moon", val_fraction=0.2), tmp_path / "c")
    assert b.task == "segmentation" and len(b.train) + len(b.val) + len(b.test) == 10
    with pytest.raises(DataError, match=r"python -m trainables.data.make_lunar .*absent --n 500"):
        ensure_downloaded(DataSpec("lunar", tmp_path / "absent"))
