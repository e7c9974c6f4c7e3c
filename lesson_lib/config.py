"""Small configuration dataclasses, one per idea in the lecture.

Every config validates itself in ``__post_init__`` so a bad value (a rank of 0, a negative
learning rate) fails at once with a message that says what to do, before any model is touched.

``FAST`` is read once from the environment variable ``LESSON_FAST``: the tests and a student in a
hurry set ``LESSON_FAST=1`` to run the same notebooks with fewer steps and smaller data subsets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

FAST: bool = os.environ.get("LESSON_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}


def _positive(name: str, value: float, hint: str = "") -> None:
    if value is None or value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}. {hint}".strip())


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
        if not isinstance(self.r, int) or self.r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {self.r!r}. Try r=8.")
        _positive("LoRA alpha", self.alpha, "Try alpha = 2 * r.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}.")
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError(
                f"targets must be a non-empty tuple of names, e.g. ('query', 'value'), got {self.targets!r}."
            )
        object.__setattr__(self, "targets", tuple(self.targets))

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
        if not isinstance(self.bottleneck, int) or self.bottleneck <= 0:
            raise ValueError(f"adapter bottleneck must be a positive integer, got {self.bottleneck!r}. Try 64.")
        if self.placement not in ("houlsby", "pfeiffer"):
            raise ValueError(f"placement must be 'houlsby' or 'pfeiffer', got {self.placement!r}.")
        if self.activation not in ("gelu", "relu", "tanh"):
            raise ValueError(f"activation must be 'gelu', 'relu' or 'tanh', got {self.activation!r}.")
        if self.init not in ("zeros", "normal"):
            raise ValueError(f"init must be 'zeros' or 'normal', got {self.init!r}.")


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
        if not isinstance(self.length, int) or self.length <= 0:
            raise ValueError(f"prefix length must be a positive integer, got {self.length!r}. Try 10.")
        if not isinstance(self.reparam_hidden, int) or self.reparam_hidden <= 0:
            raise ValueError(f"reparam_hidden must be a positive integer, got {self.reparam_hidden!r}.")


@dataclass(frozen=True)
class PromptConfig:
    """Prompt tuning (Lester et al. 2021): P learned vectors prepended to the input embeddings."""

    length: int = 10
    init: str = "vocab"  # "vocab": start from embeddings of random real tokens; "normal": small noise

    def __post_init__(self) -> None:
        if not isinstance(self.length, int) or self.length <= 0:
            raise ValueError(f"prompt length must be a positive integer, got {self.length!r}. Try 10.")
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
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"a gate value must be in [0, 1], got {self.value!r}.")


@dataclass(frozen=True)
class TrainConfig:
    """One short training loop's settings.

    steps        optimizer steps (one batch each)
    eval_every   evaluate on ``eval_limit`` validation examples every N steps (0 = only at the end)
    time_budget  optional wall-clock limit in seconds; training stops cleanly when reached
    device       None (default): train where the model is; "auto" moves it to cuda, then mps, then cpu
                 (``LESSON_DEVICE`` overrides); or a device name
    fast         None (auto): when only the top layers (or only the head) train, run the frozen lower
                 layers once per example and cache them (exact; see lesson_lib/fast.py); False: always
                 the plain loop; True: the fast path, or an error saying why it cannot apply
    threads      CPU threads while training (None: torch's setting); 1 is fastest on a busy, shared machine
    schedule     "linear": the learning rate rises over the first tenth of the steps, then falls linearly to
                 almost zero at the last step (the usual fine-tuning schedule; the end of training is calm,
                 so the final accuracy does not depend on where a noisy step happened to land);
                 "constant": ``lr`` at every step
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
    fast: bool | None = None
    threads: int | None = None
    schedule: str = "linear"

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}.")
        _positive("lr", self.lr, "A typical value is 1e-3 for PEFT methods, 5e-5 for full fine-tuning.")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every!r}.")
        if self.time_budget is not None:
            _positive("time_budget", self.time_budget, "Give seconds, or None for no limit.")
        if self.fast not in (None, True, False):
            raise ValueError(f"fast must be None (auto), True or False, got {self.fast!r}.")
        if self.schedule not in ("linear", "constant"):
            raise ValueError(f"schedule must be 'linear' or 'constant', got {self.schedule!r}.")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads <= 0):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}.")
        if self.device not in (None, "auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be None (where the model is), 'auto', 'cpu', 'cuda' or 'mps', "
                             f"got {self.device!r}.")
