from nbgen import Exercise, code, md, setup_cell

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
    md("""
    ⏱ **How long this notebook takes.** Quick mode (`LESSON_FAST=1`, what the tests run): 55 s top to bottom,
    measured on a 2-core CPU with one torch thread while another job ran. Full mode on that CPU (estimated from the
    measured seconds per step in `benchmarks/results/`): a live run in the panel (top 2 layers, 300 steps) about 2½ minutes; LoRA on all layers, 300 steps, about 7 minutes. After `python -m lesson_lib precompute` the training loads from the cache in seconds.
    On a GPU: not measured yet — no GPU was available to this project; `bash benchmarks/gpu_check.sh` measures it.
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

    From here on: the library's `LoRALinear` (`lesson_lib/lora.py`). Expect 12 wrapped matrices
    (6 layers × query, value), 73,728 LoRA parameters, and outputs unchanged at init.
    """),
    code("""
    from lesson_lib.data import make_loader

    LIMIT = 400 if ll.FAST else None
    STEPS = 8 if ll.FAST else 300
    tweets = ll.load_task("tweets", limit=LIMIT)
    model, tok = ll.load_base()
    batch = next(iter(make_loader(tweets.test, tok, 32, max_length=64)))
    batch.pop("labels")
    with torch.no_grad():
        base_logits = model(**batch).logits

    report = ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value")))
    print(report)
    with torch.no_grad():
        print("outputs unchanged at init:", torch.equal(model(**batch).logits, base_logits))
    counts = ll.count_params(model)
    print(counts, "| formula:", ll.metrics.formula_for(model))
    assert counts.by_method["lora"] == 12 * 8 * (384 + 384)
    """),
    code("""
    from lesson_lib import widgets
    live = widgets.live_training(
        {"LoRA r=8": widgets.fresh(ll.LoRAConfig(r=8, alpha=16)), "LoRA r=1": widgets.fresh(ll.LoRAConfig(r=1, alpha=2)),
         "LoRA r=64": widgets.fresh(ll.LoRAConfig(r=64, alpha=128))},
        tweets, ll.TrainConfig(steps=STEPS, lr=3e-3, eval_every=max(STEPS // 3, 1), eval_limit=64 if ll.FAST else 256),
        top=2)
    live
    """),
    md("""
    Press **Train** to watch a run; every run lands in the table and in the accuracy-vs-parameters plot, so three
    ranks give three points. **trains in** starts at *top 2 of 6 (fast)*: LoRA in layers 4–5 only, the four layers
    below cached once per tweet (exactly the same logits, about three times fewer seconds per step); *all layers* is
    the paper's setting. Quick mode presses Train once for you.
    """),
    code("""
    if ll.FAST:
        live.start(block=True)
        print(live.runlog.runs[-1])
    """),
    code("""
    # ll.train(model, tweets, cfg) — or, when a lecturer stored this run (precompute), load it into `model` at once
    history = ll.lecture.train_or_load("lora_r8_tweets", model, tweets, ll.TrainConfig(
        steps=STEPS, lr=1e-3, eval_every=max(STEPS // 3, 1), eval_limit=64 if ll.FAST else 256))
    print(f"run: {history.source}")
    for e in history.evals:
        print(f"step {e['step']:4d}  validation accuracy {e['accuracy']:.1%}")
    lora_acc = ll.evaluate(model, tweets.test)["accuracy"]
    print(f"test accuracy {lora_acc:.1%} (chance 50%), {history.seconds:.0f} s")
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
    computation. We time the base, the merged and the unmerged model on the same batch (median of repeats)
    and check the merged logits equal the unmerged ones.
    """),
    code("""
    import time, statistics

    def median_latency(m, repeats=5 if ll.FAST else 20):
        times = []
        with torch.inference_mode():
            m(**batch)
            for _ in range(repeats):
                t = time.perf_counter(); m(**batch); times.append(time.perf_counter() - t)
        return statistics.median(times)

    with torch.no_grad():
        unmerged_logits = model(**batch).logits
    t_unmerged = median_latency(model)
    ll.merge(model)
    with torch.no_grad():
        merged_logits = model(**batch).logits
    t_merged = median_latency(model)
    ll.unmerge(model)
    base_model, _ = ll.load_base()
    t_base = median_latency(base_model)
    print(f"median latency per batch of {len(batch['input_ids'])}: base {1e3 * t_base:.1f} ms | "
          f"merged {1e3 * t_merged:.1f} ms | unmerged {1e3 * t_unmerged:.1f} ms")
    print("merged logits equal unmerged (atol 1e-5):", torch.allclose(merged_logits, unmerged_logits, atol=1e-5))
    assert torch.allclose(merged_logits, unmerged_logits, atol=1e-5)
    """),
    md("""
    ## Export to Hugging Face PEFT

    `export_peft` writes `adapter_config.json` + `adapter_model.safetensors`; PEFT loads them onto the same
    base and gives the same logits.
    """),
    code("""
    import tempfile
    try:
        from peft import PeftModel
    except ImportError:
        PeftModel = None
        print("peft is not installed here (pip install peft) — skipping the round trip")
    if PeftModel is not None:
        path = ll.export_peft(model, tempfile.mkdtemp())
        peft_model = PeftModel.from_pretrained(ll.load_base()[0], str(path)).eval()
        with torch.no_grad():
            ours, theirs = model(**batch).logits, peft_model(**batch).logits
        print(f"max |ours − PEFT| = {(ours - theirs).abs().max():.2e}")
        assert torch.allclose(ours, theirs, atol=1e-5)
    """),
]
