"""Counting parameters: measured on a real model, and by formula on paper.

* ``count_params(model)`` walks the model once and sorts every parameter by owner: the frozen base,
  the classifier head, each method (lora, adapter, prefix, prompt, gate, …) and, when Houlsby-style
  training unfreezes them, the LayerNorms. Shared parameters are counted once (PEFT's printout counts
  the classifier head twice).
* ``formula_params(spec, cfg)`` gives the count on paper, before any model is built, from the method's
  formula (``metrics_formulas``: one function per method, each in its registry row); ``formula_for(model)``
  gives it for what is injected, so a lesson can print "measured == formula".
* ``memory_report(spec, cfg)`` turns counts into the bytes a GPU must hold: the "Green AI" case for PEFT.
* The architectures (``GPT3_175B``, ``BERT_BASE``, ``MINILM_L6``) and the LoRA paper's Table 4
  (``gpt3_table4``, ``format_table4``) come from ``metrics_formulas``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from . import tasks
from .gates import Gate
from .metrics_formulas import (
    BERT_BASE,
    GPT3_175B,
    GPT3_TABLE4,
    MINILM_L6,
    PRESETS,
    ArchSpec,
    bias_params,
    format_table4,
    full_params,
    gate_params,
    gate_params_for,
    gpt3_table4,
    head_params,
    layernorm_params,
    spec_from_hf_config,
)
from .models import arch_for
from .owners import classify_parameters
from .registry import config_types, method_of

__all__ = [
    "BERT_BASE", "GPT3_175B", "GPT3_TABLE4", "MINILM_L6", "PRESETS", "ArchSpec", "MemoryReport", "ParamCount",
    "bias_params", "count_params", "format_table4", "formula_for", "formula_params", "full_params", "gate_params",
    "gpt3_table4", "head_params", "memory_report", "noise_band", "spec_of",
]


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
    kinds = classify_parameters(model)
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


def noise_band(accuracy: float, n: int) -> float:
    """How far apart two single runs' test accuracies near ``accuracy`` can land by chance alone (about 95 %).

    Each accuracy on n test examples has a standard error of √(p(1−p)/n); the difference of two independent
    ones √(2p(1−p)/n); twice that is the band: 2·√(2p(1−p)/n). On 1,000 tweets at 88 % it is ±2.9 points, on
    300 BBC articles at 95 % ±3.6. A gap inside the band is a tie, not a win. (Comparing one model with itself,
    a branch on and off, on the same examples is a paired comparison whose band is smaller: this one is
    conservative there.)
    """
    if not 0.0 <= accuracy <= 1.0 or not isinstance(n, int) or n < 1:
        raise ValueError(f"noise_band needs an accuracy in [0, 1] and a number of test examples ≥ 1, "
                         f"got {accuracy!r} and {n!r}")
    return 2 * (2 * accuracy * (1 - accuracy) / n) ** 0.5


def seed_summary(accuracies: list[float]) -> dict:
    """Several seeds of one run: their mean, lowest, highest and spread (highest − lowest)."""
    if not accuracies:
        raise ValueError("seed_summary needs at least one accuracy")
    lo, hi = min(accuracies), max(accuracies)
    return {"mean": sum(accuracies) / len(accuracies), "low": lo, "high": hi, "spread": hi - lo,
            "seeds": len(accuracies)}


def seed_verdict(a: list[float], b: list[float]) -> str:
    """"a", "b" or "tie": which of two methods is better, judged over several seeds each.

    A method wins only when its mean beats the other's by more than the larger of the two spreads (the distance
    a seed alone moved either method); anything closer is a tie. With fewer than two seeds on either side there
    is no spread to compare with, so it is a tie too: one run per method cannot name a winner.
    """
    if len(a) < 2 or len(b) < 2:
        return "tie"
    sa, sb = seed_summary(a), seed_summary(b)
    gap = sa["mean"] - sb["mean"]
    if abs(gap) <= max(sa["spread"], sb["spread"]):
        return "tie"
    return "a" if gap > 0 else "b"


def judge(a: Sequence[float], b: Sequence[float], test_size: int) -> tuple[str, str]:
    """Which of two results is better, "a", "b" or "tie", and the yardstick it was judged by, in words.

    ``a`` and ``b`` are test accuracies, one per seed. With at least two seeds on each side the gap must beat
    the seeds' range (``seed_verdict``). With a single run on either side there is no range to compare with,
    so the gap must beat the noise of single runs on ``test_size`` test examples (``noise_band``)."""
    if not a or not b:
        raise ValueError("judge needs at least one accuracy on each side")
    if min(len(a), len(b)) >= 2:
        spread = max(seed_summary(list(a))["spread"], seed_summary(list(b))["spread"])
        return seed_verdict(list(a), list(b)), f"the seeds' range of {100 * spread:.1f} points"
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    band = noise_band((mean_a + mean_b) / 2, test_size)
    gap = mean_a - mean_b
    outcome = "tie" if abs(gap) <= band else "a" if gap > 0 else "b"
    return outcome, f"the noise of single runs (±{100 * band:.1f} points on {test_size:,} test examples)"


def against_best(groups: Mapping[str, Sequence[float]], judge: Callable[[list, list], str] = seed_verdict
                 ) -> tuple[str, list[str], list[str]]:
    """The method with the highest mean accuracy, the methods it beats, and the methods it ties with.

    ``groups``: {method: test accuracies, one per seed}. Highest mean is not the same as best: the leader is
    compared with every other method by ``judge`` (``seed_verdict`` unless you pass your own), and only a
    method it beats by more than the seeds' spread counts as beaten."""
    if not groups:
        raise ValueError("against_best needs at least one method with its accuracies")
    means = {m: sum(acc) / len(acc) for m, acc in groups.items()}
    best = max(means, key=means.get)
    outcome = {m: judge(list(groups[best]), list(acc)) for m, acc in groups.items() if m != best}
    return best, [m for m, v in outcome.items() if v == "a"], [m for m, v in outcome.items() if v != "a"]


def spec_of(model: nn.Module) -> ArchSpec:
    """The ArchSpec (layers, widths, labels) of a loaded model."""
    return spec_from_hf_config(model.config)


def formula_for(model: nn.Module) -> int:
    """Analytic trainable count of what is injected into ``model`` (methods + gates + head).

    With nothing injected and nothing frozen it is the full model (full fine-tuning).
    """
    configs = tasks.configs_of(model)
    spec, d = spec_of(model), model.config.hidden_size
    head = head_params(spec) + (arch_for(model).head_linears - 1) * (d * d + d)  # RoBERTa/DistilBERT: d → d → n
    if not configs:
        frozen = any(not p.requires_grad for p in model.parameters())
        return head if frozen else formula_params(spec, "full")
    gated = {m.method for m in model.modules()  # learned gates only; fixed gates have no parameters
             if isinstance(getattr(m, "gate", None), Gate) and m.gate.linear is not None}
    gates = sum(gate_params_for(spec, c) for c in configs if method_of(c).name in gated)
    return formula_params(spec, configs) + gates + head


# --- on paper: any config, and the memory it needs ------------------------------------------------------------

MethodSpec = object  # a method config (LoRAConfig, …) or the string "full"


def formula_params(spec: ArchSpec, cfg: MethodSpec | Sequence[MethodSpec]) -> int:
    """Trainable parameters of a method (head excluded), or of the whole model for ``"full"``.

    A list of configs (UniPELT's methods side by side) gives the sum; add ``gate_params`` yourself.
    """
    if not isinstance(spec, ArchSpec):
        raise ValueError(f"spec must be an ArchSpec such as MINILM_L6, got {type(spec).__name__}.")
    if isinstance(cfg, (list, tuple)):
        if not cfg:
            raise ValueError("formula_params got an empty list of methods.")
        n_ln = sum(bool(getattr(c, "train_layernorm", False)) for c in cfg)  # LayerNorms are trained once
        return sum(formula_params(spec, c) for c in cfg) - max(0, n_ln - 1) * layernorm_params(spec)
    if isinstance(cfg, str) and cfg == "full":
        return full_params(spec)
    try:
        return method_of(cfg).formula(spec, cfg)  # each method's formula is in its registry row
    except TypeError:
        names = ", ".join(config_types())
        raise ValueError(f"formula_params expects a method config ({names}), the string 'full' or a list of these "
                         f"(UniPELT gates: gate_params(spec, n_methods)); got {cfg!r}.") from None


# ------------------------------------------------------------------------------------- memory (Green AI)

@dataclass(frozen=True)
class MemoryReport:
    """Bytes a training run must hold (activations aside) and what a finished task costs to store."""

    method: str
    bytes_per_param: int
    trainable: int
    frozen: int
    total: int
    weights_bytes: int          # every weight, frozen or not, sits in memory for the forward pass
    gradient_bytes: int         # one gradient per trainable parameter
    optimizer_bytes: int        # Adam keeps two running moments per trainable parameter
    training_bytes: int         # the three above together
    checkpoint_bytes: int       # storing just what was trained (the method, plus the head)
    full_checkpoint_bytes: int  # storing a whole fine-tuned copy of the model
    checkpoint_ratio: float     # how many method checkpoints fit in one full copy


def _method_name(cfg: MethodSpec | Sequence[MethodSpec]) -> str:
    if isinstance(cfg, (list, tuple)):
        return "+".join(_method_name(c) for c in cfg)
    return cfg if isinstance(cfg, str) else method_of(cfg).name


def memory_report(spec: ArchSpec, cfg: MethodSpec | Sequence[MethodSpec], bytes_per_param: int = 4,
                  include_head: bool = True) -> MemoryReport:
    """Weights, gradients, Adam state and checkpoint sizes for training ``cfg`` on ``spec``.

    A PEFT method trains its own parameters (and the classifier head when ``include_head``) while the
    base model stays frozen; ``"full"`` trains everything. Use ``bytes_per_param=2`` for fp16/bf16.
    """
    if not isinstance(bytes_per_param, int) or bytes_per_param <= 0:
        raise ValueError(f"bytes_per_param must be a positive integer (4 = fp32, 2 = fp16), got {bytes_per_param!r}.")
    base = full_params(spec)
    if cfg == "full":
        trainable, total = base, base
    else:
        added = formula_params(spec, cfg)
        trainable, total = added + (head_params(spec) if include_head else 0), base + added
    b = bytes_per_param
    return MemoryReport(
        method=_method_name(cfg), bytes_per_param=b, trainable=trainable, frozen=total - trainable, total=total,
        weights_bytes=total * b, gradient_bytes=trainable * b, optimizer_bytes=2 * trainable * b,
        training_bytes=(total + 3 * trainable) * b, checkpoint_bytes=trainable * b,
        full_checkpoint_bytes=base * b, checkpoint_ratio=base / trainable)
