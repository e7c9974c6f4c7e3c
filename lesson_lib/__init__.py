"""PEFT Lab's library: parameter-efficient fine-tuning built from scratch, for the lessons.

    import lesson_lib as ll
    model, tok = ll.load_base()                     # all-MiniLM-L6-v2, offline
    task = ll.load_task("tweets")
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value")))
    history = ll.train(model, task, ll.TrainConfig(steps=200))
    ll.evaluate(model, task.test)

The names here are the ones a lesson types. Everything else lives in a submodule: ``ll.tasks`` (named
tasks, switching), ``ll.surgery`` (gates, folding a prefix), ``ll.metrics``, ``ll.analysis``, ``ll.models``,
``ll.fast``, ``ll.experiments``, ``ll.results``, ``ll.lecture``, ``ll.checks`` and ``ll.exercises`` (the
exercises' checkers: on random tensors, then your own layer trained inside MiniLM); ``lesson_lib.registry``
has one row per method.
"""

from . import (
    analysis,
    checks,
    devices,
    diagrams,
    exercises,
    experiments,
    fast,
    instruct,
    io,
    lecture,
    metrics,
    models,
    modes,
    paper,
    registry,
    results,
    surgery,
    tasks,
)
from .config import FAST, AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, PromptConfig, TrainConfig
from .data import load_task
from .devices import latency, logits
from .experiments import recipe
from .inputs import batch
from .io import export_peft, load_adapter, save_adapter
from .metrics import count_params
from .models import load_base
from .modes import mode, summary, verdict
from .owners import checksum
from .projector import projector
from .surgery import inject, merge, remove, unmerge
from .train import evaluate, predict, train

__version__ = "0.1.0"

__all__ = [
    # set up, train, measure
    "load_base", "load_task", "inject", "remove", "train", "evaluate", "predict", "count_params",
    # the methods' settings
    "LoRAConfig", "AdapterConfig", "PrefixConfig", "PromptConfig", "GateConfig", "TrainConfig",
    # merging, files, the frozen base
    "merge", "unmerge", "save_adapter", "load_adapter", "export_peft", "checksum",
    # running the model, modes and recipes
    "batch", "logits", "latency", "mode", "FAST", "recipe", "verdict", "summary", "projector",
    # submodules
    "analysis", "checks", "devices", "diagrams", "exercises", "experiments", "fast", "instruct", "io",
    "lecture", "metrics", "models", "modes", "paper", "registry", "results", "surgery", "tasks", "__version__",
]
