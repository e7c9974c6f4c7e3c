"""The fast path (lesson_lib/fast.py): cached and uncached forward agree, training only touches what
it should, callbacks and stopping behave as in the plain loop, and it steps aside when it cannot apply."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lesson_lib as ll
from lesson_lib import fast
from lesson_lib.tiny import tiny_task

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(eval_every=0, progress=False)


def _perturb(model, seed=0):
    """Random non-zero trainable weights, so 'equal outputs' is not true because B = 0 at init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def _both_ways(model, tok, texts, labels=None):
    """(uncached logits, cached logits, uncached loss, cached loss) on the same texts, same padding."""
    s = fast.cache_start(model)
    enc = ll.devices.to_model(model, dict(tok(texts, padding=True, return_tensors="pt")))
    labels = torch.tensor(labels if labels is not None else [0] * len(texts), device=enc["input_ids"].device)
    hidden = fast.lower_forward(model, s, enc)
    if s == len(ll.models.layers_of(model)):
        hidden = hidden[:, :1]  # the cache keeps only the first token when only the head trains
    mask = enc["attention_mask"][:, :hidden.shape[1]]
    plain = model(**enc, labels=labels)
    cached = fast.top_forward(model, s, hidden.clone(), mask, labels)
    return plain.logits, cached.logits, plain.loss, cached.loss


METHODS = {
    "head only": lambda m: ll.freeze_base(m),
    "lora top 1": lambda m: ll.inject(m, ll.LoRAConfig(r=4, layers=(1,))),
    "adapter top 1": lambda m: ll.inject(m, ll.AdapterConfig(bottleneck=8, layers=(1,))),
    "prefix top 1": lambda m: ll.inject(m, ll.PrefixConfig(length=3, layers=(1,))),
    "prefix mlp top 1": lambda m: ll.inject(m, ll.PrefixConfig(length=3, reparam=True, reparam_hidden=8, layers=(1,))),
    "unipelt top 1": lambda m: ll.inject(m, [ll.LoRAConfig(r=4, layers=(1,)),
                                             ll.AdapterConfig(bottleneck=8, layers=(1,))], gates=ll.GateConfig()),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_cached_and_uncached_forward_give_the_same_logits(method):
    model, tok = ll.load_base(tiny=True)
    METHODS[method](model)
    _perturb(model)
    model.eval()
    texts = ["the movie was great", "awful", "i love this film and it was fun", "not very good"]
    with torch.no_grad():
        plain, cached, plain_loss, cached_loss = _both_ways(model, tok, texts)
    assert fast.cache_start(model) >= 1
    assert torch.allclose(plain, cached, atol=1e-5), (plain - cached).abs().max()
    assert torch.allclose(plain_loss, cached_loss, atol=1e-6)


def test_cached_forward_gives_the_same_gradients():
    """The tiny model has no dropout, so in train mode the two ways must give the same gradients."""
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    _perturb(model)
    model.train()
    texts, labels = ["the movie was great", "awful film", "i hate it"], [1, 0, 0]
    _, _, plain_loss, cached_loss = _both_ways(model, tok, texts, labels)
    params = [p for p in model.parameters() if p.requires_grad]
    g_plain = torch.autograd.grad(plain_loss, params)
    g_cached = torch.autograd.grad(cached_loss, params)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_plain, g_cached))


def test_cached_evaluation_equals_evaluate():
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    _perturb(model)
    task = tiny_task()
    cache = fast.cache_for(model, task.test, tok, task.max_length, fast.cache_start(model))
    got = fast.evaluate_cached(model, cache, torch.device("cpu"))
    want = ll.evaluate(model, task.test)
    assert got["n"] == want["n"] and got["accuracy"] == want["accuracy"]
    assert abs(got["loss"] - want["loss"]) < 1e-5


def test_model_is_whole_after_a_cached_forward():
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    names = [n for n, _ in model.named_modules()]
    with torch.no_grad():
        _both_ways(model, tok, ["great fun"])
    assert [n for n, _ in model.named_modules()] == names


@pytest.mark.parametrize("setup, expected", [
    (lambda m: ll.inject(m, ll.LoRAConfig(r=4)), 0),
    (lambda m: ll.inject(m, ll.LoRAConfig(r=4, layers=(1,))), 1),
    (lambda m: ll.freeze_base(m), 2),
    (lambda m: ll.inject(m, ll.AdapterConfig(bottleneck=4, layers=(1,), train_layernorm=True)), 0),
    (lambda m: ll.inject(m, ll.PromptConfig(length=2)), None),
    (lambda m: None, None),  # full fine-tuning: the embeddings train
], ids=["lora all", "lora top", "head", "adapter+layernorm", "prompt", "full"])
def test_cache_start(setup, expected):
    model, _ = ll.load_base(tiny=True)
    setup(model)
    assert fast.cache_start(model) == expected


def test_training_on_the_fast_path_changes_only_trainable_parameters():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=5, lr=1e-2, batch_size=8, **QUIET))
    assert h.path.startswith("fast path") and h.stopped == "done"
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    assert any("lora_B" in n for n in changed) and "classifier.weight" in changed


def test_the_fast_path_learns():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=60, lr=1e-2, batch_size=16, eval_every=30, progress=False))
    assert h.path.startswith("fast path")
    assert sum(h.losses[-10:]) / 10 < sum(h.losses[:10]) / 10


class Recorder:
    def __init__(self, stop_at=None, interrupt_at=None):
        self.steps, self.evals, self.ended = [], [], None
        self.stop_at, self.interrupt_at = stop_at, interrupt_at

    def on_step(self, step, loss, history):
        self.steps.append(step)
        if step == self.stop_at:
            history.request_stop()
        if step == self.interrupt_at:
            raise KeyboardInterrupt

    def on_eval(self, step, metrics, history):
        self.evals.append((step, metrics["n"]))

    def on_end(self, history):
        self.ended = history.stopped


def test_callbacks_and_stop_on_the_fast_path():
    model, _ = ll.load_base(tiny=True)
    ll.freeze_base(model)
    rec = Recorder()
    cfg = ll.TrainConfig(steps=10, eval_every=5, eval_limit=8, batch_size=8, progress=False)
    h = ll.train(model, tiny_task(), cfg, callbacks=[rec])
    assert h.path.startswith("fast path") and rec.steps == list(range(1, 11))
    assert rec.evals == [(5, 8), (10, 8)] and rec.ended == "done" and not model.training
    rec = Recorder(stop_at=3)
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=50, batch_size=8, **QUIET), callbacks=[rec])
    assert h.steps[-1] == 3 and h.stopped == "stopped" and h.final["step"] == 3


def test_ctrl_c_on_the_fast_path_leaves_the_model_whole():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    names = [n for n, _ in model.named_modules()]
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=50, batch_size=8, **QUIET),
                 callbacks=[Recorder(interrupt_at=4)])
    assert h.stopped == "interrupted" and len(h.losses) == 4 and not model.training
    assert [n for n, _ in model.named_modules()] == names
    assert all(p.grad is None for p in model.parameters())


def test_falls_back_to_the_plain_loop_when_a_lower_layer_trains():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4))  # every layer, layer 0 included
    assert ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, **QUIET)).path == "plain"
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.PromptConfig(length=2))
    assert ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, **QUIET)).path == "plain"
    with pytest.raises(ValueError, match="fast=True"):
        ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, fast=True, **QUIET))


def test_fast_false_forces_the_plain_loop_and_threads_are_restored():
    model, _ = ll.load_base(tiny=True)
    ll.freeze_base(model)
    threads = torch.get_num_threads()
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, fast=False, threads=1, **QUIET))
    assert h.path == "plain" and torch.get_num_threads() == threads


def test_the_cache_is_reused_and_dropped_when_a_lower_layer_changes():
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    task = tiny_task()
    ll.train(model, task, ll.TrainConfig(steps=3, batch_size=8, **QUIET))
    first = fast.cache_for(model, task.train, tok, task.max_length, 1)
    assert any(h is not None for h in first.hidden)
    ll.train(model, task, ll.TrainConfig(steps=3, batch_size=8, **QUIET))
    assert fast.cache_for(model, task.train, tok, task.max_length, 1) is first
    with torch.no_grad():
        ll.models.layers_of(model)[0].intermediate.dense.weight.mul_(1.5)  # an in-place edit below layer 1
    assert fast.cache_for(model, task.train, tok, task.max_length, 1) is not first
    fast.clear_cache(model)


def test_bucketed_batches_cover_every_example_once_per_epoch_with_less_padding():
    lengths = [((i * 7919) % 61) + 3 for i in range(640)]
    gen = fast.bucketed(lengths, 32, seed=0)
    epoch = [next(gen) for _ in range(20)]
    assert sorted(i for b in epoch for i in b) == list(range(640))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in epoch)
    shuffled = [list(range(640))[j:j + 32] for j in range(0, 640, 32)]
    assert padded < 0.8 * sum(len(b) * max(lengths[i] for i in b) for b in shuffled)


def test_top_layers_and_describe():
    model, _ = ll.load_base(tiny=True)
    assert fast.top_layers(model, 1) == (1,) and fast.top_layers(model, 0) == ()
    with pytest.raises(ValueError):
        fast.top_layers(model, 3)
    ll.inject(model, ll.LoRAConfig(r=4, layers=fast.top_layers(model, 1)))
    assert "layer 0 run once" in fast.describe(model)


@pytest.mark.integration
def test_minilm_cached_and_uncached_logits_agree(minilm_task):
    model, tok = ll.load_base()
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, layers=fast.top_layers(model, 2)))
    _perturb(model)
    model.eval()
    texts = minilm_task.test.texts[:16]
    s = fast.cache_start(model)
    assert s == 4
    cache = fast.HiddenCache(ll.Split(texts, minilm_task.test.labels[:16]), tok, 64, s, 6)
    batch = cache.batch(model, list(range(16)), torch.device("cpu"))  # unpadded storage, re-padded here
    enc = dict(tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt"))
    with torch.no_grad():
        plain = model(**enc).logits
        cached = fast.top_forward(model, s, batch["hidden"], batch["attention_mask"]).logits
    assert torch.allclose(plain, cached, atol=1e-5), (plain - cached).abs().max()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_path_on_gpu_with_mixed_precision():
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=5, batch_size=8, device="cuda", **QUIET))
    assert h.device.startswith("cuda") and h.path.startswith("fast path")
    model.eval()
    with torch.no_grad():
        plain, cached, _, _ = _both_ways(model, tok, ["the movie was great", "awful"])
    assert torch.allclose(plain, cached, atol=1e-5)


def test_quick_benchmarks_run():
    """Every benchmark's --quick mode, in one subprocess (tiny model and task, a few seconds each)."""
    pytest.importorskip("peft")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--threads", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "| our LoRA |" in out and "| PEFT LoRA |" in out and "Our LoRA / PEFT LoRA" in out
    assert "| LoRA merged |" in out and "Merged / base" in out
    assert "parameter-count slider" in out and "Live curve" in out
    assert "Target = the plain loop" in out and "| plain |" in out
    assert "| tweets | lora | 8 |" in out and "| bbc | head |" in out
    assert "| prefix | 4 |" in out and ("does not drop" in out or "drops" in out)
    assert "CPU mode against full mode" in out and "| 00 head only |" in out
