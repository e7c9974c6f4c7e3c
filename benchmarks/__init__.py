"""Benchmarks anyone can run: ``python -m benchmarks.<name>`` (add ``--quick`` for a seconds-long smoke run).

    step_time          seconds per training step: our LoRA vs PEFT's, adapters, prefix, prompt, full, fast path
    merged_inference   inference latency: base vs merged LoRA vs unmerged LoRA
    time_to_accuracy   seconds to a target test accuracy: the plain loop vs the fast path, same process
    interactive        slider updates (parameter count, SVD) and the cost of a live-curve update

``python -m benchmarks`` runs them all. Each prints a markdown table and writes
``benchmarks/results/<name>.json`` and ``.md`` with the machine it ran on.
"""
