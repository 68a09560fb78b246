"""`analysis.report --out DIR` writes only into a folder it owns; user files are never touched."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from report_fixtures import write_classification_run

from analysis.output import MANIFEST, MARKER
from analysis.report import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_classification_run(tmp_path_factory.mktemp("report_out") / "run")


def user_folder(root: Path) -> dict[Path, str]:
    """A folder laid out like a report (figures/, tables/, report.md) holding user files."""
    files = {
        root / "report.md": "my notes",
        root / "figures" / "plot.png": "my figure",
        root / "tables" / "data.csv": "a,b\n1,2\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_non_empty_folder_it_did_not_create_is_refused_and_left_alone(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    files = user_folder(out)
    assert main([str(run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "new or empty folder" in err and "Traceback" not in err
    assert {p: p.read_text() for p in files} == files
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(
        [Path("figures"), Path("tables"), *(p.relative_to(out) for p in files)]
    )


def test_new_folder_is_marked_and_rewritten_on_the_next_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "report"
    assert main([str(run_dir), "--out", str(out)]) == 0
    assert (out / MARKER).is_file() and (out / "report.md").is_file()
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures
    # A figure of an earlier report that this one does not draw is removed, not left unreferenced.
    (out / "figures" / "stale_from_before.png").write_bytes(b"old")
    listed = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps([*listed, "figures/stale_from_before.png"]))
    assert main([str(run_dir), "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == figures
    assert "report written" in capsys.readouterr().out


def test_empty_folder_is_taken(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert main([str(run_dir), "--out", str(out)]) == 0
    assert (out / MARKER).is_file() and (out / "report.html").is_file()


def test_default_folder_follows_the_same_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_classification_run(tmp_path / "run")
    # RUN_DIR/report written before the marker existed (only a report's files): taken over.
    (run / "report" / "figures").mkdir(parents=True)
    (run / "report" / "report.md").write_text("old report")
    (run / "report" / "figures" / "old.png").write_bytes(b"old")
    assert main([str(run)]) == 0
    assert (run / "report" / MARKER).is_file()
    assert not (run / "report" / "figures" / "old.png").exists()
    # A RUN_DIR/report holding anything else and no marker is refused.
    other = write_classification_run(tmp_path / "other")
    (other / "report").mkdir()
    (other / "report" / "thesis.tex").write_text("mine")
    assert main([str(other)]) == 2
    assert "thesis.tex" not in capsys.readouterr().err
    assert (other / "report" / "thesis.tex").read_text() == "mine"


def test_unwritable_out_is_an_error_with_a_message(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("x")
    assert main([str(run_dir), "--out", str(tmp_path / "afile" / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the report" in err and "--out" in err and "Traceback" not in err


def test_a_second_report_into_the_same_folder_keeps_the_users_files(
    run_dir: Path, tmp_path: Path
) -> None:
    """Issue 21's sequence: report to R, add files of one's own, report to R again."""
    out = tmp_path / "R"
    assert main([str(run_dir), "--out", str(out)]) == 0
    mine = {
        out / "figures" / "my_plot.png": b"\x89PNG my plot",
        out / "tables" / "my_table.csv": b"a,b\n1,2\n",
        out / "notes.md": b"my notes",
    }
    for path, data in mine.items():
        path.write_bytes(data)
    written = set(json.loads((out / MANIFEST).read_text()))
    assert main([str(run_dir), "--out", str(out)]) == 0
    assert {p: p.read_bytes() for p in mine} == mine
    assert set(json.loads((out / MANIFEST).read_text())) == written
    # A manifest entry pointing outside the folder is never followed.
    outside = tmp_path / "outside.csv"
    outside.write_text("keep")
    (out / MANIFEST).write_text(json.dumps(["../outside.csv", "report.md"]))
    assert main([str(run_dir), "--out", str(out)]) == 0
    assert outside.read_text() == "keep"


def test_report_into_a_run_that_a_live_run_holds_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_classification_run(tmp_path / "run")
    parent = os.getppid()  # alive for the whole test, and not this process
    lock = {"pid": parent, "host": socket.gethostname(), "since": "now"}
    (run / ".archsweep.lock").write_text(json.dumps(lock))
    assert main([str(run)]) == 2
    err = capsys.readouterr().err
    assert f"pid {parent}" in err and "--out" in err and "Traceback" not in err
    assert not (run / "report").exists()
    # Elsewhere is fine; and a lock whose process is gone is no obstacle.
    assert main([str(run), "--out", str(tmp_path / "elsewhere")]) == 0
    lock["pid"] = 2**22 + 12345  # above the kernel's pid_max default: no such process
    (run / ".archsweep.lock").write_text(json.dumps(lock))
    assert main([str(run)]) == 0
