"""Saving and loading a task's adapter: one small safetensors file per task.

The file holds only what the task trained (the method's parameters and the classifier head) and,
in its metadata, a JSON description: the method configs, which methods are gated, the number of
labels, and a fingerprint of the base model it was trained on. Loading checks the file and the base
before it touches the model, and undoes its own changes if the tensors then do not fit, so a wrong
base, mismatched shapes or a truncated file give a clear error and leave the model as it was.
Weights are read with safetensors, never with pickle.

``export_peft`` writes a LoRA model in Hugging Face PEFT's format (``adapter_config.json`` +
``adapter_model.safetensors``) that ``peft.PeftModel.from_pretrained`` loads onto the same base.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from . import surgery, tasks
from .config import GateConfig, LoRAConfig
from .gates import Gate
from .models import arch_for
from .owners import checksum, classify_parameters
from .registry import config_types, method_of

FORMAT = "lesson_lib-adapter/1"


class AdapterFileError(ValueError):
    """An adapter file that cannot be used (missing, corrupt, truncated, for another base, other shapes)."""


# --- what a task owns, and what it was trained on ------------------------------------------------------

def _task_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter the active task owns: its methods' parameters, the head, trained LayerNorms."""
    kinds = classify_parameters(model)
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters()
            if kinds[n] not in ("base", "layernorm") or (kinds[n] == "layernorm" and p.requires_grad)}


@contextlib.contextmanager
def _unmerged(model: nn.Module):
    """Take merged LoRA updates out of W for a moment (the fingerprint is of the base), then put them back."""
    merged = [m for m in surgery.lora_modules(model).values() if m.merged]
    for m in merged:
        m.unmerge()
    try:
        yield
    finally:
        for m in merged:
            m.merge()


def _base_info(model: nn.Module) -> dict:
    """Family, sizes and a fingerprint of the frozen base weights (LayerNorms and merges left out)."""
    arch = arch_for(model)
    with _unmerged(model):
        fingerprint = checksum(model, include_layernorm=False)
    return {"family": arch.family, "hidden_size": model.config.hidden_size,
            "layers": len(model.get_submodule(arch.layers)), "checksum": fingerprint}


def _gate_list(model: nn.Module) -> list[Gate]:
    """Every gate once (a gate may be shared, e.g. by LoRA on query and value), in module order."""
    return [m for m in model.modules() if isinstance(m, Gate)]


def _gated_methods(model: nn.Module) -> dict[str, dict]:
    """{method: {"learned": bool}} for every method whose modules carry a gate."""
    out = {}
    for m in model.modules():
        gate = getattr(m, "gate", None)
        if isinstance(gate, Gate):
            out[m.method] = {"learned": gate.linear is not None}
    return out


def _describe(model: nn.Module) -> dict:
    return {
        "format": FORMAT,
        "task": tasks.active_task(model),
        "configs": [{"type": type(c).__name__, **dataclasses.asdict(c)} for c in tasks.configs_of(model)],
        "gates": _gated_methods(model),
        "gate_values": [g.fixed for g in _gate_list(model)],  # values fixed by hand (set_gates), else None
        "num_labels": model.config.num_labels,
        "base": _base_info(model),
    }


# --- saving ---------------------------------------------------------------------------------------------

def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of every tensor's name, dtype, shape and bytes, in name order: changes if any byte does."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_adapter(model: nn.Module, path: str | Path) -> int:
    """Write the active task to ``path`` (one .safetensors file); returns its size in bytes.

    The file's description carries a SHA-256 checksum of its tensors, so a file damaged later (bytes
    flipped on a disk or in a copy) is refused by ``load_adapter`` instead of loading wrong weights.
    """
    if not tasks.configs_of(model):
        raise ValueError("nothing to save: inject a method first (ll.inject(model, ...))")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name, e.g. {path / 'task.safetensors'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")  # a crash mid-write never leaves a half file at ``path``
    tensors = _task_tensors(model)
    save_file(tensors, str(tmp), metadata={"lesson_lib": json.dumps({**_describe(model), "sha256": _digest(tensors)})})
    os.replace(tmp, path)
    return path.stat().st_size


# --- loading --------------------------------------------------------------------------------------------

PEFT_HELP = ("load it with PEFT instead: peft.PeftModel.from_pretrained(base_model, folder). ll.load_adapter "
             "reads the one-file adapters that ll.save_adapter writes")


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Metadata and tensors of an adapter file, or an AdapterFileError saying what is wrong."""
    if path.is_dir():
        if (path / "adapter_config.json").exists():
            raise AdapterFileError(f"{path} is a PEFT adapter folder (from ll.export_peft or PEFT); {PEFT_HELP}")
        raise AdapterFileError(f"{path} is a folder, not an adapter file (ll.save_adapter writes one file)")
    if not path.is_file():
        raise AdapterFileError(f"no adapter file at {path} (save one with ll.save_adapter(model, path))")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata, keys = f.metadata() or {}, list(f.keys())
            tensors = {k: f.get_tensor(k) for k in keys}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise AdapterFileError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {err}. Save it again "
            "with ll.save_adapter(model, path)."
        ) from err
    if "lesson_lib" not in metadata:
        if any(k.startswith("base_model.model.") for k in keys) or (path.parent / "adapter_config.json").exists():
            raise AdapterFileError(f"{path} is a PEFT adapter (from ll.export_peft or PEFT), not a lesson_lib one; "
                                   f"{PEFT_HELP}")
        raise AdapterFileError(f"{path} is a safetensors file, but not one written by ll.save_adapter (it has no "
                               "lesson_lib description); save your task with ll.save_adapter(model, path)")
    try:
        meta = json.loads(metadata["lesson_lib"])
    except ValueError as err:
        raise AdapterFileError(f"{path}: the description inside the file is damaged ({err}); save it again") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise AdapterFileError(f"{path} has format {found!r}, expected {FORMAT!r}")
    if "sha256" in meta and meta["sha256"] != _digest(tensors):
        raise AdapterFileError(f"{path} is damaged: its tensors do not match the checksum stored when it was saved "
                               "(bytes changed on disk or in a copy). Nothing was loaded; save the task again, or "
                               "copy the file again from where it was made.")
    return meta, tensors


@dataclasses.dataclass
class _Plan:
    """What a file asks for: inject calls (configs sharing one gate setting), labels, base, gate values."""

    calls: list[tuple[list, GateConfig | None]]
    num_labels: int
    base: dict
    gate_values: list


def _config(c: dict):
    c = dict(c)
    cls = config_types()[c.pop("type")]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()})


def _plan(meta: dict, path: Path) -> _Plan:
    """Parse the file's description; a damaged one (hand-edited, unknown names) is an AdapterFileError."""
    try:
        configs = [_config(c) for c in meta["configs"]]
        gated = {m: GateConfig(learned=bool(g["learned"])) for m, g in meta["gates"].items()}
        plan = _Plan([], int(meta["num_labels"]), dict(meta["base"]), list(meta["gate_values"]))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise AdapterFileError(f"{path}: the description inside the file is damaged ({err!r}); save it again") from err
    if not configs:
        raise AdapterFileError(f"{path} describes no method")
    for cfg in configs:  # consecutive methods with the same gates went in together
        gates = gated.get(method_of(cfg).name)
        if plan.calls and plan.calls[-1][1] == gates:
            plan.calls[-1][0].append(cfg)
        else:
            plan.calls.append(([cfg], gates))
    return plan


def _check_base(model: nn.Module, base: dict, path: Path) -> None:
    mine = _base_info(model)
    for key, value in base.items():
        if mine.get(key) != value:
            raise AdapterFileError(
                f"{path} was made for another base model ({key}: file {value!r}, this model {mine.get(key)!r}); "
                "load it onto the base it was trained on (ll.load_base() for the packaged MiniLM)."
            )


def load_adapter(model: nn.Module, path: str | Path, name: str | None = None) -> str:
    """Plug a saved task into ``model``, make it active and return its name. On any error the model is unchanged.

    The task is called ``name``, or the name stored in the file. On a model that already has tasks it
    is added beside them (``ll.tasks.set_active`` switches back); a name that is taken is refused.
    """
    path = Path(path)
    meta, tensors = _read(path)
    plan = _plan(meta, path)
    _check_base(model, plan.base, path)
    name = name or meta.get("task") or "default"
    if name in tasks.names(model):
        raise ValueError(f"this model already has a task named {name!r}; load with name='another_name'")
    before = tasks.active_task(model)
    merged = [m for m in surgery.lora_modules(model).values() if m.merged]
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    try:
        for configs, gates in plan.calls:
            surgery.inject(model, configs, gates=gates, name=name, num_labels=plan.num_labels)
        _copy_in(model, tensors, plan.gate_values, path)
    except Exception:
        if tasks.active_task(model) == name:  # at least one inject went in: take the new task out again
            surgery.discard_active(model, before)
        for m in merged:
            m.merge()
        for n, p in model.named_parameters():
            p.requires_grad_(grads.get(n, p.requires_grad))
        raise
    return name


def copy_into(model: nn.Module, path: str | Path) -> None:
    """Copy a saved task's weights into ``model``, which already carries the same methods (in place).

    For a model built the same way as the one that was saved (same methods, sizes and head); anything
    else is an AdapterFileError and the model is left as it was. ``load_adapter`` is for a bare base.
    """
    path = Path(path)
    meta, tensors = _read(path)
    plan = _plan(meta, path)
    _check_base(model, plan.base, path)
    _copy_in(model, tensors, plan.gate_values, path)


@torch.no_grad()
def _copy_in(model: nn.Module, tensors: dict[str, torch.Tensor], gate_values: list, path: Path) -> None:
    params = dict(model.named_parameters())
    wanted = _task_tensors(model)
    missing, extra = sorted(set(wanted) - set(tensors)), sorted(set(tensors) - set(wanted))
    wrong = [k for k in wanted if k in tensors and tensors[k].shape != wanted[k].shape]
    gates = _gate_list(model)
    if missing or extra or wrong or len(gate_values) != len(gates):
        raise AdapterFileError(
            f"{path} does not fit this model: missing {missing[:3]}, unexpected {extra[:3]}, shape mismatch "
            f"{[(k, tuple(tensors[k].shape), tuple(wanted[k].shape)) for k in wrong[:3]]}, "
            f"{len(gate_values)} gate values for {len(gates)} gates"
        )
    for k, t in tensors.items():
        params[k].copy_(t.to(params[k].dtype))
    for gate, value in zip(gates, gate_values):
        gate.fixed = None if value is None else float(value)


# --- PEFT -----------------------------------------------------------------------------------------------

def _peft_targets(model: nn.Module, names: list[str]) -> list[str]:
    """Short names ("query") when they pick exactly the wrapped modules, else the full module names."""
    short = sorted({n.split(".")[-1] for n in names})
    picked = {n for n, _ in model.named_modules() if n.split(".")[-1] in short}
    return short if picked == set(names) else sorted(names)


def export_peft(model: nn.Module, path: str | Path, base_model_name_or_path: str | None = None) -> Path:
    """Write the active LoRA task in PEFT's format, loadable with ``PeftModel.from_pretrained(base, path)``."""
    configs = tasks.configs_of(model)
    if [type(c) for c in configs] != [LoRAConfig]:
        raise ValueError(f"export_peft writes a LoRA-only task; the active task has "
                         f"{[type(c).__name__ for c in configs] or 'no method'}")
    if _gate_list(model):
        raise ValueError("export_peft cannot write gated LoRA (PEFT has no gates)")
    cfg, arch = configs[0], arch_for(model)
    mods = surgery.lora_modules(model)
    tensors = {}
    for name, m in mods.items():
        tensors[f"base_model.model.{name}.lora_A.weight"] = m.lora_A.detach().cpu().contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = m.lora_B.detach().cpu().contiguous()
    for head in arch.head:
        for pname, p in model.get_submodule(head).named_parameters():
            tensors[f"base_model.model.{head}.{pname}"] = p.detach().cpu().contiguous()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "adapter_model.safetensors"), metadata={"format": "pt"})
    peft_cfg = {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "r": cfg.r, "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout, "use_rslora": cfg.rslora, "bias": "none", "fan_in_fan_out": False,
        "target_modules": _peft_targets(model, list(mods)), "modules_to_save": list(arch.head),
        "init_lora_weights": True, "inference_mode": True,
        "base_model_name_or_path": base_model_name_or_path or getattr(model.config, "_name_or_path", None) or None,
    }
    (path / "adapter_config.json").write_text(json.dumps(peft_cfg, indent=2))
    return path
