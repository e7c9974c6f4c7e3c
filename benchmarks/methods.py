"""Every method on both offline tasks: trainable parameters, test accuracy, adapter file size.

    python -m benchmarks.methods                  # full mode: ~1 h per task on 2 CPU cores, minutes on a GPU
    python -m benchmarks.methods --quick          # smoke test (a few steps on a small subset), prints only

The comparison is ``lesson_lib.experiments.compare``, the one definition the lessons and
``python -m lesson_lib precompute compare_tweets`` (the stored results the notebooks show) use as well:
head only, prompt tuning, LoRA, adapters, prefix tuning, UniPELT and full fine-tuning, each from a fresh
MiniLM with the same seed and the same budget, measured on the task's full balanced test split.
"""

from __future__ import annotations

from . import common


def main(argv=None) -> dict:
    from lesson_lib import experiments

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="*", default=["tweets", "bbc"])
    args = p.parse_args(argv)
    info = common.machine(common.setup(args))
    mode = "quick" if args.quick else "full"
    rows = [row for name in args.tasks for row in experiments.compare(name, mode)["rows"]]
    for r in rows:
        print(f"{r['task']} {r['method']}: {r['accuracy']:.1%} ({r['trainable']:,} trainable, {r['seconds']:.0f} s)")
    table = [[r["task"], r["method"], "–" if r["size"] is None else r["size"], f"{r['trainable']:,}",
              f"{100 * r['trainable'] / r['total']:.3f} %", f"{100 * r['accuracy']:.1f} %",
              "–" if r["file_bytes"] is None else f"{r['file_bytes']:,} B", f"{r['steps']} × {r['batch_size']}",
              f"{r['lr']:g}", f"{r['seconds']:.0f}"] for r in rows]
    md = "\n".join([
        f"## Every method, {mode} mode (`lesson_lib.experiments.compare`)", "", common.machine_markdown(info), "",
        common.markdown_table(["task", "method", "size", "trainable", "share of model", "test accuracy",
                               "adapter file", "steps × batch", "lr", "train s"], table),
    ])
    data = {"benchmark": "methods", "machine": info, "mode": mode, "rows": rows}
    common.write("methods", args, data, md)
    return data


if __name__ == "__main__":
    main()
