"""Panel 2, live training: a training curve that grows, a Stop button, a results table.

The run itself is ``lesson_lib.train``; this panel only starts it (in a thread, so the notebook stays
free to hear Stop), redraws from the ``History`` a training callback hands it, and logs the finished run
into its ``RunLog`` (``runs.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import ipywidgets as W
from torch import nn

from .. import fast, plots
from .. import tasks as named_tasks
from ..config import TrainConfig
from ..data import Task
from ..train import train
from .counts import describe
from .figures import FigureView
from .panel import Panel, row, slider
from .runs import RunLog, run_row


def scaled_eval_every(cfg: TrainConfig, steps: int) -> int:
    """Evaluate as many times in ``steps`` steps as ``cfg`` does in its own (so more steps ≠ more evaluations)."""
    if not cfg.eval_every:
        return 0
    points = max(1, cfg.steps // cfg.eval_every)
    return max(1, steps // points)


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


def _controls(names: list[str], cfg: TrainConfig, n_layers: int, top: int | None) -> dict[str, W.Widget]:
    lrs = sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, cfg.lr})
    return {"method": W.Dropdown(options=names, description="method"),
            # 0 stands for "all layers" (a Dropdown shows an empty box for the value None)
            "layers": W.Dropdown(options=[("all layers", 0)] + [(f"top {k} of {n_layers} (fast)", k)
                                                                 for k in range(1, n_layers)],
                                 value=top or 0, description="trains in", disabled=n_layers < 2,
                                 layout=W.Layout(width="230px")),
            "lr": W.Dropdown(options=[(f"{x:g}", x) for x in lrs], value=cfg.lr, description="lr",
                             layout=W.Layout(width="160px")),
            "steps": slider("steps", cfg.steps, 1, max(4 * cfg.steps, 500), cheap=False),
            "train": W.Button(description="Train", button_style="success", icon="play"),
            "stop": W.Button(description="Stop", button_style="danger", icon="stop", disabled=True),
            "progress": W.IntProgress(value=0, min=0, max=cfg.steps, description="progress")}


class TrainingPanel(Panel):
    """Live training: Train starts a run on a fresh model, Stop ends it cleanly after the current step.

    With ``background=True`` the run happens in a thread, so the notebook stays responsive and the Stop
    button is heard; ``start(block=True)`` trains in the calling thread instead (scripts, tests).
    ``last_model``, ``last_history`` and ``last_config`` keep the latest run for the next cells;
    ``runlog`` is the RunLog its runs go into.
    """

    def __init__(self, factories: Mapping[str, Callable[..., nn.Module]], task: Task, cfg: TrainConfig,
                 log: RunLog, background: bool, redraw_every: float, top: int | None = None):
        n_layers = min((getattr(f, "n_layers", 0) for f in factories.values()), default=0)
        if top is not None and not 1 <= top < max(n_layers, 1):
            raise ValueError(f"top={top!r}: choose None (all layers) or 1 … {n_layers - 1} top layers; "
                             "the factories must come from widgets.fresh")
        c = _controls(list(factories), cfg, n_layers, top)
        views = {"curve": FigureView(plots.training_curves([], [], total_steps=cfg.steps)),
                 "scatter": FigureView(plots.accuracy_vs_params(log.runs))}
        super().__init__("Live training", "live-training", c, views)
        self.factories, self.task, self.cfg, self.runlog = factories, task, cfg, log
        self.background, self.redraw_every, self.draws = background, redraw_every, 0
        self.stop_requested = threading.Event()
        self.thread: threading.Thread | None = None
        self.last_model: nn.Module | None = None
        self.last_history = None
        self.last_config: TrainConfig | None = None
        self.label: str = c["method"].value
        self.table = W.HTML(log.to_html())
        c["train"].on_click(self.guard("train", lambda _: self.start()))
        c["stop"].on_click(self.guard("stop", lambda _: self.stop()))
        log.on_change(self._log_changed)
        self.arrange(row(c["method"], c["layers"], c["lr"]), row(c["steps"], c["train"], c["stop"]),
                     row(c["progress"], self.status),  # the answer next to the buttons that start it
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
        top, steps, lr = self.controls["layers"].value or None, self.controls["steps"].value, self.controls["lr"].value
        where = "all layers" if top is None else f"top {top}"
        label = f"{self.controls['method'].value} · {where} · {steps} steps · lr {lr:g}"
        self.label = label
        # "top k (fast)" asks train() for the fast path; "all layers" trains every layer, the plain loop
        cfg = replace(self.cfg, steps=steps, lr=lr, progress=False, fast=top is not None,
                      eval_every=scaled_eval_every(self.cfg, steps))
        try:
            self.say(f"building a fresh model for {label}…")
            factory = self.factories[self.controls["method"].value]
            model = factory() if top is None else factory(top=top)
            self.controls["progress"].max, self.controls["progress"].value = cfg.steps, 0
            self.say(f"training {label} for {cfg.steps} steps ({fast.describe(model) if cfg.fast else 'plain loop'})…")
            history = train(model, self.task, cfg, callbacks=[_LiveCallback(self)])
            self.last_model, self.last_history, self.last_config = model, history, cfg
            if len(self.factories) == 1 and label.startswith("model"):  # unnamed factory: name the run by its method
                label = (" + ".join(describe(c) for c in named_tasks.configs_of(model)) or "model") + label[5:]
            self.runlog.add(run_row(label, model, history))
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
                                    title=f"Training {self.label.split(' · ')[0]}")  # the rest: status
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


def live_training(model_factory: Callable[[], nn.Module] | Mapping[str, Callable[[], nn.Module]], task: Task,
                  cfg: TrainConfig | None = None, log: RunLog | None = None, background: bool = True,
                  redraw_every: float = 0.5, top: int | None = None) -> TrainingPanel:
    """A training curve that grows while ``train()`` runs, a Stop button, and a table of every run.

    ``model_factory`` returns a fresh model with its method injected (see ``fresh``); a dict of them
    ({"LoRA r=8": ..., "adapter m=64": ...}) adds a method menu. Runs go into ``log`` (a new RunLog of
    this panel's own by default; give two panels the same RunLog to share one table and one plot), which
    feeds the results table and the accuracy-vs-parameters plot. The curve is redrawn at most every
    ``redraw_every`` seconds (and at each evaluation).

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
    return TrainingPanel(factories, task, cfg, RunLog() if log is None else log, background, redraw_every, top)
