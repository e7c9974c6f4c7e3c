"""Prefix tuning (Li & Liang 2021): P learned key and value vectors in every attention layer.

Self-attention with a prefix, for one layer (d = heads · d_head):

    K = [P_K ; x W_K]     V = [P_V ; x W_V]       (P extra rows in front of the real keys/values)
    out_t = softmax(q_t Kᵀ / √d_head + mask) V     for every real token t

Every real token can attend to the P prefix positions; the prefix itself produces no output, so the
sequence length and the real tokens' position ids do not change. The mask is extended by P
"visible" columns. Only P_K and P_V are trained: L · 2 · P · d numbers.

Reparameterisation (as in the paper): instead of learning P_K, P_V directly, learn a small
embedding (P × d) and an MLP that maps it to all layers' prefixes; training is more stable.
``PrefixEncoder.fold`` computes the prefixes once and throws the MLP away after training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .module import MethodModule, Wrapper


class PrefixEncoder(MethodModule):
    """Embedding (P × d) → Linear(d, h) → tanh → Linear(h, L·2·d): every layer's prefix keys and values."""

    method = "prefix"

    def __init__(self, n_layers: int, length: int, d: int, hidden: int):
        super().__init__()
        self.n_layers, self.length, self.d = n_layers, length, d
        self.embedding = nn.Embedding(length, d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, n_layers * 2 * d))

    def forward(self) -> torch.Tensor:
        """All prefixes at once, shape (L, 2, P, d): [layer, key-or-value, position, feature]."""
        out = self.mlp(self.embedding.weight)  # (P, d) → (P, L·2·d)
        return out.view(self.length, self.n_layers, 2, self.d).permute(1, 2, 0, 3)


def _additive_mask(mask: torch.Tensor | None, q: torch.Tensor, n_keys: int) -> torch.Tensor:
    """Any mask transformers hands us (None, bool keep-mask, or additive floats) → additive float mask.

    Shape (B or 1, 1, T or 1, n_keys): 0 where attending is allowed, a large negative number elsewhere.
    """
    if mask is None:
        return q.new_zeros(1, 1, 1, n_keys)
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, torch.finfo(q.dtype).min)
    return mask.to(q.dtype)


class PrefixAttention(Wrapper):
    """A family's self-attention (kept at ``.base``) written out, with P prefix keys/values in front.

    The q/k/v projections are the base's own modules (they may carry LoRA). ``keep_attention = True``
    makes the layer store its attention weights in ``last_attention`` (B, heads, T, P + T) for plots.
    """

    method = "prefix"

    def __init__(self, base: nn.Module, arch, layer_idx: int, length: int, n_heads: int, encoder=None):
        super().__init__(base)
        self.arch, self.layer_idx, self.length, self.n_heads = arch, layer_idx, length, n_heads
        q = base.get_submodule(arch.q)
        self.d = q.out_features if hasattr(q, "out_features") else q.base.out_features
        # flat prefixes live here; with reparameterisation they come from the shared encoder instead
        self.prefix = None if encoder is not None else nn.Parameter(torch.randn(2, length, self.d) * 0.02)
        self._encoder = [encoder]  # a list, so the shared encoder is not registered once per layer
        self.gate: nn.Module | None = None
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None
        # an exercise's own attention: fn(q, k, v, prefix_k, prefix_v, keep (B, T)) → (B, H, T, dh);
        # None: the library's (lesson_lib.exercises.your_prefix_attention puts a student's function here)
        self.attend_fn = None

    def prefix_kv(self) -> torch.Tensor:
        """This layer's prefix, shape (2, P, d): keys in [0], values in [1]."""
        if self.prefix is not None:
            return self.prefix
        return self._encoder[0]()[self.layer_idx]

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape  # (B, T, d) → (B, heads, T, d_head)
        return x.view(b, t, self.n_heads, -1).transpose(1, 2)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        b, t, _ = hidden_states.shape
        a = self.arch
        q = self._heads(self.base.get_submodule(a.q)(hidden_states))  # (B, H, T, dh)
        k = self._heads(self.base.get_submodule(a.k)(hidden_states))  # (B, H, T, dh)
        v = self._heads(self.base.get_submodule(a.v)(hidden_states))  # (B, H, T, dh)
        pkv = self.prefix_kv().to(q.dtype).unsqueeze(1).expand(-1, b, -1, -1)  # (2, B, P, d)
        if self.attend_fn is not None:
            return self._your_attention(q, k, v, pkv, attention_mask)
        k = torch.cat([self._heads(pkv[0]), k], dim=2)  # (B, H, P + T, dh)
        v = torch.cat([self._heads(pkv[1]), v], dim=2)  # (B, H, P + T, dh)
        mask = _additive_mask(attention_mask, q, t)  # (B|1, 1, T|1, T)
        bias = self._prefix_bias(hidden_states, mask)  # (B|1, 1, T|1, P)
        mask = torch.cat([bias, mask.expand(bias.shape[0], -1, -1, -1)], dim=-1)  # (B|1, 1, T|1, P + T)
        p_drop = self.base.dropout.p if self.training else 0.0
        out, weights = self._attend(q, k, v, mask, p_drop)  # (B, H, T, dh)
        out = out.transpose(1, 2).reshape(b, t, -1)  # (B, T, d)
        if a.out_in_attention:
            out = self.base.get_submodule(a.attn_out.split(".")[-1])(out)
        return out, weights

    def _your_attention(self, q, k, v, pkv, attention_mask):
        """The exercise's function on this layer's q, k, v, its prefix (per head) and a (B, T) keep-mask."""
        b, _, t, _ = q.shape
        mask = _additive_mask(attention_mask, q, t)  # (B|1, 1, T|1, T): 0 = visible
        keep = (mask[:, 0, -1, :] == 0).long().expand(b, -1)  # padding masks are the same for every query
        prefix_k, prefix_v = self._heads(pkv[0])[0], self._heads(pkv[1])[0]  # (H, P, dh) each
        out = self.attend_fn(q, k, v, prefix_k, prefix_v, keep).transpose(1, 2).reshape(b, t, -1)  # (B, T, d)
        if self.arch.out_in_attention:
            out = self.base.get_submodule(self.arch.attn_out.split(".")[-1])(out)
        return out, None

    def _prefix_bias(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mask columns for the prefix: 0 (visible) without a gate; log g with a UniPELT gate g.

        Adding log g to the prefix scores multiplies the attention mass real tokens give the prefix by g,
        so g = 1 changes nothing and g = 0 removes the prefix exactly. (UniPELT multiplies the prefix
        vectors by g instead; with that choice g = 0 leaves zero keys that still draw attention.)
        """
        rows = mask.shape[2]
        if self.gate is None:
            return mask.new_zeros(mask.shape[0], 1, rows, self.length)
        log_g = torch.log(self.gate(hidden_states).to(mask.dtype))  # (B, 1, 1), -inf where g = 0
        return log_g.unsqueeze(1).expand(-1, 1, rows, self.length)  # (B, 1, T|1, P)

    def _attend(self, q, k, v, mask, p_drop):
        """softmax(q kᵀ / √d_head + mask) v — explicitly when the weights are wanted, else fused SDPA."""
        if not self.keep_attention:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop), None
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + mask  # (B, H, T, P + T)
        weights = scores.softmax(-1)
        self.last_attention = weights.detach()
        return F.dropout(weights, p_drop, self.training) @ v, weights


@torch.no_grad()
def fold(encoder: PrefixEncoder, layers: list[PrefixAttention]) -> None:
    """Replace the MLP by its output: each layer gets its own flat (2, P, d) prefix tensor."""
    all_kv = encoder()  # (L, 2, P, d)
    for layer in layers:
        layer.prefix = nn.Parameter(all_kv[layer.layer_idx].clone())
        layer._encoder = [None]
