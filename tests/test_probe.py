"""An outside-in probe: the mistakes and call orders a student plausibly tries, from the outside only.

Every case checks two things: the message names the problem (and what to do), and the model is exactly
as it was before the call — modules, weights (a state-dict checksum), trainable flags, head width, logits.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

import lesson_lib as ll
from lesson_lib.io import AdapterFileError
from lesson_lib.tiny import tiny_task

TEXTS = ["the movie was great", "awful and boring", "i love this film", "not very good"]
QUIET = dict(eval_every=0, progress=False)


def state(model) -> tuple:
    """Everything a failed call must not change."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return (h.hexdigest(), [(n, type(m).__name__) for n, m in model.named_modules()],
            {n: p.requires_grad for n, p in model.named_parameters()}, model.config.num_labels,
            ll.logits(model, ll.batch(model, TEXTS)))


def same(a, b) -> bool:
    return a[:4] == b[:4] and torch.equal(a[4], b[4])


def refused(model, call, match, error=Exception):
    """``call()`` raises ``error`` matching ``match``, and ``model`` is exactly as before."""
    before = state(model)
    with pytest.raises(error, match=match):
        call()
    assert same(before, state(model))


@pytest.fixture
def bare():
    return ll.load_base(tiny=True)[0]


@pytest.fixture
def lora():
    model = ll.load_base(tiny=True)[0]
    ll.inject(model, ll.LoRAConfig(r=2))
    return model


@pytest.fixture
def unipelt():
    model = ll.load_base(tiny=True)[0]
    ll.inject(model, [ll.LoRAConfig(r=2), ll.AdapterConfig(bottleneck=4), ll.PrefixConfig(length=2)],
              gates=ll.GateConfig())
    return model


# --- building the wrong thing ---------------------------------------------------------------------------------

def test_a_config_class_instead_of_an_instance(bare):
    refused(bare, lambda: ll.inject(bare, ll.LoRAConfig), "inject takes LoRAConfig", TypeError)


def test_a_dict_instead_of_a_config(bare):
    refused(bare, lambda: ll.inject(bare, {"r": 8}), "inject takes LoRAConfig", TypeError)


def test_a_target_spelled_wrong_lists_the_real_names(bare):
    refused(bare, lambda: ll.inject(bare, ll.LoRAConfig(targets=("querry",))), "matches no module.*query")


def test_lora_twice_on_the_same_task(lora):
    refused(lora, lambda: ll.inject(lora, ll.LoRAConfig(r=4)), "already has \\['lora'\\]")


def test_gates_on_prompt_tuning_in_a_list(bare):
    refused(bare, lambda: ll.inject(bare, [ll.LoRAConfig(r=2), ll.PromptConfig(length=2)], gates=ll.GateConfig()),
            "prompt tuning is not gated")


def test_a_layer_that_does_not_exist_in_a_list_undoes_the_first_method(bare):
    refused(bare, lambda: ll.inject(bare, [ll.AdapterConfig(bottleneck=4), ll.LoRAConfig(r=2, layers=(7,))]),
            "do not exist; this model has layers 0..1")


def test_a_negative_seed(bare):
    refused(bare, lambda: ll.inject(bare, ll.LoRAConfig(r=2), seed=-1), "seed must be a non-negative integer")


def test_a_task_name_that_is_taken(lora):
    ll.inject(lora, ll.AdapterConfig(bottleneck=4), name="second")
    refused(lora, lambda: ll.inject(lora, ll.PrefixConfig(length=2), name="default"), "already exists; switch to it")


# --- training the wrong way --------------------------------------------------------------------------------------

def test_training_a_model_whose_head_has_other_labels(lora):
    refused(lora, lambda: ll.train(lora, tiny_task(n=32, num_labels=3), ll.TrainConfig(steps=1, **QUIET)),
            "3 labels; load the model with ll.load_base\\(num_labels=3\\)")


def test_training_with_every_parameter_frozen(bare):
    for p in bare.parameters():
        p.requires_grad_(False)
    refused(bare, lambda: ll.train(bare, tiny_task(n=32), ll.TrainConfig(steps=1, **QUIET)),
            "no parameter of this model requires grad")


def test_fast_true_where_the_fast_path_cannot_apply(bare):
    ll.inject(bare, ll.PromptConfig(length=2))  # the prompt enters below every layer: nothing can be cached
    refused(bare, lambda: ll.train(bare, tiny_task(n=32), ll.TrainConfig(steps=1, fast=True, **QUIET)),
            "fast=True\\) cannot be honoured: fast path off")


@pytest.mark.parametrize("make, words", [
    (lambda: ll.TrainConfig(steps=1.5), "steps must be a positive integer"),
    (lambda: ll.TrainConfig(lr="1e-3"), "lr must be a finite number > 0"),
    (lambda: ll.TrainConfig(weight_decay=-0.1), "weight_decay must be a finite number ≥ 0"),
    (lambda: ll.TrainConfig(seed=-3), "seed must be an integer ≥ 0"),
    (lambda: ll.TrainConfig(device="gpu"), "device must be None"),
    (lambda: ll.LoRAConfig(layers=5), "tuple of layer indices"),
    (lambda: ll.LoRAConfig(layers=(-1,)), "counted from 0"),
    (lambda: ll.PromptConfig(length=0), "prompt length must be a positive integer"),
])
def test_settings_a_student_might_mistype(make, words):
    with pytest.raises(ValueError, match=words):
        make()


# --- the wrong order of calls ---------------------------------------------------------------------------------------

def test_merge_then_switching_tasks_keeps_the_base_exact(lora):
    fingerprint = ll.checksum(lora)
    ll.merge(lora)
    ll.inject(lora, ll.AdapterConfig(bottleneck=4), name="second")  # a merged LoRA leaves W first
    assert ll.checksum(lora) == fingerprint
    ll.tasks.set_active(lora, "default")
    assert ll.checksum(lora) == fingerprint


def test_merging_a_gated_lora_is_refused_before_anything_is_merged(unipelt):
    refused(unipelt, lambda: ll.merge(unipelt), "gated LoRA layer cannot be merged", RuntimeError)
    assert ll.unmerge(unipelt) == 0


def test_folding_without_the_mlp_and_folding_twice(bare):
    refused(bare, lambda: ll.surgery.fold_prefix(bare), "no prefix MLP to fold")
    ll.inject(bare, ll.PrefixConfig(length=2, reparam=True, reparam_hidden=4))
    ll.surgery.fold_prefix(bare)
    refused(bare, lambda: ll.surgery.fold_prefix(bare), "no prefix MLP to fold")


def test_gates_set_to_impossible_values(unipelt):
    refused(unipelt, lambda: ll.surgery.set_gates(unipelt, lora=1.5), "numbers in \\[0, 1\\]")
    refused(unipelt, lambda: ll.surgery.set_gates(unipelt, adapter=[1.0]), "give one value or 2 values")
    refused(unipelt, lambda: ll.surgery.set_gates(unipelt, prompt=0.0), "no gated 'prompt'")
    refused(unipelt, lambda: ll.surgery.set_gates(unipelt, lora=0.0, adapter="off"), "numbers in \\[0, 1\\]")
    assert ll.surgery.read_gates(unipelt, ll.batch(unipelt, TEXTS))["lora"][0] not in (0.0, 1.0)  # nothing was set


def test_switching_to_a_task_that_does_not_exist(lora):
    refused(lora, lambda: ll.tasks.set_active(lora, "topic"),
            "no task named 'topic'; tasks on this model: \\['default'\\]")


def test_truncating_to_a_rank_above_r_puts_every_weight_back(lora):
    refused(lora, lambda: ll.analysis.accuracy_by_rank(lora, tiny_task(n=16).test, ks=(1, 3)),
            "k must be between 0 and r = 2")


def test_analysis_of_a_model_without_lora(bare):
    refused(bare, lambda: ll.analysis.delta_weights(bare), "no LoRA layers")
    refused(bare, lambda: ll.analysis.snapshot(bare, ["bert.pooler.nonsense"]), "no Linear layer named")


# --- files ------------------------------------------------------------------------------------------------------

def test_saving_a_model_without_a_method(bare, tmp_path):
    refused(bare, lambda: ll.save_adapter(bare, tmp_path / "x.safetensors"), "nothing to save")


def test_saving_to_a_folder(lora, tmp_path):
    refused(lora, lambda: ll.save_adapter(lora, tmp_path), "is a folder; give a file name")


def test_loading_the_same_file_twice_onto_one_model(lora, tmp_path):
    ll.save_adapter(lora, tmp_path / "a.safetensors")
    fresh = ll.load_base(tiny=True)[0]
    ll.load_adapter(fresh, tmp_path / "a.safetensors")
    refused(fresh, lambda: ll.load_adapter(fresh, tmp_path / "a.safetensors"), "already has a task named 'default'")


def test_loading_onto_another_base(lora, tmp_path):
    ll.save_adapter(lora, tmp_path / "a.safetensors")
    other = ll.load_base(tiny=True, seed=1)[0]
    with torch.no_grad():
        other.bert.embeddings.word_embeddings.weight.add_(1.0)  # another base model
    refused(other, lambda: ll.load_adapter(other, tmp_path / "a.safetensors"), "made for another base model")


def test_loading_a_text_file_and_a_missing_file(bare, tmp_path):
    (tmp_path / "notes.txt").write_text("not an adapter")
    refused(bare, lambda: ll.load_adapter(bare, tmp_path / "notes.txt"), "not a readable safetensors file",
            AdapterFileError)
    refused(bare, lambda: ll.load_adapter(bare, tmp_path / "nope.safetensors"), "no adapter file at", AdapterFileError)


def test_loading_a_safetensors_file_of_someone_else(bare, tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    refused(bare, lambda: ll.load_adapter(bare, tmp_path / "other.safetensors"), "not one written by ll.save_adapter",
            AdapterFileError)


def test_exporting_adapters_to_peft(bare, tmp_path):
    ll.inject(bare, ll.AdapterConfig(bottleneck=4))
    refused(bare, lambda: ll.export_peft(bare, tmp_path / "peft"), "writes a LoRA-only task")


# --- data and inputs --------------------------------------------------------------------------------------------------

def test_inputs_given_the_wrong_way(bare):
    refused(bare, lambda: ll.batch(bare, "one string"), "not one string")
    refused(bare, lambda: ll.batch(bare, []), "non-empty")
    refused(bare, lambda: ll.predict(bare, "one string"), "non-empty list of texts")


def test_tasks_asked_for_the_wrong_way():
    with pytest.raises(ValueError, match="unknown task 'tweet'; known tasks: tweets"):
        ll.load_task("tweet")
    with pytest.raises(ValueError, match="limit must be a positive number"):
        ll.load_task("tweets", limit=0)


def test_an_unknown_method_or_task_in_a_recipe():
    with pytest.raises(ValueError, match="unknown method 'loraa'"):
        ll.recipe("loraa")
    with pytest.raises(ValueError, match="no recipe for task 'sst2'"):
        ll.recipe("lora", "sst2")


def test_an_unknown_mode(monkeypatch):
    monkeypatch.setenv("LESSON_MODE", "fastest")
    with pytest.raises(ValueError, match="LESSON_MODE='fastest': choose one of quick, cpu, full"):
        ll.mode()
