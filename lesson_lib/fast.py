"""The fast path for live training: run the frozen lower layers once per example, train the top ones.

When a method touches only the top k layers of an L-layer model (``LoRAConfig(layers=top_layers(model, k))``)
or only the head, layers 0 … s-1 (s = L - k) never change during training: the hidden states entering
layer s are the same at every step. So we compute them once per example, keep them, and train by running
only layers s … L-1 and the head:

    plain:   tokens → embeddings → layer 0 … layer L-1 → head → loss        every step, every example
    fast:    tokens → embeddings → layer 0 … layer s-1  → cache               once per example (no grad)
             cache  → layer s … layer L-1 → head → loss                         every step

How to ask for it (it is never switched on behind your back):

    ll.train(model, task, ll.TrainConfig(fast=True))         # the fast path, with a new cache for this call
    fp = ll.fast.FastPath(model)                              # or keep the cache yourself:
    ll.train(model, task, ll.TrainConfig(lr=3e-3), fast=fp)   # fills it for the examples this run uses
    ll.train(model, task, ll.TrainConfig(lr=1e-2), fast=fp)   # a second run reuses them
    print(fp)                                                 # what is cached, and how many megabytes

``TrainConfig(fast=False)`` (the default) is the plain loop. When the fast path cannot apply (layer 0 or
something below it trains), asking for it is an error that says why; ``describe(model)`` says it in words.

Both halves call the model's own modules one by one, with nothing patched or swapped:

* ``lower_forward``: the embeddings, then layers 0 … s-1, each called as ``layer(hidden, mask)``;
* ``top_forward``: layers s … L-1 the same way, then the family's classification head (``HEADS``: a few
  lines per family, copied from transformers' ``…ForSequenceClassification.forward``), then cross-entropy,
  as the model computes its loss for single-label classification;
* the attention mask the layers take is made by ``layer_mask``, with the very function the backbone's own
  forward uses, so the logits are the same computation; ``tests/test_fast.py`` checks cached against
  uncached logits at atol 1e-5 in fp32, for BERT, RoBERTa and DistilBERT.

What is cached, and when it is thrown away:

* the hidden states entering layer s, per example, without padding (exact, in the model's precision); each
  training batch is padded only to its own longest member, and examples are bucketed by length ("sortish":
  shuffle, sort chunks of 50 batches by length, shuffle the batches), so a batch of short tweets is short;
* examples are tokenised once and their hidden states computed lazily, the first time a batch uses them, so
  the first step costs one lower-layer forward for its 32 examples, not one for the whole training set;
* a ``FastPath`` remembers a checksum of everything below layer s: the kinds of module, and every
  parameter's name, shape, dtype, device and the sum of its bits read as integers (exact, and the same
  in any summation order, so a changed value changes it, short of changes that cancel exactly or a
  reshuffle of values within one tensor). Before a run uses the cache it checks the model again and
  starts over when anything changed: a weight edited in place (merged LoRA, ``load_state_dict``), a module
  replaced, a method added lower down (a new s). We compare contents rather than torch's private in-place
  counters (``p._version``) or tensor addresses: it costs about 50 ms per run for MiniLM, catches what the
  counters miss (``p.data = …``), and keeps the cache when tensors were only replaced by equal ones;
* the live curve is evaluated through the cache too, on the same small fixed validation subset as the
  plain loop, under ``torch.inference_mode()``.

The honest difference: the cache is computed with layers 0 … s-1 in eval mode, so there is no dropout
below layer s (the plain loop's train-mode dropout of 0.1 there changes from step to step and cannot be
cached). Layers s … L-1 and the head train with their dropout as usual. Forward hooks on the backbone or on
the whole model are not run (the layers' own hooks are); library methods are recognised by their ``method``
attribute: one inside layer i makes s ≤ i, and one below the layers (a soft prompt) rules the fast path out.

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
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pad_sequence
from transformers.modeling_outputs import SequenceClassifierOutput

from .data import Split, tokenize
from .devices import model_device, model_dtype, to_model
from .models import arch_for, layers_of, token_budget
from .module import MethodModule
from .prefix import PrefixEncoder

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

    s is the lowest layer that holds a trainable parameter or a library method module (anything with a
    ``method`` attribute: LoRA, adapter, prefix, gate); s = L when only the head trains. None when something
    below the layers trains or rewrites the input (the embeddings, a soft prompt): then nothing can be cached.
    """
    arch = arch_for(model)
    layer_rx = re.compile(re.escape(arch.layers) + r"\.(\d+)\.")
    s = len(layers_of(model))
    for name, module in model.named_modules():
        if not isinstance(module, MethodModule):
            continue
        m = layer_rx.match(name + ".")
        if m:
            s = min(s, int(m.group(1)))
        elif not _outside_layers_ok(model, arch, name + "."):
            return None  # a soft prompt (or another method below the layers) changes what layer 0 sees
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
    """Something outside the layers (a parameter, or a module's name + ".") is fine if it sits above them
    (the head, the pooler) or in a prefix encoder (whose output only reaches the layers that hold prefix modules)."""
    above = (*arch.head, f"{arch.backbone}.pooler")
    if any(name.startswith(h + ".") for h in above):
        return True
    owner = name.rpartition(".")[0]
    while owner:
        if isinstance(model.get_submodule(owner), PrefixEncoder):
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
    return f"fast path: {span(0, s - 1)} run once per example (eval mode: no dropout there) and are cached; {what}"


# --- running the bottom and the top of the model -------------------------------------------------------

def layer_mask(model: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None):
    """The padding mask (B, T) in the form the layers take, made exactly as the backbone's forward makes it.

    Written against transformers 5.24: ``BertModel``, ``RobertaModel`` and ``DistilBertModel.forward`` all call
    ``masking_utils.create_bidirectional_mask`` (for "sdpa" attention a boolean (B, 1, T, T) keep-mask, or None
    when nothing is padded; for "eager" additive floats, 0 or the dtype's minimum), so we call it too.
    ``PrefixAttention`` accepts each of these forms and adds its P prefix columns itself.
    """
    from transformers.masking_utils import create_bidirectional_mask

    backbone = model.get_submodule(arch_for(model).backbone)
    return create_bidirectional_mask(config=backbone.config, inputs_embeds=hidden, attention_mask=attention_mask)


def _bert_head(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """BertForSequenceClassification: pooler (dense + tanh on token 0) → dropout → classifier."""
    return model.classifier(model.dropout(model.bert.pooler(hidden)))


def _roberta_head(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """RobertaForSequenceClassification: its classifier reads token 0 itself (dropout → dense → tanh → …)."""
    return model.classifier(hidden)


def _distilbert_head(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """DistilBertForSequenceClassification: token 0 → pre_classifier → ReLU → dropout → classifier."""
    return model.classifier(model.dropout(torch.relu(model.pre_classifier(hidden[:, 0]))))


HEADS = {"bert": _bert_head, "roberta": _roberta_head, "distilbert": _distilbert_head}


@contextlib.contextmanager
def _eval_mode(parts: list[nn.Module]):
    """Put ``parts`` in eval mode (no dropout) for a moment, then give every submodule its own mode back."""
    modes = [(m, m.training) for part in parts for m in part.modules()]
    for part in parts:
        part.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def lower_forward(model: nn.Module, s: int, batch: dict) -> torch.Tensor:
    """The hidden states entering layer ``s`` (B, T, d): embeddings and layers 0 … s-1, eval mode, no grad.

    The batch is moved to the model's device first (wherever it was built)."""
    batch = to_model(model, batch)
    embeddings = model.get_submodule(arch_for(model).embeddings)
    lower = layers_of(model)[:s]
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids") if batch.get(k) is not None}
    with torch.inference_mode(), _eval_mode([embeddings, *lower]):
        hidden = embeddings(**inputs)  # (B, T, d)
        mask = layer_mask(model, hidden, batch.get("attention_mask"))
        for layer in lower:
            hidden = layer(hidden, mask)
    return hidden


def top_forward(model: nn.Module, s: int, hidden: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
    """Layers s … L-1 and the head on cached hidden states (B, T, d): the model's usual output (logits, loss).

    Everything is moved to the model's device (and the hidden states to its dtype) first."""
    device, dtype = model_device(model), model_dtype(model)
    hidden, attention_mask = hidden.to(device, dtype), attention_mask.to(device)
    upper = layers_of(model)[s:]
    mask = layer_mask(model, hidden, attention_mask) if upper else None
    for layer in upper:
        hidden = layer(hidden, mask)
    logits = HEADS[arch_for(model).family](model, hidden)  # (B, num_labels)
    loss = None if labels is None else F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.to(device).view(-1))
    return SequenceClassifierOutput(loss=loss, logits=logits)


# --- the cache ---------------------------------------------------------------------------------------------

class HiddenCache:
    """Token ids and (once computed) the hidden states entering layer ``s`` for every example of a split.

    Hidden states are kept per example, unpadded: a list of (length, d) tensors, None until first used.
    With s = L only the first token is kept: the classifier heads read nothing else.
    """

    def __init__(self, split: Split, tokenizer, max_length: int, s: int, n_layers: int):
        features = tokenize(split.texts, tokenizer, max_length)
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


# --- the object a caller asks for ---------------------------------------------------------------------------

_WORDS = {1: torch.int8, 2: torch.int16}  # an integer type to read each float's bits as (int32 for 4 and 8 bytes)


@torch.no_grad()
def _frozen_checksum(model: nn.Module, s: int) -> tuple:
    """The kinds of module in the embeddings and layers 0 … s-1, and every parameter's name, shape, dtype,
    device and the sum of its bits read as integers (in int64: exact, the same in any order)."""
    parts = [("embeddings", model.get_submodule(arch_for(model).embeddings)),
             *((f"layer{i}", layer) for i, layer in enumerate(layers_of(model)[:s]))]
    named = [(f"{part}.{n}", p) for part, module in parts for n, p in module.named_parameters()]
    words = [p.contiguous().view(_WORDS.get(p.element_size(), torch.int32)) for _, p in named]
    sums = torch.stack([w.sum(dtype=torch.int64).cpu() for w in words]).tolist()
    kinds = tuple(type(m).__name__ for _, module in parts for m in module.modules())
    return kinds + tuple((n, tuple(p.shape), str(p.dtype), str(p.device), sv) for (n, p), sv in zip(named, sums))


def _split_key(split: Split, max_length: int) -> str:
    h = hashlib.sha1(str(max_length).encode())
    for text, label in zip(split.texts, split.labels):
        h.update(f"{label}\x00{text}\x01".encode())
    return h.hexdigest()


class FastPath:
    """The fast path for one model, and the hidden states it has cached so far (see the module docstring).

        fp = ll.fast.FastPath(model)         # nothing is computed yet; print(fp) says what will be cached
        ll.train(model, task, cfg, fast=fp)  # fills the cache for the examples this run uses
        ll.train(model, task, cfg, fast=fp)  # a second run (new lr, more steps) reuses them
        fp.clear()                           # frees the memory (or simply drop fp)

    Before every use it checks that nothing below layer s changed since the cache was filled (a checksum of
    those weights), and starts over if something did.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.s: int | None = None
        self._checksum: tuple | None = None  # (s, checksum of the frozen part) the caches were computed with
        self._caches: dict[tuple, HiddenCache] = {}

    def start(self) -> int:
        """Layer s for the model as it is now (an error saying why when nothing can be cached); drops the
        caches if anything below s changed since they were filled."""
        s = cache_start(self.model)
        if not s:  # None, or 0: layer 0 trains
            raise ValueError(f"the fast path (fast=True) cannot be honoured: {describe(self.model)}. "
                             "Train this model with TrainConfig(fast=False), the plain loop.")
        checksum = (s, _frozen_checksum(self.model, s))
        if checksum != self._checksum:
            self._caches.clear()
            self.s, self._checksum = s, checksum
        return s

    def cache(self, split: Split, tokenizer, max_length: int) -> HiddenCache:
        """The cache of ``split`` (its hidden states entering layer s, filled as they are used)."""
        self.start()
        return self._cache(split, tokenizer, max_length)

    def _cache(self, split: Split, tokenizer, max_length: int) -> HiddenCache:
        max_length = token_budget(self.model, max_length)
        key = (_split_key(split, max_length), id(tokenizer))
        if key not in self._caches:
            self._caches[key] = HiddenCache(split, tokenizer, max_length, self.s, len(layers_of(self.model)))
        return self._caches[key]

    def feed(self, task, eval_split: Split, tokenizer, cfg, device: torch.device, autocast) -> CachedFeed:
        """What ``ll.train`` trains from: batches and evaluations through this cache."""
        self.start()
        train = self._cache(task.train, tokenizer, task.max_length)
        return CachedFeed(self.model, train, self._cache(eval_split, tokenizer, task.max_length), cfg, device,
                          autocast)

    def clear(self) -> None:
        """Forget every cached hidden state (frees the memory)."""
        self._caches.clear()
        self._checksum = None

    @property
    def megabytes(self) -> float:
        """Memory the cached hidden states take."""
        return sum(c.megabytes for c in self._caches.values())

    def __repr__(self) -> str:
        return f"FastPath({describe(self.model)}; {len(self._caches)} splits, {self.megabytes:.1f} MB cached)"


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

    def __init__(self, model: nn.Module, train_cache: HiddenCache, eval_cache: HiddenCache, cfg,
                 device: torch.device, autocast):
        self.model, self.cfg, self.device, self.autocast = model, cfg, device, autocast
        self.train_cache, self.eval_cache, self.s = train_cache, eval_cache, train_cache.s
        self.path = describe(model)  # what History.path records

    def batches(self) -> Iterator[dict]:
        for indices in bucketed(self.train_cache.lengths, self.cfg.batch_size, self.cfg.seed):
            yield self.train_cache.batch(self.model, indices, self.device)

    def loss(self, batch: dict) -> torch.Tensor:
        return top_forward(self.model, self.s, batch["hidden"], batch["attention_mask"], batch["labels"]).loss

    def evaluate(self) -> dict:
        return evaluate_cached(self.model, self.eval_cache, self.device, self.autocast)
