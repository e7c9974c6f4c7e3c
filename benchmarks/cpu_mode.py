"""CPU mode against full mode: what each notebook trains live on a CPU, beside the full-mode result.

    python -m benchmarks.cpu_mode                 # every live CPU run of the notebooks (~10 min on 2 cores)
    python -m benchmarks.cpu_mode --seeds 0 1 2   # three seeds each: mean and spread
    python -m benchmarks.cpu_mode --quick         # smoke test (tiny model, seconds), prints only

CPU mode trains a method in the top two layers only, with the frozen layers below cached (the fast path), for
fewer steps at a learning rate that suits them (``lesson_lib.experiments.CPU_RECIPES``). The target: test
accuracy on the full test split within about 2 points of the full-mode run (every layer, the full budget),
whose result is read from the stored full-mode results (``lesson_lib/stored``, ``python -m lesson_lib
precompute``). Every run starts from a fresh MiniLM with the seed given.
"""

from __future__ import annotations

import statistics

from . import common

# (label, method, task, size, stored experiment, how to find the stored run)
LIVE = [
    ("00 head only", "head", "tweets", None, "compare_tweets", ("rows", "head")),
    ("02 adapters, tweets", "adapter", "tweets", None, "compare_tweets", ("rows", "adapter")),
    ("02 adapters, BBC topics", "adapter", "bbc", None, "compare_bbc", ("rows", "adapter")),
    ("03 LoRA r = 8", "lora", "tweets", 8, "compare_tweets", ("rows", "lora")),
    ("04 LoRA r = 64", "lora", "tweets", 64, "delta_w_tweets", ("runs", "lora_r64")),
    ("05 prefix tuning (MLP)", "prefix", "tweets", None, "compare_tweets", ("rows", "prefix")),
    ("06 UniPELT", "unipelt", "tweets", None, "compare_tweets", ("rows", "unipelt")),
]


def _reference(experiment: str, where: tuple[str, str]) -> tuple[float | None, str]:
    from lesson_lib import results

    try:
        record = results.load(experiment)
    except results.NotStoredError:
        return None, "not stored"
    kind, key = where
    run = record["result"]["runs"][key] if kind == "runs" else \
        next(r for r in record["result"]["rows"] if r["method"] == key)
    return run["accuracy"], f"{run['steps']} × {run['batch_size']}, every layer, lr {run['lr']:g}"


def main(argv=None) -> dict:
    import lesson_lib as ll
    from lesson_lib.experiments import recipe, run_method
    from lesson_lib.tiny import tiny_task

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = p.parse_args(argv)
    device = common.setup(args)
    info = common.machine(device)
    rows = []
    items = LIVE[:2] if args.quick else LIVE
    for label, method, task_name, size, experiment, where in items:
        r = recipe(method, task_name, "cpu")
        task = tiny_task(n=64) if args.quick else ll.load_task(task_name)
        accs, secs = [], []
        for seed in args.seeds:
            steps = 3 if args.quick else r.steps
            res, _ = run_method(method, task, steps=steps, size=size, lr=r.lr, batch_size=r.batch_size, seed=seed,
                                top=r.top if not args.quick else None, tiny=args.quick)
            accs.append(res.accuracy)
            secs.append(res.seconds)
            print(f"{label} seed {seed}: {res.accuracy:.1%} ({res.seconds:.0f} s)", flush=True)
        full, how = _reference(experiment, where)
        rows.append({"label": label, "method": method, "task": task_name, "size": size, "recipe": str(r),
                     "accuracies": accs, "seconds": secs, "full_accuracy": full, "full_recipe": how})
    return _report(args, info, rows)


def _report(args, info, rows) -> dict:
    table = []
    for r in rows:
        mean = statistics.mean(r["accuracies"])
        spread = f" ± {100 * statistics.stdev(r['accuracies']):.1f}" if len(r["accuracies"]) > 1 else ""
        if r["full_accuracy"] is None:
            gap, verdict = "–", "no stored full-mode run"
        else:
            gap = 100 * (mean - r["full_accuracy"])
            verdict = "within 2 points" if abs(gap) <= 2 else "**more than 2 points apart**"
            gap = f"{gap:+.1f}"
        full = "–" if r["full_accuracy"] is None else f"{100 * r['full_accuracy']:.1f} % ({r['full_recipe']})"
        table.append([r["label"], r["recipe"].replace("cpu mode: ", ""), f"{100 * mean:.1f} %{spread}",
                      f"{statistics.median(r['seconds']):.0f}", full, gap, verdict])
    md = "\n".join([
        "## CPU mode against full mode (what the notebooks train live on a CPU)", "",
        common.machine_markdown(info), "",
        f"Seeds {args.seeds}; test accuracy on the full test split (tweets 1,000, BBC 300); training seconds on this "
        "machine (median). Full mode: the stored full-mode run (`lesson_lib/stored`), one seed.", "",
        common.markdown_table(["run", "CPU recipe", "CPU accuracy", "train s", "full mode", "points", "target"],
                              table),
    ])
    data = {"benchmark": "cpu_mode", "machine": info, "quick": args.quick, "seeds": args.seeds, "rows": rows}
    common.write("cpu_mode", args, data, md)
    return data


if __name__ == "__main__":
    main()
