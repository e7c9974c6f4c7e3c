#!/usr/bin/env bash
# One call on a machine with a CUDA GPU: the GPU-marked tests (every method, merge, folding, export, the fast
# path, analysis and tasks on cuda), then every lesson notebook top to bottom in full mode (seconds per notebook
# and per cell), then the per-step benchmark on the GPU (bf16 autocast, as ll.train uses there). Results go to
# $OUT when it is set (the device tool's output folder), else to benchmarks/results/gpu/; the notebook times
# also land in benchmarks/results/notebooks.json under "full-gpu" when OUT is not set.
#
#     bash benchmarks/gpu_check.sh                       # about 5-8 minutes on one GPU
#     NOTEBOOKS="notebooks/03_lora.ipynb" bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
unset LESSON_FAST LESSON_DEVICE
PY=${PYTHON:-python}
if ! "$PY" -c "import lesson_lib" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps -e . || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
OUT_DIR=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT_DIR"
LESSON_DEVICE=cpu "$PY" -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT_DIR/gpu_tests.txt" | tail -5
# shellcheck disable=SC2086
"$PY" -m benchmarks.notebooks --mode full ${OUT:+--out "$OUT_DIR"} ${NOTEBOOKS:-} 2>&1 | tail -n 25
"$PY" -m benchmarks.step_time --device cuda --out "$OUT_DIR" 2>&1 | tail -n 30
