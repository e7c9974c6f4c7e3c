"""docs/glossary.md, the English–Chinese glossary: every row complete, anchors unique, the terms the lessons
define all present, both tables in alphabetical order. Reads only the Markdown file: no model, no torch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"

MAIN = "Terms"                                                       # heading of the notebooks' table
LECTURE = "Terms the lecture uses that the notebooks do not (yet)"   # heading of the lecture-only table
KEPT_IN_ENGLISH = ("(通常保留英文)", "（通常保留英文）")

# The terms the lessons (tools/lessons/n00 … n07) explain in their text; each must have a row in the notebooks' table.
# Matched case-insensitively against the English column: the whole name, a name either side of " / ", or a name
# inside its parentheses ("SVD" in "singular value decomposition (SVD)").
DEFINED_TERMS = [
    "parameter-efficient fine-tuning", "PEFT", "fine-tuning", "full fine-tuning", "pre-trained model",
    "frozen weights", "trainable parameters", "classifier head", "logits", "attention mask", "accuracy",
    "Adam", "optimizer state", "learning rate", "random seed", "checkpoint", "Green AI", "rank", "LoRA",
    "adapter", "bottleneck", "residual connection", "down-projection", "up-projection", "Houlsby / Pfeiffer placement",
    "initialisation", "forgetting", "mixed precision", "low-rank", "low-rank decomposition", "scaling factor",
    "merge", "inference latency", "singular value", "Frobenius norm", "intrinsic dimension", "weight update",
    "singular value decomposition", "SVD", "singular vector", "effective rank", "energy", "low-rank approximation",
    "subspace similarity", "amplification factor", "prefix tuning", "prompt tuning", "query", "key", "value",
    "padding", "scaled dot-product attention", "reparameterisation", "MLP", "fold", "gate", "UniPELT",
    "ablation", "low-resource", "noise band",
    # lesson 07
    "instruction tuning", "zero-shot", "cross-encoder", "held out", "instruction template", "reward model",
    "Bradley–Terry model", "pairwise accuracy", "best-of-n sampling", "PPO", "RLHF", "KL penalty", "reward hacking",
]

ANCHOR_CELL = re.compile(r'^<a id="([^"]*)"></a>\s*(.+)$')
ANCHOR_FORM = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
NOTEBOOK = re.compile(r"^0[0-7]$")


def parse(text: str) -> dict[str, list[dict[str, str]]]:
    """The tables: section heading → rows, each row a dict of anchor, english, chinese, explanation, first."""
    sections: dict[str, list[dict[str, str]]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            continue
        if not line.startswith("| <a id="):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"a row needs 4 cells (English | 中文 | explanation | first used in): {line}"
        match = ANCHOR_CELL.match(cells[0])
        assert match, f"the English cell must start with its anchor: {cells[0]}"
        sections.setdefault(heading, []).append(dict(
            anchor=match.group(1), english=match.group(2).strip(), chinese=cells[1], explanation=cells[2],
            first=cells[3]))
    return sections


def norm(name: str) -> str:
    return " ".join(name.lower().split())


def names(english: str) -> set[str]:
    """Every name a row answers to: the whole cell, the cell without its parentheses, each side of " / ", and each
    comma- or semicolon-separated name inside the parentheses."""
    bare = re.sub(r"\s*\([^)]*\)", "", english)
    found = {norm(english), norm(bare)}
    found.update(norm(part) for part in bare.split(" / "))
    for inner in re.findall(r"\(([^)]*)\)", english):
        found.update(norm(part) for part in re.split(r"[,;]", inner))
    return {n for n in found if n}


def sort_key(english: str) -> str:
    """Dictionary order: case, hyphens and punctuation ignored, spaces kept ("soft prompt" before "softmax")."""
    return " ".join("".join(c for c in english.lower() if c.isalnum() or c.isspace()).split())


@pytest.fixture(scope="module")
def tables() -> dict[str, list[dict[str, str]]]:
    return parse(GLOSSARY.read_text(encoding="utf-8"))


def all_rows(tables):
    return [row for rows in tables.values() for row in rows]


def test_the_glossary_has_its_two_tables(tables):
    assert set(tables) == {MAIN, LECTURE}, f"tables found under: {sorted(tables)}"
    assert 50 <= len(tables[MAIN]) <= 100, len(tables[MAIN])
    assert tables[LECTURE], "the lecture-only table is empty"


def test_every_row_has_english_chinese_explanation_and_notebook(tables):
    problems = []
    for heading, rows in tables.items():
        for row in rows:
            where = f"{heading!r} / {row['english']!r}"
            if not row["english"]:
                problems.append(f"{where}: no English term")
            chinese = row["chinese"]
            kept = any(mark in chinese for mark in KEPT_IN_ENGLISH)
            rest = chinese
            for mark in KEPT_IN_ENGLISH:
                rest = rest.replace(mark, "")
            if not rest.strip():
                problems.append(f"{where}: the Chinese cell holds only the marker")
            elif not (CJK.search(rest) or kept):
                problems.append(f"{where}: the Chinese cell has no Chinese and no {KEPT_IN_ENGLISH[0]} marker")
            if len(row["explanation"].split()) < 4:
                problems.append(f"{where}: the explanation is missing or too short")
            if heading == MAIN and not NOTEBOOK.match(row["first"]):
                problems.append(f"{where}: 'first used in' must be a notebook number 00–07, got {row['first']!r}")
            if heading == LECTURE and row["first"] != "lecture":
                problems.append(f"{where}: a lecture-only term says 'lecture', got {row['first']!r}")
    assert not problems, "\n".join(problems)


def test_anchors_are_unique_lower_case_and_hyphenated(tables):
    anchors = [row["anchor"] for row in all_rows(tables)]
    malformed = [a for a in anchors if not ANCHOR_FORM.match(a)]
    assert not malformed, f"anchors must be lower-case words joined by hyphens: {malformed}"
    repeated = sorted({a for a in anchors if anchors.count(a) > 1})
    assert not repeated, f"anchors used more than once: {repeated}"
    text = GLOSSARY.read_text(encoding="utf-8")
    assert text.count('<a id="') == len(anchors), "an anchor stands outside a table row"


def test_english_terms_are_unique(tables):
    terms = [norm(row["english"]) for row in all_rows(tables)]
    assert len(terms) == len(set(terms)), sorted({t for t in terms if terms.count(t) > 1})


def test_every_term_the_lessons_define_is_in_the_glossary(tables):
    assert len(DEFINED_TERMS) >= 40
    known = set().union(*(names(row["english"]) for row in tables[MAIN]))
    missing = [term for term in DEFINED_TERMS if norm(term) not in known]
    assert not missing, f"terms the lessons define but the glossary lacks: {missing}"


@pytest.mark.parametrize("heading", [MAIN, LECTURE])
def test_tables_are_in_alphabetical_order(tables, heading):
    keys = [sort_key(row["english"]) for row in tables[heading]]
    out_of_place = [(a, b) for a, b in zip(keys, keys[1:]) if a > b]
    assert not out_of_place, f"{heading!r}: these neighbours are out of order: {out_of_place}"


def test_names_and_sort_key_helpers():
    assert names("singular value decomposition (SVD)") >= {"singular value decomposition", "svd"}
    assert names("Adam / AdamW") >= {"adam", "adamw", "adam / adamw"}
    assert names("initialisation (zero init, Kaiming init)") >= {"initialisation", "zero init", "kaiming init"}
    assert sort_key("pre-trained model") > sort_key("prefix tuning")
    assert sort_key("soft prompt") < sort_key("softmax")


def test_each_notebook_links_the_terms_it_uses_first_and_only_to_real_anchors(tables):
    """A student meets each term in the notebook where it is first used with a link to its row (the notebook's
    "New words" line, and a link on the word itself where the text names it); no link points nowhere."""
    import nbformat

    notebooks = sorted((GLOSSARY.parents[1] / "notebooks").glob("0*.ipynb"))
    assert len(notebooks) == 8
    anchors = {row["anchor"] for row in all_rows(tables)}
    for path in notebooks + sorted((GLOSSARY.parents[1] / "notebooks" / "solutions").glob("0*.ipynb")):
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
        linked = set(re.findall(r"\]\((?:\.\./)+docs/glossary\.md#([\w-]+)\)", text))
        assert linked <= anchors, f"{path.name} links to missing anchors {sorted(linked - anchors)}"
        first_here = {row["anchor"] for row in tables[MAIN] if row["first"] == path.name[:2]}
        assert first_here <= linked, f"{path.name} does not link {sorted(first_here - linked)}"
        depth = "../../" if path.parent.name == "solutions" else "../"
        assert f"]({depth}docs/glossary.md#" in text, f"{path.name}: the links must lead to docs/ from its folder"
