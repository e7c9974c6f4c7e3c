"""Whole experiments in one call: build a fresh model, add a method, train, measure.

``run_method("lora", task, steps=200)`` returns one row of the lecture's comparison table: the
method, its size knob, trainable parameters, test accuracy, seconds, and the size of its saved
adapter file. ``sweep`` runs a method over its size knob (rank, bottleneck, prefix length) for the
accuracy-vs-parameters figure. Learning rates per method are the usual ones from the papers'
recipes (prefix and prompt tuning need much larger steps than LoRA or adapters).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, PromptConfig, TrainConfig
from .data import Task
from .io import save_adapter
from .metrics import count_params
from .models import load_base
from .surgery import freeze_base, inject
from .train import evaluate, train

METHODS = ("head", "full", "lora", "adapter", "prefix", "prompt", "unipelt")
# measured on tweets (60–200 steps, batch 32): prefix with the MLP collapses to chance at 5e-3 and learns at
# 1e-3 (80 % after 60 steps); prompt tuning needs a large step (3e-2: 80.5 % after 200 steps)
LEARNING_RATES = {"head": 2e-3, "full": 5e-5, "lora": 1e-3, "adapter": 1e-3, "prefix": 1e-3, "prompt": 3e-2,
                  "unipelt": 1e-3}
KNOBS = {"lora": "r", "adapter": "bottleneck", "prefix": "length", "prompt": "length", "unipelt": "r"}
DEFAULT_SIZE = {"lora": 8, "adapter": 64, "prefix": 10, "prompt": 10, "unipelt": 8}


def method_configs(method: str, size: int | None = None, layers=None):
    """The config(s) and gates for ``method`` at ``size`` (r, bottleneck or length)."""
    size = size or DEFAULT_SIZE.get(method)
    if method == "lora":
        return LoRAConfig(r=size, alpha=2 * size, layers=layers), None
    if method == "adapter":
        return AdapterConfig(bottleneck=size, layers=layers), None
    if method == "prefix":
        return PrefixConfig(length=size, reparam=True, layers=layers), None
    if method == "prompt":
        return PromptConfig(length=size), None
    if method == "unipelt":
        return [LoRAConfig(r=size, alpha=2 * size, layers=layers), AdapterConfig(bottleneck=64, layers=layers),
                PrefixConfig(length=10, layers=layers)], GateConfig(learned=True)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def build(method: str, task: Task, size: int | None = None, model_name: str | None = None, layers=None,
          tiny: bool = False):
    """A fresh base model with ``method`` added (``"full"``: nothing frozen; ``"head"``: base frozen).

    ``tiny=True`` uses the tiny random-weight BERT (smoke tests), as ``load_base(tiny=True)``."""
    model, _ = load_base(model_name, num_labels=task.num_labels, tiny=tiny)
    if method == "head":
        freeze_base(model)
    elif method != "full":
        cfg, gates = method_configs(method, size, layers)
        inject(model, cfg, gates=gates)
    return model


@dataclass
class RunResult:
    method: str
    size: int | None
    trainable: int
    total: int
    accuracy: float
    loss: float
    seconds: float
    steps: int
    file_bytes: int | None
    task: str

    def as_dict(self) -> dict:
        return asdict(self)


def run_method(method: str, task: Task, steps: int = 200, size: int | None = None, lr: float | None = None,
               batch_size: int = 32, seed: int = 0, callbacks=(), model_name: str | None = None,
               test_limit: int | None = None, layers=None, tiny: bool = False) -> tuple[RunResult, object]:
    """Train ``method`` on ``task`` for ``steps`` steps; measure on the (balanced) test split."""
    model = build(method, task, size, model_name, layers, tiny)
    cfg = TrainConfig(steps=steps, lr=lr or LEARNING_RATES[method], batch_size=batch_size, seed=seed,
                      eval_every=0, progress=False)
    start = time.perf_counter()
    train(model, task, cfg, callbacks=callbacks)
    seconds = time.perf_counter() - start
    res = evaluate(model, task.test, limit=test_limit)
    counts = count_params(model)
    file_bytes = None
    if method not in ("full", "head"):
        with tempfile.TemporaryDirectory() as tmp:
            file_bytes = save_adapter(model, Path(tmp) / "adapter.safetensors")
    size = None if method in ("full", "head") else (size or DEFAULT_SIZE[method])
    return RunResult(method, size, counts.trainable, counts.total, res["accuracy"], res["loss"], seconds, steps,
                     file_bytes, task.name), model


def sweep(method: str, task: Task, sizes, steps: int = 200, **kwargs) -> list[RunResult]:
    """``run_method`` over several sizes of one method (accuracy vs trainable parameters)."""
    return [run_method(method, task, steps=steps, size=s, **kwargs)[0] for s in sizes]
