"""Tiny helpers to write the lesson notebooks from Python (tools/build_notebooks.py uses them).

Each notebook is a list of cells; an ``Exercise`` cell has a student version (a skeleton with
``# TODO`` that raises NotImplementedError) and a solution version. ``write`` produces
``notebooks/NN_name.ipynb`` and ``notebooks/solutions/NN_name.ipynb`` without outputs.
"""

from __future__ import annotations

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


def write(name: str, cells: list, root: Path) -> None:
    """Write the student notebook and the solution notebook for ``name``."""
    for solution in (False, True):
        nb = nbformat.v4.new_notebook()
        nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}}
        out = []
        for cell in cells:
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
