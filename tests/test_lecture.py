"""Lecture mode and stored results: trained runs are stored once and loaded, so a lecturer never waits;
the experiments too long for a CPU are stored with their provenance and shown as such."""

from __future__ import annotations

import json

import nbformat
import pytest
import torch

import lesson_lib as ll
from lesson_lib import cli, experiments, lecture, results
from lesson_lib.io import AdapterFileError
from lesson_lib.tiny import tiny_batch, tiny_task


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON_STORE", str(tmp_path / "stored"))
    return tmp_path / "stored"


def _lora_model(r: int = 2):
    model, _ = ll.load_base(tiny=True)
    ll.inject(model, ll.LoRAConfig(r=r))
    return model


def test_train_or_load_trains_stores_then_loads_the_same_model_and_history(cache):
    task = tiny_task(n=64)
    cfg = ll.TrainConfig(steps=6, lr=1e-2, batch_size=8, eval_every=3, progress=False)
    trained = _lora_model()
    history = lecture.train_or_load("lora_demo", trained, task, cfg)
    assert history.source == "trained now" and len(history.evals) == 2
    assert sorted(p.name for p in cache.iterdir()) == ["lora_demo.quick.history.json", "lora_demo.quick.safetensors"]

    steps = []
    fresh = _lora_model()  # the same methods, untrained
    loaded = lecture.train_or_load("lora_demo", fresh, task, cfg, callbacks=[type("C", (), {
        "on_step": lambda self, *a: steps.append(a)})()])
    assert steps == [] and loaded.source.startswith("stored")  # nothing trained
    assert loaded.evals == json.loads(json.dumps(history.evals)) and loaded.seconds == history.seconds
    batch = tiny_batch()
    with torch.no_grad():
        assert torch.equal(fresh(**batch).logits, trained(**batch).logits)


def test_a_run_stored_in_one_mode_is_not_loaded_in_another(cache, monkeypatch):
    task, cfg = tiny_task(n=32), ll.TrainConfig(steps=2, batch_size=8, eval_every=0, progress=False)
    lecture.train_or_load("lora_demo", _lora_model(), task, cfg)
    monkeypatch.setenv("LESSON_MODE", "cpu")
    assert lecture.train_or_load("lora_demo", _lora_model(), task, cfg).source == "trained now"


def test_train_or_load_refuses_a_stored_run_of_other_methods_and_leaves_the_model(cache):
    task = tiny_task(n=64)
    cfg = ll.TrainConfig(steps=2, batch_size=8, eval_every=0, progress=False)
    lecture.train_or_load("lora_demo", _lora_model(r=2), task, cfg)
    other = _lora_model(r=4)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(AdapterFileError, match="delete .*lora_demo"):
        lecture.train_or_load("lora_demo", other, task, cfg)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())


def test_prepare_runs_every_notebook_once_and_stores_its_runs(cache, tmp_path, monkeypatch):
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
        "json.dump({'mode': ll.mode(), 'source': h.source}, open(os.environ['LESSON_CACHE'] + '/seen.json', 'w'))")]
    nbformat.write(nb, folder / "01_demo.ipynb")
    done = lecture.prepare(folder, timeout=300)
    assert [name for name, _ in done] == ["01_demo.ipynb"]
    assert json.loads((cache / "seen.json").read_text()) == {"mode": "quick", "source": "trained now"}
    assert (cache / "nb_run.quick.safetensors").exists() and (cache / "nb_run.quick.history.json").exists()
    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        lecture.prepare(tmp_path / "nowhere")


# --- stored results ----------------------------------------------------------------------------------------

def test_save_writes_results_with_their_provenance(store):
    path = results.save("demo", {"rows": [{"method": "lora", "size": 8, "accuracy": 0.9}]}, 12.34, seed=0)
    record = json.loads(path.read_text())
    p = record["provenance"]
    assert record["result"]["rows"][0]["accuracy"] == 0.9
    for key in ("device", "torch", "transformers", "lesson_lib", "date", "seconds", "seed", "command", "mode"):
        assert key in p, key
    assert p["seconds"] == 12.3 and p["command"] == "python -m lesson_lib precompute demo"
    label = results.label(results.load("demo"))
    assert label.startswith("stored: computed on cpu") and "recompute: python -m lesson_lib precompute demo" in label
    assert results.stored_row("demo", "lora")["size"] == 8
    with pytest.raises(ValueError, match="no run of 'adapter'"):
        results.stored_row("demo", "adapter")


def test_a_missing_stored_result_says_how_to_make_it(store):
    with pytest.raises(results.NotStoredError, match="python -m lesson_lib precompute nothing_here"):
        results.load("nothing_here")


def test_get_loads_stored_results_in_cpu_mode_and_computes_in_the_others(store, monkeypatch):
    calls = []
    monkeypatch.setitem(experiments.EXPERIMENTS, "demo", experiments.Experiment(
        lambda mode: calls.append(mode) or {"rows": [mode]}, "a demo"))
    results.save("demo", {"rows": ["full"]}, 1.0, seed=0)
    monkeypatch.setenv("LESSON_MODE", "cpu")
    got = results.get("demo")
    assert calls == [] and got["rows"] == ["full"] and got["source"].startswith("stored: computed on")
    monkeypatch.setenv("LESSON_MODE", "full")
    assert results.get("demo")["rows"] == ["full"] and calls == ["full"]
    monkeypatch.setenv("LESSON_MODE", "quick")
    got = results.get("demo")
    assert got["rows"] == ["quick"] and "mean nothing" in got["source"]
    with pytest.raises(ValueError, match="unknown experiment"):
        results.get("no_such_experiment")


def test_precompute_runs_the_named_experiments_in_full_mode(store, monkeypatch, capsys):
    seen = []
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny_demo", experiments.Experiment(
        lambda mode, seed=0: seen.append((mode, ll.mode(), seed)) or {"rows": [{"seed": seed, "x": 42}]}, "a demo"))
    monkeypatch.setenv("LESSON_FAST", "1")
    assert cli.main(["precompute", "tiny_demo"]) == 0
    assert seen == [("full", "full", 0)] and ll.mode() == "quick"  # LESSON_MODE is put back
    record = results.load("tiny_demo")
    assert record["result"]["rows"] == [{"seed": 0, "x": 42}] and record["provenance"]["mode"] == "full"
    assert record["provenance"]["command"] == "python -m lesson_lib precompute tiny_demo"
    assert "tiny_demo, seed 0:" in capsys.readouterr().out
    # more seeds later, beside the stored one; the command then recomputes every seed stored
    assert cli.main(["precompute", "tiny_demo", "--seeds", "1", "2", "--add"]) == 0
    record = results.load("tiny_demo")
    assert [r["seed"] for r in record["result"]["rows"]] == [0, 1, 2]
    assert record["provenance"]["seeds"] == [0, 1, 2]
    assert record["provenance"]["command"] == "python -m lesson_lib precompute tiny_demo --seeds 0 1 2"
    with pytest.raises(SystemExit, match="unknown experiment"):
        cli.main(["precompute", "nope"])


def test_every_experiment_is_stored_with_its_provenance():
    """What the notebooks show in CPU mode exists, was computed in full mode, and says how to recompute it;
    every stored result (some experiments wait for a GPU) carries the same provenance."""
    import re
    from pathlib import Path

    sources = " ".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "tools" / "lessons").glob("n*.py"))
    shown = set(re.findall(r"""(?:results\.get|results\.load|stored_row)\(f?["']([a-z_]+)["']""", sources))
    shown |= {f"compare_{t}" for t in ("tweets", "bbc")}  # notebook 06 loads them with an f-string
    assert shown <= set(experiments.EXPERIMENTS), shown - set(experiments.EXPERIMENTS)
    stored = {p.stem for p in results.store_dir().glob("*.json")}
    assert shown <= stored, f"a notebook shows {shown - stored}, which is not stored"
    for name in stored:
        p = results.load(name)["provenance"]
        assert p["mode"] == "full" and p["command"].startswith(f"python -m lesson_lib precompute {name}"), name
        assert p["seconds"] > 0 and p["seed"] == min(p.get("seeds") or [0]) and p["device"] and p["date"]


def test_recipes_say_what_a_mode_trains_live_and_what_it_shows_stored():
    """CPU mode: the efficient methods train live in the top layers for fewer steps; full fine-tuning and prompt
    tuning are shown from the stored full-mode run, and their recipe describes that run (its steps, not a CPU
    budget nobody trains); quick mode trains everything live on a subset."""
    live = ll.recipe("lora", "tweets", "cpu")
    assert live.live and live.top == experiments.TOP and live.steps < ll.recipe("lora", "tweets", "full").steps
    for method in experiments.NOT_LIVE_ON_CPU:
        for task in ("tweets", "bbc"):
            shown, full = ll.recipe(method, task, "cpu"), ll.recipe(method, task, "full")
            assert not shown.live
            assert (shown.steps, shown.batch_size, shown.lr) == (full.steps, full.batch_size, full.lr)
            assert "not trained live" in str(shown) and f"{full.steps} steps" in str(shown)
    assert all(ll.recipe(m, "tweets", "quick").live for m in experiments.METHODS)


def test_a_verdict_is_printed_once_and_never_in_quick_mode(monkeypatch, capsys):
    monkeypatch.setenv("LESSON_MODE", "cpu")
    assert ll.verdict("LoRA wins") is None  # printed, not also echoed as a notebook cell's value
    assert capsys.readouterr().out == "LoRA wins\n"
    monkeypatch.setenv("LESSON_MODE", "quick")
    ll.verdict("LoRA wins")
    assert "wins" not in capsys.readouterr().out
