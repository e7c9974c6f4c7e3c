from nbgen import Exercise, code, hint, md, predict, setup_cell, timing_cell

CELLS = [
    md("""
    # 01 · Why efficient adaptation

    **Red AI.** The compute used to train the largest deep learning models grew about **300,000×** between
    2012 and 2018 (Amodei & Hernandez 2018, reproduced as Figure 1 of Schwartz, Dodge, Smith & Etzioni,
    *Green AI*, CACM 63(12), 2020). Most papers report accuracy and leave out the cost of reaching it;
    *Green AI* asks for efficiency as an evaluation criterion beside accuracy.

    **The carbon bill.** Strubell, Ganesh & McCallum (ACL 2019, Table 1) estimated **626,155 lbs CO₂e** for
    training one Transformer with neural architecture search — against 1,984 lbs for one passenger flying
    New York ↔ San Francisco, 11,023 lbs for an average human's year, and 126,000 lbs for a car over its
    lifetime, fuel included.

    **Here:** what does tuning all weights cost, and what do the efficient methods cost instead? All numbers
    below are computed from the architectures, then checked against a real model.
    """),
    setup_cell("01 why efficient"),
    timing_cell("01_why_efficient", """
    Nothing is trained here: every cell takes seconds, in every mode.
    """),
    *predict("""
    GPT-3 175B has 96 layers of width d = 12,288. LoRA with rank r = 4 on all four attention matrices
    (query, key, value, output) of every layer: how many parameters does it train? Roughly: thousands,
    millions or billions? Write a number.
    """, name="guess_gpt3", example="1_000_000"),
    md("""
    ### Exercise 1.1 — count LoRA's parameters

    Write `lora_param_count(d_model, r, n_layers, n_matrices)`: the number of parameters LoRA trains when it
    adapts `n_matrices` square d_model × d_model matrices in each of `n_layers` layers with rank r. Then use it
    to answer the question above.
    """),
    Exercise(
        student="""
        def lora_param_count(d_model: int, r: int, n_layers: int, n_matrices: int) -> int:
            # TODO: the parameters of LoRA's two factors for one matrix, then for all matrices of all layers
            raise NotImplementedError
        """,
        solution="""
        def lora_param_count(d_model: int, r: int, n_layers: int, n_matrices: int) -> int:
            per_matrix = r * d_model + d_model * r      # A is r × d, B is d × r
            return per_matrix * n_matrices * n_layers
        """,
    ),
    hint("""
    LoRA replaces the update of one d × d matrix by the product B·A. What are the shapes of A and B when the
    rank is r? Count both, then multiply by the number of adapted matrices.
    """),
    code("""
    ll.checks.check_lora_count(lora_param_count)
    try:
        answer = lora_param_count(12_288, 4, 96, 4)
    except NotImplementedError:
        answer = 2 * 12_288 * 4 * 96 * 4  # the library's answer, until yours is written
    ll.checks.reveal(guess_gpt3, answer, "LoRA r = 4 on q, k, v, o of GPT-3",
                     "2·12,288·4 per matrix × 4 matrices × 96 layers: 37.7M, 0.02 % of 175 billion");
    """),
    md("""
    ## The calculator: parameters, Adam memory, checkpoint size

    For each model and method: trainable parameters, the Adam optimizer state (two fp32 numbers per trainable
    parameter) and the size of what must be stored per task. Expect, on GPT-3: LoRA with r = 1 on the query and
    value projections trains 4,718,592 parameters (the paper's "4.7M", 0.0027 % of the model); with r = 8 it is
    37.7M (0.022 %). Its per-task file is tens of megabytes where a full fp32 copy is about 650 GB.
    """),
    code("""
    from lesson_lib import metrics as M

    methods = {
        "full fine-tune": "full",
        "LoRA r=1 (q, v)": ll.LoRAConfig(r=1, targets=("query", "value")),
        "LoRA r=8 (q, v)": ll.LoRAConfig(r=8, targets=("query", "value")),
        "adapters m=64": ll.AdapterConfig(bottleneck=64),
        "prefix P=10": ll.PrefixConfig(length=10),
        "prompt P=10": ll.PromptConfig(length=10),
    }

    def human(n_bytes):
        for unit in ("B", "KB", "MB", "GB", "TB"):
            if n_bytes < 1024:
                return f"{n_bytes:,.1f} {unit}"
            n_bytes /= 1024
        return f"{n_bytes:,.1f} PB"

    for spec in (M.MINILM_L6, M.BERT_BASE, M.GPT3_175B):
        print(f"\\n{spec.name}: {M.full_params(spec):,} parameters")
        print(f"  {'method':17s} {'trainable':>15s} {'share':>9s} {'Adam state':>11s} {'per-task file':>14s}")
        for label, cfg in methods.items():
            r = M.memory_report(spec, cfg, include_head=spec.n_labels > 0)
            print(f"  {label:17s} {r.trainable:>15,} {100 * r.trainable / r.total:>8.4f}% "
                  f"{human(r.optimizer_bytes):>11s} {human(r.checkpoint_bytes):>14s}")
    print("\\nThe papers:")
    for fact in ("lora_checkpoint", "lora_gpt3_table4", "houlsby_glue"):
        print("  -", ll.paper.FACTS[fact])
    """),
    md("""
    ### Explore it yourself

    Toggle the methods, move the rank r, α, the bottleneck m and the prefix length P. The table shows the count
    measured on the real MiniLM next to the formula, the share of the model, Adam memory and the file size —
    and the same choice at GPT-3 scale. Each update takes well under half a second.
    """),
    code("""
    from lesson_lib import widgets
    explorer = widgets.parameter_explorer(ll.load_base()[0], spec="GPT-3 175B")
    explorer
    """),

    md("""
    ## Measured on the real model equals the formula

    The calculator is only worth trusting if it matches what we build. Each method is injected into the real
    MiniLM, counted, and removed again (the model comes back bit for bit).
    """),
    code("""
    model, tok = ll.load_base()
    fingerprint = ll.checksum(model)
    for label, cfg in methods.items():
        if cfg == "full":
            measured, formula = ll.count_params(model).trainable, M.full_params(M.MINILM_L6)
        else:
            ll.inject(model, cfg)
            measured, formula = ll.count_params(model).trainable, ll.metrics.formula_for(model)
            ll.remove(model)
        print(f"{label:17s} measured {measured:>11,}   formula {formula:>11,}   equal: {measured == formula}")
        assert measured == formula
    assert ll.checksum(model) == fingerprint
    """),
    md("""
    ## One model copy per task, or one small file per task?

    Ten tasks fine-tuned fully need ten copies of the model. With LoRA they need one shared base and ten small
    files. The file sizes below are real files written to disk.
    """),
    code("""
    import tempfile, pathlib
    base_file = ll.models.offline_model_dir() / "model.safetensors"
    tmp = pathlib.Path(tempfile.mkdtemp())
    ll.inject(model, ll.LoRAConfig(r=8, targets=("query", "value")))
    lora_bytes = ll.save_adapter(model, tmp / "task.safetensors")
    ll.remove(model)
    full_bytes = base_file.stat().st_size
    print(f"one full copy of MiniLM: {human(full_bytes)}   one LoRA task file: {human(lora_bytes)} "
          f"({full_bytes / lora_bytes:.0f}× smaller)")
    print(f"10 tasks, full copies: {human(10 * full_bytes)}   base + 10 LoRA files: {human(full_bytes + 10 * lora_bytes)}")
    """),
    md("""
    ## The LoRA paper's GPT-3 table, reproduced

    Hu et al. (2021), Table 4, print the trainable parameters of each method on GPT-3 175B. The calculator
    recomputes each row from the paper's own formulas (Appendix) and shows the difference where the printed
    value does not follow from them — it never bends a formula to hit a number.
    """),
    code("""
    print(M.format_table4())
    lora_rows = [r for r in M.GPT3_TABLE4 if r.method == "LoRA"]
    assert [r.formula_params for r in lora_rows] == [4_718_592, 37_748_736]
    """),
    md("""
    ### Question to think about

    The paper's LoRA with 4.7M trainable parameters matched or beat full fine-tuning of all 175 billion on
    WikiSQL and MNLI (the scores printed above). Fine-tuning can change *any* weight in any direction; LoRA can
    only add a rank-1 or rank-2 update to two matrices per layer. What does it tell you about the change that
    adapting to a new task needs? (Notebook 04 measures it.)
    """),
    code("""
    ll.summary(
        f"Full fine-tuning of GPT-3 trains {M.full_params(M.GPT3_175B):,} parameters; Adam alone needs "
        f"{human(8 * M.full_params(M.GPT3_175B))} for them.",
        f"LoRA r = 1 on query and value trains {lora_rows[0].formula_params:,} (0.0027 %) and r = 8 "
        f"{lora_rows[1].formula_params:,}: the paper's 4.7M and 37.7M, reproduced from its formula.",
        f"On MiniLM every count measured on the real model equals the formula; a LoRA task file is "
        f"{human(lora_bytes)} against {human(full_bytes)} for a full copy ({full_bytes / lora_bytes:.0f}× smaller).",
        f"The papers: {ll.paper.FACTS['lora_checkpoint']}.",
    )
    """),
]
