"""Tables: the one renderer of every table nnpipe shows, as plain text or as HTML.

``runs list``/``runs compare``, ``sweep``, ``tune`` and the HTML reports (a run's, a study's)
all build a header and rows of cells and hand them here; how a value reads in a cell (four
decimals, ``-`` for missing) is the caller's ``cell`` function. Plain text is what a terminal,
a pipe and a CI log get alike: columns padded to their widest cell, two spaces apart, no
trailing blanks, optionally a dashed rule under the header. Imports nothing of nnpipe.
"""

from __future__ import annotations

from html import escape
from typing import Any, Callable, Sequence

Cells = Sequence[Any]


def text_table(headers: Cells, rows: Sequence[Cells], *, rule: bool = False,
               cell: Callable[[Any], str] = str) -> str:
    """A plain-text table of ``headers`` and ``rows`` (each row's cell through ``cell``).

    A row may be one cell longer or shorter than the header (a mark column such as the best
    trial's ``*``); missing cells are blank. ``rule`` puts a dashed line under the header.
    """
    lines = [[str(h) for h in headers], *([cell(c) for c in row] for row in rows)]
    columns = max(len(line) for line in lines)
    lines = [line + [""] * (columns - len(line)) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(columns)]
    if rule:
        lines.insert(1, ["-" * width for width in widths])
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


def html_table(headers: Cells, rows: Sequence[Cells], *,
               cell: Callable[[Any], str] = str) -> str:
    """The same table as an HTML ``<table>``, every header and cell (through ``cell``) escaped."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
