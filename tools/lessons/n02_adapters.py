from nbgen import Exercise, code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 02 · Adapters (Houlsby et al. 2019)

    Freeze the whole pre-trained model. Into every layer, insert two small **bottleneck** layers — one after
    the attention output projection, one after the feed-forward output — each with a residual connection:

    $$\\text{adapter}(h) = h + W_\\text{up}\\,\\sigma(W_\\text{down} h), \\qquad W_\\text{down}: d \\to m,\\; W_\\text{up}: m \\to d,\\; m \\ll d$$

    Only the adapters (and the classifier head) are trained. One set of adapters per task; the base model
    never changes, so adapters plug in and out. Each adapter costs $2dm + d + m$ parameters.
    """),
    setup_cell("02 adapters"),
    timing_cell("02_adapters", """
    The long cells train the sentiment adapters on the tweets and the topic adapters on BBC News. In CPU mode
    both go into the top two layers only (the four below are computed once per example and kept).
    """),
    md("Where the adapters sit in one of MiniLM's six layers, with its shapes (grey: frozen; coloured: trained):"),
    code("ll.diagrams.adapter()"),
    md("""
    ### Exercise 2.1 — build a bottleneck adapter

    Write the adapter of the formula above as a module with two linear layers named `down` and `up` (the checker
    and the next exercise look for these names) and a GELU nonlinearity. Before training, the adapter must
    change nothing: the model with adapters must give exactly the outputs of the model without them.
    """),
    Exercise(
        student="""
        import torch
        from torch import nn
        from torch.nn import functional as F

        class BottleneckAdapter(nn.Module):
            def __init__(self, d: int, m: int):
                super().__init__()
                # TODO: the two projections: down takes d numbers to m, up takes m numbers back to d
                # TODO: choose the starting values so that the adapter returns h unchanged before training
                raise NotImplementedError

            def forward(self, h):
                # TODO: squeeze h to m numbers, apply the nonlinearity, expand back to d, and keep h itself too
                raise NotImplementedError
        """,
        solution="""
        import torch
        from torch import nn
        from torch.nn import functional as F

        class BottleneckAdapter(nn.Module):
            def __init__(self, d: int, m: int):
                super().__init__()
                self.down = nn.Linear(d, m)
                self.up = nn.Linear(m, d)
                nn.init.zeros_(self.up.weight)
                nn.init.zeros_(self.up.bias)

            def forward(self, h):
                return h + self.up(F.gelu(self.down(h)))
        """,
    ),
    hint("""
    `nn.Linear(d, m)` maps d numbers to m. If the *up* projection starts with all weights and its bias at zero
    (`nn.init.zeros_`), it outputs 0 whatever it receives, so `h + up(…)` is exactly `h`. Why not start *down*
    at zero instead? (Then up would still add its bias, and no gradient would reach down's weights at first.)
    The forward pass is one line: the residual `h +` the bottleneck.
    """),
    code("ll.checks.check_adapter(BottleneckAdapter);"),
    md("""
    ### Exercise 2.2 — how many parameters?

    Count the trainable parameters of all adapters in a model with `n_layers` layers of width `d`, bottleneck
    `m`: Houlsby placement has two adapters per layer, Pfeiffer placement one. Don't forget the biases.
    """),
    Exercise(
        student="""
        def adapter_param_count(d: int, m: int, n_layers: int, placement: str = "houlsby") -> int:
            # TODO: the parameters of one adapter (both projections, with their biases),
            #       times the adapters in one layer (depends on the placement), times the layers
            raise NotImplementedError
        """,
        solution="""
        def adapter_param_count(d: int, m: int, n_layers: int, placement: str = "houlsby") -> int:
            per_adapter = (d * m + m) + (m * d + d)
            per_layer = 2 if placement == "houlsby" else 1
            return n_layers * per_layer * per_adapter
        """,
    ),
    hint("""
    A linear layer from d to m has d·m weights and m biases. Houlsby puts two adapters in each layer (after the
    attention and after the feed-forward block), Pfeiffer one. For MiniLM (d = 384, 6 layers, m = 64, Houlsby)
    you should get 595,200.
    """),
    code("ll.checks.check_adapter_count(adapter_param_count);"),
    md("""
    ### Exercise 2.3 — your adapter inside MiniLM

    A checker on random numbers is one thing; does your class also work inside a real model? The cell below
    puts **your** `BottleneckAdapter` into MiniLM — after the attention output and after the feed-forward output
    of the layers this notebook trains — and trains it on the tweets beside the library's adapter, starting
    from the same numbers and seeing the same batches. If your class is right, the two runs agree step by
    step. (In CPU mode this takes about a minute: two short trainings.)
    """),
    md("""
    **What you should see:** while your class is unfinished, ⏳ and what is missing. When it is done, ✅ and a
    small table, yours beside the library's: "yes" for the outputs at init, the same number of trainable
    parameters, losses that agree at every step (the largest difference is printed: rounding only), and test
    accuracies within 2 points.
    """),
    code("ll.exercises.your_adapter(BottleneckAdapter);"),
    hint("""
    If the check says the outputs change at init, look at what starts at zero. If it says the parameter counts
    differ, check that your module holds exactly `down` and `up` (two `nn.Linear` with biases) and nothing else
    trainable. If the runs drift apart, compare your forward with the formula at the top of this notebook.
    """),
    md("""
    ## Adapters in MiniLM

    From here on we use the library's version (`lesson_lib/adapter.py`, the same idea in 80 lines), so an
    unfinished exercise never breaks the rest. `ll.recipe` says how much this notebook trains here: in full
    mode adapters go into every layer (12 adapters, two per layer); in CPU mode into the top two layers only
    (4 adapters), so the layers below never change and are computed once per tweet. Expect: outputs
    unchanged at init, the measured parameter count equal to the formula.
    """),
    code("""
    import torch

    recipe = ll.recipe("adapter")
    print(recipe)
    tweets = recipe.load_task()
    model, tok = ll.load_base()
    batch = ll.batch(model, tweets.test, n=16)
    logits_before = ll.logits(model, batch)
    fingerprint = ll.checksum(model)

    report = ll.inject(model, ll.AdapterConfig(bottleneck=64, layers=recipe.layers(model)))
    print(report)
    unchanged = torch.equal(ll.logits(model, batch), logits_before)
    measured, formula = ll.count_params(model).trainable, ll.metrics.formula_for(model)
    print(f"outputs unchanged at init: {unchanged} | trainable measured {measured:,} = formula {formula:,}")
    assert unchanged and measured == formula
    """),
    md("""
    ## Train, and watch the accuracy climb

    Only the adapters and the head are trained. The curve below is fed by a training callback.
    """),
    md("""
    **What you should see:** a panel with a **Train** button and an empty curve: nothing trains until you press
    it. A run of adapters in the top two layers takes about a minute on a laptop CPU and climbs into the high
    80s; head only stays near 71 %.
    """),
    code("""
    from lesson_lib import widgets
    live = widgets.live_training(
        {"adapters m=64": widgets.fresh(ll.AdapterConfig(bottleneck=64)), "head only": widgets.fresh("head")},
        tweets, recipe.train_config(eval_every=max(recipe.steps // 3, 1), eval_limit=64 if ll.FAST else 256),
        top=2)
    live
    """),
    md("""
    Press **Train** above to watch a run live (Stop ends it cleanly). **trains in** starts at *top 2 of 6
    (fast)*: the adapters go into the top two layers only, so layers 0–3 never change and are computed once per
    tweet and kept; each step then costs about a third of an all-layer step. Choose *all layers* for the full
    method (on a CPU, about three times slower per step). In quick mode the next cell presses Train for you;
    the cell after trains the notebook's own model for the rest of the lesson.
    """),
    code("""
    if ll.FAST:
        live.start(block=True)
        print(live.runlog.runs[-1]["label"], f"{live.runlog.runs[-1]['accuracy']:.1%}")
    """),
    md("""
    **What you should see:** about a minute on a laptop CPU (at once from a lecture cache), the validation
    accuracy at three checkpoints, and a test accuracy near 88 % in CPU mode (two seeds gave 87.4 % and 88.1 %),
    within about 2 points of the stored full-mode runs printed below it.
    """),
    code("""
    # ll.train(model, tweets, cfg) — or, when this run was stored for a lecture, load it into `model` at once
    history = ll.lecture.train_or_load("adapters_tweets", model, tweets, recipe.train_config(
        eval_every=max(recipe.steps // 3, 1), eval_limit=64 if ll.FAST else 256))
    print(f"run: {history.source}")
    for e in history.evals:
        print(f"step {e['step']:4d}  validation accuracy {e['accuracy']:.1%}")
    sentiment = ll.evaluate(model, tweets.test, amp=False)
    reference = ll.results.stored_row("compare_tweets", "adapter")
    print(f"test accuracy {sentiment['accuracy']:.1%} on {sentiment['n']:,} tweets (chance 50%), "
          f"{history.steps[-1]} steps, {history.seconds:.0f} s")
    print(f"stored full-mode runs (every layer, {reference['steps']} steps): {ll.results.stored_text(reference)}")
    """),
    md("""
    **The base model is untouched.** `ll.checksum` reads every frozen weight and boils it down to one short
    string, its *fingerprint*: if a single number in the base changed, the fingerprint would change too. It is
    the same as before training:
    """),
    code("""
    print("base fingerprint before:", fingerprint, " after:", ll.checksum(model))
    assert ll.checksum(model) == fingerprint
    """),
    md("""
    ## Plug in, plug out: one base, two tasks

    A second set of adapters, with its own 5-way head, learns the BBC News topics on the *same* frozen base.
    `set_active` switches between the tasks; each keeps its accuracy exactly (compared in fp32, see below),
    and the base fingerprint never changes. Each task is one small file on disk.

    The BBC test split has 300 articles, so one article is a third of a point. A short run on a few hundred
    articles also depends on its random start: in CPU mode, seeds land several points apart (the README's CPU-mode
    table lists them, from `python -m benchmarks.cpu_mode`). Compare your number with that spread, not with one run.
    """),
    md("""
    **What you should see:** about two minutes on a laptop CPU; two tasks listed on one model, and a topic
    accuracy in the 90s in CPU mode (two seeds gave 90.7 % and 96.0 %; chance is 20 %).
    """),
    code("""
    import tempfile, pathlib
    topic_recipe = ll.recipe("adapter", "bbc")
    print(topic_recipe)
    bbc = topic_recipe.load_task()
    ll.inject(model, ll.AdapterConfig(bottleneck=64, layers=topic_recipe.layers(model)), name="topic",
              num_labels=bbc.num_labels)
    ll.lecture.train_or_load("adapters_topic_bbc", model, bbc, topic_recipe.train_config(eval_every=0))
    topic = ll.evaluate(model, bbc.test)
    print(f"tasks on this model: {list(ll.tasks.names(model))}, active: {ll.tasks.active_task(model)}")
    print(f"topic test accuracy {topic['accuracy']:.1%} on {topic['n']} articles (chance {1 / bbc.num_labels:.0%}); "
          f"stored full-mode runs: {ll.results.stored_text(ll.results.stored_row('compare_bbc', 'adapter'))}")
    """),
    *predict("""
    The model has just learned BBC topics with a second set of adapters. When you switch back to the sentiment
    task, its test accuracy will be: (a) a little lower — training on topics made the model forget some
    sentiment; (b) exactly the same as before; (c) a little higher — the topics taught it more English.
    """, name="guess_switch", example='"a"'),
    md("""
    Switch back to the sentiment task and measure it again. The comparison runs in full precision
    (`amp=False`): on a GPU, evaluation normally uses 16-bit arithmetic, which is faster but rounds a little,
    and "exactly the same" is a claim about the computation, so we check it without that rounding.
    """),
    code("""
    ll.tasks.set_active(model, "default")          # the sentiment adapters and head go back in
    again = ll.evaluate(model, tweets.test, amp=False)
    print(f"sentiment after switching back: {again['accuracy']:.1%} (was {sentiment['accuracy']:.1%})")
    assert again["accuracy"] == sentiment["accuracy"] and ll.checksum(model) == fingerprint
    ll.checks.reveal(guess_switch, "b", "sentiment accuracy after training the topic task",
                     "the topic run trained only its own adapters and head; the frozen base and the sentiment "
                     "adapters were never touched, so nothing could be forgotten");

    tmp = pathlib.Path(tempfile.mkdtemp())
    size_sentiment = ll.save_adapter(model, tmp / "sentiment.safetensors")
    ll.tasks.set_active(model, "topic")
    size_topic = ll.save_adapter(model, tmp / "topic.safetensors")
    size_model = (ll.models.offline_model_dir() / "model.safetensors").stat().st_size
    print(f"files: sentiment {size_sentiment / 2**20:.2f} MB, topic {size_topic / 2**20:.2f} MB, "
          f"vs the whole model {size_model / 2**20:.1f} MB")
    """),
    md("""
    A saved task loads onto a fresh base in one line; a file for another base, or a damaged file, is refused
    with a message and leaves the model as it was.
    """),
    code("""
    fresh, _ = ll.load_base()
    ll.load_adapter(fresh, tmp / "sentiment.safetensors")
    reloaded = ll.evaluate(fresh, tweets.test, amp=False)
    print(f"reloaded sentiment adapter, test accuracy: {reloaded['accuracy']:.1%} (saved: {sentiment['accuracy']:.1%})")
    assert reloaded["accuracy"] == sentiment["accuracy"]
    """),
    md("""
    ## The switchboard

    Type sentences, pick a task: the same frozen base answers as a sentiment classifier or as a topic classifier.
    The base fingerprint shown never changes.
    """),
    code("""
    board = widgets.switchboard(model, tasks={"default": tweets, "topic": bbc})
    board
    """),
    md("""
    ### Question to think about

    Your two task files together are a few megabytes, and the base never changed. Suppose a third team wants
    the same model to detect spam. What do they need from you, and what must they never touch? What would they
    need if you had fine-tuned the whole model for each task instead?
    """),
    code("""
    ll.summary(
        f"An adapter layer is h + up(σ(down(h))); with up at zero the model is unchanged at step 0 (checked: {unchanged}).",
        f"Adapters with m = 64 where this notebook trains them: {measured:,} trainable parameters, equal to the "
        f"formula; sentiment test accuracy {sentiment['accuracy']:.1%} (stored full-mode runs, every layer: "
        f"{ll.results.stored_text(reference)}).",
        f"A second task on the same frozen base: BBC topics at {topic['accuracy']:.1%}; switching back gives the "
        f"sentiment accuracy exactly again, and the base fingerprint never changed.",
        f"One small file per task: {size_sentiment / 2**20:.2f} MB and {size_topic / 2**20:.2f} MB against "
        f"{size_model / 2**20:.1f} MB for the whole model.",
        f"The paper: {ll.paper.FACTS['houlsby_glue']}.",
    )
    """),
]
