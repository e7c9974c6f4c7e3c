"""How long the lecture's interactive pieces take: slider updates and a live-curve update.

    python -m benchmarks.interactive           # full run, writes benchmarks/results/interactive.{json,md}
    python -m benchmarks.interactive --quick   # smoke test (tiny model), prints only

* parameter-count slider: ``widgets.parameter_explorer`` on a bare model; move the LoRA-rank slider
  through 1 … 64 and back; each update computes the counts by formula and redraws (``panel.timings``);
* SVD slider: ``widgets.delta_w_explorer`` on a LoRA model with random non-zero A and B; pick each
  layer and matrix in turn (an SVD, a spectrum and a heatmap each), then move the rank-k slider
  (the first visit of a k truncates every ΔW and evaluates the fixed subset; later visits are cached),
  without and then with the explorer's background warm-up (the default), which evaluates every k first;
* live curve: ``widgets.live_training`` trains the fast-path recipe in the calling thread, once with the
  notebooks' full-mode settings (300 steps, 3 evaluations) and once densely evaluated (100 steps, every
  25); we add up the time spent redrawing the curve and evaluating the live subset and compare each
  with the rest of the training time. Target: a redraw costs training ≤ 5 %.

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

    panel = widgets.delta_w_explorer(model, split, eval_limit=eval_limit, warm_up=False)
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
    start = time.perf_counter()  # the default: every k evaluated in the background as the panel is shown
    warmed = widgets.delta_w_explorer(model, split, eval_limit=eval_limit)
    warmed.state.warmer.join()
    warm_up_s = time.perf_counter() - start
    after = []
    for k in ks:
        warmed.controls["k"].value = k
        after.append(warmed.timings["rank"])
    return {"pick": picks, "rank_first": first, "rank_again": again, "rank_after_warm_up": after,
            "warm_up_s": [warm_up_s]}


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
    rest = max(h.seconds - sum(draws) - sum(evals), 1e-9)  # training time without the live curve's work
    return {"path": h.path, "steps": len(h.steps), "seconds": h.seconds, "draws": len(draws),
            "draw_s": sum(draws), "evals": len(evals), "eval_s": sum(evals),
            "first_eval_s": evals[0] if evals else 0.0, "eval_every": cfg.eval_every, "eval_limit": cfg.eval_limit,
            "draw_pct": 100 * sum(draws) / rest, "eval_pct": 100 * sum(evals) / rest,
            "overhead_pct": 100 * (sum(draws) + sum(evals)) / rest}


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
    p.add_argument("--steps", type=int, default=None, help="live-training steps (default 300; quick 6)")
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
    steps = args.steps or (6 if tiny else 300)
    settings = {"notebook (full mode)": dict(steps=steps, eval_every=max(steps // 3, 1), eval_limit=256),
                "dense": dict(steps=steps // 3 or 1, eval_every=3 if tiny else 25, eval_limit=256)}
    lives = {}
    for name, kw in settings.items():
        cfg = ll.TrainConfig(**kw, lr=3e-3, device=str(device), fast=True)  # the top-k recipe: ask for the fast path
        lives[name] = live_curve(lambda: _lora_model(tiny, k), task, cfg)

    def row(label, xs):
        return [label, len(xs), f"{_median_ms(xs):.0f}", f"{1000 * max(xs):.0f}",
                "< 500 ms: " + ("met" if max(xs) < 0.5 else "missed")]

    rows = [row("parameter-count slider (LoRA rank)", param),
            row("SVD: pick a matrix (SVD + spectrum + heatmap)", svd["pick"]),
            row("SVD: rank-k slider, first visit, no warm-up (truncate + evaluate)", svd["rank_first"]),
            row("SVD: rank-k slider, visited before", svd["rank_again"]),
            row("SVD: rank-k slider after the background warm-up (the default)", svd["rank_after_warm_up"])]
    live_rows = [[name, live["steps"], f"every {live['eval_every']} on {live['eval_limit']}", f"{live['seconds']:.1f}",
                  f"{live['draws']} · {live['draw_s']:.2f} s", f"{live['draw_pct']:.1f} %",
                  "met" if live["draw_pct"] <= 5 else "missed",
                  f"{live['evals']} · {live['eval_s']:.2f} s (first {live['first_eval_s']:.2f} s)",
                  f"{live['eval_pct']:.1f} %", f"{live['overhead_pct']:.1f} %"] for name, live in lives.items()]
    md = "\n".join([
        "## Interactive updates: sliders and the live curve", "",
        common.machine_markdown(info), "",
        common.markdown_table(["update", "n", "median ms", "max ms", "target"], rows), "",
        f"The background warm-up of the ΔW explorer (every rank k evaluated on a copy of the model, "
        f"{svd['warm_up_s'][0]:.1f} s for r = {4 if tiny else 8} on {32 if tiny else 128} validation "
        "tweets) runs while the lecturer talks; a k it has not reached yet costs one evaluation "
        "(the first-visit row).", "",
        f"Live curve: LoRA r = 8 in the top {k} layers ({lives['dense']['path']}), lr 3e-3, trained through "
        "`widgets.live_training` in the calling thread; redraws at most every 0.5 s (and at each evaluation). "
        "Overhead = time spent in redraws or evaluations / the rest of the training time. Target: a live-curve "
        "update (redraw) slows training by ≤ 5 %; evaluating the live subset is the accuracy itself and is "
        "reported beside it.", "",
        common.markdown_table(["setting", "steps", "evaluations", "train s", "redraws", "redraw overhead",
                               "≤ 5 %", "evaluations", "evaluation overhead", "total overhead"], live_rows),
    ])
    data = {"benchmark": "interactive", "machine": info, "quick": args.quick, "parameter_slider_s": param,
            "svd_sliders_s": svd, "live_curve": lives}
    common.write("interactive", args, data, md)
    return data


if __name__ == "__main__":
    main()
