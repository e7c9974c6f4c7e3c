"""HTML tables for the panels: plain strings, no widgets (a panel puts them into an ``ipywidgets.HTML``)."""

from __future__ import annotations

import html
from collections.abc import Sequence


def html_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A table with ``header`` escaped; the cells of ``rows`` are HTML already (escape text yourself)."""
    # the header and the first column (names) may wrap onto a second line, the numbers never do: a table fits a narrow
    # output area (a projector) without breaking a number in two
    def style(i: int) -> str:
        return "padding:2px 8px;vertical-align:top;" + ("white-space:normal" if i == 0 else "white-space:nowrap")

    head = "".join(f"<th style='text-align:left;{style(0)}'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='{style(i)}'>{c}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table class='lesson-table' style='max-width:100%'><tr>{head}</tr>{body}</table>"
