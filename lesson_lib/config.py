"""Small configuration dataclasses, one per idea in the lecture.

Every config validates itself in ``__post_init__`` so a bad value (a rank of 0, a negative
learning rate) fails at once with a message that says what to do, before any model is touched.

``FAST`` is read once from the environment variable ``LESSON_FAST``: the tests and a student in a
hurry set ``LESSON_FAST=1`` to run the same notebooks with fewer steps and smaller data subsets.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

FAST: bool = os.environ.get("LESSON_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}


# The one vocabulary of target names. A method's ``targets`` name the projections of a transformer layer
# as the papers do; each family's module path for a name is in ``lesson_lib.models.ARCH``.
TARGETS = ("query", "key", "value", "output", "intermediate", "ffn_output")
TARGET_ALIASES = {"q": "query", "k": "key", "v": "value", "o": "output", "q_proj": "query", "k_proj": "key",
                  "v_proj": "value", "o_proj": "output", "out_proj": "output", "attention.output.dense": "output",
                  "intermediate.dense": "intermediate", "fc1": "intermediate", "fc2": "ffn_output"}


def canonical_target(name: str) -> str | None:
    """The paper's name of a target ("q_proj" → "query"), or None when ``name`` is not one of them."""
    name = TARGET_ALIASES.get(name, name)
    return name if name in TARGETS else None


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive(name: str, value: float, hint: str = "") -> None:
    """A finite number > 0 (nan and inf are refused: nan · 0 is nan, and an infinite step ruins every weight)."""
    if not _real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}. {hint}".strip())


def _count(cfg, name: str, what: str, hint: str = "", minimum: int = 1) -> None:
    """``cfg.<name>`` must be a whole number ≥ minimum; any integral type (numpy's too) is stored as an int."""
    value = getattr(cfg, name)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"{what} must be {need}, got {value!r}. {hint}".strip())
    object.__setattr__(cfg, name, int(value))


def check_layers(cfg) -> None:
    """``layers`` is None (every layer) or a non-empty tuple of distinct layer indices counted from 0."""
    layers = cfg.layers
    if layers is None:
        return
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"layers must be None (every layer) or a tuple of layer indices like (4, 5), got {layers!r}.")
    layers = tuple(layers)
    if not layers:
        raise ValueError("layers=() names no layer, so nothing would be added; use None for every layer, "
                         "or name some, e.g. layers=(4, 5).")
    if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in layers):
        raise ValueError(f"layers must be layer indices counted from 0 (0, 1, 2, …), got {layers!r}.")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers lists a layer twice: {layers!r}; name each layer once.")
    object.__setattr__(cfg, "layers", tuple(int(i) for i in layers))


@dataclass(frozen=True)
class LoRAConfig:
    """LoRA (Hu et al. 2021): ΔW = (alpha / r) · B @ A beside each frozen target weight.

    r        rank of the update (A is r × in, B is out × r)
    alpha    scale; the update is multiplied by alpha / r (or alpha / sqrt(r) with ``rslora``)
    targets  module names or suffixes to wrap, e.g. ("query", "value")
    dropout  dropout applied to the input of the LoRA path only
    layers   optional layer indices to restrict the injection to (None = every layer)
    """

    r: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")
    dropout: float = 0.0
    rslora: bool = False
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _count(self, "r", "LoRA rank r", "Try r=8.")
        _positive("LoRA alpha", self.alpha, "Try alpha = 2 * r.")
        if not _real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}.")
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError(
                f"targets must be a non-empty tuple of names, e.g. ('query', 'value'), got {self.targets!r}."
            )
        object.__setattr__(self, "targets", tuple(self.targets))
        check_layers(self)

    @property
    def scaling(self) -> float:
        return self.alpha / (self.r ** 0.5 if self.rslora else self.r)


@dataclass(frozen=True)
class AdapterConfig:
    """Bottleneck adapter (Houlsby et al. 2019): x + up(act(down(x))), with m ≪ d hidden units.

    bottleneck       m, the number of hidden units of the adapter
    placement        "houlsby": after the attention output projection and after the feed-forward output;
                     "pfeiffer": after the feed-forward output only
    train_layernorm  also train the LayerNorms, as Houlsby et al. did
    init             "zeros": the up-projection starts at zero (exact identity at init);
                     "normal": the paper's near-identity init, std 1e-2 on both projections
    """

    bottleneck: int = 64
    placement: str = "houlsby"
    train_layernorm: bool = False
    activation: str = "gelu"
    init: str = "zeros"
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _count(self, "bottleneck", "adapter bottleneck", "Try 64.")
        if self.placement not in ("houlsby", "pfeiffer"):
            raise ValueError(f"placement must be 'houlsby' or 'pfeiffer', got {self.placement!r}.")
        if self.activation not in ("gelu", "relu", "tanh"):
            raise ValueError(f"activation must be 'gelu', 'relu' or 'tanh', got {self.activation!r}.")
        if self.init not in ("zeros", "normal"):
            raise ValueError(f"init must be 'zeros' or 'normal', got {self.init!r}.")
        check_layers(self)


@dataclass(frozen=True)
class PrefixConfig:
    """Prefix tuning (Li & Liang 2021): P learned key and value vectors in every attention layer.

    length          P, the number of prefix positions every query can attend to
    reparam         learn the prefixes through an MLP (embedding → hidden → per-layer K/V), as in the paper
    reparam_hidden  hidden size of that MLP
    """

    length: int = 10
    reparam: bool = False
    reparam_hidden: int = 128
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _count(self, "length", "prefix length", "Try 10.")
        _count(self, "reparam_hidden", "reparam_hidden")
        check_layers(self)


@dataclass(frozen=True)
class PromptConfig:
    """Prompt tuning (Lester et al. 2021): P learned vectors prepended to the input embeddings."""

    length: int = 10
    init: str = "vocab"  # "vocab": start from embeddings of random real tokens; "normal": small noise

    def __post_init__(self) -> None:
        _count(self, "length", "prompt length", "Try 10.")
        if self.init not in ("vocab", "normal"):
            raise ValueError(f"init must be 'vocab' or 'normal', got {self.init!r}.")


@dataclass(frozen=True)
class GateConfig:
    """UniPELT gates (Mao et al. 2022): each method's contribution times g = sigmoid(Linear(h)).

    learned  True: gates are small trained layers; False: gates are fixed at ``value``
    value    the fixed gate value when ``learned`` is False (1.0 = on, 0.0 = off)
    """

    learned: bool = True
    value: float = 1.0

    def __post_init__(self) -> None:
        if not _real(self.value) or not 0.0 <= self.value <= 1.0:
            raise ValueError(f"a gate value must be in [0, 1], got {self.value!r}.")


@dataclass(frozen=True)
class TrainConfig:
    """One short training loop's settings.

    steps        optimizer steps (one batch each)
    eval_every   evaluate on ``eval_limit`` validation examples every N steps (0 = only at the end)
    time_budget  optional wall-clock limit in seconds; training stops cleanly when reached
    device       None (default): train where the model is; "auto" moves it to cuda, then mps, then cpu
                 (``LESSON_DEVICE`` overrides); or a device name
    fast         False (default): the plain loop. True: the fast path, for when only the top layers (or only
                 the head) train: the frozen lower layers run once per example, in eval mode, and are cached
                 (same logits; see lesson_lib/fast.py), or an error saying why it cannot apply. To keep the
                 cache for the next run, pass ``ll.train(..., fast=ll.fast.FastPath(model))`` instead
    threads      CPU threads while training (None: torch's setting); 1 is fastest on a busy, shared machine
    schedule     "linear": the learning rate rises over the first tenth of the steps, then falls linearly to
                 almost zero at the last step (the usual fine-tuning schedule; the end of training is calm,
                 so the final accuracy does not depend on where a noisy step happened to land);
                 "constant": ``lr`` at every step
    lr_by_method {method name: learning rate} for the parameters that method owns, e.g. {"prefix": 3e-2}:
                 when methods are combined (UniPELT), each can keep the step size it needs alone; the others
                 (and the head) use ``lr``
    """

    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 32
    eval_every: int = 50
    eval_limit: int | None = 256
    weight_decay: float = 0.0
    seed: int = 0
    time_budget: float | None = None
    device: str | None = None
    amp: bool = True
    progress: bool = True
    fast: bool = False
    threads: int | None = None
    schedule: str = "linear"
    lr_by_method: dict | None = None

    def __post_init__(self) -> None:
        _count(self, "steps", "steps")
        for method, lr in (self.lr_by_method or {}).items():
            _positive(f"lr_by_method[{method!r}]", lr, "Give a learning rate per method name, e.g. "
                      "{'prefix': 3e-2} (the others keep lr).")
        _positive("lr", self.lr, "A typical value is 1e-3 for PEFT methods, 5e-5 for full fine-tuning.")
        _count(self, "batch_size", "batch_size")
        _count(self, "eval_every", "eval_every", "0 evaluates only at the end.", minimum=0)
        if self.eval_limit is not None:
            _count(self, "eval_limit", "eval_limit", "It is the number of validation examples evaluated during "
                   "training (at least one per class), or None for the whole validation split.")
        if not _real(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be a finite number ≥ 0, got {self.weight_decay!r}.")
        _count(self, "seed", "seed", minimum=0)
        if self.time_budget is not None:
            _positive("time_budget", self.time_budget, "Give seconds, or None for no limit.")
        if not isinstance(self.fast, bool):
            raise ValueError(f"fast must be True (the fast path) or False (the plain loop), got {self.fast!r}; "
                             "to reuse a cache, pass ll.train(..., fast=ll.fast.FastPath(model)).")
        if self.schedule not in ("linear", "constant"):
            raise ValueError(f"schedule must be 'linear' or 'constant', got {self.schedule!r}.")
        if self.threads is not None:
            _count(self, "threads", "threads (or None)")
        if self.device not in (None, "auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be None (where the model is), 'auto', 'cpu', 'cuda' or 'mps', "
                             f"got {self.device!r}.")
