"""The panel framework: a ``Panel`` box and the few helpers every panel builds its controls with.

A panel is an ``ipywidgets.VBox``: a title, rows of controls, figures (``FigureView``), a status line,
and an output area where any error of a callback is shown, so nothing fails silently. Each panel in
this package is a subclass that declares what it keeps (``values``: the numbers on screen).
"""

from __future__ import annotations

import functools
import html
import time
import traceback
from collections.abc import Callable, Sequence

import ipywidgets as W

from .figures import FigureView, figure_mode


class Panel(W.VBox):
    """A panel: a title, controls, figures and numbers, a status line and an output area for errors.

    For notebooks and tests: ``controls`` (name → widget), ``views`` (name → FigureView), ``values``
    (the numbers on screen), ``timings`` (seconds the last update of each kind took), ``errors``.
    """

    def __init__(self, title: str, kind: str, controls: dict, views: dict[str, FigureView]):
        super().__init__()
        self.controls, self.views = controls, views
        self.values: dict = {}
        self.timings: dict[str, float] = {}
        self.errors: list[str] = []
        self.status = W.HTML()
        self.out = W.Output()
        self.title = W.HTML(f"<b style='font-size:1.25em'>{html.escape(title)}</b>")
        self.add_class("lesson-panel")
        self.add_class(f"lesson-{kind}")

    def arrange(self, *rows) -> Panel:
        """Title, ``rows``, the status line (at the end, unless a row already holds it), the error area."""
        placed = any(r is self.status or self.status in getattr(r, "children", ()) for r in rows)
        self.children = [self.title, *rows, *([] if placed else [self.status]), self.out]
        return self

    def guard(self, name: str, fn: Callable) -> Callable:
        """Wrap a callback: time it, and show an error in the panel instead of losing it in a log."""
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            start = time.perf_counter()
            if self.out.outputs:  # a new action: the last error is out of date
                self.out.outputs, self.status.value = (), ""
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                self.report(err)
                return None
            finally:
                self.timings[name] = time.perf_counter() - start
        return wrapped

    def watch(self, name: str, fn: Callable[[], None], widgets: Sequence[W.Widget]) -> Callable:
        """Call ``fn()`` (guarded, timed as ``name``) whenever one of ``widgets`` changes its value."""
        update = self.guard(name, lambda *_: fn())
        for w in widgets:
            w.observe(update, names="value")
        return update

    def report(self, err: Exception) -> None:
        """Show ``err`` in the status line and its details in the output area (also kept in ``errors``)."""
        expected = isinstance(err, (ValueError, TypeError))  # a bad setting: the message says what to do
        text = f"{type(err).__name__}: {err}" if expected else traceback.format_exc()
        self.errors.append(text)
        self.status.value = f"<span class='lesson-status' style='color:#b00020'>⚠ {html.escape(str(err))}</span>"
        self.out.append_stderr(text.rstrip() + "\n")

    def say(self, text: str) -> None:
        """Put ``text`` in the status line (the panel's answer; projector mode makes it big and bold)."""
        self.status.value = f"<span class='lesson-status' style='color:#222'>{html.escape(text)}</span>"


def slider(description: str, value: float, lo: float, hi: float, cheap: bool = True, kind=W.IntSlider, **kw):
    """A slider; cheap ones follow the mouse in widget mode, slow ones fire once, on release."""
    return kind(value=value, min=lo, max=hi, description=description, style={"description_width": "110px"},
                continuous_update=cheap and figure_mode() == "widget", layout=W.Layout(width="310px"), **kw)


def toggle(description: str, value: bool) -> W.ToggleButton:
    """An on/off button that looks on or off: filled blue with a tick when on, plain when off; as wide as
    its label needs."""
    button = W.ToggleButton(value=value, description=description, layout=W.Layout(width="auto"))

    def look(_=None) -> None:
        button.button_style, button.icon = ("info", "check") if button.value else ("", "")

    look()
    button.observe(look, names="value")
    return button


def row(*widgets: W.Widget, **layout) -> W.HBox:
    """Widgets side by side, wrapping onto the next line where the output area is too narrow for them."""
    return W.HBox(list(widgets), layout=W.Layout(flex_flow="row wrap", align_items="center", **layout))


def side_by_side(*views: FigureView) -> W.HBox:
    """Figures in one row (they wrap below each other on a narrow screen); give them a ``width``."""
    return W.HBox([v.widget for v in views], layout=W.Layout(flex_flow="row wrap", width="100%"))
