"""Shared fixtures: one Ray instance for the whole session, the real data folder, CI selection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """CI=true runs the fast suite: slow tests are skipped there, never deleted."""
    if not os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="slow test; runs outside CI (unset CI to include it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that needs it (start/stop costs ~4 s)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray

    from orchestrator import ray_setup

    ray_setup.start_ray(None, num_cpus=2, num_gpus=0)
    yield ray
    ray.shutdown()
