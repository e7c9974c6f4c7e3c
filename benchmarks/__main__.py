"""``python -m benchmarks [--quick] [--threads N] …``: run every benchmark in turn, same options for each."""

import sys

from . import cpu_mode, interactive, merged_inference, methods, step_time, sweep, time_to_accuracy

for bench in (step_time, merged_inference, interactive, time_to_accuracy, methods, sweep, cpu_mode):
    print(f"\n# {bench.__name__}\n", flush=True)
    bench.main(sys.argv[1:])
