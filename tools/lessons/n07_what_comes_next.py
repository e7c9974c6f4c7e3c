from nbgen import Exercise, code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 07 · What comes next: instruction tuning and learning from preferences

    Notebooks 01–06 adapted one frozen model to **one** task at a time. The lecture ends with two ideas that
    built today's assistants on top of that:

    1. **Instruction tuning** (FLAN, Wei et al. 2022): train one model on many tasks, each written as an
       instruction, so that it can follow instructions for tasks it never saw.
    2. **Learning from human preferences** (InstructGPT, Ouyang et al. 2022): people compare two answers, a
       *reward model* learns to score the preferred one higher, and the model is then tuned to earn a high
       score.

    Both are done here in miniature, on the same small model (MiniLM) and data as before, and measured. Both
    use LoRA (notebook 03): one small file holds what was learned.
    """),
    setup_cell("07 what comes next"),
    timing_cell("07_what_comes_next", """
    The long cells train one instruction-tuned LoRA and one reward model, in every mode in the top two layers
    (the layers below are cached, as in CPU mode in the other notebooks). The experiment over the number of
    training tasks trains six models per seed: in CPU mode it shows stored runs, in full mode (a GPU) it runs now.
    """),
    md("""
    ## Part 1 · Instruction tuning in miniature

    The paper's claim, from `ll.paper`:
    """),
    code("print(ll.paper.FACTS['flan_unseen'])"),
    md("""
    FLAN's model writes its answers. MiniLM is an encoder: it reads text and gives a vector, it does not write.
    So here the instruction becomes a second input, and the answer is **yes** or **no**:

        "Is this article about sport? [SEP] Arsenal won again on Saturday …"   →   yes

    `[SEP]` is BERT's separator token between two inputs. A model that reads such a pair and answers is called
    a *cross-encoder*; zero-shot text classifiers built on NLI models work the same way.

    Every class of the data we already have becomes a **question**, in four phrasings ("Is this article about
    business?", "Would a reader file this under business?", …). The model is trained on some questions and
    tested on questions it never saw answered: that is **zero-shot** accuracy (no training example of that
    question at all). The last phrasing of every question is also kept back, to test a new *wording* of a
    question the model knows.
    """),
    code("""
    tasks = ll.instruct.source_tasks()                 # tweets with 3 labels, BBC News with 5 topics
    recipe = ll.instruct.instruct_recipe()
    print(f"held out (never trained on): {', '.join(ll.instruct.HELD_OUT)}")
    wordings = len(ll.instruct.QUESTIONS["positive"].phrasings)
    print(f"  {'question':13s}  {'role':8s}  asked as (1 of {wordings} wordings)")
    for name, q in ll.instruct.QUESTIONS.items():
        role = "held out" if name in ll.instruct.HELD_OUT else "trained"
        print(f"  {name:13s}  {role:8s}  {q.phrasings[0]}")
    print(f"kept back, to test a new wording (the last of the {wordings}):")
    for name, q in ll.instruct.QUESTIONS.items():
        print(f"  {name:13s}  {q.phrasings[-1]}")
    """),
    md("""
    ### Keep the unseen task unseen

    A subtle point decides whether the test is honest. Training on "Is this article about business?" needs
    "no" examples: articles of the other topics, sport among them. Then the model sees many sport articles, all
    answered "no". At test time, "Is this article about sport? [SEP] (a sport article)" — does it answer from
    the question, or from its habit "sport article → no"?

    So the classes of the held-out questions are kept out of training entirely: their texts do not appear,
    not even as a "no". The experiment further down measures what happens when they leak in.

    ### Exercise 7.1 — keep the held-out classes out

    Given the texts and labels of a training split, the class names, and the classes of the held-out
    questions, return the texts and labels without any text of a held-out class.
    """),
    Exercise(
        student="""
        def hide_held_out(texts: list[str], labels: list[int], label_names: list[str],
                          held_out: list[str]) -> tuple[list[str], list[int]]:
            # TODO: which label numbers belong to the held-out class names?
            # TODO: keep each (text, label) pair whose class is not held out, in the same order
            raise NotImplementedError
        """,
        solution="""
        def hide_held_out(texts: list[str], labels: list[int], label_names: list[str],
                          held_out: list[str]) -> tuple[list[str], list[int]]:
            hidden = {label_names.index(name) for name in held_out}
            kept = [(t, y) for t, y in zip(texts, labels) if y not in hidden]
            return [t for t, _ in kept], [y for _, y in kept]
        """,
    ),
    hint("""
    `label_names.index("sports")` gives the number that stands for sport in `labels`. Walk through
    `zip(texts, labels)` once and keep the pairs whose number is not one of the hidden ones; then split the
    kept pairs into two lists again.
    """),
    code("ll.checks.check_hide_held_out(hide_held_out);"),
    md("""
    The library does the same when it builds the instruction task (`ll.instruct.instruction_task`). Here is
    what the model reads: the questions of the six training questions, half answered yes and half no.
    """),
    code("""
    train_questions = list(ll.instruct.TRAIN_SETS[6])
    task = ll.instruct.instruction_task(train_questions, list(ll.instruct.HELD_OUT), tasks, recipe.n_train,
                                        recipe.n_test, max_length=recipe.max_length)
    print(f"training: {len(task.train):,} examples of {len(train_questions)} questions; "
          f"zero-shot test: {len(task.test):,} examples of {len(ll.instruct.HELD_OUT)} unseen questions")
    for text, answer in list(zip(task.train.texts, task.train.labels))[:4]:
        print(f"  {task.label_names[answer]:>3s} ← {text[:110]}…")
    bbc = tasks["bbc"]
    seen_texts = {t.split(ll.instruct.SEP, 1)[1] for t in task.train.texts}
    leaked = sum(bbc.label_names[y] in ("sports", "tech") for t, y in zip(bbc.train.texts, bbc.train.labels)
                 if t in seen_texts)
    print(f"sport or tech articles among the training texts: {leaked}")
    """),
    *predict("""
    The model below is instruction-tuned on the six training questions. On the two questions it never saw
    (sport, tech), will its answers be **below** chance, **at** chance (50 %: the test is half yes, half no)
    or **above** chance? Write `"below"`, `"at"` or `"above"`.
    """, name="guess_zero_shot", example='"above"'),
    md("""
    **What you should see:** before training, about 50 % on the unseen questions (the yes/no head starts
    random). After training, the seen questions well above 50 %, and the unseen questions in the range of the
    stored runs further down. The training takes the longest of this notebook (the timing note at the top says
    how long on a CPU); the cell prints its settings first.
    """),
    code("""
    print(f"LoRA r = {recipe.r} in the top {recipe.top} layers, {recipe.steps} steps × {recipe.batch_size}, "
          f"lr {recipe.lr:g}, question + text cut to {recipe.max_length} tokens")
    model = ll.instruct.instruction_model(recipe)
    seen = ll.instruct.instruction_split(train_questions, tasks, "test", recipe.n_test // 4)
    new_wording = ll.instruct.instruction_split(train_questions, tasks, "test", recipe.n_test // 4,
                                                held_out_phrasing=True)
    for split in (seen, new_wording):
        split.max_length = recipe.max_length
    tests = {"seen questions": seen, "seen questions, new wording": new_wording, "unseen questions": task.test}
    untrained = ll.evaluate(model, task.test)["accuracy"]
    history = ll.lecture.train_or_load("instructions_6", model, task, ll.instruct.train_config(recipe))
    print(f"run: {history.source}, {history.seconds:.0f} s; untrained, on the unseen questions: {untrained:.1%}")
    after = {name: ll.evaluate(model, split)["accuracy"] for name, split in tests.items()}
    for name, split in tests.items():
        noise = ll.metrics.noise_band(0.5, len(split))
        print(f"  {name:27s} {after[name]:6.1%}  ({len(split):,} examples; chance 50 ± {100 * noise:.1f})")
    import pathlib, tempfile
    size = ll.save_adapter(model, pathlib.Path(tempfile.mkdtemp()) / "instructions.safetensors")
    print(f"everything learned, for all {len(train_questions)} questions: one file of {size / 1024:.0f} KB "
          "(LoRA and the yes/no head)")
    zero_shot = after["unseen questions"]
    noise = ll.metrics.noise_band(0.5, len(task.test))
    answer = "above" if zero_shot > 0.5 + noise else "below" if zero_shot < 0.5 - noise else "at"
    ll.checks.reveal(guess_zero_shot, answer, "unseen questions against chance",
                     f"{zero_shot:.1%} on questions never trained on; 'at' means within ±{100 * noise:.1f} of 50 %");
    """),
    md("""
    ### Do more training tasks help?

    FLAN's main finding is that held-out accuracy grows with the number of training tasks. Here: the same
    recipe, trained on 1, 2, 3 and 6 questions, always tested on the same two unseen questions, over several
    seeds. Two more rows help to read them: **leaky** (6 questions, but the sport and tech articles kept as
    "no" answers — Exercise 7.1 not done) and **trained on them** (the two test questions in training too:
    what the model reaches when it is *not* zero-shot).
    """),
    code("""
    from lesson_lib import plots, widgets

    sweep = ll.results.get("instruct_tasks")
    print(sweep["source"])
    arms = {}
    for row in sweep["rows"]:
        arms.setdefault(row["arm"], []).append(row)
    print(f"  {'trained on':16s} {'questions':>9s}  {'unseen questions':>18s}  {'new wording':>11s}")
    for arm, runs in arms.items():
        held = ll.metrics.seed_summary([r["held_out"] for r in runs])
        spread = f"({100 * held['low']:.1f}–{100 * held['high']:.1f})" if held["seeds"] > 1 else "(one run)"
        wording = [r["new_phrasing"] for r in runs if r["new_phrasing"] is not None]
        wording = f"{sum(wording) / len(wording):.1%}" if wording else "–"
        print(f"  {arm:16s} {runs[0]['questions']:>9d}  {held['mean']:>6.1%} {spread:>11s}  {wording:>11s}")
    print(f"  ({held['seeds']} seed{'s' if held['seeds'] > 1 else ''} per row, in brackets the lowest and the "
          f"highest;\\n   {runs[0]['test_size']} test examples; chance is 50 %)")
    widgets.FigureView(plots.instruction_curve(sweep["rows"])).widget
    """),
    md("""
    Read the last column ("new wording") with care: each row asks its *own* questions in the kept-back
    wording, so the rows with the three sentiment questions (6 and more) are tested on harder questions than
    the rows with topics only. Compare rows in the "unseen questions" column: those are the same two questions for every row.

    The verdicts, judged the way notebook 06 taught: a difference counts only when it is larger than what the
    seeds alone move each arm.
    """),
    code("""
    def held(arm):
        return [r["held_out"] for r in arms.get(arm, [])]

    def verdict_line(a, b, what):
        v, yardstick = ll.metrics.judge(held(a), held(b), arms[a][0]["test_size"])
        result = {"a": f"{a} is better", "b": f"{b} is better", "tie": "a tie"}[v]
        return f"{what}: {result} ({ll.metrics.seed_summary(held(a))['mean']:.1%} vs " \\
               f"{ll.metrics.seed_summary(held(b))['mean']:.1%}, judged against {yardstick})"

    most = str(max(k for k in ll.instruct.TRAIN_SETS if str(k) in arms))
    comparisons = {"more tasks": (most, "1", f"{most} training questions against 1"),
                   "tuned": (most, "untrained", "instruction-tuned against untrained"),
                   "leak": (most, "leaky", "held-out classes kept out against leaked in"),
                   "ceiling": ("trained on them", most, "trained on the test questions against zero-shot")}
    lines = {key: verdict_line(a, b, what) for key, (a, b, what) in comparisons.items()
             if a in arms and b in arms and a != b}
    for line in lines.values():
        ll.verdict(line)
    """),
    md("""
    ### Question to think about

    The model trained on one question learned "is this a business article?", not "does this text match the
    question?". What would you have to add to the training questions to make *reading the question* the only
    way to lower the loss? (Think of FLAN's 60 datasets in 12 task clusters, and of what the leaky row shows.)
    """),
    md("""
    ## Part 2 · Learning from preferences in miniature

    The paper's result, from `ll.paper`:
    """),
    code("print(ll.paper.FACTS['instructgpt_preference'])"),
    md("""
    InstructGPT is built in three steps. This notebook builds the middle one, a **reward model**, and uses it
    in the simplest way there is (best-of-n) instead of the third:
    """),
    code("ll.diagrams.feedback()"),
    md("""
    A reward model gives a text one number, r(text). It is trained on pairs (preferred, rejected) with the
    **Bradley–Terry** loss

    $$\\mathcal{L} = -\\log \\sigma\\big(r(y^+) - r(y^-)\\big),$$

    where σ is the sigmoid. It is small when the preferred text scores clearly higher, and log 2 ≈ 0.693 when
    the two scores are equal. Only the *difference* of two scores matters: adding 5 to every reward changes
    nothing.

    **Where the pairs come from.** InstructGPT's came from people comparing answers. Ours come from labels the
    data already has, and it is worth saying exactly how: the instruction is "write something positive", and
    any positive tweet is preferred to any negative tweet. So this reward model can only learn sentiment; it
    learns nothing about helpfulness or truth.
    """),
    code("""
    tweets = ll.load_task("tweets")                        # negative vs positive tweets
    pairs = ll.instruct.preference_pairs(tweets, "positive", "train", n=400)
    test_pairs = ll.instruct.preference_pairs(tweets, "positive", "test", n=300, seed=1)
    for good, bad in pairs[:2]:
        print(f"preferred: {good[:80]!r}\\n rejected: {bad[:80]!r}\\n")
    print(f"{len(pairs)} training pairs, {len(test_pairs)} test pairs (from the test split, never trained on)")
    """),
    md("""
    ### Exercise 7.2 — the Bradley–Terry loss

    `chosen` and `rejected` are tensors of rewards, one per pair. Return the loss above, averaged over the
    pairs, as a tensor (so that training can call `.backward()` on it). The cell after the checker trains the
    reward model with **your** loss.
    """),
    Exercise(
        student="""
        import torch
        import torch.nn.functional as F

        def bt_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
            # TODO: how much higher is each preferred reward than its rejected one?
            # TODO: turn that margin into the probability that the preferred one wins, and take −log of it
            #       (F.logsigmoid computes log σ(x) without overflow)
            # TODO: one number for the batch
            raise NotImplementedError
        """,
        solution="""
        import torch
        import torch.nn.functional as F

        def bt_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
            return -F.logsigmoid(chosen - rejected).mean()
        """,
    ),
    hint("""
    The margin is `chosen - rejected`. σ(margin) is the model's probability that the preferred text wins, so
    the loss is `-log σ(margin)`; `F.logsigmoid(margin)` is `log σ(margin)`. Finish with `.mean()`.
    """),
    code("ll.checks.check_bradley_terry(bt_loss);"),
    *predict("""
    After training, on the 300 test pairs, how often will the reward model score the positive tweet higher
    than the negative one? Write a share between 0 and 1 (chance is 0.5).
    """, name="guess_pairwise", example="0.8"),
    md("""
    **What you should see:** about a minute on a laptop CPU: the pairwise accuracy before training (near 50 %:
    the reward head starts random), the loss over the first and the last steps (it should fall well below log 2
    = 0.693), then your guess beside the measurement.
    """),
    code("""
    try:
        bt_loss(torch.zeros(2), torch.zeros(2))
        loss_fn = bt_loss
    except NotImplementedError:
        loss_fn = ll.instruct.bradley_terry_loss
        print("(bt_loss is not written yet: training with the library's loss)")
    rm = ll.instruct.reward_model(recipe)
    print(f"pairwise accuracy before training: {ll.instruct.pairwise_accuracy(rm, test_pairs[:100]):.0%} "
          "(first 100 test pairs)")
    rm_steps = ll.modes.by_mode(quick=2, cpu=40, full=80)
    losses = ll.instruct.train_reward_model(rm, pairs, steps=rm_steps, lr=recipe.lr, loss_fn=loss_fn)
    pairwise = ll.instruct.pairwise_accuracy(rm, test_pairs)
    print(f"loss: first steps {sum(losses[:5]) / len(losses[:5]):.3f}, last steps {sum(losses[-5:]) / len(losses[-5:]):.3f} "
          f"(log 2 = 0.693 means no preference)")
    ll.checks.reveal(guess_pairwise, pairwise, "pairwise accuracy on the test pairs",
                     "a reward model trained on pairs made from sentiment labels is a sentiment scorer: it does "
                     "about as well as a sentiment classifier");
    """),
    md("""
    ### Best-of-n: the simplest use of a reward model

    A generator would write n answers and the reward model would keep the best. We have no generator, so the
    n "answers" are n tweets drawn at random from the test split, and the question is: how often is the one
    the reward model keeps positive? Beside it, a random pick among the same n, and the ceiling: how often
    there is a positive tweet among the n at all.

    **What you should see:** the random pick near the share of positive tweets (50 %), best-of-n close to the
    ceiling, and both rising with n.
    """),
    code("""
    candidates, labels = tweets.test.texts, tweets.test.labels
    positive = tweets.label_names.index("positive")
    scores = ll.instruct.all_rewards(rm, candidates)      # every tweet scored once
    best = {}
    for n in (1, 2, 4, 8):
        best[n] = ll.instruct.best_of_n(rm, candidates, labels, positive, n=n, scores=scores)
        b = best[n]
        print(f"n = {n}: reward model's pick positive {b['best_of_n']:.0%}   random pick {b['random']:.0%}   "
              f"ceiling {b['ceiling']:.0%}   ({b['trials']} draws)")
    """),
    md("""
    **What this miniature leaves out.** There is no text generation: best-of-n chooses among tweets that already
    exist. There is no PPO, so nothing is trained to please the reward model; with PPO, a generator can learn
    to exploit the reward model's blind spots (*reward hacking*), which is why InstructGPT adds a penalty for
    drifting far from the supervised model. The preferences are labels, not people: real comparisons disagree,
    depend on the person, and cost money for every pair.

    ### Question to think about

    Our reward model was trained with "positive beats negative". What would best-of-n pick if the instruction
    were "write something *polite*", and why can it not know? What would you need to collect to train a reward
    model for that instruction?
    """),
    code("""
    unseen = ll.metrics.seed_summary(held(most))
    ll.summary(
        f"Instruction-tuned on {len(train_questions)} questions here: {after['unseen questions']:.1%} on two "
        f"questions it never saw (untrained {untrained:.1%}; chance 50 %).",
        f"Stored runs: {most} training questions give {unseen['mean']:.1%} on the unseen questions; "
        + "; ".join(lines[k] for k in ("more tasks", "leak") if k in lines) + ".",
        f"{ll.paper.FACTS['flan_unseen'].says}.",
        f"Reward model from label-made pairs: {pairwise:.1%} pairwise accuracy on {len(test_pairs)} test pairs; "
        f"best-of-8 picks a positive tweet {best[8]['best_of_n']:.0%} of the time (random {best[8]['random']:.0%}).",
        f"InstructGPT: {ll.paper.FACTS['instructgpt_preference'].says}.",
    )
    """),
]
