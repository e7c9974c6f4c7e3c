"""The results of training runs: a ``RunLog`` and the row each finished run adds to it. No widgets here.

A ``RunLog`` belongs to whoever makes it: each ``live_training`` panel makes its own unless it is given
one, and panels given the same RunLog share one results table and one accuracy-vs-parameters plot.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from .. import count_params
from .. import tasks as named_tasks
from ..plots import percent
from .counts import method_name
from .tables import html_table


@dataclass
class RunLog:
    """Every training run logged here: method, trainable parameters, accuracy, seconds.

    Panels that share one RunLog share one results table and one accuracy-vs-parameters plot:
    ``on_change(fn)`` registers ``fn(log)``, called after every ``add``.
    """

    runs: list[dict] = field(default_factory=list)
    listeners: list[Callable[[RunLog], None]] = field(default_factory=list, repr=False, compare=False)

    def add(self, run: dict) -> None:
        """Log a run; a label already in the log gets " (2)", " (3)", … so every row can be told apart."""
        run = dict(run)
        taken, label, n = {r["label"] for r in self.runs}, run["label"], 2
        while run["label"] in taken:
            run["label"], n = f"{label} ({n})", n + 1
        self.runs.append(run)
        for fn in list(self.listeners):
            fn(self)

    def on_change(self, fn: Callable[[RunLog], None]) -> None:
        self.listeners.append(fn)

    def to_html(self) -> str:
        rows = [[html.escape(r["label"]), f"{r['trainable']:,}", percent(r["share"]),
                 f"{100 * r['accuracy']:.1f} %", f"{r['seconds']:.1f}", r["steps"], r["stopped"]] for r in self.runs]
        header = ["run", "trainable", "share", "val. acc.", "s", "steps", "ended"]
        return html_table(header, rows) if rows else "<i>no runs yet</i>"


def run_row(label: str, model: nn.Module, history) -> dict:
    """The row of a finished run: what trained (its methods, or "head" / "full"), how much, how well, how long."""
    count = count_params(model)
    methods = [method_name(c) for c in named_tasks.configs_of(model)]
    frozen = any(not p.requires_grad for p in model.parameters())
    method = "+".join(methods) or ("head" if frozen else "full")
    final = history.final or {"accuracy": float("nan")}
    return {"label": label, "method": method, "trainable": count.trainable, "total": count.total,
            "share": count.share, "accuracy": final["accuracy"], "seconds": history.seconds,
            "steps": len(history.steps), "stopped": history.stopped}
