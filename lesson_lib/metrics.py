"""Counting parameters: measured on a real model, and by formula on paper (``metrics_formulas``).

``count_params(model)`` walks the model once and sorts every parameter by owner: the frozen base,
the classifier head, each method (lora, adapter, prefix, prompt, gate) and, when Houlsby-style
training unfreezes them, the LayerNorms. Shared parameters are counted once (PEFT's printout counts
the classifier head twice). ``formula_for(model)`` gives the analytic count of what is injected,
so a lesson can print "measured == formula".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from . import surgery
from .metrics_formulas import *  # noqa: F403 - the calculator is part of this module's public face
from .metrics_formulas import ArchSpec, formula_params, gate_params_for, head_params, spec_from_hf_config
from .models import arch_for


@dataclass
class ParamCount:
    """Totals, and the trainable parameters split by owner and by layer."""

    total: int
    trainable: int
    by_method: dict[str, int] = field(default_factory=dict)
    by_layer: dict[int, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        """Trainable parameters as a fraction of all parameters."""
        return self.trainable / self.total

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v:,}" for k, v in self.by_method.items())
        return f"trainable {self.trainable:,} of {self.total:,} ({100 * self.share:.3f} %): {parts}"


def count_params(model: nn.Module) -> ParamCount:
    """Measure ``model``: total and trainable parameters, trainable ones by method and by layer."""
    arch = arch_for(model)
    kinds = surgery.classify_parameters(model)
    layer_rx = re.compile(re.escape(arch.layers) + r"\.(\d+)\.")
    total = trainable = 0
    by_method: dict[str, int] = {}
    by_layer: dict[int, int] = {}
    for name, p in model.named_parameters():  # shared parameters appear once
        total += p.numel()
        if not p.requires_grad:
            continue
        trainable += p.numel()
        by_method[kinds[name]] = by_method.get(kinds[name], 0) + p.numel()
        m = layer_rx.match(name)
        if m:
            by_layer[int(m.group(1))] = by_layer.get(int(m.group(1)), 0) + p.numel()
    return ParamCount(total, trainable, by_method, dict(sorted(by_layer.items())))


def spec_of(model: nn.Module) -> ArchSpec:
    """The ArchSpec (layers, widths, labels) of a loaded model."""
    return spec_from_hf_config(model.config)


def formula_for(model: nn.Module) -> int:
    """Analytic trainable count of what is injected into ``model`` (methods + gates + head).

    With nothing injected and nothing frozen it is the full model (full fine-tuning).
    """
    configs = surgery.configs_of(model)
    spec, d = spec_of(model), model.config.hidden_size
    head = head_params(spec) + (arch_for(model).head_linears - 1) * (d * d + d)  # RoBERTa/DistilBERT: d → d → n
    if not configs:
        frozen = any(not p.requires_grad for p in model.parameters())
        return head if frozen else formula_params(spec, "full")
    gated = {m.method for m in model.modules()  # learned gates only; fixed gates have no parameters
             if isinstance(getattr(m, "gate", None), surgery.Gate) and m.gate.linear is not None}
    gates = sum(gate_params_for(spec, c) for c in configs if surgery.METHOD_OF[type(c)] in gated)
    return formula_params(spec, configs) + gates + head
