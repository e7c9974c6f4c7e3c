"""Model surgery: put methods into a frozen model, take them out again without a trace.

* ``inject(model, cfg)`` asks the method's planner (``registry.py``) which modules go where, puts them in
  (a wrapper keeps the original at ``.base``), freezes everything else by ownership (``owners.py``) and
  returns a report of what was added;
* ``remove(model)`` puts every original module back: the very same objects, so the base weights are
  bit for bit what they were, and restores the original head;
* ``merge`` / ``unmerge`` fold LoRA's ΔW into W and take it out again;
* UniPELT's gates: ``set_gates`` fixes them by hand, ``read_gates`` reads them on a batch.

What was injected is kept on the model itself (see ``tasks.py``, which also switches between named tasks),
so a deep copy of the model carries it along.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from . import gates as gates_mod
from . import prefix as prefix_mod
from . import tasks
from .config import GateConfig, PrefixConfig
from .devices import model_device, model_dtype, to_model
from .lora import LoRALinear
from .models import layers_of
from .module import MethodModule
from .owners import freeze
from .registry import method_of
from .targets import Change, put, set_path, take_out


@dataclass
class InjectReport:
    """What ``inject`` added: one row per module (name, method, trainable parameters it brought)."""

    rows: list[tuple[str, str, int]]
    trainable: int
    total: int
    task: str

    @property
    def by_method(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, method, n in self.rows:
            out[method] = out.get(method, 0) + n
        return out

    def __str__(self) -> str:
        lines = [f"task {self.task!r}: added {len(self.rows)} modules"]
        for method, n in self.by_method.items():
            count = sum(1 for _, m, _ in self.rows if m == method)
            lines.append(f"  {method:8s} {count:3d} modules  {n:>12,} parameters")
        share = 100 * self.trainable / self.total
        lines.append(f"  trainable now (with the head): {self.trainable:,} of {self.total:,} ({share:.3f} %)")
        return "\n".join(lines)

    __repr__ = __str__


def _report(model: nn.Module, added: list[Change], task: str) -> InjectReport:
    def own(module: nn.Module) -> int:  # what a module adds: not the wrapped original, not the gates
        return sum(p.numel() for n, p in module.named_parameters()
                   if not n.startswith("base.") and ".gate." not in f".{n}")

    names = {id(m): n for n, m in model.named_modules()}
    rows = [(names.get(id(c.module), "?"), c.module.method, own(c.module)) for c in added]
    gates = {id(g): g for c in added for g in c.module.modules() if isinstance(g, gates_mod.Gate)}
    rows += [(names.get(id(g), "?"), "gate", sum(p.numel() for p in g.parameters())) for g in gates.values()]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return InjectReport(rows, trainable, sum(p.numel() for p in model.parameters()), task)


# --- inject -------------------------------------------------------------------------------------------------

def _checked(model: nn.Module, configs, gates: GateConfig | None, num_labels, seed) -> list:
    configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
    if not configs:
        raise ValueError("inject needs at least one method config, e.g. ll.inject(model, ll.LoRAConfig(r=8)); "
                         "to train only the head, use ll.surgery.freeze_base(model)")
    methods = [method_of(c) for c in configs]
    if len({m.name for m in methods}) != len(methods):
        raise ValueError(f"each method may appear once per inject call, got {[m.name for m in methods]}")
    if gates is not None and not all(m.gated for m in methods):
        ungated = [m.label for m in methods if not m.gated]
        raise ValueError("gates cover LoRA, adapters and prefix tuning (UniPELT); "
                         f"{' and '.join(ungated)} {'is' if len(ungated) == 1 else 'are'} not gated")
    whole = lambda v, least: isinstance(v, int) and not isinstance(v, bool) and v >= least  # noqa: E731
    if num_labels is not None and not whole(num_labels, 2):
        raise ValueError(f"num_labels must be a whole number of classes ≥ 2 (or None: keep the model's "
                         f"{model.config.num_labels}), got {num_labels!r}")
    if not whole(seed, 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return configs


def _add_gates(model: nn.Module, added: list[Change], cfg: GateConfig) -> None:
    """One gate per method per layer and input width (shared by, e.g., the LoRA on query and on value of that
    layer; LoRA on ffn_output, whose input is 4d wide, gets its own)."""
    made: dict[tuple[str, int, int], gates_mod.Gate] = {}
    ref = next(model.parameters())
    for change in added:
        module = change.module
        target = module.adapter if hasattr(module, "adapter") else module
        if not hasattr(target, "gate") or change.layer is None:
            continue
        d = module.base.in_features if isinstance(module, LoRALinear) else model.config.hidden_size
        key = (module.method, change.layer, d)
        if key not in made:
            made[key] = gates_mod.Gate(d, cfg.learned, cfg.value).to(ref.device, ref.dtype).train(model.training)
        target.gate = made[key]


def inject(model: nn.Module, configs, gates: GateConfig | None = None, name: str | None = None,
           num_labels: int | None = None, seed: int = 0) -> InjectReport:
    """Add one method, or several at once (UniPELT, with ``gates``), to ``model``; freeze the rest.

    ``name`` starts a new task (its own method modules and head, on the same frozen base) or adds
    to the active one. The new modules' random initial values come from ``seed`` alone (not from
    whatever random numbers were drawn before), so the same call gives the same model, on any device.
    On any error the model is left exactly as it was.
    """
    configs = _checked(model, configs, gates, num_labels, seed)
    first = tasks.state(model) is None
    st = tasks.new_state(model)
    name = name or st.active
    try:
        task, previous = tasks.begin(model, st, name, num_labels)
    except Exception:
        if first:
            tasks.forget(model)
        raise
    clash = {method_of(c).name for c in task.configs} & {method_of(c).name for c in configs}
    if clash:
        if first:
            tasks.forget(model)
        raise ValueError(f"task {name!r} already has {sorted(clash)}; remove it first (ll.remove(model)) "
                         "or start another task (name=...). Methods are never stacked twice.")
    merged = [m for m in lora_modules(model).values() if m.merged] if previous is not None else []
    if previous is not None:  # a merged LoRA must leave W before the next task shares the base
        tasks.unmerge_all(model)
        tasks.stash(model, previous)
    heads_before = {path: model.get_submodule(path) for path in task.head}
    flags = [(p, p.requires_grad) for p in model.parameters()]  # a LoRALinear freezes the W it wraps
    added: list[Change] = []
    try:
        for path, head in task.head.items():
            set_path(model, path, head)
        with torch.random.fork_rng(devices=[]):  # new modules are made on the CPU from this seed, then moved
            torch.manual_seed(seed)
            for cfg in configs:
                for change in method_of(cfg).plan(model, cfg):
                    change.module.train(model.training)  # new modules start in train mode; follow the model
                    put(change)
                    added.append(change)
            if gates is not None:
                _add_gates(model, added, gates)
    except Exception:
        for change in reversed(added):
            take_out(change)
        for path, head in heads_before.items():
            set_path(model, path, head)
        for p, flag in flags:
            p.requires_grad_(flag)
        if previous is not None:
            tasks.restore(model, previous)
            for m in merged:
                m.merge()
        if first:
            tasks.forget(model)
        raise
    task.configs += configs
    task.changes += added
    task.train_layernorm |= any(getattr(c, "train_layernorm", False) for c in configs)
    st.tasks[name], st.active = task, name
    tasks.set_num_labels(model, task.num_labels)
    freeze(model, task.train_layernorm)
    return _report(model, added, name)


def freeze_base(model: nn.Module) -> None:
    """Freeze everything but the classifier head (the "head only" baseline); ``remove`` undoes it."""
    tasks.new_state(model)
    freeze(model, train_layernorm=False)


# --- remove ---------------------------------------------------------------------------------------------------

def remove(model: nn.Module) -> bool:
    """Take every method out and put the original modules and head back (base weights bit for bit).

    Returns True, or False when there was nothing to remove (then nothing changes).
    """
    st = tasks.state(model)
    if st is None:
        return False
    if st.active in st.tasks:
        tasks.unmerge_all(model)
        tasks.stash(model, st.tasks[st.active])
    left = [n for n, m in model.named_modules() if isinstance(m, MethodModule)]
    assert not left, f"remove left library modules behind: {left[:5]}"
    device, dtype = model_device(model), model_dtype(model)  # the model may have moved since inject
    for path, head in st.original_head.items():
        set_path(model, path, copy.deepcopy(head).to(device, dtype))
    tasks.set_num_labels(model, st.num_labels)
    for n, p in model.named_parameters():
        p.requires_grad_(st.requires_grad.get(n, True))
    tasks.forget(model)
    return True


def discard_active(model: nn.Module, previous: str | None) -> None:
    """Throw the active task away and go back to ``previous`` (None: to the bare base, as ``remove``)."""
    if tasks.state(model) is None:
        return
    if previous is None:
        remove(model)
    else:
        tasks.discard_active(model, previous)


# --- merge, gates, folding ---------------------------------------------------------------------------------------

def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    """{name: LoRALinear} of every LoRA layer in the model."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge(model: nn.Module) -> int:
    """Fold every LoRA update into its weight (zero extra inference cost).

    Returns how many layers this call merged: 0 when they were all merged already (calling it twice is
    harmless). A model without LoRA layers is an error: there is nothing that could be merged.
    """
    mods = lora_modules(model)
    if not mods:
        raise ValueError("this model has no LoRA layers to merge; inject a LoRAConfig first")
    return sum(m.merge() for m in mods.values())


def unmerge(model: nn.Module) -> int:
    """Undo ``merge``: the original weights come back exactly. Returns how many layers this call unmerged
    (0 when nothing was merged, which is harmless)."""
    return tasks.unmerge_all(model)


def _gates(model: nn.Module) -> dict:
    gates = gates_mod.gates_of(model, layers_of(model))
    if not gates:
        raise ValueError("this model has no gates; inject with gates=ll.GateConfig(...)")
    return gates


def set_gates(model: nn.Module, **values) -> None:
    """Fix UniPELT gates by hand, e.g. ``set_gates(model, adapter=0.0, lora=[1, 1, 1, 0, 0, 0])``."""
    gates_mod.set_gate_values(_gates(model), **values)


@torch.inference_mode()
def read_gates(model: nn.Module, batch: dict) -> dict[str, list[float]]:
    """Run ``batch`` through the model and return each method's gate value per layer (batch mean)."""
    gates = _gates(model)
    was_training = model.training
    model.eval()
    model(**{k: v for k, v in to_model(model, batch).items() if k != "labels"})
    model.train(was_training)
    return gates_mod.layer_values(gates)


def fold_prefix(model: nn.Module) -> int:
    """After training with ``PrefixConfig(reparam=True)``: keep only the prefix tensors, drop the MLP.

    Returns the number of parameters removed. The model's outputs do not change.
    """
    task = tasks.active(model)
    change = next((c for c in (task.changes if task else []) if isinstance(c.module, prefix_mod.PrefixEncoder)), None)
    if change is None:
        raise ValueError("no prefix MLP to fold: inject PrefixConfig(reparam=True) first")
    before = sum(p.numel() for p in model.parameters())
    layers = [c.module for c in task.changes if isinstance(c.module, prefix_mod.PrefixAttention)]
    prefix_mod.fold(change.module, layers)
    take_out(change)
    task.changes.remove(change)
    task.configs = [dataclasses.replace(c, reparam=False) if isinstance(c, PrefixConfig) else c for c in task.configs]
    freeze(model, task.train_layernorm)
    return before - sum(p.numel() for p in model.parameters())
