"""How long the lecture's interactive pieces take: slider updates and a live-curve update.

    python -m benchmarks.interactive           # full run, writes benchmarks/results/interactive.{json,md}
    python -m benchmarks.interactive --quick   # smoke test (tiny model), prints only

* parameter-count slider: ``widgets.parameter_explorer`` on a bare model; move the LoRA-rank slider
  through 1 … 64 and back; each update injects, counts, removes and redraws (``panel.timings``);
* SVD slider: ``widgets.delta_w_explorer`` on a LoRA model with random non-zero A and B; pick each
  layer and matrix in turn (an SVD, a spectrum and a heatmap each), then move the rank-k slider
  (the first visit of a k truncates every ΔW and evaluates the fixed subset; later visits are cached);
* live curve: ``widgets.live_training`` trains the fast-path recipe in the calling thread; we add up
  the time spent redrawing the curve and evaluating the live subset and compare it with the rest of
  the training time. Target: < 5 % (all evaluations counted, the one at the end included).

Figures are built as in a notebook without a browser attached, so drawing costs are a lower bound.
"""

from __future__ import annotations

import statistics
import time

from . import common


def _median_ms(xs) -> float:
    return 1000 * statistics.median(xs)


def parameter_slider(model, values) -> list[float]:
    from lesson_lib import widgets

    panel = widgets.parameter_explorer(model)
    times = []
    for r in values:
        panel.controls["r"].value = r
        times.append(panel.timings["update"])
    return times


def svd_sliders(model, split, eval_limit: int) -> dict[str, list[float]]:
    from lesson_lib import widgets

    panel = widgets.delta_w_explorer(model, split, eval_limit=eval_limit)
    c, picks, first, again = panel.controls, [], [], []
    for layer in c["layer"].options:
        for matrix in c["matrix"].options:
            if (layer, matrix) == (c["layer"].value, c["matrix"].value):
                continue
            panel.timings.pop("pick", None)
            c["layer"].value, c["matrix"].value = layer, matrix  # one or two updates; the last one is timed
            if "pick" in panel.timings:
                picks.append(panel.timings["pick"])
    ks = [k for k in range(1, c["k"].max + 1) if k != c["k"].value]
    for bucket in (first, again):
        for k in ks:
            c["k"].value = k
            bucket.append(panel.timings["rank"])
    return {"pick": picks, "rank_first": first, "rank_again": again}


def live_curve(factory, task, cfg) -> dict:
    """Train through the live panel; time its redraws and evaluations against the whole run."""
    from lesson_lib import fast, widgets

    panel = widgets.live_training(factory, task, cfg, log=widgets.RunLog(), background=False)
    draws, evals = [], []
    draw = panel.draw

    def timed_draw(history):
        start = time.perf_counter()
        draw(history)
        draws.append(time.perf_counter() - start)

    original = fast.evaluate_cached

    def timed_eval(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            evals.append(time.perf_counter() - start)

    panel.draw = timed_draw
    fast.evaluate_cached = timed_eval
    try:
        panel.start(block=True)
    finally:
        fast.evaluate_cached = original
    h = panel.last_history
    overhead = sum(draws) + sum(evals)
    return {"path": h.path, "steps": len(h.steps), "seconds": h.seconds, "draws": len(draws),
            "draw_s": sum(draws), "evals": len(evals), "eval_s": sum(evals),
            "first_eval_s": evals[0] if evals else 0.0,
            "overhead_pct": 100 * overhead / max(h.seconds - overhead, 1e-9)}


def _lora_model(tiny: bool, k=None):
    import lesson_lib as ll
    from lesson_lib import fast

    from .step_time import _randomise_lora

    model, _ = ll.load_base(tiny=tiny)
    ll.inject(model, ll.LoRAConfig(r=8 if not tiny else 4, alpha=16,
                                   layers=None if k is None else fast.top_layers(model, k)))
    if k is None:
        _randomise_lora(model)
    return model


def main(argv=None) -> dict:
    import lesson_lib as ll

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="live-training steps (default 100; quick 6)")
    args = p.parse_args(argv)
    device = common.setup(args)
    info = common.machine(device)
    tiny = args.quick
    task = common.task(tiny)
    bare, _ = ll.load_base(tiny=tiny)
    ranks = [1, 2, 4, 8, 16, 32] if tiny else [1, 2, 4, 8, 16, 32, 64, 32, 16, 8, 4, 2, 1]
    param = parameter_slider(bare, ranks)
    svd = svd_sliders(_lora_model(tiny), task.val, eval_limit=32 if tiny else 128)
    k = 1 if tiny else 2
    cfg = ll.TrainConfig(steps=args.steps or (6 if tiny else 100), eval_every=3 if tiny else 25, lr=3e-3,
                         device=str(device))
    live = live_curve(lambda: _lora_model(tiny, k), task, cfg)
    rows = [
        ["parameter-count slider (LoRA rank)", len(param), f"{_median_ms(param):.0f}", f"{1000 * max(param):.0f}",
         "< 500 ms: " + ("met" if max(param) < 0.5 else "missed")],
        ["SVD: pick a matrix (SVD + spectrum + heatmap)", len(svd["pick"]), f"{_median_ms(svd['pick']):.0f}",
         f"{1000 * max(svd['pick']):.0f}", "< 500 ms: " + ("met" if max(svd["pick"]) < 0.5 else "missed")],
        ["SVD: rank-k slider, first visit (truncate + evaluate)", len(svd["rank_first"]),
         f"{_median_ms(svd['rank_first']):.0f}", f"{1000 * max(svd['rank_first']):.0f}",
         "< 500 ms: " + ("met" if max(svd["rank_first"]) < 0.5 else "missed")],
        ["SVD: rank-k slider, visited before", len(svd["rank_again"]), f"{_median_ms(svd['rank_again']):.0f}",
         f"{1000 * max(svd['rank_again']):.0f}", "< 500 ms: " + ("met" if max(svd["rank_again"]) < 0.5 else "missed")],
    ]
    live_verdict = "met" if live["overhead_pct"] <= 5 else f"missed by {live['overhead_pct'] - 5:.1f} points"
    md = "\n".join([
        "## Interactive updates: sliders and the live curve", "",
        common.machine_markdown(info), "",
        common.markdown_table(["update", "n", "median ms", "max ms", "target"], rows), "",
        f"Live curve ({live['path']}; {live['steps']} steps, eval every {cfg.eval_every} on {cfg.eval_limit} "
        f"validation tweets): training took {live['seconds']:.1f} s, of which {live['draws']} redraws took "
        f"{live['draw_s']:.2f} s and {live['evals']} evaluations {live['eval_s']:.2f} s (the first, which fills "
        f"the cache of the evaluation subset, {live['first_eval_s']:.2f} s). **Overhead {live['overhead_pct']:.1f} %** "
        f"of the training time without them (target ≤ 5 %: {live_verdict}).",
    ])
    data = {"benchmark": "interactive", "machine": info, "quick": args.quick, "parameter_slider_s": param,
            "svd_sliders_s": svd, "live_curve": live, "train_config": {"steps": cfg.steps, "eval_every": cfg.eval_every,
                                                                      "eval_limit": cfg.eval_limit, "lr": cfg.lr}}
    common.write("interactive", args, data, md)
    return data


if __name__ == "__main__":
    main()
