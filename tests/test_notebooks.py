"""Every lesson notebook, student and solution version, runs top to bottom in quick mode.

Run times are printed (``-s``) and written to ``test-artifacts/notebook_times.json``.
"""

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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


def test_every_student_exercise_has_a_checker_and_a_solution():
    for path in sorted((ROOT / "notebooks").glob("0[235]_*.ipynb")):
        student = nbformat.read(path, as_version=4)
        solution = nbformat.read(ROOT / "notebooks" / "solutions" / path.name, as_version=4)
        headers = [c.source for c in student.cells if c.cell_type == "markdown" and c.source.startswith("### Exercise")]
        todos = [c.source for c in student.cells if c.cell_type == "code" and "# TODO" in c.source]
        assert len(headers) >= 2 and len(todos) == len(headers), path.name
        assert all("raise NotImplementedError" in t for t in todos)
        assert not any("# TODO" in c.source for c in solution.cells if c.cell_type == "code")
        assert sum("ll.checks.check_" in c.source for c in student.cells) >= len(headers)


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
