"""BitFit (Ben Zaken et al. 2022): train only the bias vectors of a frozen model.

Every linear layer computes W x + b and every LayerNorm ends with "+ b". BitFit trains the b's and
nothing else: in one BERT-style layer that is q, k, v, the attention output, both feed-forward layers
and the two LayerNorms, 4d + d_ffn + d + 2d numbers, about 0.1 % of the layer.

We keep the original module frozen and learn a *shift* s beside it, starting at zero:

    y = base(x) + s          s: (d_out,), zeros at init, so the model is unchanged at step 0

which is training the bias (b + s) without editing the base, so ``ll.remove`` puts it back bit for bit.
This file is a whole method: its module, config, planner and formula; ``registry.py`` has its row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import check_layers
from .metrics_formulas import ArchSpec
from .models import arch_for, layers_of
from .module import Wrapper
from .targets import Change, layer_ids, outermost, plain_names


class BiasShift(Wrapper):
    """A frozen module (kept at ``.base``) with a trainable shift added to its output."""

    method = "bitfit"

    def __init__(self, base: nn.Module, width: int):
        super().__init__(base)
        ref = next(base.parameters())
        self.shift = nn.Parameter(torch.zeros(width, device=ref.device, dtype=ref.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.shift  # (..., d_out) + (d_out,)


@dataclass(frozen=True)
class BitFitConfig:
    """BitFit: a trainable bias shift on every linear layer and LayerNorm of the chosen layers.

    layers   optional layer indices (None = every layer)
    """

    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_layers(self)


def _biased(layer: nn.Module) -> list[tuple[str, int]]:
    """(path, width) of every Linear and LayerNorm with a bias inside one layer, by the names they had before
    any method was added (another method's own layers, an adapter's down and up, are not BitFit's)."""
    out = []
    for real, path in plain_names(layer).items():
        m = layer.get_submodule(real)
        if isinstance(m, nn.Linear) and m.bias is not None:
            out.append((path, m.out_features))
        elif isinstance(m, nn.LayerNorm) and m.bias is not None:
            out.append((path, m.normalized_shape[-1]))
    return out


def plan(model: nn.Module, cfg: BitFitConfig) -> list[Change]:
    """A BiasShift around every biased Linear and LayerNorm of each chosen layer."""
    arch_for(model)  # an unsupported family gets the usual error
    changes = []
    for i in layer_ids(model, cfg.layers):
        for path, width in _biased(layers_of(model)[i]):
            parent, attr, base = outermost(model, i, path)
            changes.append(Change(parent, attr, BiasShift(base, width), base, i))
    return changes


def formula(spec: ArchSpec, cfg: BitFitConfig) -> int:
    """Per layer: q, k, v, attention output (4d), feed-forward in (d_ffn) and out (d), and the LayerNorms."""
    d = spec.d_model
    per_layer = 4 * d + spec.d_ffn + d + spec.layernorm_per_layer * d
    n = spec.n_layers if cfg.layers is None else len(cfg.layers)
    return n * per_layer
