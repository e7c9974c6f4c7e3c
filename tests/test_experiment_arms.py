"""The experiments' arms beyond the registry: UniPELT as the paper builds it, LoRA with α fixed, per-method
learning rates, and the low-resource subsets (tiny random model: fast)."""

import pytest

import lesson_lib as ll
from lesson_lib import experiments
from lesson_lib.config import TrainConfig
from lesson_lib.train import parameter_groups


def test_unipelt_as_the_paper_builds_it():
    configs, gates = experiments.method_configs("unipelt_paper", None, None)
    lora, adapter, prefix = configs
    assert (lora.r, adapter.bottleneck, adapter.placement, prefix.reparam) == (8, 48, "pfeiffer", True)
    assert gates.learned
    assert experiments.TRAIN_EXTRAS["unipelt_paper"]()["lr_by_method"] == {"prefix": experiments.REGISTRY["prefix"].lr}


def test_lora_with_alpha_fixed_shrinks_the_scale_as_r_grows():
    small, _ = experiments.method_configs("lora_fixed_alpha", 1, None)
    large, _ = experiments.method_configs("lora_fixed_alpha", 64, None)
    assert small.alpha == large.alpha == experiments.FIXED_ALPHA
    assert small.alpha / small.r > large.alpha / large.r


def test_each_method_can_have_its_own_learning_rate():
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, [ll.LoRAConfig(r=2), ll.PrefixConfig(length=2, reparam=True)], gates=ll.GateConfig(learned=True))
    groups = parameter_groups(model, TrainConfig(lr=1e-3, lr_by_method={"prefix": 3e-2}))
    assert [g.get("lr") for g in groups] == [None, 3e-2]
    n_trainable = sum(p.requires_grad for p in model.parameters())
    assert sum(len(g["params"]) for g in groups) == n_trainable
    with pytest.raises(ValueError, match="no trainable parameter"):
        parameter_groups(model, TrainConfig(lr_by_method={"adapter": 1e-2}))
    with pytest.raises(ValueError, match="lr_by_method"):
        TrainConfig(lr_by_method={"prefix": -1.0})


def test_low_resource_budgets_and_methods():
    assert set(experiments.LOW_RESOURCE) == {100, 500, 1000}
    assert "unipelt_paper" in experiments.LOW_RESOURCE_METHODS
    assert "low_resource_tweets" in experiments.EXPERIMENTS
