"""A small document model rendered twice: to Markdown and to one self-contained HTML page.

The report is built once as a list of :class:`Section` objects holding blocks
(:class:`Paragraph`, :class:`Table`, :class:`Figure`, :class:`Code`, :class:`Note`);
:func:`to_markdown` and :func:`to_html` turn the same list into ``report.md`` and
``report.html``.  Inline text supports one markup only: ```code``` spans.  The HTML
embeds every figure as a base64 ``data:`` URI and carries its CSS inline, so it opens
offline and refers to nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Sequence, Union

__all__ = ["Paragraph", "Table", "Figure", "Code", "Note", "Section", "Block", "to_markdown", "to_html"]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of text (```code``` spans allowed)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table with a header row.

    Attributes:
        header: column titles.
        rows: cell texts, one list per row, each as long as ``header``.
        align: per column ``"l"`` or ``"r"``; ``None`` means every column left-aligned.
    """

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"table row {list(row)!r} has {len(row)} cells, header has {len(self.header)}")


@dataclass(frozen=True)
class Figure:
    """A PNG figure: ``path`` is relative to the report folder (Markdown link), ``png`` its bytes (HTML)."""

    path: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Code:
    """A preformatted block (commands, file lists)."""

    text: str


@dataclass(frozen=True)
class Note:
    """A highlighted remark; ``level`` is ``"warning"`` (flags a problem) or ``"info"``."""

    text: str
    level: str = "info"


Block = Union[Paragraph, Table, Figure, Code, Note]


@dataclass(frozen=True)
class Section:
    """A titled section; ``anchor`` is its HTML id."""

    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


# --------------------------------------------------------------------------- Markdown

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Note):
        prefix = "**Warning:** " if block.level == "warning" else "**Note:** "
        return "> " + prefix + block.text.replace("\n", "\n> ")
    if isinstance(block, Code):
        return "```\n" + block.text.rstrip("\n") + "\n```"
    if isinstance(block, Figure):
        return f"![{block.caption}]({block.path})\n\n*{block.caption}*"
    if isinstance(block, Table):
        align = block.align or ["l"] * len(block.header)
        lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |"]
        lines.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    raise TypeError(f"unknown block {type(block).__name__}")


def to_markdown(title: str, sections: Sequence[Section]) -> str:
    """Render the document as GitHub-flavoured Markdown."""
    parts = [f"# {title}", "Contents: " + " · ".join(f"[{s.title}](#{s.anchor})" for s in sections)]
    for section in sections:
        parts.append(f'<a id="{section.anchor}"></a>\n\n## {section.title}')
        parts += [_md_block(b) for b in section.blocks]
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d232b;line-height:1.45}
h1{font-size:1.7em;border-bottom:2px solid #2b6cb0;padding-bottom:.2em}
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.15em}
nav{font-size:.95em}nav a{margin-right:1em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.25em .6em;overflow-wrap:anywhere}th{background:#f3f5f7;text-align:left}
.table{max-width:100%;overflow-x:auto}
td.r{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafbfc}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
code{background:#f3f5f7;padding:0 .2em;border-radius:3px}
pre{background:#f3f5f7;padding:.7em;overflow-x:auto;border-radius:4px}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{font-size:.9em;color:#57606a}
.note{padding:.5em .8em;border-left:4px solid #2b6cb0;background:#eef4fb;margin:.8em 0}
.warning{border-left-color:#c53030;background:#fdf0f0}
""".strip()

_CODE_SPAN = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    """Escape ``text`` for HTML and turn ```code``` spans into ``<code>``."""
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        out.append(f"<code>{html.escape(match.group(1))}</code>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Note):
        label = "Warning" if block.level == "warning" else "Note"
        css = "note warning" if block.level == "warning" else "note"
        return f'<div class="{css}"><strong>{label}:</strong> {_inline(block.text)}</div>'
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text.rstrip())}</pre>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>")
    if isinstance(block, Table):
        align = block.align or ["l"] * len(block.header)
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
        body = "".join(
            "<tr>" + "".join(f'<td class="{a}">{_inline(c)}</td>' for a, c in zip(align, row)) + "</tr>"
            for row in block.rows
        )
        return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    raise TypeError(f"unknown block {type(block).__name__}")


def to_html(title: str, sections: Sequence[Section]) -> str:
    """Render the document as one HTML page with inline CSS and embedded figures."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = [f"<h1>{html.escape(title)}</h1>", f"<nav>{nav}</nav>"]
    for section in sections:
        body.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>')
        body += [_html_block(b) for b in section.blocks]
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
