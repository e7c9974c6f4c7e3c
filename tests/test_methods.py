"""The invariants every method passes (DESIGN.md), on tiny random models."""

import pytest
import torch

import lesson_lib as ll
from lesson_lib.bitfit import BitFitConfig
from lesson_lib.tiny import tiny_task

from .conftest import same_snapshot, snapshot

METHODS = {
    "lora": ll.LoRAConfig(r=4, alpha=8),
    "lora_all": ll.LoRAConfig(r=2, alpha=2, targets=("query", "key", "value", "output", "intermediate", "ffn_output")),
    "lora_rs": ll.LoRAConfig(r=4, alpha=8, rslora=True, dropout=0.1),
    "adapter": ll.AdapterConfig(bottleneck=8),
    "adapter_pfeiffer_ln": ll.AdapterConfig(bottleneck=8, placement="pfeiffer", train_layernorm=True),
    "prefix": ll.PrefixConfig(length=3),
    "prefix_reparam": ll.PrefixConfig(length=3, reparam=True, reparam_hidden=16),
    "prompt": ll.PromptConfig(length=3),
    "unipelt": [ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=8), ll.PrefixConfig(length=3)],
    "bitfit": BitFitConfig(),
    "bitfit_top": BitFitConfig(layers=(1,)),
}
# methods that are the identity at init (zero B / zero up-projection)
IDENTITY = ["lora", "lora_all", "lora_rs", "adapter", "adapter_pfeiffer_ln", "bitfit"]


def _inject(model, key):
    cfg = METHODS[key]
    return ll.inject(model, cfg, gates=ll.GateConfig() if key == "unipelt" else None)


def logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("key", IDENTITY)
def test_identity_at_init(tiny, batch, key):
    model, _ = tiny
    before = logits(model, batch)
    _inject(model, key)
    assert torch.equal(logits(model, batch), before)


@pytest.mark.parametrize("key", ["prefix", "prefix_reparam", "unipelt"])
def test_gates_at_zero_make_the_branches_vanish(tiny, batch, key):
    model, _ = tiny
    before = logits(model, batch)
    cfg = METHODS[key]
    ll.inject(model, cfg, gates=ll.GateConfig(learned=False, value=0.0))
    assert torch.allclose(logits(model, batch), before, atol=1e-6)
    ll.surgery.set_gates(model, **{m: 1.0 for m in ll.surgery._gates(model)})
    assert not torch.allclose(logits(model, batch), before, atol=1e-6) or key == "unipelt"


@pytest.mark.parametrize("key", list(METHODS))
def test_only_method_and_head_train_and_change(tiny, batch, key):
    model, _ = tiny
    _inject(model, key)
    kinds = ll.owners.classify_parameters(model)
    ln = key == "adapter_pfeiffer_ln"
    for name, p in model.named_parameters():
        expected = kinds[name] not in ("base", "layernorm") or (ln and kinds[name] == "layernorm")
        assert p.requires_grad == expected, name
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    task = tiny_task()
    ll.train(model, task, ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        if not p.requires_grad:
            assert not changed, f"frozen {name} changed"
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if kinds[n] not in ("base", "head"))


@pytest.mark.parametrize("key", list(METHODS))
def test_remove_restores_base_exactly(tiny, batch, key):
    model, _ = tiny
    before_logits, snap = logits(model, batch), snapshot(model)
    _inject(model, key)
    ll.train(model, tiny_task(), ll.TrainConfig(steps=2, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    if key.startswith("lora"):
        ll.merge(model)
    ll.remove(model)
    assert torch.equal(logits(model, batch), before_logits)
    assert same_snapshot(snap, snapshot(model))


@pytest.mark.parametrize("key", ["lora", "lora_all", "lora_rs"])
def test_merge_equals_unmerged_and_unmerge_restores_w(tiny, batch, key):
    model, _ = tiny
    _inject(model, key)
    with torch.no_grad():
        for m in ll.surgery.lora_modules(model).values():
            m.lora_B.normal_(std=0.1)
    weights = {n: m.base.weight.detach().clone() for n, m in ll.surgery.lora_modules(model).items()}
    unmerged = logits(model, batch)
    assert ll.merge(model) == len(weights)
    assert torch.allclose(logits(model, batch), unmerged, atol=1e-5)
    assert not all(torch.equal(weights[n], m.base.weight) for n, m in ll.surgery.lora_modules(model).items())
    ll.unmerge(model)
    assert all(torch.equal(weights[n], m.base.weight) for n, m in ll.surgery.lora_modules(model).items())
    assert torch.allclose(logits(model, batch), unmerged, atol=1e-6)


def test_eval_does_not_merge(tiny, batch):
    model, _ = tiny
    ll.inject(model, METHODS["lora"])
    model.eval()
    assert not any(m.merged for m in ll.surgery.lora_modules(model).values())


@pytest.mark.parametrize("key", list(METHODS))
def test_loss_decreases_on_a_learnable_task(tiny, key):
    model, _ = tiny
    _inject(model, key)
    task = tiny_task(n=128)
    h = ll.train(model, task, ll.TrainConfig(steps=40, lr=1e-2, batch_size=16, eval_every=0, progress=False))
    first, last = sum(h.losses[:5]) / 5, sum(h.losses[-5:]) / 5
    assert last < first, (first, last)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_written_out_attention_equals_library_attention(attn, batch):
    """With its branch switched off (gate 0) our prefix attention is exactly the family's own attention."""
    from transformers import BertForSequenceClassification

    from lesson_lib.tiny import tiny_config

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config())
    model.config._attn_implementation = attn
    model.eval()
    before = logits(model, batch)
    ll.inject(model, ll.PrefixConfig(length=4), gates=ll.GateConfig(learned=False, value=0.0))
    assert torch.allclose(logits(model, batch), before, atol=1e-6)


def test_prefix_real_tokens_attend_to_prefix_and_positions_do_not_shift(tiny, batch):
    model, _ = tiny
    ll.inject(model, ll.PrefixConfig(length=3))
    layer = [m for m in model.modules() if isinstance(m, ll.prefix.PrefixAttention)][0]
    layer.keep_attention = True
    seen = {}
    model.bert.embeddings.register_forward_hook(lambda m, a, out: seen.update(shape=out.shape))
    logits(model, batch)
    att = layer.last_attention  # (B, H, T, P + T)
    assert att.shape[-1] == batch["input_ids"].shape[1] + 3
    assert seen["shape"][1] == batch["input_ids"].shape[1]  # sequence length (hence positions) unchanged
    assert float(att[..., :3].sum(-1).min()) > 0  # every real token gives the prefix some attention
    assert float(att[-1, :, :, -3:].max()) == 0.0  # padding keys get no attention


def test_fold_prefix_keeps_outputs_and_drops_the_mlp(tiny, batch):
    model, _ = tiny
    ll.inject(model, METHODS["prefix_reparam"])
    before = logits(model, batch)
    n_before = sum(p.numel() for p in model.parameters() if p.requires_grad)
    removed = ll.surgery.fold_prefix(model)
    assert removed > 0
    assert torch.allclose(logits(model, batch), before, atol=1e-6)
    n_after = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_before - n_after == removed
    assert n_after == 2 * 2 * 3 * 32 + (32 * 2 + 2)  # 2 layers × (K, V) × P × d, plus the head
    assert not hasattr(model, "prefix_encoder")


def test_learned_gates_move_during_training(tiny):
    model, _ = tiny
    ll.inject(model, METHODS["unipelt"], gates=ll.GateConfig())
    b = ll.tiny.tiny_batch()
    before = ll.surgery.read_gates(model, b)
    ll.train(model, tiny_task(), ll.TrainConfig(steps=10, lr=5e-2, batch_size=8, eval_every=0, progress=False))
    after = ll.surgery.read_gates(model, b)
    assert set(before) == {"lora", "adapter", "prefix"}
    assert any(abs(a - c) > 1e-4 for m in before for a, c in zip(before[m], after[m]))


@pytest.mark.parametrize("key", list(METHODS))
def test_inject_report_matches_count_params(tiny, key):
    model, _ = tiny
    report = _inject(model, key)
    counts = ll.count_params(model)
    assert report.by_method == {k: v for k, v in counts.by_method.items() if k not in ("head", "layernorm")}
    assert report.trainable == counts.trainable and report.total == counts.total
    assert counts.trainable == ll.metrics.formula_for(model)
