"""The method pictures (lesson_lib.diagrams): valid SVG, readable sizes, and the shapes of the model they are given.

No browser here: the layout itself (no overlapping text, nothing cut off) was checked by rendering each picture
in headless Chromium; these tests keep the promises a student relies on (the numbers written on the picture are
the model's and the library's, the text is never smaller than 13 px, the picture fits 640 px).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import lesson_lib as ll
from lesson_lib import diagrams as dg

SVG = "{http://www.w3.org/2000/svg}"
FUNCTIONS = {"adapter": dg.adapter, "lora": dg.lora, "prefix": dg.prefix, "unipelt": dg.unipelt}
ALL_PICTURES = {**FUNCTIONS, "feedback": dg.feedback}  # feedback: lesson 07's pipeline, no frozen weights in it


@pytest.fixture(scope="module")
def tiny_model():
    return ll.load_base(tiny=True)[0]


def texts(diagram: dg.Diagram) -> list[str]:
    """Every <text> of the picture as it reads (a subscript tspan joins its letter: W_q reads 'Wq')."""
    root = ET.fromstring(diagram.svg)
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


def words(diagram: dg.Diagram) -> str:
    return "\n".join(texts(diagram))


@pytest.mark.parametrize("name", ALL_PICTURES)
def test_each_picture_is_valid_svg_that_fits(name):
    diagram = ALL_PICTURES[name]()
    assert isinstance(diagram, dg.Diagram)
    root = ET.fromstring(diagram.svg)  # parses as XML
    assert root.tag == f"{SVG}svg"
    x, y, width, height = (float(v) for v in root.get("viewBox").split())
    assert (x, y) == (0, 0) and 0 < width <= 640 and height > 0
    assert root.get("width") == "100%" and "max-width:640px" in root.get("style")
    # every font size, in attributes and in styles, is at least 13 px
    sizes = [float(v) for v in re.findall(r'font-size(?:="|:\s*)([\d.]+)', diagram.svg)]
    assert sizes and min(sizes) >= 13
    # a title line on top, and a <title> for screen readers
    assert root.find(f"{SVG}title").text == diagram.title
    assert texts(diagram)[0] == diagram.title
    # every piece of text is anchored inside the picture
    for el in root.iter(f"{SVG}text"):
        assert 0 <= float(el.get("x")) <= width and 0 < float(el.get("y")) <= height, "".join(el.itertext())
    # the notebook shows exactly this text
    assert diagram._repr_svg_() == diagram.svg
    assert diagram._repr_html_() == diagram.svg


@pytest.mark.parametrize("name", FUNCTIONS)
def test_frozen_and_trained_are_told_apart(name):
    diagram = FUNCTIONS[name]()
    text = words(diagram).lower()
    assert "frozen" in text and ("trained" in text or "learned" in text)
    fills = set(re.findall(r'fill="(#[0-9a-f]{6})"', diagram.svg))
    assert dg.STYLES["frozen"][0] in fills  # grey for frozen
    assert fills & {dg.STYLES[k][0] for k in ("lora", "adapter", "prefix")}  # a colour for trained


def test_adapter_shapes():
    text = words(dg.adapter())
    assert "384" in text and "64" in text and "1536" in text
    assert "12 heads × 32 · frozen" in text
    assert text.count("384 → 64 → 384 · trained") == 2  # two adapters per block (Houlsby et al.)
    assert "down-projection" in text and "up-projection" in text and "skip connection" in text
    assert f"{2 * 384 * 64 + 64 + 384:,}" in text  # 49,600 per adapter
    assert "(6 blocks, 12 adapters)" in text


def test_lora_shapes_and_labels():
    text = words(dg.lora())
    assert "r = 8" in text and "6,144" in text and "384 × 384" in text
    assert "A (8 × 384)" in text and "384 × 8" in text
    assert "A: random init" in text and "B: zeros at init → ΔW = 0" in text
    assert "merge: W′ = W + (α/r)·B·A, no extra latency" in text
    assert "α/r = 2" in words(dg.lora(r=8, alpha=16)) and "α/r = 0.5" in words(dg.lora(r=8, alpha=4))
    assert "r = 4" in words(dg.lora(r=4)) and "3,072" in words(dg.lora(r=4))


def test_prefix_shapes():
    text = words(dg.prefix())
    assert "d = 384 = 12 heads × 32" in text and "P = 10" in text
    assert "PK" in text and "PV" in text and "10 × 384" in text
    assert "every query attends to P + n positions" in text
    assert "prompt tuning: P vectors at the input only" in text
    assert f"{2 * 10 * 384:,}" in text  # 7,680 per layer
    assert "P = 20" in words(dg.prefix(length=20))


def test_unipelt_has_three_gated_branches():
    text = texts(dg.unipelt())
    assert {"gP", "gL", "gA"} <= set(text)  # the gates' circles, g with a subscript
    joined = "\n".join(text)
    assert "LoRA on Wq" in joined and "LoRA on Wv" in joined
    assert "prefix PK, PV" in joined and "adapter" in joined
    assert "σ(Wg x) ∈ (0, 1)" in joined
    assert dg.unipelt().svg.count("<circle") >= 4 + 3  # three gates (one twice) plus the ⊕ joins


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_given_model_sets_the_shapes(name, tiny_model):
    cfg = tiny_model.config
    text = words(FUNCTIONS[name](tiny_model))
    assert str(cfg.hidden_size) in text
    assert "384" not in text and "1536" not in text


def test_shapes_of_reads_the_config(tiny_model):
    cfg = tiny_model.config
    s = dg.shapes_of(tiny_model)
    assert (s.d, s.heads, s.ffn, s.layers) == (cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
                                                cfg.num_hidden_layers)
    assert s.head_dim == cfg.hidden_size // cfg.num_attention_heads
    assert dg.shapes_of(cfg) == s  # a config works too
    assert dg.shapes_of() == dg.Shapes(d=384, heads=12, ffn=1536, layers=6)  # MiniLM's
    assert f"{s.heads} heads × {s.head_dim}" in words(dg.adapter(tiny_model))
    with pytest.raises(TypeError, match="hidden_size"):
        dg.shapes_of(object())


def test_counts_on_the_picture_are_the_librarys(tiny_model):
    """The parameter counts written on the pictures equal what count_params measures after inject."""
    d, L = tiny_model.config.hidden_size, tiny_model.config.num_hidden_layers
    model = ll.load_base(tiny=True)[0]
    ll.inject(model, ll.LoRAConfig(r=8, targets=("query", "value")))
    lora_total = ll.count_params(model).by_method["lora"]
    text = words(dg.lora(tiny_model, r=8))
    assert f"{2 * d * 8:,} per matrix" in text and f"in all {L} layers: {lora_total:,}" in text

    model = ll.load_base(tiny=True)[0]
    ll.inject(model, ll.AdapterConfig(bottleneck=16))
    adapter_total = ll.count_params(model).by_method["adapter"]
    assert f"all {2 * L}: {adapter_total:,} trained numbers" in words(dg.adapter(tiny_model, bottleneck=16))

    model = ll.load_base(tiny=True)[0]
    ll.inject(model, ll.PrefixConfig(length=10))
    prefix_total = ll.count_params(model).by_method["prefix"]
    assert f"× {L} layers = {prefix_total:,}" in words(dg.prefix(tiny_model, length=10))


def test_save_writes_the_svg(tmp_path):
    diagram = dg.lora()
    path = diagram.save(tmp_path / "lora.svg")
    assert path.read_text(encoding="utf-8") == diagram.svg
    assert "LoRA" in repr(diagram)


@pytest.mark.parametrize("call", [lambda: dg.lora(r=0), lambda: dg.lora(alpha=-1), lambda: dg.adapter(bottleneck=0),
                                  lambda: dg.prefix(length=2.5), lambda: dg.unipelt(r=True)])
def test_bad_sizes_are_refused(call):
    with pytest.raises(ValueError, match="must be"):
        call()


def test_feedback_says_what_lesson_07_builds_and_leaves_out():
    text = words(dg.feedback())
    for step in ("1. fine-tuning (SFT)", "2. reward model", "3. PPO"):
        assert step in text
    assert "best-of-n: keep the" in text and "from labels, not people" in text
    assert "left out: text generation, human labellers, PPO and its KL penalty," in text
    svg = dg.feedback().svg
    assert svg.count('stroke-dasharray="6 4"') == 2  # steps 1 and 3 (the real ones) are not built here
