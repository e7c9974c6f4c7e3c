"""ΔW analysis on models: LoRA and full fine-tuning updates, rank-k truncation."""

import numpy as np
import pytest
import torch

import lesson_lib as ll
from lesson_lib import analysis
from lesson_lib.tiny import tiny_batch, tiny_task


def _trained_lora(model, r=4):
    ll.inject(model, ll.LoRAConfig(r=r, alpha=8))
    torch.manual_seed(0)
    with torch.no_grad():
        for m in ll.surgery.lora_modules(model).values():
            m.lora_B.normal_(std=0.5)
    return model


def test_delta_weights_of_lora_is_scaling_b_a(tiny):
    model = _trained_lora(tiny[0])
    deltas = analysis.delta_weights(model)
    assert len(deltas) == 4  # 2 layers × (query, value)
    for name, m in ll.surgery.lora_modules(model).items():
        assert torch.allclose(deltas[name], m.scaling * m.lora_B @ m.lora_A)
        assert np.sum(analysis.singular_values(deltas[name]) > 1e-6 * analysis.singular_values(deltas[name])[0]) == 4


def test_delta_weights_of_a_full_fine_tune_uses_the_snapshot(tiny):
    model, _ = tiny
    snap = analysis.snapshot(model, ["bert.encoder.layer.0.attention.self.query"])
    ll.train(model, tiny_task(), ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    (name, dw), = analysis.delta_weights(model, snapshot=snap).items()
    assert dw.abs().max() > 0 and dw.shape == (32, 32)
    assert torch.allclose(dw, model.get_submodule(name).weight - snap[name])


def test_truncation_at_full_rank_changes_nothing_and_at_zero_removes_the_update(tiny):
    model, _ = tiny
    batch = tiny_batch()
    with torch.no_grad():
        base = model(**batch).logits
        _trained_lora(model)
        full = model(**batch).logits
        with analysis.truncated(model, 4):
            assert torch.allclose(model(**batch).logits, full, atol=1e-5)
        with analysis.truncated(model, 0):
            assert torch.allclose(model(**batch).logits, base, atol=1e-6)
        with analysis.truncated(model, 1):
            assert not torch.allclose(model(**batch).logits, full, atol=1e-4)
        assert torch.equal(model(**batch).logits, full)  # originals restored


def test_truncated_delta_equals_best_rank_k_approximation(tiny):
    model = _trained_lora(tiny[0])
    before = analysis.delta_weights(model)
    with analysis.truncated(model, 2):
        after = analysis.delta_weights(model)
    for name in before:
        assert torch.allclose(after[name], analysis.truncate_rank(before[name], 2), atol=1e-5)


def test_spectrum_summary_and_accuracy_by_rank(tiny):
    model = _trained_lora(tiny[0])
    rows = analysis.spectrum_summary(analysis.delta_weights(model))
    assert [r["name"] for r in rows] == ["L0.query", "L0.value", "L1.query", "L1.value"]
    assert all(r["rank"] == 4 and 0 < r["energy@1"] <= r["energy@2"] <= r["energy@4"] for r in rows)
    acc = analysis.accuracy_by_rank(model, tiny_task().test, ks=(1, 4))
    assert set(acc) == {1, 4} and all(0 <= a <= 1 for a in acc.values())
    with pytest.raises(ValueError, match="between 0 and r"):
        with analysis.truncated(model, 5):
            pass
