"""Experiments stored with several seeds: rows carry their seed, later seeds are added, provenance lists them."""

import json
from pathlib import Path

from lesson_lib import results


def _rows(seed: int, acc: float) -> dict:
    return {"task": "tweets", "rows": [{"method": "lora", "size": 8, "accuracy": acc, "seed": seed},
                                       {"method": "head", "size": None, "accuracy": acc - 0.1, "seed": seed}]}


def test_save_seeds_stores_every_seed_and_adds_later_ones(tmp_path):
    out = results.save_seeds("demo", [(0, _rows(0, 0.8), 10.0)], "cmd", folder=tmp_path)
    first = json.loads(out.read_text())
    assert first["provenance"]["seeds"] == [0] and len(first["result"]["rows"]) == 2
    out = results.save_seeds("demo", [(1, _rows(1, 0.7), 5.0), (2, _rows(2, 0.9), 6.0)], "cmd --add", add=True,
                             folder=tmp_path)
    rec = json.loads(out.read_text())
    assert rec["provenance"]["seeds"] == [0, 1, 2]
    assert sorted(r["seed"] for r in rec["result"]["rows"]) == [0, 0, 1, 1, 2, 2]
    assert rec["provenance"]["seconds"] == 21.0
    assert "seeds 0, 1, 2" in results.label(rec)
    # recomputing a seed replaces its rows instead of doubling them
    out = results.save_seeds("demo", [(1, _rows(1, 0.75), 5.0)], "cmd", add=True, folder=tmp_path)
    rec = json.loads(out.read_text())
    assert sorted(r["seed"] for r in rec["result"]["rows"]) == [0, 0, 1, 1, 2, 2]
    assert [r["accuracy"] for r in rec["result"]["rows"] if r["seed"] == 1 and r["method"] == "lora"] == [0.75]


def test_each_stored_seed_keeps_the_versions_it_ran_with(tmp_path, monkeypatch):
    import torch
    import transformers

    # an older record: runs without versions, stored when transformers was 5.0.0
    old = {"name": "demo", "result": _rows(0, 0.8), "provenance": {
        "seed": 0, "seconds": 10.0, "date": "2026-11-01 10:00 UTC", "torch": "2.0.0", "transformers": "5.0.0",
        "runs": [{"seed": 0, "seconds": 10.0, "date": "2026-11-01"}]}}
    (tmp_path / "demo.json").write_text(json.dumps(old))
    out = results.save_seeds("demo", [(1, _rows(1, 0.7), 5.0)], "cmd", add=True, folder=tmp_path)
    runs = {r["seed"]: r for r in json.loads(out.read_text())["provenance"]["runs"]}
    assert (runs[0]["torch"], runs[0]["transformers"]) == ("2.0.0", "5.0.0")
    assert (runs[1]["torch"], runs[1]["transformers"]) == (torch.__version__, transformers.__version__)
    # and they survive a seed added after an upgrade
    now = transformers.__version__
    monkeypatch.setattr(transformers, "__version__", "9.9.9")
    out = results.save_seeds("demo", [(2, _rows(2, 0.9), 5.0)], "cmd", add=True, folder=tmp_path)
    runs = {r["seed"]: r for r in json.loads(out.read_text())["provenance"]["runs"]}
    assert [runs[s]["transformers"] for s in (0, 1, 2)] == ["5.0.0", now, "9.9.9"]


def test_one_figures_data_is_stored_for_one_seed_only(tmp_path):
    import pytest

    results.save_seeds("fig", [(0, {"grid": [1, 2]}, 1.0)], "cmd", folder=tmp_path)
    with pytest.raises(ValueError, match="one seed only"):
        results.save_seeds("fig", [(1, {"grid": [3]}, 1.0)], "cmd --add", add=True, folder=tmp_path)


def test_group_rows_gathers_the_seeds_of_each_run():
    import pytest

    rows = _rows(0, 0.8)["rows"] + _rows(1, 0.7)["rows"]
    by_method = results.group_rows(rows, "method")
    assert list(by_method) == ["lora", "head"]
    assert [r["accuracy"] for r in by_method["lora"]] == [0.8, 0.7]
    assert set(results.group_rows(rows, "method", "size")) == {("lora", 8), ("head", None)}
    with pytest.raises(ValueError, match="no 'examples'"):
        results.group_rows(rows, "examples")
    with pytest.raises(ValueError, match="at least one key"):
        results.group_rows(rows)


def test_judge_uses_the_seeds_range_and_falls_back_to_the_noise_of_single_runs():
    from lesson_lib import metrics

    # several seeds: the gap must beat the larger range
    assert metrics.judge([0.90, 0.91], [0.85, 0.86], 1000)[0] == "a"
    assert metrics.judge([0.90, 0.95], [0.88, 0.89], 1000) == ("tie", "the seeds' range of 5.0 points")
    # one run on a side: the gap must beat the noise band of single runs (±2.9 points near 88 % on 1,000)
    outcome, yardstick = metrics.judge([0.889], [0.847], 1000)
    assert outcome == "a" and "noise of single runs" in yardstick and "1,000" in yardstick
    assert metrics.judge([0.88], [0.86], 1000)[0] == "tie"
    assert metrics.judge([0.80], [0.88, 0.89], 1000)[0] == "b"


def test_against_best_names_the_leader_and_only_the_methods_it_really_beats():
    from lesson_lib import metrics

    best, beaten, tied = metrics.against_best({"lora": [0.88, 0.89], "adapter": [0.882, 0.884],
                                               "prompt": [0.81, 0.82]})
    assert best == "lora" and beaten == ["prompt"] and tied == ["adapter"]
    # a judge of one's own is used for every comparison
    assert metrics.against_best({"a": [0.9], "b": [0.5]}, judge=lambda a, b: "a")[1] == ["b"]


def test_readme_tables_show_every_seed_of_the_sweep_and_judge_by_their_range(tmp_path, monkeypatch):
    """With several seeds stored, the sweep and the rank table show mean (range) and their verdicts use the
    seeds' range; with one seed, the noise of single runs."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import readme_tables

    def run(method, size, acc, seed):
        return {"method": method, "size": size, "trainable": 100 * size, "accuracy": acc, "seed": seed,
                "steps": 300, "batch_size": 32, "test_size": 1000, "file_bytes": 400 * size}

    sweep = [run("lora", r, acc + d, seed) for seed, d in ((0, 0.0), (1, 0.01))
             for r, acc in ((1, 0.84), (64, 0.89))]
    fixed = [run("lora_fixed_alpha", r, acc, 0) for r, acc in ((1, 0.866), (64, 0.884))]
    for name, rows, seeds in (("sweep_tweets", sweep, [0, 1]), ("rank_fixed_alpha_tweets", fixed, [0])):
        results.save_seeds(name, [(s, {"task": "tweets", "rows": [r for r in rows if r["seed"] == s]}, 1.0)
                                  for s in seeds], "cmd", folder=tmp_path)
    monkeypatch.setattr(readme_tables, "STORED", tmp_path)
    table = readme_tables.sweep()
    assert "mean (range) over 2 seeds" in table and "| lora | 64 | 6,400 | 89.5 % (89.0–90.0) |" in table
    ranks = readme_tables.fixed_alpha()
    assert "| 1 | 84.5 % (84.0–85.0) | 86.6 % |" in ranks
    assert "α = 2r: r = 64 is better than r = 1, judged against the seeds' range of " in ranks
    assert "α = 16: r = 64 and r = 1 tie, judged against the noise of single runs" in ranks


def test_stored_row_averages_the_seeds_and_says_so(tmp_path, monkeypatch):
    results.save_seeds("demo", [(s, _rows(s, acc), 1.0) for s, acc in ((0, 0.80), (1, 0.70), (2, 0.90))], "cmd",
                       folder=tmp_path)
    monkeypatch.setenv("LESSON_STORE", str(tmp_path))
    row = results.stored_row("demo", "lora")
    assert abs(row["accuracy"] - 0.80) < 1e-12 and row["seeds"] == 3 and (row["low"], row["high"]) == (0.70, 0.90)
    assert results.stored_text(row) == "80.0 % (mean of 3 seeds, 70.0–90.0)"
    assert results.stored_text({"accuracy": 0.887}) == "88.7 %"


def test_what_notebook_03_writes_about_lora_beside_full_fine_tuning_holds_for_the_stored_runs():
    """n03's text: the gap to full fine-tuning is larger on BBC News than on the tweets, and the stored adapters
    come closer to full fine-tuning on BBC than LoRA does. New seeds must not make the sentence false."""

    def mean(task: str, method: str) -> float:
        return results.stored_row(f"compare_{task}", method)["accuracy"]

    gap = {t: mean(t, "full") - mean(t, "lora") for t in ("tweets", "bbc")}
    assert gap["bbc"] > gap["tweets"], gap
    assert mean("bbc", "adapter") > mean("bbc", "lora")
    text = (Path(__file__).resolve().parents[1] / "tools" / "lessons" / "n03_lora.py").read_text()
    assert "On BBC News it is larger" in text and "adapters\n      and full fine-tuning reach" in text
