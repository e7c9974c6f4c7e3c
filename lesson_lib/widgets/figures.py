"""How a panel draws a figure, and the one place that touches plotly's private state.

A panel shows ``go.Figure`` objects made by ``lesson_lib.plots``, one of two ways, one kind per notebook:

* "widget": a plotly ``FigureWidget`` updated in place (JupyterLab 4 / Notebook 7 with ipywidgets 8);
* "static": a plain figure redrawn inside an ``Output`` (Colab's ipywidgets 7, or a broken FigureWidget).

The choice is automatic; ``use_figure_widget(True | False)`` or the environment variable
``LESSON_FIGURES=widget|static`` overrides it. ``FigureView`` hides the difference: ``view.show(fig)``.
"""

from __future__ import annotations

import json
import os
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


def figure_widget_available() -> bool:
    """True where plotly's FigureWidget can work: ipywidgets 8 or newer and anywidget installed."""
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


def _mime_bundle(fig: go.Figure) -> dict:
    """What ``display(fig)`` would send: plotly's JSON mimetype (JupyterLab, Notebook 7, VS Code, and
    outside a notebook), or the bundle of another default renderer (Colab's HTML)."""
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


class FigureView:
    """One figure in a panel. ``show(fig)`` puts a new ``go.Figure`` on screen.

    Widget mode copies the figure into a live FigureWidget (and resyncs it); static mode redraws it in
    an ``Output``, replacing the previous drawing in one step. ``view.figure`` is the last figure shown,
    ``view.widget`` what the panel displays.
    """

    def __init__(self, fig: go.Figure, mode: str | None = None, width: int | None = None):
        self.mode = mode or figure_mode()
        self.width = width  # pixels; None: as wide as the notebook
        self.figure = self._sized(fig)
        self.updates = 0
        self.widget = self._build(self.figure)

    def _sized(self, fig: go.Figure) -> go.Figure:
        return fig.update_layout(width=self.width) if self.width else fig

    def _build(self, fig: go.Figure):
        if self.mode == "widget":
            try:
                return go.FigureWidget(fig)
            except Exception as err:  # plotly without anywidget, or a broken install
                warnings.warn(f"plotly FigureWidget does not work here ({err}); drawing static figures", stacklevel=3)
                self.mode = "static"
        out = W.Output()
        self._draw_static(out, fig)
        return out

    @staticmethod
    def _draw_static(out: W.Output, fig: go.Figure) -> None:
        """Replace the Output's drawing: the same as ``clear_output(wait=True); display(fig)``, done as one
        state change, so it also works from a training thread and survives a page reload."""
        out.outputs = ({"output_type": "display_data", "data": _mime_bundle(fig), "metadata": {}},)

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
