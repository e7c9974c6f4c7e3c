"""The model's device and dtype are the one truth: everything the library builds goes where the model is.

A model lives on one device (the CPU, a CUDA GPU, Apple's mps) in one precision (fp32, fp16, bf16, fp64).
A tensor made by hand lands on the CPU in fp32, so feeding it to a model on a GPU fails with "Expected all
tensors to be on the same device". The lessons therefore never build model inputs by hand:

    batch = ll.batch(model, task.test, n=16)   # 16 examples, tokenised, on the model's device (inputs.py)
    logits = ll.logits(model, batch)           # eval mode, no autocast: fp32 logits, back on the CPU
    seconds = ll.latency(model, batch)         # median time of one forward pass (GPU synchronised)

``ll.logits`` moves the batch to wherever the model is *now*, so a batch made before ``ll.train`` moved the
model still works after. ``pick_device`` chooses where new models go: a CUDA GPU, then mps, then the CPU;
the environment variable ``LESSON_DEVICE`` (for example ``cpu``) overrides the choice.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Mapping

import torch
from torch import nn


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → ``LESSON_DEVICE`` if set, else cuda if available, then Apple's mps, then cpu."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    wanted = os.environ.get("LESSON_DEVICE", "").strip()
    if wanted and wanted != "auto":
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights are (its first parameter's device; the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The precision of ``model``'s floating-point weights (fp32 unless it was converted)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def to_model(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` moved to ``model``'s device (token ids stay integers; float inputs take the model's dtype)."""
    device, dtype = model_device(model), model_dtype(model)
    return {k: v.to(device, dtype if v.is_floating_point() else v.dtype, non_blocking=True) for k, v in batch.items()}


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA (bf16 where supported, else fp16): faster, a little less exact. Elsewhere, or
    with ``enabled=False``, nothing changes: fp32 stays fp32."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.inference_mode()
def logits(model: nn.Module, batch: Mapping[str, torch.Tensor], amp: bool = False) -> torch.Tensor:
    """The model's logits for ``batch`` (moved to the model's device), in eval mode, as fp32 on the CPU.

    ``amp=False`` (default) runs without mixed precision, so two computations that should agree ("merged
    equals unmerged", "folded equals unfolded") can be compared to fp32 rounding (about 1e-6) on any device.
    The model is put back in the mode (train or eval) it was in.
    """
    was_training = model.training
    model.eval()
    try:
        inputs = {k: v for k, v in to_model(model, batch).items() if k != "labels"}
        with autocast(model_device(model), amp):
            return model(**inputs).logits.float().cpu()
    finally:
        model.train(was_training)


@contextlib.contextmanager
def threads(n: int | None):
    """Run a block with ``n`` CPU threads (None: leave torch's setting), then put the old setting back.

    ``with threads(1): ...`` — one thread is often fastest on a small or busy machine."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def latency(model: nn.Module, batch: Mapping[str, torch.Tensor], repeats: int = 20, warmup: int = 2,
            amp: bool = False) -> float:
    """Median seconds of one forward pass of ``batch`` through ``model`` (eval mode, on the model's device).

    On a GPU the clock waits for the GPU to finish (``torch.cuda.synchronize``), otherwise it would time
    only the launch of the work.
    """
    was_training = model.training
    model.eval()
    inputs = {k: v for k, v in to_model(model, batch).items() if k != "labels"}
    device, times = model_device(model), []
    try:
        with autocast(device, amp):
            for i in range(warmup + repeats):
                _sync(device)
                start = time.perf_counter()
                model(**inputs)
                _sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return statistics.median(times)
