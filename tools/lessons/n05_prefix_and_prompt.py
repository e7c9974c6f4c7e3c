from nbgen import Exercise, code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 05 · Prefix tuning and prompt tuning

    **Prefix tuning** (Li & Liang 2021) gives every attention layer $P$ learned key and value vectors that
    every query can attend to:

    $$K = [P_K;\\, XW_K], \\quad V = [P_V;\\, XW_V], \\quad \\text{out} = \\text{softmax}\\!\\left(\\frac{Q K^\\top}{\\sqrt{d_h}} + M\\right) V$$

    The prefix adds *keys and values*, not tokens. So the sequence keeps its length, the real tokens keep their
    positions, and the mask $M$ (which says what each token may look at) gets $P$ extra "visible" columns.
    **Prompt tuning** (Lester et al. 2021) is its simplest relative: $P$ learned vectors are inserted into the
    *input* embeddings only, below the first layer.
    """),
    setup_cell("05 prefix and prompt"),
    timing_cell("05_prefix_and_prompt", """
    The long cells train prefix tuning with its MLP and without it (in CPU mode in the top two layers only).
    Prompt tuning is trained live in full mode only. Its vectors enter below the first layer, so no layer's
    output can be computed once and kept; CPU mode shows its stored full-mode run instead.
    """),
    md("How the prefix enters one attention layer of MiniLM (12 heads of 32 numbers), and where prompt tuning puts its vectors instead:"),
    code("ll.diagrams.prefix(length=10)"),
    md("""
    ### Exercise 5.1 — extend the attention mask

    `mask` is (batch, T) with 1 for real tokens and 0 for padding. Return (batch, P + T): P ones (every real token
    may look at the prefix) in front of the original mask.
    """),
    Exercise(
        student="""
        import torch

        def extend_mask(mask, P):
            # TODO: P "visible" columns for the prefix in front of the real tokens' columns (same dtype and device)
            raise NotImplementedError
        """,
        solution="""
        import torch

        def extend_mask(mask, P):
            return torch.cat([mask.new_ones(mask.shape[0], P), mask], dim=1)
        """,
    ),
    hint("""
    `mask.new_ones(batch, P)` makes ones of the mask's dtype on its device; `torch.cat([…, mask], dim=1)` puts
    them in front along the token dimension.
    """),
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
            # TODO: the keys and values the queries may look at: the prefix's first, then the tokens' own
            #       (the prefix has no batch dimension: every example shares it)
            # TODO: scaled dot-product scores of every query against every key; keys that are padding must get
            #       no attention at all (use your extend_mask)
            # TODO: the attention-weighted sum of the values, for the T real tokens only
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
    hint("""
    `prefix_k.expand(B, -1, -1, -1)` gives it a batch dimension without copying; `torch.cat([…, k], dim=2)`
    joins along the key positions. Scores: `q @ k.transpose(-1, -2) / d_head ** 0.5`, shape (B, H, T, P + T).
    `scores.masked_fill(keep[:, None, None, :] == 0, float("-inf"))` removes padding keys, then
    `scores.softmax(-1) @ v`. The queries stay the T real tokens: the output has T positions, not P + T.
    """),
    code("ll.checks.check_prefix_attention(prefix_attention);"),
    md("""
    ### Exercise 5.3 — your prefix attention inside MiniLM

    The cell below puts **your** `prefix_attention` inside the layers this notebook trains, with a flat prefix
    of P = 10 learned keys and values per layer. It trains this model on the tweets beside a model with the
    library's prefix layers. Both start from the same prefix vectors and see the same batches. (Attention
    dropout is off in both, since your function has none.) If your function is right, the two runs agree step
    by step. In CPU mode this takes about a minute.
    """),
    md("""
    **What you should see:** ⏳ while your function is unfinished; when it is done, ✅ and a table, yours beside
    the library's: the same outputs at init (both start from the same prefix vectors), the same number of
    trainable parameters, losses that agree at every step, and test accuracies within 2 points.
    """),
    code("ll.exercises.your_prefix_attention(prefix_attention, length=10);"),
    hint("""
    Inside MiniLM the mask has real padding (tweets of different lengths are batched together) and
    `prefix_k` comes from the model's own P × 384 vectors split into 12 heads of 32. If the outputs differ at
    init, check the order (prefix first), the scaling by √d_head, and that the prefix columns are visible.
    """),
    md("""
    ## Prefix tuning in MiniLM

    To add a prefix, the library writes BERT's attention out in full (`lesson_lib/prefix.py`) and adds the
    prefix keys and values to it. First a check: with the prefix switched off (gate 0), the written-out
    attention must give the model's own outputs. The cell checks this in 32-bit floats (fp32) to within 1e-5.
    The results are not identical only because the same sums are added up in another order.

    Then we add P = 10 prefix vectors with the paper's *reparameterisation*: a small MLP produces the
    prefixes, which makes training more stable. `ll.recipe` says in which layers: every layer in full mode,
    the top two in CPU mode.
    """),
    code("""
    recipe = ll.recipe("prefix")
    print(recipe)
    tweets = recipe.load_task()

    model, tok = ll.load_base()
    batch = ll.batch(model, tweets.test, n=16)
    base_logits = ll.logits(model, batch)
    ll.inject(model, ll.PrefixConfig(length=10), gates=ll.GateConfig(learned=False, value=0.0))
    diff = float((ll.logits(model, batch) - base_logits).abs().max())
    print(f"prefix switched off vs the model's own attention: max |difference| = {diff:.1e} (fp32; allowed 1e-5)")
    assert diff <= 1e-5
    ll.remove(model)

    report = ll.inject(model, ll.PrefixConfig(length=10, reparam=True, reparam_hidden=128, layers=recipe.layers(model)))
    print(report)
    print("measured", ll.count_params(model).trainable, "= formula", ll.metrics.formula_for(model))
    """),
    md("""
    **What you should see:** a panel with a **Train** button: nothing trains until you press it. A prefix run in
    the top two layers takes about a minute on a laptop CPU and reaches the low 80s, a few points below LoRA and
    adapters.
    """),
    code("""
    from lesson_lib import widgets
    live = widgets.live_training(
        {"prefix P=10 (MLP)": widgets.fresh(ll.PrefixConfig(length=10, reparam=True)),
         "prefix P=30 (MLP)": widgets.fresh(ll.PrefixConfig(length=30, reparam=True))},
        tweets, recipe.train_config(eval_every=max(recipe.steps // 3, 1), eval_limit=64 if ll.FAST else 256),
        top=2)
    live
    """),
    md("""
    Press **Train** to watch prefix tuning learn. The **trains in** menu starts at *top 2 of 6 (fast)*: there
    are prefixes only in layers 4 and 5, and the layers below are computed once per tweet and kept. *All
    layers* is the paper's setting; it is slower per step. The learning rate matters more here than for LoRA:
    try the **lr** menu. (In quick mode the notebook presses Train once for you.)
    """),
    code("""
    if ll.FAST:
        live.start(block=True)
        print(live.runlog.runs[-1]["label"], f"{live.runlog.runs[-1]['accuracy']:.1%}")
    """),
    md("""
    Now we train the notebook's prefix and then **fold** it. The MLP is only a tool for learning the
    prefixes. Once training is over, its output (the prefix keys and values) is all the model needs. So we
    compute that output once, store it, and throw the MLP away.

    Folding does not change the computation, so the test accuracy must stay exactly the same. The cell checks
    this in full precision (`amp=False`). On a GPU, evaluation normally rounds to 16-bit numbers, and the
    folded prefix would be rounded at a different place than the MLP's output.

    **What you should see:** about two minutes of training on a laptop CPU; a test accuracy near 82 % in CPU
    mode (near 85 % in full mode, every layer), exactly the same accuracy after folding, and the number of
    prefix numbers you predict below.
    """),
    *predict("""
    After folding, how many prefix numbers does the model keep (P = 10, in the layers this notebook trains:
    the recipe above says which)? Each prefix layer keeps P key vectors and P value vectors of width 384.
    """, name="guess_folded", example="10_000"),
    code("""
    # ll.train(model, tweets, cfg) — or, when this run was stored for a lecture, load it into `model` at once
    history = ll.lecture.train_or_load("prefix_p10_mlp_tweets", model, tweets, recipe.train_config(
        eval_every=max(recipe.steps // 3, 1), eval_limit=64 if ll.FAST else 256))
    print(f"run: {history.source}")
    for e in history.evals:
        print(f"step {e['step']:4d}  validation accuracy {e['accuracy']:.1%}")
    prefix_acc = ll.evaluate(model, tweets.test, amp=False)["accuracy"]
    removed = ll.surgery.fold_prefix(model)
    folded_acc = ll.evaluate(model, tweets.test, amp=False)["accuracy"]
    reference = ll.results.stored_row("compare_tweets", "prefix")
    print(f"test accuracy {prefix_acc:.1%} (stored full-mode runs, every layer: {ll.results.stored_text(reference)}); "
          f"folding the MLP away removed {removed:,} parameters, keeps {ll.count_params(model).by_method['prefix']:,} "
          f"prefix numbers, accuracy after folding {folded_acc:.1%}")
    assert folded_acc == prefix_acc
    n_prefix_layers = len([m for m in model.modules() if isinstance(m, ll.prefix.PrefixAttention)])
    ll.checks.reveal(guess_folded, ll.count_params(model).by_method["prefix"], "prefix numbers kept after folding",
                     f"2 (keys and values) × P = 10 × 384 × {n_prefix_layers} layers; the MLP that produced them "
                     f"({removed:,} parameters) is thrown away");
    """),
    md("""
    ### Why the MLP? The same learning rate, without it

    Li & Liang found that training the prefix directly is unstable, and that the MLP makes training smoother.
    Here is the *flat* prefix (no MLP), trained with the same learning rate and the same steps as the MLP
    version. (On the tweets the flat prefix needs much larger steps: its own recipe uses 3e-2, thirty times
    more. Try it in the panel above with the **lr** menu.)
    """),
    md("""
    **What you should see:** about a minute on a laptop CPU; at the same learning rate the flat prefix ends far
    below the MLP version (in CPU mode about 72 % against about 82 %): its steps are too small for it.
    """),
    code("""
    flat, _ = ll.load_base()
    ll.inject(flat, ll.PrefixConfig(length=10, reparam=False, layers=recipe.layers(flat)))
    ll.lecture.train_or_load("prefix_p10_flat_tweets", flat, tweets, recipe.train_config(eval_every=0))
    flat_acc = ll.evaluate(flat, tweets.test)["accuracy"]
    print(f"same lr {recipe.lr:g}, {recipe.steps} steps: with the MLP {prefix_acc:.1%}, flat prefix {flat_acc:.1%}")
    """),
    md("""
    ## How much attention do real tokens pay to the prefix?

    Each prefix layer can keep its attention weights. For every layer, the cell prints the average share of a
    real token's attention that goes to the P prefix positions.
    """),
    code("""
    layers = [m for m in model.modules() if isinstance(m, ll.prefix.PrefixAttention)]
    for layer in layers:
        layer.keep_attention = True
    ll.logits(model, batch)                                            # one forward pass; each layer keeps its weights
    real = batch["attention_mask"].bool().to(layers[0].last_attention.device)  # (B, T) queries that are real tokens
    for layer in layers:
        share = layer.last_attention[..., :layer.length].sum(-1)      # (B, heads, T)
        share = share.mean(1)[real].mean()
        print(f"layer {layer.layer_idx}: {share:.1%} of attention on the {layer.length} prefix positions")
        layer.keep_attention = False
    """),
    md("""
    ## Prompt tuning beside it

    P = 10 learned input vectors, inserted right after the [CLS] token. Prompt tuning has far fewer parameters
    than prefix tuning. On a small model it usually reaches a lower accuracy too: Lester et al. found that
    prompt tuning catches up only for models with billions of parameters. The prompt enters below the first
    layer, so every layer must run at every step. In full mode it trains now; in CPU mode you see the stored
    full-mode run.
    """),
    md("""
    **What you should see:** in CPU mode the stored full-mode run at once (in full mode it trains now): prompt
    tuning near 82 % (the stored full-mode prefix runs: about 84 %) with 3,840 trainable prompt numbers (10 ×
    384), a quarter of the folded prefix's 15,360.
    """),
    code("""
    prompt_recipe = ll.recipe("prompt")
    print(prompt_recipe)
    if prompt_recipe.live:
        prompt_model, _ = ll.load_base()
        ll.inject(prompt_model, ll.PromptConfig(length=10))
        ll.lecture.train_or_load("prompt_p10_tweets", prompt_model, tweets, prompt_recipe.train_config(eval_every=0))
        prompt = {"accuracy": ll.evaluate(prompt_model, tweets.test)["accuracy"],
                  "trainable": ll.count_params(prompt_model).trainable}
    else:
        prompt = ll.results.stored_row("compare_tweets", "prompt")
        print(ll.results.label(ll.results.load("compare_tweets")))
    head = ll.count_params(model).by_method["head"]
    print(f"{'prefix (folded)':16s} trainable {ll.count_params(model).trainable:>7,} "
          f"(method {ll.count_params(model).trainable - head:>6,})  test accuracy {folded_acc:.1%}")
    print(f"{'prompt':16s} trainable {prompt['trainable']:>7,} (method {prompt['trainable'] - head:>6,})  "
          f"test accuracy {prompt['accuracy']:.1%}")
    """),
    md("""
    ### Question to think about

    Real tokens pay part of their attention to the prefix (the shares above), yet the prefix carries no word
    of the input. What could the prefix keys and values be doing for the classifier? Why might a prefix help a
    large model more than a small one (Lester et al.'s finding for prompt tuning)?
    """),
    code("""
    ll.summary(
        f"A prefix adds P keys and values to every attention layer it is in, not tokens: the sequence keeps its "
        f"length and the mask gets P visible columns.",
        f"Prefix P = 10 with its MLP: {prefix_acc:.1%} test accuracy here (stored full-mode runs: "
        f"{ll.results.stored_text(reference)}); folded, it keeps {ll.count_params(model).by_method['prefix']:,} numbers "
        f"and exactly the same accuracy ({folded_acc:.1%}).",
        f"Without the MLP, at the same learning rate: {flat_acc:.1%}: the flat prefix needs much larger steps.",
        f"Prompt tuning (input vectors only): {prompt['trainable'] - head:,} parameters, {prompt['accuracy']:.1%}.",
    )
    """),
]
