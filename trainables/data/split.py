"""Stratified, seeded splits of a pool (per-class proportions kept)."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def stratified_split(
    strata: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) row indices; each stratum is split in the given fractions.

    Per stratum of n rows, round(n * fraction) go to test and to val, so every class keeps its
    share in every split (up to rounding). The same seed gives the same split on any machine
    (numpy's PCG64 generator is stable across versions).
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for value in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == value))
        n_test = round(len(rows) * test_fraction)
        n_val = round(len(rows) * val_fraction)
        if n_test + n_val >= len(rows) and len(rows) > 1:
            # A tiny class keeps at least one training row.
            n_val = max(0, len(rows) - 1 - n_test)
        parts[2].append(rows[:n_test])
        parts[1].append(rows[n_test : n_test + n_val])
        parts[0].append(rows[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) if p else np.array([], int) for p in parts)
    for name, idx, fraction in (("val", val, val_fraction), ("test", test, test_fraction)):
        if fraction > 0 and len(idx) == 0:
            raise DataError(
                f"{name}_fraction={fraction:g} of {len(strata)} samples leaves the {name} split "
                f"empty; raise {name}_fraction or add data"
            )
    return train, val, test
