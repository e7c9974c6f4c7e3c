"""How much to train in each mode (recipes), and the course's experiments, each defined once.

**Recipes.** ``recipe("lora", "tweets")`` says how the lessons train LoRA on the tweets in the mode in use
(see ``lesson_lib/modes.py``): in full mode (a GPU) every layer for the whole budget, at the learning rates
of the papers' recipes; in CPU mode only the top two layers — the frozen layers below are computed once per
example and cached (``lesson_lib/fast.py``), so a step costs a third — for fewer steps at a learning rate
that suits the shorter budget; in quick mode a handful of steps on a small subset.

**Experiments.** ``run_method("lora", task, recipe(...))`` trains one method from a fresh model and
returns a row of the comparison table (method, size, trainable parameters, test accuracy, seconds, file
size). The experiments below — every method on a task, each method over its size knob, the ΔW spectra —
are what notebooks, ``python -m lesson_lib precompute`` and the benchmarks all run; in CPU mode a notebook
shows their stored full-mode results (``lesson_lib/results.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .config import AdapterConfig, GateConfig, LoRAConfig, PrefixConfig, TrainConfig
from .data import Task, load_task
from .io import save_adapter
from .metrics import count_params
from .models import layers_of, load_base
from .prefix import PrefixEncoder
from .registry import METHODS as REGISTRY
from .surgery import fold_prefix, freeze_base, inject
from .train import evaluate, train

# Each run of an experiment is one "arm": a method of the registry at its default size, or one of these four.
_ARMS = {  # name: (label, full-mode learning rate)
    "head": ("head only", 2e-3),
    "full": ("full fine-tuning", 5e-5),
    "prefix_flat": ("prefix tuning (flat)", 3e-2),  # no MLP: like prompt tuning, it needs much larger steps
    "unipelt": ("UniPELT (LoRA + adapters + prefix, gated)", 1e-3),
    "lora_fixed_alpha": ("LoRA, α fixed at 16", 1e-3),  # the paper's way: α is not retuned when r changes
    "unipelt_paper": ("UniPELT as the paper builds it (LoRA r = 8, one Pfeiffer adapter m = 48, prefix with MLP)",
                      1e-3),
}
# what an arm changes in its TrainConfig: UniPELT as the paper builds it gives the prefix its own learning rate
TRAIN_EXTRAS = {"unipelt_paper": lambda: {"lr_by_method": {"prefix": REGISTRY["prefix"].lr}}}
FIXED_ALPHA = 16
METHODS = ("head", "full", *REGISTRY, "prefix_flat", "unipelt", "lora_fixed_alpha", "unipelt_paper")
LEARNING_RATES = {**{n: m.lr for n, m in REGISTRY.items()}, **{n: lr for n, (_, lr) in _ARMS.items()}}
LABELS = {**{n: m.label for n, m in REGISTRY.items()}, **{n: label for n, (label, _) in _ARMS.items()}}
# CPU mode: the top TOP layers only, (steps, learning rate) per method and task, chosen by measurement so that
# the test accuracy lands within about 2 points of the full recipe (python -m benchmarks.cpu_mode checks it)
# (the prefix with its MLP collapsed to chance at 2e-2 in the top two layers, so it stays well below that)
CPU_RECIPES = {("head", "tweets"): (300, 2e-3), ("lora", "tweets"): (150, 3e-3), ("adapter", "tweets"): (250, 2e-3),
               ("prefix", "tweets"): (250, 5e-3), ("unipelt", "tweets"): (250, 2e-3), ("adapter", "bbc"): (60, 4e-3)}
SWEEP_SIZES = {"lora": (1, 4, 16, 64), "adapter": (4, 16, 64, 256), "prefix": (2, 8, 32, 64),
               "prompt": (2, 8, 32, 64)}
# (steps, batch size, training examples or None for all) per task and mode. CPU mode's steps and learning rates
# come from CPU_RECIPES where a method has one; quick mode is a handful of steps on a small subset.
# (The fast path computes the frozen layers only for the examples a run uses, so a short CPU run on the whole
# training split costs no more than one on a subset.)
BUDGETS = {"full": {"tweets": (300, 32, None), "bbc": (100, 16, None)},
           "cpu": {"tweets": (150, 32, None), "bbc": (60, 16, None)},
           "quick": {"tweets": (8, 32, 400), "bbc": (4, 8, 100)}}
# the experiments' stand-in in quick mode (tests): a couple of steps on a small subset
QUICK_EXPERIMENTS = {"tweets": (2, 8, 200), "bbc": (2, 8, 100)}
TOP = 2
# methods a CPU does not train live: full fine-tuning (every weight, every layer) and prompt tuning (its
# vectors enter below the first layer, so nothing can be cached) show stored full-mode results instead
NOT_LIVE_ON_CPU = ("full", "prompt")


@dataclass(frozen=True)
class Recipe:
    """How to train one method on one task in one mode: where (top layers or all), how long, how fast."""

    method: str
    task: str
    mode: str
    top: int | None  # train only the top ``top`` layers (the fast path caches the rest); None: every layer
    steps: int
    batch_size: int
    lr: float
    limit: int | None  # training examples (a subset in quick mode); None: the whole training split
    live: bool = True  # False: this mode shows the stored full-mode result instead of training

    def layers(self, model) -> tuple[int, ...] | None:
        """The layer indices to give a config's ``layers=`` (None: every layer)."""
        if self.top is None:
            return None
        n = len(layers_of(model))
        return tuple(range(n - self.top, n))

    def train_config(self, **overrides) -> TrainConfig:
        """A TrainConfig with this recipe's steps, batch size and learning rate (``overrides`` win); the fast
        path (``fast=True``) when the recipe trains only the top layers or only the head."""
        fast = self.live and (self.top is not None or self.method == "head")
        return TrainConfig(**{"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "fast": fast,
                              **overrides})

    def load_task(self) -> Task:
        """The task this recipe trains on (quick mode: a small subset, its test split too)."""
        return load_task(self.task, limit=self.limit)

    def __str__(self) -> str:
        where = {"head": "on the frozen model", "full": "(every weight of every layer)",
                 "prompt": "(learned input vectors)"}.get(self.method)
        if where is None:
            where = "in every layer" if self.top is None else f"in the top {self.top} layers (the rest cached)"
        data = "" if self.limit is None else f" on {self.limit:,} training examples"
        run = f"{self.steps} steps × {self.batch_size}{data}, lr {self.lr:g}"
        if not self.live:
            return f"{self.mode} mode: {LABELS[self.method]} {where} — not trained live: stored full-mode run ({run})"
        return f"{self.mode} mode: {LABELS[self.method]} {where}, {run}"


def recipe(method: str, task: str = "tweets", mode: str | None = None) -> Recipe:
    """The recipe for ``method`` on ``task`` in ``mode`` (default: the mode in use)."""
    from . import modes

    mode = mode or modes.mode()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if task not in BUDGETS["full"]:
        raise ValueError(f"no recipe for task {task!r}; tasks: {sorted(BUDGETS['full'])}")
    lr, top = LEARNING_RATES[method], None
    if mode == "cpu" and method in NOT_LIVE_ON_CPU:  # shown from the stored full-mode run: describe that run
        steps, batch_size, _ = BUDGETS["full"][task]
        return Recipe(method, task, mode, None, steps, batch_size, lr, None, live=False)
    steps, batch_size, limit = BUDGETS[mode][task]
    if mode != "full" and method not in NOT_LIVE_ON_CPU:  # methods that live inside the layers
        cpu_steps, lr = CPU_RECIPES.get((method, task), (steps, lr))
        top = None if method == "head" else TOP  # the head alone: every layer below it is cached anyway
        steps = cpu_steps if mode == "cpu" else steps
    return Recipe(method, task, mode, top, steps, batch_size, lr, limit)


# --- one run ------------------------------------------------------------------------------------------------

def default_size(method: str) -> int | None:
    """The size a method runs at when none is given (the flat prefix: the prefix's; UniPELT: LoRA's r)."""
    method = {"prefix_flat": "prefix", "unipelt": "lora", "lora_fixed_alpha": "lora",
              "unipelt_paper": "lora"}.get(method, method)
    return REGISTRY[method].size if method in REGISTRY else None


def method_configs(method: str, size: int | None = None, layers=None):
    """The config(s) and gates for ``method`` at ``size`` (its knob: r, bottleneck or length)."""
    if method in REGISTRY:
        return REGISTRY[method].config_at(size, layers), None
    if method == "prefix_flat":
        return PrefixConfig(length=size or REGISTRY["prefix"].size, reparam=False, layers=layers), None
    if method == "lora_fixed_alpha":  # the scale α/r shrinks as r grows, as in the LoRA paper
        return LoRAConfig(r=size or REGISTRY["lora"].size, alpha=FIXED_ALPHA, layers=layers), None
    if method == "unipelt_paper":  # Mao et al. 2022: one Pfeiffer adapter (m = 48) per layer, the MLP prefix
        return [REGISTRY["lora"].config_at(size, layers),
                AdapterConfig(bottleneck=48, placement="pfeiffer", layers=layers),
                PrefixConfig(length=REGISTRY["prefix"].size, reparam=True, layers=layers)], GateConfig(learned=True)
    if method == "unipelt":  # LoRA of rank ``size``, adapters and prefix at their default sizes, gated
        return [REGISTRY["lora"].config_at(size, layers), REGISTRY["adapter"].config_at(None, layers),
                PrefixConfig(length=REGISTRY["prefix"].size, layers=layers)], GateConfig(learned=True)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def build(method: str, task: Task, size: int | None = None, model_name: str | None = None, layers=None,
          tiny: bool = False, top: int | None = None, seed: int = 0):
    """A fresh base model with ``method`` added (``"full"``: nothing frozen; ``"head"``: base frozen).

    ``top=k`` puts the method in the top k layers (full fine-tuning: trains only those); ``tiny=True`` uses
    the tiny random-weight BERT (smoke tests), as ``load_base(tiny=True)``."""
    model, _ = load_base(model_name, num_labels=task.num_labels, tiny=tiny, seed=seed)
    if top is not None:
        n = len(layers_of(model))
        layers = tuple(range(n - top, n))
    if method == "head":
        freeze_base(model)
    elif method == "full":
        if layers is not None:
            freeze_base(model)
            for i in layers:
                layers_of(model)[i].requires_grad_(True)
    else:
        cfg, gates = method_configs(method, size, layers)
        inject(model, cfg, gates=gates, seed=seed)
    return model


@dataclass
class RunResult:
    method: str
    size: int | None
    trainable: int
    total: int
    accuracy: float
    loss: float
    seconds: float
    steps: int
    file_bytes: int | None
    task: str
    lr: float | None = None
    batch_size: int | None = None
    top: int | None = None
    seed: int = 0
    test_size: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def run_method(method: str, task: Task, steps: int = 200, size: int | None = None, lr: float | None = None,
               batch_size: int = 32, seed: int = 0, callbacks=(), model_name: str | None = None,
               test_limit: int | None = None, layers=None, tiny: bool = False, top: int | None = None,
               progress: bool = False) -> tuple[RunResult, object]:
    """Train ``method`` on ``task`` for ``steps`` steps from a fresh model; measure on the (balanced) test split."""
    model = build(method, task, size, model_name, layers, tiny, top, seed)
    lr = lr or LEARNING_RATES[method]
    fast = method == "head" or (top is not None and method != "prompt")  # only the top layers train: cache the rest
    cfg = TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed, eval_every=0, progress=progress,
                      fast=fast, **TRAIN_EXTRAS.get(method, dict)())
    start = time.perf_counter()
    train(model, task, cfg, callbacks=callbacks)
    seconds = time.perf_counter() - start
    res = evaluate(model, task.test, limit=test_limit)
    counts = count_params(model)
    file_bytes = None
    if method not in ("full", "head"):
        if any(isinstance(m, PrefixEncoder) for m in model.modules()):
            fold_prefix(model)  # what a task file holds: the prefix's keys and values, not the MLP that made them
        with tempfile.TemporaryDirectory() as tmp:
            file_bytes = save_adapter(model, Path(tmp) / "adapter.safetensors")
    size = None if method in ("full", "head") else (size or default_size(method))
    return RunResult(method, size, counts.trainable, counts.total, res["accuracy"], res["loss"], seconds, steps,
                     file_bytes, task.name, lr, batch_size, top, seed, res["n"]), model


def run_recipe(r: Recipe, task: Task | None = None, size: int | None = None, seed: int = 0,
               progress: bool = True) -> tuple[RunResult, object]:
    """``run_method`` with a recipe's layers, steps, batch size and learning rate."""
    task = task or r.load_task()
    return run_method(r.method, task, steps=r.steps, size=size, lr=r.lr, batch_size=r.batch_size, seed=seed,
                      top=r.top, progress=progress)


def sweep(method: str, task: Task, sizes, steps: int = 200, **kwargs) -> list[RunResult]:
    """``run_method`` over several sizes of one method (accuracy vs trainable parameters)."""
    return [run_method(method, task, steps=steps, size=s, **kwargs)[0] for s in sizes]


# --- the experiments --------------------------------------------------------------------------------------------

COMPARED = ("head", "prompt", "lora", "adapter", "prefix", "unipelt", "full")


def _all_layers(mode: str) -> str:
    """Stored and full-mode experiments train every layer; quick mode stands in for them, tiny."""
    return "quick" if mode == "quick" else "full"


def _experiment_recipe(method: str, task_name: str, mode: str) -> Recipe:
    """The full recipe on every layer; in quick mode a couple of steps on a small subset."""
    r = replace(recipe(method, task_name, "full"), mode=mode)
    if mode == "quick":
        steps, batch_size, limit = QUICK_EXPERIMENTS[task_name]
        r = replace(r, steps=steps, batch_size=batch_size, limit=limit)
    return r


def _experiment_task(task_name: str, mode: str) -> Task:
    return load_task(task_name, limit=QUICK_EXPERIMENTS[task_name][2] if mode == "quick" else None)


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(list(items), desc=desc, leave=False)


def compare(task_name: str, mode: str, seed: int = 0) -> dict:
    """Every method at its default size, the same budget, measured on the full balanced test split.

    ``seed`` sets the new weights' initialisation and the order of the batches; several seeds (stored
    side by side) say how much of a difference between two methods is chance."""
    m = _all_layers(mode)
    task = _experiment_task(task_name, m)
    methods = ("head", "lora", "prefix") if m == "quick" else COMPARED
    rows = []
    for method in _progress(methods, f"{task_name}: every method"):
        rows.append(run_recipe(_experiment_recipe(method, task_name, m), task, seed=seed, progress=False)[0].as_dict())
    return {"task": task_name, "rows": rows}


def size_sweep(task_name: str, mode: str, seed: int = 0, sweep_sizes: dict | None = None) -> dict:
    """Accuracy vs trainable parameters: each method over its size knob (the LoRA paper's Figure 2, small)."""
    m = _all_layers(mode)
    task = _experiment_task(task_name, m)
    sweep_sizes = sweep_sizes or SWEEP_SIZES
    sizes = {k: v[::3] for k, v in sweep_sizes.items() if k in ("lora", "prefix", "lora_fixed_alpha")} \
        if m == "quick" else sweep_sizes
    runs = [(method, s) for method, knob in sizes.items() for s in knob]
    rows = []
    for method, s in _progress(runs, f"{task_name}: each method over its size"):
        r = _experiment_recipe(method, task_name, m)
        rows.append(run_recipe(r, task, size=s, seed=seed, progress=False)[0].as_dict())
    return {"task": task_name, "rows": rows}


# the low-resource setting, where UniPELT's paper finds its gains: K training examples, steps per K (about
# 30 passes over K = 100, 6 over 500, 10 over 1,000 at batch 32; the full split's budget is 300 steps)
LOW_RESOURCE = {100: 100, 500: 100, 1000: 300}
LOW_RESOURCE_METHODS = ("lora", "adapter", "prefix", "unipelt_paper")


def low_resource(task_name: str, mode: str, seed: int = 0) -> dict:
    """Each single method and UniPELT (as the paper builds it) trained on only K examples, tested on the whole
    balanced test split. The K examples are a class-balanced sample that depends on the seed."""
    m = _all_layers(mode)
    task = _experiment_task(task_name, m)
    budgets = {16: 2} if m == "quick" else LOW_RESOURCE
    methods = ("lora", "unipelt_paper") if m == "quick" else LOW_RESOURCE_METHODS
    rows = []
    for k, steps in _progress(budgets.items(), f"{task_name}: few training examples"):
        small = replace(task, train=task.train.subset(k, seed=seed))
        for method in methods:
            r = replace(_experiment_recipe(method, task_name, m), steps=steps)
            rows.append({**run_recipe(r, small, seed=seed, progress=False)[0].as_dict(), "examples": k})
    return {"task": task_name, "rows": rows}


@dataclass(frozen=True)
class Experiment:
    """A named experiment: ``run(mode, seed)`` → results (a dict of lists and numbers, stored as JSON).

    ``on_cpu="stored"``: too long for a laptop CPU, so CPU mode shows the stored full-mode results."""

    run: Callable[..., dict]  # (mode, seed=0) -> results
    about: str
    on_cpu: str = "stored"


def _instruct():
    from . import instruct  # lesson 07's module

    return instruct


TRUNCATION_RANKS = (0, 1, 2, 4, 8, 16, 32, 64)


def delta_w(task_name: str, mode: str, seed: int = 0) -> dict:
    """LoRA r = 8 and r = 64 and a full fine-tune on every layer's query and value: what ΔW looks like.

    Per run: test accuracy and the spectrum of every ΔW (rank, effective rank, energy at k); for r = 64 the
    test accuracy with every ΔW truncated to rank k; the subspace similarity φ between the r = 8 and r = 64
    A matrices of the top layer's value projection; the amplification factor of every ΔW.
    """
    from . import analysis

    m = _all_layers(mode)
    task = _experiment_task(task_name, m)
    out: dict = {"task": task_name, "runs": {}}
    models = {}
    for r in _progress((8, 64), f"{task_name}: LoRA r = 8 and r = 64"):
        res, model = run_recipe(_experiment_recipe("lora", task_name, m), task, size=r, seed=seed, progress=False)
        models[r] = model
        amplification = {analysis.short_name(n): analysis.amplification_factor(lo.delta_weight(), lo.base.weight, r)
                         for n, lo in analysis.lora_layers(model).items()}
        spectra = analysis.spectrum_summary(analysis.delta_weights(model))
        out["runs"][f"lora_r{r}"] = {**res.as_dict(), "spectra": spectra, "amplification": amplification}
    ks = TRUNCATION_RANKS if m != "quick" else (0, 1, 64)
    out["truncation_r64"] = {str(k): v for k, v in analysis.accuracy_by_rank(models[64], task.test, ks=ks).items()}
    names = list(analysis.lora_layers(models[8]))
    name = [n for n in names if n.endswith("value")][-1]
    grid = analysis.subspace_similarity_grid(analysis.lora_layers(models[8])[name].lora_A,
                                             analysis.lora_layers(models[64])[name].lora_A)
    out["subspace"] = {"module": analysis.short_name(name), "grid": grid.round(4).tolist()}
    out["runs"]["full"] = _full_fine_tune_spectra(task, m, [n.replace(".base", "") for n in names], seed)
    return out


def _full_fine_tune_spectra(task: Task, mode: str, names: list[str], seed: int = 0) -> dict:
    """A full fine-tune with the same budget; the spectra of W_after − W_before for the given matrices."""
    from . import analysis

    r = _experiment_recipe("full", task.name, mode)
    model = build("full", task, seed=seed)
    before = analysis.snapshot(model, names)
    start = time.perf_counter()
    train(model, task, TrainConfig(steps=r.steps, lr=r.lr, batch_size=r.batch_size, eval_every=0, progress=False,
                                   seed=seed))
    seconds = time.perf_counter() - start
    acc = evaluate(model, task.test)
    return {"method": "full", "accuracy": acc["accuracy"], "seconds": seconds, "steps": r.steps, "lr": r.lr,
            "batch_size": r.batch_size, "test_size": acc["n"],
            "spectra": analysis.spectrum_summary(analysis.delta_weights(model, snapshot=before))}


EXPERIMENTS: dict[str, Experiment] = {
    "compare_tweets": Experiment(lambda mode, seed=0: compare("tweets", mode, seed),
                                 "every method on the tweets, same budget"),
    "compare_bbc": Experiment(lambda mode, seed=0: compare("bbc", mode, seed), "every method on BBC News, same budget"),
    "sweep_tweets": Experiment(lambda mode, seed=0: size_sweep("tweets", mode, seed),
                               "each method over its size knob, tweets"),
    "rank_fixed_alpha_tweets": Experiment(
        lambda mode, seed=0: size_sweep("tweets", mode, seed, {"lora_fixed_alpha": SWEEP_SIZES["lora"]}),
        f"LoRA over r with α fixed at {FIXED_ALPHA} (the paper's way), tweets"),
    "low_resource_tweets": Experiment(lambda mode, seed=0: low_resource("tweets", mode, seed),
                                      "few training examples (K = 100, 500, 1,000): single methods and UniPELT"),
    "instruct_tasks": Experiment(lambda mode, seed=0: _instruct().tasks_sweep(mode, seed, progress=False),
                                 "instruction tuning: held-out questions vs the number of training questions"),
    "delta_w_tweets": Experiment(lambda mode, seed=0: delta_w("tweets", mode, seed),
                                 "ΔW of LoRA r = 8, r = 64 and full fine-tuning: spectra, truncation, φ"),
}
