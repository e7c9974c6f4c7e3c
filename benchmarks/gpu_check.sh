#!/usr/bin/env bash
# One short call on a machine with a CUDA GPU: the test suite's GPU-marked tests, then the per-step
# benchmark on the GPU (bf16 autocast, as ll.train uses there). Results go to $OUT when it is set (the
# device tool's output folder), else to benchmarks/results/gpu/.
#
#     bash benchmarks/gpu_check.sh            # about 2-3 minutes on one GPU
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python}
if ! "$PY" -c "import lesson_lib" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps -e . || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
OUT_DIR=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT_DIR"
"$PY" -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT_DIR/gpu_tests.txt"
"$PY" -m benchmarks.step_time --device cuda --out "$OUT_DIR" 2>&1 | tail -n 30
