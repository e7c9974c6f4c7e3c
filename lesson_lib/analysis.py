"""Looking inside a trained model's weight updates ΔW (the LoRA paper's §7, run on a real model).

* ``delta_weights(model)`` → {module name: ΔW}: scaling · B @ A for every LoRA layer, or, after a full
  fine-tune, W_after − W_before against a ``snapshot(model)`` taken before training;
* ``spectrum_summary`` → singular values, energy at k and effective rank of every ΔW at once;
* ``truncated(model, k)`` → a context in which every ΔW is replaced by its best rank-k approximation,
  to measure the accuracy a tiny rank keeps;
* the pure matrix functions (singular values, subspace similarity φ, amplification factor) live in
  ``analysis_core`` and are re-exported here.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from . import surgery
from .analysis_core import (  # the matrix functions, re-exported: a lesson calls them as ll.analysis.<name>
    amplification_factor,
    effective_rank,
    energy_at_k,
    energy_curve,
    projection_norms,
    rank_at_energy,
    singular_values,
    subspace_similarity,
    subspace_similarity_grid,
    truncate_rank,
)


def snapshot(model: nn.Module, names=None) -> dict[str, torch.Tensor]:
    """fp32 copies, on the CPU, of the 2-D weights of ``model`` (or of the modules in ``names``), taken before training.

    ``delta_weights(model, snapshot=...)`` subtracts them after a full fine-tune, wherever the model has
    moved in between (training on a GPU, a change of precision): the copies stay on the CPU in fp32.
    """
    mods = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    names = list(mods) if names is None else list(names)
    missing = [n for n in names if n not in mods]
    if missing:
        raise ValueError(f"no Linear layer named {missing[:3]} in this model; names look like {list(mods)[:2]}")
    return {n: mods[n].weight.detach().to("cpu", torch.float32, copy=True) for n in names}


def delta_weights(model: nn.Module, snapshot: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """{module name: ΔW (d_out × d_in), fp32}: LoRA's scaling · B @ A, or W − snapshot after a full fine-tune.

    With a snapshot the difference is taken on the CPU in fp32, whatever device and precision the model
    has now."""
    if snapshot is not None:
        mods = dict(model.named_modules())
        return {n: mods[n].weight.detach().to("cpu", torch.float32) - w0.to("cpu", torch.float32)
                for n, w0 in snapshot.items()}
    loras = surgery.lora_modules(model)
    if not loras:
        raise ValueError("no LoRA layers: inject a LoRAConfig, or pass snapshot=analysis.snapshot(model) taken "
                         "before a full fine-tune")
    with torch.no_grad():
        return {n: m.delta_weight().detach().to("cpu", torch.float32) for n, m in loras.items()}


def lora_layers(model: nn.Module) -> dict:
    """{module name: LoRALinear} for every LoRA layer of ``model`` (each has ``lora_A``, ``lora_B``, ``base``)."""
    return surgery.lora_modules(model)


def short_name(name: str) -> str:
    """'bert.encoder.layer.3.attention.self.query' → 'L3.query' (for tables and plot labels)."""
    parts = name.split(".")
    layer = next((parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "layer"), "?")
    leaf = parts[-1] if parts[-1] not in ("dense", "base") else ".".join(parts[-3:-1])
    return f"L{layer}.{leaf}"


def spectrum_summary(deltas: dict[str, torch.Tensor], ks=(1, 2, 4, 8)) -> list[dict]:
    """One row per ΔW: its norm, top singular values, energy at each k, effective rank, numerical rank."""
    rows = []
    for name, dw in deltas.items():
        s = singular_values(dw)
        curve = energy_curve(s) if s.any() else np.zeros_like(s)
        rows.append({
            "name": short_name(name), "module": name, "frobenius": float(np.sqrt((s ** 2).sum())),
            "top": s[:4].tolist(), "rank": int((s > s.max() * 1e-6).sum()) if s.any() else 0,
            "effective_rank": effective_rank(s) if s.any() else 0.0,
            **{f"energy@{k}": float(curve[min(k, len(curve)) - 1]) for k in ks},
        })
    return rows


@contextlib.contextmanager
def truncated(model: nn.Module, k: int):
    """Inside the ``with`` block every LoRA update is replaced by its best rank-k approximation.

    Implemented by temporarily writing rank-k factors of B @ A into A and B (B' = U_k √S_k,
    A' = √S_k V_kᵀ; the layer's scaling still applies), so the forward pass is the ordinary LoRA one;
    the originals come back on exit.
    """
    loras = surgery.lora_modules(model)
    if not loras:
        raise ValueError("truncation needs LoRA layers; inject a LoRAConfig and train first")
    saved = {n: (m.lora_A.detach().clone(), m.lora_B.detach().clone()) for n, m in loras.items()}
    try:
        with torch.no_grad():
            for m in loras.values():
                _set_rank_k(m, k)
        yield model
    finally:
        with torch.no_grad():
            for n, m in loras.items():
                m.lora_A.copy_(saved[n][0])
                m.lora_B.copy_(saved[n][1])


def _set_rank_k(m, k: int) -> None:
    if not 0 <= k <= m.r:
        raise ValueError(f"k must be between 0 and r = {m.r}, got {k}")
    dw = (m.lora_B.double() @ m.lora_A.double())  # (out, r) @ (r, in), unscaled
    u, s, vh = torch.linalg.svd(dw, full_matrices=False)
    root = s[:k].sqrt()
    m.lora_B.zero_()
    m.lora_A.zero_()
    m.lora_B[:, :k] = (u[:, :k] * root).to(m.lora_B.dtype)  # (out, k)
    m.lora_A[:k] = (root[:, None] * vh[:k]).to(m.lora_A.dtype)  # (k, in)


def accuracy_by_rank(model: nn.Module, split, ks=(1, 2, 4, 8), **evaluate_kwargs) -> dict[int, float]:
    """Accuracy on ``split`` with every ΔW truncated to rank k, for each k (the lecture's demonstration)."""
    from .train import evaluate

    out = {}
    for k in ks:
        with truncated(model, k):
            out[k] = evaluate(model, split, **evaluate_kwargs)["accuracy"]
    return out


__all__ = [
    "accuracy_by_rank", "delta_weights", "lora_layers", "short_name", "snapshot", "spectrum_summary", "truncated",
    "amplification_factor", "effective_rank", "energy_at_k", "energy_curve", "projection_norms", "rank_at_energy",
    "singular_values", "subspace_similarity", "subspace_similarity_grid", "truncate_rank",
]
