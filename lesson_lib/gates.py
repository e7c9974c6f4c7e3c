"""UniPELT gates (Mao et al. 2022): each method's contribution in each layer times its own gate g.

    g = mean over tokens of sigmoid(W_g h + b_g)        one Linear(d, 1) per method per layer

The gate sees the hidden states entering the method (LoRA: the projection's input; adapter: the
adapter's input; prefix: the attention's input) and scales what the method adds: LoRA's update,
the adapter's output, the attention mass given to the prefix. g = 0 switches a branch off exactly,
g = 1 leaves it as it is. ``set_gates`` fixes gates by hand, so a lecturer can switch a method off
in a trained model and watch the accuracy drop.
"""

from __future__ import annotations

import torch
from torch import nn

from .module import MethodModule


class Gate(MethodModule):
    """sigmoid(Linear(h)) averaged over tokens → (B, 1, 1); or a fixed value set by hand."""

    method = "gate"

    def __init__(self, d: int, learned: bool = True, value: float = 1.0):
        super().__init__()
        self.linear = nn.Linear(d, 1) if learned else None
        self.fixed: float | None = None if learned else float(value)
        self.last: torch.Tensor | None = None  # the last gate values, (B,), for read_gates

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.fixed is not None or self.linear is None:
            value = 1.0 if self.fixed is None else self.fixed
            g = h.new_full((h.shape[0], 1, 1), value)
        else:
            g = torch.sigmoid(self.linear(h)).mean(dim=1, keepdim=True)  # (B, T, d) → (B, T, 1) → (B, 1, 1)
        self.last = g.detach().flatten()
        return g


def gates_of(model: nn.Module, layers: list[nn.Module]) -> dict[str, list[list[Gate]]]:
    """{method: [gates of layer 0, gates of layer 1, …]}, each a list (usually one gate; two when a method's
    targets in that layer read inputs of two widths, e.g. LoRA on query (d) and on ffn_output (4d))."""
    out: dict[str, list[list[Gate]]] = {}
    for i, layer in enumerate(layers):
        for module in layer.modules():
            gate = getattr(module, "gate", None)
            if isinstance(gate, Gate):
                per_layer = out.setdefault(module.method, [[] for _ in layers])[i]
                if not any(g is gate for g in per_layer):  # a gate shared by query and value counts once
                    per_layer.append(gate)
    return out


def layer_values(gates: dict[str, list[list[Gate]]]) -> dict[str, list[float]]:
    """Each method's gate value per layer after the last forward pass (the mean over the layer's gates and
    the batch); NaN for a layer without the method."""
    def value(gs: list[Gate]) -> float:
        seen = [float(g.last.mean()) for g in gs if g.last is not None]
        return sum(seen) / len(seen) if seen else float("nan")

    return {m: [value(gs) for gs in layers] for m, layers in gates.items()}


def set_gate_values(gates: dict[str, list[list[Gate]]], **values) -> None:
    """Fix gates by hand: ``adapter=0.0`` (every layer) or ``lora=[1, 1, 0, 0, 1, 1]`` (one per layer).

    ``None`` hands a learned gate back to its Linear layer. Every value is checked before any gate changes.
    """
    plan = []
    for method, value in values.items():
        if method not in gates:
            raise ValueError(f"no gated {method!r} in this model; gated methods: {sorted(gates)}")
        per_layer = value if isinstance(value, (list, tuple)) else [value] * len(gates[method])
        if len(per_layer) != len(gates[method]):
            raise ValueError(f"{method}: give one value or {len(gates[method])} values (one per layer)")
        for layer_gates, v in zip(gates[method], per_layer):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0):
                raise ValueError(f"gate values must be numbers in [0, 1] (or None: as learned), got {v!r}")
            if v is None and any(g.linear is None for g in layer_gates):
                raise ValueError(f"the {method} gates were made with learned=False; give a number")
            plan += [(g, v) for g in layer_gates]
    for gate, v in plan:
        gate.fixed = None if v is None else float(v)
