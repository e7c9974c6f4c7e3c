"""How a panel draws a figure, and the one place that touches plotly's private state.

A panel shows ``go.Figure`` objects made by ``lesson_lib.plots``, one of two ways, one kind per notebook:

* "widget": a plotly ``FigureWidget`` updated in place (JupyterLab 4 / Notebook 7 with ipywidgets 8);
* "static": a plain figure, redrawn whole at each update (Colab, ipywidgets 7, or a broken FigureWidget).

The choice is automatic; ``use_figure_widget(True | False)`` or the environment variable
``LESSON_FIGURES=widget|static`` overrides it. ``FigureView`` hides the difference: ``view.show(fig)``.

A static figure is drawn one of two ways (``static_drawing()``), chosen by where the kernel runs:

* "output" (JupyterLab, Notebook 7, VS Code, Voila): the figure's mime bundle inside an ``ipywidgets.Output``;
* "iframe" (Google Colab): an ``ipywidgets.HTML`` holding ``<iframe srcdoc="…">``, a small page of its own
  that loads plotly.js with a plain ``<script src>`` before it draws.

Why Colab gets neither a FigureWidget nor plotly inside an ``Output`` (evidence; docs/colab-check.md):

* plotly inside an ``Output`` widget on Colab draws nothing, "Uncaught ReferenceError: Plotly is not
  defined" from the injected script: https://github.com/googlecolab/colabtools/issues/5889 (open, 2026),
  earlier https://github.com/googlecolab/colabtools/issues/1458 (fixed 2020, reported broken again 2023).
  Colab's own plotly renderer (``renderer="colab"``) loads plotly.js from the CDN per output and relies on
  each output being a page of its own; HTML put inside a widget is injected into the widget's page instead.
  The iframe gives the figure back a page of its own, so ``Plotly`` exists before the figure's script runs.
* plotly's FigureWidget on Colab: https://github.com/plotly/plotly.py/issues/2202 (closed unfixed),
  https://github.com/googlecolab/colab-cdn-widget-manager/issues/51 ("Plotly widgets do not work", open),
  https://github.com/gee-community/geemap/issues/1488. Colab ships plotly 5.24 (FigureWidget not yet on
  anywidget) and ipywidgets 7.7.1. anywidget itself supports Colab by turning on Colab's custom widget
  manager (https://github.com/manzt/anywidget/pull/52, /pull/75; README: "run in … Google Colab"), but no
  source confirms plotly's FigureWidget there, and that manager has broken core widgets
  (https://github.com/googlecolab/colabtools/issues/3571). So on Colab "widget" is used only when asked
  for (``LESSON_FIGURES=widget``), and then the custom widget manager is turned on first.
* The static path uses core ipywidgets 7 widgets only (``HTML``), which Colab renders without any opt-in
  (https://github.com/googlecolab/colabtools/issues/498).
"""

from __future__ import annotations

import html
import json
import os
import sys
import textwrap
import warnings
from copy import deepcopy

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio

# The one process-wide setting: which kind of plotly figure this notebook page uses. Two kinds in one page
# load plotly.js twice, so it is a choice for the whole kernel, not for one panel.
_CHOICE: dict[str, bool | None] = {"widget": None}


def use_figure_widget(flag: bool | None = None) -> str:
    """Choose how panels draw: True → live FigureWidget, False → static figure in an Output, None → automatic.

    Call it once at the top of a notebook, before building panels (two kinds of plotly figure in one
    page load plotly.js twice). Returns the mode now in use, "widget" or "static".
    """
    _CHOICE["widget"] = flag
    return figure_mode()


def figure_mode() -> str:
    """"widget" or "static": ``use_figure_widget`` if called, else ``LESSON_FIGURES``, else what works here."""
    if _CHOICE["widget"] is not None:
        return "widget" if _CHOICE["widget"] else "static"
    env = os.environ.get("LESSON_FIGURES", "").strip().lower()
    if env in ("widget", "static"):
        return env
    if env:
        warnings.warn(f"LESSON_FIGURES={env!r} is not 'widget' or 'static'; choosing automatically", stacklevel=2)
    return "widget" if figure_widget_available() else "static"


def on_colab() -> bool:
    """True in a Google Colab kernel, which imports ``google.colab`` at start (anywidget checks sys.modules too)."""
    return sys.modules.get("google.colab") is not None


def figure_widget_available() -> bool:
    """True where plotly's FigureWidget can work: not Colab, ipywidgets 8 or newer, anywidget installed."""
    if on_colab():
        return False  # not confirmed there (see the module docstring); static figures in an iframe instead
    if int(W.__version__.split(".")[0]) < 8:
        return False  # Colab ships ipywidgets 7.7
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


def resync(fig) -> None:
    """Make a FigureWidget's saved state equal to what it shows now.

    plotly sends a FigureWidget's full state only when it is built; later changes travel as small edits
    to the views open at that moment. A page reload, a second tab or a projector window therefore draws
    the figure as it was first built. Copying the current state into the synced traits fixes that.
    Panels call this after every update; a static figure (or a ``FigureView`` in static mode) needs nothing.
    """
    fig = fig.widget if isinstance(fig, FigureView) else fig
    if not hasattr(fig, "_widget_data"):
        return
    fig._widget_data = deepcopy(fig._data)  # private plotly attributes: kept in this one place
    fig._widget_layout = deepcopy(fig._layout_obj._props)


def static_drawing() -> str:
    """How a static figure is drawn here: "iframe" on Colab, "output" everywhere else (module docstring)."""
    return "iframe" if on_colab() else "output"


def _enable_colab_custom_widgets() -> None:
    """Colab draws third-party widgets (a FigureWidget) only after this opt-in (colabtools#498)."""
    try:
        from google.colab import output as colab_output

        colab_output.enable_custom_widget_manager()
    except Exception as err:  # not Colab after all, or an old google.colab
        warnings.warn(f"could not enable Colab's custom widget manager ({err})", stacklevel=3)


def iframe_html(fig: go.Figure) -> str:
    """The figure as ``<iframe srcdoc="…">``: a page of its own whose ``<script src>`` loads plotly.js (from
    the CDN, as plotly's own "colab" renderer does) before the figure's script runs, so it never depends on
    a ``Plotly`` global of the notebook page (colabtools#5889)."""
    height = int(fig.layout.height or 450)
    div = pio.to_html(fig, include_plotlyjs="cdn", full_html=False, default_width="100%",
                      default_height=f"{height}px", validate=False)
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0}</style>'
            f"</head><body>{div}</body></html>")
    width = f"{int(fig.layout.width)}px" if fig.layout.width else "100%"
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" scrolling="no" '
            f'style="width:{width};height:{height}px;border:0;display:block"></iframe>')


def _mime_bundle(fig: go.Figure) -> dict:
    """What ``display(fig)`` would send: plotly's JSON mimetype (JupyterLab, Notebook 7, VS Code, and
    outside a notebook), or the bundle of another default renderer (e.g. "notebook_connected")."""
    names = str(pio.renderers.default or "").split("+")
    if names != [""] and "plotly_mimetype" not in names:
        try:
            return fig._repr_mimebundle_()
        except Exception:  # a renderer that cannot make a bundle: fall back to the mimetype
            pass
    return {"application/vnd.plotly.v1+json": json.loads(fig.to_json()), "text/plain": "<plotly figure>"}


def _copy_into(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Make the FigureWidget show ``fig``: only the properties that changed are sent to the page."""
    if [t.type for t in fw.data] != [t.type for t in fig.data]:
        fw.data = ()
        fw.add_traces(list(fig.data))
    with fw.batch_update():
        for trace, new in zip(fw.data, fig.data):
            _assign(trace, new.to_plotly_json(), skip=("type", "uid"))
        _assign(fw.layout, fig.layout.to_plotly_json())


def _assign(obj, new: dict, skip: tuple[str, ...] = ()) -> None:
    stale = set(obj.to_plotly_json()) - set(new) - set(skip)
    obj.update({key: None for key in stale}, overwrite=True)
    obj.update({k: v for k, v in new.items() if k not in skip}, overwrite=True)


# Output-area widths measured in JupyterLab 4 with the file browser open (tests/test_browser.py): about 960 px
# on a 1400×900 laptop, about 590 px on a 1280×720 projector zoomed to 125 % (projector mode on).
LAPTOP_WIDTH, PROJECTOR_WIDTH = 640, 560


def figure_width(preferred: int | None = None) -> int:
    """The width a panel's figure gets: ``preferred`` (or 640 px) on a laptop; in projector mode, where the
    output area is narrower and the fonts are bigger, 560 px (several figures then stack, one per row)."""
    from ..plots import theme_is_on

    return PROJECTOR_WIDTH if theme_is_on() else (preferred or LAPTOP_WIDTH)


CHAR_WIDTH = 0.55  # a character of plotly's font is about this many times its size wide


def _lines(text: str, room: float, size: float) -> list[str]:
    """``text`` broken at spaces into lines of at most ``room`` pixels at font ``size`` (at least one word each)."""
    if not text or "<br>" in text:
        return [text]
    return textwrap.wrap(text, max(int(room / (CHAR_WIDTH * size)), 8)) or [text]


def fit_titles(fig: go.Figure) -> go.Figure:
    """Break the figure's title and its y-axis title into lines that fit, and make room for the extra lines.

    Plotly never wraps a title: one that is wider than the figure is cut off at its edge, which happens as
    soon as a figure is narrow (a projector) and its fonts are big (projector mode). Sizes are read from the
    figure, or else from its template. A title that already holds a ``<br>`` is left as it is."""
    layout, template = fig.layout, fig.layout.template.layout
    width, height = layout.width or 700, layout.height or 450
    margin = {k: getattr(layout.margin, k) or 80 for k in ("l", "r", "t", "b")}
    size = layout.title.font.size or template.title.font.size or 17
    lines = _lines(layout.title.text or "", width - margin["l"] - 20, size)
    if len(lines) > 1:
        extra = round(1.2 * size * (len(lines) - 1))
        layout.title.text = "<br>".join(lines)
        layout.margin.t, layout.height = margin["t"] + extra, height + extra  # the plot keeps its height
    axis_size = layout.yaxis.title.font.size or template.yaxis.title.font.size or 14
    axis = _lines(layout.yaxis.title.text or "", height - margin["t"] - margin["b"], axis_size)
    if len(axis) > 1:
        layout.yaxis.title.text = "<br>".join(axis)
        layout.margin.l = margin["l"] + round(1.2 * axis_size * (len(axis) - 1))
        layout.yaxis.automargin = True  # and the browser, which knows its fonts' real widths, adds what is missing
    return fig


class FigureView:
    """One figure in a panel. ``show(fig)`` puts a new ``go.Figure`` on screen.

    Widget mode copies the figure into a live FigureWidget (and resyncs it); static mode redraws it whole,
    replacing the previous drawing in one step: in an ``Output`` ("output"), or on Colab as an iframe in an
    ``HTML`` widget ("iframe"); ``view.drawing`` says which. ``view.figure`` is the last figure shown,
    ``view.widget`` what the panel displays.
    """

    def __init__(self, fig: go.Figure, mode: str | None = None, width: int | None = None):
        self.mode = mode or figure_mode()
        self.drawing = "widget"
        self.width = width or fig.layout.width  # pixels it would like; figure_width() fits it to the screen
        self.figure = self._sized(fig)
        self.updates = 0
        self.widget = self._build(self.figure)

    def _sized(self, fig: go.Figure) -> go.Figure:
        return fit_titles(fig.update_layout(width=figure_width(self.width)))

    def _build(self, fig: go.Figure):
        if self.mode == "widget":
            if on_colab():  # only when asked for there (module docstring)
                _enable_colab_custom_widgets()
            try:
                return go.FigureWidget(fig)
            except Exception as err:  # plotly without anywidget, or a broken install
                warnings.warn(f"plotly FigureWidget does not work here ({err}); drawing static figures", stacklevel=3)
                self.mode = "static"
        self.drawing = static_drawing()
        area = W.HTML() if self.drawing == "iframe" else W.Output()
        self._draw_static(area, fig)
        return area

    @staticmethod
    def _draw_static(area: W.Output | W.HTML, fig: go.Figure) -> None:
        """Replace the drawing in one state change, so it also works from a training thread and survives a
        page reload: an Output's outputs (the same as ``clear_output(wait=True); display(fig)``), or an
        HTML widget's iframe (Colab)."""
        if isinstance(area, W.HTML):
            area.value = iframe_html(fig)
        else:
            area.outputs = ({"output_type": "display_data", "data": _mime_bundle(fig), "metadata": {}},)

    def show(self, fig: go.Figure) -> None:
        fig = self.figure = self._sized(fig)
        self.updates += 1
        if self.mode == "widget":
            _copy_into(self.widget, fig)
            resync(self.widget)
        else:
            self._draw_static(self.widget, fig)

    @property
    def data(self) -> tuple:
        """The traces on screen (read from the FigureWidget itself in widget mode)."""
        return self.widget.data if self.mode == "widget" else self.figure.data

    @property
    def layout(self):
        return self.widget.layout if self.mode == "widget" else self.figure.layout
