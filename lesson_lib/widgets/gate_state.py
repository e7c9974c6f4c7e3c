"""What the gate board knows, without any widget: a UniPELT model's gates and the accuracy they give.

``GateState(model, split)`` finds every gate, remembers what each layer's gates were set to when it was
built (None: learned), and ``apply(chosen)`` sets them (a number by hand, None as learned) and measures.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ..data import Split
from ..gates import gates_of, layer_values, set_gate_values
from ..models import layers_of
from ..train import evaluate


class GateState:
    """The gates of ``model`` ({method: per layer, its gates}) and a fixed subset of ``split`` to evaluate on."""

    def __init__(self, model: nn.Module, split: Split, eval_limit: int = 64):
        self.model = model
        self.subset = split.subset(eval_limit) if len(split) > eval_limit else split
        self.gates = gates_of(model, layers_of(model))
        if not self.gates:
            raise ValueError("this model has no gates; inject with gates=ll.GateConfig(...) (UniPELT)")
        # what each layer's gates were set to (a layer's gates are always set alike); None: learned
        self.original = {m: [gs[0].fixed if gs else None for gs in layers] for m, layers in self.gates.items()}

    def measure(self) -> tuple[float, dict[str, list[float]]]:
        """Accuracy on the fixed subset and each method's mean gate per layer, from one forward pass
        (the whole subset is one batch, so every gate's ``last`` value covers all of it)."""
        acc = evaluate(self.model, self.subset, batch_size=len(self.subset))["accuracy"]
        return acc, layer_values(self.gates)

    def chosen(self, by_hand: Mapping[str, bool], values: Mapping[str, float]) -> dict:
        """Each method's setting: ``values[m]`` where ``by_hand[m]``, else what it was when this state was built."""
        return {m: values[m] if by_hand[m] else self.original[m] for m in self.gates}

    def apply(self, chosen: Mapping) -> tuple[float, dict[str, list[float]]]:
        """Set every method's gates to ``chosen[m]`` (a number in [0, 1], a list per layer, or None: learned);
        return the accuracy and the gates now."""
        set_gate_values(self.gates, **chosen)
        return self.measure()


def mean_gate(values: list[float]) -> float:
    """The mean of a method's per-layer gate values, skipping NaN (layers without the method), to 2 places."""
    seen = [v for v in values if v == v]
    return round(sum(seen) / max(len(seen), 1), 2)
