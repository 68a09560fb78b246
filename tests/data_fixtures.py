"""Helpers shared by the tests/test_data_*.py files (plain functions, imported by name)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from trainables.data import DataWarning

# The course repo's shared data sets: <repo>/../shared/datasets (read-only, never copied).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def shared_dataset(name: str) -> Path:
    """Path of a shared data set, or skip the test saying what is missing."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared data set {path} is not available on this machine")
    return path


@contextmanager
def data_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record DataWarnings (and only those) raised inside the block."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    caught[:] = [w for w in caught if issubclass(w.category, DataWarning)]
