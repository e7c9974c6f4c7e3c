"""Lecture mode: train each live run once before the lecture, then load it in front of the room.

A lecturer runs ``python -m lesson_lib prepare-lecture`` once on the machine of the lecture (or just runs
every notebook once): each training cell that goes through ``train_or_load`` stores its trained weights
and history in ``lecture_cache/`` (one file per run and mode). In the lecture the same cells load them in
a second, with the same numbers, so nothing is waited for. Delete the folder to train afresh.

The experiments too long for a laptop CPU are a different matter: their full-mode results are shipped
with the library (``lesson_lib/results.py``, ``python -m lesson_lib precompute``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import modes

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "lecture_cache"


def cache_dir() -> Path:
    """``LESSON_CACHE`` if set, else ``lecture_cache/`` beside the lessons."""
    return Path(os.environ.get("LESSON_CACHE", DEFAULT_CACHE))


def _path(name: str, suffix: str) -> Path:
    return cache_dir() / f"{name}.{modes.mode()}{suffix}"


def train_or_load(name: str, model, task, cfg, callbacks=()):
    """Train ``model`` (its method already injected) like ``ll.train``, or load the run stored before.

    The first call trains, then stores the active task's weights as ``lecture_cache/<name>.<mode>.safetensors``
    and the history (losses, evaluations, seconds) beside it. The next call in the same mode copies the
    stored weights into ``model`` in place and returns the stored history, so the notebook goes on at once
    with the same numbers. The model must have the same methods as when the run was stored; if not, the
    error says which file to delete. ``history.source`` says "stored (…)" or "trained now".
    """
    from .io import AdapterFileError, copy_into, save_adapter
    from .train import History, train

    weights, record = _path(name, ".safetensors"), _path(name, ".history.json")
    if weights.exists() and record.exists():
        try:
            copy_into(model, weights)
        except AdapterFileError as err:
            raise AdapterFileError(f"{err}. The stored run {name!r} was made with other methods or sizes: "
                                   f"delete {weights} (and {record.name}) to train it again") from err
        return History(**json.loads(record.read_text()), source=f"stored ({weights.name})")
    history = train(model, task, cfg, callbacks=callbacks)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_adapter(model, weights)
    keep = ("steps", "losses", "evals", "seconds", "stopped", "device", "path")
    record.write_text(json.dumps({k: getattr(history, k) for k in keep}, default=float))
    return history


def prepare(folder: Path | None = None, timeout: int | None = None) -> list[tuple[str, float]]:
    """Run every lesson notebook once, top to bottom, in the mode of this machine, so each ``train_or_load``
    in it stores its run; a lecture then loads them. Outputs are thrown away. Returns (name, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    folder = folder or Path(__file__).resolve().parents[1] / "notebooks"
    paths = sorted(folder.glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no lesson notebooks in {folder}: run this from a clone of the repository")
    before = os.environ.get("LESSON_CACHE")
    os.environ["LESSON_CACHE"] = str(cache_dir())  # the kernels inherit the environment
    done = []
    try:
        for path in paths:
            start = time.perf_counter()
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            done.append((path.name, round(time.perf_counter() - start, 1)))
    finally:
        if before is None:
            os.environ.pop("LESSON_CACHE", None)
        else:
            os.environ["LESSON_CACHE"] = before
    return done
