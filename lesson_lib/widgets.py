"""Interactive panels for the lessons: move a slider, see the consequence.

Each panel is built in one notebook cell, from a model the notebook made, and returned as a widget
(the cell's last expression shows it; nothing here calls ``display()``):

    parameter_explorer(model)                   methods, r, α, targets, m, P in; parameter counts, memory out
    live_training(model_factory, task)          a training curve that grows, a Stop button, a results table
    delta_w_explorer(model, split)              ΔW spectra and heatmaps, accuracy at a truncated rank k
    gate_board(model, split)                    UniPELT gates, and the accuracy when you set them by hand
    switchboard(model, tasks)                   two task adapters on one frozen base, switched live

Figures come from ``lesson_lib.plots`` and are drawn one of two ways, one kind per notebook:

* "widget": a plotly ``FigureWidget`` updated in place (JupyterLab 4 / Notebook 7 with ipywidgets 8);
* "static": a plain figure redrawn inside an ``Output`` (Colab's ipywidgets 7, or a broken FigureWidget).

The choice is automatic; ``use_figure_widget(True | False)`` or the environment variable
``LESSON_FIGURES=widget|static`` overrides it. Every panel keeps what it shows in ``panel.values`` and
reports any error of a callback in its own output area, so nothing fails silently.
"""

from __future__ import annotations

import functools
import html
import json
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field, replace

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio
from torch import nn

from . import analysis, fast, metrics, plots, surgery
from .config import AdapterConfig, LoRAConfig, PrefixConfig, PromptConfig, TrainConfig
from .data import Split, Task
from .gates import gates_of, layer_values, set_gate_values
from .models import layers_of, load_base, tokenizer_for
from .train import evaluate, predict, train

# --- which kind of figure --------------------------------------------------------------------------------

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


# --- panels --------------------------------------------------------------------------------------------------

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
        self.children = [self.title, *rows, self.status, self.out]
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

    def report(self, err: Exception) -> None:
        """Show ``err`` in the status line and its details in the output area (also kept in ``errors``)."""
        expected = isinstance(err, (ValueError, TypeError))  # a bad setting: the message says what to do
        text = f"{type(err).__name__}: {err}" if expected else traceback.format_exc()
        self.errors.append(text)
        self.status.value = f"<span style='color:#b00020'>⚠ {html.escape(str(err))}</span>"
        self.out.append_stderr(text.rstrip() + "\n")

    def say(self, text: str) -> None:
        self.status.value = f"<span style='color:#555'>{html.escape(text)}</span>"


def _slider(description: str, value: int, lo: int, hi: int, cheap: bool = True, kind=W.IntSlider, **kw):
    """A slider; cheap ones follow the mouse in widget mode, slow ones fire once, on release."""
    return kind(value=value, min=lo, max=hi, description=description, style={"description_width": "110px"},
                continuous_update=cheap and figure_mode() == "widget", layout=W.Layout(width="360px"), **kw)


def _side_by_side(*views: FigureView) -> W.HBox:
    """Figures in one row (they wrap below each other on a narrow screen); give them a ``width``."""
    return W.HBox([v.widget for v in views], layout=W.Layout(flex_flow="row wrap", width="100%"))


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='lesson-table'><tr>{head}</tr>{body}</table>"


def _observe(panel: Panel, name: str, fn: Callable, widgets: Sequence[W.Widget]) -> Callable:
    update = panel.guard(name, lambda *_: fn())
    for w in widgets:
        w.observe(update, names="value")
    return update


def fresh(configs, tiny: bool = False, num_labels: int = 2, gates=None, seed: int = 0) -> Callable[..., nn.Module]:
    """A model factory for ``live_training``: each call loads the base anew and injects ``configs``.

    ``configs=None`` trains the whole model (full fine-tuning); ``"head"`` only the classifier head.
    ``factory(top=k)`` puts the method in the top k layers only (full fine-tuning: trains only those
    layers), so the frozen layers below can be computed once and cached: the fast path of
    ``lesson_lib/fast.py``. Prompt tuning works on the input, below every layer, so it has no top-k form.
    """
    def make(top: int | None = None) -> nn.Module:
        model, _ = load_base(tiny=tiny, num_labels=num_labels, seed=seed)
        layers = None if top is None else fast.top_layers(model, top)
        if configs == "head":
            surgery.freeze_base(model)
        elif configs is None:
            if layers is not None:
                surgery.freeze_base(model)
                for i in layers:
                    layers_of(model)[i].requires_grad_(True)
        else:
            surgery.inject(model, _restricted(configs, layers), gates=gates, seed=seed)
        return model

    make.n_layers = _n_layers(tiny)
    return make


def _restricted(configs, layers: tuple[int, ...] | None):
    """``configs`` with ``layers=`` set (None: unchanged); a clear error for a method that has no layers."""
    if layers is None:
        return configs
    many = isinstance(configs, (list, tuple))
    out = []
    for c in configs if many else [configs]:
        if not hasattr(c, "layers"):
            raise ValueError(f"{type(c).__name__} works on the input, below every layer, so it cannot be "
                             "restricted to the top layers: choose 'all layers'")
        out.append(replace(c, layers=layers))
    return out if many else out[0]


def _n_layers(tiny: bool) -> int:
    """How many transformer layers ``load_base`` gives, read from the config (no weights loaded)."""
    if tiny:
        from .tiny import tiny_config

        return tiny_config().num_hidden_layers
    from .models import offline_model_dir

    return int(json.loads((offline_model_dir() / "config.json").read_text())["num_hidden_layers"])


# --- 1. parameter explorer -------------------------------------------------------------------------------------

SPECS = {"MiniLM-L6": metrics.MINILM_L6, "BERT-base": metrics.BERT_BASE, "GPT-3 175B": metrics.GPT3_175B}
TARGETS = ("query", "key", "value", "output", "intermediate", "ffn_output")
METHODS = ("lora", "adapter", "prefix", "prompt")


def _explorer_controls(d: int, spec: str) -> dict[str, W.Widget]:
    c: dict[str, W.Widget] = {m: W.ToggleButton(value=m == "lora", description={"lora": "LoRA"}.get(m, m),
                                                layout=W.Layout(width="90px")) for m in METHODS}
    c |= {f"target_{t}": W.ToggleButton(value=t in ("query", "value"), description=t,
                                         layout=W.Layout(width="100px")) for t in TARGETS}
    c |= {"r": _slider("LoRA rank r", min(8, d), 1, min(64, d)), "alpha": _slider("LoRA α", 16, 1, 128),
          "bottleneck": _slider("bottleneck m", min(64, max(d // 2, 1)), 1, d),
          "prefix_length": _slider("prefix length P", 10, 1, 64), "prompt_length": _slider("prompt length", 10, 1, 64),
          "spec": W.Dropdown(options=list(SPECS), value=spec, description="same at", layout=W.Layout(width="260px")),
          "bytes": W.Dropdown(options={"fp32": 4, "fp16 / bf16": 2}, value=4, description="precision",
                              layout=W.Layout(width="220px"))}
    return c


def explorer_configs(v: Mapping) -> list:
    """The method configs that the explorer's control values describe (an empty list: full fine-tuning)."""
    cfgs = []
    if v["lora"]:
        targets = tuple(t for t in TARGETS if v[f"target_{t}"])
        cfgs.append(LoRAConfig(r=v["r"], alpha=float(v["alpha"]), targets=targets))
    if v["adapter"]:
        cfgs.append(AdapterConfig(bottleneck=v["bottleneck"]))
    if v["prefix"]:
        cfgs.append(PrefixConfig(length=v["prefix_length"]))
    if v["prompt"]:
        cfgs.append(PromptConfig(length=v["prompt_length"]))
    return cfgs


def measure(model: nn.Module, configs: list) -> tuple[metrics.ParamCount, int]:
    """Inject ``configs``, count the parameters and their formula, and take the methods out again.

    ``remove`` restores the base bit for bit, so the model is exactly as before when this returns.
    """
    try:
        if configs:
            surgery.inject(model, configs)
        return metrics.count_params(model), metrics.formula_for(model)
    finally:
        surgery.remove(model)


def _memory(trainable: int, total: int, b: int) -> dict[str, int]:
    return {"optimizer": 2 * trainable * b, "training": (total + 3 * trainable) * b, "checkpoint": trainable * b}


def _explorer_numbers(model: nn.Module, v: Mapping) -> dict:
    cfgs = explorer_configs(v)
    count, formula = measure(model, cfgs)
    spec, b = SPECS[v["spec"]], v["bytes"]
    report = metrics.memory_report(spec, cfgs or "full", bytes_per_param=b)
    per_method = {surgery.METHOD_OF[type(c)]: metrics.formula_params(spec, c) for c in cfgs}
    if cfgs and metrics.head_params(spec):
        per_method["head"] = metrics.head_params(spec)
    return {"configs": cfgs, "measured_trainable": count.trainable, "measured_total": count.total,
            "measured_by_method": dict(count.by_method), "formula_trainable": formula, "share": count.share,
            "memory": _memory(count.trainable, count.total, b), "spec": spec.name, "spec_trainable": report.trainable,
            "spec_total": report.total, "spec_by_method": per_method, "spec_report": report}


def _explorer_figure(n: dict) -> go.Figure:
    ours = {k: v for k, v in n["measured_by_method"].items()} | {"all trainable": n["measured_trainable"],
                                                                   "whole model": n["measured_total"]}
    theirs = n["spec_by_method"] | {"all trainable": n["spec_trainable"], "whole model": n["spec_total"]}
    series = {"this model (measured)": ours, f"{n['spec']} (formula)": theirs}
    totals = {"this model (measured)": n["measured_total"], f"{n['spec']} (formula)": n["spec_total"]}
    label = " + ".join(_describe(c) for c in n["configs"]) or "full fine-tuning"
    return plots.param_bars(series, totals, title=f"Trainable parameters: {label}")


def _explorer_table(n: dict, b: int) -> str:
    h, hb, rep, mem = plots.human, plots.human_bytes, n["spec_report"], n["memory"]
    same = n["measured_trainable"] == n["formula_trainable"]
    rows = [
        ["trainable parameters", f"{n['measured_trainable']:,}", f"{n['formula_trainable']:,}", h(rep.trainable)],
        ["all parameters", f"{n['measured_total']:,}", "", h(rep.total)],
        ["share of the model", f"{100 * n['share']:.3f} %", "", f"{100 * rep.trainable / rep.total:.4f} %"],
        ["Adam state (2 moments)", hb(mem["optimizer"]), "", hb(rep.optimizer_bytes)],
        ["training memory (weights + grads + Adam)", hb(mem["training"]), "", hb(rep.training_bytes)],
        ["checkpoint of this task", hb(mem["checkpoint"]), "", hb(rep.checkpoint_bytes)],
    ]
    lora = next((c for c in n["configs"] if isinstance(c, LoRAConfig)), None)
    if lora is not None:
        rows.append(["LoRA scaling α / r (changes no count)", f"{lora.scaling:g}", "", f"{lora.scaling:g}"])
    gap = n["measured_trainable"] - n["formula_trainable"]
    check = "✓ measured = formula" if same else f"✗ measured − formula = {gap:,}"
    return _table(["", "this model: measured", "formula", f"{n['spec']}: formula ({b}-byte numbers)"], rows) + \
        f"<div>{check}</div>"


def _describe(cfg) -> str:
    if isinstance(cfg, LoRAConfig):
        return f"LoRA r={cfg.r} on {','.join(cfg.targets)}"
    if isinstance(cfg, AdapterConfig):
        return f"adapter m={cfg.bottleneck}"
    if isinstance(cfg, PrefixConfig):
        return f"prefix P={cfg.length}"
    return f"prompt P={cfg.length}"


def parameter_explorer(model: nn.Module, spec: str = "GPT-3 175B") -> Panel:
    """Methods and their sizes in, parameter counts out: measured on ``model`` and by formula.

    Every change injects the chosen methods into ``model``, counts, and removes them again (the base is
    restored bit for bit), so give it a model that carries no methods. ``spec`` picks the architecture
    ("MiniLM-L6", "BERT-base", "GPT-3 175B") on which the same choice is computed by formula.
    """
    if spec not in SPECS:
        raise ValueError(f"spec must be one of {list(SPECS)}, got {spec!r}")
    if surgery.tasks(model):
        raise ValueError("parameter_explorer injects and removes methods itself: give it a bare model "
                         "(ll.load_base()), or empty this one first with ll.remove(model)")
    c = _explorer_controls(model.config.hidden_size, spec)
    values = lambda: {k: w.value for k, w in c.items()}  # noqa: E731
    first = _explorer_numbers(model, values())
    panel = Panel("Parameter explorer", "parameter-explorer", c, {"bars": FigureView(_explorer_figure(first))})
    table = panel.table = W.HTML(_explorer_table(first, values()["bytes"]))
    panel.values = first

    def update() -> None:
        start = time.perf_counter()
        n = _explorer_numbers(model, values())
        panel.values = n
        panel.views["bars"].show(_explorer_figure(n))
        table.value = _explorer_table(n, values()["bytes"])
        panel.say(f"updated in {1000 * (time.perf_counter() - start):.0f} ms")

    _observe(panel, "update", update, list(c.values()))
    row = lambda *ws: W.HBox(list(ws))  # noqa: E731
    return panel.arrange(
        row(W.HTML("<b>methods</b>&nbsp;"), *(c[m] for m in METHODS)),
        row(W.HTML("<b>LoRA on</b>&nbsp;"), *(c[f"target_{t}"] for t in TARGETS)),
        row(c["r"], c["alpha"]), row(c["bottleneck"], c["prefix_length"], c["prompt_length"]),
        row(c["spec"], c["bytes"]), table, panel.views["bars"].widget)


# --- 2. live training -------------------------------------------------------------------------------------------

@dataclass
class RunLog:
    """Every training run of the session: method, trainable parameters, accuracy, seconds.

    Panels that share one RunLog share one results table and one accuracy-vs-parameters plot.
    """

    runs: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listeners: list[Callable[[RunLog], None]] = []

    def add(self, run: dict) -> None:
        self.runs.append(dict(run))
        for fn in list(self._listeners):
            fn(self)

    def on_change(self, fn: Callable[[RunLog], None]) -> None:
        self._listeners.append(fn)

    def to_html(self) -> str:
        rows = [[html.escape(r["label"]), r["method"], f"{r['trainable']:,}", f"{100 * r['share']:.3f} %",
                 f"{100 * r['accuracy']:.1f} %", f"{r['seconds']:.1f}", r["steps"], r["stopped"]] for r in self.runs]
        header = ["run", "method", "trainable", "share", "accuracy (val)", "seconds", "steps", "ended"]
        return _table(header, rows) if rows else "<i>no runs yet</i>"


SESSION = RunLog()


class _LiveCallback:
    """The train() callback of a live panel: honours Stop, redraws at most every ``redraw_every`` seconds."""

    def __init__(self, panel: TrainingPanel):
        self.panel, self.last = panel, 0.0

    def on_step(self, step: int, loss: float, history) -> None:
        if self.panel.stop_requested.is_set():
            history.request_stop()
        if time.perf_counter() - self.last >= self.panel.redraw_every:
            self.last = time.perf_counter()
            self.panel.draw(history)

    def on_eval(self, step: int, metrics_: dict, history) -> None:
        self.panel.draw(history)

    def on_end(self, history) -> None:
        self.panel.draw(history)


class TrainingPanel(Panel):
    """Live training: Train starts a run on a fresh model, Stop ends it cleanly after the current step.

    With ``background=True`` the run happens in a thread, so the notebook stays responsive and the Stop
    button is heard; ``start(block=True)`` trains in the calling thread instead (scripts, tests).
    ``last_model``, ``last_history`` and ``last_config`` keep the latest run for the next cells.
    """

    def __init__(self, factories: Mapping[str, Callable[..., nn.Module]], task: Task, cfg: TrainConfig,
                 log: RunLog, background: bool, redraw_every: float, top: int | None = None):
        n_layers = min((getattr(f, "n_layers", 0) for f in factories.values()), default=0)
        if top is not None and not 1 <= top < max(n_layers, 1):
            raise ValueError(f"top={top!r}: choose None (all layers) or 1 … {n_layers - 1} top layers; "
                             "the factories must come from widgets.fresh")
        lrs = sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, cfg.lr})
        c = {"method": W.Dropdown(options=list(factories), description="method"),
             "layers": W.Dropdown(options=[("all layers", None)] + [(f"top {k} of {n_layers} (fast)", k)
                                                                     for k in range(1, n_layers)],
                                  value=top, description="trains in", disabled=n_layers < 2,
                                  layout=W.Layout(width="230px")),
             "lr": W.Dropdown(options=[(f"{x:g}", x) for x in lrs], value=cfg.lr, description="lr",
                              layout=W.Layout(width="160px")),
             "steps": _slider("steps", cfg.steps, 1, max(4 * cfg.steps, 500), cheap=False),
             "train": W.Button(description="Train", button_style="success", icon="play"),
             "stop": W.Button(description="Stop", button_style="danger", icon="stop", disabled=True),
             "progress": W.IntProgress(value=0, min=0, max=cfg.steps, description="progress")}
        views = {"curve": FigureView(plots.training_curves([], [], total_steps=cfg.steps)),
                 "scatter": FigureView(plots.accuracy_vs_params(log.runs))}
        super().__init__("Live training", "live-training", c, views)
        self.factories, self.task, self.cfg, self.runlog = factories, task, cfg, log
        self.background, self.redraw_every, self.draws = background, redraw_every, 0
        self.stop_requested, self.thread = threading.Event(), None
        self.last_model: nn.Module | None = None
        self.last_history = None
        self.last_config: TrainConfig | None = None
        self.label = c["method"].value
        self.table = W.HTML(log.to_html())
        c["train"].on_click(self.guard("train", lambda _: self.start()))
        c["stop"].on_click(self.guard("stop", lambda _: self.stop()))
        log.on_change(self._log_changed)
        self.arrange(W.HBox([c["method"], c["layers"], c["lr"]]), W.HBox([c["steps"], c["train"], c["stop"]]),
                     c["progress"],
                     views["curve"].widget, self.table, views["scatter"].widget)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, block: bool = False) -> None:
        """Train one run; in a background thread unless ``block`` (or the panel was built with background=False)."""
        if self.running:
            return
        self.stop_requested.clear()
        self.controls["train"].disabled, self.controls["stop"].disabled = True, False
        if block or not self.background:
            self._run()
        else:
            self.thread = threading.Thread(target=self._run, name="lesson-live-training", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """Ask the run to stop after its current step (it still evaluates, and the row is logged)."""
        self.stop_requested.set()
        self.say("stopping after this step…")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background run to end; True if it has."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running

    def _run(self) -> None:
        label = self.controls["method"].value
        top = self.controls["layers"].value
        if top is not None:
            label += f" · top {top}"
        self.label = label
        cfg = replace(self.cfg, steps=self.controls["steps"].value, lr=self.controls["lr"].value, progress=False)
        try:
            self.say(f"building a fresh model for {label}…")
            factory = self.factories[self.controls["method"].value]
            model = factory() if top is None else factory(top=top)
            self.controls["progress"].max, self.controls["progress"].value = cfg.steps, 0
            self.say(f"training {label} for {cfg.steps} steps ({fast.describe(model)})…")
            history = train(model, self.task, cfg, callbacks=[_LiveCallback(self)])
            self.last_model, self.last_history, self.last_config = model, history, cfg
            if len(self.factories) == 1 and label.startswith("model"):  # unnamed factory: name the run by its method
                label = (" + ".join(_describe(c) for c in surgery.configs_of(model)) or "model") + label[5:]
            self.runlog.add(_run_row(label, model, history))
            self.say(f"{label}: {history.stopped} after {len(history.steps)} steps, {history.seconds:.1f} s")
        except Exception as err:
            self.report(err)
        finally:
            self.controls["train"].disabled, self.controls["stop"].disabled = False, True

    def draw(self, history) -> None:
        """Redraw the curve and the progress bar from the history so far."""
        start = time.perf_counter()
        evals = history.evals
        fig = plots.training_curves(history.steps, history.losses, [e["step"] for e in evals],
                                    [e["accuracy"] for e in evals], total_steps=self.controls["progress"].max,
                                    title=f"Training {self.label}")
        self.views["curve"].show(fig)
        self.controls["progress"].value = history.steps[-1] if history.steps else 0
        self.draws += 1
        self.timings["draw"] = time.perf_counter() - start

    def _log_changed(self, log: RunLog) -> None:
        try:
            self.table.value = log.to_html()
            self.views["scatter"].show(plots.accuracy_vs_params(log.runs))
        except Exception as err:
            self.report(err)


def _run_row(label: str, model: nn.Module, history) -> dict:
    count = metrics.count_params(model)
    methods = [surgery.METHOD_OF[type(c)] for c in surgery.configs_of(model)]
    frozen = any(not p.requires_grad for p in model.parameters())
    method = "+".join(methods) or ("head" if frozen else "full")
    final = history.final or {"accuracy": float("nan")}
    return {"label": label, "method": method, "trainable": count.trainable, "total": count.total,
            "share": count.share, "accuracy": final["accuracy"], "seconds": history.seconds,
            "steps": len(history.steps), "stopped": history.stopped}


def live_training(model_factory: Callable[[], nn.Module] | Mapping[str, Callable[[], nn.Module]], task: Task,
                  cfg: TrainConfig | None = None, log: RunLog | None = None, background: bool = True,
                  redraw_every: float = 0.5, top: int | None = None) -> TrainingPanel:
    """A training curve that grows while ``train()`` runs, a Stop button, and a table of every run.

    ``model_factory`` returns a fresh model with its method injected (see ``fresh``); a dict of them
    ({"LoRA r=8": ..., "adapter m=64": ...}) adds a method menu. Runs go into ``log`` (the session's
    shared ``SESSION`` by default), which feeds the results table and the accuracy-vs-parameters plot.
    The plot is redrawn at most every ``redraw_every`` seconds (and at each evaluation).

    The "trains in" menu puts the method in the top k layers only (``top=k`` sets the start value;
    None: all layers). The frozen layers below are then run once per example and cached, so each step
    costs only the top layers: the fast path (``lesson_lib/fast.py``; the same logits, measured in
    ``benchmarks/results/time_to_accuracy.md``). The "lr" menu sets the learning rate of the next run.

    Training runs in a background thread, so the kernel stays free to hear the Stop button (and to run
    other cells). ``background=False`` trains inside the button's callback instead: the notebook then
    waits for the run, and Stop is only heard when it is over (use it in scripts).
    """
    factories = dict(model_factory) if isinstance(model_factory, Mapping) else {"model": model_factory}
    if not factories:
        raise ValueError("live_training needs at least one model factory, e.g. widgets.fresh(ll.LoRAConfig(r=8))")
    cfg = cfg or TrainConfig(steps=100, eval_every=25)
    return TrainingPanel(factories, task, cfg, SESSION if log is None else log, background, redraw_every, top)


# --- 3. ΔW explorer --------------------------------------------------------------------------------------------

def _layer_and_leaf(short: str) -> tuple[int, str]:
    layer, _, leaf = short.partition(".")
    return int(layer[1:]) if layer[1:].isdigit() else -1, leaf


class _DeltaState:
    """What the ΔW explorer knows: every ΔW, their singular values (cached), accuracy by rank (cached)."""

    def __init__(self, model: nn.Module, split: Split, other: nn.Module | None, eval_limit: int):
        self.model, self.other = model, other
        self.deltas = analysis.delta_weights(model)
        self.names = {analysis.short_name(n): n for n in self.deltas}
        self.r = min(m.r for m in surgery.lora_modules(model).values())
        self.split = split.subset(eval_limit) if len(split) > eval_limit else split
        self.full = evaluate(model, self.split)["accuracy"]
        self.accuracy: dict[int, float] = {self.r: self.full}  # rank(ΔW) ≤ r: truncating at r changes nothing
        self._s: dict[str, object] = {}
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.warmer: threading.Thread | None = None

    def module(self, layer: int, leaf: str) -> str:
        short = f"L{layer}.{leaf}"
        if short not in self.names:
            raise ValueError(f"no LoRA on {short}; LoRA matrices here: {', '.join(self.names)}")
        return self.names[short]

    def singular_values(self, name: str):
        if name not in self._s:
            self._s[name] = analysis.singular_values(self.deltas[name])
        return self._s[name]

    def accuracy_at(self, k: int) -> float:
        with self.lock:
            if k in self.accuracy:
                return self.accuracy[k]
        with analysis.truncated(self.model, k):
            acc = evaluate(self.model, self.split)["accuracy"]
        with self.lock:
            return self.accuracy.setdefault(k, acc)

    def warm_up(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Evaluate every rank k in a background thread, on a copy of the model (the notebook's own model is
        never truncated behind its back), so that later slider moves only look the answer up."""
        order = [k for k in (1, 2, 4, 8, 16, 32, 64) if k < self.r] + list(range(1, self.r))

        def run() -> None:
            try:
                copy, tok = deepcopy(self.model), tokenizer_for(self.model)
                for k in dict.fromkeys(order):
                    if self.stop.is_set():
                        return
                    with self.lock:
                        if k in self.accuracy:
                            continue
                    with analysis.truncated(copy, k):
                        acc = evaluate(copy, self.split, tokenizer=tok)["accuracy"]
                    with self.lock:
                        self.accuracy.setdefault(k, acc)
            except Exception as err:  # shown in the panel; the slider still works, one evaluation per new k
                if on_error is not None:
                    on_error(err)

        self.warmer = threading.Thread(target=run, name="lesson-delta-w-warm-up", daemon=True)
        self.warmer.start()

    def ready(self) -> int:
        """How many of the ranks 1 … r have their accuracy already."""
        with self.lock:
            return len(self.accuracy)

    def accuracies(self) -> dict[int, float]:
        """A copy of {k: accuracy} so far (the warm-up thread may be adding to it while a figure is drawn)."""
        with self.lock:
            return dict(self.accuracy)

    def subspace(self, name: str):
        a1 = surgery.lora_modules(self.model)[name].lora_A
        other = surgery.lora_modules(self.other)
        if name not in other:
            raise ValueError(f"the other model has no LoRA on {analysis.short_name(name)}")
        return analysis.subspace_similarity_grid(a1, other[name].lora_A)


def _delta_figures(st: _DeltaState, name: str, k: int, approx: bool) -> dict[str, go.Figure]:
    short, s = analysis.short_name(name), st.singular_values(name)
    dw = st.deltas[name]
    shown = analysis.truncate_rank(dw, k) if approx else dw
    figs = {"spectrum": plots.spectrum(s, k=k, top=max(2 * st.r, 8), title=f"Singular values of ΔW, {short}"),
            "heatmap": plots.delta_w_heatmap(shown.detach().cpu().numpy(),
                                             title=f"ΔW {short}" + (f" at rank {k}" if approx else ""))}
    if st.other is not None:
        figs["subspace"] = plots.subspace_heatmap(st.subspace(name), title=f"Subspace similarity φ, {short}")
    return figs


def _delta_controls(st: _DeltaState) -> dict[str, W.Widget]:
    layers = sorted({_layer_and_leaf(s)[0] for s in st.names})
    leaves = sorted({_layer_and_leaf(s)[1] for s in st.names})
    return {"layer": W.Dropdown(options=layers, description="layer"),
            "matrix": W.Dropdown(options=leaves, description="matrix"),
            "k": _slider("rank k", st.r, 1, st.r, cheap=False), "approx": W.Checkbox(description="heatmap at rank k")}


def _delta_pick(panel: Panel, st: _DeltaState, redraw: bool = True) -> None:
    """The chosen matrix at the chosen rank: spectrum, heatmap, subspace similarity, energy at k."""
    c = panel.controls
    name, k = st.module(c["layer"].value, c["matrix"].value), c["k"].value
    if redraw:
        for key, fig in _delta_figures(st, name, k, c["approx"].value).items():
            panel.views[key].show(fig)
    s = st.singular_values(name)
    panel.values |= {"module": name, "singular_values": s, "k": k,
                     "energy_at_k": analysis.energy_at_k(s, k) if s.any() else 0.0}


def _delta_rank(panel: Panel, st: _DeltaState) -> None:
    """Truncate every ΔW to rank k, evaluate on the fixed subset, redraw."""
    k = panel.controls["k"].value
    acc = st.accuracy_at(k)
    panel.views["accuracy"].show(plots.rank_accuracy(st.accuracies(), k, st.full))
    _delta_pick(panel, st)
    panel.values |= {"accuracy_at_k": acc}
    panel.say(f"rank {k}: accuracy {100 * acc:.1f} % (full rank {100 * st.full:.1f} %, n = {len(st.split)}; "
              f"{st.ready()} of {st.r} ranks evaluated)")


def delta_w_explorer(model: nn.Module, split: Split, other_model: nn.Module | None = None,
                     eval_limit: int = 128, warm_up: bool = True) -> Panel:
    """Look inside a trained LoRA model's updates ΔW = (α/r)·B·A.

    Pick a layer and a matrix to see its singular values, the energy the top k hold and ΔW itself; the
    rank-k slider truncates every ΔW of the model to rank k and shows the accuracy on a fixed subset of
    ``split`` (``eval_limit`` examples). With ``other_model`` (the same LoRA layers, another run or another
    r) it also shows the subspace similarity φ between the two runs' A matrices.

    Each new k costs one evaluation of the model (about 2 s for 128 tweets on a laptop CPU), so with
    ``warm_up`` (default) a background thread evaluates every k on a copy of the model right away (powers
    of two first); once it is done, moving the slider only looks the accuracy up. ``panel.state.ready()``
    says how many ranks are done; ``panel.state.stop.set()`` ends the warm-up early.
    """
    st = _DeltaState(model, split, other_model, eval_limit)
    c = _delta_controls(st)
    figs = _delta_figures(st, st.module(c["layer"].value, c["matrix"].value), st.r, False)
    figs["accuracy"] = plots.rank_accuracy({st.r: st.accuracy_at(st.r)}, st.r, st.full)
    panel = Panel("ΔW explorer", "delta-w-explorer", c, {k: FigureView(f, width=520) for k, f in figs.items()})
    panel.values = {"full_accuracy": st.full, "accuracy_by_k": st.accuracy, "r": st.r}
    _delta_pick(panel, st, redraw=False)
    _observe(panel, "pick", lambda: _delta_pick(panel, st), [c["layer"], c["matrix"], c["approx"]])
    _observe(panel, "rank", lambda: _delta_rank(panel, st), [c["k"]])
    panel.state = st
    if warm_up:
        st.warm_up(on_error=panel.report)
    v = panel.views
    grid = [_side_by_side(v["spectrum"], v["heatmap"])]
    grid += [_side_by_side(v["accuracy"], v["subspace"])] if "subspace" in v else [v["accuracy"].widget]
    return panel.arrange(W.HBox([c["layer"], c["matrix"], c["k"], c["approx"]]), *grid)


# --- 4. gate board ------------------------------------------------------------------------------------------------

class GateBoard(Panel):
    """The gate board's state: the gates, what was learned, and the fixed subset it evaluates on."""

    def __init__(self, model: nn.Module, split: Split, eval_limit: int):
        self.model = model
        self.subset = split.subset(eval_limit) if len(split) > eval_limit else split
        self.gates = gates_of(model, layers_of(model))
        if not self.gates:
            raise ValueError("this model has no gates; inject with gates=ll.GateConfig(...) (UniPELT)")
        # what each layer's gates were set to (a layer's gates are always set alike); None: learned
        self.original = {m: [gs[0].fixed if gs else None for gs in layers] for m, layers in self.gates.items()}
        acc, learned = self.measure()
        c: dict[str, W.Widget] = {}
        for m, values in learned.items():
            seen = [v for v in values if v == v]  # NaN: a layer without this method
            c[f"{m}_value"] = _slider(m, round(sum(seen) / max(len(seen), 1), 2), 0.0, 1.0, cheap=False,
                                      kind=W.FloatSlider, step=0.05)
            c[f"{m}_by_hand"] = W.Checkbox(value=False, description="by hand", indent=False,
                                           layout=W.Layout(width="120px"))
        c["reset"] = W.Button(description="Reset to learned", icon="undo")
        super().__init__("Gate board", "gate-board", c, {"gates": FigureView(plots.gate_heatmap(learned))})
        self.values = {"learned": learned, "gates": learned, "learned_accuracy": acc, "accuracy": acc}
        self.quiet = False
        for m in self.gates:
            c[f"{m}_value"].observe(self.guard("gate", lambda _, m=m: self._slid(m)), names="value")
            c[f"{m}_by_hand"].observe(self.guard("gate", lambda _: self.update()), names="value")
        c["reset"].on_click(self.guard("reset", lambda _: self.reset()))
        rows = [W.HBox([c[f"{m}_value"], c[f"{m}_by_hand"]]) for m in self.gates]
        self.arrange(*rows, c["reset"], self.views["gates"].widget)

    def update(self) -> None:
        """Set every gate (by hand, or as learned), evaluate on the fixed subset, redraw the heatmap."""
        if self.quiet:
            return
        c = self.controls
        chosen = {m: c[f"{m}_value"].value if c[f"{m}_by_hand"].value else self.original[m] for m in self.gates}
        set_gate_values(self.gates, **chosen)
        acc, now = self.measure()
        self.views["gates"].show(plots.gate_heatmap(now, title="Gates now (0 = off, 1 = on)"))
        learned = self.values["learned_accuracy"]
        self.values |= {"gates": now, "accuracy": acc, "chosen": chosen}
        self.say(f"accuracy {100 * acc:.1f} % (learned gates {100 * learned:.1f} %, "
                 f"change {100 * (acc - learned):+.1f} points, n = {len(self.subset)})")

    def measure(self) -> tuple[float, dict[str, list[float]]]:
        """Accuracy on the fixed subset and each method's mean gate per layer, from one forward pass
        (the whole subset is one batch, so every gate's ``last`` value covers all of it)."""
        acc = evaluate(self.model, self.subset, batch_size=len(self.subset))["accuracy"]
        gates = layer_values(self.gates)
        return acc, gates

    def _slid(self, method: str) -> None:
        box = self.controls[f"{method}_by_hand"]
        if box.value:
            self.update()
        else:
            box.value = True  # moving a slider means "by hand"; the box's observer updates

    def reset(self) -> None:
        """Every gate back to what it was when the board was built."""
        self.quiet = True
        try:
            for m in self.gates:
                self.controls[f"{m}_by_hand"].value = False
        finally:
            self.quiet = False
        self.update()


def gate_board(model: nn.Module, split: Split, eval_limit: int = 64) -> GateBoard:
    """A UniPELT model's gates as a heatmap (method × layer), and sliders that set each method's gate by hand.

    Moving a slider fixes that method's gate in every layer and shows at once the accuracy on a fixed
    subset of ``split`` (``eval_limit`` examples); "by hand" off hands the gate back to what was learned.
    """
    return GateBoard(model, split, eval_limit)


# --- 5. adapter switchboard --------------------------------------------------------------------------------------

EXAMPLES = (
    "I love this airline, the crew was wonderful",
    "my flight was delayed again and nobody helped, terrible service",
    "the government will raise taxes on small businesses next year",
    "the striker scored twice and won the cup final",
    "the new phone has a faster chip and a better camera",
)


def _label_names(tasks: Mapping | None, name: str, n: int) -> list[str]:
    given = (tasks or {}).get(name)
    names = list(given.label_names if isinstance(given, Task) else given or [])
    return names if len(names) == n else [f"label {i}" for i in range(n)]


def _predictions_html(texts: Sequence[str], labels: list[str], probs) -> tuple[str, list[tuple]]:
    rows, out = [], []
    for text, p in zip(texts, probs):
        i = int(p.argmax())
        out.append((text, labels[i], float(p[i])))
        width = f"{100 * float(p[i]):.0f}px"
        bar = f"<span style='display:inline-block;background:#1f77b4;height:0.8em;width:{width}'></span>"
        rows.append([html.escape(text), f"<b>{html.escape(labels[i])}</b>", f"{100 * float(p[i]):.0f} % {bar}"])
    return _table(["sentence", "prediction", "confidence"], rows), out


def switchboard(model: nn.Module, tasks: Mapping[str, Task | Sequence[str]] | None = None,
                texts: Sequence[str] = EXAMPLES) -> Panel:
    """Several task adapters on one frozen base: pick a task, see its predictions on sentences you type.

    ``model`` carries named tasks (``ll.inject(model, cfg, name="topic", num_labels=5)``); ``tasks`` maps
    each name to its Task (or its label names) to print labels as words. The base checksum is shown at
    every switch: it never changes, because the tasks share one frozen base.
    """
    names = list(surgery.tasks(model))
    if not names:
        raise ValueError("switchboard needs a model with named tasks: ll.inject(model, cfg, name='sentiment') ...")
    checksum0 = surgery.checksum(model)
    c = {"task": W.ToggleButtons(options=names, value=surgery.active_task(model), description="task"),
         "texts": W.Textarea(value="\n".join(texts), rows=max(len(texts), 3), continuous_update=False,
                             description="sentences", layout=W.Layout(width="640px")),
         "predict": W.Button(description="Predict", icon="play")}
    panel = Panel("Adapter switchboard", "switchboard", c, {})
    result = panel.table = W.HTML()
    base = panel.base = W.HTML()

    def update() -> None:
        surgery.set_active(model, c["task"].value)
        lines = [t.strip() for t in c["texts"].value.splitlines() if t.strip()]
        if not lines:
            raise ValueError("type at least one sentence (one per line)")
        labels = _label_names(tasks, c["task"].value, model.config.num_labels)
        result.value, preds = _predictions_html(lines, labels, predict(model, lines))
        now = surgery.checksum(model)
        base.value = f"base checksum <code>{now}</code> " + ("✓ unchanged" if now == checksum0 else "✗ CHANGED")
        panel.values = {"active": c["task"].value, "predictions": preds, "checksum": now,
                        "checksum_unchanged": now == checksum0, "labels": labels}

    refresh = _observe(panel, "switch", update, [c["task"], c["texts"]])
    c["predict"].on_click(lambda _: refresh())
    refresh()
    return panel.arrange(c["task"], W.HBox([c["texts"], c["predict"]]), result, base)


__all__ = [
    "EXAMPLES", "SESSION", "SPECS", "FigureView", "GateBoard", "Panel", "RunLog", "TrainingPanel", "delta_w_explorer",
    "explorer_configs", "figure_mode", "figure_widget_available", "fresh", "gate_board", "live_training", "measure",
    "parameter_explorer", "resync", "switchboard", "use_figure_widget",
]
