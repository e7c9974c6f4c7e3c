"""What the ΔW explorer knows, without any widget: every ΔW, their spectra, and accuracy by rank k.

``DeltaState(model, split)`` reads a trained LoRA model's updates ΔW = (α/r)·B·A once. Singular values
are computed per matrix when first asked for; the accuracy at a truncated rank k costs one evaluation
of the fixed subset, so it is cached, and ``warm_up()`` fills the cache in a background thread, on a
copy of the model (the notebook's own model is never truncated behind its back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from copy import deepcopy

import numpy as np
from torch import nn

from .. import analysis
from ..data import Split
from ..models import tokenizer_for
from ..train import evaluate


def layer_and_leaf(short: str) -> tuple[int, str]:
    """'L3.query' → (3, 'query'); a name without a layer number gives layer -1."""
    layer, _, leaf = short.partition(".")
    return int(layer[1:]) if layer[1:].isdigit() else -1, leaf


class DeltaState:
    """Every ΔW of ``model``, their singular values (cached), accuracy by rank (cached, thread-safe).

    ``other`` (optional) is a second LoRA run on the same layers, for the subspace similarity φ.
    ``accuracy`` maps k → accuracy on ``split`` (the first ``eval_limit`` examples) with every ΔW at rank k.
    """

    def __init__(self, model: nn.Module, split: Split, other: nn.Module | None = None, eval_limit: int = 128):
        self.model, self.other = model, other
        self.deltas = analysis.delta_weights(model)
        self.names = {analysis.short_name(n): n for n in self.deltas}
        self.r = min(m.r for m in analysis.lora_layers(model).values())
        self.split = split.subset(eval_limit) if len(split) > eval_limit else split
        self.full = evaluate(model, self.split)["accuracy"]
        self.accuracy: dict[int, float] = {self.r: self.full}  # rank(ΔW) ≤ r: truncating at r changes nothing
        self._s: dict[str, np.ndarray] = {}
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.warmer: threading.Thread | None = None

    def layers(self) -> list[int]:
        """The layer numbers that carry LoRA, in order."""
        return sorted({layer_and_leaf(s)[0] for s in self.names})

    def leaves(self) -> list[str]:
        """The matrix names that carry LoRA ("query", "value", …), in order."""
        return sorted({layer_and_leaf(s)[1] for s in self.names})

    def module(self, layer: int, leaf: str) -> str:
        """The full module name of ``leaf`` in ``layer``; a clear error where it has no LoRA."""
        short = f"L{layer}.{leaf}"
        if short not in self.names:
            raise ValueError(f"no LoRA on {short}; LoRA matrices here: {', '.join(self.names)}")
        return self.names[short]

    def singular_values(self, name: str) -> np.ndarray:
        if name not in self._s:
            self._s[name] = analysis.singular_values(self.deltas[name])
        return self._s[name]

    def energy_at_k(self, name: str, k: int) -> float:
        """The share of ΔW's energy (squared singular values) its top k hold; 0 for an untrained ΔW."""
        s = self.singular_values(name)
        return analysis.energy_at_k(s, k) if s.any() else 0.0

    def accuracy_at(self, k: int) -> float:
        """Accuracy with every ΔW truncated to rank k (one evaluation the first time, a look-up after)."""
        with self.lock:
            if k in self.accuracy:
                return self.accuracy[k]
        with analysis.truncated(self.model, k):
            acc = evaluate(self.model, self.split)["accuracy"]
        with self.lock:
            return self.accuracy.setdefault(k, acc)

    def warm_up(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Evaluate every rank k in a background thread, on a copy of the model (the notebook's own model is
        never truncated behind its back), so that later slider moves only look the answer up."""
        order = [k for k in (1, 2, 4, 8, 16, 32, 64) if k < self.r] + list(range(1, self.r))

        def run() -> None:
            try:
                copy, tok = deepcopy(self.model), tokenizer_for(self.model)
                for k in dict.fromkeys(order):
                    if self.stop.is_set():
                        return
                    with self.lock:
                        if k in self.accuracy:
                            continue
                    with analysis.truncated(copy, k):
                        acc = evaluate(copy, self.split, tokenizer=tok)["accuracy"]
                    with self.lock:
                        self.accuracy.setdefault(k, acc)
            except Exception as err:  # shown in the panel; the slider still works, one evaluation per new k
                if on_error is not None:
                    on_error(err)

        self.warmer = threading.Thread(target=run, name="lesson-delta-w-warm-up", daemon=True)
        self.warmer.start()

    def ready(self) -> int:
        """How many of the ranks 1 … r have their accuracy already."""
        with self.lock:
            return len(self.accuracy)

    def accuracies(self) -> dict[int, float]:
        """A copy of {k: accuracy} so far (the warm-up thread may be adding to it while a figure is drawn)."""
        with self.lock:
            return dict(self.accuracy)

    def _pair(self, name: str) -> tuple[nn.Module, nn.Module]:
        """This run's and the other run's LoRA module ``name``."""
        other = analysis.lora_layers(self.other)
        if name not in other:
            raise ValueError(f"the other model has no LoRA on {analysis.short_name(name)}")
        return analysis.lora_layers(self.model)[name], other[name]

    def subspace(self, name: str) -> np.ndarray:
        """Subspace similarity φ between this run's and the other run's A matrices of ``name``: the run with
        the smaller r on the rows, as the LoRA paper (Figure 3) and notebook 04 print it, φ(A_8, A_64, i, j)
        with i = 1..8 on the rows. ``subspace_names`` says which run is which."""
        mine, theirs = self._pair(name)
        rows, cols = (theirs, mine) if theirs.r < mine.r else (mine, theirs)
        return analysis.subspace_similarity_grid(rows.lora_A, cols.lora_A)

    def subspace_names(self, name: str) -> tuple[str, str]:
        """Who is on the rows and who on the columns of ``subspace(name)``: ("A (r = 8)", "A (r = 64)"), or
        with equal ranks ("A (this model)", "A (other model)")."""
        mine, theirs = self._pair(name)
        if mine.r == theirs.r:
            return "A (this model)", "A (other model)"
        return tuple(f"A (r = {m.r})" for m in sorted((mine, theirs), key=lambda m: m.r))
