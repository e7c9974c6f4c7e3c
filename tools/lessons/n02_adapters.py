from nbgen import Exercise, code, md, setup_cell

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
    md("""
    ⏱ **How long this notebook takes.** Quick mode (`LESSON_FAST=1`, what the tests run): 68 s top to bottom,
    measured on a 2-core CPU with one torch thread while another job ran. Full mode on that CPU (estimated from the
    measured seconds per step in `benchmarks/results/`): a live run in the panel (top 2 layers, 300 steps) about 2½ minutes; the all-layer adapters, 300 steps, about 7 minutes; the BBC topic adapters, 200 steps of 16 articles, about 15 minutes. After `python -m lesson_lib precompute` both trainings load from the cache in seconds.
    On a GPU: not measured yet — no GPU was available to this project; `bash benchmarks/gpu_check.sh` measures it.
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
    unfinished exercise never breaks the rest. Expect: 12 adapters, outputs unchanged at init, the measured
    parameter count equal to the formula.
    """),
    code("""
    import torch
    from lesson_lib.data import make_loader

    LIMIT = 400 if ll.FAST else None
    STEPS = 8 if ll.FAST else 300
    tweets = ll.load_task("tweets", limit=LIMIT)
    model, tok = ll.load_base()
    batch = next(iter(make_loader(tweets.test, tok, 16, max_length=64)))
    batch.pop("labels")
    with torch.no_grad():
        logits_before = model(**batch).logits
    fingerprint = ll.checksum(model)

    report = ll.inject(model, ll.AdapterConfig(bottleneck=64))
    print(report)
    with torch.no_grad():
        unchanged = torch.equal(model(**batch).logits, logits_before)
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
        tweets, ll.TrainConfig(steps=STEPS, lr=3e-3, eval_every=max(STEPS // 3, 1), eval_limit=64 if ll.FAST else 256),
        top=2)
    live
    """),
    md("""
    Press **Train** above to watch a run live (Stop ends it cleanly). **trains in** starts at *top 2 of 6
    (fast)*: the adapters go into the top two layers only, so layers 0–3 never change and are computed once per
    tweet and cached; each step then costs about a third of an all-layer step (see
    `benchmarks/results/time_to_accuracy.md`). Choose *all layers* for the full method. In quick mode the next
    cell presses Train for you; the cell after trains our all-layer model for the rest of the notebook.
    """),
    code("""
    if ll.FAST:
        live.start(block=True)
        print(live.runlog.runs[-1])
    """),
    code("""
    # ll.train(model, tweets, cfg) — or, when a lecturer stored this run (precompute), load it into `model` at once
    history = ll.lecture.train_or_load("adapters_m64_tweets", model, tweets, ll.TrainConfig(
        steps=STEPS, lr=1e-3, eval_every=max(STEPS // 3, 1), eval_limit=64 if ll.FAST else 256))
    print(f"run: {history.source}")
    for e in history.evals:
        print(f"step {e['step']:4d}  validation accuracy {e['accuracy']:.1%}")
    sentiment = ll.evaluate(model, tweets.test)
    print(f"test accuracy {sentiment['accuracy']:.1%} (chance 50%) after {history.steps[-1]} steps, {history.seconds:.0f} s")
    """),
    md("**The base model is untouched**: its fingerprint (a hash of every frozen weight) is the same as before."),
    code("""
    print("base fingerprint before:", fingerprint, " after:", ll.checksum(model))
    assert ll.checksum(model) == fingerprint
    """),
    md("""
    ## Plug in, plug out: one base, two tasks

    A second set of adapters, with its own 5-way head, learns the BBC News topics on the *same* frozen base.
    `set_active` switches between the tasks; each keeps its accuracy, and the base fingerprint never changes.
    Each task is one small file on disk.
    """),
    code("""
    import tempfile, pathlib
    bbc = ll.load_task("bbc", limit=100 if ll.FAST else None)
    ll.inject(model, ll.AdapterConfig(bottleneck=64), name="topic", num_labels=bbc.num_labels)
    ll.lecture.train_or_load("adapters_m64_topic_bbc", model, bbc, ll.TrainConfig(
        steps=5 if ll.FAST else 200, lr=1e-3, batch_size=8 if ll.FAST else 16, eval_every=0))
    topic = ll.evaluate(model, bbc.test)
    print(f"tasks on this model: {list(ll.tasks(model))}, active: {ll.active_task(model)}")
    print(f"topic test accuracy {topic['accuracy']:.1%} (chance {1 / bbc.num_labels:.0%})")

    ll.set_active(model, "default")          # the sentiment adapters and head go back in
    again = ll.evaluate(model, tweets.test)
    print(f"sentiment after switching back: {again['accuracy']:.1%} (was {sentiment['accuracy']:.1%})")
    assert again["accuracy"] == sentiment["accuracy"] and ll.checksum(model) == fingerprint

    tmp = pathlib.Path(tempfile.mkdtemp())
    size_sentiment = ll.save_adapter(model, tmp / "sentiment.safetensors")
    ll.set_active(model, "topic")
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
    print("reloaded sentiment adapter, test accuracy:", f"{ll.evaluate(fresh, tweets.test)['accuracy']:.1%}")
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
