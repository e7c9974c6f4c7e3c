"""Plug in, plug out: several tasks on one frozen base, switched with ll.tasks.set_active, each exactly itself."""

import dataclasses

import pytest
import torch

import lesson_lib as ll
from lesson_lib.tiny import tiny_batch, tiny_task

from .conftest import same_snapshot, snapshot

TRAIN = ll.TrainConfig(steps=40, lr=1e-2, batch_size=16, eval_every=0, progress=False, schedule="constant")


def logits(model, batch=None):
    model.eval()
    with torch.no_grad():
        return model(**(batch or tiny_batch())).logits


@pytest.fixture
def two_tasks(tiny):
    """A tiny base with "sentiment" (2 labels, adapter) and "topic" (3 labels, LoRA), both trained."""
    model, _ = tiny
    base = {"snapshot": snapshot(model), "logits": logits(model), "checksum": ll.checksum(model)}
    sentiment, topic = tiny_task(n=128, num_labels=2), tiny_task(n=128, num_labels=3)
    ll.inject(model, ll.AdapterConfig(bottleneck=8), name="sentiment")
    ll.train(model, sentiment, TRAIN)
    assert ll.checksum(model) == base["checksum"]
    seen = {"sentiment": (logits(model), ll.evaluate(model, sentiment.test))}
    ll.inject(model, ll.LoRAConfig(r=4, alpha=8), name="topic", num_labels=3)
    assert ll.checksum(model) == base["checksum"]
    ll.train(model, topic, TRAIN)
    seen["topic"] = (logits(model), ll.evaluate(model, topic.test))
    return model, base, seen, {"sentiment": sentiment, "topic": topic}


def test_tasks_are_listed_and_the_new_one_is_active(two_tasks):
    model, _, _, _ = two_tasks
    assert list(ll.tasks.names(model)) == ["sentiment", "topic"]
    assert ll.tasks.active_task(model) == "topic"
    assert [type(c) for c in ll.tasks.names(model)["sentiment"]] == [ll.AdapterConfig]
    assert [type(c) for c in ll.tasks.names(model)["topic"]] == [ll.LoRAConfig]


def test_the_lora_task_learned_something(two_tasks):
    """The LoRA task beats chance. (On this random tiny BERT the [CLS] features barely depend on the input,
    and adapters sit on a plateau for ~250 steps, so "sentiment" is only checked to stay exactly itself.)"""
    _, _, seen, _ = two_tasks
    assert seen["topic"][1]["accuracy"] > 1 / 3 + 0.2


def test_switching_back_and_forth_is_exact(two_tasks):
    model, base, seen, data = two_tasks
    for name in ["sentiment", "topic", "sentiment", "sentiment", "topic", "sentiment"]:
        ll.tasks.set_active(model, name)
        assert ll.tasks.active_task(model) == name
        assert model.config.num_labels == data[name].num_labels == model.num_labels
        assert torch.equal(logits(model), seen[name][0]), name
        assert ll.evaluate(model, data[name].test) == seen[name][1], name
        assert ll.checksum(model) == base["checksum"]


def test_training_one_task_leaves_the_other_alone(two_tasks):
    model, base, seen, data = two_tasks
    ll.tasks.set_active(model, "sentiment")
    ll.train(model, data["sentiment"], ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    ll.tasks.set_active(model, "topic")
    assert torch.equal(logits(model), seen["topic"][0])
    assert ll.checksum(model) == base["checksum"]


def test_only_the_active_task_trains(two_tasks):
    model, _, _, _ = two_tasks
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    kinds = ll.owners.classify_parameters(model)
    assert trainable == {n for n, k in kinds.items() if k in ("lora", "head")}
    ll.tasks.set_active(model, "sentiment")
    kinds = ll.owners.classify_parameters(model)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == \
        {n for n, k in kinds.items() if k in ("adapter", "head")}


@pytest.mark.parametrize("active", ["sentiment", "topic"])
def test_remove_after_two_tasks_restores_the_base(two_tasks, active):
    model, base, _, _ = two_tasks
    ll.tasks.set_active(model, active)
    ll.remove(model)
    assert same_snapshot(base["snapshot"], snapshot(model))
    assert torch.equal(logits(model), base["logits"])
    assert ll.tasks.names(model) == {} and ll.tasks.active_task(model) is None and model.num_labels == 2


def test_merged_lora_task_does_not_leak_into_the_next(two_tasks):
    model, base, seen, _ = two_tasks
    ll.merge(model)  # "topic" is active
    merged = logits(model)
    ll.tasks.set_active(model, "sentiment")
    assert torch.equal(logits(model), seen["sentiment"][0])
    ll.tasks.set_active(model, "topic")
    assert torch.allclose(logits(model), merged, atol=1e-5)
    ll.inject(model, ll.PromptConfig(length=2), name="third")  # from a merged task straight to a new one
    assert ll.checksum(model) == base["checksum"]


def test_a_task_with_trained_layernorms_keeps_them_to_itself(tiny):
    model, _ = tiny
    base_ln = ll.checksum(model)  # LayerNorms included
    ll.inject(model, ll.AdapterConfig(bottleneck=8, train_layernorm=True), name="ln")
    ll.train(model, tiny_task(), ll.TrainConfig(steps=5, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    ln_logits = logits(model)
    assert ll.checksum(model) != base_ln and ll.checksum(model, include_layernorm=False) == \
        ll.checksum(ll.load_base(tiny=True)[0], include_layernorm=False)
    ll.inject(model, ll.LoRAConfig(r=4), name="plain")
    assert ll.checksum(model) == base_ln  # the original LayerNorms are back for the other task
    plain = logits(model)
    ll.tasks.set_active(model, "ln")
    assert torch.equal(logits(model), ln_logits)
    ll.tasks.set_active(model, "plain")
    assert torch.equal(logits(model), plain) and ll.checksum(model) == base_ln


@pytest.mark.integration
def test_two_lora_tasks_on_minilm_switch_exactly():
    model, tok = ll.load_base()
    check = ll.checksum(model)
    tweets, bbc = ll.load_task("tweets", limit=200), ll.load_task("bbc", limit=100)
    bbc = dataclasses.replace(bbc, max_length=64)  # shorter articles: this test is about switching, not accuracy
    few = ll.TrainConfig(steps=2, lr=1e-3, batch_size=4, eval_every=0, eval_limit=10, progress=False)
    batch = dict(tok(["the flight was delayed for hours", "shares rose after the election"], padding=True,
                     return_tensors="pt"))
    ll.inject(model, ll.LoRAConfig(r=4, alpha=8), name="tweets")
    ll.train(model, tweets, few)
    seen = {"tweets": logits(model, batch)}
    ll.inject(model, ll.LoRAConfig(r=4, alpha=8), name="bbc", num_labels=bbc.num_labels)
    ll.train(model, bbc, few)
    seen["bbc"] = logits(model, batch)
    assert seen["bbc"].shape == (2, 5) and seen["tweets"].shape == (2, 2)
    for name in ["tweets", "bbc", "tweets", "bbc"]:
        ll.tasks.set_active(model, name)
        assert torch.equal(logits(model, batch), seen[name]), name
        assert ll.checksum(model) == check
    ll.remove(model)
    assert ll.checksum(model) == check
