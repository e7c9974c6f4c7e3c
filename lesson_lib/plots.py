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
    paper_vs_ours       the LoRA paper's Figure 2 (GPT-3, Table 15) beside the same plot of our own sweep
    stored_params       a run's parameter count as saved: a prefix counted folded, without its training MLP

``lecture_theme()`` switches every figure built afterwards to big fonts and markers for a projector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from . import paper, results

METHOD_COLORS = {
    "lora": "#1f77b4", "adapter": "#ff7f0e", "prefix": "#2ca02c", "prompt": "#d62728", "gate": "#9467bd",
    "head": "#7f7f7f", "full": "#8c564b", "layernorm": "#e377c2",
}
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
LECTURE_TEMPLATE = "lesson_lecture"
_SHARE_TICKS = dict(tickmode="linear", tick0=0, dtick=0.25, tickformat=".0%", showgrid=False)  # 0–100 % on the right


def human(n: float) -> str:
    """A parameter count or byte size for people: 1234 → '1.2K', 4718592 → '4.7M', 1.75e11 → '175.3B'."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def percent(share: float) -> str:
    """A share for people: 0.000541 → '0.054 %', 0.0123 → '1.2 %', 0.5 → '50 %', 1 → '100 %'."""
    x = 100 * share
    return f"{x:.0f} %" if x == 0 or x >= 10 else f"{x:.2g} %"


def human_bytes(n: float) -> str:
    """Bytes for people, in powers of 1024: 1536 → '1.5 KiB'."""
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _layout(title: str, height: int = 360, **extra) -> dict:
    """Title, height and margins; with the lecture theme on, a third more height for the bigger fonts."""
    scale = 1.35 if theme_is_on() else 1.0
    margin = dict(l=round(60 * scale), r=round(30 * scale), t=round(60 * scale), b=round(50 * scale))
    return dict(title=dict(text=title), height=round(height * scale), margin=margin, **extra)


# --- parameter counts --------------------------------------------------------------------------------

def param_bars(series: Mapping[str, Mapping[str, int]], totals: Mapping[str, int],
               title: str = "Trainable parameters (log scale)") -> go.Figure:
    """Grouped bars on a log scale: one group per label (a method, "all trainable", "whole model"),
    one colour per series (e.g. "this model (measured)" and "GPT-3 175B (formula)").

    Each bar is labelled with its count and its share of that series' total, so a student sees at once
    that LoRA trains "0.05 %" of the model.
    """
    # plotly shrinks a label that is wider than its bar; uniformtext keeps every label at least this size
    # (two short lines keep them narrow), larger with the lecture theme
    fig = go.Figure(layout=_layout(title, yaxis=dict(type="log", title="parameters"), barmode="group",
                                   legend=dict(orientation="h", y=-0.15),
                                   uniformtext=dict(minsize=18 if theme_is_on() else 12, mode="show")))
    for i, (name, counts) in enumerate(series.items()):
        labels = list(counts)
        values = [max(int(counts[k]), 0) for k in labels]
        text = [f"{human(v)}<br>{percent(v / totals[name])}" for v in values]
        fig.add_bar(name=name, x=labels, y=[v or None for v in values], text=text, textposition="outside",
                    marker_color=SERIES_COLORS[i % len(SERIES_COLORS)], cliponaxis=False)
    return fig


# --- ΔW: spectrum, heatmaps, rank ----------------------------------------------------------------------

def _rank_ticks(n: int, log: bool = False) -> dict:
    """Tick labels for ranks 1..n, never more than about ten: every rank up to 10; beyond that, on a log
    axis the powers of two and n (1, 2, 4, 8, 16, 32, 64), on a linear axis 1 and the multiples of a
    power-of-two step (1, 8, 16, …, 64)."""
    n = max(int(n), 1)
    if n <= 10:
        values = list(range(1, n + 1))
    elif log:
        values = [2 ** e for e in range(int(np.log2(n)) + 1)]
        if values[-1] != n:
            values = (values[:-1] if n < 1.3 * values[-1] else values) + [n]  # n too close to the last power
    else:
        step = 2 ** int(np.ceil(np.log2(n / 8)))
        values = sorted({1, *range(step, n + 1, step)})
    return dict(tickmode="array", tickvals=values, ticktext=[str(v) for v in values])


def spectrum(singular_values: Sequence[float], k: int | None = None, top: int | None = 32,
             title: str = "Singular values of ΔW") -> go.Figure:
    """Bars of the singular values (largest first) and, on the right axis, the energy share the top-k hold.

    ``k`` marks a rank with a dashed line and writes "energy at k" in the title; ``top`` keeps the
    first values only (LoRA's ΔW has at most r non-zero ones: pass ``top=r``). The x axis spans exactly
    the values shown. No legend: each axis title has the colour of what it measures.
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
    bars, line = METHOD_COLORS["lora"], METHOD_COLORS["adapter"]
    fig = go.Figure(layout=_layout(title, height=340, showlegend=False,
                                   xaxis=dict(title="index i (largest first)", range=[0.5, len(s) + 0.5],
                                              automargin=True, **_rank_ticks(len(s))),
                                   yaxis=dict(title=dict(text="singular value", font=dict(color=bars)),
                                              automargin=True, rangemode="tozero"),
                                   yaxis2=dict(title=dict(text="energy in top k", font=dict(color=line)),
                                               overlaying="y", side="right", range=[0, 1.05], automargin=True,
                                               **_SHARE_TICKS)))
    fig.add_bar(x=ks, y=s, name="singular value", marker_color=bars, hovertemplate="s%{x} = %{y:.3g}")
    fig.add_scatter(x=ks, y=energy, name="energy in top k", yaxis="y2", mode="lines+markers",
                    line=dict(color=line), hovertemplate="top %{x}: %{y:.1%}")
    if k:
        fig.add_vline(x=min(k, max(len(s), 1)) + 0.5, line_dash="dash", line_color="black")
    return fig


def _subsample(m: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every step-th row and column so neither side exceeds ``max_side``; returns (matrix, rows, cols)."""
    rows = np.unique(np.linspace(0, m.shape[0] - 1, min(m.shape[0], max_side)).round().astype(int))
    cols = np.unique(np.linspace(0, m.shape[1] - 1, min(m.shape[1], max_side)).round().astype(int))
    return m[np.ix_(rows, cols)], rows, cols


def delta_w_heatmap(delta_w, title: str = "ΔW", max_side: int = 128) -> go.Figure:
    """The matrix ΔW (d_out × d_in) as a heatmap, blue negative, red positive, white zero.

    Matrices wider or taller than ``max_side`` are shown with evenly spaced rows and columns only (a
    sub-matrix of a rank-r matrix still has rank ≤ r, so the stripes of a low-rank ΔW stay visible); the
    axis titles say how many of them.
    """
    m = np.asarray(delta_w, dtype=float)
    shown, rows, cols = _subsample(m, max_side)
    of = lambda n, total: f" ({n} of {total} shown)" if n < total else ""  # noqa: E731
    lim = float(np.abs(shown).max()) or 1.0
    fig = go.Figure(layout=_layout(f"{title} ({m.shape[0]}×{m.shape[1]})", height=340,
                                   xaxis=dict(title=f"input dimension{of(len(cols), m.shape[1])}", automargin=True),
                                   yaxis=dict(title=f"output dimension{of(len(rows), m.shape[0])}",
                                              autorange="reversed", automargin=True)))
    fig.add_heatmap(z=shown.astype(np.float32), x=cols, y=rows, colorscale="RdBu_r", zmin=-lim, zmax=lim,
                    zmid=0, colorbar=dict(title="ΔW", thickness=12),
                    hovertemplate="ΔW[%{y}, %{x}] = %{z:.3g}<extra></extra>")
    return fig


def subspace_heatmap(grid, title: str = "Subspace similarity φ(A₁, A₂, i, j)",
                     names: tuple[str, str] = ("run 1", "run 2")) -> go.Figure:
    """φ(i, j) for i = 1..r1 (rows, top-i directions of ``names[0]``) and j = 1..r2 (columns, top-j of
    ``names[1]``), 0 (orthogonal) to 1 (contained): ``grid`` as ``analysis.subspace_similarity_grid`` gives it."""
    z = np.asarray(grid, dtype=float)
    fig = go.Figure(layout=_layout(title, height=340,
                                   xaxis=dict(title=f"j: top-j of {names[1]}", automargin=True,
                                              **_rank_ticks(z.shape[1])),
                                   yaxis=dict(title=f"i: top-i of {names[0]}", autorange="reversed", automargin=True,
                                              **_rank_ticks(z.shape[0]))))
    fig.add_heatmap(z=z, x=np.arange(1, z.shape[1] + 1), y=np.arange(1, z.shape[0] + 1), zmin=0, zmax=1,
                    colorscale="Viridis", colorbar=dict(title="φ", thickness=12),
                    hovertemplate="φ(i=%{y}, j=%{x}) = %{z:.2f}<extra></extra>")
    return fig


def rank_accuracy(accuracy_by_k: Mapping[int, float], current: int | None = None, full: float | None = None,
                  title: str = "Accuracy with every ΔW truncated to rank k", r: int | None = None) -> go.Figure:
    """Accuracy against k for the ranks tried so far; a dashed line at the untruncated accuracy.

    The k axis is logarithmic (1, 2, 4, … r: the small ranks are where the accuracy changes) and spans
    1 … ``r`` (default: the largest k given), so it stays put while more ranks arrive. The current k is a
    star labelled with its accuracy.
    """
    ks = sorted(accuracy_by_k)
    top = max([int(r or 0), *ks, int(current or 0), 1])
    log = all(k > 0 for k in ks) and (current is None or current > 0)
    xaxis = dict(title="rank k" + (" (log scale)" if log else ""), automargin=True, **_rank_ticks(top, log=log))
    xaxis |= dict(type="log", range=[np.log10(0.8), np.log10(top * 1.25)]) if log else dict(range=[-0.5, top + 0.5])
    fig = go.Figure(layout=_layout(title, height=340, showlegend=False, xaxis=xaxis,
                                   yaxis=dict(title="accuracy", range=[0, 1.02], tickformat=".0%", automargin=True)))
    fig.add_scatter(x=ks, y=[accuracy_by_k[k] for k in ks], mode="lines+markers", name="truncated",
                    line=dict(color=METHOD_COLORS["lora"]), hovertemplate="k = %{x}: %{y:.1%}<extra></extra>")
    if current is not None and current in accuracy_by_k:
        acc = accuracy_by_k[current]
        fig.add_scatter(x=[current], y=[acc], mode="markers+text", name=f"k = {current}",
                        text=[f"k = {current}: {100 * acc:.1f} %"], textposition="bottom center", cliponaxis=False,
                        marker=dict(size=16, symbol="star", color=METHOD_COLORS["prompt"]))
    if full is not None:
        fig.add_hline(y=full, line_dash="dash", annotation_text=f"full rank {100 * full:.1f} %",
                      annotation_position="top left")
    return fig


# --- gates ----------------------------------------------------------------------------------------------

def gate_heatmap(gates: Mapping[str, Sequence[float]], title: str = "UniPELT gates (0 = off, 1 = on)") -> go.Figure:
    """Gate values as a heatmap: one row per method, one column per layer, the value written in each cell."""
    methods = list(gates)
    # a layer without the method is an empty cell: None, not NaN (NaN is not valid JSON, and the widget's
    # state is sent to the browser as JSON; Jupyter would print a warning)
    z = [[None if v is None or not np.isfinite(float(v)) else float(v) for v in gates[m]] for m in methods]
    layers = [f"layer {i}" for i in range(len(z[0]) if z else 0)]
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


def log_ticks(lo: float, hi: float) -> dict:
    """Tick values for a log axis from ``lo`` to ``hi``: the powers of ten, and 2× and 5× them when the range
    spans fewer than three decades; labelled for people ("4.7M"). Never more than about a dozen labels."""
    lo, hi = max(lo, 1.0), max(hi, lo * 10)
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    steps = (1, 2, 5) if last - first < 3 else (1,)
    values = [m * 10 ** e for e in range(first, last + 1) for m in steps if lo / 1.5 <= m * 10 ** e <= hi * 1.5]
    if len(values) > 12:
        values = values[::-(-len(values) // 12)]
    return dict(tickmode="array", tickvals=values, ticktext=[human(v) for v in values])


def _end_labels(rows: Sequence[Mapping]) -> list[str]:
    """Text beside the markers: the smallest and the largest run of a method; the others show on hover."""
    if len(rows) <= 2:
        return [str(r.get("label", r["method"])) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: rows[i]["trainable"])
    ends = {order[0], order[-1]}
    return [str(r.get("label", r["method"])) if i in ends else "" for i, r in enumerate(rows)]


def accuracy_vs_params(runs: Sequence[Mapping], title: str = "Accuracy vs trainable parameters") -> go.Figure:
    """One marker per run (keys: "label", "method", "trainable", "accuracy"), one colour per method,
    trainable parameters on a log scale: the LoRA paper's Figure 2 in miniature.

    With many runs, only each method's smallest and largest run are labelled (the others on hover), and the
    labels of alternate methods go above and below their markers, so they do not pile up."""
    counts = [r["trainable"] for r in runs] or [1, 10]
    xaxis = dict(type="log", title="trainable parameters", **log_ticks(min(counts), max(counts)))
    fig = go.Figure(layout=_layout(title, xaxis=xaxis, yaxis=dict(title="accuracy", range=[0, 1.02], tickformat=".0%")))
    by_method: dict[str, list[Mapping]] = {}
    for run in runs:
        by_method.setdefault(str(run["method"]), []).append(run)
    for i, (method, rows) in enumerate(by_method.items()):
        fig.add_scatter(x=[r["trainable"] for r in rows], y=[r["accuracy"] for r in rows], name=method,
                        mode="markers+text", text=_end_labels(rows),
                        hovertext=[str(r.get("label", method)) for r in rows],
                        textposition="top center" if i % 2 == 0 else "bottom center",
                        marker=dict(size=12, color=METHOD_COLORS.get(method.split("+")[0])))
    if not runs:
        fig.add_annotation(text="no runs yet: train one", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


# --- the paper's Figure 2 beside ours --------------------------------------------------------------------

# Each of the paper's GPT-3 methods and the family of ours it is drawn in (same colour on both sides).
# PrefixEmbed learns extra input embeddings, which is what our prompt tuning does; PrefixLayer learns the
# activations of every layer, which is what our prefix tuning does.
PAPER_FAMILIES = {"PrefixEmbed": "prompt", "PrefixLayer": "prefix", "AdapterH": "adapter", "LoRA": "lora"}
_FAMILY_NAMES = {"prompt": "prompt (paper: PrefixEmbed)", "prefix": "prefix (paper: PrefixLayer)",
                 "adapter": "adapter (paper: AdapterH)", "lora": "LoRA"}
_KNOBS = {"lora": "r", "adapter": "m", "prefix": "P", "prompt": "P"}
_FOLDED_NOTE = "prefix: folded (what is saved); its MLP (trained, then dropped) is not counted"


def stored_params(row: Mapping, layers: int = 6, hidden: int = 384, reparam_hidden: int = 128) -> int:
    """A run's parameter count as it is saved after training: ``row["trainable"]``, except for prefix tuning.

    Why: a prefix run trained with the reparametrisation (``PrefixConfig(reparam=True)``, as in the stored
    sweep) counts its MLP as trainable (embedding P·d, then d → ``reparam_hidden`` → 2·layers·d), about 640K
    parameters whatever P is, so all of its runs would sit at 645K–669K and its x position would say nothing
    about P. After training ``prefix.fold`` replaces the MLP by its output and throws it away; what is kept
    are the keys and values of every layer, 2 · layers · hidden · P numbers (4,608 · P for MiniLM), plus the
    classifier head, which every method's ``trainable`` includes (LoRA r = 1: 9,986 = 2·6·2·384 + 770).

    The head is whatever is left of ``trainable`` once the encoder (with the MLP) is taken off; a row trained
    without the MLP already holds the folded count. Either way the head must be a whole number of classifier
    rows (``hidden + 1`` each: 770 for two labels), else the row does not match ``layers``/``hidden`` and this
    raises ValueError rather than put a point in the wrong place.
    """
    trainable = int(row["trainable"])
    if row["method"] != "prefix":
        return trainable
    length = int(row["size"])
    folded = 2 * layers * hidden * length
    encoder = length * hidden + (hidden + 1) * reparam_hidden + (reparam_hidden + 1) * 2 * layers * hidden
    is_head = lambda n: n > 0 and n % (hidden + 1) == 0  # noqa: E731
    if is_head(trainable - encoder):  # trained through the MLP: keep the head, swap the encoder for its output
        return folded + trainable - encoder
    if is_head(trainable - folded):  # trained without the MLP: already what is saved
        return trainable
    raise ValueError(f"prefix row with P = {length} and {trainable:,} trainable parameters does not match "
                     f"layers = {layers}, hidden = {hidden}, reparam_hidden = {reparam_hidden}")


def _seed_points(rows: Sequence[Mapping]) -> dict[str, list[dict]]:
    """Runs grouped by (method, size) over their seeds: mean, min and max accuracy, per method sorted by x."""
    points: dict[str, list[dict]] = {}
    for (method, size), runs in results.group_rows(({"size": None, **row} for row in rows), "method", "size").items():
        acc = [float(r["accuracy"]) for r in runs]
        points.setdefault(method, []).append(dict(
            size=size, x=stored_params(runs[0]), trainable=int(runs[0]["trainable"]), mean=float(np.mean(acc)),
            lo=min(acc), hi=max(acc), seeds=len({r.get("seed") for r in runs})))
    return {m: sorted(p, key=lambda q: q["x"]) for m, p in points.items()}


def _point_text(method: str, point: Mapping) -> str:
    knob = f" {_KNOBS[method]} = {point['size']}" if method in _KNOBS and point["size"] is not None else ""
    text = f"{method}{knob}: {human(point['x'])} parameters, accuracy {100 * point['mean']:.1f} %"
    if point["seeds"] >= 2:
        text += f"<br>mean of {point['seeds']} seeds, {100 * point['lo']:.1f}–{100 * point['hi']:.1f} %"
    if method == "prefix":
        text += f"<br>{_FOLDED_NOTE} ({human(point['trainable'])} trained)"
    return text


def paper_vs_ours(ours_rows: Sequence[Mapping], *, paper_task: str = "MNLI-m",
                  ours_label: str = "tweets", stacked: bool | None = None) -> go.Figure:
    """Two panels: left the LoRA paper's Figure 2 for ``paper_task`` ("MNLI-m" or "WikiSQL": GPT-3 175B,
    accuracy against trainable parameters, Table 15's points), right the same plot of our runs on MiniLM.

    ``ours_rows`` are stored sweep rows (keys "method", "size", "trainable", "accuracy", optionally "seed"):
    several seeds of one (method, size) become one marker at their mean with a min–max error bar. A method
    family has the same colour on both sides (``PAPER_FAMILIES``). Our x is ``stored_params``: a prefix is
    placed at its folded size, not at its trainable count with the MLP. The dashed lines are full
    fine-tuning: the paper's, and ours when ``ours_rows`` has a run of method "full".

    ``stacked``: the paper's panel above ours instead of beside it; by default only with the lecture theme on,
    where a projector's narrow figure and big fonts leave no room for two panels side by side.
    """
    table = paper.TABLES["lora_gpt3_table15"]
    tasks = table.columns[3:]
    if paper_task not in tasks:
        raise ValueError(f"paper_task must be one of {', '.join(tasks)}, not {paper_task!r}")
    stacked = theme_is_on() if stacked is None else stacked
    at = {1: dict(row=1, col=1), 2: dict(row=2, col=1) if stacked else dict(row=1, col=2)}  # where each panel is
    grid = dict(rows=2, cols=1, vertical_spacing=0.22) if stacked else dict(rows=1, cols=2, horizontal_spacing=0.1)
    fig = make_subplots(**grid, subplot_titles=(
        f"GPT-3 175B, the paper (Table 15): {paper_task}", f"MiniLM, measured here: {ours_label}"))
    fig.update_layout(**_layout("", height=640 if stacked else 380, width=940, hovermode="closest",
                                legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.25 / (1 + stacked),
                                            yanchor="top")))
    fig.update_layout(title=None)
    lecture = theme_is_on()
    fig.update_annotations(font_size=18 if lecture else 15)  # the panel titles (longer than one panel's width
    marker = dict(size=None if lecture else 8)                # at the lecture theme's title size)
    spans: dict[int, list[float]] = {1: [], 2: []}  # every y value a panel shows, for its range

    def full_line(accuracy: float, col: int) -> None:
        # top left: above the line at the smallest counts, where no method of either side reaches full accuracy
        fig.add_hline(y=accuracy, line_dash="dash", line_color=METHOD_COLORS["full"], **at[col],
                      annotation_text=f"full fine-tuning: {100 * accuracy:.1f} %",
                      annotation_position="top left", annotation_font=dict(color=METHOD_COLORS["full"], size=12))
        spans[col].append(accuracy)

    shown: set[str] = set()
    paper_x: list[float] = []
    for name, family in PAPER_FAMILIES.items():
        recs = table.records(method=name)
        x = [r["params_m"] * 1e6 for r in recs]
        paper_x += x
        spans[1] += [r[paper_task] / 100 for r in recs]
        fig.add_scatter(x=x, y=[r[paper_task] / 100 for r in recs], mode="lines+markers", **at[1],
                        name=_FAMILY_NAMES[family], legendgroup=family, showlegend=family not in shown,
                        line=dict(color=METHOD_COLORS[family]), marker=marker,
                        hovertext=[f"{name} {r['setting']}: {r['params_m']:g}M parameters, {r[paper_task]:.1f} %"
                                   for r in recs], hovertemplate="%{hovertext}<extra></extra>")
        shown.add(family)
    full_line(table.records(method="Fine-Tune")[0][paper_task] / 100, 1)

    points = _seed_points(ours_rows)
    order = [m for m in _FAMILY_NAMES if m in points] + [m for m in points if m not in _FAMILY_NAMES and m != "full"]
    ours_x: list[float] = []
    for method in order:
        pts = points[method]
        ours_x += [p["x"] for p in pts]
        spans[2] += [p["lo"] for p in pts] + [p["hi"] for p in pts]
        spread = any(p["seeds"] >= 2 for p in pts)
        fig.add_scatter(x=[p["x"] for p in pts], y=[p["mean"] for p in pts], mode="lines+markers", **at[2],
                        name=_FAMILY_NAMES.get(method, method), legendgroup=method, showlegend=method not in shown,
                        line=dict(color=METHOD_COLORS.get(method, "#7f7f7f")), marker=marker,
                        error_y=dict(type="data", symmetric=False, visible=spread, thickness=1.5, width=4,
                                     array=[p["hi"] - p["mean"] for p in pts],
                                     arrayminus=[p["mean"] - p["lo"] for p in pts]),
                        hovertext=[_point_text(method, p) for p in pts],
                        hovertemplate="%{hovertext}<extra></extra>")
        shown.add(method)
    if "full" in points:
        full_line(points["full"][0]["mean"], 2)
    if not order:
        fig.add_annotation(text="no runs yet", showarrow=False, xref="x2 domain", yref="y2 domain", x=0.5, y=0.5)

    fig.update_xaxes(type="log", title="trainable parameters", **at[1], **log_ticks(min(paper_x), max(paper_x)))
    fig.update_xaxes(type="log", title="trainable parameters (prefix: as saved)", **at[2],
                     **log_ticks(min(ours_x or [1]), max(ours_x or [10])))
    for col, values in spans.items():  # the dashed lines do not widen plotly's automatic range: set it here
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = 0.08 * max(hi - lo, 0.01)
        fig.update_yaxes(tickformat=".0%", automargin=True, range=[lo - pad, hi + 2 * pad], **at[col])
    fig.update_yaxes(title="accuracy", **at[1])
    if stacked:
        fig.update_yaxes(title="accuracy", **at[2])
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


def theme_is_on() -> bool:
    """Whether the lecture template is part of plotly's default template (``lecture_theme()`` was called)."""
    return LECTURE_TEMPLATE in str(pio.templates.default).split("+")


def lecture_theme(on: bool = True) -> str:
    """Big fonts and markers, readable on a projector, for every figure built from now on.

    ``lecture_theme()`` switches it on, ``lecture_theme(False)`` takes it off again. Panels pick it up at their
    next redraw; ``ll.projector()`` calls it and enlarges the panels' controls and text as well. Returns the
    name of the plotly template now in use. (The state is plotly's own default template, nothing else.)
    """
    parts = [p for p in str(pio.templates.default).split("+") if p and p != LECTURE_TEMPLATE] or ["plotly"]
    if on:
        pio.templates[LECTURE_TEMPLATE] = _lecture_template()
        parts.append(LECTURE_TEMPLATE)
    pio.templates.default = "+".join(parts)
    return str(pio.templates.default)


__all__ = [
    "METHOD_COLORS", "PAPER_FAMILIES", "accuracy_vs_params", "delta_w_heatmap", "gate_heatmap", "human",
    "human_bytes", "percent", "lecture_theme", "paper_vs_ours", "param_bars", "rank_accuracy", "spectrum",
    "stored_params", "subspace_heatmap", "theme_is_on", "training_curves",
]


# --- lesson 07: instruction tuning --------------------------------------------------------------------------

def instruction_curve(rows: Sequence[Mapping], title: str = "Unseen questions vs number of training questions"
                      ) -> go.Figure:
    """Zero-shot accuracy on the held-out questions against how many questions the model was trained on.

    ``rows``: the stored ``instruct_tasks`` rows (keys "arm", "questions", "held_out", "seed"). Numbered arms
    and the untrained model (0 questions) form the curve: one small marker per seed, a line through the means.
    "leaky" and "trained on them" are drawn as single markers of their own, and chance (50 %) as a dashed line."""
    curve: dict[int, list[float]] = {}
    extra: dict[str, list[Mapping]] = {}
    for r in rows:
        if r["arm"] == "untrained" or str(r["arm"]).isdigit():
            curve.setdefault(int(r["questions"]), []).append(r["held_out"])
        else:
            extra.setdefault(str(r["arm"]), []).append(r)
    xs = sorted(curve)
    fig = go.Figure(layout=_layout(title, xaxis=dict(title="questions trained on (0: untrained)", tickvals=xs + [8]),
                                   yaxis=dict(title="accuracy on the unseen questions", tickformat=".0%"),
                                   legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.3, yanchor="top")))
    fig.add_scatter(x=[x for x in xs for _ in curve[x]], y=[v for x in xs for v in curve[x]], mode="markers",
                    name="one seed", marker=dict(size=7, color=METHOD_COLORS["lora"], opacity=0.45))
    fig.add_scatter(x=xs, y=[sum(curve[x]) / len(curve[x]) for x in xs], mode="lines+markers",
                    name="mean over seeds", line=dict(color=METHOD_COLORS["lora"]), marker=dict(size=11))
    styles = {"leaky": ("held-out texts leaked in as 'no'", METHOD_COLORS["prompt"], "x"),
              "trained on them": ("trained on the test questions too", METHOD_COLORS["full"], "diamond")}
    for arm, runs in extra.items():
        label, color, symbol = styles.get(arm, (arm, "#7f7f7f", "circle"))
        fig.add_scatter(x=[r["questions"] for r in runs], y=[r["held_out"] for r in runs], mode="markers",
                        name=label, marker=dict(size=11, color=color, symbol=symbol))
    fig.add_hline(y=0.5, line_dash="dash", line_color="#7f7f7f")
    # its label between 3 and 6 questions, where no marker sits near 50 %
    fig.add_annotation(x=4.2, y=0.5, text="chance: 50 %", showarrow=False, yshift=-14, font=dict(color="#7f7f7f"))
    return fig
