"""Whose is each parameter: the frozen base, the classifier head, a LayerNorm, or a method — and freezing by it.

* ``classify_parameters(model)``: name → "base", "head", "layernorm" or a method's name ("lora", …);
* ``freeze(model, train_layernorm)``: only the methods, the head (and, if asked, the LayerNorms) train;
* ``checksum(model)``: a short fingerprint of the base weights, to show that training never touched them.

Freezing goes by who owns a parameter (the module structure), never by substrings of parameter names.
"""

from __future__ import annotations

import hashlib
import re

import torch
from torch import nn

from .models import arch_for
from .module import MethodModule


def classify_parameters(model: nn.Module) -> dict[str, str]:
    """name → "base", "head", "layernorm" (a base LayerNorm inside a layer) or a method name.

    A parameter belongs to the deepest library module on its path, unless the path continues into
    that module's ``.base`` (the wrapped original), in which case it is a base parameter.
    """
    arch = arch_for(model)
    ln_rx = re.compile(re.escape(arch.layers) + r"\.\d+\.(?:.*\.)?(?:" + "|".join(
        re.escape(p.split(".")[-1]) for p in arch.layernorms) + r")\.(?:base\.)*(?:weight|bias)")
    kinds: dict[str, str] = {}
    for name, _ in model.named_parameters():
        comps, cur, kind = name.split("."), model, "base"
        for i, comp in enumerate(comps[:-1]):
            cur = cur._modules[comp]
            if isinstance(cur, MethodModule):
                kind = "base" if comps[i + 1] == "base" else cur.method
        if kind == "base" and any(name == h or name.startswith(h + ".") for h in arch.head):
            kind = "head"
        elif kind == "base" and ln_rx.fullmatch(name):
            kind = "layernorm"
        kinds[name] = kind
    return kinds


def checksum(model: nn.Module, include_layernorm: bool = True) -> str:
    """A short fingerprint of the base weights (everything but methods and head), to show they never change.

    ``include_layernorm=False`` leaves out the layers' LayerNorms (which Houlsby-style training changes).
    """
    h = hashlib.sha256()
    kinds = classify_parameters(model)
    for name, p in model.named_parameters():
        if kinds[name] == "base" or (include_layernorm and kinds[name] == "layernorm"):
            h.update(re.sub(r"(?:\.base)+\.", ".", name).encode())  # the name without any wrapper's ".base"
            h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def freeze(model: nn.Module, train_layernorm: bool = False) -> None:
    """Only the methods' parameters, the head (and, if asked, the LayerNorms) are trained."""
    trainable = {"base": False, "layernorm": train_layernorm, "head": True}
    kinds = classify_parameters(model)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable.get(kinds[name], True))
