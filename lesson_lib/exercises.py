"""Your own layer inside the real model: the exercises' last step.

A checker on random tensors (``lesson_lib/checks.py``) says whether your LoRA layer, adapter or prefix
attention computes the right thing. This module then puts *your* code into all-MiniLM-L6-v2, in the layers the
notebook's recipe trains, and trains it beside the library's version for the same steps on the same batches:

    library:  fresh MiniLM + the library's modules (``ll.inject``)
    yours:    fresh MiniLM, frozen + your modules in the same places, starting from the same numbers
              (the library's A and B, or down and up, or prefix vectors are copied into yours)

Both models then see the same batches in the same order. If your module computes what the library's does,
the two runs stay together: the same outputs at step 0 (equal to the frozen model's: a method must start as
"no change"), nearly the same loss at the end, and the same accuracy to within a point. ``your_lora(...)``
returns a :class:`checks.CheckResult` and prints a small table, like the other checkers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .checks import CheckResult, _Fail, _run
from .config import AdapterConfig, LoRAConfig, PrefixConfig
from .inputs import batch as make_batch
from .models import load_base
from .surgery import freeze_base, inject
from .targets import set_path
from .train import evaluate, train

# fewer steps than the notebook's own run: enough to learn, short enough to wait for (quick mode: a few)
STEPS = {"full": 100, "cpu": 60, "quick": 3}
EVAL_EXAMPLES = {"full": 1000, "cpu": 400, "quick": 32}
LOSS_DRIFT = 0.02  # the same computation in another order drifts by far less (rounding only)
ACCURACY_GAP = 0.02  # yours and the library's may differ by rounding; more than 2 points is a real difference


class _After(nn.Module):
    """The frozen output projection at ``.base``, then your adapter on its output."""

    def __init__(self, base: nn.Module, adapter: nn.Module):
        super().__init__()
        self.base, self.adapter = base, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(x))


def _copy_same_named(src: nn.Module, dst: nn.Module, names: tuple[str, ...]) -> None:
    """Copy the library module's starting values into yours (same names and shapes), so both runs start equal."""
    for name in names:
        mine, lib = dst.get_parameter(name), src.get_parameter(name)
        if mine.shape != lib.shape:
            raise _Fail(f"{name} has shape {tuple(mine.shape)}; the library's has {tuple(lib.shape)}")
        with torch.no_grad():
            mine.copy_(lib)


def _yours_like(library: nn.Module, seed: int, replace: Callable[[nn.Module, str, nn.Module], nn.Module],
                kinds: tuple[type, ...], num_labels: int) -> nn.Module:
    """A fresh frozen model (same head as the library's run) with ``replace(...)`` at each library module."""
    model, _ = load_base(num_labels=num_labels, seed=seed)
    freeze_base(model)
    placed = 0
    for name, lib_module in list(library.named_modules()):
        if isinstance(lib_module, kinds):
            set_path(model, name, replace(model.get_submodule(name), name, lib_module))
            placed += 1
    if placed == 0:
        raise _Fail("the library placed no modules here; nothing to compare")
    device = next(library.parameters()).device
    return model.to(device)


def _side_by_side(name: str, library: nn.Module, yours: nn.Module, recipe, task, mode: str,
                  identity: bool = True) -> str:
    """Same batches, same steps: the two runs' outputs at init, losses and accuracy, as a table.

    ``identity``: the method must start as "no change" (LoRA, adapters); a prefix starts as its random
    vectors, so there yours must only match the library's."""
    base, _ = load_base(num_labels=task.num_labels)
    base = base.to(next(library.parameters()).device)
    batch = make_batch(base, task.test, n=8)
    with torch.no_grad():
        start = [m.eval()(**batch).logits for m in (base, library, yours)]
    if identity and not torch.allclose(start[2], start[0], atol=1e-5):
        raise _Fail("inside MiniLM your module changes the outputs before any training: at init it must "
                    "leave the model exactly as it was (check what starts at zero)")
    if not torch.allclose(start[2], start[1], atol=1e-4):
        raise _Fail("inside MiniLM, starting from the same numbers, your module's outputs differ from the "
                    "library's before any training: compare your formula with the docstring of the library's")
    n_train = sum(p.numel() for p in yours.parameters() if p.requires_grad)
    n_lib = sum(p.numel() for p in library.parameters() if p.requires_grad)
    if n_train != n_lib:
        raise _Fail(f"your model trains {n_train:,} parameters, the library's {n_lib:,}: check what is frozen "
                    "(the base weight W must not train) and what is a Parameter")
    cfg = recipe.train_config(steps=min(STEPS[mode], recipe.steps), eval_every=0, progress=False)
    runs = {who: train(m, task, cfg) for who, m in (("yours", yours), ("library", library))}
    limit = EVAL_EXAMPLES[mode]
    acc = {who: evaluate(m, task.test, limit=limit)["accuracy"] for who, m in (("yours", yours), ("library", library))}
    loss = {who: sum(h.losses[-10:]) / len(h.losses[-10:]) for who, h in runs.items()}
    drift = max(abs(a - b) for a, b in zip(runs["yours"].losses, runs["library"].losses, strict=True))
    table = (f"\n    {'':34s}{'yours':>10s}{'library':>10s}"
             f"\n    {'outputs at init = ' + ('frozen model' if identity else 'library'):34s}{'yes':>10s}{'yes':>10s}"
             f"\n    {'trainable parameters':34s}{n_train:>10,}{n_lib:>10,}"
             f"\n    {f'loss, last 10 of {cfg.steps} steps':34s}{loss['yours']:>10.4f}{loss['library']:>10.4f}"
             f"\n    {f'accuracy, {limit} test tweets':34s}{acc['yours']:>10.1%}{acc['library']:>10.1%}")
    table += f"\n    (largest difference between the two runs' losses at any step: {drift:.1e})"
    if drift > LOSS_DRIFT or (mode != "quick" and abs(acc["yours"] - acc["library"]) > ACCURACY_GAP):
        raise _Fail(f"after the same {cfg.steps} steps on the same batches your model and the library's went "
                    f"apart:{table}")
    return f"your {name} trains inside MiniLM like the library's:{table}"


def _context(method: str, config_for):
    """The recipe, task and mode of this notebook, and the library's model for ``method``."""
    from . import modes
    from .experiments import recipe

    mode = modes.mode()
    r = recipe(method)
    task = r.load_task()
    library, _ = load_base(num_labels=task.num_labels, seed=0)
    inject(library, config_for(r.layers(library)), seed=0)
    return r, task, mode, library


def your_lora(cls, r: int = 8, alpha: int = 16, strict: bool | None = None) -> CheckResult:
    """Put ``cls(base_linear, r, alpha)`` on query and value where the recipe trains LoRA; train it beside
    the library's LoRA (same A and B to start, same batches) and compare."""
    from .lora import LoRALinear

    def check() -> str:
        recipe, task, mode, library = _context("lora", lambda layers: LoRAConfig(r=r, alpha=alpha, layers=layers))

        def replace(original: nn.Module, name: str, lib: LoRALinear) -> nn.Module:
            mine = cls(original, r=r, alpha=alpha)
            _copy_same_named(lib, mine, ("lora_A", "lora_B"))
            return mine

        yours = _yours_like(library, 0, replace, (LoRALinear,), task.num_labels)
        return _side_by_side("LoRA layer", library, yours, recipe, task, mode)

    return _run("your LoRA in MiniLM", check, strict)


def your_adapter(cls, m: int = 64, strict: bool | None = None) -> CheckResult:
    """Put ``cls(d, m)`` after each output projection the library's adapters follow (Houlsby: two per
    layer); train it beside the library's adapters (same down and up to start, same batches) and compare."""
    from .adapter import AdapterAfter

    def check() -> str:
        recipe, task, mode, library = _context("adapter", lambda layers: AdapterConfig(bottleneck=m, layers=layers))

        def replace(original: nn.Module, name: str, lib: AdapterAfter) -> nn.Module:
            d = lib.adapter.up.out_features
            mine = cls(d, m)
            _copy_same_named(lib.adapter, mine, ("down.weight", "down.bias", "up.weight", "up.bias"))
            return _After(original, mine)

        yours = _yours_like(library, 0, replace, (AdapterAfter,), task.num_labels)
        return _side_by_side("adapter", library, yours, recipe, task, mode)

    return _run("your adapter in MiniLM", check, strict)


def your_prefix_attention(fn, length: int = 10, strict: bool | None = None) -> CheckResult:
    """Let ``fn(q, k, v, prefix_k, prefix_v, mask)`` do the attention of the library's (flat) prefix layers;
    train it beside the library's prefix (same prefix vectors to start, same batches) and compare."""
    from .prefix import PrefixAttention

    def check() -> str:
        recipe, task, mode, library = _context(
            "prefix", lambda layers: PrefixConfig(length=length, reparam=False, layers=layers))
        recipe = _flat_prefix_recipe(recipe)

        def replace(original: nn.Module, name: str, lib: PrefixAttention) -> nn.Module:
            mine = PrefixAttention(original, lib.arch, lib.layer_idx, length, lib.n_heads)
            with torch.no_grad():
                mine.prefix.copy_(lib.prefix)
            mine.attend_fn = fn
            return mine

        for module in library.modules():  # your function has no attention dropout: switch the library's off too
            if isinstance(module, PrefixAttention):
                module.base.dropout.p = 0.0
        yours = _yours_like(library, 0, replace, (PrefixAttention,), task.num_labels)
        return _side_by_side("prefix attention", library, yours, recipe, task, mode, identity=False)

    return _run("your prefix attention in MiniLM", check, strict)


def _flat_prefix_recipe(recipe):
    """A flat prefix (no MLP) needs much larger steps than the MLP-reparametrised one (notebook 05 shows it)."""
    from dataclasses import replace

    from .experiments import LEARNING_RATES

    return replace(recipe, lr=LEARNING_RATES["prefix_flat"])
