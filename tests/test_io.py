"""Saving and loading adapters: round trips for every method, and refusals that leave the model unchanged."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import lesson_lib as ll
from lesson_lib.io import AdapterFileError
from lesson_lib.tiny import tiny_batch, tiny_task

from .conftest import same_snapshot, snapshot

METHODS = {
    "lora": (ll.LoRAConfig(r=4, alpha=8), None),
    "adapter": (ll.AdapterConfig(bottleneck=8), None),
    "prefix": (ll.PrefixConfig(length=3), None),
    "prefix_reparam": (ll.PrefixConfig(length=3, reparam=True, reparam_hidden=16), None),
    "prompt": (ll.PromptConfig(length=3), None),
    "unipelt": ([ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=8), ll.PrefixConfig(length=3)], ll.GateConfig()),
    "adapter_ln": (ll.AdapterConfig(bottleneck=8, train_layernorm=True), None),
}
FEW = ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, eval_every=0, progress=False)


def logits(model, batch=None):
    model.eval()
    with torch.no_grad():
        return model(**(batch or tiny_batch())).logits


def trained(key, num_labels=2, name=None):
    model, _ = ll.load_base(tiny=True)
    cfg, gates = METHODS[key]
    ll.inject(model, cfg, gates=gates, name=name, num_labels=num_labels)
    ll.train(model, tiny_task(num_labels=num_labels), FEW)
    return model


@pytest.fixture
def lora_file(tmp_path):
    path = tmp_path / "lora.safetensors"
    ll.save_adapter(trained("lora"), path)
    return path


@pytest.mark.parametrize("key", list(METHODS))
def test_round_trip_gives_identical_logits(tmp_path, key):
    model = trained(key)
    size = ll.save_adapter(model, tmp_path / "a.safetensors")
    fresh, _ = ll.load_base(tiny=True)
    base_bytes = sum(t.numel() * t.element_size() for t in fresh.state_dict().values())
    assert 0 < size < base_bytes / 2
    assert ll.load_adapter(fresh, tmp_path / "a.safetensors") == "default"
    assert torch.equal(logits(fresh), logits(model))
    assert ll.count_params(fresh).by_method == ll.count_params(model).by_method
    assert {n: p.requires_grad for n, p in fresh.named_parameters()} == \
        {n: p.requires_grad for n, p in model.named_parameters()}
    assert [type(c) for c in ll.tasks.names(fresh)["default"]] == [type(c) for c in ll.tasks.names(model)["default"]]


def test_fixed_gate_values_round_trip(tmp_path):
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, [ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=8)], gates=ll.GateConfig(learned=False))
    ll.train(model, tiny_task(), FEW)
    ll.surgery.set_gates(model, lora=[1.0, 0.0], adapter=0.25)
    ll.save_adapter(model, tmp_path / "g.safetensors")
    fresh, _ = ll.load_base(tiny=True)
    ll.load_adapter(fresh, tmp_path / "g.safetensors")
    assert torch.equal(logits(fresh), logits(model))


def test_partly_gated_task_round_trips(tmp_path):
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4), gates=ll.GateConfig())
    ll.inject(model, ll.AdapterConfig(bottleneck=8))  # same task, no gates
    ll.train(model, tiny_task(), FEW)
    ll.save_adapter(model, tmp_path / "g.safetensors")
    fresh, _ = ll.load_base(tiny=True)
    ll.load_adapter(fresh, tmp_path / "g.safetensors")
    assert torch.equal(logits(fresh), logits(model))


def test_task_name_and_labels_travel_with_the_file(tmp_path):
    model = trained("adapter", num_labels=3, name="topic")
    ll.save_adapter(model, tmp_path / "t.safetensors")
    fresh, _ = ll.load_base(tiny=True)  # a 2-way head; the file brings a 3-way one
    assert ll.load_adapter(fresh, tmp_path / "t.safetensors") == "topic"
    assert ll.tasks.active_task(fresh) == "topic" and fresh.config.num_labels == 3
    assert torch.equal(logits(fresh), logits(model))
    assert ll.evaluate(fresh, tiny_task(num_labels=3).test) == ll.evaluate(model, tiny_task(num_labels=3).test)


def test_load_as_second_task_and_switch_back(tmp_path):
    source = trained("adapter", num_labels=3, name="topic")
    ll.save_adapter(source, tmp_path / "t.safetensors")
    model = trained("lora")
    first, check = logits(model), ll.checksum(model)
    assert ll.load_adapter(model, tmp_path / "t.safetensors") == "topic"
    assert set(ll.tasks.names(model)) == {"default", "topic"} and ll.tasks.active_task(model) == "topic"
    assert torch.equal(logits(model), logits(source))
    assert ll.checksum(model) == check
    ll.tasks.set_active(model, "default")
    assert torch.equal(logits(model), first)
    ll.load_adapter(model, tmp_path / "t.safetensors", name="topic2")  # the same file under another name
    assert torch.equal(logits(model), logits(source))


def test_loading_a_name_that_exists_is_refused(lora_file):
    model = trained("adapter")
    snap = snapshot(model)
    with pytest.raises(ValueError, match="already has a task named 'default'"):
        ll.load_adapter(model, lora_file)
    assert same_snapshot(snap, snapshot(model))
    assert list(ll.tasks.names(model)) == ["default"]


def test_save_and_load_around_merge(tmp_path):
    model = trained("lora")
    with torch.no_grad():
        for m in ll.surgery.lora_modules(model).values():
            m.lora_B.normal_(std=0.1)
    unmerged = logits(model)
    ll.merge(model)
    ll.save_adapter(model, tmp_path / "m.safetensors")  # the fingerprint is of the base, not of W + ΔW
    fresh, _ = ll.load_base(tiny=True)
    ll.load_adapter(fresh, tmp_path / "m.safetensors")
    assert torch.allclose(logits(fresh), unmerged, atol=1e-5)
    other = trained("adapter", name="other")
    ll.save_adapter(other, tmp_path / "o.safetensors")
    merged = logits(model)
    ll.load_adapter(model, tmp_path / "o.safetensors")  # onto the merged model: W goes back first
    assert torch.equal(logits(model), logits(other))
    ll.tasks.set_active(model, "default")
    assert torch.allclose(logits(model), merged, atol=1e-5)


def test_save_with_nothing_injected_is_refused(tiny, tmp_path):
    model, _ = tiny
    with pytest.raises(ValueError, match="inject a method first"):
        ll.save_adapter(model, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


# --- refusals ------------------------------------------------------------------------------------------

def _other_layers():
    from transformers import BertForSequenceClassification

    from lesson_lib.tiny import tiny_config

    cfg = tiny_config()
    cfg.num_hidden_layers = 3
    torch.manual_seed(0)
    return BertForSequenceClassification(cfg).eval()


def _rewrite(src, dst, edit):
    """Copy an adapter file with its JSON description changed by ``edit(meta)``."""
    with safe_open(str(src), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()["lesson_lib"]), {k: f.get_tensor(k) for k in f.keys()}
    edit(meta)
    save_file(tensors, str(dst), metadata={"lesson_lib": json.dumps(meta)})
    return dst


def _truncated(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _corrupt(src, dst):
    dst.write_bytes(torch.randint(0, 256, (src.stat().st_size,), generator=torch.Generator().manual_seed(0))
                    .to(torch.uint8).numpy().tobytes())
    return dst


def _bigger_rank(meta):
    meta["configs"][0]["r"] = 8


def _more_targets(meta):
    meta["configs"][0]["targets"] = ["query", "key", "value"]


def _unknown_method(meta):
    meta["configs"][0]["type"] = "DoRAConfig"


BAD_FILES = {
    "truncated": (_truncated, "truncated or corrupt"),
    "corrupt": (_corrupt, "truncated or corrupt"),
    "missing": (lambda src, dst: dst, "no adapter file"),
    "bigger_rank": (lambda src, dst: _rewrite(src, dst, _bigger_rank), "does not fit"),
    "more_targets": (lambda src, dst: _rewrite(src, dst, _more_targets), "does not fit"),
    "unknown_method": (lambda src, dst: _rewrite(src, dst, _unknown_method), "damaged"),
    "other_format": (lambda src, dst: _rewrite(src, dst, lambda m: m.update(format="x/9")), "expected"),
}


@pytest.mark.parametrize("has_task", [False, True], ids=["fresh", "with_task"])
@pytest.mark.parametrize("key", list(BAD_FILES))
def test_bad_file_is_refused_and_model_unchanged(lora_file, tmp_path, key, has_task):
    make, words = BAD_FILES[key]
    bad = make(lora_file, tmp_path / f"{key}.safetensors")
    model = trained("adapter") if has_task else ll.load_base(tiny=True)[0]
    snap, before, task_list = snapshot(model), logits(model), ll.tasks.names(model)
    with pytest.raises(AdapterFileError, match=words):
        ll.load_adapter(model, bad, name="new")
    assert same_snapshot(snap, snapshot(model))
    assert torch.equal(logits(model), before)
    assert ll.tasks.names(model) == task_list


@pytest.mark.parametrize("other", ["seed", "layers"])
def test_file_for_another_base_is_refused(lora_file, other):
    model = ll.load_base(tiny=True, seed=1)[0] if other == "seed" else _other_layers()
    snap = snapshot(model)
    with pytest.raises(AdapterFileError, match="another base model") as err:
        ll.load_adapter(model, lora_file)
    assert ("checksum" if other == "seed" else "layers: file 2, this model 3") in str(err.value)
    assert same_snapshot(snap, snapshot(model))
    assert ll.tasks.names(model) == {}


def test_refusal_keeps_a_merged_task_merged(lora_file, tmp_path):
    model = trained("lora")
    ll.merge(model)
    snap = snapshot(model)
    bad = _rewrite(lora_file, tmp_path / "bad.safetensors", _bigger_rank)
    with pytest.raises(AdapterFileError, match="does not fit"):
        ll.load_adapter(model, bad, name="new")
    assert same_snapshot(snap, snapshot(model))
    assert all(m.merged for m in ll.surgery.lora_modules(model).values())


# --- the real model ---------------------------------------------------------------------------------------

@pytest.mark.integration
def test_minilm_lora_file_is_small_and_round_trips(tmp_path):
    model, tok = ll.load_base()
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value")))
    with torch.no_grad():
        for m in ll.surgery.lora_modules(model).values():
            m.lora_B.normal_(std=0.02)
    size = ll.save_adapter(model, tmp_path / "minilm_lora.safetensors")
    fresh, _ = ll.load_base()
    full = sum(t.numel() * t.element_size() for t in fresh.state_dict().values())
    print(f"\nMiniLM LoRA r=8 q/v adapter file: {size:,} bytes; full model state dict: {full:,} bytes "
          f"({100 * size / full:.2f} %)")
    assert 0 < size < full / 100
    ll.load_adapter(fresh, tmp_path / "minilm_lora.safetensors")
    batch = dict(tok(["what a great flight", "delayed again, awful"], padding=True, return_tensors="pt"))
    assert torch.equal(logits(fresh, batch), logits(model, batch))
