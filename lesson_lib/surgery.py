"""Model surgery: put methods into a frozen model, take them out again without a trace.

* ``find_targets(model, patterns)`` → the module names a method would wrap;
* ``inject(model, cfg)`` wraps modules (the original is kept at ``wrapper.base``), freezes the base
  by module structure and returns a report of what was added where;
* ``remove(model)`` puts every original module back: the very same objects, so the base weights are
  bit for bit what they were, and restores the original head;
* named tasks: ``inject(model, cfg, name="topic", num_labels=5)`` stashes the active task (its method
  modules and head) and starts a new one on the same frozen base; ``set_active(model, name)`` switches.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from . import prefix as prefix_mod
from .adapter import adapter_after
from .config import AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, PromptConfig
from .devices import model_device, model_dtype, to_model
from .gates import Gate
from .lora import LoRALinear
from .models import Arch, arch_for, max_tokens
from .prompt import SoftPrompt

METHOD_OF = {LoRAConfig: "lora", AdapterConfig: "adapter", PrefixConfig: "prefix", PromptConfig: "prompt"}


# --- finding modules ---------------------------------------------------------------------------------

def _layer_index(name: str, arch: Arch) -> int | None:
    m = re.match(re.escape(arch.layers) + r"\.(\d+)\.", name + ".")
    return int(m.group(1)) if m else None


def _pattern_regex(pattern: str, arch: Arch) -> re.Pattern:
    """alias ("query") → that path inside any layer; ".suffix" or a plain name → a suffix; else a regex."""
    path = arch.aliases().get(pattern)
    if path is not None:
        return re.compile(re.escape(arch.layers) + r"\.\d+\." + re.escape(path))
    if re.fullmatch(r"\.?[\w.]+", pattern):
        return re.compile(r"(?:.*\.)?" + re.escape(pattern.lstrip(".")))
    return re.compile(pattern)


def _plain_names(model: nn.Module) -> dict[str, str]:
    """{real name: plain name} of every module that is not the library's, where the plain name is the one the
    module had before any method was added: a wrapper keeps the original at ``.base``, so
    ``….output.dense.base`` (inside an adapter's wrapper) is plainly ``….output.dense``. A method's own
    modules (an adapter's ``down`` and ``up``) are not targets and are left out."""
    out: dict[str, str] = {}

    def walk(module: nn.Module, real: str, plain: str) -> None:
        wrapper = hasattr(module, "method")
        for name, child in module._modules.items():
            if child is None or (wrapper and name != "base"):
                continue
            r = f"{real}.{name}" if real else name
            p = plain if wrapper else (f"{plain}.{name}" if plain else name)
            if not hasattr(child, "method"):
                out[r] = p
            walk(child, r, p)

    walk(model, "", "")
    return out


def find_targets(model: nn.Module, patterns, layers=None) -> list[str]:
    """Names of the modules matching ``patterns`` (aliases, exact names, ``.suffix`` or regexes).

    Patterns are matched against the names modules had before any method was added, so a projection that
    already carries another method (an adapter after it, a prefix around its attention) is found the same
    way. When a pattern matches nothing, the error lists the patterns and real module names to choose from.
    """
    arch = arch_for(model)
    patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    if layers is not None:
        _layer_ids(model, arch, layers)  # layers out of range: say so, not "matches no module"
    names = _plain_names(model)
    found: list[str] = []
    for pattern in patterns:
        rx = _pattern_regex(pattern, arch)
        hits = [real for real, plain in names.items()
                if rx.fullmatch(plain) and (layers is None or _layer_index(real, arch) in layers)]
        if not hits:
            examples = [p for p in names.values() if _layer_index(p, arch) == 0][:12]
            raise ValueError(
                f"target {pattern!r} (from {patterns}) matches no module. Use an alias "
                f"{sorted(arch.aliases())}, a suffix or a regex. Module names in layer 0: {examples}"
            )
        found += [h for h in hits if h not in found]
    return found


def _split(name: str) -> tuple[str, str]:
    parent, _, attr = name.rpartition(".")
    return parent, attr


# --- bookkeeping: tasks and what each one added ------------------------------------------------------

@dataclass
class _Entry:
    """One change to the model: ``module`` sits at ``parent.attr``; stashing puts ``original`` back."""

    parent: nn.Module
    attr: str
    module: nn.Module
    original: nn.Module | None


@dataclass
class _Task:
    configs: list = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)
    head: dict[str, nn.Module] = field(default_factory=dict)
    num_labels: int = 2
    train_layernorm: bool = False
    layernorm_values: list[torch.Tensor] | None = None  # this task's trained LayerNorms, while stashed


@dataclass
class _State:
    requires_grad: dict[str, bool]
    original_head: dict[str, nn.Module]
    num_labels: int
    layernorms: list[tuple[nn.Parameter, torch.Tensor]]  # (parameter, its original value)
    tasks: dict[str, _Task] = field(default_factory=dict)
    active: str = "default"


_STATES: weakref.WeakKeyDictionary[nn.Module, _State] = weakref.WeakKeyDictionary()


def _state(model: nn.Module) -> _State:
    if model not in _STATES:
        arch = arch_for(model)
        _STATES[model] = _State(
            requires_grad={n: p.requires_grad for n, p in model.named_parameters()},
            original_head={h: copy.deepcopy(model.get_submodule(h)) for h in arch.head},
            num_labels=model.config.num_labels,
            layernorms=[],
        )
        kinds = classify_parameters(model)
        _STATES[model].layernorms = [(p, p.detach().clone()) for n, p in model.named_parameters()
                                     if kinds[n] == "layernorm"]
    return _STATES[model]


def _put(entry: _Entry, module: nn.Module | None) -> None:
    if isinstance(entry.module, SoftPrompt):
        entry.module.detach_hook()
    if module is None:
        delattr(entry.parent, entry.attr)
    else:
        setattr(entry.parent, entry.attr, module)


def _set_num_labels(model: nn.Module, n: int) -> None:
    """The head's width, in the config and in the attribute the model's loss reads (``model.num_labels``)."""
    model.config.num_labels = n
    if hasattr(model, "num_labels"):
        model.num_labels = n


@torch.no_grad()
def _stash(model: nn.Module, task: _Task) -> None:
    """Take a task's modules out (newest first) and keep them, with its head and LayerNorms, for later."""
    for entry in reversed(task.entries):
        _put(entry, entry.original)
    task.head = {h: model.get_submodule(h) for h in arch_for(model).head}
    if task.train_layernorm:  # LayerNorms are base modules: keep this task's values, put the originals back
        pairs = _STATES[model].layernorms
        task.layernorm_values = [p.detach().clone() for p, _ in pairs]
        for p, original in pairs:
            p.copy_(original)


@torch.no_grad()
def _restore(model: nn.Module, task: _Task) -> None:
    """Put a stashed task back. The model may have moved (``.to("cuda")``, ``.double()``) while the task was
    out, so its modules follow the model's device and dtype first."""
    device, dtype = model_device(model), model_dtype(model)
    if task.layernorm_values is not None:
        for (p, _), value in zip(_STATES[model].layernorms, task.layernorm_values):
            p.copy_(value)
    for entry in task.entries:
        _put(entry, entry.module.to(device, dtype))
        if isinstance(entry.module, SoftPrompt):
            entry.module.attach(model.get_submodule(arch_for(model).backbone))
    for path, head in task.head.items():
        model.set_submodule(path, head.to(device, dtype))
    _set_num_labels(model, task.num_labels)


# --- which parameter belongs to whom ------------------------------------------------------------------

def classify_parameters(model: nn.Module) -> dict[str, str]:
    """name → "base", "head", "layernorm" (a base LayerNorm inside a layer) or a method name.

    A parameter belongs to the deepest library module on its path, unless the path continues into
    that module's ``.base`` (the wrapped original), in which case it is a base parameter.
    """
    arch = arch_for(model)
    ln_rx = re.compile(re.escape(arch.layers) + r"\.\d+\.(?:.*\.)?(?:" + "|".join(
        re.escape(p.split(".")[-1]) for p in arch.layernorms) + r")\.(?:weight|bias)")
    kinds: dict[str, str] = {}
    for name, _ in model.named_parameters():
        comps, cur, kind = name.split("."), model, "base"
        for i, comp in enumerate(comps[:-1]):
            cur = cur._modules[comp]
            if hasattr(cur, "method"):
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
    import hashlib

    h = hashlib.sha256()
    kinds = classify_parameters(model)
    for name, p in model.named_parameters():
        if kinds[name] == "base" or (include_layernorm and kinds[name] == "layernorm"):
            h.update(re.sub(r"(?:\.base)+\.", ".", name).encode())  # the name without any wrapper's ".base"
            h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _freeze(model: nn.Module, train_layernorm: bool) -> None:
    """Only the methods' parameters, the head (and, if asked, the LayerNorms) are trained."""
    trainable = {"base": False, "layernorm": train_layernorm, "head": True}
    kinds = classify_parameters(model)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable.get(kinds[name], True))


def freeze_base(model: nn.Module) -> None:
    """Freeze everything but the classifier head (the "head only" baseline); ``remove`` undoes it."""
    _state(model)
    _freeze(model, train_layernorm=False)


# --- building each method's modules -------------------------------------------------------------------

def _outermost(model: nn.Module, arch: Arch, layer: int, path: str) -> tuple[nn.Module, str, nn.Module]:
    """(parent, attribute, module) at ``path`` inside layer ``layer``, looking through wrappers' ``.base``."""
    cur = model.get_submodule(arch.layers)[layer]
    parent, attr = cur, ""
    for comp in path.split("."):
        while comp not in cur._modules and hasattr(cur, "base"):
            cur = cur.base
        parent, attr, cur = cur, comp, cur._modules[comp]
    return parent, attr, cur


def _layer_ids(model: nn.Module, arch: Arch, wanted) -> list[int]:
    n = len(model.get_submodule(arch.layers))
    ids = list(range(n)) if wanted is None else list(wanted)
    bad = [i for i in ids if not 0 <= i < n]
    if bad:
        raise ValueError(f"layers {bad} do not exist; this model has layers 0..{n - 1}")
    return ids


def _plan_lora(model: nn.Module, arch: Arch, cfg: LoRAConfig) -> list[tuple[_Entry, int | None]]:
    plan = []
    for name in find_targets(model, cfg.targets, cfg.layers):
        parent, attr = _split(name)
        base = model.get_submodule(name)
        wrapper = LoRALinear(base, cfg.r, cfg.alpha, cfg.dropout, cfg.rslora)
        plan.append((_Entry(model.get_submodule(parent), attr, wrapper, base), _layer_index(name, arch)))
    return plan


def _plan_adapter(model: nn.Module, arch: Arch, cfg: AdapterConfig) -> list[tuple[_Entry, int | None]]:
    where = ("output", "ffn_output") if cfg.placement == "houlsby" else ("ffn_output",)
    d, plan = model.config.hidden_size, []
    for i in _layer_ids(model, arch, cfg.layers):
        for alias in where:
            parent, attr, base = _outermost(model, arch, i, arch.aliases()[alias])
            wrapper = adapter_after(base, d, cfg.bottleneck, cfg.activation, cfg.init)
            plan.append((_Entry(parent, attr, wrapper, base), i))
    return plan


def _plan_prefix(model: nn.Module, arch: Arch, cfg: PrefixConfig) -> list[tuple[_Entry, int | None]]:
    ids = _layer_ids(model, arch, cfg.layers)
    d, heads, plan, encoder = model.config.hidden_size, model.config.num_attention_heads, [], None
    ref = next(model.parameters())
    if cfg.reparam:
        n_layers = len(model.get_submodule(arch.layers))
        encoder = prefix_mod.PrefixEncoder(n_layers, cfg.length, d, cfg.reparam_hidden).to(ref.device, ref.dtype)
        plan.append((_Entry(model, "prefix_encoder", encoder, None), None))
    for i in ids:
        parent, attr, base = _outermost(model, arch, i, arch.attention)
        wrapper = prefix_mod.PrefixAttention(base, arch, i, cfg.length, heads, encoder).to(ref.device, ref.dtype)
        plan.append((_Entry(parent, attr, wrapper, base), i))
    return plan


def _plan_prompt(model: nn.Module, arch: Arch, cfg: PromptConfig) -> list[tuple[_Entry, int | None]]:
    room = max_tokens(model) - 2  # [CLS] and [SEP] at least
    if cfg.length > room:
        raise ValueError(f"a prompt of {cfg.length} vectors does not fit: this model reads at most {max_tokens(model)} "
                         f"positions, and [CLS] and [SEP] need two, so the prompt can be at most {room} long "
                         "(and every text is cut to the positions left)")
    words = model.get_submodule(arch.backbone).get_input_embeddings()
    return [(_Entry(model, "soft_prompt", SoftPrompt(words, cfg.length, cfg.init), None), None)]


_PLANNERS = {"lora": _plan_lora, "adapter": _plan_adapter, "prefix": _plan_prefix, "prompt": _plan_prompt}


# --- the report -----------------------------------------------------------------------------------------

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


def _own_params(module: nn.Module) -> int:
    """Parameters a library module adds, not counting the wrapped original at ``.base``."""
    return sum(p.numel() for n, p in module.named_parameters()
               if not n.startswith("base.") and ".gate." not in f".{n}")  # gates are reported on their own


# --- inject / remove --------------------------------------------------------------------------------------

def _as_list(configs) -> list:
    configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
    if not configs:
        raise ValueError("inject needs at least one method config, e.g. ll.inject(model, ll.LoRAConfig(r=8)); "
                         "to train only the head, use ll.freeze_base(model)")
    for cfg in configs:
        if type(cfg) not in METHOD_OF:
            raise TypeError(f"inject takes LoRAConfig, AdapterConfig, PrefixConfig or PromptConfig, got {cfg!r}")
    methods = [METHOD_OF[type(c)] for c in configs]
    if len(set(methods)) != len(methods):
        raise ValueError(f"each method may appear once per inject call, got {methods}")
    return configs


def _whole(value, at_least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= at_least


def _check_counts(model: nn.Module, num_labels, seed) -> None:
    if num_labels is not None and not _whole(num_labels, 2):
        raise ValueError(f"num_labels must be a whole number of classes ≥ 2 (or None: keep the model's "
                         f"{model.config.num_labels}), got {num_labels!r}")
    if not _whole(seed, 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _fresh_head(model: nn.Module, arch: Arch, num_labels: int, seed: int = 0) -> dict[str, nn.Module]:
    """A new classifier head with ``num_labels`` outputs, initialised like transformers does."""
    head = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for path in arch.head:
            old = model.get_submodule(path)
            new = copy.deepcopy(old)
            last = [m for m in new.modules() if isinstance(m, nn.Linear)][-1]
            if path == arch.head[-1] and last.out_features != num_labels:
                last.weight = nn.Parameter(last.weight.new_empty(num_labels, last.in_features))
                last.bias = nn.Parameter(last.bias.new_empty(num_labels))
                last.out_features = num_labels
            for m in new.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=model.config.initializer_range)
                    nn.init.zeros_(m.bias)
            head[path] = new
    return head


def _begin_task(model: nn.Module, st: _State, name: str, num_labels: int | None) -> tuple[_Task, _Task | None]:
    """The task to add to, and the previously active task if it had to be stashed for a new one."""
    arch = arch_for(model)
    if name in st.tasks and name != st.active:
        raise ValueError(f"task {name!r} already exists; switch to it with ll.set_active(model, {name!r})")
    if name == st.active and name in st.tasks:
        return st.tasks[name], None
    previous = st.tasks.get(st.active)
    n = num_labels or model.config.num_labels
    if previous is not None:
        task = _Task(head=_fresh_head(model, arch, n, seed=len(st.tasks)), num_labels=n)
    elif n != model.config.num_labels:
        task = _Task(head=_fresh_head(model, arch, n), num_labels=n)
    else:
        task = _Task(head={h: model.get_submodule(h) for h in arch.head}, num_labels=n)
    return task, previous


def inject(model: nn.Module, configs, gates: GateConfig | None = None, name: str | None = None,
           num_labels: int | None = None, seed: int = 0) -> InjectReport:
    """Add one method, or several at once (UniPELT, with ``gates``), to ``model``; freeze the rest.

    ``name`` starts a new task (its own method modules and head, on the same frozen base) or adds
    to the active one. The new modules' random initial values come from ``seed`` alone (not from
    whatever random numbers were drawn before), so the same call gives the same model, on any device.
    On any error the model is left exactly as it was.
    """
    arch, configs = arch_for(model), _as_list(configs)
    _check_counts(model, num_labels, seed)
    st = _state(model)
    name = name or st.active
    task, previous = _begin_task(model, st, name, num_labels)
    have = {METHOD_OF[type(c)] for c in task.configs}
    clash = have & {METHOD_OF[type(c)] for c in configs}
    if clash:
        raise ValueError(f"task {name!r} already has {sorted(clash)}; remove it first (ll.remove(model)) "
                         "or start another task (name=...). Methods are never stacked twice.")
    if gates is not None and any(isinstance(c, PromptConfig) for c in configs):
        raise ValueError("gates cover LoRA, adapters and prefix tuning (UniPELT); prompt tuning is not gated")
    merged = [m for m in lora_modules(model).values() if m.merged] if previous is not None else []
    if previous is not None:  # a merged LoRA must leave W before the next task shares the base
        unmerge(model)
        _stash(model, previous)
    added: list[tuple[_Entry, int | None]] = []
    heads_before = {path: model.get_submodule(path) for path in task.head}
    try:
        for path, head in task.head.items():
            model.get_submodule(path)  # exists
            _set(model, path, head)
        with torch.random.fork_rng(devices=[]):  # new modules are made on the CPU from this seed, then moved
            torch.manual_seed(seed)
            for cfg in configs:
                for entry, layer in _PLANNERS[METHOD_OF[type(cfg)]](model, arch, cfg):
                    entry.module.train(model.training)  # new modules start in train mode; follow the model
                    _put(entry, entry.module)
                    if isinstance(entry.module, SoftPrompt):
                        entry.module.attach(model.get_submodule(arch.backbone))
                    added.append((entry, layer))
            if gates is not None:
                _add_gates(model, [(e.module, i) for e, i in added], gates)
    except Exception:
        for entry, _ in reversed(added):
            _put(entry, entry.original)
        for path, head in heads_before.items():
            _set(model, path, head)
        if previous is not None:
            _restore(model, previous)
            for m in merged:
                m.merge()
        raise
    task.configs += configs
    task.entries += [e for e, _ in added]
    task.train_layernorm |= any(getattr(c, "train_layernorm", False) for c in configs)
    st.tasks[name], st.active = task, name
    _set_num_labels(model, task.num_labels)
    _freeze(model, task.train_layernorm)
    rows = [(_name_of(model, e.module), e.module.method, _own_params(e.module)) for e, _ in added]
    gates_added = {id(g): g for e, _ in added for g in e.module.modules() if isinstance(g, Gate)}
    rows += [(_name_of(model, g), "gate", sum(p.numel() for p in g.parameters())) for g in gates_added.values()]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return InjectReport(rows, trainable, sum(p.numel() for p in model.parameters()), name)


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, attr = _split(path)
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def _name_of(model: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in model.named_modules() if m is module), "?")


def _add_gates(model: nn.Module, modules: list[tuple[nn.Module, int | None]], cfg: GateConfig) -> None:
    """One gate per method per layer and input width (shared by, e.g., the LoRA on query and on value of that
    layer; LoRA on ffn_output, whose input is 4d wide, gets its own)."""
    made: dict[tuple[str, int, int], Gate] = {}
    ref = next(model.parameters())
    for module, layer in modules:
        target = module.adapter if hasattr(module, "adapter") else module
        if not hasattr(target, "gate") or layer is None:
            continue
        d = module.base.in_features if isinstance(module, LoRALinear) else model.config.hidden_size
        key = (module.method, layer, d)
        if key not in made:
            made[key] = Gate(d, cfg.learned, cfg.value).to(ref.device, ref.dtype).train(model.training)
        target.gate = made[key]


def remove(model: nn.Module) -> bool:
    """Take every method out and put the original modules and head back (base weights bit for bit).

    Returns True, or False when there was nothing to remove (then nothing changes).
    """
    st = _STATES.get(model)
    if st is None:
        return False
    if st.active in st.tasks:
        unmerge(model)
        _stash(model, st.tasks[st.active])
    device, dtype = model_device(model), model_dtype(model)  # the model may have moved since inject
    for path, head in st.original_head.items():
        _set(model, path, copy.deepcopy(head).to(device, dtype))
    _set_num_labels(model, st.num_labels)
    for n, p in model.named_parameters():
        p.requires_grad_(st.requires_grad.get(n, True))
    del _STATES[model]
    return True


def set_active(model: nn.Module, name: str) -> None:
    """Switch the model to task ``name``: its method modules and its head go in, the others come out."""
    st = _STATES.get(model)
    if st is None or name not in st.tasks:
        known = sorted(st.tasks) if st else []
        raise ValueError(f"no task named {name!r}; tasks on this model: {known}")
    if name == st.active:
        return
    unmerge(model)
    _stash(model, st.tasks[st.active])
    _restore(model, st.tasks[name])
    st.active = name
    _freeze(model, st.tasks[name].train_layernorm)


def discard_active(model: nn.Module, previous: str | None) -> None:
    """Throw the active task away and go back to ``previous`` (None: to the bare base, as ``remove``)."""
    st = _STATES.get(model)
    if st is None:
        return
    if previous is None:
        remove(model)
        return
    current = st.tasks.pop(st.active)
    _stash(model, current)
    st.active = previous
    _restore(model, st.tasks[previous])
    _freeze(model, st.tasks[previous].train_layernorm)


def tasks(model: nn.Module) -> dict[str, list]:
    """{task name: its method configs}; the active one is ``active_task(model)``."""
    st = _STATES.get(model)
    return {} if st is None else {n: list(t.configs) for n, t in st.tasks.items()}


def active_task(model: nn.Module) -> str | None:
    st = _STATES.get(model)
    return None if st is None or st.active not in st.tasks else st.active


def configs_of(model: nn.Module) -> list:
    """The method configs of the active task (empty when nothing is injected)."""
    st = _STATES.get(model)
    return [] if st is None or st.active not in st.tasks else list(st.tasks[st.active].configs)


# --- merge, gates, folding ------------------------------------------------------------------------------

def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
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
    return sum(m.unmerge() for m in lora_modules(model).values())


def _gates(model: nn.Module):
    from .gates import gates_of

    return gates_of(model, list(model.get_submodule(arch_for(model).layers)))


def set_gates(model: nn.Module, **values) -> None:
    """Fix UniPELT gates by hand, e.g. ``set_gates(model, adapter=0.0, lora=[1, 1, 1, 0, 0, 0])``."""
    from .gates import set_gate_values

    gates = _gates(model)
    if not gates:
        raise ValueError("this model has no gates; inject with gates=ll.GateConfig(...)")
    set_gate_values(gates, **values)


@torch.inference_mode()
def read_gates(model: nn.Module, batch: dict) -> dict[str, list[float]]:
    """Run ``batch`` through the model and return each method's gate value per layer (batch mean)."""
    gates = _gates(model)
    if not gates:
        raise ValueError("this model has no gates; inject with gates=ll.GateConfig(...)")
    was_training = model.training
    model.eval()
    model(**{k: v for k, v in to_model(model, batch).items() if k != "labels"})
    model.train(was_training)
    from .gates import layer_values

    return layer_values(gates)


def fold_prefix(model: nn.Module) -> int:
    """After training with ``PrefixConfig(reparam=True)``: keep only the prefix tensors, drop the MLP.

    Returns the number of parameters removed. The model's outputs do not change.
    """
    st = _STATES.get(model)
    task = st.tasks.get(st.active) if st else None
    entry = next((e for e in (task.entries if task else []) if isinstance(e.module, prefix_mod.PrefixEncoder)), None)
    if entry is None:
        raise ValueError("no prefix MLP to fold: inject PrefixConfig(reparam=True) first")
    before = sum(p.numel() for p in model.parameters())
    layers = [e.module for e in task.entries if isinstance(e.module, prefix_mod.PrefixAttention)]
    prefix_mod.fold(entry.module, layers)
    _put(entry, None)
    task.entries.remove(entry)
    task.configs = [dataclasses.replace(c, reparam=False) if isinstance(c, PrefixConfig) else c for c in task.configs]
    _freeze(model, task.train_layernorm)
    return before - sum(p.numel() for p in model.parameters())
