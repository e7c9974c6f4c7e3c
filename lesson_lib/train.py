"""One short training loop that reports through callbacks and never prints or plots.

``train(model, task, TrainConfig(...), callbacks)`` runs ``cfg.steps`` optimizer steps of AdamW on
the parameters that have ``requires_grad`` (so the same loop trains a head, LoRA, adapters or the
whole model), evaluates on a small fixed validation subset every ``cfg.eval_every`` steps, and hands
progress to callbacks: ``on_step(step, loss, history)``, ``on_eval(step, metrics, history)``,
``on_end(history)``. A callback (a Stop button, say) ends training cleanly with
``history.request_stop()``; so does Ctrl-C. Either way the model stays usable and the history so
far comes back.

Where the batches come from is a "feed": ``PlainFeed`` (tokenised batches, the whole model's forward),
or, when the caller asks for the fast path, ``fast.CachedFeed`` (the frozen lower layers run once per
example and cached; see ``lesson_lib/fast.py``). Asking is ``TrainConfig(fast=True)`` (a new cache for this
call) or ``train(..., fast=fp)`` with a ``fast.FastPath(model)`` you keep (reused by the next call).
``threads(n)`` runs a block with n CPU threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import TrainConfig
from .data import Split, Task, make_loader
from .devices import autocast as _autocast
from .devices import model_device, pick_device, threads, to_model
from .fast import FastPath
from .lora import LoRALinear
from .models import token_budget, tokenizer_for


@dataclass
class History:
    """What happened during ``train``: per-step losses, evaluations, time, and why it stopped."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = "running"
    device: str = "cpu"
    path: str = "plain"  # "plain", or what the fast path cached (see lesson_lib.fast.describe)
    source: str = "trained now"  # or "stored (file)" when lecture.train_or_load loaded a stored run
    _stop: bool = False

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (used by Stop buttons and callbacks)."""
        self._stop = True

    @property
    def final(self) -> dict | None:
        """The last evaluation, or None if there was none."""
        return self.evals[-1] if self.evals else None


def _check_labels(model: nn.Module, task: Task) -> None:
    n = getattr(model.config, "num_labels", None)
    if n != task.num_labels:
        raise ValueError(
            f"the model has a {n}-way head but task {task.name!r} has {task.num_labels} labels; "
            f"load the model with ll.load_base(num_labels={task.num_labels})"
        )


def _check_trainable_as_is(model: nn.Module, task: Task, cfg: TrainConfig) -> None:
    """Refuse, before anything changes, what would train nothing or fail later with a puzzling message."""
    if any(isinstance(m, LoRALinear) and m.merged for m in model.modules()):
        raise ValueError("this model's LoRA updates are merged into its weights, so training A and B would change "
                         "nothing the model computes; call ll.unmerge(model) first (and ll.merge again afterwards)")
    if cfg.eval_limit is not None and cfg.eval_limit < task.num_labels:
        n = task.num_labels
        raise ValueError(f"TrainConfig(eval_limit={cfg.eval_limit}) is smaller than the {n} classes of task "
                         f"{task.name!r}: evaluate at least one example per class (eval_limit ≥ {n}), or None for "
                         "the whole validation split")


def _batches(loader):
    """Cycle through a loader forever (a new shuffle each epoch)."""
    while True:
        yield from loader


class TqdmProgress:
    """Default callback: a ``tqdm.auto`` progress bar with the running loss and last accuracy."""

    def __init__(self, total: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="training", leave=False)

    def on_step(self, step: int, loss: float, history: History) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def on_eval(self, step: int, metrics: dict, history: History) -> None:
        self.bar.set_postfix(loss=f"{history.losses[-1]:.3f}", acc=f"{metrics['accuracy']:.3f}")

    def on_end(self, history: History) -> None:
        self.bar.close()


def _emit(callbacks, name: str, *args) -> None:
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimizer will see; an error if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no parameter of this model requires grad: nothing to train")
    return params


def parameter_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: one at ``cfg.lr``, plus one per method in ``cfg.lr_by_method``."""
    params = trainable_parameters(model)
    if not cfg.lr_by_method:
        return [{"params": params}]
    from .owners import classify_parameters

    owner = classify_parameters(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    unknown = set(cfg.lr_by_method) - {owner[n] for n, _ in named}
    if unknown:
        owners = sorted({owner[n] for n, _ in named})
        raise ValueError(f"lr_by_method names {sorted(unknown)}, but no trainable parameter of this model belongs to "
                         f"{'it' if len(unknown) == 1 else 'them'}; trainable owners: {owners}")
    groups = [{"params": [p for n, p in named if owner[n] not in cfg.lr_by_method]}]
    groups += [{"params": [p for n, p in named if owner[n] == m], "lr": lr} for m, lr in cfg.lr_by_method.items()]
    return [g for g in groups if g["params"]]


class PlainFeed:
    """The plain data path: shuffled, dynamically padded batches and the whole model's forward."""

    path = "plain"  # what History.path records

    def __init__(self, model: nn.Module, task: Task, eval_split: Split, tok, cfg: TrainConfig, device):
        self.model, self.eval_split, self.tok, self.device = model, eval_split, tok, device
        self.max_length = token_budget(model, task.max_length)
        self.loader = make_loader(task.train, tok, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                  max_length=self.max_length)

    def batches(self):
        for batch in _batches(self.loader):
            yield to_model(self.model, batch)

    def loss(self, batch: dict) -> torch.Tensor:
        return self.model(**batch).loss

    def evaluate(self) -> dict:
        return evaluate(self.model, self.eval_split, tokenizer=self.tok, max_length=self.max_length)


def _feed(model: nn.Module, task: Task, eval_split: Split, tok, cfg: TrainConfig, device,
          fast: FastPath | None):
    """The fast path when the caller asked for it (``fast=`` or ``cfg.fast``), else the plain one."""
    if fast is None and not cfg.fast:
        return PlainFeed(model, task, eval_split, tok, cfg, device)
    if fast is None:  # TrainConfig(fast=True): a cache for this call alone
        fast = FastPath(model)
    elif fast.model is not model:
        raise ValueError("this FastPath was made for another model; make one with ll.fast.FastPath(model)")
    return fast.feed(task, eval_split, tok, cfg, device, autocast=lambda: _autocast(device, cfg.amp))


def train(model: nn.Module, task: Task, cfg: TrainConfig | None = None, callbacks=(), tokenizer=None,
          fast: FastPath | None = None) -> History:
    """Train the trainable parameters of ``model`` on ``task.train``; see the module docstring.

    ``fast``: a ``fast.FastPath(model)`` to train through (and keep filling) that cache; None: the fast path
    only if ``cfg.fast`` asks for it, with a cache for this call alone."""
    cfg = cfg or TrainConfig()
    _check_labels(model, task)
    _check_trainable_as_is(model, task, cfg)
    tok = tokenizer or tokenizer_for(model)
    if cfg.device is not None:  # asked for a device: move the model there; otherwise train where it is
        model.to(pick_device(cfg.device))
    device = model_device(model)
    opt = torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported())
    eval_split = task.val.subset(cfg.eval_limit, seed=cfg.seed) if cfg.eval_limit else task.val
    feed = _feed(model, task, eval_split, tok, cfg, device, fast)
    callbacks = list(callbacks) + ([TqdmProgress(cfg.steps)] if cfg.progress else [])
    history = History(device=str(device), path=feed.path)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    with threads(cfg.threads):
        try:
            _loop(model, opt, sched, scaler, feed, cfg, device, callbacks, history, start)
        except KeyboardInterrupt:
            history.stopped = "interrupted"
        finally:
            opt.zero_grad(set_to_none=True)
            model.eval()
            history.seconds = time.perf_counter() - start
            _emit(callbacks, "on_end", history)
    return history


def lr_factor(cfg: TrainConfig):
    """The learning rate at optimizer step t (t = 0, 1, …) is ``cfg.lr × factor(t)``.

    "linear": warm up over the first tenth of the steps (at least one), then fall linearly; the last step
    still moves (factor 1 / (steps − warm-up + 1)). "constant": 1 throughout.
    """
    if cfg.schedule == "constant":
        return lambda t: 1.0
    warm = max(1, round(0.1 * cfg.steps))
    return lambda t: (t + 1) / warm if t + 1 <= warm else (cfg.steps - t) / (cfg.steps - warm + 1)


def _loop(model, opt, sched, scaler, feed, cfg, device, callbacks, history, start) -> None:
    model.train()
    batches = feed.batches()
    for step in range(1, cfg.steps + 1):
        batch = next(batches)
        with _autocast(device, cfg.amp):
            loss = feed.loss(batch)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        history.steps.append(step)
        history.losses.append(float(loss.detach()))
        _emit(callbacks, "on_step", step, history.losses[-1], history)
        last = step == cfg.steps or history._stop or _over_budget(cfg, start)
        if (cfg.eval_every and step % cfg.eval_every == 0) or last:
            metrics = feed.evaluate()
            history.evals.append({"step": step, "seconds": time.perf_counter() - start, **metrics})
            _emit(callbacks, "on_eval", step, metrics, history)
            model.train()
        if last:
            history.stopped = "stopped" if history._stop else ("time_budget" if step < cfg.steps else "done")
            return


def _over_budget(cfg: TrainConfig, start: float) -> bool:
    return cfg.time_budget is not None and time.perf_counter() - start >= cfg.time_budget


def _slow_progress(items, desc: str):
    """A progress bar that appears only if the loop is still running after a few seconds."""
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False, delay=3)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, limit: int | None = None, tokenizer=None,
             max_length: int | None = None, batch_size: int = 64, amp: bool = True) -> dict:
    """Accuracy and mean cross-entropy loss of ``model`` on ``split`` (optionally a balanced subset).

    Examples are sorted by length before batching (less padding, same result), and the model is put
    back in the mode it was in. On a GPU the forward pass runs in mixed precision (``amp=True``, faster);
    ``amp=False`` keeps fp32, for comparisons that must agree exactly (merged vs unmerged, folded vs not).
    """
    if limit is not None:
        split = split.subset(limit, seed=0)
    tok = tokenizer or tokenizer_for(model)
    device = model_device(model)
    was_training = model.training
    model.eval()
    loader = make_loader(split, tok, batch_size, shuffle=False,
                         max_length=token_budget(model, max_length or split.max_length), sort_by_length=True)
    correct, loss_sum, n = 0, 0.0, 0
    for batch in _slow_progress(loader, "evaluating"):
        batch = to_model(model, batch)
        with _autocast(device, amp):
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        loss_sum += float(nn.functional.cross_entropy(logits, batch["labels"], reduction="sum"))
        correct += int((logits.argmax(-1) == batch["labels"]).sum())
        n += len(batch["labels"])
    model.train(was_training)
    return {"accuracy": correct / n, "loss": loss_sum / n, "n": n}


@torch.inference_mode()
def predict(model: nn.Module, texts: list[str], tokenizer=None, max_length: int = 128) -> torch.Tensor:
    """Class probabilities for raw ``texts`` (a list of strings), shape (len(texts), num_labels)."""
    if isinstance(texts, str) or not texts:
        raise ValueError("predict needs a non-empty list of texts, e.g. ['what a great film']")
    tok = tokenizer or tokenizer_for(model)
    was_training = model.training
    model.eval()
    enc = tok(list(texts), padding=True, truncation=True, max_length=token_budget(model, max_length),
              return_tensors="pt")
    probs = model(**to_model(model, dict(enc))).logits.float().softmax(-1).cpu()
    model.train(was_training)
    return probs
