"""Lecture mode: run the long experiments once, store their results, and load them in the notebooks.

``python -m lesson_lib precompute`` runs every experiment in ``EXPERIMENTS`` in full mode and writes
``lecture_cache/<name>.json``. A notebook cell asks ``cached(name)``: stored results come back at
once; without them the experiment runs right there (small in quick mode, ``LESSON_FAST=1``), so a
lecturer who precomputed never waits and a student without the cache still gets real numbers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from . import config

CACHE_DIR = Path(os.environ.get("LESSON_CACHE", Path(__file__).resolve().parents[1] / "lecture_cache"))


def _path(name: str) -> Path:
    return CACHE_DIR / f"{name}{'-fast' if config.FAST else ''}.json"


def cached(name: str, compute: Callable[[], dict] | None = None, refresh: bool = False) -> dict:
    """Stored results of experiment ``name``, or run ``compute`` (default: ``EXPERIMENTS[name]``) and store them.

    The returned dict carries ``"_source"``: "stored" or "computed now", and ``"_seconds"`` it took.
    """
    path = _path(name)
    if path.exists() and not refresh:
        data = json.loads(path.read_text())
        data["_source"] = f"stored ({path.name})"
        return data
    compute = compute or EXPERIMENTS[name]
    start = time.perf_counter()
    data = compute()
    data["_seconds"] = round(time.perf_counter() - start, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=float))
    data["_source"] = "computed now"
    return data


def stored(name: str) -> dict | None:
    """Stored results of ``name`` if a lecturer precomputed them, else None (nothing is run)."""
    path = _path(name)
    return json.loads(path.read_text()) if path.exists() else None


def trained(name: str, train_fn: Callable[[], object]):
    """A trained model for experiment ``name``: loaded from ``lecture_cache`` if stored, else trained and stored.

    ``train_fn()`` builds, injects and trains a model from ``ll.load_base()``; its active task is saved
    as ``<name>.safetensors`` so the next run (or the lecture) loads it in a second.
    """
    from .io import load_adapter, save_adapter
    from .models import load_base

    path = _path(name).with_suffix(".safetensors")
    if path.exists():
        import json as _json

        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            num_labels = _json.loads(f.metadata()["lesson_lib"])["num_labels"]
        model, _ = load_base(num_labels=num_labels)
        load_adapter(model, path)
        return model
    model = train_fn()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_adapter(model, path)
    return model


def train_or_load(name: str, model, task, cfg, callbacks=()):
    """Train ``model`` (its method already injected) like ``ll.train``, or load the run a lecturer stored.

    The first call trains, then stores the active task's weights as ``lecture_cache/<name>.safetensors``
    and the history (losses, evaluations, seconds) beside it. The next call — in the lecture, after
    ``python -m lesson_lib precompute`` — copies the stored weights into ``model`` in place and returns the
    stored history, so the notebook goes on at once with the same numbers. The model must have the same
    methods as when the run was stored; if not, the error says which file to delete.
    ``history.source`` says "stored (…)" or "trained now".
    """
    from .io import AdapterFileError, _copy_in, _plan, _read, save_adapter
    from .train import History, train

    weights, record = _path(name).with_suffix(".safetensors"), _path(name).with_suffix(".history.json")
    if weights.exists() and record.exists():
        meta, tensors = _read(weights)
        try:
            _copy_in(model, tensors, _plan(meta, weights).gate_values, weights)
        except AdapterFileError as err:
            raise AdapterFileError(f"{err}. The stored run {name!r} was made with other methods or sizes: "
                                   f"delete {weights} (and {record.name}) or run `python -m lesson_lib precompute` "
                                   "again") from err
        history = History(**json.loads(record.read_text()))
        history.source = f"stored ({weights.name})"
        return history
    history = train(model, task, cfg, callbacks=callbacks)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_adapter(model, weights)
    keep = ("steps", "losses", "evals", "seconds", "stopped", "device", "path")
    record.write_text(json.dumps({k: getattr(history, k) for k in keep}, default=float))
    history.source = "trained now"
    return history


def precompute_notebooks(folder: Path | None = None, timeout: int | None = None) -> list[tuple[str, float]]:
    """Run every lesson notebook once in full mode, so each ``cached`` / ``trained`` / ``train_or_load``
    in it stores its result; a lecture then loads them. Outputs are thrown away. Returns (name, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    folder = folder or Path(__file__).resolve().parents[1] / "notebooks"
    paths = sorted(folder.glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no lesson notebooks in {folder}: run this from a clone of the repository")
    fast_before = os.environ.pop("LESSON_FAST", None)  # the kernels inherit the environment: full mode
    os.environ["LESSON_CACHE"] = str(CACHE_DIR)
    done = []
    try:
        for path in paths:
            start = time.perf_counter()
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            done.append((path.name, round(time.perf_counter() - start, 1)))
    finally:
        if fast_before is not None:
            os.environ["LESSON_FAST"] = fast_before
    return done


def _steps(full: int, fast: int) -> int:
    return fast if config.FAST else full


def compare_methods(task_name: str = "tweets") -> dict:
    """Every method at its default size, the same step budget, measured on the full balanced test split."""
    from .data import load_task
    from .experiments import run_method

    task = load_task(task_name, limit=(100 if task_name == "bbc" else 200) if config.FAST else None)
    rows = []
    for method in ("head", "lora", "adapter", "prefix", "prompt", "unipelt", "full"):
        res, _ = run_method(method, task, steps=_steps(300, 2), batch_size=8 if config.FAST else 32)
        rows.append(res.as_dict())
    return {"task": task_name, "rows": rows, "fast": config.FAST}


def size_sweep(task_name: str = "tweets") -> dict:
    """Accuracy vs trainable parameters: each method over its size knob (the LoRA paper's Figure 2, small)."""
    from .data import load_task
    from .experiments import sweep

    task = load_task(task_name, limit=200 if config.FAST else None)
    sizes = {"lora": (1, 4, 16, 64), "adapter": (4, 16, 64, 256), "prefix": (2, 8, 32, 64), "prompt": (2, 8, 32, 64)}
    if config.FAST:  # quick mode: the smallest and largest size of LoRA and prefix tuning
        sizes = {m: s[::3] for m, s in sizes.items() if m in ("lora", "prefix")}
    rows = [r.as_dict() for m, s in sizes.items()
            for r in sweep(m, task, s, steps=_steps(300, 2), batch_size=8 if config.FAST else 32)]
    return {"task": task_name, "rows": rows, "fast": config.FAST}


EXPERIMENTS: dict[str, Callable[[], dict]] = {
    "compare_tweets": lambda: compare_methods("tweets"),
    "compare_bbc": lambda: compare_methods("bbc"),
    "sweep_tweets": lambda: size_sweep("tweets"),
    "sweep_bbc": lambda: size_sweep("bbc"),
}
