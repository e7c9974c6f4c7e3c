"""Accuracy against trainable parameters: each method over its size knob (the LoRA paper's Figure 2, small).

    python -m benchmarks.sweep                  # tweets, 100 steps per run (~40 min on 1 CPU core)
    python -m benchmarks.sweep --quick          # smoke test (tiny model, seconds), prints only

The sizes are the notebooks' (``lesson_lib.experiments.SWEEP_SIZES``): LoRA r 1, 4, 16, 64; adapter
bottleneck 4, 16, 64, 256; prefix length 2, 8, 32, 64 (with the MLP); prompt length 2, 8, 32, 64. Every
run starts from a fresh MiniLM with the same seed and batches and is measured on the full balanced test
split. The lecture's claim to check: prefix-style methods lose accuracy as they grow, LoRA does not.
A method "drops" here when its largest size is more than one point below its best size.
"""

from __future__ import annotations

from . import common


def main(argv=None) -> dict:
    import lesson_lib as ll
    from lesson_lib import experiments
    from lesson_lib.tiny import tiny_task

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--task", default="tweets", choices=["tweets", "bbc"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    device = common.setup(args)
    info = common.machine(device)
    sizes, steps, batch = experiments.SWEEP_SIZES, args.steps, args.batch_size
    if args.quick:  # tiny random model on the tiny word task, two sizes of two methods
        sizes, steps, batch = {"lora": (1, 4), "prefix": (2, 4)}, 3, 8
    task = tiny_task(n=160) if args.quick else ll.load_task(args.task)
    rows = []
    for method, knob in sizes.items():
        for size in knob:
            res, _ = experiments.run_method(method, task, steps=steps, size=size, batch_size=batch, seed=args.seed,
                                            tiny=args.quick)
            rows.append({**res.as_dict(), "lr": experiments.LEARNING_RATES[method]})
            print(f"{method} {size}: {res.accuracy:.1%} ({res.trainable:,} trainable, {res.seconds:.0f} s)", flush=True)
    return _report(args, info, rows, steps, batch, len(task.test))


def verdicts(rows: list[dict]) -> dict[str, str]:
    """Per method: its best size, and whether its largest size is more than a point below the best."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        runs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["trainable"])
        best = max(runs, key=lambda r: r["accuracy"])
        gap = 100 * (best["accuracy"] - runs[-1]["accuracy"])
        out[method] = (f"best at {best['size']} ({100 * best['accuracy']:.1f} %); largest size "
                       + (f"{gap:.1f} points lower: drops" if gap > 1 else f"within {gap:.1f} points: does not drop"))
    return out


def _report(args, info, rows, steps, batch, n_test) -> dict:
    table = [[r["method"], r["size"], f"{r['trainable']:,}", f"{100 * r['accuracy']:.1f} %", f"{r['lr']:g}",
              f"{r['seconds']:.0f}"] for r in rows]
    v = verdicts(rows)
    md = "\n".join([
        f"## Accuracy vs trainable parameters on {args.task} (each method over its size knob)", "",
        common.machine_markdown(info), "",
        f"{steps} steps × batch {batch} per run, one seed, test accuracy on the full balanced test split "
        f"({n_test:,} examples).", "",
        common.markdown_table(["method", "size", "trainable", "test accuracy", "lr", "train s"], table), "",
        *[f"- **{m}**: {text}" for m, text in v.items()],
    ])
    data = {"benchmark": "sweep", "machine": info, "quick": args.quick, "task": args.task, "steps": steps,
            "batch_size": batch, "rows": rows, "verdicts": v}
    common.write(f"sweep_{args.task}", args, data, md)
    return data


if __name__ == "__main__":
    main()
