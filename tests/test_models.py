"""Loading: the tiny model, the ARCH table across families, and the real packaged MiniLM."""

import subprocess
import sys

import pytest
import torch
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

import lesson_lib as ll
from lesson_lib.tiny import tiny_batch


def _roberta():
    torch.manual_seed(0)
    cfg = RobertaConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=1)
    return RobertaForSequenceClassification(cfg).eval()


def _distilbert():
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=200, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64)
    return DistilBertForSequenceClassification(cfg).eval()


def test_tiny_model_needs_no_files_and_is_deterministic():
    m1, tok = ll.load_base(tiny=True)
    m2, _ = ll.load_base(tiny=True)
    assert m1.config.hidden_size == 32 and m1.config.num_hidden_layers == 2 and m1.config.num_attention_heads == 4
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    enc = tok(["the film was wonderful!"], return_tensors="pt")
    assert enc["input_ids"][0, 0] == tok.cls_token_id and enc["input_ids"][0, -1] == tok.sep_token_id
    assert tok.unk_token_id not in enc["input_ids"][0].tolist()
    assert ll.models.tokenizer_for(m1) is tok
    assert not m1.training


@pytest.mark.parametrize("make", [_roberta, _distilbert], ids=["roberta", "distilbert"])
@pytest.mark.parametrize("cfg", [ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=8),
                                 ll.PrefixConfig(length=3), ll.PromptConfig(length=2)], ids=lambda c: type(c).__name__)
def test_every_family_in_arch_supports_every_method(make, cfg):
    model = make()
    batch = {k: v.clamp(max=199) for k, v in tiny_batch().items()}
    with torch.no_grad():
        before = model(**batch).logits
        gated = isinstance(cfg, ll.PrefixConfig)
        ll.inject(model, cfg, gates=ll.GateConfig(learned=False, value=0.0) if gated else None)
        after = model(**batch).logits
        if not isinstance(cfg, ll.PromptConfig):
            assert torch.allclose(after, before, atol=1e-6)  # identity at init (prefix: gate 0)
        assert ll.count_params(model).trainable == ll.metrics.formula_for(model)
        ll.remove(model)
        assert torch.equal(model(**batch).logits, before)


def test_unsupported_family_lists_the_supported_ones():
    model = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=100))
    with pytest.raises(ll.models.UnsupportedModelError, match="bert.*distilbert.*roberta"):
        ll.models.arch_for(model)


def test_hub_id_offline_fails_with_a_clear_message():
    with pytest.raises(RuntimeError, match=r"ll\.load_base\(\)"):
        ll.load_base("some-org/not-a-model-here")


@pytest.mark.integration
def test_offline_minilm_loads_quietly_with_22_7m_parameters():
    code = ("import lesson_lib as ll; m, t = ll.load_base(); "
            "print(sum(p.numel() for p in m.parameters()), m.config.model_type, t('hi')['input_ids'])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert res.stdout.split()[0] == "22713986"
    assert "LOAD REPORT" not in res.stdout + res.stderr and "MISSING" not in res.stdout + res.stderr
    assert "Loading weights" not in res.stderr


@pytest.mark.integration
def test_offline_minilm_is_identical_on_two_loads():
    m1, _ = ll.load_base()
    m2, _ = ll.load_base()
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
