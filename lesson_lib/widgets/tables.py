"""HTML tables for the panels: plain strings, no widgets (a panel puts them into an ``ipywidgets.HTML``)."""

from __future__ import annotations

import html
from collections.abc import Sequence


def html_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A table with ``header`` escaped; the cells of ``rows`` are HTML already (escape text yourself)."""
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='lesson-table'><tr>{head}</tr>{body}</table>"
