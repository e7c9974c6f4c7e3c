"""Parameter counts on paper: how many numbers does each method train?

Every PEFT method adds a few small matrices beside a big frozen model. Their size follows from the
architecture alone (layers L, width d, feed-forward width d_ffn), so it can be computed before any
model is built. ``lora_params``, ``adapter_params``, ``prefix_params`` and ``prompt_params`` count
exactly the trainable parameters our modules build (the classifier head is NOT included);
``full_params`` counts a whole BERT-style encoder (or the GPT-3 decoder) from first principles.

Nothing here touches a model: only integers. ``lesson_lib.metrics`` puts these formulas to use
(``formula_params`` for any config, ``memory_report`` for the bytes a GPU must hold) and checks them
against the real modules with ``count_params(model)``. ``gpt3_table4()`` sets the LoRA paper's printed GPT-3
counts (Hu et al. 2021, Table 4) beside the paper's own formulas, differences included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .config import TARGET_ALIASES, AdapterConfig, LoRAConfig, PrefixConfig, PromptConfig, canonical_target


@dataclass(frozen=True)
class ArchSpec:
    """The shape of a Transformer, all a parameter formula needs.

    BERT-style encoders have an embedding LayerNorm, token-type embeddings and a pooler; GPT-style
    decoders have none of these but a final LayerNorm after the last block. The output (LM) head of
    GPT is tied to the word embedding, so it is counted once. ``n_labels`` sizes the classifier head
    (0 = no head). Change a field with ``dataclasses.replace(MINILM_L6, n_labels=3)``.
    """

    name: str
    n_layers: int
    d_model: int
    d_ffn: int
    n_heads: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    n_labels: int = 2
    has_pooler: bool = True
    layernorm_per_layer: int = 2
    embedding_layernorm: bool = True
    final_layernorm: bool = False

    def __post_init__(self) -> None:
        sizes = (self.n_layers, self.d_model, self.d_ffn, self.n_heads, self.vocab_size, self.max_positions)
        if not all(isinstance(n, int) and n > 0 for n in sizes) or min(self.type_vocab_size, self.n_labels) < 0:
            raise ValueError(f"ArchSpec sizes must be positive integers (type_vocab_size, n_labels >= 0): {self}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}.")


MINILM_L6 = ArchSpec("all-MiniLM-L6-v2", 6, 384, 1536, 12, 30522, 512, 2)
BERT_BASE = ArchSpec("bert-base-uncased", 12, 768, 3072, 12, 30522, 512, 2)
# Brown et al. 2020, Table 2.1: 96 layers, d_model 12288, 96 heads, context 2048, GPT-2 BPE vocabulary.
GPT3_175B = ArchSpec("GPT-3 175B", 96, 12288, 4 * 12288, 96, 50257, 2048, 0, n_labels=0, has_pooler=False,
                     embedding_layernorm=False, final_layernorm=True)
PRESETS: dict[str, ArchSpec] = {"minilm": MINILM_L6, "bert-base": BERT_BASE, "gpt3-175b": GPT3_175B}


def spec_from_hf_config(config, name: str | None = None) -> ArchSpec:
    """An ArchSpec read from a Hugging Face BERT-family config object (no weights, no download)."""
    return ArchSpec(
        name=name or getattr(config, "name_or_path", "") or getattr(config, "model_type", "model"),
        n_layers=config.num_hidden_layers, d_model=config.hidden_size,
        d_ffn=getattr(config, "intermediate_size", None) or config.hidden_dim,  # DistilBERT calls it hidden_dim
        n_heads=config.num_attention_heads, vocab_size=config.vocab_size,
        max_positions=config.max_position_embeddings, type_vocab_size=getattr(config, "type_vocab_size", 0),
        n_labels=getattr(config, "num_labels", 2))


# ---------------------------------------------------------------------------------------- base model

def _linear(d_in: int, d_out: int) -> int:
    """nn.Linear(d_in, d_out) with bias: a d_out × d_in weight plus d_out biases."""
    return d_in * d_out + d_out


def layer_params(spec: ArchSpec) -> int:
    """One Transformer block: q, k, v, o projections, the two feed-forward layers, its LayerNorms."""
    d, f = spec.d_model, spec.d_ffn
    attention = 4 * _linear(d, d)                       # W_q, W_k, W_v, W_o (d → d each)
    feed_forward = _linear(d, f) + _linear(f, d)        # intermediate (d → f), output (f → d)
    return attention + feed_forward + spec.layernorm_per_layer * 2 * d  # LayerNorm: gain + bias


def head_params(spec: ArchSpec) -> int:
    """The classifier head Linear(d, n_labels): d·n_labels + n_labels."""
    return _linear(spec.d_model, spec.n_labels) if spec.n_labels else 0


def full_params(spec: ArchSpec) -> int:
    """Every parameter of the base model: embeddings, all blocks, pooler and head (what full fine-tuning trains)."""
    d = spec.d_model
    embeddings = (spec.vocab_size + spec.max_positions + spec.type_vocab_size) * d
    layernorms = 2 * d * (int(spec.embedding_layernorm) + int(spec.final_layernorm))
    pooler = _linear(d, d) if spec.has_pooler else 0
    return embeddings + layernorms + spec.n_layers * layer_params(spec) + pooler + head_params(spec)


# -------------------------------------------------------------------------------------------- methods

# LoRA target name → (input width, output width) of the wrapped matrix; "d" = d_model, "f" = d_ffn.
LORA_TARGETS: dict[str, tuple[str, str]] = {
    "query": ("d", "d"), "key": ("d", "d"), "value": ("d", "d"), "output": ("d", "d"),
    "intermediate": ("d", "f"), "ffn_output": ("f", "d"),
}

def _n_layers(spec: ArchSpec, layers: Sequence[int] | None) -> int:
    """How many layers a method touches: all of them, or the distinct indices in ``layers``."""
    if layers is None:
        return spec.n_layers
    bad = [i for i in layers if not isinstance(i, int) or not 0 <= i < spec.n_layers]
    if bad:
        raise ValueError(f"layer indices {bad} out of range for {spec.name} ({spec.n_layers} layers: "
                         f"0..{spec.n_layers - 1}).")
    return len(set(layers))


def _canonical_target(name: str) -> str:
    canonical = canonical_target(name)
    if canonical is None:
        raise ValueError(f"unknown LoRA target {name!r}; accepted: {sorted(LORA_TARGETS)} "
                         f"(aliases: {sorted(TARGET_ALIASES)}).")
    return canonical


def lora_params(spec: ArchSpec, cfg: LoRAConfig) -> int:
    """LoRA: A (r × d_in) and B (d_out × r) per wrapped matrix, r·(d_in + d_out) each, no biases.

    A target named twice (``"query"`` and ``"q"``) is one matrix, counted once.
    """
    width = {"d": spec.d_model, "f": spec.d_ffn}
    targets = {_canonical_target(t) for t in cfg.targets}
    per_layer = sum(cfg.r * (width[LORA_TARGETS[t][0]] + width[LORA_TARGETS[t][1]]) for t in targets)
    return _n_layers(spec, cfg.layers) * per_layer


def layernorm_params(spec: ArchSpec) -> int:
    """Every LayerNorm inside the blocks (gain + bias, 2d each); the embedding/final LayerNorm excluded."""
    return spec.n_layers * spec.layernorm_per_layer * 2 * spec.d_model


def adapter_params(spec: ArchSpec, cfg: AdapterConfig) -> int:
    """Bottleneck adapters: down Linear(d, m) + up Linear(m, d), both with bias = 2dm + m + d each.

    Houlsby places two per layer (after attention and after the feed-forward block), Pfeiffer one.
    ``train_layernorm`` unfreezes every LayerNorm of every block, also in layers without an adapter.
    """
    d, m = spec.d_model, cfg.bottleneck
    per_adapter = _linear(d, m) + _linear(m, d)                    # 2dm + m + d
    adapters = _n_layers(spec, cfg.layers) * (2 if cfg.placement == "houlsby" else 1) * per_adapter
    return adapters + (layernorm_params(spec) if cfg.train_layernorm else 0)


def prefix_params(spec: ArchSpec, cfg: PrefixConfig, *, folded: bool = False) -> int:
    """Prefix tuning: P key and P value vectors of width d in each of the L' prefixed layers.

    Flat: L'·2·P·d. With ``reparam`` (Li & Liang; PEFT's ``prefix_projection``) training instead learns
    Embedding(P, d) → Linear(d, h) → tanh → Linear(h, L·2·d), i.e. P·d + d·h + h + h·2Ld + 2Ld; this
    encoder always produces all L layers' prefixes, even when only L' of them are used. After training
    the MLP is run once and thrown away (``folded=True``): the flat count remains.
    """
    n, d, p = spec.n_layers, spec.d_model, cfg.length
    flat = _n_layers(spec, cfg.layers) * 2 * p * d
    if not cfg.reparam or folded:
        return flat
    return p * d + _linear(d, cfg.reparam_hidden) + _linear(cfg.reparam_hidden, n * 2 * d)


def prompt_params(spec: ArchSpec, cfg: PromptConfig) -> int:
    """Prompt tuning: P soft-token embeddings of width d, prepended to the input only."""
    return cfg.length * spec.d_model


def gate_params(spec: ArchSpec, n_methods: int) -> int:
    """UniPELT gates: one Linear(d, 1) per method per layer, L·n_methods·(d + 1)."""
    if not isinstance(n_methods, int) or n_methods < 1:
        raise ValueError(f"n_methods must be a positive integer, got {n_methods!r}.")
    return spec.n_layers * n_methods * _linear(spec.d_model, 1)


def gate_params_for(spec: ArchSpec, cfg: LoRAConfig | AdapterConfig | PrefixConfig) -> int:
    """The learned UniPELT gates of one method: per layer it touches, one Linear(width, 1) per input width it
    reads (LoRA on query and value: one gate of width d; adding ffn_output, whose input is d_ffn wide: a second)."""
    if isinstance(cfg, LoRAConfig):
        width = {"d": spec.d_model, "f": spec.d_ffn}
        widths = {width[LORA_TARGETS[_canonical_target(t)][0]] for t in cfg.targets}
    else:
        widths = {spec.d_model}
    return _n_layers(spec, cfg.layers) * sum(_linear(w, 1) for w in widths)


# ------------------------------------------------------------------ LoRA paper, Table 4 (GPT-3 175B)
# The formulas of Hu et al. 2021 (arXiv 2106.09685, §5.1); settings from its Appendix D.4 and Table 15.

def paper_lora(spec: ArchSpec, r: int, n_types: int) -> int:
    """|Θ| = 2 × L̂_LoRA × d_model × r, with L̂_LoRA = n_types × L adapted d × d matrices."""
    return 2 * (n_types * spec.n_layers) * spec.d_model * r


def paper_adapter_h(spec: ArchSpec, r: int, n_layernorms: int = 0) -> int:
    """|Θ| = L̂_Adpt × (2 d_model r + r + d_model) + 2 × L̂_LN × d_model, with L̂_Adpt = 2L (Houlsby)."""
    return 2 * spec.n_layers * (2 * spec.d_model * r + r + spec.d_model) + 2 * n_layernorms * spec.d_model


def paper_prefix_embed(spec: ArchSpec, l_p: int, l_i: int) -> int:
    """|Θ| = d_model × (l_p + l_i): trainable embeddings of l_p prefix and l_i infix tokens."""
    return spec.d_model * (l_p + l_i)


def paper_prefix_layer(spec: ArchSpec, l_p: int, l_i: int) -> int:
    """|Θ| = L × d_model × (l_p + l_i): the special tokens' activations after every layer."""
    return spec.n_layers * spec.d_model * (l_p + l_i)


def bias_params(spec: ArchSpec) -> int:
    """BitFit trains every bias vector: q, k, v, o, both feed-forward layers, every LayerNorm's bias."""
    d = spec.d_model
    per_layer = 4 * d + spec.d_ffn + d + spec.layernorm_per_layer * d
    extra = d * (int(spec.embedding_layernorm) + int(spec.final_layernorm) + int(spec.has_pooler))
    return spec.n_layers * per_layer + extra + spec.n_labels


@dataclass(frozen=True)
class PaperRow:
    """One Table 4 row: the printed count beside the count its formula gives for the stated setting."""

    method: str
    setting: str
    printed: str                # exactly as printed, e.g. "4.7M"
    printed_params: int         # the same number in parameters (printed to ±0.05M)
    formula_params: int | None
    formula: str
    note: str = ""

    @property
    def difference(self) -> int | None:
        """formula − printed, in parameters (None when there is no formula)."""
        return None if self.formula_params is None else self.formula_params - self.printed_params

    @property
    def matches(self) -> bool:
        """True when the formula rounds to the printed number at the printed precision (0.1M)."""
        return self.formula_params is not None and round(self.formula_params / 1e5) == round(self.printed_params / 1e5)


def gpt3_table4() -> list[PaperRow]:
    """The GPT-3 175B rows of the LoRA paper's Table 4, each printed count next to its formula."""
    g, row = GPT3_175B, PaperRow
    full, untied = full_params(g), full_params(g) + g.vocab_size * g.d_model
    lora_1, adapter_ln = paper_lora(g, r=1, n_types=2), paper_adapter_h(g, 1, n_layernorms=2 * g.n_layers)
    return [
        row("Fine-Tune", "all weights", "175,255.8M", 175_255_800_000, full,
            "full_params (ours): (V + T)·d + L·(4(d²+d) + 2·d·d_ffn + d_ffn + d + 4d) + 2d",
            f"The paper prints no formula. GPT-3's shape with a tied output embedding gives {full / 1e6:,.1f}M; "
            f"untying it would give {untied / 1e6:,.1f}M, still short of the printed figure."),
        row("BitFit", "bias vectors only", "14.2M", 14_200_000, bias_params(g),
            "bias_params (ours): L·(4d + d_ffn + d + 2d) + d", "The paper prints no formula for BitFit."),
        row("PreEmbed", "l_p = 256, l_i = 8", "3.2M", 3_200_000, paper_prefix_embed(g, 256, 8),
            "d_model × (l_p + l_i)"),
        row("PreLayer", "l_p = 8, l_i = 8", "20.2M", 20_200_000, paper_prefix_layer(g, 8, 8),
            "L × d_model × (l_p + l_i)",
            "The paper's own formula does not give the printed 20.2M for its stated setting; kept as printed. "
            "Table 15's other PreLayer rows differ too (l_p = 8, l_i = 0: formula 9.4M, printed 10.1M)."),
        row("AdapterH", "r = 1", "7.1M", 7_100_000, paper_adapter_h(g, 1),
            "L̂_Adpt × (2 d_model r + r + d_model), L̂_Adpt = 2L = 192, L̂_LN = 0",
            f"The printed counts fit L̂_LN = 0; also training the 192 LayerNorms gives {adapter_ln / 1e6:.1f}M."),
        row("AdapterH", "r = 8", "40.1M", 40_100_000, paper_adapter_h(g, 8),
            "L̂_Adpt × (2 d_model r + r + d_model), L̂_Adpt = 2L = 192, L̂_LN = 0"),
        row("LoRA", "r_q = r_v = 1 (or r_v = 2)", "4.7M", 4_700_000, lora_1,
            "2 × L̂_LoRA × d_model × r, L̂_LoRA = 2L = 192"),
        row("LoRA", "r_q = r_v = 8 (or r_q = r_k = r_v = r_o = 4)", "37.7M", 37_700_000, 8 * lora_1,
            "2 × L̂_LoRA × d_model × r, L̂_LoRA = 2L = 192",
            "Appendix D.4 writes r_q = r_k = r_v = r_o = 2 for this budget, which is 18.9M; Table 15 lists 4."),
    ]


GPT3_TABLE4: list[PaperRow] = gpt3_table4()


def format_table4(rows: Sequence[PaperRow] | None = None) -> str:
    """Table 4 (or the given rows) as fixed-width text: printed count, exact formula count, and the gap."""
    lines = [f"{'method':<10}{'setting':<46}{'printed':>11}{'formula':>17}  {'gap':<9}matches"]
    for r in GPT3_TABLE4 if rows is None else rows:
        formula = "-" if r.formula_params is None else f"{r.formula_params:,}"
        gap = "-" if r.difference is None else "rounding" if r.matches else f"{r.difference / 1e6:+,.1f}M"
        lines.append(f"{r.method:<10}{r.setting:<46}{r.printed:>11}{formula:>17}  {gap:<9}{r.matches}")
    return "\n".join(lines)
