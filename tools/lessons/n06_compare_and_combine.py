from nbgen import Exercise, code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 06 · Compare and combine

    This notebook has three parts:

    1. every method with the same budget on two tasks: the sentiment of tweets and the topic of BBC News
       articles;
    2. accuracy against the number of trainable parameters (the LoRA paper's Figure 2, in miniature);
    3. UniPELT (Mao et al. 2022): all three methods in one model, each behind a learned gate.

    Parts 1 and 2 train about thirty models on every layer, several times over (once per *seed*). In full mode
    (a GPU) they run now. In CPU mode you see the stored full-mode results; each table says where and when they
    were computed and the command that recomputes them. The UniPELT model is trained live in every mode.
    """),
    setup_cell("06 compare and combine"),
    timing_cell("06_compare_and_combine", """
    In full mode the comparison on both tasks and the size sweep are most of the time; in CPU mode they are
    loaded, and the long cell trains UniPELT in the top two layers.
    """),
    md("The UniPELT block: the three methods of notebooks 02, 03 and 05 in one layer, each behind its own gate:"),
    code("ll.diagrams.unipelt()"),
    md("""
    ## Every method, the same budget

    Each method starts from a fresh model and trains in every layer for the same number of steps. A *seed* fixes
    the random start and the order of the batches. Where the stored results hold several seeds, each row shows
    their mean and their range (the lowest and the highest).
    """),
    md("""
    **What you should see:** two tables, tweets and BBC News, one row per method: parameters trained and stored,
    mean test accuracy over the stored seeds, and their range. On the tweets head only is near 71 %, prompt
    tuning near 82 %, the prefix near 84 % and the others near 89 %; on BBC News every method but head only is
    above 90 %. In CPU mode they appear at once; in full mode every method trains now (the timing note at the
    top says how long).
    """),
    code("""
    from lesson_lib import plots

    def by_method(rows):
        # the stored runs of each method, one per seed: {"lora": [run of seed 0, run of seed 1, ...], ...}
        return ll.results.group_rows(rows, "method")

    def accuracies(runs):
        return [r["accuracy"] for r in runs]

    def mean_range(acc):
        # one run: its accuracy; several seeds: the mean and, in brackets, the lowest and the highest
        s = ll.metrics.seed_summary(acc)
        return f"{s['mean']:.1%}" + (f" ({100 * s['low']:.1f}–{100 * s['high']:.1f})" if s["seeds"] > 1 else "")

    def show(results):
        print(f"[{results['task']}] {results['source']}")
        print(f"  {'method':8s} {'size':>4s} {'trainable':>11s} {'stored':>11s} {'mean':>6s} {'range':>11s} {'seeds':>5s}")
        for method, runs in by_method(results["rows"]).items():
            s = ll.metrics.seed_summary(accuracies(runs))
            r = runs[0]
            size = "" if r["size"] is None else r["size"]
            spread = f"{100 * s['low']:.1f}–{100 * s['high']:.1f}" if s["seeds"] > 1 else "one run"
            print(f"  {method:8s} {size!s:>4s} {r['trainable']:>11,} {plots.stored_params(r):>11,} {s['mean']:>6.1%} "
                  f"{spread:>11s} {s['seeds']:>5d}")

    compare = {t: ll.results.get(f"compare_{t}") for t in ("tweets", "bbc")}
    for results in compare.values():
        show(results)
    print("(mean: test accuracy over the seeds; range: the lowest and the highest seed, in %;\\n"
          " stored: what the task file holds after training; for the prefix, its folded keys\\n"
          " and values)")
    """),
    *predict("""
    Which efficient method (not full fine-tuning) is the best on the tweets — and would you call it a real
    win? Write the method's name as the table prints it (e.g. `"lora"`).
    """, name="guess_best", example='"lora"'),
    md("""
    ### Exercise 6.1 — a verdict that survives noise

    Two methods, each trained with several seeds: `a` and `b` are lists of test accuracies, one per seed.
    Return `"a"` or `"b"` only when one is better by more than the seeds alone move either of them; otherwise
    `"tie"`. With a single run per method there is nothing to compare the gap with: that is a tie too.
    """),
    Exercise(
        student="""
        def verdict(a: list[float], b: list[float]) -> str:
            # TODO: with fewer than two seeds on either side, no winner can be named
            # TODO: how far apart are the two means, and how far did the seeds alone move each method?
            # TODO: a winner only when the gap is larger than that; otherwise "tie"
            raise NotImplementedError
        """,
        solution="""
        def verdict(a: list[float], b: list[float]) -> str:
            if len(a) < 2 or len(b) < 2:
                return "tie"
            gap = sum(a) / len(a) - sum(b) / len(b)
            spread = max(max(a) - min(a), max(b) - min(b))
            if abs(gap) <= spread:
                return "tie"
            return "a" if gap > 0 else "b"
        """,
    ),
    hint("""
    The spread of a method is its highest accuracy minus its lowest over the seeds. Compare the difference of
    the two means with the larger of the two spreads. `ll.metrics.seed_verdict` is the library's version, if you
    want to compare after you wrote yours.
    """),
    code("ll.checks.check_verdict(verdict);"),
    md("""
    ## No single winner?

    The best efficient method on each task by its mean, against every other one, judged with **your**
    `verdict` (the library's until yours works). Full fine-tuning is shown for reference.
    """),
    code("""
    try:
        verdict([0.8, 0.81], [0.7, 0.71])
        judge = verdict
    except NotImplementedError:
        judge = ll.metrics.seed_verdict
    best_by_task = {}
    for task, results in compare.items():
        groups = {m: accuracies(runs) for m, runs in by_method(results["rows"]).items() if m != "full"}
        # the highest mean, then your verdict against every other method (ll.metrics.against_best does this)
        best = best_by_task[task] = max(groups, key=lambda m: sum(groups[m]) / len(groups[m]))
        outcome = {m: judge(groups[best], acc) for m, acc in groups.items() if m != best}
        beaten = [m for m, v in outcome.items() if v == "a"]
        tied = [m for m, v in outcome.items() if v != "a"]
        seeds = min(len(v) for v in groups.values())
        ll.verdict(f"{task} ({seeds} seed{'s' if seeds > 1 else ''} per method): best mean {best}; it beats "
                   f"{', '.join(beaten) or 'none'}; tie with {', '.join(tied) or 'none'}.")
    if "tweets" in compare:
        ll.checks.reveal(guess_best, best_by_task["tweets"],
                         "the efficient method with the highest mean on the tweets",
                         "the verdicts above say whether its lead is larger than what the seeds alone move");
    """),
    md("""
    ## Accuracy against trainable parameters: the paper's Figure 2 beside ours

    Left: the LoRA paper's data points for GPT-3 175B (its Table 15, the numbers behind Figure 2). Right: each
    method over its size knob, on MiniLM and the tweets. The x-axis counts what is **stored** for a task. For
    the prefix, that is the folded keys and values: its MLP trains and is then thrown away (hover over a point
    to see both counts). The paper's claim: prefix-style methods get worse beyond some size, while LoRA does
    not. Judge our runs from the points, not from the claim.
    """),
    md("""
    **What you should see:** four sizes per method. LoRA and adapters rise with size into the high 80s; the
    prefix stays near 84–85 % whatever its length; prompt tuning stays near 80–82 %. Then the figure, the
    paper's points on the left.
    """),
    code("""
    sweep = ll.results.get("sweep_tweets")
    print(f"[{sweep['task']}] {sweep['source']}")
    print(ll.paper.FACTS["lora_gpt3_table15"])
    def by_size(runs):
        # {size: the runs of that size, one per seed}, the smallest size first
        return dict(sorted(ll.results.group_rows(runs, "size").items()))

    print(f"  {'method':8s} {'size':>4s} {'stored':>11s}  test accuracy (range)")
    for method, runs in by_method(sweep["rows"]).items():
        for size, at in by_size(runs).items():
            print(f"  {method:8s} {size:>4d} {plots.stored_params(at[0]):>11,}  {mean_range(accuracies(at))}")
    print("(stored: the parameters a task file holds; for the prefix, its folded keys and values)")
    from lesson_lib import widgets
    widgets.FigureView(plots.paper_vs_ours(sweep["rows"])).widget
    """),
    md("""
    Does a method get *worse* when it grows? Each point above is the mean over the stored seeds (the error bar
    spans them). A lower score at the largest size counts as a drop only when the gap is larger than the seeds'
    range. Where a point has only one run, there is no range, so the gap must be larger than the noise of single
    runs on 1,000 test tweets instead (`ll.metrics.judge` picks the right yardstick).
    """),
    code("""
    for method, runs in by_method(sweep["rows"]).items():
        acc = {size: accuracies(at) for size, at in by_size(runs).items()}
        best = max(acc, key=lambda size: sum(acc[size]) / len(acc[size]))
        largest = max(acc)
        gap = sum(acc[best]) / len(acc[best]) - sum(acc[largest]) / len(acc[largest])
        if best == largest:
            ll.verdict(f"{method}: the largest size ({largest}) is also the best: no drop")
            continue
        outcome, yardstick = ll.metrics.judge(acc[best], acc[largest], runs[0]["test_size"])
        ll.verdict(f"{method}: the largest size ({largest}) is {100 * gap:.1f} points below the best size ({best}): "
                   + ("a real drop" if outcome == "a" else "no real drop") + f", judged against {yardstick}")
    """),
    md("""
    ### The rank sweep, with α fixed

    The sweep above keeps α = 2r, so the scale α/r of LoRA's update is 2 at every rank. The LoRA paper fixes
    α instead: it is set once and not tuned. Then a larger r means a smaller scale α/r. Does "LoRA gets better
    as r grows" survive that? Both sweeps, side by side (stored full-mode runs), and a verdict for the smallest
    rank against the largest:
    """),
    md("""
    **What you should see:** LoRA at r = 1, 4, 16 and 64 twice. With α = 2r it climbs from about 85 % to about
    89 %; with α fixed at 16 the curve is much flatter, and r = 1 is already within a few points of r = 64.
    """),
    code("""
    fixed = ll.results.get("rank_fixed_alpha_tweets")
    print(fixed["source"])
    alpha = ll.experiments.FIXED_ALPHA
    arms = {"α = 2r": {r: accuracies(at) for r, at in by_size(by_method(sweep["rows"]).get("lora", [])).items()},
            f"α = {alpha}": {r: accuracies(at) for r, at in by_size(fixed["rows"]).items()}}
    print(f"  {'r':>3s}   {'α = 2r (α/r = 2)':22s} {f'α = {alpha} (α/r = {alpha}/r)':22s}")
    for r, acc in arms[f"α = {alpha}"].items():
        two_r = mean_range(arms["α = 2r"][r]) if r in arms["α = 2r"] else "–"
        print(f"  {r:>3d}   {two_r:22s} {mean_range(acc):22s}")
    for arm, acc in arms.items():
        if len(acc) < 2:
            continue
        low, high = min(acc), max(acc)
        outcome, yardstick = ll.metrics.judge(acc[high], acc[low], fixed["rows"][0]["test_size"])
        said = {"a": f"r = {high} beats r = {low}", "b": f"r = {low} beats r = {high}", "tie": f"r = {high} and r = {low} tie"}
        ll.verdict(f"{arm}: {said[outcome]}, judged against {yardstick}")
    """),
    md("""
    ## UniPELT: all three methods, each behind a learned gate

    Each method gets a gate in each layer: $g = \\sigma(W_g h)$, a number between 0 and 1 computed from the
    layer's input $h$ and averaged over the tokens ($\\sigma$ is the sigmoid function). The gate multiplies
    LoRA's update, the adapter's output, or the attention paid to the prefix. After training we read the
    gates. Then we switch each method off by hand and watch the accuracy: a live *ablation* (removing one part
    to see what it did). `ll.recipe` says where UniPELT trains here: every layer in full mode, the top two in
    CPU mode.

    **What you should see:**

    - a test accuracy close to the stored UniPELT runs in the table at the top;
    - gates that are neither 0 nor 1 and differ from layer to layer;
    - when one branch is switched off, changes that are mostly within the noise band the cell prints: the other
      two branches make up for the missing one.

    **How this UniPELT differs from the paper's** (Mao et al. 2022):

    - it uses Houlsby adapters (two per layer, m = 64); the paper uses one Pfeiffer adapter of 48;
    - its prefix is the flat one, at the shared learning rate the recipe prints; notebook 05 showed that this
      rate is too small for a flat prefix;
    - its prefix gate scales the attention real tokens pay to the prefix; the paper multiplies the prefix keys
      and values by the gate;
    - it trains on the full data; the paper finds its gains with 100 to 1,000 examples.

    UniPELT as the paper builds it (`unipelt_paper` in `ll.experiments`) is measured with few examples further
    down.
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
    md("""
    ### Where the paper finds UniPELT's gains: few training examples

    The paper's gains for UniPELT are largest with 100 to 1,000 training examples. The stored experiment
    `low_resource_tweets` trains four models on K tweets: LoRA, adapters, the prefix, and UniPELT *as the paper
    builds it* (one Pfeiffer adapter of 48, the prefix with its MLP and its own learning rate). Each is tested
    on the whole test split. The verdict for each K uses the seeds' range, as above.
    """),
    md("""
    **What you should see:** for K = 100, 500 and 1,000 training tweets, each method's mean accuracy and its
    range over seeds: about 70–78 % at K = 100 and in the mid 80s at K = 1,000, close to the full-data runs.
    Whether UniPELT is ahead at any K, the verdicts below the table say.
    """),
    code("""
    low = ll.results.get("low_resource_tweets")
    print(low["source"])
    by_k = {}                                   # {K: {method: accuracies, one per seed}}
    for (k, method), runs in ll.results.group_rows(low["rows"], "examples", "method").items():
        by_k.setdefault(k, {})[method] = accuracies(runs)
    for k, methods in sorted(by_k.items()):
        print(f"  K = {k:5,}: " + "   ".join(f"{m} {mean_range(v)}" for m, v in methods.items()))
    for k, methods in sorted(by_k.items()):
        singles = {m: v for m, v in methods.items() if not m.startswith("unipelt")}
        uni = next((v for m, v in methods.items() if m.startswith("unipelt")), None)
        if uni is None or not singles:
            continue
        best = max(singles, key=lambda m: sum(singles[m]) / len(singles[m]))
        outcome, yardstick = ll.metrics.judge(uni, singles[best], low["rows"][0]["test_size"])
        said = {"a": "UniPELT is better", "b": f"{best} is better", "tie": "a tie"}[outcome]
        seeds = min(len(v) for v in methods.values())
        ll.verdict(f"K = {k:,} ({seeds} seed{'s' if seeds > 1 else ''}): UniPELT against the best single method "
                   f"({best}): {said}, judged against {yardstick}")
    """),
    md("### The gate board: the learned gates, and sliders that override them live"),
    code("""
    board = widgets.gate_board(unipelt, tweets.test)
    board
    """),
    md("## Does the combination beat the best single method?"),
    code("""
    for task, results in compare.items():
        groups = {m: accuracies(runs) for m, runs in by_method(results["rows"]).items()}
        if "unipelt" not in groups:
            print(f"{task}: no UniPELT run in these results (quick mode trains only a few methods)")
            continue
        singles = {m: groups[m] for m in ("lora", "adapter", "prefix", "prompt") if m in groups}
        best = max(singles, key=lambda m: sum(singles[m]) / len(singles[m]))
        uni, other = groups["unipelt"], singles[best]
        gap = sum(uni) / len(uni) - sum(other) / len(other)
        outcome, yardstick = ll.metrics.judge(uni, other, results["rows"][0]["test_size"])
        said = {"a": "UniPELT beats it", "b": "UniPELT does not beat it", "tie": "a tie"}[outcome]
        ll.verdict(f"{task}: UniPELT {mean_range(uni)} vs the best single method ({best}) {mean_range(other)}, "
                   f"{100 * gap:+.1f} points → {said} (judged against {yardstick})")
    """),
    md("""
    ### Question to think about

    UniPELT trains the most parameters of all the efficient methods here. When would you pay for it — and
    when would a single method, chosen well, be the better engineering choice? What would you need to measure
    to decide on *your* task?
    """),
    code("""
    tweets_groups = {m: accuracies(runs) for m, runs in by_method(compare["tweets"]["rows"]).items()}
    ends = {arm: [ll.metrics.seed_summary(acc[r])["mean"] for r in (min(acc), max(acc))] for arm, acc in arms.items()}
    ll.summary(
        "On the tweets, with the stored seeds: " + ", ".join(
            f"{m} {ll.metrics.seed_summary(v)['mean']:.1%}" for m, v in tweets_groups.items()) + ".",
        "A winner is named only when the gap beats the seeds' spread; otherwise it is a tie (verdicts above).",
        f"The paper's Table 15: {ll.paper.FACTS['lora_gpt3_table15']}.",
        "LoRA from r = 1 to r = 64: " + "; ".join(
            f"{arm}: {low:.1%} → {high:.1%} ({100 * (high - low):+.1f} points)" for arm, (low, high) in ends.items())
        + ". With α fixed, a larger r also shrinks the update's scale α/r.",
        f"UniPELT trained here: {full_acc:.1%} with all branches on; its gates per layer are printed above.",
    )
    """),
]
