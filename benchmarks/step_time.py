"""Seconds per training step: our LoRA against PEFT's LoRA, and every other method, on the same batches.

    python -m benchmarks.step_time            # full run, writes benchmarks/results/step_time.{json,md}
    python -m benchmarks.step_time --quick    # smoke test (tiny sizes), prints only

Same base (all-MiniLM-L6-v2), same r / alpha / targets (r = 8, alpha = 16, query and value), same
batches (the first shuffled tweets batches, 32 each, at most 64 tokens, dynamic padding), AdamW.
Every variant is timed in turns with the others, and we report the median of the repeats after
warm-up. Before timing, our LoRA gets random A, B and head, PEFT's model gets copies of them, and we
report the largest logits difference between the two (eval mode) on all batches.

Memory: on CUDA, the peak allocated during one step. On the CPU torch keeps no such count, so we
report what a step holds at its peak: the activations saved for backward (measured with
``saved_tensors_hooks``) plus the trainable parameters' gradients and AdamW's two moments.
"""

from __future__ import annotations

import contextlib
import copy
import os

import torch

from . import common

LORA = dict(r=8, alpha=16, targets=("query", "value"))


def _randomise_lora(model, seed: int = 0) -> None:
    """Non-zero A, B and head, so 'same logits as PEFT' is not true by accident (B = 0 at init)."""
    import lesson_lib as ll

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in ll.surgery.lora_modules(model).values():
            m.lora_A.copy_(torch.randn(m.lora_A.shape, generator=g) * 0.05)
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.05)
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=g) * 0.05)


def _peft_copy(base, ours):
    """PEFT's LoRA on an identical copy of the base, with our A, B and head copied in."""
    import peft

    import lesson_lib as ll

    pm = peft.get_peft_model(base, peft.LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
                                                   target_modules=list(LORA["targets"]), task_type="SEQ_CLS"))
    params = dict(pm.named_parameters())
    with torch.no_grad():
        for name, m in ll.surgery.lora_modules(ours).items():
            params[f"base_model.model.{name}.lora_A.default.weight"].copy_(m.lora_A)
            params[f"base_model.model.{name}.lora_B.default.weight"].copy_(m.lora_B)
        for p in ("weight", "bias"):
            params[f"base_model.model.classifier.modules_to_save.default.{p}"].copy_(getattr(ours.classifier, p))
    return pm


@torch.no_grad()
def _logits_gap(a, b, batches, device) -> float:
    a.eval()
    b.eval()
    gap = 0.0
    for batch in batches:
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        gap = max(gap, float((a(**inputs).logits - b(**inputs).logits).abs().max()))
    return gap


def _trainer(model, forward, batches, device, lr=1e-3):
    """One training step on batch ``i``: forward, backward, AdamW step. Also returns a memory probe."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()

    def step(i: int) -> None:
        with _autocast(device):
            loss = forward(batches[i % len(batches)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def memory(i: int = 0) -> int:
        """Bytes: activations saved for backward + gradients and AdamW state of the trainable parameters."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            step(i)
            torch.cuda.synchronize(device)
            return torch.cuda.max_memory_allocated(device) - before
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            loss = forward(batches[i % len(batches)])
        weights = {w.untyped_storage().data_ptr() for w in model.parameters()}  # held anyway, not activations
        unique = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved
                  if t.untyped_storage().data_ptr() not in weights}
        loss.backward()
        opt.zero_grad(set_to_none=True)
        return sum(unique.values()) + 3 * sum(p.numel() * p.element_size() for p in params)

    return step, memory, sum(p.numel() for p in params)


def _autocast(device):
    """Mixed precision on CUDA (bf16), as ``ll.train`` does; plain fp32 on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _with_threads(fn, n: int):
    from lesson_lib.devices import threads

    def run(i: int) -> None:
        with threads(n):
            fn(i)
    return run


def _move(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def build_variants(args, device):
    """{name: (step, memory, trainable, note)} plus the logits gap between our LoRA and PEFT's."""
    import lesson_lib as ll
    from lesson_lib import fast

    task = common.task(args.quick)
    base, tok = ll.load_base(tiny=args.quick)
    n_batches = 4 if args.quick else 8
    batches = [_move(b, device) for b in common.fixed_batches(task, tok, n_batches, args.batch_size, args.seed,
                                                              task.max_length)]
    n_layers = len(ll.models.layers_of(base))
    k = min(2, n_layers - 1)  # the top 2 of MiniLM's 6 layers; the top 1 of the tiny model's 2

    def fresh():
        return copy.deepcopy(base).to(device)

    plain = lambda m: (lambda b: m(**b).loss)
    variants = {}
    ours = fresh()
    ll.inject(ours, ll.LoRAConfig(**LORA))
    _randomise_lora(ours)
    pm = _peft_copy(fresh(), ours)
    gap = _logits_gap(ours, pm, batches, device)
    variants["our LoRA"] = (*_trainer(ours, plain(ours), batches, device), "r 8, query+value, all layers")
    variants["PEFT LoRA"] = (*_trainer(pm, plain(pm), batches, device), "peft.LoraConfig, same A, B, head")
    for name, cfg, note in (("our adapters", ll.AdapterConfig(bottleneck=64), "bottleneck 64, Houlsby"),
                            ("our prefix", ll.PrefixConfig(length=10), "length 10, all layers"),
                            ("our prompt", ll.PromptConfig(length=10), "length 10")):
        m = fresh()
        ll.inject(m, cfg)
        variants[name] = (*_trainer(m, plain(m), batches, device), note)
    full = fresh()
    variants["full fine-tune"] = (*_trainer(full, plain(full), batches, device, lr=5e-5), "every weight trains")
    top = fresh()
    ll.inject(top, ll.LoRAConfig(**LORA, layers=fast.top_layers(top, k)))
    variants[f"our LoRA top {k}, plain"] = (*_trainer(top, plain(top), batches, device),
                                            f"layers {n_layers - k}–{n_layers - 1}, uncached")
    cached = fresh()
    ll.inject(cached, ll.LoRAConfig(**LORA, layers=fast.top_layers(cached, k)))
    s = fast.cache_start(cached)
    hidden = [fast.lower_forward(cached, s, b) for b in batches]  # the cache: computed once per example
    by_id = {id(b): h for b, h in zip(batches, hidden)}
    cached_fwd = lambda b: fast.top_forward(cached, s, by_id[id(b)].clone(), b["attention_mask"], b["labels"]).loss
    variants[f"our LoRA top {k}, cached (fast path)"] = (*_trainer(cached, cached_fwd, batches, device),
                                                         f"layers 0–{s - 1} cached")
    threads = torch.get_num_threads()
    if device.type == "cpu" and (os.cpu_count() or 1) > threads:  # is one more thread faster on this machine?
        more = fresh()
        ll.inject(more, ll.LoRAConfig(**LORA))
        step, memory, trainable = _trainer(more, plain(more), batches, device)
        variants[f"our LoRA, {threads + 1} threads"] = (_with_threads(step, threads + 1), memory, trainable,
                                                        f"as 'our LoRA', torch.set_num_threads({threads + 1})")
    fill = lambda i: fast.lower_forward(cached, s, batches[i % len(batches)])
    variants["fast path: filling the cache"] = (fill, None, 0, f"layers 0–{s - 1}, inference, once per example")
    return variants, gap, batches


def main(argv=None) -> dict:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None, help="timed steps per variant (default 24; quick 3)")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    device = common.setup(args)
    repeats = args.repeats or (3 if args.quick else 24)
    info = common.machine(device)
    variants, gap, batches = build_variants(args, device)
    memory = {name: (mem(0) if mem else None) for name, (_, mem, _, _) in variants.items()}
    times = common.interleaved({name: v[0] for name, v in variants.items()}, repeats, warmup=2, device=device)
    rows, data_rows = [], []
    base = common.summary(times["PEFT LoRA"])["median_s"]
    for name, (_, _, trainable, note) in variants.items():
        stats = common.summary(times[name])
        mb = None if memory[name] is None else memory[name] / 2**20
        data_rows.append({"variant": name, "note": note, "trainable": trainable, **stats, "memory_mb": mb,
                          "ratio_to_peft": stats["median_s"] / base})
        iqr = f"{stats['q1_s']:.3f}–{stats['q3_s']:.3f}"
        rows.append([name, note, f"{trainable:,}", f"{stats['median_s']:.3f}", iqr, f"{stats['median_s'] / base:.2f}",
                     "–" if mb is None else f"{mb:.0f}"])
    ratio = common.summary(times["our LoRA"])["median_s"] / base
    tokens = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    width = sum(b["input_ids"].shape[1] for b in batches) / len(batches)
    md = "\n".join([
        "## Seconds per training step (same batches, interleaved, medians)", "",
        common.machine_markdown(info), "",
        f"{len(batches)} fixed tweets batches of {args.batch_size} (mean padded width {width:.0f} tokens, "
        f"{tokens / args.batch_size:.0f} real tokens per example), {repeats} timed steps per variant after 2 "
        f"warm-up steps, taken in turns.", "",
        common.markdown_table(["variant", "setting", "trainable", "s / step (median)", "IQR", "× PEFT LoRA",
                               "memory MB"], rows), "",
        f"**Our LoRA / PEFT LoRA = {ratio:.3f}** (target ≤ 1.0; "
        f"{'met' if ratio <= 1.0 else f'missed by {100 * (ratio - 1):.1f} %'}). "
        f"Largest |logits difference| ours vs PEFT with the same A, B and head: {gap:.2e}.", "",
        "Memory: " + ("peak CUDA memory allocated during one step (bf16 autocast)." if device.type == "cuda" else
                      "activations saved for backward + gradients + AdamW moments (CPU torch keeps no peak count)."),
    ])
    data = {"benchmark": "step_time", "machine": info, "quick": args.quick, "batch_size": args.batch_size,
            "repeats": repeats, "lora_over_peft": ratio, "logits_max_abs_diff_vs_peft": gap, "rows": data_rows,
            "raw_seconds": times}
    common.write("step_time", args, data, md)
    return data


if __name__ == "__main__":
    main()
