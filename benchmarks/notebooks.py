"""How long each lesson notebook takes, top to bottom, in CPU mode (or full mode on a GPU).

    python -m benchmarks.notebooks                      # every student notebook in CPU mode (~20 min on 2 cores)
    python -m benchmarks.notebooks --mode full          # full mode (on a GPU: bash benchmarks/gpu_check.sh)
    python -m benchmarks.notebooks notebooks/03_lora.ipynb

Each notebook runs in a fresh kernel, cell by cell, with no lecture cache (every live run trains), the way a
student runs it; the seconds of every cell are kept, so the slow ones are easy to find. Results are merged into
``benchmarks/results/notebooks.json`` under the mode ("cpu", "full-gpu", "full-cpu") and summarised in
``notebooks.md``; ``tools/build_notebooks.py`` writes the measured times into each notebook's timing note.
The targets: at most 5 minutes per notebook in CPU mode on 2 cores; at most 2 minutes in full mode on an
H200-class GPU (notebook 06: 5).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from . import common

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cpu": 300, "full-gpu": 120}
TARGET_06_GPU = 300


def _execute(path: Path, timeout: int, save: Path | None = None) -> dict:
    """Run one notebook cell by cell; its status, total seconds and every code cell's seconds. With ``save``, the
    executed notebook (text outputs only) is written there, to read what a student sees."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    entry = {"status": "ok", "seconds": 0.0, "cells": []}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t = time.perf_counter()
            try:
                client.execute_cell(cell, i)
            except Exception as err:  # a failing cell ends the notebook, as in a top-to-bottom run
                entry["status"] = f"error in cell {i}: {type(err).__name__}: {str(err)[-600:]}"
            entry["cells"].append([i, round(time.perf_counter() - t, 2), cell.source.splitlines()[0][:70]])
            if entry["status"] != "ok":
                break
    entry["seconds"] = round(time.perf_counter() - start, 1)
    if save is not None:
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                if "data" in out:
                    out["data"] = {k: v for k, v in out["data"].items() if k == "text/plain"}
        nb.metadata.pop("widgets", None)
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / path.name)
    return entry


def _mode_key(mode: str) -> str:
    import lesson_lib as ll

    return mode if mode == "cpu" else f"full-{'cuda' if ll.devices.pick_device().type == 'cuda' else 'cpu'}"


def _machine() -> str:
    import torch

    import lesson_lib as ll

    if ll.devices.pick_device().type == "cuda":
        return torch.cuda.get_device_name(0)
    threads = torch.get_num_threads()  # the kernels inherit this process's environment (OMP_NUM_THREADS)
    return f"{common.cpu_model()}, {os.cpu_count()} cores, {threads} torch thread{'s' * (threads > 1)}"


def main(argv=None) -> dict:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--mode", default="cpu", choices=["cpu", "full"])
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell at most")
    p.add_argument("--save", default=None, help="folder for the executed notebooks (text outputs only)")
    p.add_argument("notebooks", nargs="*", help="default: every student notebook")
    args = p.parse_args(argv)
    paths = [Path(n) for n in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    if args.quick:  # smoke test: the first notebook in quick mode, nothing written
        paths, args.mode = paths[:1], "quick"
    saved = {k: os.environ.get(k) for k in ("LESSON_MODE", "LESSON_FAST", "LESSON_CACHE")}
    os.environ.pop("LESSON_FAST", None)
    os.environ["LESSON_MODE"] = args.mode
    key, machine = _mode_key(args.mode), _machine()
    rows = {}
    try:
        for path in paths:  # an empty lecture cache per notebook: every live run trains, as on a first visit
            os.environ["LESSON_CACHE"] = tempfile.mkdtemp(prefix="lesson-cache-")
            entry = _execute(path, args.timeout, Path(args.save) if args.save else None)
            entry |= {"machine": machine, "date": dt.date.today().isoformat()}
            rows[path.name] = entry
            print(f"{path.name}: {entry['status'][:200]} ({entry['seconds']} s)", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return _report(args, key, rows)


def _report(args, key: str, rows: dict) -> dict:
    out = Path(args.out) if args.out else common.RESULTS
    path = out / "notebooks.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if not args.quick:
        data[key] = {**data.get(key, {}), **rows}
    md = _markdown(data if not args.quick else {key: rows})
    print(md)
    if not args.quick or args.out:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
        (out / "notebooks.md").write_text(md + "\n")
        print(f"\nwrote {path} and {out / 'notebooks.md'}")
    return data


def _markdown(data: dict) -> str:
    lines = ["## Each notebook top to bottom (`python -m benchmarks.notebooks`)", ""]
    for key, rows in data.items():
        target = TARGETS.get(key)
        lines += [f"**{key}** mode" + (f" — target: at most {target // 60} min per notebook" if target else ""), ""]
        table = []
        for name, r in sorted(rows.items()):
            slowest = max(r["cells"], key=lambda c: c[1]) if r["cells"] else [None, 0, ""]
            limit = TARGET_06_GPU if key == "full-gpu" and name.startswith("06") else target
            met = "" if limit is None or r["status"] != "ok" else ("met" if r["seconds"] <= limit else "**missed**")
            table.append([name, r["status"][:60], f"{r['seconds']:.0f} s", met,
                          f"{slowest[1]:.0f} s (cell {slowest[0]}: `{slowest[2][:40]}`)", r["machine"], r["date"]])
        lines += [common.markdown_table(["notebook", "status", "seconds", "target", "slowest cell", "machine", "date"],
                                        table), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
