"""The fast path (lesson_lib/fast.py): cached and uncached forward agree (BERT, RoBERTa, DistilBERT, eager and
sdpa attention), training only touches what it should, callbacks and stopping behave as in the plain loop, it is
taken only when asked for, and says why when it cannot apply."""

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
FAST = dict(QUIET, fast=True)


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
    "head only": lambda m: ll.surgery.freeze_base(m),
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
    cache = fast.FastPath(model).cache(task.test, tok, task.max_length)
    got = fast.evaluate_cached(model, cache, torch.device("cpu"))
    want = ll.evaluate(model, task.test)
    assert got["n"] == want["n"] and got["accuracy"] == want["accuracy"]
    assert abs(got["loss"] - want["loss"]) < 1e-5


def test_model_is_whole_and_in_its_modes_after_a_cached_forward():
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    modules = list(model.named_modules())
    model.train()
    model.classifier.eval()  # a mixed state, to see that every module gets its own mode back
    modes = [m.training for _, m in modules]
    with torch.no_grad():
        _both_ways(model, tok, ["great fun"])
    assert list(model.named_modules()) == modules and [m.training for _, m in modules] == modes


def _family_model(family, attn):
    """A tiny random RoBERTa / DistilBERT / BERT classifier (no dropout, so train mode compares too)."""
    import transformers as tf

    common = dict(vocab_size=50, num_labels=3, max_position_embeddings=40)
    if family == "distilbert":
        config = tf.DistilBertConfig(dim=16, n_layers=3, n_heads=2, hidden_dim=24, dropout=0.0,
                                     attention_dropout=0.0, seq_classif_dropout=0.0, pad_token_id=0, **common)
        cls = tf.DistilBertForSequenceClassification
    else:
        config = getattr(tf, f"{'Roberta' if family == 'roberta' else 'Bert'}Config")(
            hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=24, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, pad_token_id=1, **common)
        cls = tf.RobertaForSequenceClassification if family == "roberta" else tf.BertForSequenceClassification
    config._attn_implementation = attn
    torch.manual_seed(0)
    return cls(config), config.pad_token_id


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
@pytest.mark.parametrize("method", ["lora", "prefix", "head"])
def test_every_family_cached_equals_the_models_own_forward(family, attn, method):
    """The per-family head code and the layers' mask, against the model's own forward, with padding."""
    model, pad = _family_model(family, attn)
    if method == "head":
        ll.surgery.freeze_base(model)
    else:
        cfg = ll.LoRAConfig(r=2, layers=(2,)) if method == "lora" else ll.PrefixConfig(length=3, layers=(1, 2))
        ll.inject(model, cfg)
    _perturb(model)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 50, (4, 9), generator=g)
    mask = torch.ones_like(ids)
    for row, n in enumerate((9, 6, 3, 7)):
        ids[row, n:], mask[row, n:] = pad, 0
    labels = torch.tensor([0, 2, 1, 2])
    s = fast.cache_start(model)
    assert s == {"lora": 2, "prefix": 1, "head": 3}[method]
    hidden = fast.lower_forward(model, s, {"input_ids": ids, "attention_mask": mask})
    for mode in ("eval", "train"):
        getattr(model, mode)()
        plain = model(input_ids=ids, attention_mask=mask, labels=labels)
        cached = fast.top_forward(model, s, hidden.clone(), mask, labels)
        gap = (plain.logits - cached.logits).abs().max()
        assert torch.allclose(plain.logits, cached.logits, atol=1e-5), (mode, gap)
        assert torch.allclose(plain.loss, cached.loss, atol=1e-6)


@pytest.mark.parametrize("setup, expected", [
    (lambda m: ll.inject(m, ll.LoRAConfig(r=4)), 0),
    (lambda m: ll.inject(m, ll.LoRAConfig(r=4, layers=(1,))), 1),
    (lambda m: ll.surgery.freeze_base(m), 2),
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
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=5, lr=1e-2, batch_size=8, **FAST))
    assert h.path.startswith("fast path") and h.stopped == "done"
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    assert any("lora_B" in n for n in changed) and "classifier.weight" in changed


def test_the_fast_path_learns():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    cfg = ll.TrainConfig(steps=60, lr=1e-2, batch_size=16, eval_every=30, progress=False, fast=True)
    h = ll.train(model, tiny_task(), cfg)
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
    ll.surgery.freeze_base(model)
    rec = Recorder()
    cfg = ll.TrainConfig(steps=10, eval_every=5, eval_limit=8, batch_size=8, progress=False, fast=True)
    h = ll.train(model, tiny_task(), cfg, callbacks=[rec])
    assert h.path.startswith("fast path") and rec.steps == list(range(1, 11))
    assert rec.evals == [(5, 8), (10, 8)] and rec.ended == "done" and not model.training
    rec = Recorder(stop_at=3)
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=50, batch_size=8, **FAST), callbacks=[rec])
    assert h.steps[-1] == 3 and h.stopped == "stopped" and h.final["step"] == 3


def test_ctrl_c_on_the_fast_path_leaves_the_model_whole():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    names = [n for n, _ in model.named_modules()]
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=50, batch_size=8, **FAST),
                 callbacks=[Recorder(interrupt_at=4)])
    assert h.stopped == "interrupted" and len(h.losses) == 4 and not model.training
    assert [n for n, _ in model.named_modules()] == names
    assert all(p.grad is None for p in model.parameters())


def test_the_plain_loop_unless_asked_and_fast_true_says_why_it_cannot_apply():
    model, _ = ll.load_base(tiny=True)
    ll.surgery.freeze_base(model)  # the fast path could apply, but nobody asked
    assert ll.TrainConfig().fast is False
    assert ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, **QUIET)).path == "plain"
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4))  # every layer, layer 0 included
    with pytest.raises(ValueError, match=r"fast=True\) cannot be honoured: fast path off: layer 0 trains"):
        ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, **FAST))
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.PromptConfig(length=2))
    assert fast.cache_start(model) is None
    with pytest.raises(ValueError, match="fast=True"):
        ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, **FAST))
    with pytest.raises(ValueError, match="fast must be True"):
        ll.TrainConfig(fast=None)


def test_threads_are_set_for_the_run_and_restored():
    from lesson_lib.train import threads

    model, _ = ll.load_base(tiny=True)
    ll.surgery.freeze_base(model)
    before = torch.get_num_threads()
    seen = []
    on_step = type("Probe", (), {"on_step": lambda self, *a: seen.append(torch.get_num_threads())})()
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=2, batch_size=8, threads=1, **FAST), callbacks=[on_step])
    assert h.path.startswith("fast path") and seen == [1, 1] and torch.get_num_threads() == before
    with threads(1):
        assert torch.get_num_threads() == 1
    with threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


def test_a_fast_path_object_is_reused_and_starts_over_when_a_lower_layer_changes():
    model, tok = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)))
    task = tiny_task()
    fp = fast.FastPath(model)
    assert "layer 0 run once" in repr(fp) and fp.megabytes == 0
    ll.train(model, task, ll.TrainConfig(steps=3, batch_size=8, **QUIET), fast=fp)
    first = fp.cache(task.train, tok, task.max_length)
    assert any(h is not None for h in first.hidden) and fp.megabytes > 0
    ll.train(model, task, ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, **QUIET), fast=fp)  # new lr, same cache
    assert fp.cache(task.train, tok, task.max_length) is first
    with torch.no_grad():
        ll.models.layers_of(model)[0].intermediate.dense.weight.mul_(1.5)  # an in-place edit below layer 1
    assert fp.cache(task.train, tok, task.max_length) is not first
    second = fp.cache(task.train, tok, task.max_length)
    with torch.no_grad():
        ll.models.layers_of(model)[0].output.dense.weight.data = ll.models.layers_of(model)[0].output.dense.weight * 2
    assert fp.cache(task.train, tok, task.max_length) is not second  # a tensor swapped in behind torch's back
    fp.clear()
    assert fp.megabytes == 0
    other, _ = ll.load_base(tiny=True)
    ll.surgery.freeze_base(other)
    with pytest.raises(ValueError, match="another model"):
        ll.train(other, task, ll.TrainConfig(steps=1, batch_size=8, **QUIET), fast=fp)


def test_a_fresh_cache_per_call_gives_the_same_run_as_a_kept_one():
    task = tiny_task()
    runs = []
    for kept in (False, True):
        model, _ = ll.load_base(tiny=True)
        ll.inject(model, ll.LoRAConfig(r=4, layers=(1,)), seed=0)
        kw = {"fast": fast.FastPath(model)} if kept else {}
        runs.append(ll.train(model, task, ll.TrainConfig(steps=4, batch_size=8, fast=not kept, **QUIET), **kw).losses)
    assert runs[0] == runs[1]


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
    cache = fast.HiddenCache(ll.data.Split(texts, minilm_task.test.labels[:16]), tok, 64, s, 6)
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
    h = ll.train(model, tiny_task(), ll.TrainConfig(steps=5, batch_size=8, device="cuda", **FAST))
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
    assert "| prefix | 2 |" in out and ("does not drop" in out or "drops" in out)
    assert "CPU mode against full mode" in out and "| 00 head only |" in out
