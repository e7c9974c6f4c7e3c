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
from dataclasses import dataclass

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
    *(Question(topic, "bbc", topic, _topic("technology" if topic == "tech" else topic))
      for topic in ("business", "entertainment", "politics", "sport", "tech")),
)}


def _examples(question: Question, split: Split, label_names: list[str], n: int, phrasings: tuple[str, ...],
              rng: random.Random) -> list[tuple[str, int]]:
    """n examples for one question: half whose answer is yes (texts of its class), half no (other classes)."""
    target = label_names.index(question.label)
    yes = [t for t, y in zip(split.texts, split.labels, strict=True) if y == target]
    no = [t for t, y in zip(split.texts, split.labels, strict=True) if y != target]
    half = min(n // 2, len(yes), len(no))
    picked = [(t, 1) for t in rng.sample(yes, half)] + [(t, 0) for t in rng.sample(no, half)]
    return [(f"{rng.choice(phrasings)}{SEP}{text}", answer) for text, answer in picked]


def instruction_split(questions: list[str], tasks: dict[str, Task], part: str, n_per_question: int,
                      held_out_phrasing: bool = False, seed: int = 0) -> Split:
    """Yes/no examples for ``questions`` from split ``part`` ("train", "val" or "test") of their tasks.

    ``held_out_phrasing``: only the phrasing kept back from training (is a new wording understood?)."""
    rng = random.Random(seed)
    rows: list[tuple[str, int]] = []
    for name in questions:
        if name not in QUESTIONS:
            raise ValueError(f"unknown question {name!r}; questions: {', '.join(QUESTIONS)}")
        q = QUESTIONS[name]
        task = tasks[q.source]
        phrasings = q.phrasings[-1:] if held_out_phrasing else q.phrasings[:-1]
        rows += _examples(q, getattr(task, part), task.label_names, n_per_question, phrasings, rng)
    rng.shuffle(rows)
    return Split([t for t, _ in rows], [y for _, y in rows])


def instruction_task(train_questions: list[str], test_questions: list[str], tasks: dict[str, Task],
                     n_train: int = 400, n_test: int = 200, held_out_phrasing: bool = False, seed: int = 0,
                     max_length: int = 128) -> Task:
    """A yes/no task: train (and validate) on ``train_questions``, test on ``test_questions``.

    When the test questions are not among the training ones, the test accuracy is zero-shot: the model never
    saw those questions answered."""
    train = instruction_split(train_questions, tasks, "train", n_train, seed=seed)
    val = instruction_split(train_questions, tasks, "val", max(n_test // 2, 8), seed=seed)
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


def train_reward_model(model: nn.Module, pairs: list[tuple[str, str]], steps: int = 100, lr: float = 1e-3,
                       batch_size: int = 16, seed: int = 0) -> list[float]:
    """Train the trainable parameters of ``model`` (e.g. LoRA + its scalar head) on preference pairs; the losses."""
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
        loss = bradley_terry_loss(r[:len(chunk)], r[len(chunk):])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def pairwise_accuracy(model: nn.Module, pairs: list[tuple[str, str]], batch_size: int = 64) -> float:
    """The share of pairs where the preferred text gets the higher reward (chance: 50 %)."""
    model.eval()
    wins = 0
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        r = rewards(model, [c for c, _ in chunk] + [r for _, r in chunk])
        wins += int((r[:len(chunk)] > r[len(chunk):]).sum())
    return wins / len(pairs)


@torch.no_grad()
def best_of_n(model: nn.Module, candidates: list[str], labels: list[int], target: int, n: int = 8,
              trials: int = 100, seed: int = 0) -> dict:
    """Draw n candidates, keep the one the reward model scores highest; how often is it of class ``target``?

    Compared with keeping a random one of the n (the base rate of ``target`` among the candidates), and with the
    ceiling: how often at least one of the n is of class ``target`` at all."""
    model.eval()
    rng = random.Random(seed)
    picked_right = random_right = any_right = 0
    for _ in range(trials):
        idx = rng.sample(range(len(candidates)), n)
        r = rewards(model, [candidates[i] for i in idx])
        picked_right += labels[idx[int(r.argmax())]] == target
        random_right += labels[rng.choice(idx)] == target
        any_right += any(labels[i] == target for i in idx)
    return {"best_of_n": picked_right / trials, "random": random_right / trials, "ceiling": any_right / trials,
            "n": n, "trials": trials}
