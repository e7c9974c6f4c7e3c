"""Build the notebooks the browser test opens: every panel of ``lesson_lib.widgets`` on the tiny model.

    python tests/browser_notebook.py OUT_DIR     # writes panels_widget.ipynb and panels_static.ipynb

Each notebook runs in seconds (tiny random BERT, tiny task) and ends by printing ``READY_MARK``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

READY_MARK = "ALL PANELS READY"
LIVE_STEPS = 3000  # long enough that the test can press Stop in the middle

SETUP = """\
import torch
torch.set_num_threads(1)  # 2 shared cores: one thread per process is much faster here
import lesson_lib as ll
from lesson_lib import widgets as lw
from lesson_lib.tiny import tiny_task
print("figures:", lw.use_figure_widget({widget}))
task = tiny_task(n=96)
quick = ll.TrainConfig(steps=30, lr=1e-2, batch_size=8, eval_every=0, progress=False)"""

EXPLORER = """\
explorer = lw.parameter_explorer(ll.load_base(tiny=True)[0], spec="GPT-3 175B")
explorer"""

LIVE = """\
runs = lw.RunLog()
live = lw.live_training({{"LoRA r=4": lw.fresh(ll.LoRAConfig(r=4), tiny=True),
                         "head only": lw.fresh("head", tiny=True)}},
                        task, ll.TrainConfig(steps={steps}, lr=1e-2, batch_size=8, eval_every=100), log=runs)
live"""

DELTA = """\
first = lw.fresh(ll.LoRAConfig(r=4), tiny=True)()
ll.train(first, task, quick)
second = lw.fresh(ll.LoRAConfig(r=8), tiny=True, seed=1)()
ll.train(second, task, quick)
delta = lw.delta_w_explorer(first, task.val, other_model=second)
delta"""

GATES = """\
unipelt = lw.fresh([ll.LoRAConfig(r=4), ll.AdapterConfig(bottleneck=8), ll.PrefixConfig(length=4)], tiny=True,
                   gates=ll.GateConfig())()
ll.train(unipelt, task, quick)
board = lw.gate_board(unipelt, task.val)
board"""

SWITCH = """\
topic_task = tiny_task(n=96, num_labels=3)
two = ll.load_base(tiny=True)[0]
ll.inject(two, ll.LoRAConfig(r=4), name="sentiment", num_labels=2)
ll.train(two, task, quick)
ll.inject(two, ll.AdapterConfig(bottleneck=8), name="topic", num_labels=3)
ll.train(two, topic_task, quick)
switch = lw.switchboard(two, tasks={"sentiment": task, "topic": topic_task},
                        texts=["i love this great film", "the vote was about money", "what a boring sad game"])
switch"""


def build(path: Path, widget: bool, panels: tuple[str, ...] = ("explorer", "live", "delta", "gates", "switch"),
          extra: str = "", live_steps: int = LIVE_STEPS) -> Path:
    """Write a notebook that builds ``panels`` with FigureWidgets (``widget``) or static figures.

    ``extra`` is code run right after the set-up cell's imports (a test can patch something there, or switch
    projector mode on); ``live_steps``: the live panel's steps.
    """
    sources = {"explorer": EXPLORER, "live": LIVE.format(steps=live_steps), "delta": DELTA, "gates": GATES,
               "switch": SWITCH}
    cells = [nbf.v4.new_markdown_cell("# lesson_lib panels (browser test)"),
             nbf.v4.new_code_cell(SETUP.format(widget=widget) + ("\n" + extra if extra else ""))]
    cells += [nbf.v4.new_code_cell(sources[p]) for p in panels]
    cells.append(nbf.v4.new_code_cell(f"print({READY_MARK!r})"))
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, path)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(build(out / "panels_widget.ipynb", widget=True), build(out / "panels_static.ipynb", widget=False))


# The printed tables of the lessons, taken from the built notebooks so the test runs what a student runs, on
# the stored results a student on a CPU sees (cpu mode): notebook 06's comparison, notebook 07's questions and
# its sweep over the number of training questions. Each is (notebook, a string only that cell contains).
TABLE_CELLS = [("06_compare_and_combine", "def show(results)"), ("06_compare_and_combine", "def by_size(runs)"),
               ("07_what_comes_next", "asked as (1 of"),
               ("07_what_comes_next", "'trained on':16s")]
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def lesson_cell(notebook: str, marker: str) -> str:
    """The source of the one code cell of ``notebooks/<notebook>.ipynb`` that contains ``marker``."""
    nb = nbf.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    found = [c.source for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"{len(found)} code cells of {notebook} contain {marker!r}"
    return found[0]


LESSON_CELLS = [
    "import lesson_lib as ll{extra}",
    "ll.diagrams.adapter()", "ll.diagrams.lora(r=8, alpha=16)", "ll.diagrams.prefix(length=10)",
    "ll.diagrams.unipelt()", "ll.diagrams.feedback()",
    "guess = 1000\nll.checks.reveal(guess, 770, 'parameters the head alone trains', '384 weights, 1 bias per class');",
]


def build_lesson_cells(path: Path, extra: str = "") -> Path:
    """A notebook with what the lessons add around the panels: the five pictures (four methods, lesson 07's
    pipeline), the lessons' printed tables (TABLE_CELLS), a hint (a folded
    <details> block, as tools/nbgen.py writes it) and a predict-then-run answer."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from nbgen import hint

    cells = [nbf.v4.new_markdown_cell("# lesson cells (browser test)")]
    cells += [nbf.v4.new_code_cell(src.format(extra=("\n" + extra) if extra else "")) for src in LESSON_CELLS]
    cells.append(nbf.v4.new_code_cell('import os\nos.environ["LESSON_MODE"] = "cpu"  # the stored results'))
    cells += [nbf.v4.new_code_cell(lesson_cell(*table)) for table in TABLE_CELLS]
    cells.insert(3, hint("The up projection starts at **zero**, so the adapter returns h unchanged: HIDDEN-HINT-TEXT"))
    cells.append(nbf.v4.new_code_cell(f"print({READY_MARK!r})"))
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, path)
    return path
