"""The set-up a newcomer trusts: pyproject, environment.yml, README commands, CI, import hygiene."""

import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}


def _pyproject_names(*extras: str) -> set[str]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(proj["dependencies"]) + [d for e in extras for d in proj["optional-dependencies"][e]]
    return {canonicalize_name(Requirement(d).name) for d in deps}


def _env_names() -> tuple[set[str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"]
    names, pip_lines = set(), []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep["pip"]
            continue
        name = re.split(r"[\s=<>!~]", str(dep))[0]
        names.add(canonicalize_name(CONDA_TO_PYPI.get(name, name)))
    for line in pip_lines:
        if not line.startswith("-e"):
            names.add(canonicalize_name(Requirement(line).name))
    return names, pip_lines


def test_environment_yml_and_pyproject_name_the_same_packages():
    env, pip_lines = _env_names()
    env -= {"python", "pip"}
    assert env == _pyproject_names("lab")
    assert "-e .[lab]" in pip_lines


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_command():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    install, test = commands
    assert "jupyter lab notebooks/" in install and "pip install" in install
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci, f"CI must run the README's test command: {test!r}"


def test_import_lesson_lib_pulls_in_no_widgets_or_plotly():
    code = ("import sys, lesson_lib; "
            "print(sorted(m for m in ('plotly', 'ipywidgets', 'lesson_lib.widgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_imports_point_one_way():
    """Method files are torch-only (and the small ``module`` base class); nothing in the library imports widgets."""
    lib = ROOT / "lesson_lib"
    for path in lib.glob("*.py"):  # the package lesson_lib/widgets/ is the only place that imports widgets
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) .*widgets", text, flags=re.M), path
    for stem in ("lora", "adapter", "prefix", "prompt", "gates"):
        imports = re.findall(r"^(?:from|import) ([\w.]+)", (lib / f"{stem}.py").read_text(), flags=re.M)
        assert set(imports) <= {"__future__", "math", "torch", "torch.nn", "torch.nn.functional", ".module"}, \
            (stem, imports)
    imports = re.findall(r"^(?:from|import) ([\w.]+)", (lib / "module.py").read_text(), flags=re.M)
    assert set(imports) <= {"__future__", "torch"}, imports


def test_ruff_is_clean():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "lesson_lib", "tests"], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_readme_tables_are_made_from_the_stored_and_measured_results():
    """The README's measured tables come from lesson_lib/stored and benchmarks/results, never typed."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "readme_tables.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_lecturers_guide_is_linked_and_its_times_are_measured_for_every_notebook():
    """docs/lecturer.md: linked from the README; its time table (made by tools/readme_tables.py from
    benchmarks/results/notebooks.json) has a measured CPU time for every lesson notebook."""
    assert "(docs/lecturer.md)" in (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "lecturer.md").read_text()
    table = guide.split("<!-- table:notebooks -->")[1].split("<!-- /table:notebooks -->")[0]
    for nb in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        row = next((line for line in table.splitlines() if line.startswith(f"| {nb.stem} |")), None)
        assert row is not None, f"{nb.stem} has no row in the guide's time table"
        assert re.search(r"\| \d+\.\d min \|", row), f"{nb.stem}: no measured CPU time ({row})"
    for block in ("compare", "instruct"):
        assert f"<!-- table:{block} -->\n|" in guide, f"the guide's {block} table is empty"
