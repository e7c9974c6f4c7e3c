from nbgen import code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 04 · Inside ΔW: adaptation is a few directions

    Section 7 of the LoRA paper asks what the learned update $\\Delta W$ looks like. It finds three things:

    - a very low rank is enough;
    - runs with $r = 8$ and $r = 64$ agree on their *top* direction (similarity above 0.5), but their other
      directions look like noise;
    - $\\Delta W$ strengthens directions that $W$ itself does *not* stress.

    This notebook measures the same three things on MiniLM, live. (The authors' own analysis notebook was never
    published: microsoft/LoRA#100.)
    """),
    setup_cell("04 inside delta w"),
    timing_cell("04_inside_delta_w", """
    The long cells train LoRA twice (r = 8 and r = 64) and measure the accuracy at several truncated ranks.
    The every-layer analysis, with full fine-tuning beside it, runs live in full mode; in CPU mode it shows
    stored full-mode results. The ΔW explorer evaluates every rank in the background.
    """),
    md("""
    ## Two LoRA runs: r = 8 and r = 64

    Both runs use the same data and the same number of steps, and both adapt the query and value matrices.
    `ll.recipe` says in which layers: every layer in full mode, the top two in CPU mode. Expect both runs to
    reach about the same test accuracy: the extra rank is not needed.

    **What you should see:** two runs of one to one and a half minutes each on a laptop CPU (seconds on a GPU,
    at once from a lecture cache); both near 87 % test accuracy in CPU mode (near 88–89 % in full mode, every
    layer), and within the noise band of each other.
    """),
    code("""
    import numpy as np, torch
    from lesson_lib import analysis

    recipe = ll.recipe("lora")
    print(recipe)
    tweets = recipe.load_task()

    def lora_run(r):
        model, _ = ll.load_base()
        ll.inject(model, ll.LoRAConfig(r=r, alpha=2 * r, targets=("query", "value"), layers=recipe.layers(model)))
        history = ll.lecture.train_or_load(f"lora_r{r}_tweets", model, tweets, recipe.train_config(eval_every=0))
        print(f"r = {r}: {history.source}, {history.seconds:.0f} s")
        return model

    model8, model64 = lora_run(8), lora_run(64)
    accuracy = {r: ll.evaluate(m, tweets.test)["accuracy"] for r, m in ((8, model8), (64, model64))}
    for r, acc in accuracy.items():
        print(f"r = {r}: test accuracy {acc:.1%}")
    """),
    md("""
    ## The singular values of ΔW

    **Directions and their strengths.** Any matrix can be written as a sum of rank-1 pieces,
    $\\Delta W = \\sum_i \\sigma_i u_i v_i^\\top$ with $\\sigma_1 \\ge \\sigma_2 \\ge \\dots \\ge 0$ (the singular value
    decomposition). Each piece reads the input along one direction $v_i$, writes to the output along $u_i$,
    with strength $\\sigma_i$ (a singular value). The **rank** is how many $\\sigma_i$ are not zero. The **energy
    at k** is the share $\\sum_{i \\le k} \\sigma_i^2 / \\sum_i \\sigma_i^2$ that the k strongest pieces hold (the
    squared size of a matrix, its Frobenius norm $\\|\\Delta W\\|_F^2$, is the sum of all $\\sigma_i^2$). The
    **effective rank** is a smooth count of the pieces in use: n equal strengths give n, one dominant piece
    gives about 1.

    The table below gives, for every adapted matrix, its rank, its effective rank and its energy at k = 1, 2, 4
    and 8. Expect the r = 64 updates to put most of their energy in a handful of directions.
    """),
    code("""
    def spectrum_table(rows):
        print(f"{'matrix':10s} {'rank':>5s} {'eff. rank':>9s} {'energy@1':>9s} {'@2':>6s} {'@4':>6s} {'@8':>6s}")
        for r in rows:
            print(f"{r['name']:10s} {r['rank']:>5d} {r['effective_rank']:>9.1f} {r['energy@1']:>9.1%} "
                  f"{r['energy@2']:>6.1%} {r['energy@4']:>6.1%} {r['energy@8']:>6.1%}")

    rows = analysis.spectrum_summary(analysis.delta_weights(model64), ks=(1, 2, 4, 8))
    spectrum_table(rows)
    """),
    md("""
    ## Truncate every ΔW to rank k and measure the accuracy

    Now a test of the claim that a tiny rank is enough. We replace every $\\Delta W$ of the r = 64 model by its
    best rank-k approximation: we keep its k strongest directions and drop the others. (No other rank-k matrix
    is closer to $\\Delta W$.) Then we evaluate on the whole test set. Rank 0 removes the update completely:
    what is left is the base model with its trained head.
    """),
    *predict("""
    Truncate every ΔW of the r = 64 model to rank 1: keep one direction out of 64 in each matrix. How many
    points of test accuracy will it lose? (a) more than 10; (b) between 2 and 10; (c) fewer than 2.
    """, name="guess_rank1", example='"b"'),
    hint("""
    Look at the table above: what share of each update's energy sits in its first direction (energy@1)?
    A direction with little energy can still matter for the decision — that is what the measurement tests.
    """),
    md("""
    **What you should see:** about half a minute on a laptop CPU; one test accuracy per rank k. Rank 0 is the
    base model with its trained head (near 71 %). Then the cell below sets your guess beside the measurement.
    """),
    code("""
    ks = (0, 1, 64) if ll.FAST else (0, 1, 2, 4, 8, 64)
    by_rank = analysis.accuracy_by_rank(model64, tweets.test, ks=ks)
    for k, acc in by_rank.items():
        print(f"rank {k:2d}: test accuracy {acc:.1%}" + ("   (no update: base + trained head)" if k == 0 else ""))
    """),
    code("""
    lost = 100 * (by_rank[64] - by_rank[1])
    ll.checks.reveal(guess_rank1, "a" if lost > 10 else "b" if lost >= 2 else "c", "points lost at rank 1",
                     f"rank 64: {by_rank[64]:.1%}, rank 1: {by_rank[1]:.1%}, a change of {-lost:+.1f} points");
    kept = by_rank[1] - by_rank[64]
    ll.verdict(f"Rank 1 keeps the accuracy of rank 64 to within {100 * abs(kept):.1f} points "
               f"({by_rank[1]:.1%} vs {by_rank[64]:.1%}); the update's first direction carries the adaptation."
               if abs(kept) <= 0.01 else
               f"Rank 1 changes the accuracy by {100 * kept:+.1f} points ({by_rank[1]:.1%} vs {by_rank[64]:.1%}).")
    """),
    md("""
    ## Every layer, and full fine-tuning beside it

    Now the same analysis with LoRA in all six layers, and for full fine-tuning with the same budget. For full
    fine-tuning, $\\Delta W$ is $W_\\text{after} - W_\\text{before}$ of the same twelve query and value
    matrices. This needs three models trained on every layer. In full mode they are trained now; in CPU mode
    you see the stored full-mode results.
    """),
    md("""
    **What you should see:** three rows with about the same test accuracy (near 88–89 %) and very different
    effective ranks: about 4 for LoRA r = 8, about 27 for r = 64, and nearly 190 for full fine-tuning, whose
    update uses many more directions for the same result. In CPU mode the stored runs appear at once; in full
    mode they train now.
    """),
    code("""
    every = ll.results.get("delta_w_tweets")
    print(every["source"])
    runs = every["runs"]
    for key, label in (("lora_r8", "LoRA r = 8"), ("lora_r64", "LoRA r = 64"), ("full", "full fine-tuning")):
        effective = np.median([r["effective_rank"] for r in runs[key]["spectra"]])
        top8 = np.median([r["energy@8"] for r in runs[key]["spectra"]])
        print(f"{label:17s} test accuracy {runs[key]['accuracy']:.1%} | median effective rank {effective:5.1f} | "
              f"median energy in the top 8 directions {top8:.1%}")
    print("LoRA r = 64, every layer, truncated to rank k: " +
          "  ".join(f"k={k}: {acc:.1%}" for k, acc in every["truncation_r64"].items()))
    """),
    *predict("""
    In the every-layer run, LoRA r = 64 learned twelve updates (six layers × query and value). Which one has
    the *lowest* effective rank — that is, needs the fewest directions? Write its name as the table prints it
    (for example `"L0.query"`), then run the next cell.
    """, name="guess_lowest", example='"L0.query"'),
    code("""
    spectra = runs["lora_r64"]["spectra"]
    for row in spectra:
        print(f"{row['name']:9s} effective rank {row['effective_rank']:5.1f}  " + "▇" * round(row["effective_rank"] / 2))
    lowest = min(spectra, key=lambda row: row["effective_rank"])
    ll.checks.reveal(guess_lowest, lowest["name"], "the update with the lowest effective rank",
                     f"{lowest['name']}: {lowest['effective_rank']:.1f} directions in use out of 64. Where does it "
                     "sit, and what does that layer's output feed? Think about why its change could be so simple.");
    """),
    md("""
    ## Subspace similarity between r = 8 and r = 64 (LoRA paper, §7.2)

    Do two runs find the same directions? The paper measures it with a *subspace similarity*:

    $$\\phi(A_{8}, A_{64}, i, j) = \\frac{\\|U_{A_8}^{i\\top} U_{A_{64}}^{j}\\|_F^2}{\\min(i, j)}$$

    Here $U_{A}^{i}$ holds the top i right singular vectors of $A$: the input directions LoRA reads. φ is 1
    when the top-i directions of one run lie inside the top-j directions of the other, and 0 when they are at
    right angles. For unrelated random directions it is about $\\max(i,j)/d$, with $d = 384$, the width of
    MiniLM.
    """),
    code("""
    loras8, loras64 = analysis.lora_layers(model8), analysis.lora_layers(model64)
    name = [n for n in loras8 if n.endswith("value")][-1]   # the top layer's value matrix
    grid = analysis.subspace_similarity_grid(loras8[name].lora_A, loras64[name].lora_A)
    print(f"{analysis.short_name(name)}: φ(A8, A64, i, j); rows i = 1..8: top-i directions of A (r = 8), "
          "columns j = 1, 2, 4, 8, 16, 64: top-j of A (r = 64) (the explorer's φ heatmap below: the same way round)")
    for i in range(8):
        print(f"  i = {i + 1}: " + "  ".join(f"{grid[i, j - 1]:.2f}" for j in (1, 2, 4, 8, 16, 64)))
    print(f"random directions would give about {1 / 384:.3f} to {64 / 384:.2f}")
    """),
    md("""
    ### Explore ΔW yourself

    - Pick a layer and a matrix: you see its singular values, the energy held by the top k, and a heatmap of
      its $\\Delta W$.
    - The rank-k slider truncates *every* $\\Delta W$ and measures the accuracy on a fixed set of test tweets;
      the answer appears beside the slider.
    - The φ heatmap compares the r = 8 and r = 64 runs the same way as the table above: i (the top-i
      directions of the r = 8 run) on the rows, j (the top-j of the r = 64 run) on the columns.

    Each new k costs one evaluation, so the panel starts evaluating every k in the background as soon as it
    appears (powers of two first). Its status line says how many are ready.
    """),
    code("""
    from lesson_lib import widgets
    # warm_up: every rank k is evaluated in the background (on a copy) right away, so the slider answers at once
    explorer = widgets.delta_w_explorer(model64, tweets.test, other_model=model8, eval_limit=48 if ll.FAST else 128,
                                        warm_up=not ll.FAST)
    explorer
    """),
    md("""
    ## Amplification factor (§7.3)

    Does $\\Delta W$ strengthen directions that $W$ already uses, or new ones? The paper's *amplification
    factor* compares two sizes:

    $$\\frac{\\|\\Delta W\\|_F}{\\|U^\\top W V^\\top\\|_F}$$

    On top: the size of the update. Below: how much of $W$ lies along the update's own top-r directions ($U$
    and $V$ are the top-r left and right singular vectors of $\\Delta W$). A large factor means that
    $\\Delta W$ pushes hard along directions where $W$ itself is weak.
    """),
    code("""
    short = analysis.short_name(name)
    for r, loras in ((8, loras8), (64, loras64)):
        m = loras[name]
        dw = m.delta_weight().detach()
        print(f"r = {r:2d}, {short}: ‖ΔW‖_F = {float(dw.norm()):.3f}, amplification factor (top {r}) = "
              f"{analysis.amplification_factor(dw, m.base.weight, r):.2f} "
              f"(LoRA in every layer, above: {every['runs'][f'lora_r{r}']['amplification'][short]:.2f})")
    print("The paper, for comparison:", ll.paper.FACTS["lora_amplification"])
    """),
    md("""
    ### Question to think about

    With r = 64, LoRA *could* use 64 directions per matrix; the measurements say it mostly uses a few. Why
    would the optimiser not use all of them? And if a few directions suffice, why do r = 8 and r = 64 share only
    their top direction and not their top eight?
    """),
    code("""
    ll.summary(
        f"LoRA r = 8 and r = 64 here: {accuracy[8]:.1%} and {accuracy[64]:.1%} test accuracy — the extra rank "
        "buys little.",
        f"Truncating every r = 64 update to rank 1 gives {by_rank[1]:.1%}, to rank 0 (no update) {by_rank[0]:.1%}.",
        f"Every layer (stored): the lowest effective rank is {lowest['name']} with {lowest['effective_rank']:.1f}; a full "
        f"fine-tune's updates use far more directions (median {np.median([r['effective_rank'] for r in runs['full']['spectra']]):.0f}) "
        "for about the same accuracy.",
        f"φ between the r = 8 and r = 64 runs at i = j = 1: {grid[0, 0]:.2f} (random directions: about {1 / 384:.3f}).",
        f"The paper: {ll.paper.FACTS['lora_subspace']}.",
    )
    """),
]
