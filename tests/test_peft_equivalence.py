"""Our LoRA equals Hugging Face PEFT's: same A, B and head ⇒ same logits; export_peft loads in PEFT."""

import json

import pytest
import torch

import lesson_lib as ll
from lesson_lib.tiny import tiny_batch

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # peft → transformers


def logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@torch.no_grad()
def ours(model, rslora=False, seed=0, **kw):
    """Our LoRA (r=4, alpha=8) with random A, B and a random head, so nothing is zero by accident."""
    ll.inject(model, ll.LoRAConfig(r=4, alpha=8, rslora=rslora, **kw))
    g = torch.Generator().manual_seed(seed)
    for m in ll.surgery.lora_modules(model).values():
        m.lora_A.copy_(torch.randn(m.lora_A.shape, generator=g) * 0.3)
        m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.3)
    model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=g) * 0.3)
    model.classifier.bias.copy_(torch.randn(model.classifier.bias.shape, generator=g))
    return model


def peft_model(base, rslora=False):
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS",
                          use_rslora=rslora)
    return peft.get_peft_model(base, cfg)


@torch.no_grad()
def copy_into_peft(model, pm):
    params = dict(pm.named_parameters())
    for name, m in ll.surgery.lora_modules(model).items():
        params[f"base_model.model.{name}.lora_A.default.weight"].copy_(m.lora_A)
        params[f"base_model.model.{name}.lora_B.default.weight"].copy_(m.lora_B)
    for pname in ("weight", "bias"):
        params[f"base_model.model.classifier.modules_to_save.default.{pname}"].copy_(
            getattr(model.classifier, pname))


@pytest.mark.parametrize("rslora", [False, True], ids=["alpha_over_r", "rslora"])
def test_same_a_b_and_head_give_the_same_logits_as_peft(rslora):
    batch = tiny_batch()
    model = ours(ll.load_base(tiny=True, seed=0)[0], rslora)
    pm = peft_model(ll.load_base(tiny=True, seed=0)[0], rslora)  # an identical copy of the base
    before = logits(pm, batch)
    copy_into_peft(model, pm)
    assert not torch.allclose(logits(pm, batch), before, atol=1e-3)  # the copy really changed PEFT's model
    assert torch.allclose(logits(pm, batch), logits(model, batch), atol=1e-5)


def test_merge_matches_peft_merge():
    batch = tiny_batch()
    model = ours(ll.load_base(tiny=True, seed=0)[0])
    pm = peft_model(ll.load_base(tiny=True, seed=0)[0])
    copy_into_peft(model, pm)
    ll.merge(model)
    merged = pm.merge_and_unload()
    assert torch.allclose(logits(merged, batch), logits(model, batch), atol=1e-5)


@pytest.mark.parametrize("rslora", [False, True], ids=["alpha_over_r", "rslora"])
def test_export_peft_loads_in_peft(tmp_path, rslora):
    from peft import PeftModel

    batch = tiny_batch()
    model = ours(ll.load_base(tiny=True, seed=0)[0], rslora)
    ll.export_peft(model, tmp_path / "peft")
    cfg = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert cfg["target_modules"] == ["query", "value"] and cfg["modules_to_save"] == ["classifier"]
    pm = PeftModel.from_pretrained(ll.load_base(tiny=True, seed=0)[0], tmp_path / "peft")
    head = pm.base_model.model.classifier.modules_to_save["default"]
    assert torch.equal(head.weight, model.classifier.weight)  # the head came along (modules_to_save)
    assert torch.allclose(logits(pm, batch), logits(model, batch), atol=1e-5)


@pytest.mark.parametrize("kw", [{"targets": ("output",)}, {"layers": (1,)}], ids=["output_dense", "one_layer"])
def test_export_peft_names_exactly_the_wrapped_modules(tmp_path, kw):
    """'output' is attention.output.dense; PEFT's suffix "dense" would also catch the FFN and the pooler."""
    from peft import PeftModel

    batch = tiny_batch()
    model = ours(ll.load_base(tiny=True, seed=0)[0], **kw)
    ll.export_peft(model, tmp_path / "peft")
    pm = PeftModel.from_pretrained(ll.load_base(tiny=True, seed=0)[0], tmp_path / "peft")
    wrapped = {n for n, m in pm.base_model.model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == set(ll.surgery.lora_modules(model))
    assert torch.allclose(logits(pm, batch), logits(model, batch), atol=1e-5)


@pytest.mark.parametrize("what", ["adapter", "gated", "nothing"])
def test_export_peft_refuses_what_peft_cannot_hold(tiny, tmp_path, what):
    model, _ = tiny
    if what == "adapter":
        ll.inject(model, ll.AdapterConfig(bottleneck=4))
    elif what == "gated":
        ll.inject(model, ll.LoRAConfig(r=4), gates=ll.GateConfig())
    with pytest.raises(ValueError, match="LoRA-only" if what != "gated" else "gated"):
        ll.export_peft(model, tmp_path / "peft")


@pytest.mark.integration
def test_export_peft_on_minilm_loads_in_peft(tmp_path):
    from peft import PeftModel

    model, tok = ll.load_base()
    ll.inject(model, ll.LoRAConfig(r=8, alpha=16, targets=("query", "value")))
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for m in ll.surgery.lora_modules(model).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.05)
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=g) * 0.05)
    ll.export_peft(model, tmp_path / "peft")
    pm = PeftModel.from_pretrained(ll.load_base()[0], tmp_path / "peft")
    batch = dict(tok(["the flight was late again", "great crew, smooth landing"], padding=True, return_tensors="pt"))
    assert torch.allclose(logits(pm, batch), logits(model, batch), atol=1e-5)
