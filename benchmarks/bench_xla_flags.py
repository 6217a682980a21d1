"""Does an XLA compiler flag make the suite's compiling cheaper? (issue 23, item 5)

    python benchmarks/bench_xla_flags.py

Three quarters of the test suite's time is JAX compiling programs it has not seen
(benchmarks/RESULTS.md). This runs the README's ``plan`` and ``tco`` questions in a fresh
process per ``XLA_FLAGS`` setting (no compilation cache, so everything compiles) and prints
the process's CPU seconds for the two commands and what JAX reported for tracing, lowering and
backend compilation. Every setting runs twice, the settings in turn (so a slow minute of
the machine touches all of them), and the faster run of each is shown; the first row, no
flags, is the baseline of the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

FLAGS = ["", "--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true",
         "--xla_cpu_use_thunk_runtime=false", "--xla_cpu_parallel_codegen_split_count=1"]  # fmt: skip

CHILD = r"""
import json, time
import jax.monitoring
seconds = {}
jax.monitoring.register_event_duration_secs_listener(lambda name, d, **kw: seconds.__setitem__(name.rsplit("/", 1)[-1], seconds.get(name.rsplit("/", 1)[-1], 0.0) + d))
start = time.process_time()
from chinplan.cli import main
for argv in (["plan", "--compute", "5.76e23"], ["tco", "--target-loss", "2.0", "--queries", "1e10", "--tokens-per-query", "500", "--hardware", "h100"]):
    main(argv)
keep = ("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration", "backend_compile_duration")
print(json.dumps({"cpu": time.process_time() - start, **{k: seconds.get(k, 0.0) for k in keep}}))
"""


def main(repeats: int = 2) -> None:
    rows: dict = {}
    for _ in range(repeats):
        for flags in FLAGS:
            env = {**os.environ, "XLA_FLAGS": flags, "CHINPLAN_CACHE": "0"}
            done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            if flags not in rows or row["cpu"] < rows[flags]["cpu"]:
                rows[flags] = row
    print("| XLA_FLAGS | CPU s (plan + tco, first calls) | ratio to no flags | tracing s | lowering s | backend compile s |")
    print("|---|---|---|---|---|---|")
    base = rows[FLAGS[0]]["cpu"]
    for flags in FLAGS:
        row = rows[flags]
        print(f"| {flags or '(none)'} | {row['cpu']:.2f} | {row['cpu'] / base:.2f} | {row['jaxpr_trace_duration']:.2f} | "
              f"{row['jaxpr_to_mlir_module_duration']:.2f} | {row['backend_compile_duration']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
