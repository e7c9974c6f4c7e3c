"""Accuracy against trainable parameters: each method over its size knob (the LoRA paper's Figure 2, small).

    python -m benchmarks.sweep                  # full mode: ~2 h on 2 CPU cores, minutes on a GPU
    python -m benchmarks.sweep --quick          # smoke test (a few steps on a small subset), prints only

The sweep is ``lesson_lib.experiments.size_sweep`` (sizes ``experiments.SWEEP_SIZES``), the one definition
that ``python -m lesson_lib precompute sweep_tweets`` stores for the notebooks as well. The claim to check:
prefix-style methods lose accuracy as they grow, LoRA does not. A method "drops" here when its largest size
is more than one point below its best size (one seed: a point is within the noise of 1,000 test tweets).
"""

from __future__ import annotations

from . import common


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


def main(argv=None) -> dict:
    from lesson_lib import experiments

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--task", default="tweets", choices=["tweets", "bbc"])
    args = p.parse_args(argv)
    info = common.machine(common.setup(args))
    mode = "quick" if args.quick else "full"
    rows = experiments.size_sweep(args.task, mode)["rows"]
    table = [[r["method"], r["size"], f"{r['trainable']:,}", f"{100 * r['accuracy']:.1f} %", f"{r['lr']:g}",
              f"{r['steps']} × {r['batch_size']}", f"{r['seconds']:.0f}"] for r in rows]
    v = verdicts(rows)
    md = "\n".join([
        f"## Accuracy vs trainable parameters on {args.task}, {mode} mode (`lesson_lib.experiments.size_sweep`)", "",
        common.machine_markdown(info), "",
        common.markdown_table(["method", "size", "trainable", "test accuracy", "lr", "steps × batch", "train s"],
                              table), "",
        *[f"- **{m}**: {text}" for m, text in v.items()],
    ])
    data = {"benchmark": "sweep", "machine": info, "mode": mode, "task": args.task, "rows": rows, "verdicts": v}
    common.write(f"sweep_{args.task}", args, data, md)
    return data


if __name__ == "__main__":
    main()
