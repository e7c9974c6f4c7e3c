"""The papers' numbers the lessons quote, written once, each with where it comes from.

A lesson prints a paper's number from here (``ll.paper.FACTS["houlsby_glue"]``) beside the number it measures,
so the two are never typed twice. Each was checked against the paper (section, table or figure given in
``source``; see ``shared/reference/paper-facts.md`` of the course for how they were read).
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
}
