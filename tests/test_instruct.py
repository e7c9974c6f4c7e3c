"""Lesson 07's miniature instruction tuning and reward model (fake tasks and the tiny model: fast)."""

import pytest
import torch

import lesson_lib as ll
from lesson_lib import instruct
from lesson_lib.data import Split, Task

TOPICS = ["business", "entertainment", "politics", "sport", "tech"]
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
        assert body.startswith("sport") == (answer == 1)


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
