from nbgen import Exercise, code, hint, md, predict, setup_cell, timing_cell

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
    md("LoRA on one of MiniLM's 384 × 384 attention matrices: the frozen W, the trained side branch, and the merge:"),
    code("ll.diagrams.lora(r=8, alpha=16)"),
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

    Wrap a frozen `nn.Linear` so that it computes the formula above. Name the two trained factors `lora_A`
    and `lora_B` (the checkers look for them). Three things matter: W must not train, the layer must give
    exactly the frozen layer's output before training, and the update is scaled by α/r.
    """),
    Exercise(
        student="""
        import math
        from torch import nn

        class MyLoRALinear(nn.Module):
            def __init__(self, base: nn.Linear, r: int, alpha: float):
                super().__init__()
                self.base = base
                # TODO: make sure the frozen W does not train
                # TODO: the two trained factors, with the shapes of the formula; one starts random, one at zero
                #       (which one must be zero so that the layer starts as the frozen layer?)
                # TODO: remember the scale of the update
                raise NotImplementedError

            def forward(self, x):
                # TODO: the frozen layer's output plus the scaled low-rank update applied to x
                #       (x has shape (..., in_features): apply A first, then B, never build the d × d matrix)
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
    hint("""
    `base.weight.requires_grad_(False)` freezes W. A is (r, in_features), B is (out_features, r): then B·A has
    W's shape. Start A random (`nn.init.kaiming_uniform_(…, a=math.sqrt(5))`, as PEFT does) and B at zero, so
    B·A = 0 at first. In `forward`, `x @ self.lora_A.T` gives (…, r) numbers, then `@ self.lora_B.T` gives
    (…, out_features); multiply by α/r and add `self.base(x)`.
    """),
    code("ll.checks.check_lora_layer(MyLoRALinear);"),
    *predict("""
    LoRA starts B at zero and A random. What if you did it the other way round — A at zero and B random?
    (a) the outputs change at init; (b) the outputs are unchanged at init and training works; (c) the outputs
    are unchanged at init but nothing ever trains. And what if both start at zero? Write your answer for the
    swap (a, b or c).
    """, name="guess_swap", example='"a"'),
    code("""
    from torch import nn
    torch.manual_seed(0)
    layer = nn.Linear(8, 8)
    x = torch.randn(4, 8)
    from lesson_lib.lora import LoRALinear
    for a_zero, b_zero in ((False, True), (True, False), (True, True)):
        lora = LoRALinear(nn.Linear(8, 8), r=2, alpha=4)
        lora.base.load_state_dict(layer.state_dict())
        with torch.no_grad():
            lora.lora_A.copy_(torch.zeros_like(lora.lora_A) if a_zero else torch.randn_like(lora.lora_A))
            lora.lora_B.copy_(torch.zeros_like(lora.lora_B) if b_zero else torch.randn_like(lora.lora_B))
        same = torch.equal(lora(x), layer(x))
        lora(x).pow(2).sum().backward()   # any loss: which factor gets a gradient at the first step?
        print(f"A {'zero  ' if a_zero else 'random'} B {'zero  ' if b_zero else 'random'}: outputs unchanged at init "
              f"{same} | gradient on A {lora.lora_A.grad.abs().sum():.3f}, on B {lora.lora_B.grad.abs().sum():.3f}")
    ll.checks.reveal(guess_swap, "b", "A at zero and B random",
                     "B·0 = 0, so the outputs are unchanged; the gradient reaches A (through B) and training starts "
                     "there. Both at zero: each factor's gradient goes through the other, which is zero, so neither "
                     "ever moves. One of the two must start random.");
    """),
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
    hint("""
    `B @ A` has W's shape. Multiply by α/r and add W. `W + …` makes a new tensor; `W += …` would change W
    in place, which the checker catches.
    """),
    code("ll.checks.check_merge(merge_weight);"),
    md("""
    ### Exercise 3.3 — your LoRA layer inside MiniLM

    The cell below puts **your** `MyLoRALinear` on the query and value matrices of the layers this notebook
    trains and trains MiniLM on the tweets, beside the library's LoRA, starting from the same A and B and seeing
    the same batches. If your layer is right, both runs give the same losses step after step and the same
    accuracy. (In CPU mode about a minute: two short trainings.)
    """),
    md("""
    **What you should see:** ⏳ while your layer is unfinished; when it is done, ✅ and a table, yours beside the
    library's: "yes" for the outputs at init, 24,576 trainable LoRA parameters in CPU mode for both (plus the
    head), losses that agree at every step, and test accuracies within 2 points.
    """),
    code("ll.exercises.your_lora(MyLoRALinear, r=8, alpha=16);"),
    hint("""
    The checker on random tensors passed but this one fails? Inside MiniLM the input x has three dimensions
    (batch, tokens, 384), not two: `x @ A.T` works for both, `torch.mm` only for two. If the trainable counts
    differ, something besides A and B trains (the bias of W?).
    """),
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
    md("""
    **What you should see:** a panel with a **Train** button: nothing trains until you press it. Each rank takes
    about a minute in the top two layers on a laptop CPU. Three runs (r = 1, 8, 64) give three points, 64 times
    apart in parameters and only a few points apart in accuracy.
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
    md("""
    **What you should see:** under a minute on a laptop CPU; a test accuracy near 87 % in CPU mode (two seeds
    gave 86.0 % and 87.6 %), within about 2 points of the stored full-mode runs printed below it.
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
          f"stored full-mode runs (every layer, {reference['steps']} steps): {ll.results.stored_text(reference)}")
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
    md("""
    **What you should see:** about half a minute on a laptop CPU; three timings within a few percent of each
    other (the merged model is the base model's computation), and a largest difference between merged and
    unmerged logits of about 1e-6, under the 1e-5 allowed.
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
    md("""
    ## LoRA beside full fine-tuning

    The same budget, every layer: the stored full-mode comparison on both tasks. The test sets differ in size
    (1,000 tweets, 300 articles), so the noise band differs too: a gap inside it is a tie.
    """),
    code("""
    for task_name in ("tweets", "bbc"):
        lora, full = (ll.results.stored_row(f"compare_{task_name}", m) for m in ("lora", "full"))
        runs = ll.results.group_rows(ll.results.load(f"compare_{task_name}")["result"]["rows"], "method")
        outcome, yardstick = ll.metrics.judge([r["accuracy"] for r in runs["full"]],
                                              [r["accuracy"] for r in runs["lora"]], full["test_size"])
        said = {"a": "full fine-tuning is better", "b": "LoRA is better", "tie": "a tie"}[outcome]
        print(f"{task_name:6s}: LoRA r = 8 {lora['accuracy']:.1%} with {lora['trainable']:,} parameters | full "
              f"{full['accuracy']:.1%} with {full['trainable']:,} | gap {100 * (full['accuracy'] - lora['accuracy']):+.1f} "
              f"points ({lora['seeds']} seed{'s' * (lora['seeds'] > 1)})")
        ll.verdict(f"{task_name:6s}: {said}, judged against {yardstick}")
    """),
    md("""
    On the tweets the gap is small. On BBC News it is larger, and the verdict above says whether it is also
    larger than the noise. Where LoRA falls short, three explanations are possible, and this course has not
    separated them:

    - **budget:** BBC gets 100 steps of 16 articles; LoRA's updates start at zero and may simply need longer;
    - **where:** LoRA adapts only query and value; a topic may need the feed-forward layers, which adapters
      and full fine-tuning reach (the stored adapters come closer to full fine-tuning on BBC: notebook 06);
    - **rank:** the LoRA paper itself warns (Table 6, footnote) that a small r is not expected to suit every
      task.

    **Try it:** in the live panel above, give LoRA the BBC task with more steps, or add `"intermediate"` and
    `"output"` to its targets. Which explanation does your run support?
    """),
    md("""
    ## Why would a low-rank update be enough?

    Fine-tuning can move any weight in any direction, yet a rank-8 update matches it on the tweets. The LoRA
    authors build on the finding that adapting a pre-trained model has a low *intrinsic dimension*: a small
    number of well-chosen directions in weight space carry the change (Li et al. 2018; Aghajanyan et al. 2020).
    The test below separates "a small change" from "the right small change": we replace each learned update
    ΔW by a **random** matrix of the same rank and the same size (Frobenius norm), and by nothing at all.
    Expect: the random update does not give the learned one's accuracy; what LoRA learns is a *direction*.
    """),
    code("""
    import copy
    def with_update(kind):
        m = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(0)
        for layer in ll.analysis.lora_layers(m).values():
            with torch.no_grad():
                if kind == "none":
                    layer.lora_B.zero_()
                elif kind == "random":
                    learned = layer.delta_weight().norm()
                    A = torch.randn(layer.lora_A.shape, generator=gen).to(layer.lora_A)
                    B = torch.randn(layer.lora_B.shape, generator=gen).to(layer.lora_B)
                    layer.lora_A.copy_(A)
                    layer.lora_B.copy_(B * learned / (layer.scaling * (B @ A)).norm())
        return ll.evaluate(m, tweets.test)["accuracy"]

    updates = {"learned ΔW": lora_acc, "random ΔW, same rank and size": with_update("random"),
               "no ΔW (the trained head alone)": with_update("none")}
    for what, acc in updates.items():
        print(f"{what:32s} test accuracy {acc:.1%}")
    ll.verdict("The learned update beats a random one of the same rank and size by "
               f"{100 * (updates['learned ΔW'] - updates['random ΔW, same rank and size']):.1f} points: "
               "its direction, not its size, does the work.")
    """),
    md("""
    ### Question to think about

    The random update has exactly as many numbers and the same size as the learned one. Why can it not help,
    and why might it even hurt? What would you expect if you gave the random update rank 64 instead of 8?
    """),
    code("""
    ll.summary(
        f"LoRA's update B·A has rank at most r and costs 2·d·r numbers per matrix (r = 8, d = 384: {2 * 384 * 8:,} "
        f"instead of {384 * 384:,}).",
        f"LoRA r = 8 on query and value here: test accuracy {lora_acc:.1%} "
        f"(stored full-mode runs, every layer: {ll.results.stored_text(reference)}).",
        f"A random update of the same rank and size gives {updates['random ΔW, same rank and size']:.1%}: the "
        "direction learned is what matters.",
        f"Merged, LoRA costs nothing at inference ({ms['merged'] / ms['base']:.2f}× the base model's time here), and "
        f"merged and unmerged logits agree to {diff:.0e}.",
        f"The paper: {ll.paper.FACTS['lora_gpt3_table4']}.",
    )
    """),
]
