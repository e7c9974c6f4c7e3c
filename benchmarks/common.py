"""Shared pieces of the benchmarks: the machine, fixed batches, interleaved timing, writing results.

Timing rule for every comparison: all variants live in one process and are timed in turns
(A, B, C, A, B, C, …) so that a slow moment of a shared machine hits all of them alike; we report
the median of the repeats after warm-up, and ratios of medians from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft 0.21 → transformers 5

import torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a small smoke run (seconds), for CI")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--out", default=None, help="folder for <name>.json and <name>.md (default benchmarks/results; "
                                               "--quick runs write nothing unless --out is given)")
    p.add_argument("--seed", type=int, default=0)
    return p


def setup(args) -> torch.device:
    """Seeds, threads and the device, from the command line."""
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        from lesson_lib import pick_device

        return pick_device("auto")
    return torch.device(args.device)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What the numbers were measured on."""
    import transformers

    info = {
        "cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "device": str(device),
    }
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        import peft

        info["peft"] = peft.__version__
    except ImportError:
        pass
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[int], None]], repeats: int, warmup: int, device: torch.device) -> dict:
    """Time each ``fn(i)`` ``warmup + repeats`` times, in turns; {name: [seconds after warm-up]}."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn(i)
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def summary(seconds: list[float]) -> dict:
    q = statistics.quantiles(seconds, n=4) if len(seconds) >= 2 else [seconds[0]] * 3
    return {"median_s": statistics.median(seconds), "q1_s": q[0], "q3_s": q[2], "n": len(seconds)}


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_markdown(info: dict) -> str:
    keys = ("cpu", "logical_cpus", "torch_threads", "device", "gpu", "torch", "transformers", "peft",
            "load_average_at_start")
    return "Machine: " + "; ".join(f"{k} {info[k]}" for k in keys if k in info)


def write(name: str, args, data: dict, markdown: str) -> None:
    """Print the markdown; write <name>.json and <name>.md (quick runs only with --out)."""
    print(markdown)
    if args.quick and not args.out:
        return
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    print(f"\nwrote {out / (name + '.json')} and {out / (name + '.md')}")


def task(quick: bool):
    """The tweets task; in quick mode the tiny word task that goes with the tiny model (no data files)."""
    import lesson_lib as ll
    from lesson_lib.tiny import tiny_task

    return tiny_task(n=320) if quick else ll.load_task("tweets")


def fixed_batches(task, tokenizer, n: int, batch_size: int, seed: int = 0, max_length: int = 64) -> list[dict]:
    """The first ``n`` shuffled training batches (seeded), dynamically padded: the same for every variant."""
    from lesson_lib.data import make_loader

    loader = make_loader(task.train, tokenizer, batch_size, shuffle=True, seed=seed, max_length=max_length)
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n:
            break
    return out
