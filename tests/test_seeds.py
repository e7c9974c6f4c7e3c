"""Experiments stored with several seeds: rows carry their seed, later seeds are added, provenance lists them."""

import json

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


def test_one_figures_data_is_stored_for_one_seed_only(tmp_path):
    import pytest

    results.save_seeds("fig", [(0, {"grid": [1, 2]}, 1.0)], "cmd", folder=tmp_path)
    with pytest.raises(ValueError, match="one seed only"):
        results.save_seeds("fig", [(1, {"grid": [3]}, 1.0)], "cmd --add", add=True, folder=tmp_path)
