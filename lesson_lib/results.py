"""Stored full-mode results: the experiments too long for a laptop CPU, computed once and shipped.

A few experiments of the course train dozens of models (every method on two tasks, each method over its
size knob, the ΔW spectra of three runs). On a GPU they take a minute or two; on a laptop CPU, hours. So
``python -m lesson_lib precompute`` runs them once in full mode and writes each one's results, small JSON,
into ``lesson_lib/stored/<name>.json`` together with where they came from:

    {"name": ..., "result": {...}, "provenance": {"device": ..., "torch": ..., "date": ..., "seconds": ...,
                                                  "seed": ..., "command": ..., "mode": "full", ...}}

``get(name)`` is what a notebook calls. In full mode it computes the experiment now; in CPU mode it loads
the stored results of an experiment marked too long for a CPU (and says so: ``label``); in quick mode it
computes a tiny version whose numbers mean nothing. No number is ever written by hand.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import modes

STORE = Path(__file__).resolve().parent / "stored"


def store_dir() -> Path:
    """``LESSON_STORE`` if set (a folder of your own recomputed results), else the shipped ``lesson_lib/stored``."""
    return Path(os.environ.get("LESSON_STORE", STORE))


class NotStoredError(FileNotFoundError):
    """An experiment's stored results are missing (run ``python -m lesson_lib precompute NAME``)."""


def path(name: str) -> Path:
    return store_dir() / f"{name}.json"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parents[1],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(seconds: float, seed: int, command: str) -> dict:
    """Where and how a result was computed: device, versions, date, seconds, seed, command."""
    import torch
    import transformers

    from . import __version__
    from .devices import pick_device

    device = pick_device()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{_cpu_name()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads"
    return {"mode": modes.mode(), "device": f"{device.type} ({where})", "torch": torch.__version__,
            "transformers": transformers.__version__, "lesson_lib": __version__, "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "seconds": round(seconds, 1),
            "seed": seed, "command": command, "commit": _git_commit()}


def save(name: str, result: dict, seconds: float, seed: int, command: str | None = None,
         folder: Path | None = None) -> Path:
    """Write ``result`` with its provenance to ``<folder or store_dir()>/<name>.json``."""
    out = (folder or store_dir()) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "result": result,
              "provenance": provenance(seconds, seed, command or f"python -m lesson_lib precompute {name}")}
    out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    return out


def save_seeds(name: str, runs: list[tuple[int, dict, float]], command: str, add: bool = False,
               folder: Path | None = None) -> Path:
    """Store one experiment run with several seeds: ``runs`` is [(seed, result, seconds), …].

    ``command`` is the base command (``python -m lesson_lib precompute NAME``); ``--seeds …`` with every seed
    stored is added to it, so the provenance says how to recompute the whole record.

    Results with ``"rows"`` (comparisons, sweeps) are stored as one table whose rows carry their seed; with
    ``add=True`` the stored rows of the other seeds are kept. Provenance lists every seed with its seconds, date
    and the torch and transformers versions it ran with (seeds added on another day may have newer ones).
    Results without rows (one figure's data) are stored for one seed only."""
    import torch
    import transformers

    seeds = [seed for seed, _, _ in runs]
    result = dict(runs[0][1])
    today = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    per_seed = [{"seed": seed, "seconds": round(seconds, 1), "date": today, **versions} for seed, _, seconds in runs]
    stored = (folder or store_dir()) / f"{name}.json"
    if "rows" not in result and (len(runs) > 1 or add):
        raise ValueError(f"{name!r} is one figure's data, not a table of runs: it is stored for one seed only "
                         "(run it without --add and with one seed)")
    if "rows" in result:
        result["rows"] = [row for _, r, _ in runs for row in r["rows"]]
        if add and stored.exists():
            old = json.loads(stored.read_text())
            kept = [row for row in old["result"]["rows"] if row.get("seed", 0) not in seeds]
            result["rows"] = kept + result["rows"]
            was = old["provenance"]
            before = was.get("runs") or [{"seed": was["seed"], "seconds": was["seconds"], "date": was["date"]}]
            # a run stored before runs carried versions ran with the versions its record names
            before = [{"torch": was["torch"], "transformers": was["transformers"], **r} for r in before]
            per_seed = [r for r in before if r["seed"] not in seeds] + per_seed
    every = sorted({r["seed"] for r in per_seed})
    if every != [0]:  # how to recompute everything stored: the base command with every seed
        command += " --seeds " + " ".join(map(str, every))
    out = save(name, result, sum(r["seconds"] for r in per_seed), every[0], command, folder)
    record = json.loads(out.read_text())
    record["provenance"]["seeds"] = every
    record["provenance"]["seed"] = record["provenance"]["seeds"][0]
    record["provenance"]["runs"] = per_seed
    out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    return out


def load(name: str) -> dict:
    """The stored record of ``name`` ({"name", "result", "provenance"}), or NotStoredError saying how to make it."""
    p = path(name)
    if not p.exists():
        raise NotStoredError(f"no stored results for {name!r} ({p}); compute them with "
                             f"`python -m lesson_lib precompute {name}` (on a GPU: a minute or two)")
    return json.loads(p.read_text())


def label(record: dict) -> str:
    """"stored: computed on … in full mode on <date> (<seconds> s, seed …) — recompute: <command>"."""
    p = record["provenance"]
    return (f"stored: computed on {p['device']} in {p['mode']} mode on {p['date'][:10]} "
            f"({p['seconds']:,.0f} s, {seeds_text(p)}) — recompute: {p['command']}")


def seeds_text(p: dict) -> str:
    """"seed 0" or "seeds 0, 1, 2": which seeds a stored record's provenance holds."""
    seeds = p.get("seeds") or [p["seed"]]
    return f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))


def group_rows(rows: Iterable[Mapping], *keys: str) -> dict:
    """Stored runs grouped over their seeds: one list of rows per value of ``keys``, in the order first seen.

    An experiment run with several seeds stores one row per seed, side by side. ``group_rows(rows, "method")``
    gives ``{"lora": [row of seed 0, row of seed 1, ...], ...}``; with two keys, ``group_rows(rows, "method",
    "size")``, the groups are keyed by pairs such as ``("lora", 16)``. Each group's accuracies then give a mean
    and a range (``metrics.seed_summary``) and a verdict against another group (``metrics.seed_verdict``)."""
    if not keys:
        raise ValueError('group_rows needs at least one key to group by, e.g. group_rows(rows, "method")')
    groups: dict = {}
    for row in rows:
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"a row has no {', '.join(map(repr, missing))}; its keys: {', '.join(map(repr, row))}")
        key = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        groups.setdefault(key, []).append(row)
    return groups


def stored_row(name: str, method: str, size: int | None = None) -> dict:
    """One run (a row) of a stored experiment, its accuracy averaged over the seeds stored:
    ``stored_row("compare_tweets", "adapter")``.

    The row is the first seed's (its parameter counts, steps and seconds), with ``"accuracy"`` the mean over
    every stored seed, ``"seeds"`` their number, and ``"low"`` and ``"high"`` the lowest and highest seed."""
    rows = [r for r in load(name)["result"]["rows"] if r["method"] == method and (size is None or r["size"] == size)]
    if not rows:
        raise ValueError(f"the stored {name!r} has no run of {method!r}" + ("" if size is None else f" at size {size}"))
    from .metrics import seed_summary  # (metrics pulls in torch and the model code; results stays light)

    first = rows[0]
    seeds = seed_summary([r["accuracy"] for r in rows if r.get("size") == first.get("size")])
    return {**first, "accuracy": seeds["mean"], "seeds": seeds["seeds"], "low": seeds["low"], "high": seeds["high"]}


def stored_text(row: dict) -> str:
    """A stored row's accuracy in words: "88.7 % (mean of 2 seeds, 88.0–89.4)", or "88.7 %" for one run."""
    text = f"{100 * row['accuracy']:.1f} %"
    seeds = row.get("seeds", 1)
    return text if seeds < 2 else f"{text} (mean of {seeds} seeds, {100 * row['low']:.1f}–{100 * row['high']:.1f})"


def get(name: str) -> dict:
    """The results of experiment ``name`` for the mode in use, with ``"source"`` saying where they come from.

    full: computed now. cpu: loaded from the stored full-mode results when the experiment is marked too
    long for a CPU, else computed now at the CPU budget. quick: computed now, tiny.
    """
    from .experiments import EXPERIMENTS

    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; experiments: {', '.join(EXPERIMENTS)}")
    experiment, m = EXPERIMENTS[name], modes.mode()
    if m == "cpu" and experiment.on_cpu == "stored":
        record = load(name)
        return {**record["result"], "source": label(record), "provenance": record["provenance"]}
    start = time.perf_counter()
    result = experiment.run(m)
    seconds = time.perf_counter() - start
    note = modes.QUICK_NOTE if m == "quick" else f"{m} mode"
    return {**result, "source": f"computed now ({note}), {seconds:.0f} s", "provenance": None}
