"""Panel 5, the adapter switchboard: several task adapters on one frozen base, switched live.

``label_names`` and ``predictions_table`` are plain functions (no widgets); the panel calls
``ll.tasks.set_active``, ``ll.predict`` and ``ll.checksum`` and shows what they return.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as W
from torch import nn

from .. import checksum
from .. import tasks as named_tasks
from ..data import Task
from ..train import predict
from .panel import Panel, row
from .tables import html_table

EXAMPLES = (
    "I love this airline, the crew was wonderful",
    "my flight was delayed again and nobody helped, terrible service",
    "the government will raise taxes on small businesses next year",
    "the striker scored twice and won the cup final",
    "the new phone has a faster chip and a better camera",
)


def label_names(labels_by_task: Mapping | None, name: str, n: int) -> list[str]:
    """The words for task ``name``'s ``n`` labels, from its Task or its list of names; else "label 0", …"""
    given = (labels_by_task or {}).get(name)
    names = list(given.label_names if isinstance(given, Task) else given or [])
    return names if len(names) == n else [f"label {i}" for i in range(n)]


def predictions_table(texts: Sequence[str], labels: list[str], probs) -> tuple[str, list[tuple]]:
    """An HTML table of each text's predicted label and confidence, and the same as (text, label, p) tuples."""
    rows, out = [], []
    for text, p in zip(texts, probs):
        i = int(p.argmax())
        out.append((text, labels[i], float(p[i])))
        width = f"{100 * float(p[i]):.0f}px"
        bar = f"<span style='display:inline-block;background:#1f77b4;height:0.8em;width:{width}'></span>"
        rows.append([html.escape(text), f"<b>{html.escape(labels[i])}</b>", f"{100 * float(p[i]):.0f} % {bar}"])
    return html_table(["sentence", "prediction", "confidence"], rows), out


class Switchboard(Panel):
    """The switchboard panel: ``table`` shows the predictions, ``base`` the base checksum at every switch."""

    def __init__(self, model: nn.Module, labels_by_task: Mapping | None, texts: Sequence[str]):
        names = list(named_tasks.names(model))
        if not names:
            raise ValueError("switchboard needs a model with named tasks: ll.inject(model, cfg, name='sentiment') ...")
        self.model, self.labels_by_task = model, labels_by_task
        self.checksum0 = checksum(model)
        c = {"task": W.ToggleButtons(options=names, value=named_tasks.active_task(model), description="task"),
             "texts": W.Textarea(value="\n".join(texts), rows=max(len(texts), 3), continuous_update=False,
                                 description="sentences", layout=W.Layout(width="100%", max_width="640px")),
             "predict": W.Button(description="Predict", icon="play")}
        super().__init__("Adapter switchboard", "switchboard", c, {})
        self.table, self.base = W.HTML(), W.HTML()
        refresh = self.watch("switch", self.update, [c["task"], c["texts"]])
        c["predict"].on_click(lambda _: refresh())
        refresh()
        self.arrange(c["task"], row(c["texts"], c["predict"]), self.table, self.base)

    def update(self) -> None:
        """Activate the chosen task, predict every sentence, check the base checksum."""
        c, model = self.controls, self.model
        named_tasks.set_active(model, c["task"].value)
        lines = [t.strip() for t in c["texts"].value.splitlines() if t.strip()]
        if not lines:
            raise ValueError("type at least one sentence (one per line)")
        labels = label_names(self.labels_by_task, c["task"].value, model.config.num_labels)
        self.table.value, preds = predictions_table(lines, labels, predict(model, lines))
        now = checksum(model)
        same = now == self.checksum0
        self.base.value = f"base checksum <code>{now}</code> " + ("✓ unchanged" if same else "✗ CHANGED")
        self.values = {"active": c["task"].value, "predictions": preds, "checksum": now,
                       "checksum_unchanged": same, "labels": labels}


def switchboard(model: nn.Module, tasks: Mapping[str, Task | Sequence[str]] | None = None,
                texts: Sequence[str] = EXAMPLES) -> Switchboard:
    """Several task adapters on one frozen base: pick a task, see its predictions on sentences you type.

    ``model`` carries named tasks (``ll.inject(model, cfg, name="topic", num_labels=5)``); ``tasks`` maps
    each name to its Task (or its label names) to print labels as words. The base checksum is shown at
    every switch: it never changes, because the tasks share one frozen base.
    """
    return Switchboard(model, tasks, texts)
