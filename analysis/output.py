"""The report's output folder and the builder that fills it, shared by analysis/report.py (one
run) and analysis/compare.py (several runs), so neither imports the other for them.

`prepare_out_dir` claims a folder (marked by MARKER) and removes the files an earlier report
wrote there, as listed in its MANIFEST, and nothing else; `ReportBuilder` collects the page's
blocks and writes each table (CSV) and figure (PNG) once, into that folder, listing each.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from analysis.document import Block, Figure, TableBlock, file_stem
from analysis.evaluation import Evaluation
from analysis.rundir import ReportError, StudyResults
from analysis.tables import Table
from trainables.run_dir import LOCK_FILE, process_alive


@dataclass
class ReportBuilder:
    """Collects blocks and writes each table/figure once, into out_dir."""

    study: StudyResults
    out_dir: Path
    blocks: list[Block] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # by stage name

    @property
    def fig_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def table_dir(self) -> Path:
        return self.out_dir / "tables"

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def table(self, table: Table, shown: Table | None = None) -> None:
        path = self.table_dir / f"{file_stem(table.name)}.csv"
        table.write_csv(path)
        self.written.append(path)
        list_output(self.out_dir, path)
        self.add(TableBlock(shown or table))

    def figure(self, name: str, caption: str, draw) -> bool:
        """draw(path) -> bool; the figure enters the page only when something was drawn."""
        path = self.fig_dir / f"{file_stem(name)}.png"
        if not draw(path):
            return False
        self.written.append(path)
        list_output(self.out_dir, path)
        self.add(Figure(path, caption))
        return True


# A folder holding this file was created by the report; only such a folder is ever rewritten.
MARKER = ".archsweep-report"
MARKER_TEXT = (
    "This folder was created by archsweep's analysis.report. Each report run rewrites its\n"
    "report.md, report.html and the figures and tables listed in .archsweep-report-files;\n"
    "files of your own here are left alone.\n"
)
# The files the last report wrote (paths relative to the folder, one JSON list): the next report
# removes these and only these, so a user's figures/my_plot.png survives.
MANIFEST = ".archsweep-report-files"
PAGES = ("report.md", "report.html")


def list_output(out: Path, path: Path) -> None:
    """Add `path` (a file the report just wrote) to out's manifest."""
    listed = read_manifest(out)
    rel = path.relative_to(out).as_posix()
    if rel not in listed:
        (out / MANIFEST).write_text(json.dumps([*listed, rel], indent=0))


def read_manifest(out: Path) -> list[str]:
    """The manifest's paths that stay inside `out` (a hand-edited '../x' is ignored)."""
    try:
        listed = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(listed, list):
        return []
    return [p for p in listed if isinstance(p, str) and _inside(out, p)]


def _inside(out: Path, rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def _remove_listed(out: Path, listed: list[str]) -> None:
    for rel in listed:
        path = out / rel
        if path.is_file() and not path.is_symlink():
            path.unlink()


def refuse_live_run(out: Path) -> None:
    """A report into a run directory while a run holds its lock would write beside a live run
    (and its --fresh would move the folder away under the report): refused, naming the run."""
    for folder in (out, *out.absolute().parents[:1]):
        try:
            owner = json.loads((folder / LOCK_FILE).read_text())
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host == socket.gethostname() and (pid == os.getpid() or not process_alive(pid)):
            continue
        raise ReportError(
            f"a run (pid {pid} on {host}, since {owner.get('since')}) is writing to {folder}; "
            f"report when it has finished, or write this report elsewhere with --out DIR"
        )


def prepare_out_dir(out: Path, adopt_legacy: bool = False) -> None:
    """Make `out` a folder the report owns, emptied of an earlier report's figures and tables.

    A new or empty folder is taken (and marked); a folder with the marker is the report's own.
    Any other non-empty folder is refused: the report must never overwrite or delete the
    user's files. `adopt_legacy` also takes RUN_DIR/report as written before the marker
    existed, when it holds nothing but a report's files.

    Raises:
        ReportError: `out` is a file, a non-empty folder the report did not create, or not
            writable.
    """
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file; give a new or empty folder")
    refuse_live_run(out)
    owned = (out / MARKER).is_file() or (adopt_legacy and _is_legacy_report(out))
    if out.is_dir() and not owned and any(out.iterdir()):
        raise ReportError(
            f"--out {out} is a folder with other files in it, and the report writes only into "
            f"a folder it created (marked by {MARKER}); give a new or empty folder, e.g. "
            f"--out {out / 'report'}"
        )
    legacy = owned and not (out / MARKER).is_file()
    try:
        # Stale files of an earlier report would otherwise sit beside the new ones unreferenced.
        _remove_listed(out, _legacy_files(out) if legacy else read_manifest(out))
        for sub in ("figures", "tables"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text(MARKER_TEXT)
        (out / MANIFEST).write_text(json.dumps(list(PAGES), indent=0))
    except OSError as err:
        raise ReportError(
            f"cannot write the report to {out}: {err.strerror or err}; give a writable folder "
            "with --out DIR"
        ) from None


def _legacy_files(out: Path) -> list[str]:
    """A pre-marker RUN_DIR/report holds only a report's files (see _is_legacy_report)."""
    found = [*(out / "figures").glob("*.png"), *(out / "tables").glob("*.csv")]
    return [p.relative_to(out).as_posix() for p in found]


def _is_legacy_report(out: Path) -> bool:
    """RUN_DIR/report from before the marker: only report.md/html, figures/*.png, tables/*.csv."""
    if not out.is_dir():
        return False
    for entry in out.iterdir():
        if entry.name in ("report.md", "report.html") and entry.is_file():
            continue
        suffix = {"figures": ".png", "tables": ".csv"}.get(entry.name)
        if suffix is None or not entry.is_dir():
            return False
        if any(not (f.is_file() and f.suffix == suffix) for f in entry.iterdir()):
            return False
    return True
