"""PEFT Lab's library: parameter-efficient fine-tuning built from scratch, for the lessons.

    import lesson_lib as ll
    model, tok = ll.load_base()                     # all-MiniLM-L6-v2, offline
    task = ll.load_task("tweets")
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value")))
    history = ll.train(model, task, ll.TrainConfig(steps=200))
    ll.evaluate(model, task.test)
"""

from . import analysis, checks, config, fast, lecture, metrics
from .config import FAST, AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, PromptConfig, TrainConfig
from .data import Split, Task, known_tasks, load_task
from .io import export_peft, load_adapter, save_adapter
from .metrics import count_params
from .models import ARCH, arch_for, load_base, tokenizer_for
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
from .train import History, evaluate, pick_device, predict, train

__version__ = "0.1.0"

__all__ = [
    "ARCH", "FAST", "AdapterConfig", "GateConfig", "History", "InjectReport", "LoRAConfig", "PrefixConfig",
    "PromptConfig", "Split", "Task", "TrainConfig", "__version__", "active_task", "analysis", "arch_for",
    "checks", "checksum", "classify_parameters", "config", "count_params", "evaluate", "export_peft", "fast",
    "find_targets", "fold_prefix", "freeze_base", "inject", "known_tasks", "lecture", "load_adapter",
    "load_base", "load_task", "merge", "metrics", "pick_device", "predict", "read_gates", "remove",
    "save_adapter", "set_active", "set_gates", "tasks", "tokenizer_for", "train", "unmerge",
]
