"""The fast path for live training: run the frozen lower layers once per example, train the top ones.

When a method touches only the top k layers of an L-layer model (``LoRAConfig(layers=top_layers(model, k))``)
or only the head, layers 0 … s-1 (s = L - k) never change during training: the hidden states entering
layer s are the same at every step. So we compute them once per example, keep them, and train by running
only layers s … L-1, the pooler and the head:

    plain:   tokens → embeddings → layer 0 … layer L-1 → head → loss        every step, every example
    fast:    tokens → embeddings → layer 0 … layer s-1  → cache               once per example (no grad)
             cache  → layer s … layer L-1 → head → loss                         every step

Both halves run the model's own modules (the embeddings are swapped for "here are the hidden states"
and the layer list is cut, only for the duration of one forward call), so the logits are the very same
computation; ``tests/test_fast.py`` checks cached against uncached logits at atol 1e-5 in fp32.

Everything else the fast path does:

* the hidden states are stored per example without padding (fp32, exact); each training batch is padded
  only to its own longest member, and examples are bucketed by length ("sortish": shuffle, sort chunks of
  50 batches by length, shuffle the batches), so a batch of short tweets is short;
* examples are tokenised once and cached lazily, the first time a batch uses them, so the first step costs
  one lower-layer forward for its 32 examples, not one for the whole training set; the cache is kept for
  the next ``train`` call on the same model (new learning rate, more steps) and dropped when any weight
  below layer s changes (a parameter is replaced or edited in place) or another layer s is asked for;
* the live curve is evaluated through the cache too, on the same small fixed validation subset as the
  plain loop, under ``torch.inference_mode()``.

One honest difference: the cache is computed with the model in eval mode, so there is no dropout below
layer s (the plain loop's train-mode dropout of 0.1 there changes from step to step and cannot be
cached). Layers s … L-1 and the head train with their dropout as usual.

When does ``ll.train`` take this path? ``TrainConfig(fast=None)`` (the default) takes it when at least one
layer can be cached (s ≥ 1) and nothing below layer s trains; ``fast=False`` always runs the plain loop;
``fast=True`` insists (and says why when it cannot). It never applies when the embeddings, a soft prompt,
a trained LayerNorm in a lower layer, or any method module in a lower layer is present.
What is cached is fixed by ``cache_start(model)`` below; ``describe(model)`` says it in words.

Measured defaults (``python -m benchmarks.time_to_accuracy``; numbers in ``benchmarks/results/``): on the
tweets task with all-MiniLM-L6-v2 on 2 CPU cores (1 thread), LoRA r = 8 on query/value in the top 2 of 6
layers, batch 32, learning rate 3e-3 reaches 88.1 % test accuracy — what the plain loop (LoRA on all
layers, lr 1e-3) has after 300 steps — in 79 s instead of 309 s (3.9×): 0.43 s per step instead of 1.36 s,
and 175 steps instead of 225. The batch size was not tuned (32 throughout). Threads
(``python -m benchmarks.step_time``): on an idle 2-core machine two threads took 0.67× the time of one per
step; on a machine shared with other programs two threads were up to 4× slower than one
(``TrainConfig(threads=1)``), so use one thread when something else is running.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import weakref
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .data import Split, _tokenize
from .devices import model_device, model_dtype, to_model
from .models import arch_for, layers_of
from .prompt import SoftPrompt

BUCKET_BATCHES = 50  # sortish bucketing: sort chunks of this many batches by length
EVAL_BATCH = 64


# --- what can be cached ------------------------------------------------------------------------------

def top_layers(model: nn.Module, k: int) -> tuple[int, ...]:
    """The indices of the top ``k`` layers, for a config's ``layers=``: ``top_layers(model, 2)`` → (4, 5)."""
    n = len(layers_of(model))
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and {n} (this model has {n} layers), got {k!r}")
    return tuple(range(n - k, n))


def cache_start(model: nn.Module) -> int | None:
    """The first layer s whose output can change during training; layers below s can be cached.

    s is the lowest layer that holds a trainable parameter or a library method module (LoRA, adapter,
    prefix, gate); s = L when only the head trains. None when something below the layers trains or
    rewrites the input (the embeddings, a soft prompt): then nothing can be cached.
    """
    arch = arch_for(model)
    n = len(layers_of(model))
    layer_rx = re.compile(re.escape(arch.layers) + r"\.(\d+)\.")
    backbone = model.get_submodule(arch.backbone)
    if backbone._forward_pre_hooks or any(isinstance(m, SoftPrompt) for m in model.modules()):
        return None  # a soft prompt rewrites the backbone's input
    s = n
    for name, module in model.named_modules():
        m = layer_rx.match(name + ".")
        if m and hasattr(module, "method"):
            s = min(s, int(m.group(1)))
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        m = layer_rx.match(name)
        if m:
            s = min(s, int(m.group(1)))
        elif not _outside_layers_ok(model, arch, name):
            return None
    return s


def _outside_layers_ok(model: nn.Module, arch, name: str) -> bool:
    """A trainable parameter outside the layers is fine if it sits above them (the head, the pooler)
    or in a prefix encoder (whose output only reaches the layers that hold prefix modules)."""
    above = arch.head + tuple(p for p in (f"{arch.backbone}.pooler",))
    if any(name.startswith(h + ".") for h in above):
        return True
    owner = name.rpartition(".")[0]
    while owner:
        if getattr(model.get_submodule(owner), "method", None) == "prefix":
            return True
        owner = owner.rpartition(".")[0]
    return False


def describe(model: nn.Module) -> str:
    """One line: what the fast path would cache for this model, or why it cannot."""
    s, n = cache_start(model), len(layers_of(model))
    if s is None:
        return "fast path off: something below the layers trains (embeddings or a soft prompt)"
    if s == 0:
        return "fast path off: layer 0 trains, so there is nothing frozen to cache"
    def span(a: int, b: int) -> str:
        return f"layer {a}" if a == b else f"layers {a}–{b}"

    what = "only the head trains" if s == n else f"{span(s, n - 1)} and the head train"
    return f"fast path: {span(0, s - 1)} run once per example and are cached; {what}"


# --- running the bottom and the top of the model -------------------------------------------------------

class _Given(nn.Module):
    """Stands in for the embeddings: returns the hidden states it was handed, whatever it is asked."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.hidden


@contextlib.contextmanager
def _swapped(model: nn.Module, keep: slice, hidden: torch.Tensor | None = None):
    """For one forward call: keep only ``layers[keep]``, and (with ``hidden``) skip the embeddings."""
    arch = arch_for(model)
    parent_path, _, attr = arch.layers.rpartition(".")
    parent = model.get_submodule(parent_path)
    layers = getattr(parent, attr)
    emb_parent_path, _, emb_attr = arch.embeddings.rpartition(".")
    emb_parent = model.get_submodule(emb_parent_path)
    embeddings = getattr(emb_parent, emb_attr)
    try:
        parent._modules[attr] = nn.ModuleList(list(layers)[keep])
        if hidden is not None:
            emb_parent._modules[emb_attr] = _Given(hidden)
        yield
    finally:
        parent._modules[attr] = layers
        emb_parent._modules[emb_attr] = embeddings


def lower_forward(model: nn.Module, s: int, batch: dict) -> torch.Tensor:
    """The hidden states entering layer ``s`` (B, T, d): embeddings and layers 0 … s-1, eval mode, no grad.

    The batch is moved to the model's device first (wherever it was built)."""
    backbone = model.get_submodule(arch_for(model).backbone)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _swapped(model, slice(0, s)):
            inputs = {k: v for k, v in to_model(model, batch).items() if k != "labels"}
            return backbone(**inputs).last_hidden_state
    finally:
        model.train(was_training)


def top_forward(model: nn.Module, s: int, hidden: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None):
    """Layers s … L-1, pooler and head on cached hidden states (B, T, d); the model's usual output.

    Everything is moved to the model's device (and the hidden states to its dtype) first."""
    device, dtype = model_device(model), model_dtype(model)
    hidden, attention_mask = hidden.to(device, dtype), attention_mask.to(device)
    labels = None if labels is None else labels.to(device)
    with _swapped(model, slice(s, None), hidden):
        return model(inputs_embeds=hidden, attention_mask=attention_mask, labels=labels)


# --- the cache ---------------------------------------------------------------------------------------------

class HiddenCache:
    """Token ids and (once computed) the hidden states entering layer ``s`` for every example of a split.

    Hidden states are kept per example, unpadded: a list of (length, d) tensors, None until first used.
    With s = L only the first token is kept: the classifier heads read nothing else.
    """

    def __init__(self, split: Split, tokenizer, max_length: int, s: int, n_layers: int):
        features = _tokenize(split.texts, tokenizer, max_length)
        self.ids = features["input_ids"]
        self.types = features.get("token_type_ids")
        self.labels = torch.tensor(split.labels)
        self.lengths = [len(x) for x in self.ids]
        self.s, self.first_only = s, s == n_layers
        self.pad_id = tokenizer.pad_token_id
        self.hidden: list[torch.Tensor | None] = [None] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def megabytes(self) -> float:
        return sum(h.numel() * h.element_size() for h in self.hidden if h is not None) / 2**20

    def _fill(self, model: nn.Module, indices: list[int], device: torch.device) -> None:
        """Compute the hidden states of the examples in ``indices`` that are not cached yet (one batch)."""
        todo = [i for i in indices if self.hidden[i] is None]
        if not todo:
            return
        width = max(self.lengths[i] for i in todo)
        rows = [self.ids[i] + [self.pad_id] * (width - self.lengths[i]) for i in todo]
        batch = {"input_ids": torch.tensor(rows, device=device),
                 "attention_mask": torch.tensor([[1] * self.lengths[i] + [0] * (width - self.lengths[i])
                                                 for i in todo], device=device)}
        if self.types is not None:
            batch["token_type_ids"] = torch.tensor([self.types[i] + [0] * (width - self.lengths[i]) for i in todo],
                                                   device=device)
        hidden = lower_forward(model, self.s, batch)  # (b, width, d)
        for row, i in enumerate(todo):
            keep = 1 if self.first_only else self.lengths[i]
            self.hidden[i] = hidden[row, :keep].clone()

    def batch(self, model: nn.Module, indices: list[int], device: torch.device) -> dict:
        """{"hidden": (B, T, d), "attention_mask": (B, T), "labels": (B,)}, padded to the longest member."""
        self._fill(model, indices, device)
        hidden = pad_sequence([self.hidden[i] for i in indices], batch_first=True)  # a new, ordinary tensor
        lengths = torch.tensor([h.shape[0] for h in (self.hidden[i] for i in indices)], device=device)
        mask = (torch.arange(hidden.shape[1], device=device)[None, :] < lengths[:, None]).long()
        return {"hidden": hidden, "attention_mask": mask, "labels": self.labels[indices].to(device)}


def bucketed(lengths: list[int], batch_size: int, seed: int) -> Iterator[list[int]]:
    """Index batches forever, each epoch shuffled, with similar lengths together (less padding).

    Shuffle; cut into chunks of ``BUCKET_BATCHES`` batches; sort each chunk by length; cut it into batches;
    shuffle the order of the batches. Every example is used once per epoch, as with a shuffled loader.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    chunk = batch_size * BUCKET_BATCHES
    while True:
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
            batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
        rng.shuffle(batches)
        yield from batches


# --- keeping caches between train() calls ----------------------------------------------------------------

_CACHES: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module, s: int) -> tuple:
    """Changes when anything below layer s changes: a module or parameter replaced, or edited in place."""
    arch = arch_for(model)
    parts = [model.get_submodule(arch.embeddings), *layers_of(model)[:s]]
    return tuple((id(p), p._version, p.data_ptr(), p.device.type) for part in parts for p in part.parameters()) + \
        tuple(id(m) for part in parts for m in part.modules())


def _split_key(split: Split, max_length: int) -> str:
    h = hashlib.sha1(str(max_length).encode())
    for text, label in zip(split.texts, split.labels):
        h.update(f"{label}\x00{text}\x01".encode())
    return h.hexdigest()


def cache_for(model: nn.Module, split: Split, tokenizer, max_length: int, s: int) -> HiddenCache:
    """The cache of ``split`` entering layer ``s``; reused while the layers below s stay as they are."""
    store = _CACHES.setdefault(model, {})
    fingerprint = _fingerprint(model, s)
    if store.get("fingerprint") != (s, fingerprint):
        store.clear()
        store["fingerprint"] = (s, fingerprint)
    key = (_split_key(split, max_length), id(tokenizer))
    if key not in store:
        store[key] = HiddenCache(split, tokenizer, max_length, s, len(layers_of(model)))
    return store[key]


def clear_cache(model: nn.Module) -> None:
    """Forget every cached hidden state of ``model`` (frees the memory)."""
    _CACHES.pop(model, None)


# --- evaluation and the feed the training loop uses ---------------------------------------------------------

@torch.inference_mode()
def evaluate_cached(model: nn.Module, cache: HiddenCache, device: torch.device, autocast=contextlib.nullcontext,
                    batch_size: int = EVAL_BATCH) -> dict:
    """Accuracy and mean loss over a cached split: the same numbers as ``ll.evaluate``, layers ≥ s only."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(cache)), key=lambda i: cache.lengths[i])
    correct, loss_sum = 0, 0.0
    for start in range(0, len(order), batch_size):
        b = cache.batch(model, order[start:start + batch_size], device)
        with autocast():
            logits = top_forward(model, cache.s, b["hidden"], b["attention_mask"]).logits.float()
        loss_sum += float(nn.functional.cross_entropy(logits, b["labels"], reduction="sum"))
        correct += int((logits.argmax(-1) == b["labels"]).sum())
    model.train(was_training)
    return {"accuracy": correct / len(cache), "loss": loss_sum / len(cache), "n": len(cache)}


class CachedFeed:
    """What ``ll.train`` needs from a data path, the fast way: batches, a loss per batch, an evaluation."""

    def __init__(self, model, task, eval_split: Split, tokenizer, cfg, device: torch.device, s: int, autocast):
        self.model, self.cfg, self.device, self.s, self.autocast = model, cfg, device, s, autocast
        self.train_cache = cache_for(model, task.train, tokenizer, task.max_length, s)
        self.eval_cache = cache_for(model, eval_split, tokenizer, task.max_length, s)

    def batches(self) -> Iterator[dict]:
        for indices in bucketed(self.train_cache.lengths, self.cfg.batch_size, self.cfg.seed):
            yield self.train_cache.batch(self.model, indices, self.device)

    def loss(self, batch: dict) -> torch.Tensor:
        return top_forward(self.model, self.s, batch["hidden"], batch["attention_mask"], batch["labels"]).loss

    def evaluate(self) -> dict:
        return evaluate_cached(self.model, self.eval_cache, self.device, self.autocast)
