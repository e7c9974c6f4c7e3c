"""Bottleneck adapters (Houlsby et al. 2019): a small layer with a residual, inserted into a frozen model.

    adapter(h) = h + up(act(down(h)))      down: d → m,  up: m → d,  m ≪ d

Houlsby placement puts one adapter after the attention output projection and one after the
feed-forward output of every layer, before each residual + LayerNorm; Pfeiffer placement keeps only
the feed-forward one. Each adapter costs 2·d·m + d + m parameters.

Initialisation: with ``init="zeros"`` the up-projection starts at zero, so every adapter is exactly the
identity and the model is unchanged at step 0. ``init="normal"`` is the paper's near-identity choice
(both projections ~ N(0, 1e-2)), which is close to, but not exactly, the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from .module import MethodModule, Wrapper

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


class Adapter(MethodModule):
    """down → nonlinearity → up, plus the residual. ``gate`` (UniPELT) scales the adapter's output."""

    method = "adapter"

    def __init__(self, d: int, bottleneck: int, activation: str = "gelu", init: str = "zeros"):
        super().__init__()
        if not isinstance(bottleneck, int) or bottleneck <= 0:
            raise ValueError(f"adapter bottleneck must be a positive integer, got {bottleneck!r}")
        self.down = nn.Linear(d, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, d)
        self.gate: nn.Module | None = None
        if init == "zeros":
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)
        else:
            for lin in (self.down, self.up):
                nn.init.normal_(lin.weight, std=1e-2)
                nn.init.zeros_(lin.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.up(self.act(self.down(h)))  # (B, T, d) → (B, T, m) → (B, T, d)
        if self.gate is not None:
            out = out * self.gate(h)  # (B, 1, 1)
        return h + out


class AdapterAfter(Wrapper):
    """Run the frozen module at ``.base`` (an output projection), then an adapter on its output."""

    method = "adapter"

    def __init__(self, base: nn.Module, adapter: Adapter):
        super().__init__(base)
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(x))


def adapter_after(base: nn.Module, d: int, bottleneck: int, activation: str = "gelu",
                  init: str = "zeros") -> AdapterAfter:
    """Wrap ``base`` (a projection with d outputs, maybe already LoRA-wrapped) so an adapter follows it."""
    ref = next(base.parameters())
    adapter = Adapter(d, bottleneck, activation, init).to(ref.device, ref.dtype)
    return AdapterAfter(base, adapter)
