"""PEFT Lab's library: parameter-efficient fine-tuning built from scratch, for the lessons.

    import lesson_lib as ll
    model, tok = ll.load_base()                     # all-MiniLM-L6-v2, offline
    task = ll.load_task("tweets")
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value")))
    history = ll.train(model, task, ll.TrainConfig(steps=200))
    ll.evaluate(model, task.test)
"""

from . import analysis, checks, config, devices, experiments, fast, lecture, metrics, modes, results
from .config import FAST, AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, PromptConfig, TrainConfig
from .data import Split, Task, known_tasks, load_task
from .devices import batch, latency, logits, pick_device
from .experiments import recipe
from .io import export_peft, load_adapter, save_adapter
from .metrics import count_params
from .models import ARCH, arch_for, load_base, tokenizer_for
from .modes import by_mode, mode, verdict
from .surgery import (
    InjectReport,
    active_task,
    checksum,
    classify_parameters,
    find_targets,
    fold_prefix,
    freeze_base,
    inject,
    merge,
    read_gates,
    remove,
    set_active,
    set_gates,
    tasks,
    unmerge,
)
from .train import History, evaluate, predict, train

__version__ = "0.1.0"

__all__ = [
    "ARCH", "FAST", "AdapterConfig", "GateConfig", "History", "InjectReport", "LoRAConfig", "PrefixConfig",
    "PromptConfig", "Split", "Task", "TrainConfig", "__version__", "active_task", "analysis", "arch_for", "batch",
    "by_mode", "checks", "checksum", "classify_parameters", "config", "count_params", "devices", "evaluate",
    "experiments", "export_peft", "fast", "find_targets", "fold_prefix", "freeze_base", "inject", "known_tasks",
    "latency", "lecture", "load_adapter", "load_base", "load_task", "logits", "merge", "metrics", "mode", "modes",
    "pick_device", "predict", "read_gates", "recipe", "remove", "results", "save_adapter", "set_active",
    "set_gates", "tasks", "tokenizer_for", "train", "unmerge", "verdict",
]
