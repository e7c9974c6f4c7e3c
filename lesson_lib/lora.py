"""LoRA (Hu et al. 2021): a low-rank update ΔW = (α / r) · B @ A beside a frozen weight W.

    h = W x + (α / r) · B (A x)          A: r × d_in  (Kaiming-uniform, like PEFT)
                                         B: d_out × r (zeros, so ΔW = 0 at init: the model is unchanged)

Only A and B are trained: r · (d_in + d_out) numbers instead of d_in · d_out. After training, ΔW can
be added into W (``merge``) so inference costs nothing extra; ``unmerge`` takes it out again.
Merging is always explicit, never a side effect of ``.eval()``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .module import Wrapper


class LoRALinear(Wrapper):
    """A frozen ``nn.Linear`` (kept at ``.base``) plus a trainable rank-r update.

    The constructor freezes W (and its bias), as loralib does: only A and B can learn.

    ``gate`` is an optional module (UniPELT) returning a factor in [0, 1] that scales the update.
    """

    method = "lora"

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False):
        if not isinstance(base, nn.Linear):
            raise TypeError(
                f"LoRA wraps nn.Linear layers only, got {type(base).__name__}. "
                "(GPT-2's Conv1D stores its weight transposed; load a BERT-family model instead.)"
            )
        d_out, d_in = base.weight.shape
        if not isinstance(r, int) or not 0 < r <= min(d_in, d_out):
            raise ValueError(f"LoRA rank r must be in 1..{min(d_in, d_out)} for a {d_in}→{d_out} layer, got {r!r}")
        super().__init__(base)
        base.requires_grad_(False)  # W and b stay frozen
        self.r = r
        self.scaling = alpha / (math.sqrt(r) if rslora else r)
        a = torch.empty(r, d_in)  # drawn on the CPU, so a seed gives the same A on every device
        nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # the same init as nn.Linear and PEFT
        self.lora_A = nn.Parameter(a.to(base.weight.device, base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, device=base.weight.device, dtype=base.weight.dtype))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.gate: nn.Module | None = None
        self.merged = False
        self._weight_before_merge: torch.Tensor | None = None

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scaling · B @ A, shape (d_out, d_in): the same shape as the frozen W."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)  # (..., d_out), W x + b with the frozen (or merged) weight
        if self.merged:
            return y
        update = self.dropout(x) @ self.lora_A.T @ self.lora_B.T  # (..., d_in) → (..., r) → (..., d_out)
        if self.gate is not None:
            update = update * self.gate(x)  # (batch, 1, 1) gate, UniPELT
        return y + self.scaling * update

    @torch.no_grad()
    def merge(self) -> bool:
        """Fold ΔW into W so the forward pass is one matmul again (zero extra inference cost).

        We keep a copy of the original W so ``unmerge`` restores it exactly (subtracting ΔW again,
        as PEFT does, leaves rounding errors around 1e-7). Refused when a gate scales the update,
        because a per-input gate cannot be folded into a fixed matrix. Returns False (and does nothing) when
        the update is merged already.
        """
        if self.merged:
            return False
        if self.gate is not None:
            raise RuntimeError("a gated LoRA layer cannot be merged: the gate depends on the input")
        self._weight_before_merge = self.base.weight.detach().clone()
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True
        return True

    @torch.no_grad()
    def unmerge(self) -> bool:
        """Restore the original W (bit for bit) and use the separate low-rank path again; False if not merged."""
        if not self.merged:
            return False
        self.base.weight.copy_(self._weight_before_merge)
        self._weight_before_merge = None
        self.merged = False
        return True

    def extra_repr(self) -> str:
        return f"r={self.r}, scaling={self.scaling:g}, merged={self.merged}"
