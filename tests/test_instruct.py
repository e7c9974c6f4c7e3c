"""Lesson 07's miniature instruction tuning and reward model (fake tasks and the tiny model: fast)."""

import pytest
import torch

import lesson_lib as ll
from lesson_lib import instruct
from lesson_lib.data import Split, Task

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]  # the BBC data's class names
MOODS = ["negative", "neutral", "positive"]


def _task(name, labels, n=40):
    def split(k):
        texts = [f"{labels[i % len(labels)]} text number {i}" for i in range(k)]
        return Split(texts, [i % len(labels) for i in range(k)])
    return Task(name, split(n), split(n // 2), split(n // 2), list(labels), 32)


TASKS = {"bbc": _task("bbc", TOPICS), "tweets3": _task("tweets3", MOODS)}


def test_a_question_is_answered_yes_by_its_class_and_no_by_the_others():
    split = instruct.instruction_split(["sport"], TASKS, "train", 8)
    assert sorted(split.labels) == [0, 0, 0, 0, 1, 1, 1, 1]
    for text, answer in zip(split.texts, split.labels, strict=True):
        question, body = text.split(instruct.SEP)
        assert question in instruct.QUESTIONS["sport"].phrasings[:-1]
        assert body.startswith("sports") == (answer == 1)


def test_held_out_phrasing_and_held_out_questions():
    held = instruct.instruction_split(["positive"], TASKS, "test", 6, held_out_phrasing=True)
    assert {t.split(instruct.SEP)[0] for t in held.texts} == {instruct.QUESTIONS["positive"].phrasings[-1]}
    task = instruct.instruction_task(["positive", "negative", "business"], ["sport", "tech"], TASKS, n_train=12,
                                     n_test=8)
    train_questions = {t.split(instruct.SEP)[0] for t in task.train.texts}
    test_questions = {t.split(instruct.SEP)[0] for t in task.test.texts}
    assert not train_questions & test_questions  # zero-shot: no test question was ever trained on
    assert task.label_names == ["no", "yes"]
    with pytest.raises(ValueError, match="unknown question"):
        instruct.instruction_split(["weather"], TASKS, "train", 4)


def test_bradley_terry_loss():
    assert float(instruct.bradley_terry_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(0.6931, abs=1e-4)
    assert float(instruct.bradley_terry_loss(torch.full((3,), 10.0), torch.zeros(3))) < 1e-3
    assert float(instruct.bradley_terry_loss(torch.zeros(3), torch.full((3,), 10.0))) > 9


def test_preference_pairs_prefer_the_class_asked_for():
    pairs = instruct.preference_pairs(TASKS["tweets3"], "positive", n=20)
    assert all(good.startswith("positive") and not bad.startswith("positive") for good, bad in pairs)


def test_a_reward_model_learns_its_preferences_on_the_tiny_model():
    torch.manual_seed(0)
    model, _ = ll.load_base(tiny=True, num_labels=1)
    ll.inject(model, ll.LoRAConfig(r=4))
    pairs = [("a great happy day", "an awful sad day"), ("great fun", "sad and awful")] * 8
    before = instruct.pairwise_accuracy(model, pairs)
    losses = instruct.train_reward_model(model, pairs, steps=60, lr=1e-2, batch_size=8)
    assert losses[-1] < losses[0]
    assert instruct.pairwise_accuracy(model, pairs) == 1.0 >= before
    picks = instruct.best_of_n(model, ["a great happy day", "an awful sad day"] * 10, [1, 0] * 10, target=1, n=4,
                               trials=20)
    assert picks["best_of_n"] == picks["ceiling"] > picks["random"]  # it picks a happy text whenever there is one


def test_a_batch_of_a_list_keeps_every_text():
    model, _ = ll.load_base(tiny=True)
    texts = [f"text {i}" for i in range(40)]
    assert ll.batch(model, texts)["input_ids"].shape[0] == 40
    assert ll.batch(model, texts, n=5)["input_ids"].shape[0] == 5


def test_every_question_names_a_class_of_the_real_data():
    """The questions ask about classes by the data's own names ("sports", not "sport")."""
    for q in instruct.QUESTIONS.values():
        assert q.label in ll.load_task(q.source).label_names, q


def test_a_held_out_class_never_appears_in_training_unless_asked_to_leak():
    task = instruct.instruction_task(["business", "politics"], ["sport"], TASKS, n_train=40, n_test=8)
    bodies = [t.split(instruct.SEP)[1] for t in task.train.texts + task.val.texts]
    assert bodies and not any(b.startswith("sports") for b in bodies)
    leaky = instruct.instruction_task(["business", "politics"], ["sport"], TASKS, n_train=40, n_test=8,
                                      hide_held_out=False)
    assert any(t.split(instruct.SEP)[1].startswith("sports") for t in leaky.train.texts)
    # the test still asks the held-out question, with yes answers from its own class
    assert all(t.split(instruct.SEP)[0] in instruct.QUESTIONS["sport"].phrasings for t in task.test.texts)


def test_reward_training_takes_the_students_loss_and_refuses_a_loss_per_pair():
    model = ll.load_base(tiny=True, num_labels=1)[0]
    ll.inject(model, ll.LoRAConfig(r=2, alpha=4))
    pairs = [("good text number 1", "bad text number 2")] * 4
    calls = []

    def loss(chosen, rejected):
        calls.append(len(chosen))
        return instruct.bradley_terry_loss(chosen, rejected)

    instruct.train_reward_model(model, pairs, steps=2, batch_size=2, loss_fn=loss)
    assert calls == [2, 2]
    with pytest.raises(ValueError, match="one number"):
        instruct.train_reward_model(model, pairs, steps=1, loss_fn=lambda c, r: c - r)


def test_instruction_curve_draws_seeds_means_and_the_extra_arms():
    from lesson_lib import plots

    rows = [{"arm": a, "questions": q, "held_out": h, "seed": s}
            for s in (0, 1) for a, q, h in (("untrained", 0, 0.5), ("1", 1, 0.5 + s / 10), ("6", 6, 0.8),
                                            ("leaky", 6, 0.5), ("trained on them", 8, 0.95))]
    fig = plots.instruction_curve(rows)
    names = [t.name for t in fig.data]
    assert names[:2] == ["one seed", "mean over seeds"]
    assert list(fig.data[1].x) == [0, 1, 6] and fig.data[1].y[1] == pytest.approx(0.55)
    assert "held-out texts leaked in as 'no'" in names and "trained on the test questions too" in names
