"""Figures and panels without a browser: build each panel in-process, move its controls, check the numbers.

Every panel is built on the tiny model, in both figure modes ("widget": FigureWidget, "static": a figure
redrawn in an Output). The numbers a panel shows must equal what count_params, the formulas and the
analysis functions give; the figure it shows must change when a control moves.
"""

from __future__ import annotations

import importlib
import re
import time
import warnings
from pathlib import Path

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

import lesson_lib as ll
from lesson_lib import analysis, metrics, plots
from lesson_lib import widgets as lw
from lesson_lib.tiny import tiny_task
from lesson_lib.widgets import build, counts, figures, gate_state, runs
from lesson_lib.widgets.delta_state import DeltaState, layer_and_leaf
from lesson_lib.widgets.switchboard import label_names, predictions_table

QUICK = ll.TrainConfig(steps=20, lr=1e-2, batch_size=8, eval_every=0, progress=False)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two shared cores: one torch thread per process is far faster (and steadier) than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=["widget", "static"])
def mode(request):
    lw.use_figure_widget(request.param == "widget")
    yield request.param
    lw.use_figure_widget(None)


@pytest.fixture(scope="module")
def task():
    return tiny_task(n=96)


def _trained(configs, task, seed=0, gates=None):
    model = lw.fresh(configs, tiny=True, seed=seed, gates=gates)()
    ll.train(model, task, QUICK)
    return model


def _ys(view) -> list:
    return [list(np.asarray(t.z if t.type == "heatmap" else t.y, dtype=float).ravel()) for t in view.data]


# --- plots -----------------------------------------------------------------------------------------------

def test_plot_builders_return_figures_from_plain_data():
    s = np.array([3.0, 1.0, 0.0, 0.0])
    spec = plots.spectrum(s, k=1)
    assert isinstance(spec, go.Figure) and "energy at k=1: 90.0 %" in spec.layout.title.text
    assert list(spec.data[1].y) == pytest.approx([0.9, 1.0, 1.0, 1.0])
    assert "not trained" in plots.spectrum(np.zeros(3)).layout.title.text
    heat = plots.delta_w_heatmap(np.ones((1536, 384)), max_side=128)
    assert np.asarray(heat.data[0].z).shape == (128, 128) and "1536×384" in heat.layout.title.text
    bars = plots.param_bars({"a": {"lora": 10, "whole model": 1000}}, {"a": 1000})
    assert bars.layout.yaxis.type == "log" and bars.data[0].text[0] == "10<br>1 %"
    gates = plots.gate_heatmap({"lora": [0.5, 0.25], "adapter": [1.0, None]})
    assert np.isnan(np.asarray(gates.data[0].z, dtype=float)[1, 1])
    curves = plots.training_curves([1, 2, 3], [1.0, 0.8, 0.5], [3], [0.7], total_steps=10)
    assert list(curves.layout.xaxis.range) == [0, 10] and curves.data[1].yaxis == "y2"
    scatter = plots.accuracy_vs_params([{"label": "r=8", "method": "lora", "trainable": 100, "accuracy": 0.8}])
    assert scatter.layout.xaxis.type == "log" and list(scatter.data[0].x) == [100]
    assert plots.accuracy_vs_params([]).layout.annotations[0].text.startswith("no runs")
    assert len(plots.rank_accuracy({1: 0.6, 2: 0.7}, current=2, full=0.8).data) == 2
    assert np.asarray(plots.subspace_heatmap(np.eye(3)).data[0].z).shape == (3, 3)
    assert (plots.human(4_718_592), plots.human_bytes(1536)) == ("4.7M", "1.5 KiB")


def test_lecture_theme_is_one_switch():
    default = pio.templates.default
    try:
        assert plots.LECTURE_TEMPLATE in plots.lecture_theme()
        assert plots.spectrum([2.0, 1.0]).layout.template.layout.font.size == 20
        assert plots.lecture_theme() == pio.templates.default  # twice on is still on, once
        assert pio.templates.default.count(plots.LECTURE_TEMPLATE) == 1
    finally:
        assert plots.lecture_theme(False) == default
    assert plots.spectrum([2.0, 1.0]).layout.template.layout.font.size != 20


# --- the figure backend -----------------------------------------------------------------------------------

def test_figure_mode_is_automatic_overridable_by_env_and_by_call(monkeypatch):
    lw.use_figure_widget(None)
    monkeypatch.delenv("LESSON_FIGURES", raising=False)
    assert lw.figure_mode() == "widget"  # ipywidgets 8 and anywidget are installed here
    monkeypatch.setenv("LESSON_FIGURES", "static")
    assert lw.figure_mode() == "static"
    assert lw.use_figure_widget(True) == "widget"  # an explicit call wins over the environment
    assert lw.use_figure_widget(None) == "static"
    monkeypatch.setattr(W, "__version__", "7.7.1")  # Colab
    monkeypatch.delenv("LESSON_FIGURES")
    assert lw.figure_mode() == "static"


def test_a_broken_figure_widget_falls_back_to_a_static_figure(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no anywidget frontend")

    monkeypatch.setattr(go, "FigureWidget", broken)
    with pytest.warns(UserWarning, match="static"):
        view = lw.FigureView(plots.spectrum([2.0, 1.0]), mode="widget")
    assert view.mode == "static" and isinstance(view.widget, W.Output)
    view.show(plots.spectrum([3.0, 1.0, 1.0]))
    (out,) = view.widget.outputs
    assert out["output_type"] == "display_data" and "application/vnd.plotly.v1+json" in out["data"]
    assert len(view.data[0].y) == 3


def test_resync_makes_the_synced_state_equal_what_is_shown():
    """G1: a FigureWidget syncs its full state only when built; a second window would see that state."""
    view = lw.FigureView(plots.training_curves([], []), mode="widget")
    fw = view.widget
    figures._copy_into(fw, plots.training_curves([1, 2, 3], [1.0, 0.5, 0.2]))  # an update, not yet resynced
    assert not len(fw._widget_data[0].get("x", ()))  # still the empty curve it was built with
    lw.resync(fw)
    assert list(fw._widget_data[0]["x"]) == [1, 2, 3]
    assert fw._widget_layout == fw._layout_obj._props
    view.show(plots.training_curves([1, 2], [1.0, 0.5], title="again"))  # show() resyncs by itself
    assert list(fw._widget_data[0]["x"]) == [1, 2] and fw._widget_layout["title"]["text"] == "again"
    lw.resync(go.Figure())  # a static figure needs nothing and gets nothing


def test_a_figure_widget_update_changes_only_what_changed():
    view = lw.FigureView(plots.spectrum([3.0, 1.0], k=1), mode="widget")
    view.show(plots.spectrum([3.0, 2.0, 1.0], k=2))
    assert list(view.data[0].y) == [3.0, 2.0, 1.0] and "k=2" in view.layout.title.text
    assert len(view.layout.shapes) == 1  # the dashed line at k
    view.show(plots.spectrum([3.0, 2.0, 1.0]))  # no k: a property the new figure lacks is removed
    assert len(view.layout.shapes) == 0
    view.show(plots.gate_heatmap({"lora": [0.5]}))  # other trace types: traces are replaced
    assert [t.type for t in view.data] == ["heatmap"] and view.updates == 3


# --- 1. parameter explorer -------------------------------------------------------------------------------

def test_parameter_explorer_numbers_equal_count_params_and_formulas(mode):
    model, _ = ll.load_base(tiny=True)
    before = ll.checksum(model)
    panel = lw.parameter_explorer(model, spec="BERT-base")
    c = panel.controls
    bars = _ys(panel.views["bars"])
    c["r"].value, c["adapter"].value, c["target_key"].value = 4, True, True
    c["bottleneck"].value, c["prefix"].value, c["prefix_length"].value = 8, True, 5
    assert _ys(panel.views["bars"]) != bars and not panel.errors
    cfgs = [ll.LoRAConfig(r=4, alpha=16.0, targets=("query", "key", "value")), ll.AdapterConfig(bottleneck=8),
            ll.PrefixConfig(length=5)]
    twin, _ = ll.load_base(tiny=True)
    ll.inject(twin, cfgs)
    count = ll.count_params(twin)
    v = panel.values
    assert (v["measured_trainable"], v["measured_total"]) == (count.trainable, count.total)
    assert v["measured_by_method"] == count.by_method and v["formula_trainable"] == metrics.formula_for(twin)
    report = metrics.memory_report(metrics.BERT_BASE, cfgs)
    assert (v["spec_trainable"], v["spec_total"]) == (report.trainable, report.total)
    assert f"{count.trainable:,}" in panel.table.value and "measured = formula" in panel.table.value
    assert v["memory"]["optimizer"] == 2 * 4 * count.trainable
    assert ll.checksum(model) == before and not ll.tasks.names(model)  # the explorer leaves the model as it was
    print(f"[{mode}] parameter explorer update on the tiny model: {1000 * panel.timings['update']:.0f} ms")


def test_parameter_explorer_shows_errors_in_its_output_and_recovers(mode):
    panel = lw.parameter_explorer(ll.load_base(tiny=True)[0])
    for t in lw.TARGETS:
        panel.controls[f"target_{t}"].value = False
    assert "targets must be a non-empty tuple" in panel.errors[-1]
    assert panel.out.outputs and panel.out.outputs[-1]["name"] == "stderr" and "⚠" in panel.status.value
    panel.controls["target_value"].value = True
    assert not panel.out.outputs and "LoRA r=8 on value" in panel.views["bars"].layout.title.text


def test_parameter_explorer_full_fine_tuning_and_gpt3_scale():
    panel = lw.parameter_explorer(ll.load_base(tiny=True)[0], spec="GPT-3 175B")
    assert panel.values["spec_trainable"] == ll.metrics.formula_params(metrics.GPT3_175B, ll.LoRAConfig(r=8))
    panel.controls["lora"].value = False  # nothing selected: full fine-tuning
    assert panel.values["measured_trainable"] == panel.values["measured_total"] == panel.values["formula_trainable"]
    assert panel.values["spec_trainable"] == metrics.full_params(metrics.GPT3_175B)
    with pytest.raises(ValueError, match="bare model"):
        model, _ = ll.load_base(tiny=True)
        ll.inject(model, ll.LoRAConfig(r=2))
        lw.parameter_explorer(model)


@pytest.mark.integration
def test_parameter_explorer_on_minilm_update_time():
    lw.use_figure_widget(True)
    try:
        model, _ = ll.load_base()
        panel = lw.parameter_explorer(model)
        times = {}
        for name, value in [("r", 16), ("r", 64), ("adapter", True), ("bottleneck", 128), ("prefix", True),
                            ("prompt", True), ("target_intermediate", True), ("spec", "BERT-base")]:
            panel.controls[name].value = value
            times[f"{name}={value}"] = panel.timings["update"]
        print("MiniLM parameter explorer, seconds per update (shared 2-core machine):",
              {k: round(v, 3) for k, v in times.items()})
        assert panel.values["measured_trainable"] == panel.values["formula_trainable"] and not panel.errors
    finally:
        lw.use_figure_widget(None)


# --- 2. live training ---------------------------------------------------------------------------------------

def test_live_training_grows_a_curve_and_logs_every_run(mode, task):
    log = lw.RunLog()
    cfg = ll.TrainConfig(steps=12, lr=1e-2, batch_size=8, eval_every=6)
    panel = lw.live_training({"LoRA r=2": lw.fresh(ll.LoRAConfig(r=2), tiny=True),
                              "head only": lw.fresh("head", tiny=True)}, task, cfg, log=log, redraw_every=0.0)
    panel.start(block=True)
    assert not panel.errors and panel.draws >= 12 and panel.controls["progress"].value == 12
    assert list(panel.views["curve"].data[0].x) == list(range(1, 13))
    assert list(panel.views["curve"].data[1].x) == [6, 12]  # evaluations
    run = log.runs[-1]
    count = ll.count_params(panel.last_model)
    assert (run["method"], run["trainable"], run["steps"], run["stopped"]) == ("lora", count.trainable, 12, "done")
    assert run["accuracy"] == panel.last_history.final["accuracy"]
    panel.controls["method"].value = "head only"
    panel.controls["train"].click()  # a background run, started by the button
    assert panel.wait(60) and len(log.runs) == 2 and log.runs[-1]["method"] == "head"
    assert list(panel.views["scatter"].data[0].x) == [run["trainable"]] and "head only" in panel.table.value
    print(f"[{mode}] live training: one redraw takes {1000 * panel.timings['draw']:.0f} ms")


def test_live_training_top_k_menu_takes_the_fast_path_and_the_lr_menu_is_used(task):
    log = lw.RunLog()
    factories = {"LoRA r=2": lw.fresh(ll.LoRAConfig(r=2), tiny=True), "full": lw.fresh(None, tiny=True),
                 "prompt": lw.fresh(ll.PromptConfig(length=2), tiny=True)}
    panel = lw.live_training(factories, task, ll.TrainConfig(steps=4, lr=1e-3, batch_size=8, eval_every=2),
                             log=log, top=1)
    c = panel.controls
    assert c["layers"].options == (("all layers", 0), ("top 1 of 2 (fast)", 1)) and c["layers"].value == 1
    c["lr"].value = 1e-2
    panel.start(block=True)
    model, history = panel.last_model, panel.last_history
    assert not panel.errors and history.path.startswith("fast path: layer 0 run once")
    assert panel.last_config.lr == 1e-2
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".layer.1." in n or "classifier" in n for n in trainable)
    assert any("lora_A" in n for n in trainable) and log.runs[-1]["label"] == "LoRA r=2 · top 1 · 4 steps · lr 0.01"
    c["method"].value = "full"  # full fine-tuning of the top layer only: every weight of layer 1, nothing below
    panel.start(block=True)
    model = panel.last_model
    assert panel.last_history.path.startswith("fast path")
    assert all(p.requires_grad for p in ll.models.layers_of(model)[1].parameters())
    assert not any(p.requires_grad for p in ll.models.layers_of(model)[0].parameters())
    c["method"].value = "prompt"  # no top-k form: a clear error in the panel, nothing logged
    panel.start(block=True)
    assert "cannot be restricted to the top layers" in panel.errors[-1] and len(log.runs) == 2
    c["layers"].value = 0  # all layers
    panel.start(block=True)
    assert panel.last_history.path == "plain" and log.runs[-1]["label"] == "prompt · all layers · 4 steps · lr 0.01"
    panel.start(block=True)  # the same settings again: a row that can still be told apart
    assert log.runs[-1]["label"] == "prompt · all layers · 4 steps · lr 0.01 (2)"
    with pytest.raises(ValueError, match="top="):
        lw.live_training(factories, task, top=2)


def test_stop_ends_a_background_run_cleanly(mode, task):
    log = lw.RunLog()
    panel = lw.live_training(lw.fresh(ll.LoRAConfig(r=2), tiny=True), task,
                             ll.TrainConfig(steps=5000, batch_size=8, eval_every=0), log=log)
    panel.controls["train"].click()
    deadline = time.time() + 60
    while panel.draws < 2 and time.time() < deadline:
        time.sleep(0.02)
    panel.controls["stop"].click()
    assert panel.wait(60), "training did not stop"
    assert panel.last_history.stopped == "stopped" and len(panel.last_history.steps) < 5000
    assert log.runs[-1]["stopped"] == "stopped" and log.runs[-1]["accuracy"] == panel.last_history.final["accuracy"]
    # an unnamed factory's run is named by its method, then where, how long and how fast it trained
    assert log.runs[-1]["label"] == "LoRA r=2 on query,value · all layers · 5000 steps · lr 0.001"
    assert not panel.controls["train"].disabled and panel.controls["stop"].disabled


def test_live_training_reports_a_failing_factory_in_the_panel(task):
    def broken():
        raise RuntimeError("the model factory failed")

    panel = lw.live_training(broken, task, log=lw.RunLog())
    panel.start(block=True)
    assert "the model factory failed" in panel.errors[-1] and panel.out.outputs
    assert not panel.controls["train"].disabled


# --- 3. ΔW explorer -------------------------------------------------------------------------------------------

def test_delta_w_explorer_shows_the_analysis_numbers(mode, task):
    model = _trained(ll.LoRAConfig(r=4), task)
    other = _trained(ll.LoRAConfig(r=8), task, seed=1)
    panel = lw.delta_w_explorer(model, task.val, other_model=other, eval_limit=16, warm_up=False)
    c, deltas = panel.controls, analysis.delta_weights(model)
    name = "bert.encoder.layer.0.attention.self.query"
    assert panel.values["module"] == name and panel.values["k"] == 4
    np.testing.assert_allclose(panel.values["singular_values"], analysis.singular_values(deltas[name]))
    spectrum = _ys(panel.views["spectrum"])
    c["layer"].value, c["matrix"].value = 1, "value"
    name = "bert.encoder.layer.1.attention.self.value"
    assert panel.values["module"] == name and _ys(panel.views["spectrum"]) != spectrum
    grid = analysis.subspace_similarity_grid(analysis.lora_layers(model)[name].lora_A,
                                             analysis.lora_layers(other)[name].lora_A)
    np.testing.assert_allclose(np.asarray(panel.views["subspace"].data[0].z, dtype=float), grid)
    c["k"].value = 1
    subset = task.val.subset(16) if len(task.val) > 16 else task.val
    assert panel.values["accuracy_at_k"] == analysis.accuracy_by_rank(model, subset, ks=(1,))[1]
    assert panel.values["energy_at_k"] == pytest.approx(analysis.energy_at_k(analysis.singular_values(deltas[name]), 1))
    assert "k=1" in panel.views["spectrum"].layout.title.text and len(panel.views["accuracy"].data[0].x) == 2
    c["approx"].value = True
    z = np.asarray(panel.views["heatmap"].data[0].z, dtype=float)
    assert np.linalg.matrix_rank(z, tol=1e-6 * np.abs(z).max()) == 1 and not panel.errors
    print(f"[{mode}] ΔW explorer: pick {1000 * panel.timings['pick']:.0f} ms, "
          f"rank-k {1000 * panel.timings['rank']:.0f} ms")


def test_delta_w_explorer_warm_up_fills_every_rank_on_a_copy(task):
    model = _trained(ll.LoRAConfig(r=4), task)
    deltas = {n: d.clone() for n, d in analysis.delta_weights(model).items()}
    panel = lw.delta_w_explorer(model, task.val, eval_limit=16)
    st = panel.state
    assert st.warmer is not None
    for _ in range(50):  # the notebook's model is never truncated while the warm-up runs
        assert all(torch.equal(d, deltas[n]) for n, d in analysis.delta_weights(model).items())
    st.warmer.join(60)
    assert st.ready() == 4 and sorted(st.accuracy) == [1, 2, 3, 4]
    subset = task.val.subset(16) if len(task.val) > 16 else task.val
    assert st.accuracy == analysis.accuracy_by_rank(model, subset, ks=(1, 2, 3, 4))
    panel.controls["k"].value = 2  # a look-up now
    assert panel.values["accuracy_at_k"] == st.accuracy[2] and "4 of 4 ranks" in panel.status.value
    assert not panel.errors


def test_delta_w_explorer_refuses_a_model_without_lora(task):
    with pytest.raises(ValueError, match="no LoRA"):
        lw.delta_w_explorer(ll.load_base(tiny=True)[0], task.val)


# --- 4. gate board ------------------------------------------------------------------------------------------

def test_gate_board_overrides_gates_and_shows_the_accuracy_change(mode, task):
    cfgs = [ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=8), ll.PrefixConfig(length=4)]
    model = _trained(cfgs, task, gates=ll.GateConfig())
    panel = lw.gate_board(model, task.val, eval_limit=16)
    learned = panel.values["learned"]
    assert set(learned) == {"lora", "adapter", "prefix"} and len(learned["lora"]) == 2
    heat = _ys(panel.views["gates"])
    panel.controls["adapter_value"].value = 0.0  # moving the slider switches "by hand" on
    seconds = panel.timings["gate"]
    assert panel.controls["adapter_by_hand"].value and panel.values["gates"]["adapter"] == [0.0, 0.0]
    assert _ys(panel.views["gates"]) != heat and not panel.errors
    subset = task.val.subset(16) if len(task.val) > 16 else task.val
    assert panel.values["accuracy"] == ll.evaluate(model, subset)["accuracy"]  # the gates stay as set
    assert "change" in panel.status.value
    panel.reset()
    for method, values in learned.items():
        assert panel.values["gates"][method] == pytest.approx(values)
    assert panel.values["accuracy"] == panel.values["learned_accuracy"]
    print(f"[{mode}] gate board: one override (set gates, evaluate 16 examples, redraw) {1000 * seconds:.0f} ms")


# --- 5. switchboard ------------------------------------------------------------------------------------------

def test_switchboard_switches_tasks_on_one_unchanged_base(mode, task):
    topic = tiny_task(n=96, num_labels=3)
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4), name="sentiment", num_labels=2)
    ll.train(model, task, QUICK)
    ll.inject(model, ll.AdapterConfig(bottleneck=8), name="topic", num_labels=3)
    ll.train(model, topic, QUICK)
    base = ll.checksum(model)
    panel = lw.switchboard(model, tasks={"sentiment": task, "topic": topic.label_names})
    assert panel.values["active"] == "topic" and panel.values["labels"] == topic.label_names
    topic_preds = panel.values["predictions"]
    panel.controls["task"].value = "sentiment"
    seconds = panel.timings["switch"]
    texts = list(lw.EXAMPLES)
    probs = ll.predict(model, texts)
    assert ll.tasks.active_task(model) == "sentiment" and panel.values["labels"] == task.label_names
    assert [p[1] for p in panel.values["predictions"]] == [task.label_names[i] for i in probs.argmax(-1)]
    assert panel.values["predictions"] != topic_preds
    assert panel.values["checksum"] == base and panel.values["checksum_unchanged"]
    assert "unchanged" in panel.base.value and base in panel.base.value
    panel.controls["texts"].value = "i love it"
    assert [p[0] for p in panel.values["predictions"]] == ["i love it"]
    panel.controls["texts"].value = "   "
    assert "at least one sentence" in panel.errors[-1]
    print(f"[{mode}] switchboard: one switch (predict, checksum) {1000 * seconds:.0f} ms")


def test_panels_never_call_display(monkeypatch, task):
    """Panels return widgets; showing them is the notebook's job (the cell's last expression)."""
    import IPython.display

    def forbidden(*args, **kwargs):
        raise AssertionError("a panel called display()")

    monkeypatch.setattr(IPython.display, "display", forbidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for widget in (lw.use_figure_widget(True), lw.use_figure_widget(False)):
            panel = lw.parameter_explorer(ll.load_base(tiny=True)[0])
            panel.controls["r"].value = 2
            assert isinstance(panel, W.VBox) and not panel.errors, widget
    lw.use_figure_widget(None)


def test_static_figures_follow_the_default_renderer(monkeypatch):
    """JupyterLab gets plotly's JSON mimetype; a notebook whose renderer is HTML (Colab) gets HTML."""
    view = lw.FigureView(plots.spectrum([2.0, 1.0]), mode="static")
    assert "application/vnd.plotly.v1+json" in view.widget.outputs[0]["data"]
    monkeypatch.setattr(pio.renderers, "default", "notebook_connected")
    view.show(plots.spectrum([3.0, 1.0]))
    assert "text/html" in view.widget.outputs[0]["data"] and len(view.widget.outputs) == 1


def test_an_error_inside_a_nested_callback_stays_visible(task):
    """A gate slider ticks "by hand", whose own callback fails: the error must not be wiped by the outer one."""
    model = _trained([ll.LoRAConfig(r=2), ll.AdapterConfig(bottleneck=4)], task, gates=ll.GateConfig())
    panel = lw.gate_board(model, task.val, eval_limit=16)
    panel.state.gates = {**panel.state.gates, "bogus": []}  # any failure inside the update will do
    panel.controls["lora_value"].value = 0.5
    assert panel.errors and panel.out.outputs and "⚠" in panel.status.value
    del panel.state.gates["bogus"]
    panel.controls["lora_value"].value = 0.25
    assert not panel.out.outputs and panel.status.value.count("accuracy") == 1


# --- the logic behind the panels, without any widget ----------------------------------------------------------

PLAIN = ("build", "counts", "delta_state", "gate_state", "runs", "tables")  # files that create no widget


@pytest.fixture
def no_widget_made():
    """Fails the test if it creates any ipywidget (the logic must work, and be tested, without the UI)."""
    from ipywidgets.widgets import widget

    before = set(widget._instances)
    yield
    assert set(widget._instances) <= before, "a plain-logic function created a widget"


def _control_values(**changes) -> dict:
    """The parameter explorer's control values at their defaults (BERT-base, fp32), then ``changes``."""
    v = {m: m == "lora" for m in lw.METHODS} | {f"target_{t}": t in ("query", "value") for t in lw.TARGETS}
    v |= {"r": 8, "alpha": 16, "bottleneck": 16, "prefix_length": 10, "prompt_length": 10, "spec": "BERT-base",
          "bytes": 4}
    return v | changes


def test_package_layout_plain_files_import_no_ui_and_plotly_privates_stay_in_figures():
    root = Path(lw.__file__).parent
    for stem in PLAIN:
        text = (root / f"{stem}.py").read_text()
        assert not re.search(r"^\s*(from|import) (ipywidgets|plotly)", text, flags=re.M), stem
    for path in root.glob("*.py"):
        assert len(path.read_text().splitlines()) < 300, path.name
        if path.stem != "figures":
            assert not re.search(r"\._(widget_data|widget_layout|data\b|layout_obj|repr_mimebundle_)",
                                 path.read_text()), path.name
    for stem in [p.stem for p in root.glob("*.py")]:  # no module-level mutable state, but the one figure choice
        mod = importlib.import_module(f"lesson_lib.widgets.{stem}")
        mutable = [n for n, v in vars(mod).items() if not n.startswith("__") and isinstance(v, (list, dict, set))]
        assert mutable == (["_CHOICE"] if stem == "figures" else []), (stem, mutable)


@pytest.mark.parametrize("stand_in", [True, False], ids=["measured_on_meta_stand_in", "formula_only"])
def test_explorer_numbers_equal_what_count_params_measures(no_widget_made, stand_in):
    model, _ = ll.load_base(tiny=True)
    here, before = metrics.spec_of(model), ll.checksum(model)
    twin = counts.stand_in(model) if stand_in else None
    settings = [_control_values(), _control_values(lora=False),  # LoRA on q, v; nothing: full fine-tuning
                _control_values(adapter=True, prefix=True, prompt=True, r=3, target_query=False,
                                target_value=False, target_intermediate=True, target_ffn_output=True, bytes=2),
                _control_values(lora=False, adapter=True, bottleneck=5, spec="GPT-3 175B")]
    for v in settings:
        n = counts.explorer_numbers(here, v, twin)
        assert ll.checksum(model) == before and not ll.tasks.names(model)  # the model itself is never touched
        cfgs = counts.explorer_configs(v)
        if cfgs:
            ll.inject(model, cfgs)
        count, formula = ll.count_params(model), metrics.formula_for(model)
        ll.remove(model)
        assert (n["measured_trainable"], n["measured_total"], n["formula_trainable"], n["share"]) == \
            (count.trainable, count.total, formula, count.share)
        assert list(n["measured_by_method"].items()) == list(count.by_method.items())  # same bars, same order
        b = v["bytes"]
        t = count.trainable
        assert n["memory"] == {"optimizer": 2 * t * b, "training": (count.total + 3 * t) * b, "checkpoint": t * b}
        report = metrics.memory_report(lw.SPECS[v["spec"]], cfgs or "full", bytes_per_param=b)
        assert (n["spec_trainable"], n["spec_total"], n["spec_report"]) == (report.trainable, report.total, report)
    with pytest.raises(ValueError, match="targets"):
        counts.explorer_configs(_control_values(target_query=False, target_value=False))
    assert counts.describe(ll.AdapterConfig(bottleneck=4)) == "adapter m=4"
    assert counts.method_name(ll.PromptConfig()) == "prompt"


def test_delta_state_without_a_panel(task, no_widget_made):
    model = _trained(ll.LoRAConfig(r=4), task)
    st = DeltaState(model, task.val, eval_limit=16)
    subset = task.val.subset(16) if len(task.val) > 16 else task.val
    assert (st.layers(), st.leaves(), st.r) == ([0, 1], ["query", "value"], 4)
    name = st.module(1, "value")
    assert name == "bert.encoder.layer.1.attention.self.value" and layer_and_leaf("L1.value") == (1, "value")
    with pytest.raises(ValueError, match="no LoRA on L0.key"):
        st.module(0, "key")
    s = analysis.singular_values(analysis.delta_weights(model)[name])
    np.testing.assert_allclose(st.singular_values(name), s)
    assert st.energy_at_k(name, 1) == pytest.approx(analysis.energy_at_k(s, 1))
    assert st.accuracy_at(4) == st.full == ll.evaluate(model, subset)["accuracy"]
    assert st.accuracy_at(1) == analysis.accuracy_by_rank(model, subset, ks=(1,))[1]
    assert st.ready() == 2 and st.accuracies() == st.accuracy and st.accuracies() is not st.accuracy


def test_gate_state_without_a_panel(task, no_widget_made):
    model = _trained([ll.LoRAConfig(r=2), ll.AdapterConfig(bottleneck=4)], task, gates=ll.GateConfig())
    st = gate_state.GateState(model, task.val, eval_limit=16)
    subset = task.val.subset(16) if len(task.val) > 16 else task.val
    acc, learned = st.measure()
    assert set(learned) == {"lora", "adapter"} and st.original == {"lora": [None, None], "adapter": [None, None]}
    chosen = st.chosen({"lora": False, "adapter": True}, {"lora": 0.3, "adapter": 0.0})
    assert chosen == {"lora": [None, None], "adapter": 0.0}
    acc_off, now = st.apply(chosen)
    assert now["adapter"] == [0.0, 0.0] and acc_off == ll.evaluate(model, subset)["accuracy"]
    acc_back, back = st.apply(st.chosen({"lora": False, "adapter": False}, {}))
    assert acc_back == acc and back["adapter"] == pytest.approx(learned["adapter"])
    assert gate_state.mean_gate([0.5, float("nan"), 0.2]) == 0.35


def test_run_log_model_factory_and_switchboard_helpers_without_a_panel(task, no_widget_made):
    factory = build.fresh("head", tiny=True)
    assert isinstance(factory, build.ModelFactory) and factory.n_layers == 2
    model = factory()
    history = ll.train(model, task, ll.TrainConfig(steps=2, batch_size=8, eval_every=0, progress=False))
    row = runs.run_row("head only", model, history)
    assert (row["method"], row["trainable"], row["steps"]) == ("head", ll.count_params(model).trainable, 2)
    log, seen = runs.RunLog(), []
    log.on_change(lambda changed: seen.append(len(changed.runs)))
    assert log.to_html() == "<i>no runs yet</i>"
    log.add(row)
    assert seen == [1] and "head only" in log.to_html() and log.runs == [row]
    top = build.fresh(ll.LoRAConfig(r=2), tiny=True)(top=1)
    assert all(".layer.1." in n or "classifier" in n for n, p in top.named_parameters() if p.requires_grad)
    assert build.restricted([ll.LoRAConfig(r=2)], (1,))[0].layers == (1,)
    with pytest.raises(ValueError, match="cannot be restricted"):
        build.restricted(ll.PromptConfig(length=2), (1,))
    assert label_names({"a": task}, "a", 2) == task.label_names
    assert label_names({"a": ["only one"]}, "a", 2) == ["label 0", "label 1"]
    table, preds = predictions_table(["<i>hi</i>"], ["neg", "pos"], np.array([[0.25, 0.75]]))
    assert preds == [("<i>hi</i>", "pos", 0.75)] and "&lt;i&gt;hi" in table and "75 %" in table


def test_each_live_panel_has_its_own_run_log_unless_given_one(task):
    factory = lw.fresh(ll.LoRAConfig(r=2), tiny=True)
    first, second = lw.live_training(factory, task), lw.live_training(factory, task)
    assert first.runlog is not second.runlog and not first.runlog.runs
    shared = lw.RunLog()
    assert lw.live_training(factory, task, log=shared).runlog is shared


def test_more_steps_keep_the_number_of_evaluations(no_widget_made):
    from lesson_lib.widgets.training import scaled_eval_every

    cfg = ll.TrainConfig(steps=8, eval_every=2)  # quick mode: 4 evaluations
    assert [scaled_eval_every(cfg, s) for s in (8, 40, 400, 3)] == [2, 10, 100, 1]
    assert scaled_eval_every(ll.TrainConfig(steps=8, eval_every=0), 400) == 0


def test_log_axes_and_labels_stay_readable():
    ticks = plots.log_ticks(1_000, 25_000_000)
    assert len(ticks["tickvals"]) <= 12 and ticks["ticktext"][0] == "1.0K"
    runs = [{"label": f"{m} {s}", "method": m, "trainable": s * 1000, "accuracy": 0.8}
            for m in ("lora", "adapter", "prefix", "prompt") for s in (1, 4, 16, 64)]
    fig = plots.accuracy_vs_params(runs)
    shown = [x for trace in fig.data for x in trace.text if x]
    assert len(shown) == 8 and len(fig.layout.xaxis.tickvals) <= 15  # the ends of each method, few ticks
    assert {trace.textposition for trace in fig.data} == {"top center", "bottom center"}
    gates = plots.gate_heatmap({"lora": [0.5, None], "adapter": [float("nan"), 1.0]})
    assert gates.data[0].z[1][0] is None and gates.data[0].z[0][1] is None  # no NaN sent to the browser
    assert plots.percent(0.000541) == "0.054 %" and plots.percent(0.5) == "50 %"



# --- ΔW explorer at laptop width (two figures per row in a ~960 px output area) -------------------------------

def _tick_labels(axis) -> list:
    return list(axis.ticktext or axis.tickvals or [])


def test_rank_axes_have_few_labels_and_ranges_fit_the_data():
    acc = {k: 0.8 - 0.2 / k for k in range(1, 65)}
    fig = plots.rank_accuracy(acc, current=8, full=0.81, r=64)
    ticks = list(fig.layout.xaxis.tickvals)
    assert len(ticks) <= 15 and ticks[0] == 1 and ticks[-1] == 64 and fig.layout.xaxis.type == "log"
    lo, hi = (10 ** v for v in fig.layout.xaxis.range)
    assert lo <= 1 and 64 <= hi <= 100  # the axis spans 1 … r, whatever ranks are known yet
    assert list(plots.rank_accuracy({64: 0.8}, 64, 0.8, r=64).layout.xaxis.range) == list(fig.layout.xaxis.range)
    assert plots.rank_accuracy({0: 0.5, 1: 0.7}).layout.xaxis.type != "log"  # k = 0 has no place on a log axis
    s = np.r_[np.linspace(5, 1, 64), np.zeros(64)]  # rank 64 in a 128 × 128 ΔW
    spec = plots.spectrum(s, k=8, top=64)
    assert len(spec.data[0].x) == 64 and spec.layout.xaxis.range[1] <= 64.5
    assert len(_tick_labels(spec.layout.xaxis)) <= 15
    assert spec.layout.showlegend is False  # no legend to overlap an axis title; the axis titles are coloured
    phi = plots.subspace_heatmap(np.zeros((8, 64)), names=("A (r = 8)", "A (r = 64)"))
    assert len(_tick_labels(phi.layout.xaxis)) <= 15 and _tick_labels(phi.layout.yaxis) == [str(i) for i in range(1, 9)]
    assert "r = 8" in phi.layout.yaxis.title.text and "r = 64" in phi.layout.xaxis.title.text
    heat = plots.delta_w_heatmap(np.ones((1536, 384)), title="ΔW L5.value at rank 8", max_side=128)
    assert len(heat.layout.title.text) <= 60 and "128 of 384" in heat.layout.xaxis.title.text


def test_delta_w_explorer_fits_a_laptop_and_orients_phi_like_the_printed_table(task):
    model = _trained(ll.LoRAConfig(r=8), task)  # as in notebook 04: the explorer's model has the larger r …
    other = _trained(ll.LoRAConfig(r=4), task, seed=1)  # … the other run the smaller one, which goes on the rows
    panel = lw.delta_w_explorer(model, task.val, other_model=other, eval_limit=16, warm_up=False)
    c, v = panel.controls, panel.views
    c["k"].value, c["approx"].value = 2, True
    name = panel.values["module"]
    small, large = analysis.lora_layers(other)[name].lora_A, analysis.lora_layers(model)[name].lora_A
    np.testing.assert_allclose(np.asarray(v["subspace"].data[0].z, dtype=float),
                               analysis.subspace_similarity_grid(small, large))  # φ(A4, A8): r = 4 on the rows
    assert "r = 4" in v["subspace"].layout.yaxis.title.text and "r = 8" in v["subspace"].layout.xaxis.title.text
    assert panel.state.subspace_names(name) == ("A (r = 4)", "A (r = 8)")
    for key, view in v.items():
        assert view.layout.width <= 480, key
        assert len(view.layout.title.text) <= 60, (key, view.layout.title.text)
    assert len(v["spectrum"].data[0].x) == 8 and v["spectrum"].layout.xaxis.range[1] <= 8.5  # r values, no more
    assert len(v["accuracy"].layout.xaxis.tickvals) <= 15
    # the answer beside the slider, and the figures k changes in the first row under them
    rows = [w for w in panel.children if isinstance(w, W.HBox)]
    assert any(c["k"] in row.children and panel.status in row.children for row in rows)
    assert panel.status not in panel.children and "k = 2: accuracy" in panel.status.value
    first_figures = next(row for row in rows if v["accuracy"].widget in row.children)
    assert v["spectrum"].widget in first_figures.children
    assert panel.values["accuracy_at_k"] == panel.state.accuracy[2] and not panel.errors


def test_long_titles_are_broken_into_lines_that_fit_the_projector_and_short_ones_are_left():
    """Plotly cuts a title off at the figure's edge; FigureView breaks it into lines and makes room for them."""
    FigureView, CHAR_WIDTH = figures.FigureView, figures.CHAR_WIDTH
    long = "Unseen questions vs number of training questions, one marker per seed"
    plots.lecture_theme(True)
    try:
        fig = go.Figure(layout=dict(title=dict(text=long), height=400, margin=dict(l=60, r=30, t=60, b=50),
                                    yaxis=dict(title="accuracy on the questions it never saw in training")))
        view = FigureView(fig, mode="static")
        layout = view.figure.layout
        lines = layout.title.text.split("<br>")
        assert len(lines) >= 2 and " ".join(lines) == long
        assert all(len(line) * CHAR_WIDTH * 26 <= layout.width for line in lines)  # the template's title size
        assert layout.margin.t > 60 and layout.height > 400  # room for the extra lines; the plot keeps its height
        assert "<br>" in layout.yaxis.title.text and layout.margin.l > 60
        again = FigureView(view.figure, mode="static").figure.layout  # a redraw does not break it twice
        assert again.title.text == layout.title.text
    finally:
        plots.lecture_theme(False)
    short = FigureView(go.Figure(layout=dict(title=dict(text="Training curve"), yaxis=dict(title="accuracy"))),
                       mode="static").figure.layout
    assert short.title.text == "Training curve" and short.yaxis.title.text == "accuracy"
