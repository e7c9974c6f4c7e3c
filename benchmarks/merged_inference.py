"""Inference latency per batch: the base model, LoRA merged into W, and LoRA kept separate.

    python -m benchmarks.merged_inference           # full run, writes benchmarks/results/merged_inference.*
    python -m benchmarks.merged_inference --quick   # smoke test (tiny model), prints only

Three copies of all-MiniLM-L6-v2 in one process: the base; the base with LoRA (r = 8, query and value,
random non-zero A and B) merged with ``ll.merge``; the same LoRA unmerged. Eval mode,
``torch.inference_mode()``, the same fixed batches of 32 tweets, timed in turns; medians after warm-up.
Merging should cost nothing: the target is merged ≤ 1.02 × base.
"""

from __future__ import annotations

import copy

import torch

from . import common
from .step_time import LORA, _randomise_lora


def main(argv=None) -> dict:
    import lesson_lib as ll

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None, help="timed batches per variant (default 60; quick 5)")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    device = common.setup(args)
    repeats = args.repeats or (5 if args.quick else 60)
    info = common.machine(device)
    task = common.task(args.quick)
    base, tok = ll.load_base(tiny=args.quick)
    batches = [{k: v.to(device) for k, v in b.items() if k != "labels"}
               for b in common.fixed_batches(task, tok, 8, args.batch_size, args.seed, task.max_length)]
    base = base.to(device).eval()
    unmerged = copy.deepcopy(base)
    ll.inject(unmerged, ll.LoRAConfig(**LORA))
    _randomise_lora(unmerged)
    merged = copy.deepcopy(unmerged)
    ll.merge(merged)
    models = {"base": base, "LoRA merged": merged, "LoRA unmerged": unmerged}
    for m in models.values():
        m.eval()
    with torch.inference_mode():
        gap = max(float((merged(**b).logits - unmerged(**b).logits).abs().max()) for b in batches)

    def runner(model):
        def run(i: int) -> None:
            with torch.inference_mode():
                model(**batches[i % len(batches)])
        return run

    times = common.interleaved({name: runner(m) for name, m in models.items()}, repeats, warmup=3, device=device)
    base_median = common.summary(times["base"])["median_s"]
    rows, data_rows = [], []
    for name in models:
        stats = common.summary(times[name])
        ratio = stats["median_s"] / base_median
        data_rows.append({"variant": name, **stats, "ratio_to_base": ratio})
        rows.append([name, f"{1000 * stats['median_s']:.1f}", f"{1000 * stats['q1_s']:.1f}–{1000 * stats['q3_s']:.1f}",
                     f"{ratio:.3f}"])
    merged_ratio = data_rows[1]["ratio_to_base"]
    verdict = "met" if merged_ratio <= 1.02 else f"missed by {100 * (merged_ratio - 1.02):.1f} points"
    md = "\n".join([
        "## Inference latency per batch: base vs merged vs unmerged LoRA (interleaved, medians)", "",
        common.machine_markdown(info), "",
        f"Batches of {args.batch_size} tweets (8 fixed batches, cycled), eval mode, inference_mode, {repeats} timed "
        "batches per variant after 3 warm-up batches, taken in turns.", "",
        common.markdown_table(["model", "ms / batch (median)", "IQR (ms)", "× base"], rows), "",
        f"**Merged / base = {merged_ratio:.3f}** (target ≤ 1.02: {verdict}). Largest |logits difference| merged "
        f"vs unmerged: {gap:.1e}.",
    ])
    data = {"benchmark": "merged_inference", "machine": info, "quick": args.quick, "batch_size": args.batch_size,
            "repeats": repeats, "merged_over_base": merged_ratio,
            "unmerged_over_base": data_rows[2]["ratio_to_base"], "logits_max_abs_diff_merged_vs_unmerged": gap,
            "rows": data_rows, "raw_seconds": times}
    common.write("merged_inference", args, data, md)
    return data


if __name__ == "__main__":
    main()
