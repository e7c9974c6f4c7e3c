"""What comes after PEFT, in miniature: instruction tuning and learning from preferences (lesson 07).

**Instruction tuning** (FLAN, Wei et al. 2022) trains one model on many tasks, each written as an instruction,
so that it can follow instructions for tasks it never saw. MiniLM is an encoder, not a text generator, so here
the instruction is a second input and the answer is yes or no — a cross-encoder, the way NLI-style zero-shot
classifiers work:

    "Is this article about sport? [SEP] Arsenal won again on Saturday …"   →   yes / no

Every class of the data we already have becomes a *question* ("is this tweet positive?", "is this article about
tech?") with a few phrasings. Training on some questions and testing on questions the model never saw asks the
FLAN question: does training on instructions teach the model to answer *new* ones?

**Learning from preferences** (InstructGPT, Ouyang et al. 2022) first trains a *reward model* r(text) on pairs
(preferred, rejected) with the Bradley–Terry loss −log σ(r(y⁺) − r(y⁻)): the preferred text should score
higher. Here the pairs come honestly from labels the data already has: for "write something positive", any
positive tweet is preferred to any negative one. The simplest use of a reward model is best-of-n: generate n
candidates, keep the one it scores highest (PPO, which InstructGPT uses, instead trains the generator on it).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import Split, Task
from .inputs import batch as make_batch

SEP = " [SEP] "  # BERT's separator: the tokenizer reads it as its own [SEP] token between the two inputs


@dataclass(frozen=True)
class Question:
    """One yes/no question about a class of an existing task, in several phrasings.

    ``source``: the task whose texts it asks about; ``label``: the class that makes the answer "yes". The last
    phrasing is kept back from training, to test whether the model follows a wording it never saw."""

    name: str
    source: str
    label: str
    phrasings: tuple[str, ...]


def _topic(topic: str) -> tuple[str, ...]:
    return (f"Is this article about {topic}?", f"Does this text belong in the {topic} section of a newspaper?",
            f"Is the topic of this news story {topic}?", f"Would a reader file this under {topic}?")


QUESTIONS: dict[str, Question] = {q.name: q for q in (
    Question("positive", "tweets3", "positive", ("Is this tweet positive?", "Does the writer sound pleased?",
                                                 "Is the feeling in this message a good one?",
                                                 "Would you call this a happy tweet?")),
    Question("negative", "tweets3", "negative", ("Is this tweet negative?", "Is the writer unhappy or angry?",
                                                 "Does this message complain about something?",
                                                 "Would you call this an upset tweet?")),
    Question("neutral", "tweets3", "neutral", ("Is this tweet neutral?", "Does the writer show no strong feeling?",
                                               "Is this message just stating facts, without emotion?",
                                               "Would you call this a matter-of-fact tweet?")),
    *(Question(name, "bbc", label, _topic(words))  # label: the class name in the BBC data
      for name, label, words in (("business", "business", "business"),
                                 ("entertainment", "entertainment", "entertainment"),
                                 ("politics", "politics", "politics"), ("sport", "sports", "sport"),
                                 ("tech", "tech", "technology"))),
)}


def _examples(question: Question, split: Split, label_names: list[str], n: int, phrasings: tuple[str, ...],
              rng: random.Random, hidden: frozenset[str] = frozenset()) -> list[tuple[str, int]]:
    """n examples for one question: half whose answer is yes (texts of its class), half no (other classes).

    ``hidden``: class names whose texts never appear (the classes of held-out questions, kept out of training)."""
    target = label_names.index(question.label)
    rows = [(t, y) for t, y in zip(split.texts, split.labels, strict=True) if label_names[y] not in hidden]
    yes = [t for t, y in rows if y == target]
    no = [t for t, y in rows if y != target]
    half = min(n // 2, len(yes), len(no))
    picked = [(t, 1) for t in rng.sample(yes, half)] + [(t, 0) for t in rng.sample(no, half)]
    return [(f"{rng.choice(phrasings)}{SEP}{text}", answer) for text, answer in picked]


def instruction_split(questions: list[str], tasks: dict[str, Task], part: str, n_per_question: int,
                      held_out_phrasing: bool = False, seed: int = 0, hide: tuple[str, ...] = ()) -> Split:
    """Yes/no examples for ``questions`` from split ``part`` ("train", "val" or "test") of their tasks.

    ``held_out_phrasing``: only the phrasing kept back from training (is a new wording understood?).
    ``hide``: questions whose class's texts must not appear at all, not even as a "no" answer."""
    hidden = frozenset(QUESTIONS[h].label for h in hide if h in QUESTIONS)
    rng = random.Random(seed)
    rows: list[tuple[str, int]] = []
    for name in questions:
        if name not in QUESTIONS:
            raise ValueError(f"unknown question {name!r}; questions: {', '.join(QUESTIONS)}")
        q = QUESTIONS[name]
        task = tasks[q.source]
        phrasings = q.phrasings[-1:] if held_out_phrasing else q.phrasings[:-1]
        rows += _examples(q, getattr(task, part), task.label_names, n_per_question, phrasings, rng, hidden)
    rng.shuffle(rows)
    return Split([t for t, _ in rows], [y for _, y in rows])


def instruction_task(train_questions: list[str], test_questions: list[str], tasks: dict[str, Task],
                     n_train: int = 400, n_test: int = 200, held_out_phrasing: bool = False, seed: int = 0,
                     max_length: int = 128, hide_held_out: bool = True) -> Task:
    """A yes/no task: train (and validate) on ``train_questions``, test on ``test_questions``.

    When the test questions are not among the training ones, the test accuracy is zero-shot: the model never
    saw those questions answered. A held-out question's class is held out entirely: its texts are not used in
    training even as "no" examples of other questions (otherwise the model learns "a sport article → no" and
    the test of "is this about sport?" measures that habit, not whether the model follows the new question).
    ``hide_held_out=False`` keeps them, to measure that habit."""
    unseen = tuple(q for q in test_questions if q not in train_questions) if hide_held_out else ()
    train = instruction_split(train_questions, tasks, "train", n_train, seed=seed, hide=unseen)
    val = instruction_split(train_questions, tasks, "val", max(n_test // 2, 8), seed=seed, hide=unseen)
    test = instruction_split(test_questions, tasks, "test", n_test, held_out_phrasing, seed=seed)
    return Task("instructions", train, val, test, ["no", "yes"], max_length)


# --- a reward model from preferences -----------------------------------------------------------------------

def preference_pairs(task: Task, preferred: str, part: str = "train", n: int = 200,
                     seed: int = 0) -> list[tuple[str, str]]:
    """(preferred, rejected) pairs built from labels: a text of class ``preferred`` beats one of any other class."""
    split = getattr(task, part)
    target = task.label_names.index(preferred)
    good = [t for t, y in zip(split.texts, split.labels, strict=True) if y == target]
    bad = [t for t, y in zip(split.texts, split.labels, strict=True) if y != target]
    if not good or not bad:
        raise ValueError(f"the {part} split of {task.name!r} needs texts of {preferred!r} and of other classes")
    rng = random.Random(seed)
    return [(rng.choice(good), rng.choice(bad)) for _ in range(n)]


def rewards(model: nn.Module, texts: list[str]) -> torch.Tensor:
    """r(text) for each text: the model's single output (a model loaded with ``num_labels=1``)."""
    return model(**make_batch(model, texts)).logits[:, 0]


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """−log σ(r⁺ − r⁻), averaged: small when the preferred text scores clearly higher, log 2 when they tie."""
    return -F.logsigmoid(chosen - rejected).mean()


def reward_model(recipe: InstructRecipe | None = None, seed: int = 0):
    """MiniLM with a scalar head (one output: the reward) and LoRA in the top layers, as lesson 07 trains it."""
    return _with_top_lora(1, recipe or instruct_recipe(), seed)


def train_reward_model(model: nn.Module, pairs: list[tuple[str, str]], steps: int = 100, lr: float = 1e-3,
                       batch_size: int = 16, seed: int = 0, loss_fn=None) -> list[float]:
    """Train the trainable parameters of ``model`` (e.g. LoRA + its scalar head) on preference pairs; the losses.

    ``loss_fn(chosen, rejected)``: the loss on a batch's rewards (default: ``bradley_terry_loss``; lesson 07's
    exercise passes the student's own)."""
    loss_fn = loss_fn or bradley_terry_loss
    if len(pairs) < 1:
        raise ValueError("no preference pairs to train on: build some with preference_pairs(task, ...)")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing in this model trains: inject LoRA (or another method) first")
    opt = torch.optim.AdamW(params, lr=lr)
    rng = random.Random(seed)
    losses = []
    model.train()
    for _ in range(steps):
        chunk = rng.sample(pairs, min(batch_size, len(pairs)))
        r = rewards(model, [c for c, _ in chunk] + [r for _, r in chunk])
        loss = loss_fn(r[:len(chunk)], r[len(chunk):])
        if loss.dim() != 0:
            raise ValueError(f"the loss must be one number (a 0-d tensor), got shape {tuple(loss.shape)}: "
                             "average it over the batch")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def pairwise_accuracy(model: nn.Module, pairs: list[tuple[str, str]], batch_size: int = 64) -> float:
    """The share of pairs where the preferred text gets the higher reward (chance: 50 %)."""
    chosen = all_rewards(model, [c for c, _ in pairs], batch_size)
    rejected = all_rewards(model, [r for _, r in pairs], batch_size)
    return int((chosen > rejected).sum()) / len(pairs)


@torch.no_grad()
def all_rewards(model: nn.Module, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """r(text) for every text, computed in batches (on the CPU, as a 1-D tensor)."""
    model.eval()
    return torch.cat([rewards(model, texts[i:i + batch_size]).float().cpu() for i in range(0, len(texts), batch_size)])


@torch.no_grad()
def best_of_n(model: nn.Module, candidates: list[str], labels: list[int], target: int, n: int = 8,
              trials: int = 1000, seed: int = 0, scores: torch.Tensor | None = None) -> dict:
    """Draw n candidates, keep the one the reward model scores highest; how often is it of class ``target``?

    Compared with keeping a random one of the n (the base rate of ``target`` among the candidates), and with the
    ceiling: how often at least one of the n is of class ``target`` at all. Every candidate is scored once
    (``scores``: pass ``all_rewards(model, candidates)`` to reuse them across several n)."""
    if not 1 <= n <= len(candidates):
        raise ValueError(f"n must be between 1 and the number of candidates ({len(candidates)}), got {n}")
    scores = all_rewards(model, candidates) if scores is None else scores
    rng = random.Random(seed)
    picked_right = random_right = any_right = 0
    for _ in range(trials):
        idx = rng.sample(range(len(candidates)), n)
        best = max(idx, key=lambda i: float(scores[i]))
        picked_right += labels[best] == target
        random_right += labels[rng.choice(idx)] == target
        any_right += any(labels[i] == target for i in idx)
    return {"best_of_n": picked_right / trials, "random": random_right / trials, "ceiling": any_right / trials,
            "n": n, "trials": trials}


# --- the instruction-tuning experiment (stored, like notebook 06's) ----------------------------------------

HELD_OUT = ("sport", "tech")  # never trained on, not even their texts: the zero-shot test
TRAIN_SETS = {  # how many questions the model is instruction-tuned on → which ones (each set contains the last)
    1: ("business",),
    2: ("business", "politics"),
    3: ("business", "politics", "entertainment"),
    6: ("business", "politics", "entertainment", "positive", "negative", "neutral"),
}


@dataclass(frozen=True)
class InstructRecipe:
    """How lesson 07 instruction-tunes: LoRA r = 8 on query and value of the top ``top`` layers (the layers
    below are frozen and cached, ``lesson_lib/fast.py``) and a yes/no head. The same in CPU and full mode, so
    the stored runs are what a GPU computes too; quick mode is a few steps on a few examples."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 3e-3
    top: int = 2
    r: int = 8
    n_train: int = 400  # examples per training question (half yes, half no)
    n_test: int = 200  # per test question (BBC's test split has 60 articles per topic: 120 then)
    max_length: int = 96  # question + text, in tokens (BBC articles are cut; the topic is clear early on)


def instruct_recipe(mode: str | None = None) -> InstructRecipe:
    from . import modes

    return InstructRecipe(steps=2, n_train=16, n_test=8) if (mode or modes.mode()) == "quick" else InstructRecipe()


def source_tasks(mode: str | None = None) -> dict[str, Task]:
    """The tasks the questions ask about (tweets with three labels, BBC News), small in quick mode."""
    from . import modes
    from .data import load_task

    limit = 200 if (mode or modes.mode()) == "quick" else None
    return {name: load_task(name, limit=limit) for name in ("tweets3", "bbc")}


def _with_top_lora(num_labels: int, recipe: InstructRecipe, seed: int):
    """MiniLM with a fresh head of ``num_labels`` outputs and LoRA r (α = 2r) in the recipe's top layers."""
    from .config import LoRAConfig
    from .fast import top_layers
    from .models import load_base
    from .surgery import inject

    model, _ = load_base(num_labels=num_labels, seed=seed)
    inject(model, LoRAConfig(r=recipe.r, alpha=2 * recipe.r, layers=top_layers(model, recipe.top)), seed=seed)
    return model


def instruction_model(recipe: InstructRecipe, seed: int = 0):
    """MiniLM with a fresh yes/no head and LoRA in the top layers: the model lesson 07 instruction-tunes."""
    return _with_top_lora(2, recipe, seed)


def train_config(recipe: InstructRecipe, seed: int = 0, progress: bool = True):
    """The TrainConfig of the recipe: its steps, batch and learning rate, on the fast path (lower layers cached)."""
    from .config import TrainConfig

    return TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr, fast=True, eval_every=0,
                       progress=progress, seed=seed)


def instruction_tune(model: nn.Module, task: Task, recipe: InstructRecipe, seed: int = 0, progress: bool = True):
    """Train ``model`` on the instruction task with the recipe."""
    from .train import train

    return train(model, task, train_config(recipe, seed, progress))


def tasks_sweep(mode: str, seed: int = 0, progress: bool = True) -> dict:
    """Held-out accuracy against the number of training questions (FLAN's "more tasks help", in miniature).

    Rows: the untrained model (0 questions); LoRA tuned on 1, 2, 3 and 6 questions, tested zero-shot on the
    held-out questions and on the unseen phrasing of its own questions; "leaky": 6 questions but the held-out
    classes' texts kept as "no" answers; "trained on them": the held-out questions in training too (a ceiling)."""
    import time

    from .train import evaluate

    recipe = instruct_recipe(mode)
    tasks = source_tasks(mode)
    arms = [(k, qs, False) for k, qs in TRAIN_SETS.items()] + [("leaky", TRAIN_SETS[6], True),
                                                                ("trained on them", TRAIN_SETS[6] + HELD_OUT, False)]
    if mode == "quick":  # a stand-in for the tests: the smallest and the largest set
        arms = [arms[0], arms[3]]
    rows = []
    untrained = instruction_model(recipe, seed)
    zero = instruction_task(list(TRAIN_SETS[6]), list(HELD_OUT), tasks, recipe.n_train, recipe.n_test,
                            seed=seed, max_length=recipe.max_length)
    rows.append({"arm": "untrained", "questions": 0, "trained_on": [],
                 "held_out": evaluate(untrained, zero.test)["accuracy"], "new_phrasing": None,
                 "test_size": len(zero.test), "seconds": 0.0, "seed": seed})
    for arm, questions, leaky in arms:
        task = instruction_task(list(questions), list(HELD_OUT), tasks, recipe.n_train, recipe.n_test, seed=seed,
                                max_length=recipe.max_length, hide_held_out=not leaky)
        phrasing = instruction_split(list(questions), tasks, "test", recipe.n_test // 2, held_out_phrasing=True,
                                     seed=seed)
        phrasing.max_length = recipe.max_length
        model = instruction_model(recipe, seed)
        start = time.perf_counter()
        instruction_tune(model, task, recipe, seed, progress=progress)
        seconds = time.perf_counter() - start
        rows.append({"arm": str(arm), "questions": len(questions), "trained_on": list(questions),
                     "held_out": evaluate(model, task.test)["accuracy"],
                     "new_phrasing": evaluate(model, phrasing)["accuracy"], "test_size": len(task.test),
                     "seconds": round(seconds, 1), "seed": seed})
    return {"held_out": list(HELD_OUT), "recipe": asdict(recipe), "rows": rows}
