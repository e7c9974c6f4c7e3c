"""The library's shape: state on the model, one registry row per method, no import cycles, a small public face."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import lesson_lib as ll
from lesson_lib import registry
from lesson_lib.bitfit import BitFitConfig
from lesson_lib.lora import LoRALinear
from lesson_lib.module import MethodModule
from lesson_lib.tiny import tiny_batch, tiny_task

LIB = Path(ll.__file__).parent


def _logits(model):
    model.eval()
    with torch.no_grad():
        return model(**tiny_batch()).logits


def test_a_deep_copy_carries_the_methods_and_remove_works_on_it(tiny):
    model, _ = tiny
    base = _logits(model)
    ll.inject(model, [ll.LoRAConfig(r=2), ll.AdapterConfig(bottleneck=4)])
    for p in model.parameters():  # move away from the identity, so removing must change the outputs
        if p.requires_grad:
            nn.init.normal_(p, std=0.1)
    trained = _logits(model)
    twin = copy.deepcopy(model)
    assert ll.tasks.names(twin) == ll.tasks.names(model)
    assert torch.equal(_logits(twin), trained)
    assert ll.models.tokenizer_for(twin) is ll.models.tokenizer_for(model)  # the tokenizer travels along
    assert ll.remove(twin) is True
    assert not any(isinstance(m, MethodModule) for m in twin.modules())
    assert torch.equal(_logits(twin), base)
    assert torch.equal(_logits(model), trained) and ll.tasks.names(model)  # the original keeps its methods
    assert ll.remove(model) and torch.equal(_logits(model), base)


def test_no_module_level_registries_of_models():
    """State about a model lives on the model; no weak dictionaries keyed by models, no session globals."""
    for path in LIB.rglob("*.py"):
        text = path.read_text()
        assert "WeakKeyDictionary" not in text, path
        assert not re.search(r"^SESSION\s*=", text, flags=re.M), path


def _imports(path: Path) -> set[str]:
    """The lesson_lib modules ``path`` imports, at the top or inside functions."""
    package = path.relative_to(LIB.parent).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            if node.module:
                out.add(".".join(base + node.module.split(".")))
            else:
                out |= {".".join(base + [a.name]) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lesson_lib"):
            out.add(node.module)
    return {m for m in out if m.startswith("lesson_lib.") or m == "lesson_lib"}


def test_no_import_cycles_inside_the_library():
    modules = {".".join(p.relative_to(LIB.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in LIB.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} - {"lesson_lib"}
             for name, path in modules.items() if not name.endswith("__init__") and name != "lesson_lib"}
    done, stack = set(), []

    def visit(node: str) -> None:
        if node in stack:
            raise AssertionError("import cycle: " + " → ".join(stack[stack.index(node):] + [node]))
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_the_public_face_is_what_a_lesson_types():
    names = [n for n in ll.__all__ if not isinstance(getattr(ll, n), type(ll))]  # submodules aside
    assert len(names) <= 30, names
    assert all(hasattr(ll, n) for n in ll.__all__)


@pytest.mark.parametrize("name", list(registry.METHODS))
def test_every_registry_row_is_complete_and_its_formula_counts_the_real_model(name):
    row = registry.METHODS[name]
    cfg = row.config_at(None)
    assert registry.method_of(cfg) is row and type(cfg).__name__ in registry.config_types()
    model, _ = ll.load_base(tiny=True)
    report = ll.inject(model, cfg)
    spec = ll.metrics.spec_of(model)
    assert report.by_method[name] == row.formula(spec, cfg) == ll.count_params(model).by_method[name]


def test_lora_freezes_the_weight_it_wraps():
    layer = LoRALinear(nn.Linear(8, 4), r=2, alpha=4)
    assert not layer.base.weight.requires_grad and not layer.base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad


def test_bitfit_is_a_whole_method_in_one_file_saved_and_loaded_like_the_others(tiny, tmp_path):
    model, _ = tiny
    ll.inject(model, BitFitConfig())
    ll.train(model, tiny_task(), ll.TrainConfig(steps=3, lr=1e-2, batch_size=8, eval_every=0, progress=False))
    trained = _logits(model)
    ll.save_adapter(model, tmp_path / "bitfit.safetensors")
    fresh, _ = ll.load_base(tiny=True)
    ll.load_adapter(fresh, tmp_path / "bitfit.safetensors")
    assert torch.equal(_logits(fresh), trained)


def test_inject_refuses_something_that_is_not_a_method_config(tiny):
    model, _ = tiny
    with pytest.raises(TypeError, match="BitFitConfig"):
        ll.inject(model, {"r": 8})


def test_each_paper_fact_says_the_numbers_it_holds():
    """A fact's sentence and its values cannot drift apart: every value appears in the sentence."""
    for name, fact in ll.paper.FACTS.items():
        for key, value in fact.values.items():
            shown = f"{value:,}" if isinstance(value, int) and value >= 10_000 else f"{value:g}"
            assert shown in fact.says or f"{value / 1e6:.1f}M" in fact.says, (name, key, value)
        assert fact.source and str(fact).endswith(f"({fact.source})")
