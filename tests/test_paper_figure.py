"""The LoRA paper's Table 15 (the GPT-3 points of its Figure 2) and the figure that sets it beside our sweep."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lesson_lib import paper, results
from lesson_lib.plots import METHOD_COLORS, paper_vs_ours, stored_params

TABLE15 = paper.TABLES["lora_gpt3_table15"]


def _row(method: str, setting: str) -> dict:
    (row,) = TABLE15.records(method=method, setting=setting)
    return row


@pytest.mark.parametrize("method, setting, params_m, wikisql, mnli_m", [
    ("LoRA", "r_v=2", 4.7, 73.4, 91.7),
    ("LoRA", "q,k,v,o r=64", 603.8, 73.9, 91.4),
    ("PrefixEmbed", "l_p=512, l_i=8", 6.4, 55.9, 85.8),
    ("PrefixLayer", "l_p=64, l_i=0", 76.1, 64.9, 87.9),
    ("AdapterH", "r=1", 7.1, 71.9, 89.8),
    ("Fine-Tune", "all weights", 175_000.0, 73.8, 89.5),
])
def test_table15_rows_as_the_paper_prints_them(method, setting, params_m, wikisql, mnli_m):
    assert _row(method, setting) == {"method": method, "setting": setting, "params_m": params_m,
                                     "WikiSQL": wikisql, "MNLI-m": mnli_m}


def test_table15_has_the_plain_methods_only_with_their_source():
    methods = ("PrefixEmbed", "PrefixLayer", "AdapterH", "LoRA", "Fine-Tune")
    counts = {m: len(TABLE15.records(method=m)) for m in methods}
    assert counts == {"PrefixEmbed": 5, "PrefixLayer": 5, "AdapterH": 5, "LoRA": 10, "Fine-Tune": 1}
    assert len(TABLE15.rows) == sum(counts.values())  # no LoRA+PE / LoRA+PL rows
    assert "Hu et al. 2021, Table 15 (Appendix F.2)" in TABLE15.source
    fact = paper.FACTS["lora_gpt3_table15"]
    assert fact.source == "Hu et al. 2021, Table 15 (Appendix F.2)"
    assert fact.values["prefix_layer_largest"] == _row("PrefixLayer", "l_p=64, l_i=0")["WikiSQL"]


def _paper_facts() -> Path | None:
    """The course's shared/reference/paper-facts.md, when this checkout sits beside (or holds) it."""
    root = Path(__file__).resolve().parents[1]
    for base in (root, *root.parents[:2]):
        if (base / "shared/reference/paper-facts.md").exists():
            return base / "shared/reference/paper-facts.md"
    return None


@pytest.mark.skipif(_paper_facts() is None, reason="shared/reference/paper-facts.md is not here")
def test_table15_equals_every_plain_row_of_paper_facts():
    text = _paper_facts().read_text().split("**Table 15 (Appendix F.2)", 1)[1].split("Fine-tune is listed", 1)[0]
    read = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in ("PrefixEmbed", "PrefixLayer", "AdapterH", "LoRA"):
            read.append((cells[0], float(cells[2].rstrip("M")), float(cells[4]), float(cells[5])))
    ours = [(r["method"], r["params_m"], r["WikiSQL"], r["MNLI-m"]) for r in TABLE15.records()
            if r["method"] != "Fine-Tune"]
    assert read == ours


# --- stored_params -------------------------------------------------------------------------------------------

def test_stored_params_counts_a_prefix_folded_with_the_head():
    # P = 10 through the MLP: embedding 10·384, MLP 384→128→4,608, head 2·384 + 2 = 770
    trainable = 10 * 384 + 385 * 128 + 129 * 4608 + 770
    assert stored_params({"method": "prefix", "size": 10, "trainable": trainable}) == 46_080 + 770
    # the same run trained without the MLP already holds that count
    assert stored_params({"method": "prefix", "size": 10, "trainable": 46_080 + 770}) == 46_080 + 770
    # five labels (bbc): the head is 5·385 = 1,925
    assert stored_params({"method": "prefix", "size": 10, "trainable": trainable - 770 + 1925}) == 46_080 + 1925
    assert stored_params({"method": "lora", "size": 1, "trainable": 9986}) == 9986


def test_stored_params_refuses_a_row_that_does_not_fit_the_model():
    with pytest.raises(ValueError, match="does not match"):
        stored_params({"method": "prefix", "size": 10, "trainable": 123_457})


# --- the figure --------------------------------------------------------------------------------------------------

def _sweep() -> list[dict]:
    return results.load("sweep_tweets")["result"]["rows"]


def _traces(fig, axis: str) -> dict[str, object]:
    return {t.legendgroup: t for t in fig.data if t.xaxis == axis}


def test_figure_puts_the_stored_prefix_at_its_folded_size():
    rows = _sweep()
    fig = paper_vs_ours(rows)
    prefix = _traces(fig, "x2")["prefix"]
    sizes = sorted(r["size"] for r in rows if r["method"] == "prefix")
    assert list(prefix.x) == [4608 * p + 770 for p in sizes]
    assert all(a < b for a, b in zip(prefix.x, prefix.x[1:], strict=False))
    assert not all(645_000 <= x <= 669_100 for x in prefix.x)
    assert all("folded (what is saved)" in h and "MLP (trained, then dropped) is not counted" in h
               for h in prefix.hovertext)
    lora = _traces(fig, "x2")["lora"]  # every other method stays at its trainable count
    assert list(lora.x) == sorted(r["trainable"] for r in rows if r["method"] == "lora")


def test_figure_has_the_paper_points_in_the_same_colours():
    fig = paper_vs_ours(_sweep(), paper_task="WikiSQL")
    left, right = _traces(fig, "x"), _traces(fig, "x2")
    assert set(left) == set(right) == {"prompt", "prefix", "adapter", "lora"}
    for family in left:
        assert left[family].line.color == right[family].line.color == METHOD_COLORS[family]
        assert left[family].mode == "lines+markers"
    assert list(left["prompt"].x) == [r["params_m"] * 1e6 for r in TABLE15.records(method="PrefixEmbed")]
    assert list(left["prefix"].y) == [r["WikiSQL"] / 100 for r in TABLE15.records(method="PrefixLayer")]
    assert [s.y0 for s in fig.layout.shapes] == [0.738]  # the paper's full fine-tuning; no "full" row of ours
    assert fig.layout.width <= 940
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log"
    with pytest.raises(ValueError, match="paper_task"):
        paper_vs_ours(_sweep(), paper_task="SST-2")


def test_two_seeds_make_one_marker_with_a_min_max_bar_and_full_gets_a_line():
    base = {"method": "lora", "size": 4, "trainable": 37634}
    rows = [dict(base, seed=0, accuracy=0.86), dict(base, seed=1, accuracy=0.88),
            {"method": "adapter", "size": 4, "trainable": 42290, "seed": 0, "accuracy": 0.85},
            {"method": "full", "size": None, "trainable": 22_715_138, "seed": 0, "accuracy": 0.90}]
    fig = paper_vs_ours(rows)
    lora = _traces(fig, "x2")["lora"]
    assert list(lora.x) == [37634] and lora.y[0] == pytest.approx(0.87)
    assert lora.error_y.visible
    assert lora.error_y.array[0] == pytest.approx(0.01) and lora.error_y.arrayminus[0] == pytest.approx(0.01)
    assert "mean of 2 seeds" in lora.hovertext[0]
    assert not _traces(fig, "x2")["adapter"].error_y.visible
    assert "full" not in _traces(fig, "x2")
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.895, 0.9]
    assert re.search(r"full fine-tuning: 90\.0 %", " ".join(a.text for a in fig.layout.annotations))


def test_on_a_projector_the_paper_panel_sits_above_ours_and_a_laptop_gets_the_figure_side_by_side():
    """The lecture theme (projector mode) leaves a narrow figure with big fonts: two panels side by side
    overlapped their titles there, so they stack; on a laptop FigureView keeps the figure's own 940 px."""
    from lesson_lib import plots
    from lesson_lib.widgets.figures import FigureView

    side = FigureView(paper_vs_ours(_sweep()), mode="static").figure.layout
    assert side.width == 940 and side.xaxis2.domain[0] > side.xaxis.domain[1]  # beside each other
    plots.lecture_theme(True)
    try:
        fig = FigureView(paper_vs_ours(_sweep()), mode="static").figure
    finally:
        plots.lecture_theme(False)
    top, bottom = fig.layout.yaxis.domain, fig.layout.yaxis2.domain
    assert tuple(fig.layout.xaxis.domain) == tuple(fig.layout.xaxis2.domain) and bottom[1] < top[0]
    assert fig.layout.width == 560 and fig.layout.yaxis2.title.text == "accuracy"
    assert paper_vs_ours(_sweep(), stacked=True).layout.yaxis2.domain[1] < 0.5  # asked for, without the theme
