"""``python -m lesson_lib …``: prepare a lecture, or print a summary of the setup.

    python -m lesson_lib info          versions, device, model and data sizes
    python -m lesson_lib precompute    run the long experiments and every notebook once; lectures then load the results
"""

from __future__ import annotations

import argparse
import sys


def info() -> None:
    import torch
    import transformers

    import lesson_lib as ll

    print(f"lesson_lib {ll.__version__} | torch {torch.__version__} | transformers {transformers.__version__}")
    print(f"device: {ll.pick_device()} | quick mode (LESSON_FAST): {ll.FAST}")
    model, _ = ll.load_base()
    print(f"model: all-MiniLM-L6-v2, {sum(p.numel() for p in model.parameters()):,} parameters")
    for name in ("tweets", "tweets3", "bbc"):
        print(ll.load_task(name).summary())


def precompute(names: list[str], notebooks: bool = True) -> None:
    """Run the experiments (default: all), then every lesson notebook once in full mode, storing results."""
    from . import lecture

    for name in names or list(lecture.EXPERIMENTS):
        data = lecture.cached(name, refresh=True)
        print(f"{name}: {data['_seconds']} s → {lecture._path(name)}", flush=True)
    if notebooks and not names:
        print(f"running the lesson notebooks in full mode; their trained models go to {lecture.CACHE_DIR}", flush=True)
        for name, seconds in lecture.precompute_notebooks():
            print(f"{name}: {seconds} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lesson_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device, model and data")
    pre = sub.add_parser("precompute", help="run the lecture's long experiments once and store the results")
    pre.add_argument("names", nargs="*", help="experiments to run (default: all, then every notebook)")
    pre.add_argument("--no-notebooks", action="store_true", help="only the experiments, not the notebooks")
    args = parser.parse_args(argv)
    if args.command == "info":
        info()
    else:
        precompute(args.names, notebooks=not args.no_notebooks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
