"""Panel 4, the gate board: UniPELT's gates as a heatmap, and the accuracy when you set them by hand.

The gates and the measuring live in ``gate_state.GateState`` (no widgets); this file wires the sliders.
"""

from __future__ import annotations

import ipywidgets as W
from torch import nn

from .. import plots
from ..data import Split
from .figures import FigureView
from .gate_state import GateState, mean_gate
from .panel import Panel, row, slider


class GateBoard(Panel):
    """The gate board panel; ``state`` is its ``GateState``, ``quiet`` mutes updates during a reset."""

    def __init__(self, state: GateState):
        self.state = state
        self.quiet = False
        acc, learned = state.measure()
        c: dict[str, W.Widget] = {}
        for m, values in learned.items():
            c[f"{m}_value"] = slider(m, mean_gate(values), 0.0, 1.0, cheap=False, kind=W.FloatSlider, step=0.05)
            c[f"{m}_by_hand"] = W.Checkbox(value=False, description="by hand", indent=False,
                                           layout=W.Layout(width="120px"))
        c["reset"] = W.Button(description="Reset to learned", icon="undo")
        super().__init__("Gate board", "gate-board", c, {"gates": FigureView(plots.gate_heatmap(learned))})
        self.values = {"learned": learned, "gates": learned, "learned_accuracy": acc, "accuracy": acc}
        for m in state.gates:
            c[f"{m}_value"].observe(self.guard("gate", lambda _, m=m: self._slid(m)), names="value")
            c[f"{m}_by_hand"].observe(self.guard("gate", lambda _: self.update()), names="value")
        c["reset"].on_click(self.guard("reset", lambda _: self.reset()))
        rows = [row(c[f"{m}_value"], c[f"{m}_by_hand"]) for m in state.gates]
        self.arrange(*rows, c["reset"], self.views["gates"].widget)

    def update(self) -> None:
        """Set every gate (by hand, or as learned), evaluate on the fixed subset, redraw the heatmap."""
        if self.quiet:
            return
        c, methods = self.controls, self.state.gates
        chosen = self.state.chosen({m: c[f"{m}_by_hand"].value for m in methods},
                                   {m: c[f"{m}_value"].value for m in methods})
        acc, now = self.state.apply(chosen)
        self.views["gates"].show(plots.gate_heatmap(now, title="Gates now (0 = off, 1 = on)"))
        learned = self.values["learned_accuracy"]
        self.values |= {"gates": now, "accuracy": acc, "chosen": chosen}
        self.say(f"accuracy {100 * acc:.1f} % (learned gates {100 * learned:.1f} %, "
                 f"change {100 * (acc - learned):+.1f} points, n = {len(self.state.subset)})")

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
            for m in self.state.gates:
                self.controls[f"{m}_by_hand"].value = False
        finally:
            self.quiet = False
        self.update()


def gate_board(model: nn.Module, split: Split, eval_limit: int = 64) -> GateBoard:
    """A UniPELT model's gates as a heatmap (method × layer), and sliders that set each method's gate by hand.

    Moving a slider fixes that method's gate in every layer and shows at once the accuracy on a fixed
    subset of ``split`` (``eval_limit`` examples); "by hand" off hands the gate back to what was learned.
    """
    return GateBoard(GateState(model, split, eval_limit))
