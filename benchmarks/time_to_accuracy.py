"""Wall-clock seconds from pressing Train to a target test accuracy: the plain loop vs the fast path.

    python -m benchmarks.time_to_accuracy           # full run (10-20 min on 2 CPU cores), writes results
    python -m benchmarks.time_to_accuracy --quick   # smoke test (tiny model, seconds), prints only

The plain loop is the PEFT-style recipe: LoRA r = 8 (alpha 16) on query and value in all layers,
batch 32, AdamW lr 1e-3, ``ll.train(..., TrainConfig(fast=False))``. Its test accuracy after
``--steps`` steps (300) is the target. The fast path is ``ll.train(..., fast=ll.fast.FastPath(model))``
(one cache for training and the test checkpoints) with the defaults found by measurement (see
lesson_lib/fast.py): LoRA r = 8 on query and value in the top k = 2 layers only, so layers 0-3 are
cached, length-bucketed batches, lr 3e-3 — run twice, before and after the plain loop, each from a cold
cache and with the same seed (so the same accuracy curve), so that a busy moment of a shared machine
cannot favour one side; the reported speed-up is the smaller of the two. The second fast run stops at
the target. Every run is seeded (LoRA's A matrices, batch order, dropout).

The clock starts when ``ll.train`` is called (tokenising, building the cache and every training step
count) and stops at the first checkpoint whose test accuracy reaches the target. At each checkpoint the
clock is paused while the whole test set (1,000 tweets) is evaluated: with ``ll.evaluate`` (every layer)
for the plain loop, through the cache for the fast path (exactly the same logits, see tests/test_fast.py);
the fast path's last checkpoint is also evaluated with ``ll.evaluate`` to show the two agree.
Besides wall-clock seconds we report the process's CPU seconds, which other programs on a shared
machine do not inflate.
"""

from __future__ import annotations

import statistics
import time

import torch

from . import common

RECIPES = {
    "plain": dict(k=None, lr=1e-3, batch_size=32, fast=False),
    "fast": dict(k=2, lr=3e-3, batch_size=32, fast=True),
}


class Checkpoints:
    """A train callback: every ``every`` steps pause the clock, evaluate the test set, resume."""

    def __init__(self, model, evaluate, every: int, target: float | None = None, stop_at_target: bool = False):
        self.model, self.evaluate, self.every = model, evaluate, every
        self.target, self.stop_at_target = target, stop_at_target
        self.start, self.start_cpu = time.perf_counter(), time.process_time()
        self.paused = self.paused_cpu = 0.0
        self.points: list[dict] = []
        self.step_seconds: list[float] = []
        self._last = self.start

    def on_step(self, step: int, loss: float, history) -> None:
        now, now_cpu = time.perf_counter(), time.process_time()
        self.step_seconds.append(now - self._last)
        if step % self.every == 0:
            seconds, cpu = now - self.start - self.paused, now_cpu - self.start_cpu - self.paused_cpu
            metrics = self.evaluate()
            self.model.train()
            self.points.append({"step": step, "seconds": seconds, "cpu_seconds": cpu, "accuracy": metrics["accuracy"],
                                "loss": loss})
            if self.stop_at_target and self.target is not None and metrics["accuracy"] >= self.target:
                history.request_stop()
        self.paused += time.perf_counter() - now
        self.paused_cpu += time.process_time() - now_cpu
        self._last = time.perf_counter()


def _build(name: str, tiny: bool, seed: int):
    import lesson_lib as ll
    from lesson_lib import fast

    torch.manual_seed(seed)  # the LoRA A matrices: the same in every run of a recipe
    model, tok = ll.load_base(tiny=tiny)
    recipe = RECIPES[name]
    n_layers = len(ll.models.layers_of(model))
    layers = None if recipe["k"] is None else fast.top_layers(model, min(recipe["k"], n_layers - 1))
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value"), layers=layers))
    return model, tok


def run(name: str, task, steps: int, every: int, device, tiny: bool, seed: int, target=None,
        stop_at_target=False) -> dict:
    """Train one recipe from a fresh model; the test accuracy curve against the training clock."""
    import lesson_lib as ll
    from lesson_lib import fast

    model, tok = _build(name, tiny, seed)
    recipe = RECIPES[name]
    fast_path = fast.FastPath(model) if recipe["fast"] else None  # a cold cache, shared by training and the test
    if fast_path is not None:
        test_cache = fast_path.cache(task.test, tok, task.max_length)
        evaluate = lambda: fast.evaluate_cached(model, test_cache, device)
    else:
        evaluate = lambda: ll.evaluate(model, task.test)
    cfg = ll.TrainConfig(steps=steps, lr=recipe["lr"], batch_size=recipe["batch_size"], eval_every=0,
                         progress=False, device=str(device), seed=seed)
    cb = Checkpoints(model, evaluate, every, target, stop_at_target)
    history = ll.train(model, task, cfg, callbacks=[cb], fast=fast_path)
    out = {"recipe": name, **recipe, "path": history.path, "points": cb.points, "steps_run": history.steps[-1],
           "median_step_s": statistics.median(cb.step_seconds[1:] or cb.step_seconds),
           "trainable": ll.count_params(model).trainable}
    if recipe["fast"]:
        out["check_full_model_accuracy"] = ll.evaluate(model, task.test)["accuracy"]
        out["check_cached_accuracy"] = cb.points[-1]["accuracy"] if cb.points else None
        out["cache_mb"] = fast_path.megabytes
        fast_path.clear()
    return out


def first_reaching(points: list[dict], target: float) -> dict | None:
    return next((p for p in points if p["accuracy"] >= target - 1e-12), None)


def main(argv=None) -> dict:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="plain-loop steps that define the target (300)")
    p.add_argument("--fast-steps", type=int, default=None, help="most steps of each fast run (400)")
    p.add_argument("--every", type=int, default=None, help="steps between test-set checkpoints (25)")
    args = p.parse_args(argv)
    device = common.setup(args)
    steps = args.steps or (6 if args.quick else 300)
    fast_steps = args.fast_steps or (6 if args.quick else 400)
    every = args.every or (3 if args.quick else 25)
    info = common.machine(device)
    task = common.task(args.quick)
    runs = [run("fast", task, fast_steps, every, device, args.quick, args.seed),
            run("plain", task, steps, every, device, args.quick, args.seed)]
    target = runs[1]["points"][-1]["accuracy"]
    runs.append(run("fast", task, fast_steps, every, device, args.quick, args.seed, target, stop_at_target=True))
    for r in runs:
        hit = first_reaching(r["points"], target)
        r["target_reached"] = hit is not None
        r["time_to_target_s"] = hit["seconds"] if hit else None
        r["steps_to_target"] = hit["step"] if hit else None
        r["accuracy_at_target"] = hit["accuracy"] if hit else None
        r["cpu_seconds_to_target"] = hit["cpu_seconds"] if hit else None
    plain = runs[1]
    fast_runs = [r for r in (runs[0], runs[2]) if r["target_reached"]]
    wall = [plain["time_to_target_s"] / r["time_to_target_s"] for r in fast_runs]
    cpu = [plain["cpu_seconds_to_target"] / r["cpu_seconds_to_target"] for r in fast_runs]
    both = len(fast_runs) == 2
    return _report(args, info, runs, target, min(wall) if both else None, min(cpu) if both else None, steps, every)


def _report(args, info, runs, target, speedup, cpu_speedup, steps, every) -> dict:
    names = ["fast (before plain)", "plain", "fast (after plain, stops at the target)"]
    rows = []
    for label, r in zip(names, runs):
        setting = ("LoRA all layers" if r["k"] is None else f"LoRA top {r['k']} layers") + \
            f", lr {r['lr']:g}, batch {r['batch_size']}"
        reached = "–" if not r["target_reached"] else f"{r['time_to_target_s']:.1f}"
        cpu = "–" if not r["target_reached"] else f"{r['cpu_seconds_to_target']:.1f}"
        rows.append([label, setting, f"{r['trainable']:,}", f"{r['median_step_s']:.3f}", reached, cpu,
                     r["steps_to_target"] or "not reached", "–" if r["accuracy_at_target"] is None else
                     f"{100 * r['accuracy_at_target']:.1f} %", f"{100 * r['points'][-1]['accuracy']:.1f} % "
                     f"(step {r['points'][-1]['step']})"])
    if speedup is None:
        verdict = "the fast path did not reach the target in both runs: target missed"
    else:
        verdict = f"**speed-up {speedup:.2f}×** (the slower of the two fast runs; target ≥ 3×: " + \
            ("met" if speedup >= 3 else f"missed by {3 - speedup:.2f}×") + ")"
    checks = [f"{100 * r['check_cached_accuracy']:.1f} % cached vs {100 * r['check_full_model_accuracy']:.1f} % "
              "full model" for r in runs if "check_full_model_accuracy" in r]
    levels = sorted({0.80, 0.85, 0.87, 0.88, round(target, 3)})
    level_rows = []
    for level in levels:
        hits = [first_reaching(r["points"], level) for r in runs]
        cells = ["–" if h is None else f"{h['seconds']:.0f} s (step {h['step']})" for h in hits]
        ratio = "–" if hits[1] is None or hits[0] is None else f"{hits[1]['seconds'] / hits[0]['seconds']:.1f}×"
        level_rows.append([f"{100 * level:.1f} %", *cells, ratio])
    point = lambda p: f"{p['step']}: {100 * p['accuracy']:.1f} % @ {p['seconds']:.0f} s"  # noqa: E731
    curve = [[label, *map(point, r["points"])] for label, r in zip(names, runs)]
    md = "\n".join([
        "## Time to accuracy on tweets: plain loop vs fast path (same process)", "",
        common.machine_markdown(info), "",
        f"Target = the plain loop's test accuracy after {steps} steps = **{100 * target:.1f} %** "
        f"(full test set, {len(curve) and runs[1]['points'][-1].get('step')} steps). Test set evaluated every "
        f"{every} steps with the clock paused.", "",
        common.markdown_table(["run", "recipe", "trainable", "s / step (median)", "seconds to target",
                               "CPU seconds to target", "steps to target", "accuracy at target", "last checkpoint"],
                              rows), "",
        verdict + ". The same ratio in CPU seconds of this process (not counting time other programs took from "
        "it on a shared machine): " + ("–" if cpu_speedup is None else f"{cpu_speedup:.2f}×") + ".", "",
        "Seconds to each accuracy level (first checkpoint at or above it):", "",
        common.markdown_table(["test accuracy", *names, "plain / fast (before)"], level_rows), "",
        "Fast path, last checkpoint evaluated both ways: " + "; ".join(checks) + ".", "",
        "Curves (step: test accuracy @ training seconds):", "",
        *["- " + " · ".join(c) for c in curve],
    ])
    data = {"benchmark": "time_to_accuracy", "machine": info, "quick": args.quick, "target_accuracy": target,
            "plain_steps": steps, "checkpoint_every": every, "speedup_min": speedup,
            "cpu_speedup_min": cpu_speedup, "runs": runs}
    common.write("time_to_accuracy", args, data, md)
    return data


if __name__ == "__main__":
    main()
