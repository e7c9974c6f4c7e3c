"""Saving and loading a task's adapter: one small safetensors file per task.

The file holds only what the task trained (the method's parameters and the classifier head) and,
in its metadata, a JSON description: the method configs, the number of labels, and a fingerprint of
the base model it was trained on. Loading checks everything before it touches the model, so a
wrong base, mismatched shapes or a truncated file give a clear error and leave the model as it was.
Weights are read with safetensors, never with pickle.

``export_peft`` writes a LoRA model in Hugging Face PEFT's format (``adapter_config.json`` +
``adapter_model.safetensors``) that ``peft.PeftModel.from_pretrained`` loads onto the same base.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from . import surgery
from .config import AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, PromptConfig
from .models import arch_for

FORMAT = "lesson_lib-adapter/1"
_CONFIG_TYPES = {c.__name__: c for c in (LoRAConfig, AdapterConfig, PrefixConfig, PromptConfig, GateConfig)}


class AdapterFileError(ValueError):
    """An adapter file that cannot be used (corrupt, truncated, for another base, other shapes)."""


def _task_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter the active task owns: its methods' parameters and the head."""
    kinds = surgery.classify_parameters(model)
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if kinds[n] not in ("base",)
            and (kinds[n] != "layernorm" or p.requires_grad)}


def _describe(model: nn.Module) -> dict:
    arch = arch_for(model)
    gated = any(isinstance(m, surgery.Gate) for m in model.modules())
    gate_cfg = next((m for m in model.modules() if isinstance(m, surgery.Gate)), None)
    return {
        "format": FORMAT,
        "task": surgery.active_task(model),
        "configs": [{"type": type(c).__name__, **dataclasses.asdict(c)} for c in surgery.configs_of(model)],
        "gates": None if not gated else {"learned": gate_cfg.linear is not None},
        "num_labels": model.config.num_labels,
        "base": {"family": arch.family, "hidden_size": model.config.hidden_size,
                 "layers": len(model.get_submodule(arch.layers)), "checksum": surgery.checksum(model, include_layernorm=False)},
    }


def save_adapter(model: nn.Module, path: str | Path) -> int:
    """Write the active task to ``path`` (one .safetensors file); returns its size in bytes."""
    if not surgery.configs_of(model):
        raise ValueError("nothing to save: inject a method first (ll.inject(model, ...))")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_task_tensors(model), str(path), metadata={"lesson_lib": json.dumps(_describe(model))})
    return path.stat().st_size


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Metadata and tensors of an adapter file, or an AdapterFileError saying what is wrong."""
    if not path.is_file():
        raise AdapterFileError(f"no adapter file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["lesson_lib"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as err:
        raise AdapterFileError(
            f"{path} is not a readable lesson_lib adapter file (truncated or corrupt?): {err}. Save it again "
            "with ll.save_adapter(model, path)."
        ) from err
    if meta.get("format") != FORMAT:
        raise AdapterFileError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta, tensors


def _configs(meta: dict) -> tuple[list, GateConfig | None]:
    configs = []
    for c in meta["configs"]:
        c = dict(c)
        cls = _CONFIG_TYPES[c.pop("type")]
        configs.append(cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()}))
    gates = None if meta.get("gates") is None else GateConfig(learned=meta["gates"]["learned"])
    return configs, gates


def _check_base(model: nn.Module, meta: dict, path: Path) -> None:
    mine = {"family": arch_for(model).family, "hidden_size": model.config.hidden_size,
            "layers": len(model.get_submodule(arch_for(model).layers)), "checksum": surgery.checksum(model, include_layernorm=False)}
    for key, value in meta["base"].items():
        if mine.get(key) != value:
            raise AdapterFileError(
                f"{path} was made for another base model ({key}: file {value!r}, this model {mine.get(key)!r}); "
                "load it onto the base it was trained on (ll.load_base() for the packaged MiniLM)."
            )


def load_adapter(model: nn.Module, path: str | Path, name: str | None = None) -> str:
    """Plug a saved task into ``model``; returns the task's name. The model is unchanged on any error.

    On a model with no methods yet the task becomes the active one; otherwise it is added as a new
    task (``name`` or the name stored in the file) and made active.
    """
    path = Path(path)
    meta, tensors = _read(path)
    _check_base(model, meta, path)
    configs, gates = _configs(meta)
    name = name or meta.get("task") or "default"
    before = surgery.active_task(model)
    if before is not None and name in surgery.tasks(model):
        raise ValueError(f"this model already has a task named {name!r}; load with name='another_name'")
    surgery.inject(model, configs, gates=gates, name=name if before else None, num_labels=meta["num_labels"])
    try:
        _copy_in(model, tensors, path)
    except AdapterFileError:
        surgery.discard_active(model, before)
        raise
    return surgery.active_task(model)


@torch.no_grad()
def _copy_in(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    params = dict(model.named_parameters())
    wanted = _task_tensors(model)
    missing, extra = sorted(set(wanted) - set(tensors)), sorted(set(tensors) - set(wanted))
    wrong = [k for k in wanted if k in tensors and tensors[k].shape != wanted[k].shape]
    if missing or extra or wrong:
        raise AdapterFileError(
            f"{path} does not fit this model: missing {missing[:3]}, unexpected {extra[:3]}, "
            f"shape mismatch {[(k, tuple(tensors[k].shape), tuple(wanted[k].shape)) for k in wrong[:3]]}"
        )
    for k, t in tensors.items():
        params[k].copy_(t.to(params[k].dtype))


def export_peft(model: nn.Module, path: str | Path, base_model_name_or_path: str | None = None) -> Path:
    """Write the active LoRA task in PEFT's format, loadable with ``PeftModel.from_pretrained(base, path)``."""
    configs = surgery.configs_of(model)
    if [type(c) for c in configs] != [LoRAConfig]:
        raise ValueError(f"export_peft writes LoRA only; this task has {[type(c).__name__ for c in configs]}")
    if any(isinstance(m, surgery.Gate) for m in model.modules()):
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
        "target_modules": sorted({n.split(".")[-1] for n in mods}), "modules_to_save": list(arch.head),
        "layers_to_transform": list(cfg.layers) if cfg.layers is not None else None,
        "init_lora_weights": True, "inference_mode": True,
        "base_model_name_or_path": base_model_name_or_path or getattr(model.config, "_name_or_path", None),
    }
    (path / "adapter_config.json").write_text(json.dumps(peft_cfg, indent=2))
    return path
