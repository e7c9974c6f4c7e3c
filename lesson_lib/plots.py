"""Figures for the lessons: each function takes plain numbers and returns a plotly ``go.Figure``.

Nothing here touches a model, shows a widget or calls ``display()``: a builder is a pure function from
data to a figure, so the same figure appears in a notebook cell, in a live panel (``lesson_lib.widgets``)
or in a test that reads ``fig.data``.

    param_bars          trainable parameters per method, on a log scale, with the share of the model
    spectrum            singular values of ΔW and the energy the top k of them hold
    delta_w_heatmap     the matrix ΔW itself (large matrices shown subsampled)
    subspace_heatmap    subspace similarity φ(A1, A2, i, j) between two runs (the LoRA paper's Figure 3)
    rank_accuracy       accuracy with every ΔW truncated to rank k
    gate_heatmap        UniPELT gate values, one row per method, one column per layer
    training_curves     training loss and evaluation accuracy against steps
    accuracy_vs_params  accuracy against trainable parameters (the LoRA paper's Figure 2 in miniature)

``lecture_theme()`` switches every figure built afterwards to big fonts and markers for a projector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

METHOD_COLORS = {
    "lora": "#1f77b4", "adapter": "#ff7f0e", "prefix": "#2ca02c", "prompt": "#d62728", "gate": "#9467bd",
    "head": "#7f7f7f", "full": "#8c564b", "layernorm": "#e377c2",
}
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
LECTURE_TEMPLATE = "lesson_lecture"
_THEME = {"previous": None}
_SHARE_TICKS = dict(tickmode="linear", tick0=0, dtick=0.25, tickformat=".0%", showgrid=False)  # 0–100 % on the right


def human(n: float) -> str:
    """A parameter count or byte size for people: 1234 → '1.2K', 4718592 → '4.7M', 1.75e11 → '175.3B'."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def human_bytes(n: float) -> str:
    """Bytes for people, in powers of 1024: 1536 → '1.5 KiB'."""
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _layout(title: str, height: int = 360, **extra) -> dict:
    return dict(title=dict(text=title), height=height, margin=dict(l=60, r=30, t=60, b=50), **extra)


# --- parameter counts --------------------------------------------------------------------------------

def param_bars(series: Mapping[str, Mapping[str, int]], totals: Mapping[str, int],
               title: str = "Trainable parameters (log scale)") -> go.Figure:
    """Grouped bars on a log scale: one group per label (a method, "all trainable", "whole model"),
    one colour per series (e.g. "this model (measured)" and "GPT-3 175B (formula)").

    Each bar is labelled with its count and its share of that series' total, so a student sees at once
    that LoRA trains "0.05 %" of the model.
    """
    fig = go.Figure(layout=_layout(title, yaxis=dict(type="log", title="parameters"), barmode="group",
                                   legend=dict(orientation="h", y=-0.15)))
    for i, (name, counts) in enumerate(series.items()):
        labels = list(counts)
        values = [max(int(counts[k]), 0) for k in labels]
        text = [f"{human(v)} ({100 * v / totals[name]:.3g} %)" for v in values]
        fig.add_bar(name=name, x=labels, y=[v or None for v in values], text=text, textposition="outside",
                    marker_color=SERIES_COLORS[i % len(SERIES_COLORS)], cliponaxis=False)
    return fig


# --- ΔW: spectrum, heatmaps, rank ----------------------------------------------------------------------

def spectrum(singular_values: Sequence[float], k: int | None = None, top: int | None = 32,
             title: str = "Singular values of ΔW") -> go.Figure:
    """Bars of the singular values (largest first) and, on the right axis, the energy share the top-k hold.

    ``k`` marks a rank with a dashed line and writes "energy at k" in the title; ``top`` keeps the
    first values only (LoRA's ΔW has at most r non-zero ones).
    """
    s = np.sort(np.abs(np.asarray(singular_values, dtype=float)))[::-1]
    s = s[:top] if top else s
    total = float((np.asarray(singular_values, dtype=float) ** 2).sum())
    energy = np.cumsum(s ** 2) / total if total > 0 else np.zeros_like(s)
    ks = np.arange(1, len(s) + 1)
    if k is not None and total > 0:
        title = f"{title}: energy at k={k}: {100 * energy[min(k, len(s)) - 1]:.1f} %" if k else f"{title}: k=0"
    elif total == 0:
        title = f"{title}: ΔW = 0 (not trained yet)"
    fig = go.Figure(layout=_layout(title, xaxis=dict(title="index i", dtick=max(1, len(s) // 16)),
                                   yaxis=dict(title="singular value sᵢ"),
                                   yaxis2=dict(title="energy of top k", overlaying="y", side="right",
                                               range=[0, 1.05], **_SHARE_TICKS),
                                   legend=dict(orientation="h", y=-0.2)))
    fig.add_bar(x=ks, y=s, name="singular values", marker_color=METHOD_COLORS["lora"])
    fig.add_scatter(x=ks, y=energy, name="energy at k", yaxis="y2", mode="lines+markers",
                    line=dict(color=METHOD_COLORS["adapter"]))
    if k:
        fig.add_vline(x=k + 0.5, line_dash="dash", line_color="black")
    return fig


def _subsample(m: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every step-th row and column so neither side exceeds ``max_side``; returns (matrix, rows, cols)."""
    rows = np.unique(np.linspace(0, m.shape[0] - 1, min(m.shape[0], max_side)).round().astype(int))
    cols = np.unique(np.linspace(0, m.shape[1] - 1, min(m.shape[1], max_side)).round().astype(int))
    return m[np.ix_(rows, cols)], rows, cols


def delta_w_heatmap(delta_w, title: str = "ΔW", max_side: int = 128) -> go.Figure:
    """The matrix ΔW (d_out × d_in) as a heatmap, blue negative, red positive, white zero.

    Matrices wider or taller than ``max_side`` are shown with evenly spaced rows and columns only (a
    sub-matrix of a rank-r matrix still has rank ≤ r, so the stripes of a low-rank ΔW stay visible).
    """
    m = np.asarray(delta_w, dtype=float)
    shown, rows, cols = _subsample(m, max_side)
    note = "" if shown.shape == m.shape else f" ({len(rows)}×{len(cols)} evenly spaced rows × columns shown)"
    lim = float(np.abs(shown).max()) or 1.0
    fig = go.Figure(layout=_layout(f"{title} {m.shape[0]}×{m.shape[1]}{note}", height=400,
                                   xaxis=dict(title="input dimension"),
                                   yaxis=dict(title="output dimension", autorange="reversed")))
    fig.add_heatmap(z=shown.astype(np.float32), x=cols, y=rows, colorscale="RdBu_r", zmin=-lim, zmax=lim,
                    zmid=0, colorbar=dict(title="value"))
    return fig


def subspace_heatmap(grid, title: str = "Subspace similarity φ(A₁, A₂, i, j)",
                     names: tuple[str, str] = ("run 1", "run 2")) -> go.Figure:
    """φ(i, j) for i = 1..r1 (rows) and j = 1..r2 (columns), 0 (orthogonal) to 1 (contained)."""
    z = np.asarray(grid, dtype=float)
    ticks = lambda n: dict(tickmode="linear", tick0=1, dtick=max(1, n // 8))  # noqa: E731 - whole ranks only
    fig = go.Figure(layout=_layout(title, height=400,
                                   xaxis=dict(title=f"j (top-j directions of {names[1]})", **ticks(z.shape[1])),
                                   yaxis=dict(title=f"i (top-i directions of {names[0]})", autorange="reversed",
                                              **ticks(z.shape[0]))))
    fig.add_heatmap(z=z, x=np.arange(1, z.shape[1] + 1), y=np.arange(1, z.shape[0] + 1), zmin=0, zmax=1,
                    colorscale="Viridis", colorbar=dict(title="φ"))
    return fig


def rank_accuracy(accuracy_by_k: Mapping[int, float], current: int | None = None, full: float | None = None,
                  title: str = "Accuracy with every ΔW truncated to rank k") -> go.Figure:
    """Accuracy against k for the ranks tried so far; a dashed line at the untruncated accuracy."""
    ks = sorted(accuracy_by_k)
    fig = go.Figure(layout=_layout(title, xaxis=dict(title="rank k", dtick=1),
                                   yaxis=dict(title="accuracy", range=[0, 1.02], tickformat=".0%")))
    fig.add_scatter(x=ks, y=[accuracy_by_k[k] for k in ks], mode="lines+markers", name="truncated",
                    line=dict(color=METHOD_COLORS["lora"]))
    if current is not None and current in accuracy_by_k:
        fig.add_scatter(x=[current], y=[accuracy_by_k[current]], mode="markers", name=f"k = {current}",
                        marker=dict(size=16, symbol="star", color=METHOD_COLORS["prompt"]))
    if full is not None:
        fig.add_hline(y=full, line_dash="dash", annotation_text=f"full rank {100 * full:.1f} %")
    return fig


# --- gates ----------------------------------------------------------------------------------------------

def gate_heatmap(gates: Mapping[str, Sequence[float]], title: str = "UniPELT gates (0 = off, 1 = on)") -> go.Figure:
    """Gate values as a heatmap: one row per method, one column per layer, the value written in each cell."""
    methods = list(gates)
    z = np.array([[np.nan if v is None else float(v) for v in gates[m]] for m in methods], dtype=float)
    layers = [f"layer {i}" for i in range(z.shape[1] if z.size else 0)]
    fig = go.Figure(layout=_layout(title, height=120 + 60 * max(len(methods), 1), xaxis=dict(title="layer")))
    fig.add_heatmap(z=z, x=layers, y=methods, zmin=0, zmax=1, colorscale="Blues", texttemplate="%{z:.2f}",
                    colorbar=dict(title="g"))
    return fig


# --- training ---------------------------------------------------------------------------------------------

def training_curves(steps: Sequence[int], losses: Sequence[float], eval_steps: Sequence[int] = (),
                    accuracies: Sequence[float] = (), total_steps: int | None = None,
                    title: str = "Training") -> go.Figure:
    """Training loss (left axis) and evaluation accuracy (right axis) against the optimizer step.

    ``total_steps`` fixes the x axis, so a live curve grows into a frame instead of rescaling.
    """
    xaxis = dict(title="step") | ({"range": [0, total_steps]} if total_steps else {})
    fig = go.Figure(layout=_layout(title, xaxis=xaxis, yaxis=dict(title="training loss", rangemode="tozero"),
                                   yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1.02],
                                               **_SHARE_TICKS),
                                   legend=dict(orientation="h", y=-0.2)))
    fig.add_scatter(x=list(steps), y=list(losses), mode="lines", name="training loss",
                    line=dict(color=METHOD_COLORS["lora"]))
    fig.add_scatter(x=list(eval_steps), y=list(accuracies), mode="lines+markers", name="eval accuracy",
                    yaxis="y2", line=dict(color=METHOD_COLORS["adapter"]))
    return fig


def accuracy_vs_params(runs: Sequence[Mapping], title: str = "Accuracy vs trainable parameters") -> go.Figure:
    """One marker per run (keys: "label", "method", "trainable", "accuracy"), one colour per method,
    trainable parameters on a log scale: the LoRA paper's Figure 2 in miniature."""
    fig = go.Figure(layout=_layout(title, xaxis=dict(type="log", title="trainable parameters"),
                                   yaxis=dict(title="accuracy", range=[0, 1.02], tickformat=".0%")))
    by_method: dict[str, list[Mapping]] = {}
    for run in runs:
        by_method.setdefault(str(run["method"]), []).append(run)
    for method, rows in by_method.items():
        fig.add_scatter(x=[r["trainable"] for r in rows], y=[r["accuracy"] for r in rows], name=method,
                        mode="markers+text", text=[r.get("label", method) for r in rows], textposition="top center",
                        marker=dict(size=12, color=METHOD_COLORS.get(method.split("+")[0])))
    if not runs:
        fig.add_annotation(text="no runs yet: train one", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


# --- the lecture theme ------------------------------------------------------------------------------------

def _lecture_template() -> go.layout.Template:
    big = dict(size=22)
    return go.layout.Template(
        layout=dict(font=dict(size=20), title=dict(font=dict(size=26)), legend=dict(font=big),
                    xaxis=dict(title=dict(font=big), tickfont=dict(size=18)),
                    yaxis=dict(title=dict(font=big), tickfont=dict(size=18))),
        data=dict(scatter=[go.Scatter(marker=dict(size=14), line=dict(width=4))],
                  bar=[go.Bar(textfont=dict(size=18))], heatmap=[go.Heatmap(textfont=dict(size=18))]))


def lecture_theme(on: bool = True) -> str:
    """Big fonts and markers, readable on a projector, for every figure built from now on.

    ``lecture_theme()`` switches it on, ``lecture_theme(False)`` restores the previous look. Panels
    pick it up at their next redraw. Returns the name of the plotly template now in use.
    """
    if on:
        pio.templates[LECTURE_TEMPLATE] = _lecture_template()
        if LECTURE_TEMPLATE not in str(pio.templates.default):
            _THEME["previous"] = pio.templates.default
            pio.templates.default = f"{pio.templates.default}+{LECTURE_TEMPLATE}"
    elif LECTURE_TEMPLATE in str(pio.templates.default):
        pio.templates.default = _THEME["previous"] or "plotly"
    return str(pio.templates.default)


__all__ = [
    "METHOD_COLORS", "accuracy_vs_params", "delta_w_heatmap", "gate_heatmap", "human", "human_bytes",
    "lecture_theme", "param_bars", "rank_accuracy", "spectrum", "subspace_heatmap", "training_curves",
]
