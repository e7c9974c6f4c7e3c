"""Three ways to run the lessons, each for someone.

    quick   the tests (``LESSON_FAST=1``): the real model and data, a handful of steps. The numbers it
            prints mean nothing, so the lessons draw no conclusion from them (``ll.verdict`` says so).
    cpu     a laptop without a GPU (the default there): real numbers in minutes. What a lesson trains live
            uses the fast path (the method in the top layers, the frozen layers below cached once per
            example), fewer steps and a learning rate that suits them; experiments too long for a CPU are
            shown from stored full-mode results, labelled with where and when they were computed.
    full    a GPU (the default where CUDA is available): everything computed live at the papers' settings
            (every layer, the full step budget), nothing loaded.

``LESSON_MODE=quick|cpu|full`` overrides the choice, for example ``LESSON_MODE=full`` on a CPU to recompute
everything (slowly), or ``LESSON_MODE=cpu`` on a GPU to see what a laptop sees.

    STEPS = ll.modes.by_mode(quick=8, cpu=150, full=300)
    ll.verdict("LoRA and adapters tie")      # prints it, or in quick mode that there is no conclusion
"""

from __future__ import annotations

import os
from typing import TypeVar

MODES = ("quick", "cpu", "full")
T = TypeVar("T")

QUICK_NOTE = "quick mode (LESSON_FAST=1, for tests): a few steps on a small subset, so these numbers mean nothing"


def mode() -> str:
    """"quick", "cpu" or "full": ``LESSON_MODE`` if set, else quick with ``LESSON_FAST=1``, else by device."""
    wanted = os.environ.get("LESSON_MODE", "").strip().lower()
    if wanted:
        if wanted not in MODES:
            raise ValueError(f"LESSON_MODE={wanted!r}: choose one of {', '.join(MODES)} (or leave it unset)")
        return wanted
    if os.environ.get("LESSON_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}:
        return "quick"
    from .devices import pick_device

    return "full" if pick_device().type == "cuda" else "cpu"


def by_mode(*, quick: T, cpu: T, full: T) -> T:
    """The value for the mode in use: ``ll.modes.by_mode(quick=8, cpu=150, full=300)``."""
    return {"quick": quick, "cpu": cpu, "full": full}[mode()]


def is_quick() -> bool:
    return mode() == "quick"


def describe() -> str:
    """One line for the top of a notebook: the mode and what it means for the numbers below."""
    return {
        "quick": QUICK_NOTE + ".",
        "cpu": "CPU mode: live training uses the top layers (fast path) and fewer steps; experiments too long "
               "for a CPU show stored full-mode results, labelled. Set LESSON_MODE=full to compute everything.",
        "full": "full mode: everything is computed live, at the papers' settings.",
    }[mode()]


def summary(*points: str) -> None:
    """The end of a notebook: "What you saw", one bullet per point, each with the number measured above.

    In quick mode the numbers come from a few steps, so it says so instead of summing them up."""
    if is_quick():
        print(f"(no summary: {QUICK_NOTE})")
        return
    print("What you saw:\n" + "\n".join(f"  • {p}" for p in points))


def verdict(text: str) -> None:
    """Print a conclusion drawn from measurements; in quick mode print instead that there is none.

    Every sentence in the lessons that *concludes* something (a winner, a drop, a gate's effect) goes
    through here, because quick-mode numbers come from a few steps and support no conclusion.
    """
    print(f"(no conclusion: {QUICK_NOTE})" if is_quick() else text)
