"""Every bad input gives a clear error (the words a student needs) and leaves the model as it was."""

import pytest
import torch

import lesson_lib as ll
from lesson_lib.tiny import tiny_batch, tiny_task

from .conftest import same_snapshot, snapshot


def logits(model):
    model.eval()
    with torch.no_grad():
        return model(**tiny_batch()).logits


@pytest.fixture
def unchanged(tiny):
    """The tiny model; after the test it must be exactly what it was (weights, modules, flags, outputs)."""
    model, _ = tiny
    snap, before = snapshot(model), logits(model)
    yield model
    assert same_snapshot(snap, snapshot(model))
    assert torch.equal(logits(model), before)


# --- configs validate themselves ----------------------------------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda: ll.LoRAConfig(r=0), "rank r must be a positive integer"),
    (lambda: ll.LoRAConfig(r=-1), "rank r must be a positive integer"),
    (lambda: ll.LoRAConfig(r=2.5), "rank r must be a positive integer"),
    (lambda: ll.LoRAConfig(alpha=0), "alpha must be a finite number > 0"),
    (lambda: ll.LoRAConfig(alpha=-4), "alpha must be a finite number > 0"),
    (lambda: ll.LoRAConfig(dropout=1.0), "dropout must be in [0, 1)"),
    (lambda: ll.LoRAConfig(targets="query"), "non-empty tuple"),
    (lambda: ll.LoRAConfig(targets=()), "non-empty tuple"),
    (lambda: ll.AdapterConfig(bottleneck=0), "bottleneck must be a positive integer"),
    (lambda: ll.AdapterConfig(placement="middle"), "houlsby"),
    (lambda: ll.PrefixConfig(length=0), "prefix length must be a positive integer"),
    (lambda: ll.PromptConfig(length=0), "prompt length must be a positive integer"),
    (lambda: ll.GateConfig(value=2.0), "gate value must be in [0, 1]"),
    (lambda: ll.TrainConfig(steps=0), "steps must be a positive integer"),
    (lambda: ll.TrainConfig(lr=0), "lr must be a finite number > 0"),
    (lambda: ll.TrainConfig(batch_size=0), "batch_size must be a positive integer"),
])
def test_bad_config_is_refused(make, words):
    with pytest.raises(ValueError) as err:
        make()
    assert words in str(err.value)


# --- inject ---------------------------------------------------------------------------------------------------

def test_rank_larger_than_the_layer(unchanged):
    with pytest.raises(ValueError, match=r"rank r must be in 1\.\.32 for a 32→32 layer, got 64"):
        ll.inject(unchanged, ll.LoRAConfig(r=64))


def test_targets_that_match_nothing_list_the_module_names(unchanged):
    with pytest.raises(ValueError, match="matches no module") as err:
        ll.inject(unchanged, ll.LoRAConfig(targets=("query", "qkv_proj")))
    assert "'qkv_proj'" in str(err.value)
    assert "bert.encoder.layer.0.attention.self.query" in str(err.value)  # real names to choose from
    assert "'value'" in str(err.value)  # and the aliases


@pytest.mark.parametrize("cfg", [ll.LoRAConfig(layers=(0, 5)), ll.AdapterConfig(layers=(2,)),
                                 ll.PrefixConfig(layers=(0, 9))], ids=["lora", "adapter", "prefix"])
def test_layers_out_of_range(unchanged, cfg):
    with pytest.raises(ValueError, match=r"do not exist; this model has layers 0\.\.1"):
        ll.inject(unchanged, cfg)


def test_lora_around_gpt2_conv1d():
    from transformers.pytorch_utils import Conv1D

    with pytest.raises(TypeError, match="Conv1D"):
        ll.lora.LoRALinear(Conv1D(8, 4), r=2, alpha=4)


def _gpt2():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    cfg = GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=100, bos_token_id=0, eos_token_id=0)
    return GPT2ForSequenceClassification(cfg)


@pytest.mark.parametrize("call", [ll.models.arch_for, lambda m: ll.inject(m, ll.LoRAConfig()), ll.count_params,
                                  lambda m: ll.targets.find_targets(m, "c_attn")],
                         ids=["arch_for", "inject", "count", "find"])
def test_unsupported_family_names_the_supported_ones(call):
    model = _gpt2()
    snap = snapshot(model)
    with pytest.raises(ll.models.UnsupportedModelError, match="'gpt2' is not supported") as err:
        call(model)
    assert "bert, distilbert, roberta" in str(err.value)
    assert same_snapshot(snap, snapshot(model))


def test_injecting_the_same_method_twice(tiny):
    model, _ = tiny
    ll.inject(model, ll.LoRAConfig(r=4))
    snap = snapshot(model)
    with pytest.raises(ValueError, match=r"already has \['lora'\]"):
        ll.inject(model, ll.LoRAConfig(r=2, targets=("key",)))
    assert same_snapshot(snap, snapshot(model))


def test_the_same_method_twice_in_one_list(unchanged):
    with pytest.raises(ValueError, match="each method may appear once"):
        ll.inject(unchanged, [ll.LoRAConfig(), ll.LoRAConfig(targets=("nothing_here",))])


def test_not_a_config(unchanged):
    with pytest.raises(TypeError, match="inject takes LoRAConfig"):
        ll.inject(unchanged, {"r": 8})


MIDWAY = [[ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=4), ll.PrefixConfig(length=2, layers=(9,))],
          [ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=4, layers=(7,))],
          [ll.AdapterConfig(bottleneck=4), ll.LoRAConfig(r=4, targets=("nothing_here",))]]


@pytest.mark.parametrize("num_labels", [None, 3], ids=["same_head", "new_head"])
@pytest.mark.parametrize("configs", MIDWAY, ids=["prefix_bad", "adapter_bad", "lora_bad"])
def test_inject_failing_midway_leaves_a_fresh_model_unchanged(unchanged, configs, num_labels):
    with pytest.raises(ValueError):
        ll.inject(unchanged, configs, num_labels=num_labels)
    assert ll.tasks.names(unchanged) == {} and unchanged.classifier.out_features == 2


@pytest.mark.parametrize("name, num_labels", [(None, None), ("topic", 3)], ids=["same_task", "new_task"])
@pytest.mark.parametrize("configs", MIDWAY, ids=["prefix_bad", "adapter_bad", "lora_bad"])
def test_inject_failing_midway_leaves_a_model_with_a_task_unchanged(tiny, configs, name, num_labels):
    model, _ = tiny
    ll.inject(model, ll.PromptConfig(length=2))
    ll.train(model, tiny_task(), ll.TrainConfig(steps=2, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    snap, before, check = snapshot(model), logits(model), ll.checksum(model)
    with pytest.raises(ValueError):
        ll.inject(model, configs, name=name, num_labels=num_labels)
    assert same_snapshot(snap, snapshot(model))
    assert torch.equal(logits(model), before)
    assert ll.checksum(model) == check and list(ll.tasks.names(model)) == ["default"] and model.num_labels == 2


def test_a_failed_new_task_keeps_the_previous_lora_merged(tiny):
    model, _ = tiny
    ll.inject(model, ll.LoRAConfig(r=4))
    ll.merge(model)
    snap = snapshot(model)
    with pytest.raises(ValueError, match="matches no module"):
        ll.inject(model, ll.LoRAConfig(targets=("nothing_here",)), name="other")
    assert same_snapshot(snap, snapshot(model))
    assert all(m.merged for m in ll.surgery.lora_modules(model).values())


def test_gates_with_prompt_tuning(unchanged):
    with pytest.raises(ValueError, match="prompt tuning is not gated"):
        ll.inject(unchanged, [ll.LoRAConfig(), ll.PromptConfig()], gates=ll.GateConfig())


# --- training, data, loading -------------------------------------------------------------------------------

def test_train_with_the_wrong_number_of_labels(unchanged):
    with pytest.raises(ValueError, match="num_labels=3"):
        ll.train(unchanged, tiny_task(num_labels=3), ll.TrainConfig(steps=1, progress=False))


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'nope'") as err:
        ll.load_task("nope")
    assert all(name in str(err.value) for name in ("tweets", "tweets3", "bbc", "sst2"))


def test_unknown_model_offline_points_to_the_packaged_one():
    with pytest.raises(RuntimeError, match=r"ll\.load_base\(\)"):
        ll.load_base("some-org/some-model")


@pytest.mark.parametrize("texts", [[], "one string, not a list"])
def test_predict_needs_a_list_of_texts(unchanged, texts):
    with pytest.raises(ValueError, match="non-empty list of texts"):
        ll.predict(unchanged, texts)


def test_merge_without_lora(tiny):
    model, _ = tiny
    ll.inject(model, ll.AdapterConfig(bottleneck=4))
    snap = snapshot(model)
    with pytest.raises(ValueError, match="no LoRA layers to merge"):
        ll.merge(model)
    assert same_snapshot(snap, snapshot(model))


def test_merge_on_the_bare_model(unchanged):
    with pytest.raises(ValueError, match="no LoRA layers to merge"):
        ll.merge(unchanged)


def test_gates_without_gates(unchanged):
    with pytest.raises(ValueError, match="no gates"):
        ll.surgery.set_gates(unchanged, lora=0.0)
    with pytest.raises(ValueError, match="no gates"):
        ll.surgery.read_gates(unchanged, tiny_batch())


def test_set_gates_bad_values(tiny):
    model, _ = tiny
    ll.inject(model, [ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=4)], gates=ll.GateConfig(learned=False))
    snap = snapshot(model)
    for kwargs, words in [({"prefix": 1.0}, "no gated 'prefix'"), ({"lora": 1.5}, r"in \[0, 1\]"),
                          ({"adapter": [1.0, 0.0, 1.0]}, "2 values"), ({"lora": None}, "learned=False")]:
        with pytest.raises(ValueError, match=words):
            ll.surgery.set_gates(model, **kwargs)
    assert same_snapshot(snap, snapshot(model))


def test_switching_to_an_unknown_task(tiny):
    model, _ = tiny
    ll.inject(model, ll.LoRAConfig(r=4), name="sentiment")
    with pytest.raises(ValueError, match=r"no task named 'topic'; tasks on this model: \['sentiment'\]"):
        ll.tasks.set_active(model, "topic")
