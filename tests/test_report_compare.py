"""`python -m analysis.report RUN_A RUN_B`: one report comparing runs (issue 13 item 4)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.report import main

try:  # tests/ is a rootdir-relative folder, not a package, unless someone adds __init__.py
    from tests.report_fixtures import write_classification_run, write_segmentation_run
    from tests.test_report_sections import assert_figure_has_data
except ImportError:
    from report_fixtures import write_classification_run, write_segmentation_run
    from test_report_sections import assert_figure_has_data

REPO = Path(__file__).resolve().parents[1]
SHIFT = 0.01  # run B's 3.1-A scores one point higher


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _second_seed(run: Path) -> None:
    """Run B: every trial with seed 1; 3.1-A renumbered to X.1-A and one point better."""
    study = json.loads((run / "study.json").read_text())
    for stage in study["stages"]:
        for t in stage["trials"]:
            t["config"]["seed"] = 1
            if t["label"] == "3.1-A":
                t["label"] = t["config"]["label"] = "X.1-A"
                t["best"]["val_acc"] += SHIFT
    study["run_settings"] = {"set": {"seed": 1}, "smoke": False}
    (run / "study.json").write_text(json.dumps(study))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cmp")
    a = write_classification_run(base / "seed0")
    b = write_classification_run(base / "seed1")
    _second_seed(b)
    return a, b


@pytest.fixture(scope="module")
def compared(runs: tuple[Path, Path]) -> Path:
    out = runs[0].parent / "out"
    assert main([str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    return out


def test_writes_one_report_with_tables_and_shared_curves(compared: Path) -> None:
    md = (compared / "report.md").read_text()
    assert md.startswith("# archsweep comparison: R1 (seed0) vs R2 (seed1)")
    assert (compared / "report.html").is_file()
    assert {"compare_summary.csv", "seed_spread.csv"} <= {
        p.name for p in (compared / "tables").glob("*.csv")
    }
    for stage in ("baseline", "channels", "depth", "final"):
        fig = compared / "figures" / f"compare_curves_{stage}.png"
        assert_figure_has_data(fig)
        assert f"figures/compare_curves_{stage}.png" in md
    assert "--set seed=1" in md


def test_summaries_side_by_side_match_by_settings(compared: Path, runs: tuple) -> None:
    rows = _read_csv(compared / "tables" / "compare_summary.csv")
    assert len(rows) == 8  # the 8 summary rows of each run, matched one to one
    row = next(r for r in rows if r["configuration"] == "channels=[32,64,128,256]")
    assert row["trial"] == "3.1-A / X.1-A"  # renumbered label, same settings
    r1, r2 = float(row["R1_val_best"]), float(row["R2_val_best"])
    assert r2 - r1 == pytest.approx(SHIFT)
    assert float(row["delta"]) == pytest.approx(SHIFT)
    assert row["R1_budget"] == row["R2_budget"] == "8 ep, 64px, 10 classes, full train set"
    md = (compared / "report.md").read_text()
    assert "+1.0 pt" in md  # the difference in percentage points on the page


def test_seed_spread_is_mean_and_std(compared: Path, runs: tuple) -> None:
    rows = _read_csv(compared / "tables" / "seed_spread.csv")
    row = next(r for r in rows if r["stage"] == "3.1 Channels" and "32,64" in r["configuration"])
    assert (row["n"], row["seeds"], row["runs"]) == ("2", "0, 1", "R1, R2")
    a = json.loads((runs[0] / "study.json").read_text())
    best = next(
        t["best"]["val_acc"] for s in a["stages"] for t in s["trials"] if t["label"] == "3.1-A"
    )
    vals = [best, best + SHIFT]
    assert float(row["mean"]) == pytest.approx(np.mean(vals))
    assert float(row["std"]) == pytest.approx(np.std(vals, ddof=1))
    assert "±" in row["mean_pm_std"]
    # Infeasible and crashed trials have no score, so no spread.
    assert not any("1024" in r["configuration"] for r in rows)


def test_one_seed_has_no_spread(tmp_path: Path) -> None:
    a = write_classification_run(tmp_path / "a")
    b = write_classification_run(tmp_path / "b")
    study = json.loads((b / "study.json").read_text())
    for stage in study["stages"]:
        for t in stage["trials"]:
            t["config"]["epochs"] = 2  # another budget: a different configuration
    (b / "study.json").write_text(json.dumps(study))
    assert main([str(a), str(b)]) == 0
    out = tmp_path / "compare_a_vs_b"  # the default: beside the first run
    assert not (out / "tables" / "seed_spread.csv").exists()
    assert "no spread can be given" in (out / "report.md").read_text()
    rows = _read_csv(out / "tables" / "compare_summary.csv")
    assert rows[0]["R2_budget"].startswith("2 ep")


def test_single_run_behaviour_unchanged(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "single"
    assert main([str(runs[0]), "--out", str(out)]) == 0
    assert (out / "tables" / "summary.csv").is_file()
    assert not (out / "tables" / "compare_summary.csv").exists()
    assert (out / "report.md").read_text().startswith("# archsweep report: resnet_tiny")


@pytest.mark.parametrize("case", ["twice", "tasks", "missing"])
def test_bad_comparisons_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    a = write_classification_run(tmp_path / "a")
    other = {
        "twice": a,
        "tasks": write_segmentation_run(tmp_path / "seg"),
        "missing": tmp_path / "nope",
    }[case]
    assert main([str(a), str(other), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    expect = {"twice": "given twice", "tasks": "different tasks", "missing": "does not exist"}
    assert expect[case] in err and "Traceback" not in err


def test_cli_compares_without_ray_or_torch(runs: tuple[Path, Path], tmp_path: Path) -> None:
    code = (
        "import sys; from analysis.report import main; rc = main(sys.argv[1:]); "
        "ok = ('trainables', 'trainables.contract', 'trainables.run_dir'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'orchestrator', 'torch') "
        "or (m.startswith('trainables') and m not in ok)]; "
        "print('BAD', bad); sys.exit(rc or bool(bad))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(runs[0]), str(runs[1]), "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
