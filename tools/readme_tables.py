"""The measured tables of README.md and docs/lecturer.md, made from the stored results and the benchmark results
(never typed by hand).

    python tools/readme_tables.py          # rewrite every <!-- table:NAME --> … <!-- /table:NAME --> block
    python tools/readme_tables.py --check  # exit 1 if a file differs from what the results say

``tests/test_setup.py`` runs the check, so neither file can drift from the numbers behind it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FILES = (README, ROOT / "docs" / "lecturer.md")
STORED = ROOT / "lesson_lib" / "stored"
RESULTS = ROOT / "benchmarks" / "results"
NAMES = {"head": "head only", "prompt": "prompt tuning, P = 10", "lora": "LoRA r = 8 on query, value",
         "adapter": "adapters m = 64 (Houlsby)", "prefix": "prefix tuning, P = 10 (MLP)",
         "unipelt": "UniPELT (LoRA + adapters + prefix, learned gates)", "full": "full fine-tuning"}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def _provenance(record: dict) -> str:
    from lesson_lib.results import seeds_text

    p = record["provenance"]
    return (f"{p['device']}, torch {p['torch']}, {p['date'][:10]}, {p['seconds'] / 60:.0f} min, {seeds_text(p)}, "
            f"`{p['command']}`")


def _groups(record: dict, *keys: str) -> dict:
    from lesson_lib.results import group_rows

    return group_rows(record["result"]["rows"], *keys)


def _seeds(record: dict) -> int:
    return len(record["provenance"].get("seeds") or [0])


def _verdict(groups: dict[str, list[dict]], what: str) -> str:
    """One sentence: which method has the highest mean, whom it beats and whom it ties with over the seeds."""
    from lesson_lib.metrics import against_best

    best, beaten, tied = against_best({m: [r["accuracy"] for r in runs] for m, runs in groups.items()})
    seeds = min(len(runs) for runs in groups.values())
    if seeds < 2:
        return f"{what}: one seed, so no winner can be named (a gap of a point or two is within noise)."
    return (f"{what} ({seeds} seeds): the highest mean is {NAMES.get(best, best)}. It beats "
            f"{'; '.join(NAMES.get(m, m) for m in beaten) or 'no other method'}. It ties with "
            f"{'; '.join(NAMES.get(m, m) for m in tied) or 'none'}.")


def _mean_range(values: list[float]) -> str:
    """One value: itself; several (one per seed): the mean and the range."""
    if len(values) == 1:
        return _pct(values[0])
    return f"{_pct(sum(values) / len(values))} ({100 * min(values):.1f}–{100 * max(values):.1f})"


def _acc(runs: list[dict]) -> str:
    """The runs' test accuracy: one run's, or the mean and range over seeds."""
    return _mean_range([r["accuracy"] for r in runs])


def compare() -> str:
    from lesson_lib.plots import stored_params

    tweets, bbc = _load(STORED / "compare_tweets.json"), _load(STORED / "compare_bbc.json")
    if tweets is None or bbc is None:
        return "_Not computed yet: `python -m lesson_lib precompute compare_tweets compare_bbc`._"
    t, b = _groups(tweets, "method"), _groups(bbc, "method")
    seeds_t, seeds_b = _seeds(tweets), _seeds(bbc)
    rows = [f"| method | trainable parameters (tweets) | tweets accuracy ({seeds_t} seed{'s' * (seeds_t > 1)}) | "
            f"BBC accuracy ({seeds_b} seed{'s' * (seeds_b > 1)}) | saved task file |", "|---|---:|---:|---:|---:|"]
    for method, runs in t.items():
        r = runs[0]
        file = "(the model)" if method == "full" else _size(r["file_bytes"])
        if method == "prefix" and r["file_bytes"] and r["file_bytes"] > 8 * stored_params(r):  # saved before folding
            file = f"{file} with its MLP; ≈ {_size(4 * stored_params(r))} folded"
        rows.append(f"| {NAMES.get(method, method)} | {r['trainable']:,} | {_acc(runs)} | "
                    f"{_acc(b[method]) if method in b else '–'} | {file} |")
    tb, bb = tweets["result"]["rows"][0], bbc["result"]["rows"][0]
    rows += ["", f"Budget: tweets {tb['steps']} steps × {tb['batch_size']}, test {tb['test_size']:,} tweets; BBC "
                 f"{bb['steps']} steps × {bb['batch_size']}, test {bb['test_size']} articles. Stored: tweets on "
                 f"{_provenance(tweets)}; BBC on {_provenance(bbc)}.",
             "", "A winner is named only when its lead is larger than the range the seeds alone span "
                 "(`ll.metrics.seed_verdict`); full fine-tuning is left out of the verdicts.",
             "", "- " + _verdict({m: r for m, r in t.items() if m != "full"}, "Tweets"),
             "- " + _verdict({m: r for m, r in b.items() if m != "full"}, "BBC News")]
    return "\n".join(rows)


def sweep() -> str:
    record = _load(STORED / "sweep_tweets.json")
    if record is None:
        return "_Not computed yet: `python -m lesson_lib precompute sweep_tweets`._"
    from lesson_lib.plots import stored_params

    seeds = _seeds(record)
    rows = ["| method | size | parameters stored per task | test accuracy" + (f", mean (range) over {seeds} seeds |"
                                                                        if seeds > 1 else " |"), "|---|---:|---:|---:|"]
    groups = _groups(record, "method", "size")
    methods = list(dict.fromkeys(method for method, _ in groups))  # in the order the sweep ran them
    for (method, size), runs in sorted(groups.items(), key=lambda item: (methods.index(item[0][0]), item[0][1])):
        rows.append(f"| {method} | {size} | {stored_params(runs[0]):,} | {_acc(runs)} |")
    r0 = record["result"]["rows"][0]
    rows += ["", f"{r0['steps']} steps × {r0['batch_size']} per run, every layer. Parameters stored: for the prefix, "
                 "its folded keys and values (its MLP trains, then is dropped); for the others, what trains. Stored "
                 f"on {_provenance(record)}."]
    return "\n".join(rows)


def fixed_alpha() -> str:
    record, sweep_record = _load(STORED / "rank_fixed_alpha_tweets.json"), _load(STORED / "sweep_tweets.json")
    if record is None or sweep_record is None:
        return "_Not computed yet: `python -m lesson_lib precompute rank_fixed_alpha_tweets`._"
    from lesson_lib.metrics import judge
    from lesson_lib.results import seeds_text

    arms = {"α = 2r": {size: [r["accuracy"] for r in runs] for (m, size), runs in
                       _groups(sweep_record, "method", "size").items() if m == "lora"},
            "α = 16": {size: [r["accuracy"] for r in runs] for size, runs in _groups(record, "size").items()}}
    sizes = sorted(arms["α = 16"])
    rows = ["| LoRA rank r | α = 2r (α/r = 2) | α = 16 (α/r = 16/r) |", "|---:|---:|---:|"]
    for r in sizes:
        two_r = _mean_range(arms["α = 2r"][r]) if r in arms["α = 2r"] else "–"
        rows.append(f"| {r} | {two_r} | {_mean_range(arms['α = 16'][r])} |")
    rows += ["", f"α = 2r: the sweep's runs ({seeds_text(sweep_record['provenance'])}). α = 16: stored on "
                 f"{_provenance(record)}.", ""]
    lo, hi = sizes[0], sizes[-1]
    n = record["result"]["rows"][0]["test_size"]
    for arm, acc in arms.items():
        if lo in acc and hi in acc:
            outcome, yardstick = judge(acc[hi], acc[lo], n)
            said = {"a": f"r = {hi} is better than r = {lo}", "b": f"r = {lo} is better than r = {hi}",
                    "tie": f"r = {hi} and r = {lo} tie"}[outcome]
            rows.append(f"- {arm}: {said}, judged against {yardstick}.")
    return "\n".join(rows)


def cpu_mode() -> str:
    data = _load(RESULTS / "cpu_mode.json")
    if data is None:
        return "_Not measured yet: `python -m benchmarks.cpu_mode`._"
    rows = ["| what the notebook trains live | CPU mode: mean (each seed) | full mode (stored) | points |",
            "|---|---:|---:|---:|"]
    for r in data["rows"]:
        acc = sum(r["accuracies"]) / len(r["accuracies"])
        seeds = " / ".join(f"{100 * a:.1f}" for a in r["accuracies"])
        full = "–" if r["full_accuracy"] is None else _pct(r["full_accuracy"])
        gap = "–" if r["full_accuracy"] is None else f"{100 * (acc - r['full_accuracy']):+.1f}"
        rows.append(f"| {r['label']} | {_pct(acc)} ({seeds}) | {full} | {gap} |")
    m = data["machine"]
    threads = f"{m['torch_threads']} torch thread{'s' * (m['torch_threads'] > 1)}"
    rows += ["", "CPU mode: the top two layers (the rest cached), the recipes of `lesson_lib.experiments.CPU_RECIPES`; "
                 f"seeds {data['seeds']}; measured on {m['cpu']} ({m['logical_cpus']} cores, {threads}), "
                 "`python -m benchmarks.cpu_mode`."]
    return "\n".join(rows)


def notebooks() -> str:
    data = _load(RESULTS / "notebooks.json") or {}
    cpu, gpu = data.get("cpu", {}), data.get("full-gpu", {})
    names = sorted(set(cpu) | set(gpu)) or sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))

    def cell(rows: dict, name: str) -> str:
        r = rows.get(name)
        if r is None:
            return "pending"
        return f"{r['seconds'] / 60:.1f} min" if r["status"] == "ok" else f"failed ({r['status'][:40]})"

    rows = ["| notebook | CPU mode (target ≤ 5 min on 2 cores) | full mode on a GPU (target ≤ 2 min; 06 ≤ 5) |",
            "|---|---:|---:|"]
    rows += [f"| {name.removesuffix('.ipynb')} | {cell(cpu, name)} | {cell(gpu, name)} |" for name in names]
    machines = sorted({r["machine"] for r in cpu.values()} | {r["machine"] for r in gpu.values()})
    rows += ["", "Measured with `python -m benchmarks.notebooks` (CPU mode) and `bash benchmarks/gpu_check.sh` "
                 "(GPU)" + (f" on {'; '.join(machines)}" if machines else "") + "; a fresh kernel per notebook, "
                 "nothing loaded from a lecture cache. GPU: pending until measured on one."]
    return "\n".join(rows)


def instruct() -> str:
    record = _load(STORED / "instruct_tasks.json")
    if record is None:
        return "_Not computed yet: `python -m lesson_lib precompute instruct_tasks`._"
    arms = _groups(record, "arm")
    label = {"untrained": "untrained (random yes/no head)", "leaky": "6, but sport and tech articles leaked in as 'no'",
             "trained on them": "all 8, the 2 test questions included (not zero-shot)"}
    rows = ["| trained on | questions | accuracy on the 2 unseen questions (sport, tech) |", "|---|---:|---:|"]
    for arm, runs in arms.items():
        rows.append(f"| {label.get(arm, ', '.join(runs[0]['trained_on']))} | {runs[0]['questions']} | "
                    f"{_mean_range([r['held_out'] for r in runs])} |")
    rc = record["result"]["recipe"]
    rows += ["", f"Yes/no questions over the tweets' and BBC's classes, chance 50 %; {runs[0]['test_size']} test "
                 f"examples; LoRA r = {rc['r']} in the top {rc['top']} layers, {rc['steps']} steps × "
                 f"{rc['batch_size']}; mean (range) over {_seeds(record)} seeds. Stored on "
                 f"{_provenance(record)}."]
    return "\n".join(rows)


def low_resource() -> str:
    record = _load(STORED / "low_resource_tweets.json")
    if record is None:
        return "_Not computed yet: `python -m lesson_lib precompute low_resource_tweets`._"
    cells: dict[int, dict[str, list[float]]] = {}
    for (k, method), runs in _groups(record, "examples", "method").items():
        cells.setdefault(k, {})[method] = [r["accuracy"] for r in runs]
    methods = list(next(iter(cells.values())))
    rows = ["| training tweets K | " + " | ".join(NAMES.get(m, m.replace("unipelt_paper", "UniPELT as in the paper"))
                                                for m in methods) + " |", "|---:|" + "---:|" * len(methods)]
    for k, by in sorted(cells.items()):
        rows.append(f"| {k:,} | " + " | ".join(_mean_range(by[m]) for m in methods) + " |")
    rows += ["", f"Every layer; UniPELT as in the paper: LoRA r = 8, one Pfeiffer adapter m = 48, the prefix with its "
                 f"MLP at its own learning rate; tested on all 1,000 test tweets. Stored on {_provenance(record)}.", ""]
    from lesson_lib.metrics import judge

    n = record["result"]["rows"][0]["test_size"]
    for k, by in sorted(cells.items()):
        singles = {m: acc for m, acc in by.items() if not m.startswith("unipelt")}
        best = max(singles, key=lambda m: sum(singles[m]) / len(singles[m]))
        outcome, yardstick = judge(by["unipelt_paper"], singles[best], n)
        said = {"a": "UniPELT is better", "b": "the single method is better", "tie": "a tie"}[outcome]
        rows.append(f"- K = {k:,}: UniPELT against the best single method, {NAMES.get(best, best)}: {said} "
                    f"(judged against {yardstick}).")
    return "\n".join(rows)


TABLES = {"compare": compare, "sweep": sweep, "fixed_alpha": fixed_alpha, "cpu_mode": cpu_mode, "notebooks": notebooks,
          "instruct": instruct, "low_resource": low_resource}


def render(text: str) -> str:
    for name, make in TABLES.items():
        block = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- /table:{name} -->)", re.S)
        text = block.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    stale = []
    for path in FILES:
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(new)
    if "--check" in argv and stale:
        names = ", ".join(p.name for p in stale)
        print(f"{names}: the tables differ from the results: run python tools/readme_tables.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
