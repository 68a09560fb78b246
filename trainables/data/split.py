"""Stratified, seeded splits of a pool (per-class proportions kept)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from .errors import DataError


def stratified_split(
    strata: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) row indices, each split keeping every stratum's share.

    round(N * fraction) rows go to test and to val. Test is drawn first, then val from the rest,
    both with scikit-learn's `StratifiedShuffleSplit` (seeded: the same seed gives the same split).

    Raises:
        DataError: a nonzero fraction rounds to an empty split.
    """
    strata = np.asarray(strata)
    n = len(strata)
    rows = np.arange(n)
    rest, test = _draw(rows, strata, round(n * test_fraction), seed)
    train, val = _draw(rest, strata[rest], round(n * val_fraction), seed + 1)
    for name, idx, fraction in (("val", val, val_fraction), ("test", test, test_fraction)):
        if fraction > 0 and len(idx) == 0:
            raise DataError(
                f"{name}_fraction={fraction:g} of {n} samples leaves the {name} split "
                f"empty; raise {name}_fraction or add data"
            )
    return np.sort(train), np.sort(val), np.sort(test)


def _draw(
    rows: np.ndarray, strata: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, drawn) subsets of `rows`, `count` drawn per stratum in proportion."""
    if count == 0 or len(rows) == 0:
        return rows, rows[:0]
    _, sizes = np.unique(strata, return_counts=True)
    if sizes.min() < 2 or count < len(sizes) or len(rows) - count < len(sizes):
        # scikit-learn refuses a stratum of one row and a split smaller than the number of strata
        # (ValueError); small pools (20 tiles, one without rocks) still need a split, so these
        # fall back to per-stratum rounding that keeps every stratum's rows in train first.
        return _draw_by_rounding(rows, strata, count / len(rows), seed)
    sss = StratifiedShuffleSplit(n_splits=1, test_size=count, random_state=seed)
    kept, drawn = next(sss.split(np.zeros(len(rows)), strata))
    return rows[kept], rows[drawn]


def _draw_by_rounding(
    rows: np.ndarray, strata: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kept, drawn = [], []
    for value in np.unique(strata):
        members = rng.permutation(rows[strata == value])
        # A stratum keeps at least one row on the kept (training) side.
        take = min(round(len(members) * fraction), len(members) - 1)
        drawn.append(members[:take])
        kept.append(members[take:])
    return np.concatenate(kept), np.concatenate(drawn)
