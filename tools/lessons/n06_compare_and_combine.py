from nbgen import code, md, setup_cell

CELLS = [
    md("""
    # 06 · Compare and combine

    Every method, the same budget, two tasks: sentiment of tweets and BBC News topics. Then accuracy against
    trainable parameters (the LoRA paper's Figure 2, in miniature), and UniPELT (Mao et al. 2022): all three
    methods in one model, each behind a learned gate.

    These experiments are the longest of the course. A lecturer runs `python -m lesson_lib precompute` once;
    the cells below then load the stored results. Without them they run now (quick mode: tiny budgets, so the
    numbers are only indicative).
    """),
    setup_cell("06 compare and combine"),
    md("""
    ⏱ **How long this notebook takes.** Quick mode (`LESSON_FAST=1`, what the tests run): 61 s top to bottom,
    measured on a 2-core CPU with one torch thread while another job ran. Full mode on that CPU (estimated from the
    measured seconds per step in `benchmarks/results/`): every method on both tasks plus the size sweeps is hours of CPU time; UniPELT alone (300 steps) about 8 minutes. Run `python -m lesson_lib precompute` before the lecture (on a GPU if you can): then every cell loads in seconds.
    On a GPU: not measured yet — no GPU was available to this project; `bash benchmarks/gpu_check.sh` measures it.
    """),
    md("## Every method, the same budget"),
    code("""
    def show(results):
        print(f"[{results['task']}] source: {results['_source']}")
        print(f"  {'method':8s} {'size':>5s} {'trainable':>12s} {'test acc':>9s} {'seconds':>8s} {'file':>10s}")
        for r in results["rows"]:
            size = "" if r["size"] is None else r["size"]
            file = "" if r["file_bytes"] is None else f"{r['file_bytes'] / 2**20:.2f} MB"
            print(f"  {r['method']:8s} {size!s:>5s} {r['trainable']:>12,} {r['accuracy']:>9.1%} {r['seconds']:>8.0f} {file:>10s}")

    TASKS = ("tweets",) if ll.FAST else ("tweets", "bbc")      # quick mode: tweets only
    compare = {t: ll.lecture.cached(f"compare_{t}") for t in TASKS}
    for results in compare.values():
        show(results)
    """),
    md("""
    ## No single winner?

    The best method on each task, and how far each method is from it.
    """),
    code("""
    for task, results in compare.items():
        rows = [r for r in results["rows"] if r["method"] != "full"]
        best = max(rows, key=lambda r: r["accuracy"])
        gaps = ", ".join(f"{r['method']} {100 * (r['accuracy'] - best['accuracy']):+.1f}" for r in rows if r is not best)
        print(f"{task}: best efficient method {best['method']} ({best['accuracy']:.1%}); others (points): {gaps}")
    """),
    md("""
    ## Accuracy against trainable parameters

    Each method over its size knob: LoRA rank, adapter bottleneck, prefix and prompt length. The lecture's
    claim: some methods lose accuracy as they grow (prefix-style methods, which spend sequence capacity),
    LoRA does not. Here is what this model and these tasks show — judged from the measurements below, not assumed.
    """),
    code("""
    sweeps = {t: ll.lecture.cached(f"sweep_{t}") for t in TASKS}
    for task, results in sweeps.items():
        print(f"[{task}] source: {results['_source']}")
        by_method = {}
        for r in results["rows"]:
            by_method.setdefault(r["method"], []).append(r)
        for method, rows in by_method.items():
            rows.sort(key=lambda r: r["trainable"])
            line = "  ".join(f"{r['size']}: {r['accuracy']:.1%} ({r['trainable']:,})" for r in rows)
            peak = max(rows, key=lambda r: r["accuracy"])
            verdict = "drops after its best size" if rows[-1]["accuracy"] < peak["accuracy"] - 0.01 else "does not drop"
            print(f"  {method:8s} {line}   → {verdict}")
    """),
    code("""
    from lesson_lib import plots, widgets
    runs = [{**r, "label": f"{r['method']} {r['size']}"} for r in sweeps["tweets"]["rows"]]
    widgets.FigureView(plots.accuracy_vs_params(runs, title="tweets: accuracy vs trainable parameters")).widget
    """),
    md("""
    ## UniPELT: all three methods, each behind a learned gate

    $g = \\sigma(W_g h)$, averaged over tokens, one gate per method per layer. It scales LoRA's update, the adapter's
    output and the attention paid to the prefix. After training we read the gates, then switch each method off by
    hand and watch the accuracy — a live ablation.
    """),
    code("""
    LIMIT = 200 if ll.FAST else None
    STEPS = 3 if ll.FAST else 300
    tweets = ll.load_task("tweets", limit=LIMIT)

    def train_unipelt():
        model, _ = ll.load_base()
        ll.inject(model, [ll.LoRAConfig(r=8, alpha=16), ll.AdapterConfig(bottleneck=64), ll.PrefixConfig(length=10)],
                  gates=ll.GateConfig(learned=True))
        ll.train(model, tweets, ll.TrainConfig(steps=STEPS, lr=1e-3, eval_every=0))
        return model

    unipelt = ll.lecture.trained("unipelt_tweets", train_unipelt)
    from lesson_lib.data import make_loader
    batch = next(iter(make_loader(tweets.test, ll.tokenizer_for(unipelt), 64, max_length=64)))
    gates = ll.read_gates(unipelt, batch)
    for method, values in gates.items():
        print(f"{method:8s} gate per layer: " + "  ".join(f"{v:.2f}" for v in values))
    """),
    code("""
    full_acc = ll.evaluate(unipelt, tweets.test)["accuracy"]
    print(f"all methods on: {full_acc:.1%}")
    for method in gates:
        ll.set_gates(unipelt, **{method: 0.0})
        acc = ll.evaluate(unipelt, tweets.test)["accuracy"]
        ll.set_gates(unipelt, **{method: None})          # back to the learned gate
        print(f"{method:8s} switched off: {acc:.1%} ({100 * (acc - full_acc):+.1f} points)")
    """),
    md("### The gate board: the learned gates, and sliders that override them live"),
    code("""
    board = widgets.gate_board(unipelt, tweets.test)
    board
    """),
    md("## Does the combination beat the best single method?"),
    code("""
    for task, results in compare.items():
        rows = {r["method"]: r for r in results["rows"]}
        singles = {m: rows[m]["accuracy"] for m in ("lora", "adapter", "prefix", "prompt") if m in rows}
        best = max(singles, key=singles.get)
        uni = rows["unipelt"]["accuracy"]
        print(f"{task}: UniPELT {uni:.1%} vs best single ({best}) {singles[best]:.1%} → "
              f"{'beats it' if uni > singles[best] else 'does not beat it'} ({100 * (uni - singles[best]):+.1f} points)")
    """),
]
