from nbgen import Exercise, code, md, setup_cell, timing_cell

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
    md("""
    ### Exercise 2.1 — build a bottleneck adapter

    Two `nn.Linear` layers named `down` (d → m) and `up` (m → d), a GELU between them, and the residual.
    Start `up` at zero so the adapter is exactly the identity before training (the model is unchanged at step 0).
    """),
    Exercise(
        student="""
        import torch
        from torch import nn
        from torch.nn import functional as F

        class BottleneckAdapter(nn.Module):
            def __init__(self, d: int, m: int):
                super().__init__()
                # TODO: self.down = a Linear from d to m; self.up = a Linear from m to d
                # TODO: initialise self.up's weight and bias to zero (nn.init.zeros_)
                raise NotImplementedError

            def forward(self, h):
                # TODO: return h + up(gelu(down(h)))
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
    code("ll.checks.check_adapter(BottleneckAdapter);"),
    md("""
    ### Exercise 2.2 — how many parameters?

    Count the trainable parameters of all adapters in a model with `n_layers` layers of width `d`, bottleneck
    `m`: Houlsby placement has two adapters per layer, Pfeiffer placement one. Don't forget the biases.
    """),
    Exercise(
        student="""
        def adapter_param_count(d: int, m: int, n_layers: int, placement: str = "houlsby") -> int:
            # TODO: parameters of one adapter (weights and biases of down and up), times adapters per layer, times layers
            raise NotImplementedError
        """,
        solution="""
        def adapter_param_count(d: int, m: int, n_layers: int, placement: str = "houlsby") -> int:
            per_adapter = (d * m + m) + (m * d + d)
            per_layer = 2 if placement == "houlsby" else 1
            return n_layers * per_layer * per_adapter
        """,
    ),
    code("ll.checks.check_adapter_count(adapter_param_count);"),
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
    print(f"stored full-mode run (every layer, {reference['steps']} steps): {reference['accuracy']:.1%}")
    """),
    md("**The base model is untouched**: its fingerprint (a hash of every frozen weight) is the same as before."),
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
          f"stored full-mode run: {ll.results.stored_row('compare_bbc', 'adapter')['accuracy']:.1%}")
    """),
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
]
