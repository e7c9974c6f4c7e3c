"""Every method on both offline tasks: trainable parameters, test accuracy, adapter file size.

    python -m benchmarks.methods                  # tweets 200 steps, BBC 60 steps (~1 h on 1 CPU core)
    python -m benchmarks.methods --quick          # smoke test (tiny model, seconds), prints only

The lecture's comparison table, measured: head only, LoRA (r 8, query+value), Houlsby adapters
(bottleneck 64), prefix tuning (length 10, MLP), prompt tuning (length 10), UniPELT (the three with
learned gates) and full fine-tuning, each from a fresh MiniLM with the same seed, the same batches and
the same step budget per task, measured on the task's full balanced test split (tweets 1,000,
BBC 300). Learning rates are ``lesson_lib.experiments.LEARNING_RATES``. The notebooks' comparison
(``lesson_lib.experiments.compare``, stored by ``python -m lesson_lib precompute``) uses the full-mode budget:
tweets 300 steps × 32, BBC 100 × 16.
"""

from __future__ import annotations

from . import common

METHODS = ("head", "lora", "adapter", "prefix", "prompt", "unipelt", "full")


def main(argv=None) -> dict:
    import lesson_lib as ll
    from lesson_lib.experiments import LEARNING_RATES, run_method
    from lesson_lib.tiny import tiny_task

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--tweets-steps", type=int, default=200)
    p.add_argument("--bbc-steps", type=int, default=60)
    p.add_argument("--bbc-batch-size", type=int, default=16, help="BBC articles are long (256 tokens)")
    p.add_argument("--tasks", nargs="*", default=["tweets", "bbc"])
    args = p.parse_args(argv)
    device = common.setup(args)
    info = common.machine(device)
    budgets = {"tweets": (args.tweets_steps, 32), "bbc": (args.bbc_steps, args.bbc_batch_size)}
    rows = []
    for name in args.tasks:
        steps, batch = budgets[name]
        task = tiny_task(n=160, num_labels=2 if name == "tweets" else 3) if args.quick else ll.load_task(name)
        if args.quick:  # the smoke test trains the tiny random model on the tiny word task
            steps, batch = 3, 8
        for method in METHODS:
            if args.quick and method not in ("head", "lora"):
                continue
            res, _ = run_method(method, task, steps=steps, batch_size=batch, seed=args.seed,
                                tiny=args.quick)
            row = {**res.as_dict(), "task": name, "batch_size": batch, "lr": LEARNING_RATES[method],
                   "test_size": len(task.test)}
            rows.append(row)
            print(f"{name} {method}: {res.accuracy:.1%} ({res.trainable:,} trainable, {res.seconds:.0f} s)", flush=True)
    return _report(args, info, rows)


def _report(args, info, rows) -> dict:
    table = []
    for r in rows:
        share = 100 * r["trainable"] / r["total"]
        file = "–" if r["file_bytes"] is None else f"{r['file_bytes']:,} B"
        table.append([r["task"], r["method"], "–" if r["size"] is None else r["size"], f"{r['trainable']:,}",
                      f"{share:.3f} %", f"{100 * r['accuracy']:.1f} %", file, f"{r['steps']} × {r['batch_size']}",
                      f"{r['lr']:g}", f"{r['seconds']:.0f}"])
    md = "\n".join([
        "## Every method on tweets and BBC News (same budget per task, full balanced test split)", "",
        common.machine_markdown(info), "",
        "Test examples per task (balanced, so chance is 1 / classes): "
        + ", ".join(sorted({f"{r['task']} {r['test_size']:,}" for r in rows}))
        + ". One seed; training seconds on this machine.", "",
        common.markdown_table(["task", "method", "size", "trainable", "share of model", "test accuracy",
                               "adapter file", "steps × batch", "lr", "train s"], table),
    ])
    data = {"benchmark": "methods", "machine": info, "quick": args.quick, "rows": rows}
    common.write("methods", args, data, md)
    return data


if __name__ == "__main__":
    main()
