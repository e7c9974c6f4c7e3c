"""Device-safe by construction: the model's device and dtype are the truth, and the library follows them.

Every test body runs on the CPU (here and in CI) and, marked ``gpu``, on CUDA where there is one
(``bash benchmarks/gpu_check.sh``). On a CPU, a change of precision (``.double()``, ``.half()``) stands in
for a change of device: both leave tensors made earlier behind. The ``meta`` device (tensors without data)
shows where the library puts what it builds, without running a model.
"""

from __future__ import annotations

import pytest
import torch

import lesson_lib as ll
from lesson_lib import analysis, fast
from lesson_lib.tiny import tiny_task

QUIET = dict(eval_every=0, progress=False)
TEXTS = ["the movie was great", "awful and boring", "i love this film", "not very good at all"]

DEVICES = [pytest.param("cpu"),
           pytest.param("cuda", marks=[pytest.mark.gpu,
                                       pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])]

METHODS = {
    "lora": lambda m, layers=None: ll.inject(m, ll.LoRAConfig(r=4, alpha=8, layers=layers)),
    "adapter": lambda m, layers=None: ll.inject(m, ll.AdapterConfig(bottleneck=8, layers=layers)),
    "prefix": lambda m, layers=None: ll.inject(m, ll.PrefixConfig(length=3, layers=layers)),
    "prefix_mlp": lambda m, layers=None: ll.inject(m, ll.PrefixConfig(length=3, reparam=True, reparam_hidden=8,
                                                                      layers=layers)),
    "prompt": lambda m, layers=None: ll.inject(m, ll.PromptConfig(length=3)),
    "unipelt": lambda m, layers=None: ll.inject(m, [ll.LoRAConfig(r=4, layers=layers),
                                                    ll.AdapterConfig(bottleneck=8, layers=layers),
                                                    ll.PrefixConfig(length=3, layers=layers)], gates=ll.GateConfig()),
}


def _tiny(device="cpu"):
    return ll.load_base(tiny=True, device=device)[0]


def _perturb(model, seed=0):
    """Random non-zero trainable weights, so 'equal outputs' is not true only because B = 0 at init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_((torch.randn(p.shape, generator=g) * 0.1).to(p.device, p.dtype))


# --- where things go ----------------------------------------------------------------------------------------

def test_load_base_puts_the_model_where_asked_and_batches_follow_it():
    model = _tiny("meta")
    assert ll.devices.model_device(model).type == "meta"
    b = ll.batch(model, TEXTS)
    assert {v.device.type for v in b.values()} == {"meta"} and "labels" not in b
    split = tiny_task(n=16).test
    assert ll.batch(model, split, n=4)["input_ids"].device.type == "meta"


def test_lesson_device_overrides_the_automatic_choice(monkeypatch):
    monkeypatch.setenv("LESSON_DEVICE", "meta")
    assert ll.devices.pick_device().type == "meta" and ll.devices.pick_device("cpu").type == "cpu"
    assert ll.devices.model_device(ll.load_base(tiny=True)[0]).type == "meta"  # device="auto" follows it


def test_inject_builds_every_method_on_the_models_device():
    for name, add in METHODS.items():
        model = _tiny("meta")
        add(model)
        assert {p.device.type for p in model.parameters()} == {"meta"}, name


def test_remove_puts_the_head_back_on_the_models_current_device():
    model = _tiny()
    ll.inject(model, ll.LoRAConfig(r=2))
    model.to("meta")  # as after ll.train on a GPU
    ll.remove(model)
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_a_stashed_task_follows_the_model_when_it_comes_back():
    model = _tiny()
    ll.inject(model, ll.AdapterConfig(bottleneck=4), name="a")
    ll.inject(model, ll.LoRAConfig(r=2), name="b", num_labels=3)  # task "a" is stashed, off the model
    model.to("meta")
    ll.tasks.set_active(model, "a")
    assert {p.device.type for p in model.parameters()} == {"meta"}


# --- a change of precision after the fact (the CPU's stand-in for a change of device) ---------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_remove_after_a_change_of_precision_leaves_a_model_that_runs(dtype):
    model = _tiny()
    ll.inject(model, ll.LoRAConfig(r=2))
    model.to(dtype)
    ll.remove(model)
    assert {p.dtype for p in model.parameters()} == {dtype}
    if dtype == torch.float64:  # fp16 matmuls are not implemented on every CPU build
        assert ll.logits(model, ll.batch(model, TEXTS)).shape == (4, 2)


def test_set_active_after_a_change_of_precision():
    model = _tiny()
    ll.inject(model, ll.AdapterConfig(bottleneck=4), name="a")
    ll.inject(model, ll.PromptConfig(length=2), name="b", num_labels=3)
    model.double()
    ll.tasks.set_active(model, "a")
    assert ll.logits(model, ll.batch(model, TEXTS)).shape == (4, 2)
    ll.tasks.set_active(model, "b")
    assert ll.logits(model, ll.batch(model, TEXTS)).shape == (4, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_snapshot_and_delta_weights_across_a_change_of_precision(dtype):
    model = _tiny()
    names = [n for n, m in model.named_modules() if n.endswith("attention.self.query")]
    before = analysis.snapshot(model, names)
    assert all(w.device.type == "cpu" and w.dtype == torch.float32 for w in before.values())
    with torch.no_grad():
        model.get_submodule(names[0]).weight.add_(1.0)
    model.to(dtype)
    deltas = analysis.delta_weights(model, snapshot=before)
    tol = 1e-2 if dtype == torch.float16 else 1e-6  # fp16 keeps about 3 decimal digits
    assert deltas[names[0]].dtype == torch.float32 and torch.allclose(deltas[names[0]], torch.ones(32, 32), atol=tol)
    assert float(deltas[names[1]].abs().max()) <= tol


def test_a_batch_made_before_the_model_changed_precision_still_works():
    model = _tiny()
    b = ll.batch(model, TEXTS)
    model.double()
    out = ll.logits(model, b)
    assert out.dtype == torch.float32 and out.device.type == "cpu"


@pytest.mark.parametrize("method", ["lora", "prefix_mlp", "unipelt"])
def test_train_evaluate_predict_in_double_precision_plain_and_fast(method):
    for layers in (None, (1,)):
        model = _tiny().double()
        METHODS[method](model, layers)
        cfg = ll.TrainConfig(steps=2, batch_size=8, fast=layers is not None, **QUIET)  # the top layer: ask for it
        h = ll.train(model, tiny_task(n=32), cfg)
        assert h.path.startswith("fast path") == (layers is not None)
        assert {p.dtype for p in model.parameters()} == {torch.float64}
        assert 0 <= ll.evaluate(model, tiny_task(n=32).test)["accuracy"] <= 1
        assert ll.predict(model, TEXTS).shape == (4, 2)


def test_train_keeps_the_model_where_it_is_unless_asked():
    model = _tiny()
    ll.inject(model, ll.LoRAConfig(r=2))
    h = ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=1, batch_size=8, **QUIET))
    assert h.device == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        ll.TrainConfig(device="tpu")


# --- every method, every library path, on each device ----------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_and_round_trips_on_the_device(device, method, tmp_path):
    model = _tiny(device)
    base = ll.logits(model, ll.batch(model, TEXTS))
    METHODS[method](model)
    h = ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=3, batch_size=8, **QUIET))
    assert h.device.startswith(device)
    assert {p.device.type for p in model.parameters()} == {device}
    batch = ll.batch(model, TEXTS)
    trained = ll.logits(model, batch)
    assert ll.predict(model, TEXTS).shape == (4, 2)
    ll.save_adapter(model, tmp_path / "task.safetensors")
    fresh = _tiny(device)
    ll.load_adapter(fresh, tmp_path / "task.safetensors")
    assert torch.allclose(ll.logits(fresh, batch), trained, atol=1e-5)
    ll.remove(model)
    assert torch.allclose(ll.logits(model, batch), base, atol=1e-6)  # the base, on the device


@pytest.mark.parametrize("device", DEVICES)
def test_merge_unmerge_and_folding_agree_in_fp32_on_the_device(device):
    model = _tiny(device)
    ll.inject(model, ll.LoRAConfig(r=4, targets=("query", "value", "intermediate")))
    _perturb(model)
    batch = ll.batch(model, TEXTS)
    unmerged = ll.logits(model, batch)
    ll.merge(model)
    assert torch.allclose(ll.logits(model, batch), unmerged, atol=1e-5)
    ll.unmerge(model)
    assert torch.equal(ll.logits(model, batch), unmerged)

    prefix = _tiny(device)
    ll.inject(prefix, ll.PrefixConfig(length=3, reparam=True, reparam_hidden=8))
    _perturb(prefix)
    before, acc = ll.logits(prefix, batch), ll.evaluate(prefix, tiny_task(n=32).test, amp=False)
    ll.surgery.fold_prefix(prefix)
    assert torch.allclose(ll.logits(prefix, batch), before, atol=1e-5)
    assert ll.evaluate(prefix, tiny_task(n=32).test, amp=False) == acc


@pytest.mark.parametrize("device", DEVICES)
def test_fast_path_cached_equals_uncached_on_the_device(device):
    model = _tiny(device)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    h = ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=3, batch_size=8, fast=True, **QUIET))
    assert h.path.startswith("fast path")
    tok = ll.models.tokenizer_for(model)
    enc = dict(tok(TEXTS, padding=True, return_tensors="pt"))  # built on the CPU on purpose
    s = fast.cache_start(model)
    hidden = fast.lower_forward(model, s, enc)
    with torch.no_grad():
        cached = fast.top_forward(model, s, hidden.clone(), enc["attention_mask"]).logits.float().cpu()
    assert torch.allclose(cached, ll.logits(model, enc), atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_analysis_tasks_and_gates_on_the_device(device):
    model = _tiny(device)
    names = [n for n, m in model.named_modules() if n.endswith("attention.self.value")]
    before = analysis.snapshot(model, names)
    ll.train(model, tiny_task(n=32), ll.TrainConfig(steps=2, batch_size=8, lr=1e-3, **QUIET))  # full fine-tune
    assert set(analysis.delta_weights(model, snapshot=before)) == set(names)

    lora = _tiny(device)
    ll.inject(lora, ll.LoRAConfig(r=4))
    _perturb(lora)
    split = tiny_task(n=32).test
    by_rank = analysis.accuracy_by_rank(lora, split, ks=(0, 1, 4))
    assert set(by_rank) == {0, 1, 4}
    rows = analysis.spectrum_summary(analysis.delta_weights(lora))
    assert all(r["rank"] <= 4 for r in rows)

    uni = _tiny(device)
    METHODS["unipelt"](uni)
    gates = ll.surgery.read_gates(uni, ll.batch(uni, TEXTS))
    assert set(gates) == {"lora", "adapter", "prefix"}
    ll.surgery.set_gates(uni, lora=0.0)

    tasks = _tiny(device)
    ll.inject(tasks, ll.AdapterConfig(bottleneck=4), name="a")
    ll.inject(tasks, ll.LoRAConfig(r=2), name="b", num_labels=3)
    ll.tasks.set_active(tasks, "a")
    assert ll.logits(tasks, ll.batch(tasks, TEXTS)).shape == (4, 2)
    assert ll.latency(tasks, ll.batch(tasks, TEXTS), repeats=2) > 0


@pytest.mark.parametrize("device", DEVICES)
def test_export_to_peft_gives_the_same_logits_on_the_device(device, tmp_path):
    peft = pytest.importorskip("peft")
    model = _tiny(device)
    ll.inject(model, ll.LoRAConfig(r=4))
    _perturb(model)
    path = ll.export_peft(model, tmp_path / "peft")
    theirs = peft.PeftModel.from_pretrained(_tiny(device), str(path))
    batch = ll.batch(model, TEXTS)
    assert torch.allclose(ll.logits(model, batch), ll.logits(theirs, batch), atol=1e-5)
