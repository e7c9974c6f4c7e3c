"""Prompt tuning (Lester et al. 2021): P learned vectors inserted into the input embeddings.

The simplest relative of prefix tuning: instead of giving every layer extra keys and values, give
the model P extra *input tokens* whose embeddings are learned. Only P · d numbers are trained.

Where they go: right after the first token ([CLS]), so the classifier, which reads position 0,
still reads the real [CLS] token:  [CLS] p_1 … p_P  tokens… [SEP]. The attention mask gets P ones.
"""

from __future__ import annotations

import torch
from torch import nn

from .module import MethodModule


class SoftPrompt(MethodModule):
    """P trainable embeddings, put into the backbone's input by a forward pre-hook on ``backbone``."""

    method = "prompt"

    def __init__(self, word_embeddings: nn.Embedding, length: int, init: str = "vocab", seed: int | None = None,
                 backbone: nn.Module | None = None):
        super().__init__()
        d, weight = word_embeddings.embedding_dim, word_embeddings.weight
        # seed None: torch's random state, which ll.inject seeds
        g = None if seed is None else torch.Generator().manual_seed(seed)
        if init == "vocab":  # start from random real tokens (sampled vocabulary, one of Lester et al.'s inits)
            ids = torch.randint(1000 if word_embeddings.num_embeddings > 2000 else 0,
                                word_embeddings.num_embeddings, (length,), generator=g)
            start = weight.detach()[ids.to(weight.device)].clone()  # (P, d), on the embeddings' device
        else:
            start = torch.randn(length, d, generator=g) * 0.02
        self.embeddings = nn.Parameter(start.to(weight.device, weight.dtype))
        self._word_embeddings = [word_embeddings]  # not a submodule: it belongs to the base
        self._backbone = [backbone]  # the module whose input the hook rewrites (also the base's)
        self._handle = None

    @property
    def length(self) -> int:
        return self.embeddings.shape[0]

    def attached(self) -> None:
        """Start rewriting the backbone's inputs (called when the prompt goes into the model)."""
        if self._handle is None and self._backbone[0] is not None:
            self._handle = self._backbone[0].register_forward_pre_hook(self._hook, with_kwargs=True)

    def detached(self) -> None:
        """Stop rewriting them (called when the prompt comes out)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module, args, kwargs):
        input_ids = args[0] if args else kwargs.get("input_ids")
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = self._word_embeddings[0](input_ids)  # (B, T) → (B, T, d)
        b = embeds.shape[0]
        prompt = self.embeddings.to(embeds.dtype).unsqueeze(0).expand(b, -1, -1)  # (B, P, d)
        kwargs["inputs_embeds"] = torch.cat([embeds[:, :1], prompt, embeds[:, 1:]], dim=1)  # (B, P + T, d)
        kwargs["input_ids"] = None
        for key, fill in (("attention_mask", 1), ("token_type_ids", 0)):
            if kwargs.get(key) is not None:
                x = kwargs[key]
                pad = x.new_full((b, self.length), fill)
                kwargs[key] = torch.cat([x[:, :1], pad, x[:, 1:]], dim=1)  # (B, P + T)
        if kwargs.get("position_ids") is not None:
            raise ValueError("prompt tuning does not support explicit position_ids")
        return (), kwargs
