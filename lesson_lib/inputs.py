"""Model inputs made the one safe way: tokenised by the model's own tokenizer, on the model's device.

    batch = ll.batch(model, task.test, n=16)   # 16 examples of a class-balanced shuffle, on the model's device
    batch = ll.batch(model, ["what a flight", "lost my bag again"])

The lessons never build a batch by hand (a tensor made by hand lands on the CPU in fp32 and fails on a GPU).
"""

from __future__ import annotations

import torch
from torch import nn

from .data import Split
from .devices import to_model
from .models import token_budget, tokenizer_for


def batch(model: nn.Module, data, n: int | None = None, tokenizer=None, max_length: int | None = None,
          seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch for ``model``: token ids and attention mask on the model's device, without labels.

    ``data`` is a list of texts (all of them, or the first ``n``), or a ``Split`` (its first ``n`` examples, 16
    by default, of a class-balanced shuffle with ``seed``, so the same call always gives the same batch). Texts
    are cut to ``max_length`` tokens (default: the split's budget, else 128).
    """
    if isinstance(data, str):
        raise ValueError("give a list of texts (['a great flight']) or a Split (task.test), not one string")
    if isinstance(data, Split):
        n = 16 if n is None else n
        max_length = max_length or data.max_length
        texts = data.subset(n, seed=seed).texts if len(data) > n and n >= len(set(data.labels)) else data.texts[:n]
    else:
        texts = list(data)[:n]  # n None: every text
    if not texts:
        raise ValueError("no texts to make a batch of: give a non-empty list or Split")
    tok = tokenizer or tokenizer_for(model)
    enc = tok(list(texts), padding=True, truncation=True, max_length=token_budget(model, max_length or 128),
              return_tensors="pt")
    return to_model(model, dict(enc))
