from nbgen import Exercise, code, md, setup_cell, timing_cell

CELLS = [
    md("""
    # 03 · LoRA (Hu et al. 2021)

    Keep the pre-trained weight $W$ frozen and learn a low-rank update beside it:

    $$h = W x + \\frac{\\alpha}{r} B A x, \\qquad A \\in \\mathbb{R}^{r \\times d_\\text{in}},\\; B \\in \\mathbb{R}^{d_\\text{out} \\times r}$$

    $B$ starts at zero, so the model is unchanged at step 0. Only $r(d_\\text{in} + d_\\text{out})$ numbers are
    trained per matrix. After training $\\Delta W = \\frac{\\alpha}{r} BA$ can be added into $W$: no extra
    inference cost at all.
    """),
    setup_cell("03 lora"),
    timing_cell("03_lora", """
    The long cell trains LoRA on the tweets; in CPU mode in the top two layers only.
    """),
    md("""
    ## Why low rank? A small matrix demo

    A product $BA$ of an $d \\times r$ and an $r \\times d$ matrix has rank at most $r$ — and costs $2dr$ numbers
    instead of $d^2$. Expect exactly $r$ non-zero singular values.
    """),
    code("""
    import torch
    torch.manual_seed(0)
    d = 384
    for r in (1, 2, 4, 8, 64):
        B, A = torch.randn(d, r), torch.randn(r, d)
        s = torch.linalg.svdvals(B @ A)
        rank = int((s > 1e-4 * s[0]).sum())
        print(f"r = {r:3d}: rank(B·A) = {rank:3d}   numbers to learn {2 * d * r:>7,}  vs a full {d}×{d} matrix {d * d:,}"
              f"  ({100 * 2 * d * r / d**2:.1f} %)")
        assert rank == r
    """),
    md("""
    ### Exercise 3.1 — build a LoRA layer

    Wrap a frozen `nn.Linear`: freeze its weight, create `lora_A` (r × in, random) and `lora_B` (out × r, zeros)
    as `nn.Parameter`s, and return $Wx + b + \\frac{\\alpha}{r} B A x$.
    """),
    Exercise(
        student="""
        import math
        from torch import nn

        class MyLoRALinear(nn.Module):
            def __init__(self, base: nn.Linear, r: int, alpha: float):
                super().__init__()
                self.base = base
                # TODO: freeze base.weight (requires_grad_(False))
                # TODO: self.lora_A = nn.Parameter(...) of shape (r, base.in_features), kaiming-uniform initialised
                # TODO: self.lora_B = nn.Parameter(...) of shape (base.out_features, r), zeros
                # TODO: self.scaling = alpha / r
                raise NotImplementedError

            def forward(self, x):
                # TODO: base(x) + scaling * (x @ A^T @ B^T)
                raise NotImplementedError
        """,
        solution="""
        import math
        from torch import nn

        class MyLoRALinear(nn.Module):
            def __init__(self, base: nn.Linear, r: int, alpha: float):
                super().__init__()
                self.base = base
                base.weight.requires_grad_(False)
                self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
                nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
                self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
                self.scaling = alpha / r

            def forward(self, x):
                return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)
        """,
    ),
    code("ll.checks.check_lora_layer(MyLoRALinear);"),
    md("""
    ### Exercise 3.2 — merge the update into the weight

    Return a new matrix $W' = W + \\frac{\\alpha}{r} B A$ (do not modify `W` in place).
    """),
    Exercise(
        student="""
        def merge_weight(W, A, B, alpha, r):
            # TODO: return W + (alpha / r) * B @ A, as a new tensor
            raise NotImplementedError
        """,
        solution="""
        def merge_weight(W, A, B, alpha, r):
            return W + (alpha / r) * B @ A
        """,
    ),
    code("ll.checks.check_merge(merge_weight);"),
    md("""
    ## LoRA in MiniLM: query and value, r = 8

    From here on: the library's `LoRALinear` (`lesson_lib/lora.py`). `ll.recipe` says where this notebook puts
    LoRA here: in full mode every layer (12 wrapped matrices, 6 layers × query and value, 73,728 LoRA
    parameters); in CPU mode the top two layers (4 matrices, 24,576 parameters), the layers below computed once
    per tweet. Expect the measured count to equal the formula and the outputs to be unchanged at init.
    """),
    code("""
    recipe = ll.recipe("lora")
    print(recipe)
    tweets = recipe.load_task()
    model, tok = ll.load_base()
    batch = ll.batch(model, tweets.test, n=32)
    base_logits = ll.logits(model, batch)

    report = ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value"), layers=recipe.layers(model)))
    print(report)
    print("outputs unchanged at init:", torch.equal(ll.logits(model, batch), base_logits))
    counts = ll.count_params(model)
    print(counts, "| formula:", ll.metrics.formula_for(model))
    n_matrices = len(ll.analysis.lora_layers(model))
    assert counts.by_method["lora"] == n_matrices * 8 * (384 + 384)
    """),
    code("""
    from lesson_lib import widgets
    live = widgets.live_training(
        {"LoRA r=8": widgets.fresh(ll.LoRAConfig(r=8, alpha=16)), "LoRA r=1": widgets.fresh(ll.LoRAConfig(r=1, alpha=2)),
         "LoRA r=64": widgets.fresh(ll.LoRAConfig(r=64, alpha=128))},
        tweets, recipe.train_config(eval_every=max(recipe.steps // 3, 1), eval_limit=64 if ll.FAST else 256),
        top=2)
    live
    """),
    md("""
    Press **Train** to watch a run; every run lands in the table and in the accuracy-vs-parameters plot, so three
    ranks give three points. **trains in** starts at *top 2 of 6 (fast)*: LoRA in layers 4–5 only, the four layers
    below computed once per tweet and kept (exactly the same logits, about a third of the seconds per step);
    *all layers* is the paper's setting. Quick mode presses Train once for you.
    """),
    code("""
    if ll.FAST:
        live.start(block=True)
        print(live.runlog.runs[-1]["label"], f"{live.runlog.runs[-1]['accuracy']:.1%}")
    """),
    code("""
    # ll.train(model, tweets, cfg) — or, when this run was stored for a lecture, load it into `model` at once
    history = ll.lecture.train_or_load("lora_r8_tweets", model, tweets, recipe.train_config(
        eval_every=max(recipe.steps // 3, 1), eval_limit=64 if ll.FAST else 256))
    print(f"run: {history.source}")
    for e in history.evals:
        print(f"step {e['step']:4d}  validation accuracy {e['accuracy']:.1%}")
    lora_acc = ll.evaluate(model, tweets.test)["accuracy"]
    reference = ll.results.stored_row("compare_tweets", "lora")
    print(f"test accuracy {lora_acc:.1%} (chance 50%), {history.seconds:.0f} s; "
          f"stored full-mode run (every layer, {reference['steps']} steps): {reference['accuracy']:.1%}")
    """),
    md("""
    ## The rank knob

    How many parameters does each rank cost on this model — measured on the real model, next to the formula?
    """),
    code("""
    probe, _ = ll.load_base()
    for r in (1, 2, 4, 8, 16, 64):
        ll.inject(probe, ll.LoRAConfig(r=r, alpha=2 * r, targets=("query", "value")))
        c = ll.count_params(probe)
        print(f"r = {r:2d}: LoRA parameters {c.by_method['lora']:>8,} ({100 * c.by_method['lora'] / c.total:.3f} % of the model)"
              f"   formula {ll.metrics.formula_for(probe) - c.by_method['head']:>8,}")
        ll.remove(probe)
    """),
    code("""
    # the same, with sliders: choose LoRA only and move r and the target matrices
    explorer = widgets.parameter_explorer(probe, spec="GPT-3 175B")
    explorer
    """),
    md("""
    ## Merge: zero extra inference cost

    `merge` adds $\\Delta W$ into each frozen weight; the forward pass is then exactly the base model's
    computation. We time the base, the merged and the unmerged model on the same batch (median of repeats; on a
    GPU the clock waits for the GPU to finish), taking turns so that a busy moment of the machine slows all three
    alike; differences of a few percent are noise. Then we check that the merged logits equal the unmerged ones. Merging
    changes the order of the additions, so the two agree to fp32 rounding (about 1e-6), not bit for bit: the check
    runs in full precision and allows 1e-5.
    """),
    code("""
    import statistics
    base_model, _ = ll.load_base()
    unmerged_logits = ll.logits(model, batch)
    ll.merge(model)
    merged_logits = ll.logits(model, batch)
    ll.unmerge(model)  # restores W exactly (a copy was kept), so we can merge and unmerge as often as we like
    times = {"base": [], "merged": [], "unmerged": []}
    for _ in range(3 if ll.FAST else 7):  # rounds take turns, so a busy moment slows all three alike
        times["base"].append(ll.latency(base_model, batch, repeats=3))
        ll.merge(model)
        times["merged"].append(ll.latency(model, batch, repeats=3))
        ll.unmerge(model)
        times["unmerged"].append(ll.latency(model, batch, repeats=3))
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"median latency per batch of {len(batch['input_ids'])}: " +
          " | ".join(f"{name} {t:.1f} ms ({t / ms['base']:.2f}× base)" for name, t in ms.items()))
    diff = float((merged_logits - unmerged_logits).abs().max())
    print(f"merged vs unmerged logits: max |difference| = {diff:.1e} (fp32; allowed 1e-5)")
    assert diff <= 1e-5
    """),
    md("""
    ## Export to Hugging Face PEFT

    `export_peft` writes `adapter_config.json` + `adapter_model.safetensors`; PEFT loads them onto the same
    base and gives the same logits (compared in fp32, to 1e-5).
    """),
    code("""
    import tempfile, warnings
    try:
        from peft import PeftModel
    except ImportError:
        PeftModel = None
        print("peft is not installed here (pip install peft) — skipping the round trip")
    if PeftModel is not None:
        path = ll.export_peft(model, tempfile.mkdtemp())
        with warnings.catch_warnings():  # PEFT warns about a transformers rename; it does not concern us
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(ll.load_base()[0], str(path))
            ours, theirs = ll.logits(model, batch), ll.logits(peft_model, batch)
        print(f"max |ours − PEFT| = {(ours - theirs).abs().max():.2e} (fp32; allowed 1e-5)")
        assert torch.allclose(ours, theirs, atol=1e-5)
    """),
]
