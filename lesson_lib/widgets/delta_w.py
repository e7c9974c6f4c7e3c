"""Panel 3, the ΔW explorer: ΔW spectra and heatmaps, and the accuracy at a truncated rank k.

What it knows lives in ``delta_state.DeltaState`` (no widgets); this file draws it and wires the controls.
"""

from __future__ import annotations

import html

import ipywidgets as W
import plotly.graph_objects as go
from torch import nn

from .. import analysis, plots
from ..data import Split
from .delta_state import DeltaState
from .figures import FigureView
from .panel import Panel, side_by_side, slider

FIGURE_WIDTH = 470  # pixels: two figures side by side in a ~960 px output area (a laptop with the file browser open)


def delta_figures(st: DeltaState, name: str, k: int, approx: bool) -> dict[str, go.Figure]:
    """Spectrum and heatmap of one ΔW (at rank k when ``approx``), and φ against the other run if there is one.

    The spectrum shows the first r singular values only (LoRA's ΔW has rank ≤ r); the titles stay short
    (two figures share a row), the numbers in full are in the panel's status line.
    """
    short, s = analysis.short_name(name), st.singular_values(name)
    dw = st.deltas[name]
    shown = analysis.truncate_rank(dw, k) if approx else dw
    figs = {"spectrum": plots.spectrum(s, k=k, top=st.r, title=f"Spectrum, {short}"),
            "heatmap": plots.delta_w_heatmap(shown.detach().cpu().numpy(),
                                             title=f"ΔW {short}" + (f" at rank {k}" if approx else ""))}
    if st.other is not None:
        figs["subspace"] = plots.subspace_heatmap(st.subspace(name), title=f"Subspace similarity φ, {short}",
                                                  names=st.subspace_names(name))
    return figs


class DeltaWExplorer(Panel):
    """The ΔW explorer panel; ``state`` is its ``DeltaState`` (``state.ready()``, ``state.stop.set()``).

    Layout, for a ~960 px wide output area: the matrix controls; the rank slider k with the answer (the
    accuracy at k) beside it; then the two figures k changes (accuracy by rank, spectrum), side by side, so
    slider, answer and plots fit one laptop screen; below them the ΔW heatmap and the φ heatmap.
    """

    def __init__(self, st: DeltaState, warm_up: bool):
        self.state = st
        c = {"layer": W.Dropdown(options=st.layers(), description="layer"),
             "matrix": W.Dropdown(options=st.leaves(), description="matrix"),
             "k": slider("rank k", st.r, 1, st.r, cheap=False), "approx": W.Checkbox(description="heatmap at rank k")}
        c["k"].layout.width = "340px"
        c["layer"].layout.width = c["matrix"].layout.width = "220px"
        figs = delta_figures(st, st.module(c["layer"].value, c["matrix"].value), st.r, False)
        figs["accuracy"] = plots.rank_accuracy({st.r: st.accuracy_at(st.r)}, st.r, st.full, r=st.r)
        super().__init__("ΔW explorer", "delta-w-explorer", c,
                         {k: FigureView(f, width=FIGURE_WIDTH) for k, f in figs.items()})
        self.values = {"full_accuracy": st.full, "accuracy_by_k": st.accuracy, "r": st.r,
                       "accuracy_at_k": st.accuracy_at(st.r)}
        self.pick(redraw=False)
        self.watch("pick", self.pick, [c["layer"], c["matrix"], c["approx"]])
        self.watch("rank", self.rank, [c["k"]])
        if warm_up:
            st.warm_up(on_error=self.report)
        v = self.views
        self.status.layout = W.Layout(flex="1 1 300px", margin="0 0 0 12px")
        rank_row = W.HBox([c["k"], self.status], layout=W.Layout(flex_flow="row wrap", align_items="center"))
        grid = [side_by_side(v["accuracy"], v["spectrum"])]
        grid += [side_by_side(v["heatmap"], v["subspace"])] if "subspace" in v else [v["heatmap"].widget]
        self.arrange(W.HBox([c["layer"], c["matrix"], c["approx"]], layout=W.Layout(flex_flow="row wrap")),
                     rank_row, *grid)
        # the status line (the answer) sits beside the slider in rank_row, not at the bottom where arrange puts it
        self.children = tuple(w for w in self.children if w is not self.status)

    def tell(self) -> None:
        """The status line beside the slider: the accuracy at k (bold), the full-rank accuracy, the energy the
        chosen matrix keeps at k, and how many ranks are evaluated so far."""
        st, v = self.state, self.values
        k, acc = v["k"], v["accuracy_at_k"]
        head = f"k = {k}: accuracy {100 * acc:.1f} %"
        rest = (f"full rank {100 * st.full:.1f} % (n = {len(st.split)}); {analysis.short_name(v['module'])} keeps "
                f"{100 * v['energy_at_k']:.1f} % of its energy in the top {k}; {st.ready()} of {st.r} ranks evaluated")
        self.status.value = (f"<span class='lesson-status' style='color:#222'><b>{html.escape(head)}</b> · "
                             f"<span style='color:#555'>{html.escape(rest)}</span></span>")

    def pick(self, redraw: bool = True) -> None:
        """The chosen matrix at the chosen rank: spectrum, heatmap, subspace similarity, energy at k."""
        c, st = self.controls, self.state
        name, k = st.module(c["layer"].value, c["matrix"].value), c["k"].value
        if redraw:
            for key, fig in delta_figures(st, name, k, c["approx"].value).items():
                self.views[key].show(fig)
        self.values |= {"module": name, "singular_values": st.singular_values(name), "k": k,
                        "energy_at_k": st.energy_at_k(name, k)}
        self.tell()

    def rank(self) -> None:
        """Truncate every ΔW to rank k, evaluate on the fixed subset (or look it up), redraw."""
        st, k = self.state, self.controls["k"].value
        self.values |= {"accuracy_at_k": st.accuracy_at(k)}
        self.views["accuracy"].show(plots.rank_accuracy(st.accuracies(), k, st.full, r=st.r))
        self.pick()


def delta_w_explorer(model: nn.Module, split: Split, other_model: nn.Module | None = None,
                     eval_limit: int = 128, warm_up: bool = True) -> DeltaWExplorer:
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
    return DeltaWExplorer(DeltaState(model, split, other_model, eval_limit), warm_up)
