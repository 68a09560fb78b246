"""A tiny document model, so report.md and report.html are written from the same content."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from analysis.tables import Table


@dataclass
class Heading:
    level: int
    text: str

    @property
    def anchor(self) -> str:
        return slug(self.text)


@dataclass
class Paragraph:
    text: str


@dataclass
class Note:
    """A warning the reader must not miss (study not finished, missing files)."""

    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class TableBlock:
    table: Table


@dataclass
class Figure:
    path: Path  # the PNG under figures/
    caption: str


@dataclass
class Code:
    text: str
    summary: str  # what the block is (shown as a collapsible title in HTML)


Block = Heading | Paragraph | Note | Bullets | TableBlock | Figure | Code


def slug(text: str) -> str:
    """An HTML anchor for a heading."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def file_stem(name: str) -> str:
    """A file name safe on every OS from a table/figure name (stage names are user text)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "unnamed"


def to_markdown(blocks: list[Block], out_dir: Path) -> str:
    """Markdown with figures linked relative to out_dir (report.md sits there)."""
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            parts.append(b.text)
        elif isinstance(b, Note):
            parts.append(f"> **Note:** {b.text}")
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {i}" for i in b.items))
        elif isinstance(b, TableBlock):
            parts.append(b.table.to_markdown())
        elif isinstance(b, Figure):
            rel = b.path.relative_to(out_dir).as_posix()
            parts.append(f"![{b.caption}]({rel})\n\n*{b.caption}*")
        elif isinstance(b, Code):
            fence = "````" if "```" in b.text else "```"
            parts.append(f"{b.summary}:\n\n{fence}text\n{b.text.rstrip()}\n{fence}")
    return "\n\n".join(parts) + "\n"
