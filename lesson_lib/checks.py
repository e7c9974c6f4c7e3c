"""Exercise checkers: each takes the student's code, runs it on small random inputs and prints

    ✅ what works,   ❌ what is wrong and what to change,   ⏳ "not implemented yet"

so a notebook always runs top to bottom, even with unfinished exercises. ``strict=True`` (used by the
solution notebooks, or ``LESSON_STRICT=1``) turns ❌ and ⏳ into an AssertionError.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class CheckResult:
    name: str
    status: str  # "pass", "fail" or "todo"
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        icon = {"pass": "✅", "fail": "❌", "todo": "⏳"}[self.status]
        return f"{icon} {self.name}: {self.message}"


class _Fail(Exception):
    """Raised inside a check with the message a student should read."""


def _run(name: str, check, strict: bool | None) -> CheckResult:
    strict = os.environ.get("LESSON_STRICT") == "1" if strict is None else strict
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            message = check()
        result = CheckResult(name, "pass", message)
    except NotImplementedError:
        result = CheckResult(name, "todo", "not implemented yet — fill in the # TODO lines, then run this cell again")
    except _Fail as err:
        result = CheckResult(name, "fail", str(err))
    except Exception as err:  # the student's code crashed: show the error, do not stop the notebook
        result = CheckResult(name, "fail", f"your code raised {type(err).__name__}: {err}")
    print(result)
    if strict and not result.passed:
        raise AssertionError(str(result))
    return result


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=atol)


# --- LoRA -------------------------------------------------------------------------------------------

def check_lora_layer(cls, strict: bool | None = None) -> CheckResult:
    """``cls(base, r, alpha)`` with ``lora_A`` (r × in), ``lora_B`` (out × r); forward = W x + (α/r) B A x."""
    def check() -> str:
        base = nn.Linear(16, 12)
        layer = cls(base, r=4, alpha=8)
        A, B = getattr(layer, "lora_A", None), getattr(layer, "lora_B", None)
        if not isinstance(A, nn.Parameter) or not isinstance(B, nn.Parameter):
            raise _Fail("lora_A and lora_B must be nn.Parameter attributes")
        if A.shape != (4, 16) or B.shape != (12, 4):
            raise _Fail(f"shapes: A must be (r, in) = (4, 16) and B (out, r) = (12, 4); got {tuple(A.shape)}, "
                        f"{tuple(B.shape)}")
        if base.weight.requires_grad:
            raise _Fail("the base weight W must be frozen: base.weight.requires_grad_(False)")
        if B.abs().max() > 0:
            raise _Fail("B must start at zero, so that ΔW = B·A = 0 and the layer equals the base at init")
        if A.abs().max() == 0:
            raise _Fail("A must start random (e.g. nn.init.kaiming_uniform_), or B·A stays zero forever")
        x = torch.randn(3, 5, 16)
        if not _close(layer(x), base(x)):
            raise _Fail("at init the output must equal base(x) exactly")
        with torch.no_grad():
            B.normal_()
        expected = base(x) + (8 / 4) * x @ A.T @ B.T
        out = layer(x)
        if _close(out, base(x) + 8 * x @ A.T @ B.T):
            raise _Fail("the update is scaled by α; LoRA scales it by α / r")
        if _close(out, base(x) + x @ A.T @ B.T):
            raise _Fail("the update is not scaled: multiply B·A·x by α / r")
        if not _close(out, expected, atol=1e-4):
            raise _Fail("forward must return W x + b + (α / r) · B (A x)")
        out.sum().backward()
        if A.grad is None or B.grad is None:
            raise _Fail("no gradient reached A or B: do not detach them in forward")
        return "frozen W, zero-initialised B, scaling α / r, gradients flow to A and B"

    return _run("LoRA layer", check, strict)


def check_merge(fn, strict: bool | None = None) -> CheckResult:
    """``fn(W, A, B, alpha, r) -> W'`` = W + (α / r) · B @ A (folding the update into the weight)."""
    def check() -> str:
        W, A, B = torch.randn(12, 16), torch.randn(4, 16), torch.randn(12, 4)
        W_before = W.clone()
        out = fn(W, A, B, 8.0, 4)
        if not torch.equal(W, W_before):
            raise _Fail("do not change W in place; return a new matrix")
        if out.shape != W.shape:
            raise _Fail(f"the merged weight must have W's shape {tuple(W.shape)}, got {tuple(out.shape)}")
        if _close(out, W + 8.0 * B @ A):
            raise _Fail("scaled by α; the update is (α / r) · B @ A")
        if not _close(out, W + 2.0 * B @ A, atol=1e-4):
            raise _Fail("expected W + (α / r) · B @ A (B is out × r, A is r × in)")
        return "W + (α / r)·B·A — one matrix again, so inference costs nothing extra"

    return _run("merge", check, strict)


# --- adapters ---------------------------------------------------------------------------------------

def check_adapter(cls, strict: bool | None = None) -> CheckResult:
    """``cls(d, bottleneck)`` with ``down`` (d → m) and ``up`` (m → d); forward(h) = h + up(act(down(h)))."""
    def check() -> str:
        adapter = cls(24, 6)
        down, up = getattr(adapter, "down", None), getattr(adapter, "up", None)
        if not isinstance(down, nn.Linear) or not isinstance(up, nn.Linear):
            raise _Fail("the adapter needs two nn.Linear layers named down (d → m) and up (m → d)")
        if (down.in_features, down.out_features, up.in_features, up.out_features) != (24, 6, 6, 24):
            raise _Fail("down must map d → m and up must map m → d (a bottleneck of width m)")
        h = torch.randn(2, 5, 24)
        if adapter(h).abs().max() < 1e-1:
            raise _Fail("the output is ~0 at init: the residual is missing — return h + up(act(down(h)))")
        if (adapter(h) - h).abs().max() > 1e-1:
            raise _Fail("at init the adapter must be (near) the identity: start up at zero (or tiny, std 1e-2)")
        with torch.no_grad():
            up.weight.normal_()
            up.bias.normal_()
        out = adapter(h)
        if out.shape != h.shape:
            raise _Fail(f"the output must have the input's shape {tuple(h.shape)}")
        branch = out - h
        if _close(out, up(F.gelu(down(h))), 1e-4) or _close(out, up(F.relu(down(h))), 1e-4):
            raise _Fail("the residual is missing: return h + up(act(down(h)))")
        if _close(branch, up(down(h)), 1e-4):
            raise _Fail("no nonlinearity between down and up: two linear maps collapse into one")
        return f"bottleneck 24 → 6 → 24 with residual, {sum(p.numel() for p in adapter.parameters())} parameters"

    return _run("bottleneck adapter", check, strict)


def check_adapter_count(fn, strict: bool | None = None) -> CheckResult:
    """``fn(d, m, n_layers, placement)`` → trainable parameters of all adapters (weights and biases)."""
    def check() -> str:
        for d, m, n, placement in ((384, 64, 6, "houlsby"), (768, 8, 12, "pfeiffer")):
            per = 2 * d * m + d + m
            want = n * per * (2 if placement == "houlsby" else 1)
            got = fn(d, m, n, placement)
            if got == n * 2 * d * m * (2 if placement == "houlsby" else 1):
                raise _Fail("you forgot the biases: down has m of them, up has d")
            if placement == "houlsby" and got == n * per:
                raise _Fail("Houlsby places TWO adapters per layer (after attention and after the feed-forward)")
            if got != want:
                raise _Fail(f"for d={d}, m={m}, {n} layers, {placement}: expected {want:,}, got {got:,}")
        return "2·d·m + d + m per adapter, two per layer (Houlsby) or one (Pfeiffer)"

    return _run("adapter parameter count", check, strict)


# --- prefix tuning ----------------------------------------------------------------------------------

def reference_prefix_attention(q, k, v, prefix_k, prefix_v, mask):
    """q, k, v: (B, H, T, dh); prefix_k/v: (H, P, dh); mask: (B, T) of 1 (token) / 0 (padding)."""
    b = q.shape[0]
    k = torch.cat([prefix_k.expand(b, -1, -1, -1), k], dim=2)  # (B, H, P + T, dh)
    v = torch.cat([prefix_v.expand(b, -1, -1, -1), v], dim=2)
    keep = torch.cat([mask.new_ones(b, prefix_k.shape[1]), mask], dim=1)  # (B, P + T)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, H, T, P + T)
    scores = scores.masked_fill(keep[:, None, None, :] == 0, float("-inf"))
    return scores.softmax(-1) @ v  # (B, H, T, dh)


def check_prefix_attention(fn, strict: bool | None = None) -> CheckResult:
    """``fn(q, k, v, prefix_k, prefix_v, mask)`` → (B, H, T, dh): attention over [prefix ; real] keys."""
    def check() -> str:
        B, H, T, dh, P = 2, 3, 5, 4, 2
        q, k, v = (torch.randn(B, H, T, dh) for _ in range(3))
        pk, pv = torch.randn(H, P, dh), torch.randn(H, P, dh)
        mask = torch.ones(B, T, dtype=torch.long)
        mask[1, -2:] = 0
        out = fn(q, k, v, pk, pv, mask)
        if out.shape[2] == P + T:
            raise _Fail("the output has P + T positions: the prefix only adds keys and values, it must not "
                        "become extra tokens (that would shift the real tokens' positions)")
        if out.shape != (B, H, T, dh):
            raise _Fail(f"expected shape (B, H, T, dh) = {(B, H, T, dh)}, got {tuple(out.shape)}")
        want = reference_prefix_attention(q, k, v, pk, pv, mask)
        if _close(out, reference_prefix_attention(q, k, v, pk[:, :0], pv[:, :0], mask), 1e-4):
            raise _Fail("the prefix has no effect: real tokens must see it — extend the mask with 1s "
                        "(visible) for the P prefix positions")
        no_mask = reference_prefix_attention(q, k, v, pk, pv, torch.ones_like(mask))
        if _close(out, no_mask, 1e-4):
            raise _Fail("padding tokens still receive attention: the mask was not applied to the real keys")
        if not _close(out, want, 1e-4):
            raise _Fail("values differ from softmax(q [P_K; K]ᵀ / √d_head + mask) [P_V; V]; check the order "
                        "(prefix first), the 1/√d_head scaling and the mask extension")
        return "real tokens attend to P prefix keys/values; no new positions; padding stays masked"

    return _run("prefix attention", check, strict)


def check_extend_mask(fn, strict: bool | None = None) -> CheckResult:
    """``fn(mask (B, T), P)`` → (B, P + T): P visible (1) prefix columns in front of the real mask."""
    def check() -> str:
        mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
        out = fn(mask, 3)
        if tuple(out.shape) == tuple(mask.shape):
            raise _Fail("the mask was not extended: it needs P more columns for the prefix keys")
        if tuple(out.shape) != (2, 7):
            raise _Fail(f"expected shape (B, P + T) = (2, 7), got {tuple(out.shape)}")
        if (out[:, :3] != 1).any():
            if (out[:, -3:] == 1).all():
                raise _Fail("the prefix columns go in FRONT (the prefix keys come first)")
            raise _Fail("the prefix columns must be 1 (visible): every real token may attend to the prefix")
        if not torch.equal(out[:, 3:].to(mask.dtype), mask):
            raise _Fail("the real tokens' part of the mask must stay exactly as it was")
        return "P visible prefix columns in front; padding still masked"

    return _run("extend mask", check, strict)


# --- counting and judging --------------------------------------------------------------------------------

def check_lora_count(fn, strict: bool | None = None) -> CheckResult:
    """``fn(d_model, r, n_layers, n_matrices)`` → LoRA's trainable parameters (square d × d matrices)."""
    def check() -> str:
        cases = {(12_288, 1, 96, 2): 4_718_592, (384, 8, 6, 2): 73_728, (1024, 4, 24, 4): 786_432}
        for args, want in cases.items():
            got = fn(*args)
            if got == want:
                continue
            d, r, n_layers, n_matrices = args
            if got == want // 2:
                raise _Fail(f"{got:,} for {args} is half the answer: each matrix gets two factors, A (r × d) and "
                            "B (d × r)")
            if got == want // n_layers:
                raise _Fail(f"{got:,} for {args}: that is one layer; every layer has its own matrices")
            if got == n_layers * n_matrices * d * d:
                raise _Fail(f"{got:,} for {args} is the size of the full matrices: LoRA trains B·A, not W")
            raise _Fail(f"for d = {d}, r = {r}, {n_layers} layers, {n_matrices} matrices per layer: expected "
                        f"{want:,}, got {got:,}")
        return "2 · d · r per matrix, times matrices per layer, times layers (GPT-3, r = 1 on q and v: 4,718,592)"

    return _run("LoRA parameter count", check, strict)


def check_verdict(fn, strict: bool | None = None) -> CheckResult:
    """``fn(a, b)`` (two lists of accuracies, one per seed) → "a", "b" or "tie", as ``metrics.seed_verdict``."""
    def check() -> str:
        cases = [([0.80, 0.82, 0.81], [0.75, 0.76, 0.74], "a", "a clear gap, larger than both spreads"),
                 ([0.70, 0.71], [0.80, 0.79], "b", "b better by far more than the spreads"),
                 ([0.88, 0.86, 0.90], [0.87, 0.85, 0.86], "tie", "means 0.880 and 0.860: a gap of 0.020, and "
                  "seed alone moved a by 0.04"),
                 ([0.89], [0.85], "tie", "one seed each: no spread to compare with, so no winner"),
                 ([0.90, 0.70], [0.80, 0.81], "tie", "a's seeds range over 0.20")]
        for a, b, want, why in cases:
            got = fn(a, b)
            if got != want:
                raise _Fail(f"verdict({a}, {b}) should be {want!r} ({why}), got {got!r}")
        return "a winner only when the gap between the means is larger than the seeds' spread"

    return _run("verdict over seeds", check, strict)


def check_bradley_terry(fn, strict: bool | None = None) -> CheckResult:
    """``fn(chosen, rejected)`` (rewards of the preferred and the rejected texts) → −log σ(r⁺ − r⁻), averaged."""
    def check() -> str:
        g = torch.Generator().manual_seed(0)
        chosen, rejected = torch.randn(16, generator=g), torch.randn(16, generator=g)
        want = -F.logsigmoid(chosen - rejected).mean()
        got = fn(chosen, rejected)
        if not isinstance(got, torch.Tensor):
            raise _Fail(f"return a tensor (the loss to call .backward() on), got {type(got).__name__}")
        if got.dim() != 0:
            raise _Fail(f"the loss should be one number, got shape {tuple(got.shape)}: average over the pairs")
        if _close(got, -F.logsigmoid(rejected - chosen).mean()):
            raise _Fail("the sign is flipped: this loss is small when the REJECTED text scores higher")
        if _close(got, -F.logsigmoid(chosen - rejected).sum()):
            raise _Fail("summed over the pairs: take the mean, so the step size does not grow with the batch")
        if _close(got, (1 - torch.sigmoid(chosen - rejected)).mean()):
            raise _Fail("1 − σ(r⁺ − r⁻) is the probability of the wrong order; the loss is its −log of σ")
        if _close(got, -torch.log(torch.sigmoid(chosen)).mean() - torch.log(1 - torch.sigmoid(rejected)).mean()):
            raise _Fail("that scores each text on its own (a classifier); Bradley–Terry compares the two: "
                        "σ(r⁺ − r⁻)")
        if not _close(got, want):
            raise _Fail(f"got {float(got):.4f}, expected {float(want):.4f} = mean of −log σ(r⁺ − r⁻)")
        same = fn(torch.zeros(4), torch.zeros(4))
        if not _close(same, torch.tensor(math.log(2))):
            raise _Fail(f"when the two rewards are equal the loss should be log 2 = 0.693, got {float(same):.4f}")
        chosen.requires_grad_(True)
        fn(chosen, rejected).backward()
        if chosen.grad is None or not (chosen.grad <= 0).all():
            raise _Fail("the gradient should push every preferred reward up (compute it with torch operations)")
        return ("−log σ(r⁺ − r⁻), averaged: log 2 when the two scores are equal, near 0 when the preferred text "
                "scores far higher")

    return _run("Bradley–Terry loss", check, strict)


def check_hide_held_out(fn, strict: bool | None = None) -> CheckResult:
    """``fn(texts, labels, label_names, held_out)`` → (texts, labels) with no text of a held-out class left."""
    def check() -> str:
        names = ["business", "entertainment", "politics", "sports", "tech"]
        labels = [i % 5 for i in range(50)]
        texts = [f"{names[y]} article {i}" for i, y in enumerate(labels)]
        got = fn(list(texts), list(labels), list(names), ["sports", "tech"])
        if not (isinstance(got, tuple) and len(got) == 2):
            raise _Fail("return two lists: (texts, labels)")
        kept_texts, kept_labels = list(got[0]), list(got[1])
        if len(kept_texts) != len(kept_labels):
            raise _Fail(f"{len(kept_texts)} texts but {len(kept_labels)} labels: keep them in step")
        left = sorted({names[y] for y in kept_labels} & {"sports", "tech"})
        if left:
            raise _Fail(f"texts of {', '.join(left)} are still there: a held-out class's texts must not appear in "
                        "training at all, not even as a 'no' answer to another question")
        if len(kept_texts) != 30:
            raise _Fail(f"kept {len(kept_texts)} of the 30 texts of the other three classes: drop only the "
                        "held-out ones")
        if any(not t.startswith(names[y]) for t, y in zip(kept_texts, kept_labels)):
            raise _Fail("a text and its label no longer match: filter the pairs together")
        if fn(list(texts), list(labels), list(names), [])[0] != texts:
            raise _Fail("with nothing held out, every text should stay, in its order")
        return "only the classes the model may see in training are left"

    return _run("held-out classes kept out", check, strict)


# --- predict, then run -----------------------------------------------------------------------------------

def reveal(guess, measured, what: str, why: str = "", close: float = 0.1) -> str:
    """Print the student's guess beside the measured answer (a predict-then-run question), and return the verdict.

    Numbers: "right" within ``close`` (relative), else how far off and in which direction. Choices ("a", "b", …):
    right or wrong. No guess (None): the answer is shown anyway, with a nudge to guess first next time. In quick
    mode the explanation is replaced by a note that the measurement means nothing.
    """
    shown = f"{measured:,}" if isinstance(measured, int) else (f"{measured:.4g}" if isinstance(measured, float)
                                                               else str(measured))
    if guess is None or guess is Ellipsis:
        verdict = "no guess"
        line = f"📏 {what}: {shown} (you did not write a guess: guessing first is what makes it stick)"
    elif isinstance(measured, (int, float)) and isinstance(guess, (int, float)) and not isinstance(guess, bool):
        ratio = guess / measured if measured else float("inf") if guess else 1.0
        verdict = "right" if abs(ratio - 1) <= close else ("too high" if ratio > 1 else "too low")
        detail = "" if verdict == "right" else f" (your guess is {ratio:.2g}× the answer)"
        icon = "✅" if verdict == "right" else "🤔"
        line = f"{icon} {what}: measured {shown}; you guessed {guess:,}: {verdict}{detail}"
    else:
        verdict = "right" if str(guess).strip().lower() == str(measured).strip().lower() else "wrong"
        line = (f"{'✅' if verdict == 'right' else '🤔'} {what}: the answer is {shown}; you guessed {guess}"
                f"{'' if verdict == 'right' else ' — not quite'}")
    from .modes import QUICK_NOTE, is_quick

    if is_quick():  # the measurement comes from a few steps: show it, but explain nothing with it
        why = f"(quick mode: {QUICK_NOTE})"
    print(line + (f"\n   Why: {why}" if why else ""))
    return verdict
