"""Lecture mode: results and trained runs are stored once and loaded, so a lecturer never waits."""

from __future__ import annotations

import json

import nbformat
import pytest
import torch

import lesson_lib as ll
from lesson_lib import cli, lecture
from lesson_lib.io import AdapterFileError
from lesson_lib.tiny import tiny_batch, tiny_task


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(lecture, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setenv("LESSON_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _lora_model(r: int = 2):
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=r))
    return model


def test_cached_computes_once_then_loads(cache):
    calls = []
    first = lecture.cached("demo", lambda: calls.append(1) or {"rows": [1, 2]})
    again = lecture.cached("demo", lambda: calls.append(1) or {"rows": [3]})
    assert calls == [1] and first["_source"] == "computed now" and again["_source"].startswith("stored")
    assert again["rows"] == [1, 2] and lecture.stored("demo")["rows"] == [1, 2]


def test_train_or_load_trains_stores_then_loads_the_same_model_and_history(cache):
    task = tiny_task(n=64)
    cfg = ll.TrainConfig(steps=6, lr=1e-2, batch_size=8, eval_every=3, progress=False)
    trained = _lora_model()
    history = lecture.train_or_load("lora_demo", trained, task, cfg)
    assert history.source == "trained now" and len(history.evals) == 2
    files = sorted(p.name for p in cache.iterdir())
    assert files == ["lora_demo-fast.history.json", "lora_demo-fast.safetensors"] or \
        files == ["lora_demo.history.json", "lora_demo.safetensors"]

    steps = []
    fresh = _lora_model()  # the same methods, untrained
    loaded = lecture.train_or_load("lora_demo", fresh, task, cfg, callbacks=[type("C", (), {
        "on_step": lambda self, *a: steps.append(a)})()])
    assert steps == [] and loaded.source.startswith("stored")  # nothing trained
    assert loaded.evals == json.loads(json.dumps(history.evals)) and loaded.seconds == history.seconds
    batch = tiny_batch()
    with torch.no_grad():
        assert torch.equal(fresh(**batch).logits, trained(**batch).logits)


def test_train_or_load_refuses_a_stored_run_of_other_methods_and_leaves_the_model(cache):
    task = tiny_task(n=64)
    cfg = ll.TrainConfig(steps=2, batch_size=8, eval_every=0, progress=False)
    lecture.train_or_load("lora_demo", _lora_model(r=2), task, cfg)
    other = _lora_model(r=4)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(AdapterFileError, match="delete .*lora_demo"):
        lecture.train_or_load("lora_demo", other, task, cfg)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())


def test_precompute_runs_notebooks_in_full_mode_and_stores_their_runs(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON_FAST", "1")  # precompute must take it away for the kernels
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import lesson_lib as ll, json, os\n"
        "from lesson_lib.tiny import tiny_task\n"
        "model, _ = ll.load_base(tiny=True)\n"
        "ll.inject(model, ll.LoRAConfig(r=2))\n"
        "h = ll.lecture.train_or_load('nb_run', model, tiny_task(n=32), ll.TrainConfig(steps=2, batch_size=8, "
        "eval_every=0, progress=False))\n"
        "json.dump({'fast': ll.FAST, 'source': h.source}, open(os.environ['LESSON_CACHE'] + '/seen.json', 'w'))")]
    nbformat.write(nb, folder / "01_demo.ipynb")
    done = lecture.precompute_notebooks(folder, timeout=300)
    assert [name for name, _ in done] == ["01_demo.ipynb"]
    seen = json.loads((cache / "seen.json").read_text())
    assert seen == {"fast": False, "source": "trained now"}
    assert (cache / "nb_run.safetensors").exists() and (cache / "nb_run.history.json").exists()
    import os

    assert os.environ["LESSON_FAST"] == "1"  # put back
    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        lecture.precompute_notebooks(tmp_path / "nowhere")


def test_precompute_command_runs_the_named_experiments(cache, monkeypatch, capsys):
    monkeypatch.setattr(lecture, "EXPERIMENTS", {"tiny_demo": lambda: {"rows": [42]}})
    assert cli.main(["precompute", "tiny_demo"]) == 0
    assert lecture.stored("tiny_demo")["rows"] == [42] and "tiny_demo:" in capsys.readouterr().out
