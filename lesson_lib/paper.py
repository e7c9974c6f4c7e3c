"""The papers' numbers the lessons quote, written once, each with where it comes from.

A lesson prints a paper's number from here (``ll.paper.FACTS["houlsby_glue"]``) beside the number it measures,
so the two are never typed twice. Each was checked against the paper (section, table or figure given in
``source``; see ``shared/reference/paper-facts.md`` of the course for how they were read).

``TABLES`` holds whole tables of data points (``ll.paper.TABLES["lora_gpt3_table15"]``, the GPT-3 points of the
LoRA paper's Figure 2, which ``ll.plots.paper_vs_ours`` draws beside our own sweep).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One number (or a few) from a paper: the values, a sentence that says them, and where they come from."""

    values: dict
    says: str
    source: str

    def __str__(self) -> str:
        return f"{self.says} ({self.source})"


FACTS: dict[str, Fact] = {
    "houlsby_glue": Fact(
        {"gap_points": 0.4, "trained_share_percent": 3.6, "adapters_score": 80.0, "full_score": 80.4},
        "adapters come within 0.4 % of full fine-tuning on GLUE (80.0 vs 80.4) while training 3.6 % of the "
        "parameters per task",
        "Houlsby et al. 2019, abstract and Table 1"),
    "lora_gpt3_table4": Fact(
        {"lora_params": 4_718_592, "lora_wikisql": 73.4, "lora_mnli_m": 91.7,
         "full_wikisql": 73.8, "full_mnli_m": 89.5, "spread_wikisql": 0.5, "spread_mnli_m": 0.1},
        "on GPT-3 175B, LoRA with 4.7M trainable parameters scores 73.4 on WikiSQL and 91.7 on MNLI-m; full "
        "fine-tuning of all 175B scores 73.8 and 89.5 (run-to-run variation about ±0.5 and ±0.1)",
        "Hu et al. 2021, Table 4; the 4.7M row is r_v = 2 in Table 15"),
    "lora_checkpoint": Fact(
        {"full_gb": 350, "lora_mb": 35, "rank": 4},
        "with r = 4 on the query and value projections only, a GPT-3 task's checkpoint shrinks from 350 GB to "
        "35 MB (fp16), about 10,000 times smaller",
        "Hu et al. 2021, §4.2"),
    "lora_amplification": Fact(
        {"r4": 21.5, "r64": 1.88},
        "the amplification factor ‖ΔW‖ / ‖UᵀWVᵀ‖ is about 21.5 at r = 4 and only about 2 (1.88) at r = 64, "
        "layer 48 of GPT-3, W_q",
        "Hu et al. 2021, §7.3, Table 7 and Appendix H.4"),
    "lora_subspace": Fact(
        {"shared_dimension": 1, "similarity_above": 0.5},
        "the subspaces learned with r = 8 and r = 64 share a subspace of dimension 1 (their top direction) with "
        "similarity above 0.5; the others "
        "look like noise",
        "Hu et al. 2021, §7.2, Figure 3"),
    "flan_unseen": Fact(
        {"model_params_b": 137, "datasets": 60, "wins": 20, "tasks": 25, "baseline_params_b": 175},
        "FLAN, a 137B model instruction-tuned on over 60 datasets written as instructions, beats zero-shot 175B "
        "GPT-3 on 20 of 25 datasets of task types it never saw in training; more training tasks help",
        "Wei et al. 2022 (ICLR), abstract and §4.1; the first arXiv version said 19 of 25"),
    "instructgpt_preference": Fact(
        {"preferred_percent": 85, "plus_minus": 3, "small_params_b": 1.3, "large_params_b": 175},
        "people preferred the 175B InstructGPT's outputs to 175B GPT-3's 85 ± 3 % of the time, and even the "
        "1.3B InstructGPT's to 175B GPT-3's, with over 100 times fewer parameters",
        "Ouyang et al. 2022, §1 and Figure 1"),
}


@dataclass(frozen=True)
class Table:
    """A paper's table of data points: column names, one tuple per row as the paper prints it, the caption
    said in a sentence of our own, and where it comes from."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    caption: str
    source: str

    def records(self, **where) -> list[dict]:
        """The rows as dicts, optionally only those matching ``where``: ``records(method="LoRA")``."""
        rows = [dict(zip(self.columns, row, strict=True)) for row in self.rows]
        return [r for r in rows if all(r[k] == v for k, v in where.items())]

    def __str__(self) -> str:
        return f"{self.caption} ({self.source})"


TABLES: dict[str, Table] = {
    # The GPT-3 175B points behind the LoRA paper's Figure 2: validation accuracy against the number of
    # trainable parameters, in millions as the paper prints them (rounded, and for PrefixLayer not reproducible
    # from its formula, see tests/test_metrics_formulas.py). Only the plain methods; the LoRA+PE / LoRA+PL
    # rows of the same table are left out. "Fine-Tune" is printed as "175B".
    "lora_gpt3_table15": Table(
        ("method", "setting", "params_m", "WikiSQL", "MNLI-m"),
        (
            ("PrefixEmbed", "l_p=32, l_i=8", 0.4, 55.9, 84.9),
            ("PrefixEmbed", "l_p=64, l_i=8", 0.9, 58.7, 88.1),
            ("PrefixEmbed", "l_p=128, l_i=8", 1.7, 60.6, 88.0),
            ("PrefixEmbed", "l_p=256, l_i=8", 3.2, 63.1, 88.6),
            ("PrefixEmbed", "l_p=512, l_i=8", 6.4, 55.9, 85.8),
            ("PrefixLayer", "l_p=2, l_i=2", 5.1, 68.5, 89.2),
            ("PrefixLayer", "l_p=8, l_i=0", 10.1, 69.8, 88.2),
            ("PrefixLayer", "l_p=8, l_i=8", 20.2, 70.1, 89.5),
            ("PrefixLayer", "l_p=32, l_i=4", 44.1, 66.4, 89.6),
            ("PrefixLayer", "l_p=64, l_i=0", 76.1, 64.9, 87.9),
            ("AdapterH", "r=1", 7.1, 71.9, 89.8),
            ("AdapterH", "r=4", 21.2, 73.2, 91.0),
            ("AdapterH", "r=8", 40.1, 73.2, 91.5),
            ("AdapterH", "r=16", 77.9, 73.2, 91.5),
            ("AdapterH", "r=64", 304.4, 72.6, 91.5),
            ("LoRA", "r_v=2", 4.7, 73.4, 91.7),
            ("LoRA", "r_q=r_v=1", 4.7, 73.4, 91.3),
            ("LoRA", "r_q=r_v=2", 9.4, 73.3, 91.4),
            ("LoRA", "q,k,v,o r=1", 9.4, 74.1, 91.2),
            ("LoRA", "r_q=r_v=4", 18.8, 73.7, 91.3),
            ("LoRA", "q,k,v,o r=2", 18.8, 73.7, 91.7),
            ("LoRA", "r_q=r_v=8", 37.7, 73.8, 91.6),
            ("LoRA", "q,k,v,o r=4", 37.7, 74.0, 91.7),
            ("LoRA", "r_q=r_v=64", 301.9, 73.6, 91.4),
            ("LoRA", "q,k,v,o r=64", 603.8, 73.9, 91.4),
            ("Fine-Tune", "all weights", 175_000.0, 73.8, 89.5),
        ),
        "give the prefix methods more parameters and, past a point, they get worse; give LoRA more and its "
        "accuracy barely moves",
        "Hu et al. 2021, Table 15 (Appendix F.2), the data points of Figure 2"),
}


def _table15_fact() -> Fact:
    """The caption's claim with its numbers, read off Table 15 (WikiSQL, where the drops are clearest)."""
    t = TABLES["lora_gpt3_table15"]
    embed, layer, lora = (t.records(method=m) for m in ("PrefixEmbed", "PrefixLayer", "LoRA"))
    best = lambda rows: max(rows, key=lambda r: r["WikiSQL"])  # noqa: E731
    values = {
        "prefix_embed_best": best(embed)["WikiSQL"], "prefix_embed_best_m": best(embed)["params_m"],
        "prefix_embed_largest": embed[-1]["WikiSQL"], "prefix_embed_largest_m": embed[-1]["params_m"],
        "prefix_layer_best": best(layer)["WikiSQL"], "prefix_layer_best_m": best(layer)["params_m"],
        "prefix_layer_largest": layer[-1]["WikiSQL"], "prefix_layer_largest_m": layer[-1]["params_m"],
        "lora_lowest": min(r["WikiSQL"] for r in lora), "lora_highest": max(r["WikiSQL"] for r in lora),
        "lora_smallest_m": lora[0]["params_m"], "lora_largest_m": lora[-1]["params_m"],
    }
    return Fact(
        values,
        "on GPT-3 175B (WikiSQL), prefix-embedding tuning peaks at 63.1 with 3.2M parameters and drops to 55.9 "
        "at 6.4M, prefix-layer tuning peaks at 70.1 with 20.2M and drops to 64.9 at 76.1M, while LoRA stays "
        "between 73.3 and 74.1 all the way from 4.7M to 603.8M",
        "Hu et al. 2021, Table 15 (Appendix F.2)")


FACTS["lora_gpt3_table15"] = _table15_fact()
