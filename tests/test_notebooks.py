"""Every lesson notebook, student and solution version, runs top to bottom in quick mode, draws no
conclusion there, and never feeds a model tensors it built by hand (the device rule).

Run times are printed (``-s``) and written to ``test-artifacts/notebook_times.json``.
"""

import ast
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lesson_lib.projector import PRINTED_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
TIMES: dict[str, float] = {}


def test_notebooks_are_committed_without_outputs_or_widget_state():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata, f"{path.name} carries widget state"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_every_notebook_says_how_long_it_takes_on_cpu_and_on_a_gpu():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        notes = [c.source for c in nb.cells if c.cell_type == "markdown" and "How long this notebook takes" in c.source]
        assert len(notes) == 1, path.name
        assert "CPU mode" in notes[0] and "GPU, full mode" in notes[0] and "Quick mode" in notes[0], path.name


def _sections(nb) -> list[list]:
    """The cells from each "### Exercise" header up to the next header (or heading of any level 2–3)."""
    out, current = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.match(r"#{2,3} ", cell.source):
            current = [cell] if cell.source.startswith("### Exercise") else None
            if current is not None:
                out.append(current)
        elif current is not None:
            current.append(cell)
    return out


def test_every_student_exercise_has_a_checker_a_hint_and_a_solution():
    for path in sorted((ROOT / "notebooks").glob("0[0-6]_*.ipynb")):
        student = nbformat.read(path, as_version=4)
        solution = nbformat.read(ROOT / "notebooks" / "solutions" / path.name, as_version=4)
        sections = _sections(student)
        todos = [c.source for c in student.cells if c.cell_type == "code" and "# TODO" in c.source]
        assert all("raise NotImplementedError" in t for t in todos)
        assert not any("# TODO" in c.source for c in solution.cells if c.cell_type == "code")
        for section in sections:
            title = section[0].source.splitlines()[0]
            sources = [c.source for c in section]
            assert any("ll.checks.check_" in s or "ll.exercises.your_" in s for s in sources), f"{path.name}: {title}"
            hints = [s for s in sources if s.startswith("<details><summary><b>Hint</b>")]
            assert hints, f"{path.name}: {title} has no hint"
        predicts = [c for c in student.cells if c.cell_type == "markdown" and c.source.startswith("**Predict first.**")]
        assert len(sections) + len(predicts) >= 1, f"{path.name} has no exercise or question"
        if path.name[:2] in ("02", "03", "05"):
            assert len(sections) >= 2, path.name
        for cell in predicts:  # each question is answered: a later code cell reveals the measurement
            name = re.search(r"^(\w+) = None", student.cells[student.cells.index(cell) + 1].source).group(1)
            assert any(f"reveal({name}," in c.source for c in student.cells if c.cell_type == "code"), name


def test_every_notebook_ends_with_a_summary_of_what_was_measured():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        last = [c for c in nb.cells if c.cell_type == "code"][-1]
        assert "\nll.summary(" in "\n" + last.source, f"{path.name} does not end with ll.summary(...)"
        assert last.source.count("f\"") >= 2, f"{path.name}: a summary states the numbers measured above"


# cells that train or run an experiment: on a laptop they take from half a minute to a few minutes (the measured
# times: benchmarks/results/notebooks.json)
LONG_CELL = re.compile(r"ll\.train\(|train_or_load\(|live_training\(|train_reward_model\(|ll\.exercises\.your_\w+\("
                       r"|results\.get\(|run_recipe\(|accuracy_by_rank\(|ll\.merge\(|best_of_n\(")


def test_every_long_cell_says_what_you_should_see_before_it_runs():
    """A student waiting for a cell should know what to look for: a "What you should see" note among the three
    cells before each cell that trains or runs an experiment (a note before a predict-first question must not
    give its answer away: that is for a person to read, not for this test)."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and LONG_CELL.search(cell.source):
                before = [c.source for c in nb.cells[max(0, i - 3):i] if c.cell_type == "markdown"]
                assert any("**What you should see:**" in b for b in before), \
                    f"{path.name}, cell {i} ({cell.source.splitlines()[0][:60]!r}): no 'What you should see' before it"


# numbers only the papers can give (scores, headline shares and sizes): they reach a notebook through ll.paper,
# where each is written once with its source, never typed into a lesson
PAPER_ONLY = ("73.4", "91.7", "73.8", "89.5", "80.4", "21.5", "1.88", "55.9", "63.1", "64.9", "70.1", "74.1",
              "603.8", "76.1", "0.4 %", "3.6 %", "350 GB", "35 MB", "20 of 25", "85 ±")


def test_the_papers_numbers_come_from_ll_paper_not_typed_into_a_lesson():
    from lesson_lib import paper

    written = {str(v) for f in paper.FACTS.values() for v in f.values.values()} | \
        {str(v) for t in paper.TABLES.values() for row in t.rows for v in row}
    for number in PAPER_ONLY:
        assert number.split()[0] in written, f"{number} is not in ll.paper"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for number in PAPER_ONLY:
                assert not re.search(r"(?<![\d.])" + re.escape(number) + r"(?![\d])", cell.source), \
                    f"{path.name} types the paper's {number}: print it from ll.paper instead"


def _code(path: Path) -> list[tuple[int, ast.Module]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, ast.parse(c.source)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _rooted_at_ll(func: ast.expr) -> bool:
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id == "ll"


def _model_names(trees) -> set[str]:
    """Names bound to a model: ``m, _ = ll.load_base(...)``, ``m = PeftModel.from_pretrained(...)``, and so on."""
    names = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                text = ast.unparse(node.value.func)
                if text.endswith(("load_base", "from_pretrained", "lora_run", "instruction_model", "reward_model")):
                    target = node.targets[0]
                    first = target.elts[0] if isinstance(target, ast.Tuple) else target
                    if isinstance(first, ast.Name):
                        names.add(first.id)
    return names


def _device_rule_violations(path: Path) -> list[str]:
    inputs = {"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "labels"}
    trees = _code(path)
    models, found = _model_names(trees), []
    for i, tree in trees:
        for node in ast.walk(tree):
            where = f"{path.parent.name}/{path.name} cell {i}: {ast.unparse(node)[:80]}"
            named = getattr(node, "id", None) or getattr(node, "name", None)  # a Name, or an imported alias
            if isinstance(node, (ast.Name, ast.alias)) and named == "make_loader":
                found.append(f"{where} (batches come from ll.batch)")
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id in models:
                found.append(f"{where} (a model called directly; use ll.logits)")
            if _rooted_at_ll(node.func) or ast.unparse(node.func) == "dict":
                continue
            if any(k.arg is None for k in node.keywords) or inputs & {k.arg for k in node.keywords}:
                found.append(f"{where} (inputs passed by hand)")
    return found


def test_no_notebook_feeds_a_model_tensors_it_built_by_hand():
    """Inputs come from ``ll.batch`` and reach a model only through the library (``ll.logits``, ``ll.latency``,
    ``ll.evaluate`` …), which moves them to the model's device: no ``model(**batch)``, no ``make_loader``, no
    ``input_ids=`` passed by hand. (A CPU cannot show a device mix-up; this rule prevents one.)"""
    for path in NOTEBOOKS:
        assert _model_names(_code(path)), f"{path.name}: found no model variable, so the check would see nothing"
        assert _device_rule_violations(path) == []


@pytest.mark.parametrize("source", ["model, tok = ll.load_base()\nmodel(**batch)",
                                    "model, _ = ll.load_base()\nmodel(input_ids=ids)",
                                    "from lesson_lib.data import make_loader", "f(**batch)",
                                    "peft_model = PeftModel.from_pretrained(base, path)\npeft_model(x)"])
def test_the_device_rule_check_catches_the_patterns_it_forbids(tmp_path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, tmp_path / "00_bad.ipynb")
    assert _device_rule_violations(tmp_path / "00_bad.ipynb")


CONCLUSIONS = ("best efficient method", "drops after its best size", "does not drop", "beats it", "does not beat it",
               "a tie",
               "changes the accuracy by", "keeps the accuracy", "gains", "carries the adaptation")


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_runs_top_to_bottom_in_quick_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON_FAST", "1")
    monkeypatch.setenv("LESSON_CACHE", str(tmp_path / "cache"))  # no precomputed results: everything runs
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - start
    key = f"{path.parent.name}/{path.name}"
    TIMES[key] = round(seconds, 1)
    out = ROOT / "test-artifacts" / "notebook_times.json"
    out.parent.mkdir(exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, key: TIMES[key]}, indent=1))
    print(f"{key}: {seconds:.1f} s")
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if "solutions" in key:
        assert "❌" not in text and "⏳" not in text
    else:
        assert "❌" not in text  # unfinished exercises say ⏳, never a failure
    assert os.environ.get("LESSON_FAST") == "1"
    warned = re.findall(r"[^\n]*(?:Warning|not JSON compliant)[^\n]*", text)
    assert not warned, f"a warning reached the student's output: {warned[:3]}"
    # printed table rows: indented lines whose columns are padded with spaces (prose and lists wrap harmlessly)
    rows = [line for line in text.splitlines() if line.startswith("  ") and re.search(r"\S {2,}\S", line)]
    wide = [line for line in rows if len(line) > PRINTED_COLUMNS]
    assert not wide, f"table rows wider than a projector's {PRINTED_COLUMNS} characters (they wrap): {wide[:3]}"
    assert "quick mode" in text  # the set-up cell says which mode, and that its numbers mean nothing
    said = [c for c in CONCLUSIONS if re.search(r"\b" + re.escape(c) + r"\b", text)]  # words: "against" ≠ "gains"
    assert not said, f"quick mode printed a conclusion: {said}"
    if any("ll.verdict(" in c.source for c in nb.cells if c.cell_type == "code"):
        assert "(no conclusion: quick mode" in text


def test_the_notebook_benchmark_times_every_cell_and_merges_its_table(tmp_path, monkeypatch):
    from benchmarks import notebooks as bench

    folder = tmp_path / "nbs"
    folder.mkdir()
    for name, source in (("00_ok.ipynb", "import lesson_lib as ll\nprint(ll.mode())"), ("01_bad.ipynb", "1 / 0")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell(source)]
        nbformat.write(nb, folder / name)
    out = tmp_path / "results"
    data = bench.main(["--mode", "cpu", "--out", str(out), str(folder / "00_ok.ipynb"), str(folder / "01_bad.ipynb")])
    rows = data["cpu"]
    assert rows["00_ok.ipynb"]["status"] == "ok" and rows["00_ok.ipynb"]["cells"][0][0] == 1
    bad = rows["01_bad.ipynb"]["status"]
    assert bad.startswith("error in cell 1: ") and "ZeroDivisionError" in bad
    again = bench.main(["--mode", "cpu", "--out", str(out), str(folder / "00_ok.ipynb")])
    assert set(again["cpu"]) == {"00_ok.ipynb", "01_bad.ipynb"}  # merged, not replaced
    table = (out / "notebooks.md").read_text()
    assert "| 00_ok.ipynb | ok |" in table and "met" in table
    assert os.environ.get("LESSON_MODE") is None and os.environ.get("LESSON_FAST") == "1"  # put back
