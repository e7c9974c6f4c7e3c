"""Benchmarks anyone can run: ``python -m benchmarks.<name>`` (add ``--quick`` for a seconds-long smoke run).

    step_time          seconds per training step: our LoRA vs PEFT's, adapters, prefix, prompt, full, fast path
    merged_inference   inference latency: base vs merged LoRA vs unmerged LoRA
    time_to_accuracy   seconds to a target test accuracy: the plain loop vs the fast path, same process
    interactive        slider updates (parameter count, SVD) and the cost of a live-curve update
    methods, sweep     every method on both tasks; each method over its size knob (experiments.compare and
                       experiments.size_sweep, the same definitions `python -m lesson_lib precompute` stores)
    cpu_mode           what CPU mode trains live, beside the stored full-mode result (target: within 2 points)
    notebooks          every notebook top to bottom in CPU mode (or full mode on a GPU), seconds per cell

``python -m benchmarks`` runs them all but ``notebooks``. Each prints a markdown table and writes
``benchmarks/results/<name>.json`` and ``.md`` with the machine it ran on.
"""
