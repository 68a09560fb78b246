"""Render the report's blocks as one self-contained HTML page.

Self-contained means: CSS inline, every PNG embedded as a base64 data URI, no script and no
reference to anything outside the file, so the page can be mailed or opened offline.
"""

from __future__ import annotations

import base64
from html import escape

from analysis.document import (
    Block,
    Bullets,
    Code,
    Figure,
    Heading,
    Note,
    Paragraph,
    TableBlock,
)
from analysis.tables import Table

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1200px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.6rem; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
        padding: .6rem .9rem; margin: 1rem 0; }
.table-wrap { overflow-x: auto; margin: .8rem 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fbfcfd; }
tr.best td { background: #dafbe1; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #59636e; font-size: 13px; margin-top: .3rem; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: .8rem;
      overflow: auto; max-height: 32rem; font-size: 12px; }
nav.toc { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
          padding: .5rem 1rem; }
nav.toc ul { margin: .2rem 0; padding-left: 1.2rem; columns: 3; }
"""


def _num(s: str) -> bool:
    try:
        float(s.replace("+", "").replace("−", "-"))
    except ValueError:
        return False
    return True


def table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(c.title)}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.cells()):
        cls = ' class="best"' if i in table.bold_rows else ""
        tds = "".join(
            f'<td class="num">{escape(c)}</td>' if _num(c) else f"<td>{escape(c)}</td>" for c in row
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(fig.path.read_bytes()).decode("ascii")
    cap = escape(fig.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{cap}">'
        f"<figcaption>{cap}</figcaption></figure>"
    )


def _toc(blocks: list[Block]) -> str:
    items = [
        f'<li><a href="#{b.anchor}">{escape(b.text)}</a></li>'
        for b in blocks
        if isinstance(b, Heading) and b.level == 2
    ]
    return f'<nav class="toc"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


def to_html(blocks: list[Block], title: str) -> str:
    """The whole page; the table of contents follows the first heading."""
    parts: list[str] = []
    seen: dict[str, int] = {}
    for b in blocks:
        if isinstance(b, Heading):
            anchor = b.anchor
            seen[anchor] = seen.get(anchor, 0) + 1
            if seen[anchor] > 1:  # repeated titles (per stage) still get unique anchors
                anchor = f"{anchor}-{seen[anchor]}"
            parts.append(f'<h{b.level} id="{anchor}">{escape(b.text)}</h{b.level}>')
            if b.level == 1:
                parts.append(_toc(blocks))
        elif isinstance(b, Paragraph):
            parts.append(f"<p>{escape(b.text)}</p>")
        elif isinstance(b, Note):
            parts.append(f'<div class="note"><strong>Note:</strong> {escape(b.text)}</div>')
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, TableBlock):
            parts.append(table_html(b.table))
        elif isinstance(b, Figure):
            parts.append(_figure_html(b))
        elif isinstance(b, Code):
            parts.append(
                f"<details open><summary>{escape(b.summary)}</summary>"
                f"<pre>{escape(b.text)}</pre></details>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
