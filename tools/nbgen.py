"""Tiny helpers to write the lesson notebooks from Python (tools/build_notebooks.py uses them).

Each notebook is a list of cells; an ``Exercise`` cell has a student version (a skeleton with
``# TODO`` that raises NotImplementedError) and a solution version. ``write`` produces
``notebooks/NN_name.ipynb`` and ``notebooks/solutions/NN_name.ipynb`` without outputs.
"""

from __future__ import annotations

import re
import textwrap
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import nbformat

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def repo_url() -> str:
    """The repository Colab installs from: ``[project.urls] Repository`` in pyproject.toml, the one place it is
    written (a fork changes it there and rebuilds the notebooks; README, section Colab)."""
    import tomllib

    return tomllib.loads(PYPROJECT.read_text())["project"]["urls"]["Repository"]


REPO_URL = repo_url()


@dataclass
class Exercise:
    student: str
    solution: str


def hint(text: str) -> nbformat.NotebookNode:
    """A hint the student opens only if needed: a collapsed <details> block (JupyterLab and Colab fold it)."""
    body = textwrap.dedent(text).strip()
    summary = "<summary><b>Hint</b> (click to open)</summary>"
    return nbformat.v4.new_markdown_cell(f"<details>{summary}\n\n{body}\n\n</details>")


def predict(question: str, name: str = "guess", example: str = "...") -> list[nbformat.NotebookNode]:
    """A predict-then-run question: the question, then a cell where the student writes a guess before the
    next cell measures the answer (``ll.checks.reveal`` prints both)."""
    return [md("**Predict first.** " + textwrap.dedent(question).strip()),
            code(f"{name} = None  # write your guess here (e.g. {name} = {example}), then run this cell and the next")]


def summary(points: list[str]) -> nbformat.NotebookNode:
    """The closing "What you saw" cell: 3–5 bullets, each with its number."""
    return md("## What you saw\n\n" + "\n".join(f"- {textwrap.dedent(p).strip()}" for p in points))


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip())


def setup_cell(title: str) -> nbformat.NotebookNode:
    """First code cell: on Colab install the project (once); everywhere print versions and device.

    Colab's custom widget manager is not turned on: the panels use core ipywidgets only there (figures are
    iframes in ``HTML`` widgets, lesson_lib/widgets/figures.py), which Colab draws without it."""
    return code(f'''
        # {title}: set-up. On Colab this installs the project (once); see docs/colab-check.md.
        import importlib.util
        try:
            import google.colab                                    # only exists on Colab
            on_colab = True
        except ImportError:
            on_colab = False
        if on_colab and importlib.util.find_spec("lesson_lib") is None:
            get_ipython().run_line_magic("pip", "install -q git+{REPO_URL}")

        import torch, transformers
        import lesson_lib as ll
        print(f"lesson_lib {{ll.__version__}} | torch {{torch.__version__}} | "
              f"transformers {{transformers.__version__}} | device: {{ll.devices.pick_device()}}")
        print(ll.modes.describe())
    ''')


TIMES = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "notebooks.json"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def timing_cell(name: str, notes: str) -> nbformat.NotebookNode:
    """The "How long this notebook takes" note, with the times measured by the benchmarks, never typed:
    CPU mode from ``python -m benchmarks.notebooks``, GPU full mode from ``bash benchmarks/gpu_check.sh``."""
    import json

    measured = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    lines = []
    for mode, label, command in (("cpu", "CPU mode", "python -m benchmarks.notebooks"),
                                 ("full-gpu", "GPU, full mode", "bash benchmarks/gpu_check.sh")):
        row = measured.get(mode, {}).get(f"{name}.ipynb")
        if row and row.get("status") == "ok":
            lines.append(f"- **{label}**: {_minutes(row['seconds'])} top to bottom, measured on {row['machine']} "
                         f"(`{command}`).")
        else:
            lines.append(f"- **{label}**: not measured yet (`{command}` measures it).")
    return md("⏱ **How long this notebook takes.**\n\n" + "\n".join(lines) + "\n\n" + textwrap.dedent(notes).strip()
              + "\n\nQuick mode (`LESSON_FAST=1`) is for the tests only: it runs a few steps and its numbers mean "
              "nothing.")


GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"
_ROW = re.compile(r'^\| <a id="([^"]+)"></a>([^|]+)\|([^|]+)\|[^|]+\|\s*([^|]+?)\s*\|$')
# text that must not get a link: code spans, maths, existing links, HTML tags, headings and table rows
_PROTECTED = re.compile(r"(`[^`]*`|\$\$.*?\$\$|\$[^$\n]*\$|\[[^\]]*\]\([^)]*\)|<[^>]+>|^#[^\n]*$|^\|[^\n]*$)",
                        re.M | re.S)


_CJK = re.compile(r"[\u3400-\u9fff]")


def glossary_terms() -> list[dict]:
    """The rows of docs/glossary.md's main table: anchor, English, the first Chinese term, first notebook."""
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line.strip())
        if m and m.group(4).isdigit():
            chinese = re.split(r"[；（(]", m.group(3).strip())[0].strip()
            rows.append({"anchor": m.group(1), "english": m.group(2).strip(), "chinese": chinese,
                         "first": m.group(4)})
    return rows


def _names(english: str) -> list[str]:
    """The words a row answers to ("singular value decomposition (SVD)": the whole, "SVD", …), longest first."""
    bare = re.sub(r"\s*\([^)]*\)", "", english)
    found = {bare, *bare.split(" / ")}
    for inner in re.findall(r"\(([^)]*)\)", english):
        found.update(part.strip() for part in re.split(r"[,;]", inner))
    return sorted((n for n in found if len(n) > 1), key=len, reverse=True)


def _link_first(text: str, names: list[str], target: str) -> tuple[str, bool]:
    """Link the first use of any of ``names`` in ``text`` (outside code, maths, links, headings, tables)."""
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(s|es)?(?![\w-])", re.I)
    pos = 0
    for m in list(_PROTECTED.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        hit = pattern.search(text, pos, end)
        if hit:
            return text[:hit.start()] + f"[{hit.group(0)}]({target})" + text[hit.end():], True
        if m is None:
            break
        pos = m.end()
    return text, False


def add_glossary(cells: list, number: str, prefix: str) -> list:
    """The glossary in the lesson: after the title, a line with every term this notebook uses first (linked, with
    its Chinese name), and in the text a link on the first use of each of them. ``prefix``: path to glossary.md."""
    terms = [t for t in glossary_terms() if t["first"] == number]
    if not terms:
        return cells
    cells = [deepcopy(c) for c in cells]
    for term in terms:
        target = f"{prefix}#{term['anchor']}"
        for cell in cells:
            if getattr(cell, "cell_type", None) == "markdown":
                cell.source, done = _link_first(cell.source, _names(term["english"]), target)
                if done:
                    break
    def entry(t: dict) -> str:
        chinese = f" {t['chinese']}" if _CJK.search(t["chinese"]) else ""
        return f"[{t['english']}]({prefix}#{t['anchor']}){chinese}"

    words = " · ".join(entry(t) for t in sorted(terms, key=lambda t: t["english"].lower()))
    cells.insert(1, md(f"**New words in this notebook** (the [glossary]({prefix}) explains each, "
                       f"English–中文): {words}"))
    return cells


def write(name: str, cells: list, root: Path) -> None:
    """Write the student notebook and the solution notebook for ``name``."""
    for solution in (False, True):
        nb = nbformat.v4.new_notebook()
        nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}}
        out = []
        prefix = "../../docs/glossary.md" if solution else "../docs/glossary.md"
        for cell in add_glossary(cells, name[:2], prefix):
            if isinstance(cell, Exercise):
                out.append(code(cell.solution if solution else cell.student))
            else:
                out.append(cell)
        if solution:
            out.insert(0, md("**Solutions.** The exercises below are completed; the checkers run in strict mode."))
            out.insert(1, code("import os\nos.environ['LESSON_STRICT'] = '1'  # a failing check stops the notebook"))
        for i, cell in enumerate(out):  # stable ids: regenerating an unchanged lesson changes nothing
            cell = out[i] = deepcopy(cell)
            cell.id = f"{name[:2]}-{'s' if solution else 'n'}-{i:02d}"
        nb.cells = out
        folder = root / "solutions" if solution else root
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
