"""Panel 1, the parameter explorer: methods, r, α, targets, m, P in; parameter counts and memory out.

The numbers come from ``counts.explorer_numbers``: measured on a stand-in of the student's model on the
``meta`` device (shapes without numbers), and by formula; a slider move never touches the student's model.
This file only turns them into controls, a bar chart and a table.
"""

from __future__ import annotations

import time

import ipywidgets as W
import plotly.graph_objects as go
from torch import nn

from .. import metrics, plots
from .. import tasks as named_tasks
from ..config import LoRAConfig
from .counts import METHODS, SPECS, TARGETS, describe, explorer_numbers, stand_in
from .figures import FigureView
from .panel import Panel, row, slider, toggle
from .tables import html_table


def bars_figure(n: dict) -> go.Figure:
    """Trainable parameters by method, this model beside the chosen architecture (log scale)."""
    ours = n["measured_by_method"] | {"all trainable": n["measured_trainable"], "whole model": n["measured_total"]}
    theirs = n["spec_by_method"] | {"all trainable": n["spec_trainable"], "whole model": n["spec_total"]}
    series = {"this model (measured)": ours, f"{n['spec']} (formula)": theirs}
    totals = {"this model (measured)": n["measured_total"], f"{n['spec']} (formula)": n["spec_total"]}
    label = " + ".join(describe(c) for c in n["configs"]) or "full fine-tuning"
    return plots.param_bars(series, totals, title=f"Trainable parameters: {label}")


def numbers_table(n: dict, b: int) -> str:
    """The explorer's table: counts, share and memory, for this model and for the chosen architecture."""
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
        rows.append(["LoRA scaling α / r (changes no count)", f"{lora.scaling:.3g}", "", f"{lora.scaling:.3g}"])
    gap = n["measured_trainable"] - n["formula_trainable"]
    check = "✓ measured = formula" if same else f"✗ measured − formula = {gap:,}"
    return html_table(["", "this model: measured", "formula", f"{n['spec']}: formula ({b}-byte numbers)"], rows) + \
        f"<div>{check}</div>"


def answer(n: dict) -> str:
    """The status line: what the chosen methods train, here and on the chosen architecture."""
    label = " + ".join(describe(c) for c in n["configs"]) or "full fine-tuning"
    theirs = n["spec_trainable"] / n["spec_total"]
    return (f"{label}: {n['measured_trainable']:,} trainable here ({plots.percent(n['share'])}), "
            f"{plots.human(n['spec_trainable'])} on {n['spec']} ({plots.percent(theirs)})")


def _controls(d: int, spec: str) -> dict[str, W.Widget]:
    c: dict[str, W.Widget] = {m: toggle({"lora": "LoRA"}.get(m, m), m == "lora") for m in METHODS}
    c |= {f"target_{t}": toggle(t, t in ("query", "value")) for t in TARGETS}
    c |= {"r": slider("LoRA rank r", min(8, d), 1, min(64, d)), "alpha": slider("LoRA α", 16, 1, 128),
          "bottleneck": slider("bottleneck m", min(64, max(d // 2, 1)), 1, d),
          "prefix_length": slider("prefix length P", 10, 1, 64), "prompt_length": slider("prompt length", 10, 1, 64),
          "spec": W.Dropdown(options=list(SPECS), value=spec, description="same at", layout=W.Layout(width="260px")),
          "bytes": W.Dropdown(options={"fp32": 4, "fp16 / bf16": 2}, value=4, description="precision",
                              layout=W.Layout(width="220px"))}
    return c


class ParameterExplorer(Panel):
    """The explorer panel: ``values`` holds the numbers on screen (see ``counts.explorer_numbers``),
    ``table`` the HTML table, ``shape`` the ArchSpec of the model it was built for, ``twin`` its stand-in on
    the meta device (see ``counts.stand_in``)."""

    def __init__(self, model: nn.Module, spec: str):
        if spec not in SPECS:
            raise ValueError(f"spec must be one of {list(SPECS)}, got {spec!r}")
        if named_tasks.names(model):
            raise ValueError("parameter_explorer shows what methods add to a bare model: give it a bare model "
                             "(ll.load_base()), or empty this one first with ll.remove(model)")
        self.shape = metrics.spec_of(model)
        self.twin = stand_in(model)  # where the methods are injected to be counted, on the meta device
        c = _controls(model.config.hidden_size, spec)
        first = explorer_numbers(self.shape, {k: w.value for k, w in c.items()}, self.twin)
        super().__init__("Parameter explorer", "parameter-explorer", c, {"bars": FigureView(bars_figure(first))})
        self.table = W.HTML(numbers_table(first, c["bytes"].value))
        self.values = first
        self.watch("update", self.update, list(c.values()))
        self.say(answer(first))
        self.arrange(  # the answer (the status line) right under the sliders that change it
            row(W.HTML("<b>methods</b>&nbsp;"), *(c[m] for m in METHODS)),
            row(W.HTML("<b>LoRA on</b>&nbsp;"), *(c[f"target_{t}"] for t in TARGETS)),
            row(c["r"], c["alpha"]), row(c["bottleneck"], c["prefix_length"], c["prompt_length"]),
            self.status, row(c["spec"], c["bytes"]), self.table, self.views["bars"].widget)

    def update(self) -> None:
        """Recompute the numbers for the controls as they are now; redraw the bars and the table."""
        start = time.perf_counter()
        v = {k: w.value for k, w in self.controls.items()}
        self.values = n = explorer_numbers(self.shape, v, self.twin)
        self.views["bars"].show(bars_figure(n))
        self.table.value = numbers_table(n, v["bytes"])
        self.say(answer(n))
        self.timings["numbers"] = time.perf_counter() - start


def parameter_explorer(model: nn.Module, spec: str = "GPT-3 175B") -> ParameterExplorer:
    """Methods and their sizes in, parameter counts out: for ``model`` and for a bigger architecture.

    Every change counts the chosen methods' parameters twice: injected into a stand-in of ``model`` on the
    ``meta`` device (shapes without numbers; ``model`` itself is never changed) and by formula
    (``lesson_lib.metrics``). Give it a model that carries no methods. ``spec`` picks the architecture
    ("MiniLM-L6", "BERT-base", "GPT-3 175B") on which the same choice is computed too.
    """
    return ParameterExplorer(model, spec)
