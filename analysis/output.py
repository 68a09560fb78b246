"""The report's output folder and the builder that fills it, shared by analysis/report.py (one
run) and analysis/compare.py (several runs), so neither imports the other for them.

`prepare_out_dir` claims a folder (marked by MARKER) and clears an earlier report's figures and
tables; `ReportBuilder` collects the page's blocks and writes each table (CSV) and figure (PNG)
once, into that folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analysis.document import Block, Figure, TableBlock, file_stem
from analysis.evaluation import Evaluation
from analysis.rundir import ReportError, Study
from analysis.tables import Table


@dataclass
class ReportBuilder:
    """Collects blocks and writes each table/figure once, into out_dir."""

    study: Study
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
        self.add(TableBlock(shown or table))

    def figure(self, name: str, caption: str, draw) -> bool:
        """draw(path) -> bool; the figure enters the page only when something was drawn."""
        path = self.fig_dir / f"{file_stem(name)}.png"
        if not draw(path):
            return False
        self.written.append(path)
        self.add(Figure(path, caption))
        return True


# A folder holding this file was created by the report; only such a folder is ever rewritten.
MARKER = ".archsweep-report"
MARKER_TEXT = (
    "This folder was created by archsweep's analysis.report. Each report run rewrites its\n"
    "report.md, report.html, figures/*.png and tables/*.csv; keep your own files elsewhere.\n"
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
    owned = (out / MARKER).is_file() or (adopt_legacy and _is_legacy_report(out))
    if out.is_dir() and not owned and any(out.iterdir()):
        raise ReportError(
            f"--out {out} is a folder with other files in it, and the report writes only into "
            f"a folder it created (marked by {MARKER}); give a new or empty folder, e.g. "
            f"--out {out / 'report'}"
        )
    try:
        for sub in ("figures", "tables"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text(MARKER_TEXT)
        # Stale files of an earlier report would otherwise sit beside the new ones unreferenced.
        for stale in [*(out / "figures").glob("*.png"), *(out / "tables").glob("*.csv")]:
            stale.unlink()
    except OSError as err:
        raise ReportError(
            f"cannot write the report to {out}: {err.strerror or err}; give a writable folder "
            "with --out DIR"
        ) from None


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
