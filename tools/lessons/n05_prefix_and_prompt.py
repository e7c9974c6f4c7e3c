from nbgen import Exercise, code, md, setup_cell

CELLS = [
    md("""
    # 05 · Prefix tuning and prompt tuning

    **Prefix tuning** (Li & Liang 2021) gives every attention layer $P$ learned key and value vectors that
    every query can attend to:

    $$K = [P_K;\\, XW_K], \\quad V = [P_V;\\, XW_V], \\quad \\text{out} = \\text{softmax}\\!\\left(\\frac{Q K^\\top}{\\sqrt{d_h}} + M\\right) V$$

    The prefix adds *keys and values*, not tokens: the sequence length and the real tokens' positions stay the
    same, and the mask $M$ gets $P$ extra "visible" columns. **Prompt tuning** (Lester et al. 2021) is its
    simplest relative: $P$ learned vectors inserted into the *input* embeddings only.
    """),
    setup_cell("05 prefix and prompt"),
    md("""
    ⏱ **How long this notebook takes.** Quick mode (`LESSON_FAST=1`, what the tests run): 87 s top to bottom,
    measured on a 2-core CPU with one torch thread while another job ran. Full mode on that CPU (estimated from the
    measured seconds per step in `benchmarks/results/`): a live run in the panel about 2½ minutes; prefix with the MLP, flat prefix and prompt tuning (300 steps each) about 7, 7 and 8 minutes. After `python -m lesson_lib precompute` the three trainings load from the cache in seconds.
    On a GPU: not measured yet — no GPU was available to this project; `bash benchmarks/gpu_check.sh` measures it.
    """),
    md("""
    ### Exercise 5.1 — extend the attention mask

    `mask` is (batch, T) with 1 for real tokens and 0 for padding. Return (batch, P + T): P ones (every real token
    may look at the prefix) in front of the original mask.
    """),
    Exercise(
        student="""
        import torch

        def extend_mask(mask, P):
            # TODO: torch.cat of a (batch, P) block of ones and the mask, along the last dimension
            raise NotImplementedError
        """,
        solution="""
        import torch

        def extend_mask(mask, P):
            return torch.cat([mask.new_ones(mask.shape[0], P), mask], dim=1)
        """,
    ),
    code("ll.checks.check_extend_mask(extend_mask);"),
    md("""
    ### Exercise 5.2 — attention with a prefix

    `q, k, v`: (batch, heads, T, d_head); `prefix_k, prefix_v`: (heads, P, d_head); `mask`: (batch, T).
    Put the prefix in front of the keys and values, extend the mask (your `extend_mask`), and return the
    attention output for the T real tokens: (batch, heads, T, d_head).
    """),
    Exercise(
        student="""
        def prefix_attention(q, k, v, prefix_k, prefix_v, mask):
            B = q.shape[0]
            # TODO: k = cat([prefix_k expanded to (B, heads, P, d_head), k], dim=2); the same for v
            # TODO: scores = q @ k^T / sqrt(d_head); mask out the keys whose extended mask is 0 (-inf)
            # TODO: return softmax(scores) @ v
            raise NotImplementedError
        """,
        solution="""
        def prefix_attention(q, k, v, prefix_k, prefix_v, mask):
            B = q.shape[0]
            k = torch.cat([prefix_k.expand(B, -1, -1, -1), k], dim=2)   # (B, H, P + T, dh)
            v = torch.cat([prefix_v.expand(B, -1, -1, -1), v], dim=2)
            keep = extend_mask(mask, prefix_k.shape[1])                   # (B, P + T)
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5         # (B, H, T, P + T)
            scores = scores.masked_fill(keep[:, None, None, :] == 0, float("-inf"))
            return scores.softmax(-1) @ v
        """,
    ),
    code("ll.checks.check_prefix_attention(prefix_attention);"),
    md("""
    ## Prefix tuning in MiniLM

    The library writes BERT's attention out (`lesson_lib/prefix.py`) and adds the prefix branch. With the
    prefix switched off (gate 0) the written-out attention gives exactly the model's own outputs — checked here.
    Then: P = 10 with the paper's reparameterisation (an MLP produces the prefixes; training is more stable).
    """),
    code("""
    from lesson_lib.data import make_loader

    LIMIT = 400 if ll.FAST else None
    STEPS = 8 if ll.FAST else 300
    tweets = ll.load_task("tweets", limit=LIMIT)

    model, tok = ll.load_base()
    batch = next(iter(make_loader(tweets.test, tok, 16, max_length=64)))
    batch.pop("labels")
    with torch.no_grad():
        base_logits = model(**batch).logits
        ll.inject(model, ll.PrefixConfig(length=10), gates=ll.GateConfig(learned=False, value=0.0))
        print("prefix switched off == the model's own attention:", torch.allclose(model(**batch).logits, base_logits, atol=1e-5))
    ll.remove(model)

    report = ll.inject(model, ll.PrefixConfig(length=10, reparam=True, reparam_hidden=128))
    print(report)
    print("measured", ll.count_params(model).trainable, "= formula", ll.metrics.formula_for(model))
    """),
    code("""
    from lesson_lib import widgets
    live = widgets.live_training(
        {"prefix P=10 (MLP)": widgets.fresh(ll.PrefixConfig(length=10, reparam=True)),
         "prefix P=30 (MLP)": widgets.fresh(ll.PrefixConfig(length=30, reparam=True))},
        tweets, ll.TrainConfig(steps=STEPS, lr=1e-3, eval_every=max(STEPS // 3, 1), eval_limit=64 if ll.FAST else 256),
        top=2)
    live
    """),
    md("""
    Press **Train** to watch prefix tuning learn. **trains in** starts at *top 2 of 6 (fast)*: prefixes only in
    layers 4–5, the layers below cached once per tweet; *all layers* is the paper's setting (slower per step).
    The learning rate matters more here than for LoRA: at 5e-3 the reparameterised prefix collapsed to chance in
    our runs, 1e-3 learns. Quick mode presses Train once for you.
    """),
    code("""
    if ll.FAST:
        live.start(block=True)
        print(live.runlog.runs[-1])
    """),
    code("""
    # ll.train(model, tweets, cfg) — or, when a lecturer stored this run (precompute), load it into `model` at once
    history = ll.lecture.train_or_load("prefix_p10_mlp_tweets", model, tweets, ll.TrainConfig(
        steps=STEPS, lr=1e-3, eval_every=max(STEPS // 3, 1), eval_limit=64 if ll.FAST else 256))
    print(f"run: {history.source}")
    for e in history.evals:
        print(f"step {e['step']:4d}  validation accuracy {e['accuracy']:.1%}")
    prefix_acc = ll.evaluate(model, tweets.test)["accuracy"]
    removed = ll.fold_prefix(model)
    folded_acc = ll.evaluate(model, tweets.test)["accuracy"]
    print(f"test accuracy {prefix_acc:.1%}; folding the MLP away removed {removed:,} parameters, "
          f"keeps {ll.count_params(model).by_method['prefix']:,} prefix numbers, accuracy after folding {folded_acc:.1%}")
    assert folded_acc == prefix_acc
    """),
    md("""
    ### Why the MLP? The same learning rate, without it

    Li & Liang found that optimising the prefix directly is unstable; the MLP makes training smoother.
    Here: the flat prefix (no MLP) trained with the same learning rate and the same steps. (Measured on tweets,
    60 steps: with the MLP 80 % at lr 1e-3; without it 66 % at 3e-3 and 82 % only at 3e-2 — the flat prefix
    needs a 30× larger step, and the MLP version collapses to chance at 5e-3. Learning rates matter here.)
    """),
    code("""
    flat, _ = ll.load_base()
    ll.inject(flat, ll.PrefixConfig(length=10, reparam=False))
    ll.lecture.train_or_load("prefix_p10_flat_tweets", flat, tweets, ll.TrainConfig(steps=STEPS, lr=1e-3, eval_every=0))
    flat_acc = ll.evaluate(flat, tweets.test)["accuracy"]
    print(f"same lr 1e-3, {STEPS} steps: with the MLP {prefix_acc:.1%}, flat prefix {flat_acc:.1%}")
    """),
    md("""
    ## How much attention do real tokens pay to the prefix?

    Each prefix layer can keep its attention weights. For every layer: the average share of a real token's
    attention that goes to the P prefix positions.
    """),
    code("""
    layers = [m for m in model.modules() if isinstance(m, ll.prefix.PrefixAttention)]
    for layer in layers:
        layer.keep_attention = True
    with torch.no_grad():
        model(**batch)
    real = batch["attention_mask"].bool()                              # (B, T) queries that are real tokens
    for layer in layers:
        share = layer.last_attention[..., :layer.length].sum(-1)      # (B, heads, T)
        share = share.mean(1)[real].mean()
        print(f"layer {layer.layer_idx}: {share:.1%} of attention on the {layer.length} prefix positions")
        layer.keep_attention = False
    """),
    md("""
    ## Prompt tuning beside it

    P = 10 learned input vectors (inserted right after [CLS]). Far fewer parameters than prefix tuning — and
    usually a lower accuracy on a small model, as Lester et al. found for models below billions of parameters.
    """),
    code("""
    prompt_model, _ = ll.load_base()
    ll.inject(prompt_model, ll.PromptConfig(length=10))
    ll.lecture.train_or_load("prompt_p10_tweets", prompt_model, tweets, ll.TrainConfig(steps=STEPS, lr=3e-2, eval_every=0))
    prompt_acc = ll.evaluate(prompt_model, tweets.test)["accuracy"]
    for name, m, acc in (("prefix (folded)", model, folded_acc), ("prompt", prompt_model, prompt_acc)):
        c = ll.count_params(m)
        print(f"{name:16s} trainable {c.trainable:>7,} (method {c.trainable - c.by_method['head']:>6,})  test accuracy {acc:.1%}")
    """),
]
