from nbgen import code, md, setup_cell, timing_cell

CELLS = [
    md("""
    # 06 · Compare and combine

    Every method, the same budget, two tasks: sentiment of tweets and BBC News topics. Then accuracy against
    trainable parameters (the LoRA paper's Figure 2, in miniature), and UniPELT (Mao et al. 2022): all three
    methods in one model, each behind a learned gate.

    The comparison and the size sweep train about thirty models on every layer. In full mode (a GPU) they run
    now; in CPU mode they are the stored full-mode results, labelled with where and when they were computed and
    the command that recomputes them. The UniPELT model is trained live in every mode.
    """),
    setup_cell("06 compare and combine"),
    timing_cell("06_compare_and_combine", """
    In full mode the comparison on both tasks and the size sweep are most of the time; in CPU mode they are
    loaded, and the long cell trains UniPELT in the top two layers.
    """),
    md("## Every method, the same budget"),
    code("""
    def show(results):
        print(f"[{results['task']}] {results['source']}")
        print(f"  {'method':12s} {'size':>5s} {'trainable':>12s} {'test acc':>9s} {'steps × batch':>14s} {'file':>10s}")
        for r in results["rows"]:
            size = "" if r["size"] is None else r["size"]
            file = "" if r["file_bytes"] is None else f"{r['file_bytes'] / 2**20:.2f} MB"
            budget = f"{r['steps']} × {r['batch_size']}"
            print(f"  {r['method']:12s} {size!s:>5s} {r['trainable']:>12,} {r['accuracy']:>9.1%} {budget:>14s} {file:>10s}")

    compare = {t: ll.results.get(f"compare_{t}") for t in ("tweets", "bbc")}
    for results in compare.values():
        show(results)
    """),
    md("""
    ## No single winner?

    The best method on each task, and how far each method is from it (one training run each, so a
    difference of a point or so is within the noise of a different random seed).
    """),
    code("""
    for task, results in compare.items():
        rows = [r for r in results["rows"] if r["method"] != "full"]
        best = max(rows, key=lambda r: r["accuracy"])
        gaps = ", ".join(f"{r['method']} {100 * (r['accuracy'] - best['accuracy']):+.1f}" for r in rows if r is not best)
        ll.verdict(f"{task}: best efficient method {best['method']} ({best['accuracy']:.1%}); others (points): {gaps}")
    """),
    md("""
    ## Accuracy against trainable parameters

    Each method over its size knob: LoRA rank, adapter bottleneck, prefix and prompt length. The lecture's
    claim: some methods lose accuracy as they grow (prefix-style methods, which spend sequence capacity),
    LoRA does not. Here is what this model and these tasks show — judged from the measurements below, not assumed.
    """),
    code("""
    sweep = ll.results.get("sweep_tweets")
    print(f"[{sweep['task']}] {sweep['source']}")
    by_method = {}
    for r in sweep["rows"]:
        by_method.setdefault(r["method"], []).append(r)
    for method, rows in by_method.items():
        rows.sort(key=lambda r: r["trainable"])
        print(f"  {method:8s} " + "  ".join(f"{r['size']}: {r['accuracy']:.1%} ({r['trainable']:,})" for r in rows))
    for method, rows in by_method.items():
        peak = max(rows, key=lambda r: r["accuracy"])
        drop = 100 * (peak["accuracy"] - rows[-1]["accuracy"])
        ll.verdict(f"{method}: largest size {drop:.1f} points below its best size ({peak['size']}) → "
                   + ("drops after its best size" if drop > 1 else "does not drop"))
    """),
    code("""
    from lesson_lib import plots, widgets
    runs = [{**r, "label": f"{r['method']} {r['size']}"} for r in sweep["rows"]]
    widgets.FigureView(plots.accuracy_vs_params(runs, title="tweets: accuracy vs trainable parameters")).widget
    """),
    md("""
    ## UniPELT: all three methods, each behind a learned gate

    $g = \\sigma(W_g h)$, averaged over tokens, one gate per method per layer. It scales LoRA's update, the adapter's
    output and the attention paid to the prefix. After training we read the gates, then switch each method off by
    hand and watch the accuracy — a live ablation. `ll.recipe` says where it trains here (every layer in full mode,
    the top two layers in CPU mode).
    """),
    code("""
    recipe = ll.recipe("unipelt")
    print(recipe)
    tweets = recipe.load_task()
    unipelt, _ = ll.load_base()
    layers = recipe.layers(unipelt)
    ll.inject(unipelt, [ll.LoRAConfig(r=8, alpha=16, layers=layers), ll.AdapterConfig(bottleneck=64, layers=layers),
                        ll.PrefixConfig(length=10, layers=layers)], gates=ll.GateConfig(learned=True))
    history = ll.lecture.train_or_load("unipelt_tweets", unipelt, tweets, recipe.train_config(eval_every=0))
    print(f"run: {history.source}, {history.seconds:.0f} s")
    gates = ll.surgery.read_gates(unipelt, ll.batch(unipelt, tweets.test, n=64))
    for method, values in gates.items():
        print(f"{method:8s} gate per layer: " + "  ".join("  –  " if v != v else f"{v:.2f}" for v in values))
    """),
    code("""
    full_acc, n = ll.evaluate(unipelt, tweets.test)["accuracy"], len(tweets.test)
    noise = ll.metrics.noise_band(full_acc, n)  # conservative for the same model on the same tweets
    print(f"all methods on: {full_acc:.1%} on {n:,} test tweets (chance alone moves it by up to ±{100 * noise:.1f})")
    for method in gates:
        ll.surgery.set_gates(unipelt, **{method: 0.0})
        acc = ll.evaluate(unipelt, tweets.test)["accuracy"]
        ll.surgery.set_gates(unipelt, **{method: None})          # back to the learned gate
        print(f"{method:8s} switched off: {acc:.1%}")
        change = acc - full_acc
        what = "within the noise" if abs(change) < noise else ("a real drop" if change < 0 else "a real gain")
        ll.verdict(f"  switching {method} off changes the accuracy by {100 * change:+.1f} points: {what}")
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
        if "unipelt" not in rows:
            print(f"{task}: no UniPELT run in these results (quick mode trains only a few methods)")
            continue
        uni = rows["unipelt"]["accuracy"]
        gap, n = uni - singles[best], rows[best]["test_size"]
        noise = ll.metrics.noise_band(uni, n)  # two single runs near p differ by chance by up to 2·√(2p(1−p)/n)
        outcome = ("a tie: the gap is within the noise of single runs" if abs(gap) < noise
                   else "beats it" if gap > 0 else "does not beat it")
        ll.verdict(f"{task}: UniPELT {uni:.1%} vs best single ({best}) {singles[best]:.1%}, {100 * gap:+.1f} points "
                   f"(noise ±{100 * noise:.1f} on {n:,} test examples) → {outcome}")
    """),
]
