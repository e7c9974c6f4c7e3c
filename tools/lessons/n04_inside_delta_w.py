from nbgen import code, md, setup_cell

CELLS = [
    md("""
    # 04 · Inside ΔW: adaptation is a few directions

    The LoRA paper (§7) asks what the learned update $\\Delta W$ looks like. Its answer: a very low rank
    suffices, the directions found with $r = 8$ are the top directions found with $r = 64$, and $\\Delta W$
    amplifies directions that were *not* emphasised in $W$. The authors' own analysis notebook is lost
    (microsoft/LoRA#100); this one measures the same things on MiniLM, live.
    """),
    setup_cell("04 inside delta w"),
    md("""
    ⏱ **How long this notebook takes.** Quick mode (`LESSON_FAST=1`, what the tests run): 73 s top to bottom,
    measured on a 2-core CPU with one torch thread while another job ran. Full mode on that CPU (estimated from the
    measured seconds per step in `benchmarks/results/`): LoRA r = 8 and r = 64 (300 steps each) about 7 minutes each; the full fine-tune for the comparison about 11 minutes; the rank-k slider's background warm-up about 2 minutes for r = 64. After `python -m lesson_lib precompute` all three load from the cache in seconds.
    On a GPU: not measured yet — no GPU was available to this project; `bash benchmarks/gpu_check.sh` measures it.
    """),
    md("""
    ## Two LoRA runs: r = 8 and r = 64

    Same data, same steps. If a lecturer precomputed them they are loaded; otherwise they train now
    (quick mode: a few steps).
    """),
    code("""
    import numpy as np, torch
    from lesson_lib import analysis

    LIMIT = 400 if ll.FAST else None
    STEPS = 8 if ll.FAST else 300
    tweets = ll.load_task("tweets", limit=LIMIT)

    def lora_run(r, seed=0):
        def train_fn():
            model, _ = ll.load_base()
            ll.inject(model, ll.LoRAConfig(r=r, alpha=2 * r, targets=("query", "value")))
            ll.train(model, tweets, ll.TrainConfig(steps=STEPS, lr=1e-3, seed=seed, eval_every=0))
            return model
        return ll.lecture.trained(f"lora_r{r}_seed{seed}_tweets", train_fn)

    model8, model64 = lora_run(8), lora_run(64)
    for name, m in (("r = 8", model8), ("r = 64", model64)):
        print(f"{name}: test accuracy {ll.evaluate(m, tweets.test)['accuracy']:.1%}")
    """),
    md("""
    ## The singular values of ΔW

    For every adapted matrix: its numerical rank, effective rank (a smooth count of the directions in use),
    and the share of $\\|\\Delta W\\|_F^2$ in the top-k singular directions. Expect the r = 64 updates to put most
    of their energy in a handful of directions.
    """),
    code("""
    rows = analysis.spectrum_summary(analysis.delta_weights(model64), ks=(1, 2, 4, 8))
    print(f"{'matrix':10s} {'rank':>5s} {'eff. rank':>9s} {'energy@1':>9s} {'@2':>6s} {'@4':>6s} {'@8':>6s}")
    for r in rows:
        print(f"{r['name']:10s} {r['rank']:>5d} {r['effective_rank']:>9.1f} {r['energy@1']:>9.1%} "
              f"{r['energy@2']:>6.1%} {r['energy@4']:>6.1%} {r['energy@8']:>6.1%}")
    """),
    md("""
    ## Truncate every ΔW to rank k and measure the accuracy

    The demonstration that a tiny rank keeps the accuracy: replace every $\\Delta W$ of the r = 64 model by
    its best rank-k approximation (Eckart–Young) and evaluate on the test set.
    """),
    code("""
    by_rank = analysis.accuracy_by_rank(model64, tweets.test, ks=(0, 1, 4, 64) if ll.FAST else (0, 1, 2, 4, 8, 16, 64))
    for k, acc in by_rank.items():
        print(f"rank {k:2d}: test accuracy {acc:.1%}" + ("   (no update: base + trained head)" if k == 0 else ""))
    """),
    md("""
    ## Full fine-tuning for comparison

    Snapshot the weights, fine-tune everything for the same number of steps, and look at $W_\\text{after} - W_\\text{before}$.
    """),
    code("""
    def full_fine_tune_spectra():
        full, _ = ll.load_base()
        names = [n.replace(".base", "") for n in analysis.delta_weights(model8)]  # the same 12 query/value matrices
        before = analysis.snapshot(full, names)
        ll.train(full, tweets, ll.TrainConfig(steps=4 if ll.FAST else STEPS, lr=5e-5, eval_every=0))
        return {"rows": analysis.spectrum_summary(analysis.delta_weights(full, snapshot=before))}

    full_rows = ll.lecture.cached("full_ft_delta_w_tweets", full_fine_tune_spectra)["rows"]
    print(f"full fine-tune: median effective rank of ΔW {np.median([r['effective_rank'] for r in full_rows]):.1f}"
          f" (LoRA r=64: {np.median([r['effective_rank'] for r in rows]):.1f}); "
          f"median energy in the top 8 directions {np.median([r['energy@8'] for r in full_rows]):.1%}")
    """),
    md("""
    ## Subspace similarity between r = 8 and r = 64 (LoRA paper, §7.2)

    $\\phi(A_{8}, A_{64}, i, j) = \\|U_{A_8}^{i\\top} U_{A_{64}}^{j}\\|_F^2 / \\min(i, j)$, with $U_A$ the right
    singular vectors of $A$: 1 when the top-i directions of one run lie inside the top-j of the other, about
    $\\max(i,j)/d$ for unrelated random directions.
    """),
    code("""
    loras8, loras64 = ll.surgery.lora_modules(model8), ll.surgery.lora_modules(model64)
    name = [n for n in loras8 if "layer.5" in n and n.endswith("value")][0]
    grid = analysis.subspace_similarity_grid(loras8[name].lora_A.detach(), loras64[name].lora_A.detach())
    print(f"{analysis.short_name(name)}: φ(A8, A64, i, j) for i = 1..8 (rows), j = 1, 2, 4, 8, 16, 64 (columns)")
    for i in range(8):
        print(f"  i = {i + 1}: " + "  ".join(f"{grid[i, j - 1]:.2f}" for j in (1, 2, 4, 8, 16, 64)))
    print(f"random directions would give about {1 / 384:.3f} to {64 / 384:.2f}")
    """),
    md("""
    ### Explore ΔW yourself

    Pick a layer and matrix: its singular values with the energy captured at k, the ΔW heatmap, and a rank-k slider
    that truncates *every* ΔW and measures the accuracy (on a fixed evaluation subset). The subspace-similarity
    heatmap compares the r = 8 and r = 64 runs. Each new k costs one evaluation (about 2 s on a laptop CPU), so
    the panel evaluates every k in the background as soon as it is shown (powers of two first); the status line
    says how many are ready.
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

    How strongly does $\\Delta W$ amplify the directions it uses, compared with how much $W$ already had
    in them? $\\|\\Delta W\\|_F / \\|U^\\top W V^\\top\\|_F$ with $U, V$ the top-r singular vectors of $\\Delta W$.
    """),
    code("""
    for label, loras in (("r = 8", loras8), ("r = 64", loras64)):
        m = loras[name]
        dw = m.delta_weight().detach()
        r_top = 8 if label == "r = 8" else 64
        w = m.base.weight.detach()
        print(f"{label}: ‖ΔW‖_F = {dw.norm():.3f}, amplification factor (top {r_top}) = "
              f"{analysis.amplification_factor(dw, w, r_top):.2f}")
    """),
]
