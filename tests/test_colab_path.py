"""Colab, simulated: which figure path the panels take there, and that it never puts plotly inside an Output.

Colab cannot be reached from the tests; these fake its conditions (a ``google.colab`` module in
``sys.modules``, ipywidgets 7.7.1) and check the choice made in ``lesson_lib/widgets/figures.py``. What a
person checks on a real Colab is in docs/colab-check.md.
"""

import html
import importlib.machinery
import re
import sys
import types
from pathlib import Path
from unittest import mock

import ipywidgets as W
import nbformat
import plotly.graph_objects as go
import pytest
import tomllib

import lesson_lib as ll
from lesson_lib import plots
from lesson_lib import widgets as lw
from lesson_lib.widgets import figures

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _module(name: str) -> types.ModuleType:
    """A stand-in module with a spec (``importlib.util.find_spec`` on it must work: accelerate calls it)."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


@pytest.fixture
def colab(monkeypatch):
    """A fake Colab: ``google.colab`` (with ``output.enable_custom_widget_manager``) and ipywidgets 7.7.1."""
    enable = mock.Mock()
    output = _module("google.colab.output")
    output.enable_custom_widget_manager = enable
    output._widgets = types.SimpleNamespace(_installed_url=None)  # what anywidget reads on Colab
    package = _module("google.colab")
    package.output = output
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(W, "__version__", "7.7.1")
    monkeypatch.delenv("LESSON_FIGURES", raising=False)
    lw.use_figure_widget(None)
    yield enable
    lw.use_figure_widget(None)


def _page(view) -> str:
    """The page inside the iframe the HTML widget shows."""
    found = re.fullmatch(r'<iframe srcdoc="(.*)" scrolling="no" style="[^"]*"></iframe>', view.widget.value, re.S)
    assert found, view.widget.value[:200]
    return html.unescape(found.group(1))


def test_colab_is_detected_from_google_colab_only(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not figures.on_colab() and figures.static_drawing() == "output"
    monkeypatch.setitem(sys.modules, "google.colab", _module("google.colab"))
    assert figures.on_colab() and figures.static_drawing() == "iframe"


def test_on_colab_panels_draw_static_figures_automatically(colab, monkeypatch):
    assert not lw.figure_widget_available() and lw.figure_mode() == "static"
    monkeypatch.setattr(W, "__version__", "8.1.5")  # someone upgraded ipywidgets on Colab: still static
    assert not lw.figure_widget_available() and lw.figure_mode() == "static"
    colab.assert_not_called()  # the static path needs no custom widget manager


def test_on_colab_a_static_figure_is_an_iframe_that_loads_plotly_itself(colab):
    view = lw.FigureView(plots.training_curves([1, 2, 3], [1.0, 0.5, 0.2]))
    assert view.mode == "static" and view.drawing == "iframe"
    assert isinstance(view.widget, W.HTML) and not isinstance(view.widget, W.Output)
    page = _page(view)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # plotly.js comes from the iframe's own <script src> (the CDN, like plotly's "colab" renderer) and is
    # loaded before the figure's script calls Plotly: no reliance on a Plotly global of the notebook page
    loader = re.search(r'<script[^>]*src="https://cdn\.plot\.ly/plotly-[\d.]+(?:\.min)?\.js"', page)
    assert loader and loader.start() < page.index("Plotly.newPlot")
    assert f'height:{int(view.figure.layout.height)}px' in view.widget.value
    assert "text/html" not in view.widget.get_state() and PLOTLY_MIME not in str(view.widget.get_state())


def test_on_colab_show_replaces_the_iframe_in_one_step(colab):
    view = lw.FigureView(plots.spectrum([2.0, 1.0]), width=520)
    first = view.widget.value
    view.show(plots.spectrum([3.0, 1.0, 0.5], title="again"))
    assert view.widget.value != first and view.widget.value.count("<iframe") == 1
    assert "width:520px" in view.widget.value and '"again"' in _page(view)
    assert len(view.data[0].y) == 3 and view.layout.title.text == "again" and view.updates == 1


def test_on_colab_a_figure_widget_only_when_asked_and_then_the_widget_manager_is_on(colab, monkeypatch):
    monkeypatch.setattr(W, "__version__", "8.1.5")  # FigureWidget needs ipywidgets 8 in this venv
    assert lw.use_figure_widget(True) == "widget"
    view = lw.FigureView(plots.spectrum([2.0, 1.0]))
    assert view.mode == "widget" and isinstance(view.widget, go.FigureWidget)
    assert colab.called  # Colab draws third-party widgets only after this opt-in (colabtools#498)


def test_outside_colab_static_figures_stay_in_an_output(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    view = lw.FigureView(plots.spectrum([2.0, 1.0]), mode="static")
    assert view.drawing == "output" and isinstance(view.widget, W.Output)
    assert PLOTLY_MIME in view.widget.outputs[0]["data"]


def _children(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _children(child)


def test_on_colab_a_whole_panel_has_no_plotly_inside_an_output(colab):
    panel = lw.parameter_explorer(ll.load_base(tiny=True)[0])
    panel.controls["r"].value = 2
    assert not panel.errors
    parts = list(_children(panel))
    iframes = [w for w in parts if isinstance(w, W.HTML) and w.value.startswith("<iframe srcdoc=")]
    assert len(iframes) == len(panel.views) >= 1
    for out in (w for w in parts if isinstance(w, W.Output)):
        assert not any(PLOTLY_MIME in o.get("data", {}) or "Plotly" in str(o.get("data", {})) for o in out.outputs)


# --- the install URL: one place ---------------------------------------------------------------------------

def test_colab_installs_from_the_url_written_once_in_pyproject():
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert url.startswith("https://")
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        (setup,) = [c for c in cells if "google.colab" in c]  # nbgen.setup_cell
        assert f'"install -q git+{url}"' in setup, path.name
        assert "enable_custom_widget_manager" not in setup, path.name
    nbgen = (ROOT / "tools" / "nbgen.py").read_text()
    assert url not in nbgen and 'REPO_URL = "' not in nbgen  # read from pyproject, not typed again
    colab = (ROOT / "README.md").read_text().split("## Colab", 1)[1].split("\n## ", 1)[0]
    assert "[project.urls]" in colab and "docs/colab-check.md" in colab
