"""``python -m lesson_lib …``: compute the stored results, prepare a lecture, or print a summary of the setup.

    python -m lesson_lib info                 versions, device, mode, model and data sizes
    python -m lesson_lib precompute [NAME…]   run the experiments too long for a CPU in full mode (all, or
                                              those named) and store their results in lesson_lib/stored/
    python -m lesson_lib prepare-lecture      run every notebook once here, so the lecture loads its live runs
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def info() -> None:
    import torch
    import transformers

    import lesson_lib as ll

    print(f"lesson_lib {ll.__version__} | torch {torch.__version__} | transformers {transformers.__version__}")
    print(f"device: {ll.devices.pick_device()} | mode: {ll.mode()} — {ll.modes.describe()}")
    model, _ = ll.load_base()
    print(f"model: all-MiniLM-L6-v2, {sum(p.numel() for p in model.parameters()):,} parameters")
    for name in ("tweets", "tweets3", "bbc"):
        print(ll.load_task(name).summary())


def precompute(names: list[str], seeds: list[int] | None = None, add: bool = False) -> None:
    """Run the experiments (default: all) in full mode and store each one's results with their provenance.

    ``seeds``: run each experiment once per seed and store the runs side by side (rows carry their seed);
    ``add=True`` keeps the stored runs of other seeds, so seeds can be computed on different days."""
    from . import results
    from .experiments import EXPERIMENTS

    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; experiments: {', '.join(EXPERIMENTS)}")
    before = os.environ.get("LESSON_MODE")
    os.environ["LESSON_MODE"] = "full"  # stored results are full-mode results, whatever this machine is
    try:
        seeds = list(seeds or [0])
        for name in names or list(EXPERIMENTS):
            command = f"python -m lesson_lib precompute {name}"  # save_seeds adds the seeds stored
            for i, seed in enumerate(seeds):  # each seed is stored as soon as it is done
                print(f"{name}, seed {seed}: {EXPERIMENTS[name].about} …", flush=True)
                start = time.perf_counter()
                run = (seed, EXPERIMENTS[name].run("full", seed), time.perf_counter() - start)
                path = results.save_seeds(name, [run], command, add=add or i > 0)
                print(f"{name}, seed {seed}: {run[2]:.0f} s → {path}", flush=True)
    finally:
        if before is None:
            os.environ.pop("LESSON_MODE", None)
        else:
            os.environ["LESSON_MODE"] = before


def prepare_lecture() -> None:
    from . import lecture

    print(f"running every lesson notebook once; their live runs go to {lecture.cache_dir()}", flush=True)
    for name, seconds in lecture.prepare():
        print(f"{name}: {seconds} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lesson_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device, mode, model and data")
    pre = sub.add_parser("precompute", help="compute the stored full-mode results (lesson_lib/stored/)")
    pre.add_argument("names", nargs="*", help="experiments to run (default: all)")
    pre.add_argument("--seeds", type=int, nargs="+", default=[0], help="run each experiment once per seed")
    pre.add_argument("--add", action="store_true", help="keep the stored runs of other seeds")
    sub.add_parser("prepare-lecture", help="run every notebook once, so the lecture loads its live runs")
    args = parser.parse_args(argv)
    if args.command == "info":
        info()
    elif args.command == "precompute":
        precompute(args.names, args.seeds, args.add)
    else:
        prepare_lecture()
    return 0


if __name__ == "__main__":
    sys.exit(main())
