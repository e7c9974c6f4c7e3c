"""The parameter explorer's numbers: which methods the controls describe, and what they cost.

Two independent counts, so the panel can show that they agree:

* **measured**: the methods are injected into a *stand-in* of the student's model, built on PyTorch's
  ``meta`` device (``stand_in(model)``: the same modules and shapes, but no numbers, so no memory and no
  time), counted with ``count_params`` and taken out again. The student's model is never touched;
* **formula**: ``lesson_lib.metrics`` (``formula_params``, ``memory_report``), before any model exists, for
  this model's shape and for a bigger architecture (GPT-3).

``explorer_numbers(here, values, twin)`` gives everything the explorer shows for the control values
``values`` (control name → value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

import torch
from torch import nn

from .. import metrics
from ..config import AdapterConfig, LoRAConfig, PrefixConfig, PromptConfig
from ..surgery import inject, remove

SPECS: Mapping[str, metrics.ArchSpec] = MappingProxyType(
    {"MiniLM-L6": metrics.MINILM_L6, "BERT-base": metrics.BERT_BASE, "GPT-3 175B": metrics.GPT3_175B})
TARGETS = ("query", "key", "value", "output", "intermediate", "ffn_output")
METHODS = ("lora", "adapter", "prefix", "prompt")
_ATTENTION = frozenset({"query", "key", "value", "output"})  # LoRA targets that sit before a Houlsby adapter in a layer


def explorer_configs(v: Mapping) -> list:
    """The method configs that the explorer's control values describe (an empty list: full fine-tuning)."""
    cfgs = []
    if v["lora"]:
        targets = tuple(t for t in TARGETS if v[f"target_{t}"])
        cfgs.append(LoRAConfig(r=v["r"], alpha=float(v["alpha"]), targets=targets))
    if v["adapter"]:
        cfgs.append(AdapterConfig(bottleneck=v["bottleneck"]))
    if v["prefix"]:
        cfgs.append(PrefixConfig(length=v["prefix_length"]))
    if v["prompt"]:
        cfgs.append(PromptConfig(length=v["prompt_length"]))
    return cfgs


def method_name(cfg) -> str:
    """"lora", "adapter", "prefix" or "prompt": the name ``count_params`` files a method's parameters under."""
    return type(cfg).__name__.removesuffix("Config").lower()


def describe(cfg) -> str:
    """A short label for a config: "LoRA r=8 on query,value", "adapter m=64", "prefix P=10"."""
    if isinstance(cfg, LoRAConfig):
        return f"LoRA r={cfg.r} on {','.join(cfg.targets)}"
    if isinstance(cfg, AdapterConfig):
        return f"adapter m={cfg.bottleneck}"
    if isinstance(cfg, PrefixConfig):
        return f"prefix P={cfg.length}"
    return f"prompt P={cfg.length}"


def by_method(spec: metrics.ArchSpec, configs: Sequence) -> dict[str, int]:
    """Trainable parameters by owner, as ``count_params(model).by_method`` files them for a model of shape
    ``spec`` with ``configs`` injected; no configs: full fine-tuning (base, LayerNorms, head)."""
    head = metrics.head_params(spec)
    layernorm = metrics.layernorm_params(spec)
    if not configs:
        return {"base": metrics.full_params(spec) - layernorm - head, "layernorm": layernorm, "head": head}
    counts = {"head": head}
    for c in configs:  # the LayerNorms an adapter unfreezes are counted apart from it, as count_params does
        if isinstance(c, AdapterConfig) and c.train_layernorm:
            c, counts["layernorm"] = replace(c, train_layernorm=False), layernorm
        counts[method_name(c)] = metrics.formula_params(spec, c)
    return {k: counts[k] for k in _measured_order(configs) if k in counts}


def _measured_order(configs: Sequence) -> tuple[str, ...]:
    """The order in which ``count_params`` meets the owners in a BERT layer, so the bars keep their order:
    the prefix (inside self-attention), LoRA on an attention matrix, the adapter after the attention output,
    LoRA on the feed-forward only, then the head; the soft prompt's module is registered last."""
    lora = next((c for c in configs if isinstance(c, LoRAConfig)), None)
    adapter = next((c for c in configs if isinstance(c, AdapterConfig)), None)
    lora_late = lora is not None and adapter is not None and adapter.placement == "houlsby" \
        and not _ATTENTION & set(lora.targets)
    middle = ("adapter", "layernorm", "lora") if lora_late else ("lora", "adapter", "layernorm")
    return ("prefix", *middle, "head", "prompt")


def stand_in(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s architecture on the ``meta`` device: shapes without numbers (costs no memory)."""
    with torch.device("meta"):
        return type(model)(model.config)


def measure(twin: nn.Module, configs: Sequence) -> tuple[metrics.ParamCount, int]:
    """Inject ``configs`` into the stand-in, count what is there (and the formula for it), take them out.

    No configs: full fine-tuning, every parameter of the stand-in trains."""
    if not configs:
        return metrics.count_params(twin), metrics.formula_for(twin)
    inject(twin, list(configs))
    try:
        return metrics.count_params(twin), metrics.formula_for(twin)
    finally:
        remove(twin)


def explorer_numbers(here: metrics.ArchSpec, v: Mapping, twin: nn.Module | None = None) -> dict:
    """Everything the explorer shows for the control values ``v``, on a model of shape ``here`` and on
    ``SPECS[v["spec"]]``: trainable and total counts, counts by method, memory at ``v["bytes"]`` per number.

    "measured_…" is this model, counted on ``twin`` (its stand-in, see ``stand_in``; without one the formula
    stands in for it), "formula_trainable" the formula for this model, "spec_…" the chosen architecture.
    """
    cfgs = explorer_configs(v)
    spec, b = SPECS[v["spec"]], v["bytes"]
    mine = metrics.memory_report(here, cfgs or "full", bytes_per_param=b)
    if twin is not None:
        counted, formula = measure(twin, cfgs)
        measured = {"measured_trainable": counted.trainable, "measured_total": counted.total,
                    "measured_by_method": counted.by_method, "formula_trainable": formula}
    else:
        measured = {"measured_trainable": mine.trainable, "measured_total": mine.total,
                    "measured_by_method": by_method(here, cfgs), "formula_trainable": mine.trainable}
    report = metrics.memory_report(spec, cfgs or "full", bytes_per_param=b)
    per_method = {method_name(c): metrics.formula_params(spec, c) for c in cfgs}
    if cfgs and metrics.head_params(spec):
        per_method["head"] = metrics.head_params(spec)
    memory = {"optimizer": mine.optimizer_bytes, "training": mine.training_bytes, "checkpoint": mine.checkpoint_bytes}
    share = measured["measured_trainable"] / measured["measured_total"]
    return {"configs": cfgs, **measured, "share": share, "memory": memory, "spec": spec.name,
            "spec_trainable": report.trainable, "spec_total": report.total, "spec_by_method": per_method,
            "spec_report": report}
