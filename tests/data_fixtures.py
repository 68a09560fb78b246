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


def tiny_study_run(root: Path, name: str, study_text: str, report: bool = True) -> Path:
    """Run `study_text` (a study file's source, study name `name`) for real on 3 generated Tiny
    ImageNet classes under `root`, then its report; the run directory. Needs the suite's Ray
    (the `ray_session` fixture)."""
    import textwrap

    from analysis.report import main as report_main
    from orchestrator.run import main as run_main
    from trainables.data import write_tiny_imagenet

    data = root / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=24, val_per_class=6
    )
    study = root / f"{name}.py"
    study.write_text(textwrap.dedent(study_text))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHSWEEP_CACHE", str(root / "cache"))
        code = run_main([str(study), "--data-root", str(data), "--storage", str(root / "runs")])
    assert code == 0
    run_dir = root / "runs" / name
    if report:
        assert report_main([str(run_dir)]) == 0
    return run_dir
