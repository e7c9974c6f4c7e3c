"""Named tasks on one frozen base: one set of method modules and one head per task, switched in and out.

    ll.inject(model, ll.LoRAConfig(r=8))                                 # the task "default"
    ll.inject(model, ll.LoRAConfig(r=8), name="topic", num_labels=5)     # a second task, same base
    ll.tasks.set_active(model, "default")                                # switch back
    ll.tasks.names(model)                                                # {"default": [...], "topic": [...]}

What was injected is kept **on the model** (``model._lesson_state``, a plain attribute): which modules each
task put where, its head, and what the model was like before (which parameters trained, its head, its
LayerNorms). So ``copy.deepcopy(model)`` copies it along with the model, and ``ll.remove`` on the copy
takes the copy's methods out. A task that is not active is *stashed*: its modules are taken out (the
originals go back) and kept in its ``Task`` record, with its head and, if it trained them, its LayerNorms.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .devices import model_device, model_dtype
from .lora import LoRALinear
from .models import arch_for
from .owners import classify_parameters, freeze
from .targets import Change, put, set_path, take_out

STATE = "_lesson_state"  # the model attribute that holds it


@dataclass
class Task:
    """One task: its method configs, the changes they made, its head, and (while stashed) its LayerNorms."""

    configs: list = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    head: dict[str, nn.Module] = field(default_factory=dict)
    num_labels: int = 2
    train_layernorm: bool = False
    layernorm_values: list[torch.Tensor] | None = None


@dataclass
class State:
    """What a model was before the first inject, and its tasks."""

    requires_grad: dict[str, bool]
    original_head: dict[str, nn.Module]
    num_labels: int
    layernorms: list[tuple[nn.Parameter, torch.Tensor]]  # (parameter, its original value)
    tasks: dict[str, Task] = field(default_factory=dict)
    active: str = "default"


def state(model: nn.Module) -> State | None:
    """The model's task state, or None when nothing was injected (or it was all removed)."""
    return model.__dict__.get(STATE)


def new_state(model: nn.Module) -> State:
    """The model's state, recording how the model is now if this is the first change to it."""
    st = state(model)
    if st is None:
        kinds = classify_parameters(model)
        st = State(requires_grad={n: p.requires_grad for n, p in model.named_parameters()},
                   original_head={h: copy.deepcopy(model.get_submodule(h)) for h in arch_for(model).head},
                   num_labels=model.config.num_labels,
                   layernorms=[(p, p.detach().clone()) for n, p in model.named_parameters() if kinds[n] == "layernorm"])
        model.__dict__[STATE] = st  # a plain attribute: not a module, parameter or buffer
    return st


def forget(model: nn.Module) -> None:
    model.__dict__.pop(STATE, None)


def set_num_labels(model: nn.Module, n: int) -> None:
    """The head's width, in the config and in the attribute the model's loss reads (``model.num_labels``)."""
    model.config.num_labels = n
    if hasattr(model, "num_labels"):
        model.num_labels = n


def unmerge_all(model: nn.Module) -> int:
    """Take every merged LoRA update out of its weight (a task's W must be the base's before it is stashed)."""
    return sum(m.unmerge() for m in model.modules() if isinstance(m, LoRALinear))


@torch.no_grad()
def stash(model: nn.Module, task: Task) -> None:
    """Take a task's modules out (newest first) and keep them, with its head and LayerNorms, for later."""
    for change in reversed(task.changes):
        take_out(change)
    task.head = {h: model.get_submodule(h) for h in arch_for(model).head}
    if task.train_layernorm:  # LayerNorms are base modules: keep this task's values, put the originals back
        pairs = state(model).layernorms
        task.layernorm_values = [p.detach().clone() for p, _ in pairs]
        for p, original in pairs:
            p.copy_(original)


@torch.no_grad()
def restore(model: nn.Module, task: Task) -> None:
    """Put a stashed task back. The model may have moved (``.to("cuda")``, ``.double()``) while the task was
    out, so its modules follow the model's device and dtype first."""
    device, dtype = model_device(model), model_dtype(model)
    if task.layernorm_values is not None:
        for (p, _), value in zip(state(model).layernorms, task.layernorm_values):
            p.copy_(value)
    for change in task.changes:
        change.module.to(device, dtype)
        put(change)
    for path, head in task.head.items():
        set_path(model, path, head.to(device, dtype))
    set_num_labels(model, task.num_labels)


def set_active(model: nn.Module, name: str) -> None:
    """Switch the model to task ``name``: its method modules and its head go in, the others come out."""
    st = state(model)
    if st is None or name not in st.tasks:
        raise ValueError(f"no task named {name!r}; tasks on this model: {sorted(st.tasks) if st else []}")
    if name == st.active:
        return
    unmerge_all(model)
    stash(model, st.tasks[st.active])
    restore(model, st.tasks[name])
    st.active = name
    freeze(model, st.tasks[name].train_layernorm)


def names(model: nn.Module) -> dict[str, list]:
    """{task name: its method configs}; the active one is ``active_task(model)``."""
    st = state(model)
    return {} if st is None else {n: list(t.configs) for n, t in st.tasks.items()}


def active_task(model: nn.Module) -> str | None:
    """The name of the active task, or None when nothing is injected."""
    st = state(model)
    return None if st is None or st.active not in st.tasks else st.active


def active(model: nn.Module) -> Task | None:
    """The active task's record (None when nothing is injected)."""
    st = state(model)
    return None if st is None else st.tasks.get(st.active)


def configs_of(model: nn.Module) -> list:
    """The method configs of the active task (empty when nothing is injected)."""
    task = active(model)
    return [] if task is None else list(task.configs)


def fresh_head(model: nn.Module, num_labels: int, seed: int = 0) -> dict[str, nn.Module]:
    """A new classifier head with ``num_labels`` outputs, initialised like transformers does."""
    arch, head = arch_for(model), {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for path in arch.head:
            new = copy.deepcopy(model.get_submodule(path))
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


def begin(model: nn.Module, st: State, name: str, num_labels: int | None) -> tuple[Task, Task | None]:
    """The task to add to, and the previously active task if it has to be stashed for a new one."""
    if name in st.tasks and name != st.active:
        raise ValueError(f"task {name!r} already exists; switch to it with ll.tasks.set_active(model, {name!r})")
    if name == st.active and name in st.tasks:
        return st.tasks[name], None
    previous = st.tasks.get(st.active)
    n = num_labels or model.config.num_labels
    if previous is not None:
        return Task(head=fresh_head(model, n, seed=len(st.tasks)), num_labels=n), previous
    if n != model.config.num_labels:
        return Task(head=fresh_head(model, n), num_labels=n), None
    return Task(head={h: model.get_submodule(h) for h in arch_for(model).head}, num_labels=n), None


def discard_active(model: nn.Module, previous: str | None) -> None:
    """Throw the active task away and go back to task ``previous`` (which must exist)."""
    st = state(model)
    current = st.tasks.pop(st.active)
    stash(model, current)
    st.active = previous
    restore(model, st.tasks[previous])
    freeze(model, st.tasks[previous].train_layernorm)
