"""The defects an outside probe found (issue 12), one test each: every one failed before its fix.

Each bad call must say what is wrong in words a student can act on and leave the model exactly as it was
(modules, weights, flags, head width and outputs: ``unchanged`` checks them after the test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lesson_lib as ll
from lesson_lib.tiny import tiny_task

from .conftest import same_snapshot, snapshot

TEXTS = ["the movie was great", "awful and boring", "i love this film", "not very good"]


def _logits(model):
    return ll.logits(model, ll.batch(model, TEXTS))


@pytest.fixture
def unchanged(tiny):
    model, _ = tiny
    snap, before = snapshot(model), _logits(model)
    yield model
    assert same_snapshot(snap, snapshot(model))
    assert torch.equal(_logits(model), before)


def _perturb_methods(model, seed=0, scale=0.2):
    """Random non-zero values in the methods' own parameters (not the head), so 'switched off' is a real test."""
    g = torch.Generator().manual_seed(seed)
    kinds = ll.owners.classify_parameters(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if kinds[name] not in ("base", "head", "layernorm"):
                p.add_(torch.randn(p.shape, generator=g) * scale)


# 1. nan and inf are refused ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: ll.LoRAConfig(alpha=math.nan), lambda: ll.LoRAConfig(alpha=math.inf),
                                  lambda: ll.TrainConfig(lr=math.inf), lambda: ll.TrainConfig(lr=math.nan),
                                  lambda: ll.TrainConfig(time_budget=math.nan),
                                  lambda: ll.TrainConfig(weight_decay=math.nan),
                                  lambda: ll.LoRAConfig(dropout=math.nan),
                                  lambda: ll.GateConfig(value=math.nan)])
def test_nan_and_inf_are_refused_with_a_message(make):
    with pytest.raises(ValueError, match=r"finite|must be in \[0, 1"):
        make()


# 2. LoRA on a projection that already carries an adapter --------------------------------------------------------

@pytest.mark.parametrize("together", [False, True], ids=["adapter then lora", "one list"])
def test_lora_goes_on_a_projection_that_already_has_an_adapter(tiny, together):
    model, _ = tiny
    base, fingerprint = _logits(model), ll.checksum(model)
    lora = ll.LoRAConfig(r=2, targets=("output", "ffn_output"))
    if together:
        report = ll.inject(model, [ll.AdapterConfig(bottleneck=4), lora])
    else:
        ll.inject(model, ll.AdapterConfig(bottleneck=4))
        report = ll.inject(model, lora)
    assert report.by_method["lora"] == 2 * (2 * (32 + 32) + 2 * (64 + 32))  # layers × Σ r × (in + out)
    assert ll.count_params(model).trainable == ll.metrics.formula_for(model)
    assert torch.equal(_logits(model), base)  # both are the identity at init
    ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=2, batch_size=8, eval_every=0, progress=False))
    assert ll.checksum(model) == fingerprint
    ll.remove(model)
    assert torch.equal(_logits(model), base)


# 3-6. empty, repeated and impossible arguments -------------------------------------------------------------------

def test_an_empty_list_of_methods_is_refused(unchanged):
    with pytest.raises(ValueError, match="at least one method config"):
        ll.inject(unchanged, [])


@pytest.mark.parametrize("make", [lambda: ll.AdapterConfig(layers=()), lambda: ll.PrefixConfig(layers=()),
                                  lambda: ll.LoRAConfig(layers=())])
def test_an_empty_layer_list_is_refused_naming_layers(make):
    with pytest.raises(ValueError, match=r"layers=\(\) names no layer"):
        make()


@pytest.mark.parametrize("make", [lambda: ll.LoRAConfig(layers=(0, 0)), lambda: ll.AdapterConfig(layers=[1, 1])])
def test_a_layer_named_twice_is_refused(make):
    with pytest.raises(ValueError, match="lists a layer twice"):
        make()


@pytest.mark.parametrize("n", [0, -1, 1, 2.0, True])
def test_impossible_numbers_of_labels_are_refused(unchanged, n):
    with pytest.raises(ValueError, match="num_labels must be a whole number of classes"):
        ll.inject(unchanged, ll.LoRAConfig(r=2), name="other", num_labels=n)


# 7. prompt tuning and the model's positions -----------------------------------------------------------------------

def test_a_prompt_longer_than_the_positions_is_refused_at_inject(unchanged):
    with pytest.raises(ValueError, match="at most 126 long"):
        ll.inject(unchanged, ll.PromptConfig(length=200))


def test_texts_are_cut_to_leave_room_for_the_prompt(tiny):
    model, _ = tiny
    ll.inject(model, ll.PromptConfig(length=10))
    long = ["word " * 10_000]
    for max_length in (128, 512):
        assert ll.predict(model, long, max_length=max_length).shape == (1, 2)
        assert ll.logits(model, ll.batch(model, long, max_length=max_length)).shape == (1, 2)
    task = tiny_task(n=16)
    task.test.texts[0] = "word " * 10_000
    task.test.max_length = 512
    assert 0 <= ll.evaluate(model, task.test)["accuracy"] <= 1


@pytest.mark.integration
def test_a_prompted_minilm_reads_a_very_long_text():
    model, _ = ll.load_base()
    ll.inject(model, ll.PromptConfig(length=10))
    assert ll.predict(model, ["word " * 10_000], max_length=512).shape == (1, 2)


# 8. training a merged LoRA ------------------------------------------------------------------------------------

def test_training_a_merged_lora_is_refused_and_says_unmerge(tiny):
    model, _ = tiny
    ll.inject(model, ll.LoRAConfig(r=2))
    ll.merge(model)
    snap = snapshot(model)
    with pytest.raises(ValueError, match=r"merged .* ll\.unmerge\(model\) first"):
        ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=2, batch_size=8, eval_every=0, progress=False))
    assert same_snapshot(snap, snapshot(model))


# 10. two gates in one layer -----------------------------------------------------------------------------------------

def test_every_gate_of_a_method_is_tracked_when_its_targets_have_two_widths(tiny):
    model, _ = tiny
    base = _logits(model)
    ll.inject(model, ll.LoRAConfig(r=2, targets=("query", "ffn_output")), gates=ll.GateConfig())
    assert ll.count_params(model).trainable == ll.metrics.formula_for(model) == 902
    _perturb_methods(model, scale=2.0)
    assert float((_logits(model) - base).abs().max()) > 1e-4
    ll.surgery.set_gates(model, lora=0.0)
    assert float((_logits(model) - base).abs().max()) < 1e-6  # every LoRA branch is off, in both widths
    gates = ll.surgery.read_gates(model, ll.batch(model, TEXTS))
    assert gates == {"lora": [0.0, 0.0]}
    ll.surgery.set_gates(model, lora=None)
    assert all(0 < v < 1 for v in ll.surgery.read_gates(model, ll.batch(model, TEXTS))["lora"])


# 12. clear messages, numpy integers, repeated calls ---------------------------------------------------------------

def test_a_peft_export_is_named_as_such_by_load_adapter(tiny, tmp_path):
    model, _ = tiny
    ll.inject(model, ll.LoRAConfig(r=2))
    folder = ll.export_peft(model, tmp_path / "peft")
    fresh, _ = ll.load_base(tiny=True)
    snap = snapshot(fresh)
    for path in (folder, folder / "adapter_model.safetensors"):
        with pytest.raises(ll.io.AdapterFileError, match=r"PEFT adapter.*PeftModel\.from_pretrained"):
            ll.load_adapter(fresh, path)
    assert same_snapshot(snap, snapshot(fresh))


def test_eval_limit_below_the_number_of_classes_names_eval_limit(unchanged):
    ll.surgery.freeze_base(unchanged)
    try:
        with pytest.raises(ValueError, match=r"eval_limit=1\) is smaller than the 2 classes"):
            ll.train(unchanged, tiny_task(n=32), ll.TrainConfig(steps=1, eval_limit=1, progress=False))
    finally:
        ll.remove(unchanged)
    with pytest.raises(ValueError, match="eval_limit must be a positive integer"):
        ll.TrainConfig(eval_limit=0)


@pytest.mark.parametrize("value", [None, -1, 2.5])
def test_eval_every_must_be_a_whole_number(value):
    with pytest.raises(ValueError, match=r"eval_every must be an integer ≥ 0"):
        ll.TrainConfig(eval_every=value)


def test_any_integral_number_is_accepted_and_stored_as_int():
    cfg = ll.LoRAConfig(r=np.int64(8), layers=(np.int32(0),))
    assert cfg.r == 8 and type(cfg.r) is int and type(cfg.layers[0]) is int
    assert ll.TrainConfig(steps=np.int64(5), batch_size=np.uint8(4)).steps == 5
    assert ll.AdapterConfig(bottleneck=np.int16(4)).bottleneck == 4
    with pytest.raises(ValueError, match="rank r must be a positive integer"):
        ll.LoRAConfig(r=True)


def test_merge_unmerge_and_remove_say_what_they_did(tiny):
    model, _ = tiny
    assert ll.remove(model) is False  # nothing injected: a no-op that says so
    assert ll.unmerge(model) == 0
    ll.inject(model, ll.LoRAConfig(r=2))
    assert ll.merge(model) == 4 and ll.merge(model) == 0  # twice: the second does nothing
    assert ll.unmerge(model) == 4 and ll.unmerge(model) == 0
    assert ll.remove(model) is True and ll.remove(model) is False


# the adapter file knows when its bytes were changed -----------------------------------------------------------------

def test_a_file_with_flipped_tensor_bytes_is_refused_and_the_model_left_alone(tiny, tmp_path):
    model, _ = tiny
    ll.inject(model, ll.LoRAConfig(r=2))
    _perturb_methods(model)
    path = tmp_path / "task.safetensors"
    ll.save_adapter(model, path)
    raw = bytearray(path.read_bytes())
    header = int.from_bytes(raw[:8], "little") + 8  # safetensors: 8-byte header length, header, then the data
    for i in range(header + 16, len(raw), 997):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    fresh, _ = ll.load_base(tiny=True)
    snap, before = snapshot(fresh), _logits(fresh)
    with pytest.raises(ll.io.AdapterFileError, match="is damaged: its tensors do not match the checksum"):
        ll.load_adapter(fresh, path)
    assert same_snapshot(snap, snapshot(fresh)) and torch.equal(_logits(fresh), before)


def test_an_intact_file_still_loads_exactly(tiny, tmp_path):
    model, _ = tiny
    ll.inject(model, ll.AdapterConfig(bottleneck=4))
    _perturb_methods(model)
    ll.save_adapter(model, tmp_path / "task.safetensors")
    fresh, _ = ll.load_base(tiny=True)
    ll.load_adapter(fresh, tmp_path / "task.safetensors")
    assert torch.equal(_logits(fresh), _logits(model))
