"""One row per method: the only place to add one.

A row says, for one method: its config type and name, how to put it into a model (the *planner*: the list
of ``Change``s that ``ll.inject`` makes), how many parameters it trains by formula, how a table labels it,
which setting is its size knob and its default size, and the learning rate the lessons use for it. The
rest of the library reads these rows: ``inject`` and ``remove`` (``surgery``), saving and loading (``io``),
the formulas (``metrics``), the experiments, the panels and the benchmarks.

Adding a method: write its module (a ``module.Wrapper`` around what it changes, or a ``MethodModule``
beside the layers), a frozen config dataclass, a planner and a formula, and add its row to ``METHODS``.
``bitfit.py`` is a whole method in one file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from . import bitfit, metrics_formulas
from .adapter import adapter_after
from .config import AdapterConfig, LoRAConfig, PrefixConfig, PromptConfig
from .lora import LoRALinear
from .models import arch_for, layers_of, max_tokens
from .prefix import PrefixAttention, PrefixEncoder
from .prompt import SoftPrompt
from .targets import Change, find_targets, layer_ids, layer_index, outermost


@dataclass(frozen=True)
class Method:
    """What the library knows about one method."""

    name: str                                   # "lora": the key in count_params().by_method and in files
    config: type                                # its config dataclass
    label: str                                  # how tables and plots name it
    plan: Callable[[nn.Module, object], list[Change]]  # the modules inject puts in, and where
    formula: Callable[..., int]                 # (ArchSpec, config) → trainable parameters
    make: Callable[..., object]                 # (size, layers) → the lessons' config at that size
    knob: str | None = None                     # the config field that sets its size ("r", "bottleneck", …)
    size: int | None = None                     # the lessons' default size
    lr: float = 1e-3                            # the lessons' learning rate (full mode, every layer)
    gated: bool = True                          # UniPELT can put a gate on it

    def config_at(self, size: int | None = None, layers=None):
        """The lessons' config for this method at ``size`` (None: the default size), in ``layers``."""
        return self.make(self.size if size is None else size, layers)


# --- planners: which modules each method adds, and where ---------------------------------------------------

def plan_lora(model: nn.Module, cfg: LoRAConfig) -> list[Change]:
    """A LoRALinear around every target projection."""
    arch, plan = arch_for(model), []
    for name in find_targets(model, cfg.targets, cfg.layers):
        parent, _, attr = name.rpartition(".")
        base = model.get_submodule(name)
        wrapper = LoRALinear(base, cfg.r, cfg.alpha, cfg.dropout, cfg.rslora)
        plan.append(Change(model.get_submodule(parent), attr, wrapper, base, layer_index(name, arch)))
    return plan


def plan_adapter(model: nn.Module, cfg: AdapterConfig) -> list[Change]:
    """An adapter after the attention output (Houlsby only) and after the feed-forward output of each layer."""
    arch, d, plan = arch_for(model), model.config.hidden_size, []
    where = ("output", "ffn_output") if cfg.placement == "houlsby" else ("ffn_output",)
    for i in layer_ids(model, cfg.layers):
        for alias in where:
            parent, attr, base = outermost(model, i, arch.aliases()[alias])
            wrapper = adapter_after(base, d, cfg.bottleneck, cfg.activation, cfg.init)
            plan.append(Change(parent, attr, wrapper, base, i))
    return plan


def plan_prefix(model: nn.Module, cfg: PrefixConfig) -> list[Change]:
    """A PrefixAttention around each layer's self-attention; with ``reparam``, one shared MLP beside them."""
    arch, plan, encoder = arch_for(model), [], None
    d, heads = model.config.hidden_size, model.config.num_attention_heads
    ref = next(model.parameters())
    if cfg.reparam:
        encoder = PrefixEncoder(len(layers_of(model)), cfg.length, d, cfg.reparam_hidden).to(ref.device, ref.dtype)
        plan.append(Change(model, "prefix_encoder", encoder, None))
    for i in layer_ids(model, cfg.layers):
        parent, attr, base = outermost(model, i, arch.attention)
        wrapper = PrefixAttention(base, arch, i, cfg.length, heads, encoder).to(ref.device, ref.dtype)
        plan.append(Change(parent, attr, wrapper, base, i))
    return plan


def plan_prompt(model: nn.Module, cfg: PromptConfig) -> list[Change]:
    """One SoftPrompt beside the model, hooked into the backbone's input."""
    room = max_tokens(model) - 2  # [CLS] and [SEP] at least
    if cfg.length > room:
        raise ValueError(f"a prompt of {cfg.length} vectors does not fit: this model reads at most {max_tokens(model)} "
                         f"positions, and [CLS] and [SEP] need two, so the prompt can be at most {room} long "
                         "(and every text is cut to the positions left)")
    backbone = model.get_submodule(arch_for(model).backbone)
    prompt = SoftPrompt(backbone.get_input_embeddings(), cfg.length, cfg.init, backbone=backbone)
    return [Change(model, "soft_prompt", prompt, None)]


# --- the rows ------------------------------------------------------------------------------------------------

# The learning rates are the lessons' full-mode ones (every layer, 300 steps of 32 tweets), found by measurement:
# the prefix with its MLP collapses to chance at 5e-3 and learns at 1e-3; prompt tuning needs much larger steps.
# LoRA's lessons keep alpha = 2r (the scale alpha / r stays 2 at every rank).
_ROWS = (
    Method("lora", LoRAConfig, "LoRA", plan_lora, metrics_formulas.lora_params,
           lambda r, layers: LoRAConfig(r=r, alpha=2 * r, layers=layers), "r", 8, 1e-3),
    Method("adapter", AdapterConfig, "adapters (Houlsby)", plan_adapter, metrics_formulas.adapter_params,
           lambda m, layers: AdapterConfig(bottleneck=m, layers=layers), "bottleneck", 64, 1e-3),
    Method("prefix", PrefixConfig, "prefix tuning (MLP)", plan_prefix, metrics_formulas.prefix_params,
           lambda p, layers: PrefixConfig(length=p, reparam=True, layers=layers), "length", 10, 1e-3),
    Method("prompt", PromptConfig, "prompt tuning", plan_prompt, metrics_formulas.prompt_params,
           lambda p, layers: PromptConfig(length=p), "length", 10, 3e-2, gated=False),
    Method("bitfit", bitfit.BitFitConfig, "BitFit (biases only)", bitfit.plan, bitfit.formula,
           lambda _, layers: bitfit.BitFitConfig(layers=layers), None, None, 1e-3, gated=False),
)
METHODS: dict[str, Method] = {m.name: m for m in _ROWS}


def method_of(cfg) -> Method:
    """The row of a config (``LoRAConfig(...)`` → the LoRA row); a clear error for anything else."""
    for m in _ROWS:
        if type(cfg) is m.config:
            return m
    names = ", ".join(m.config.__name__ for m in _ROWS)
    raise TypeError(f"inject takes {names} (a method's config), got {cfg!r}")


def config_types() -> dict[str, type]:
    """{config class name: class}, for reading a saved file's description back."""
    return {m.config.__name__: m.config for m in _ROWS}
