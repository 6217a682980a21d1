"""The NUTS chain's compilation: seconds to trace, lower and compile the default fit's chain.

    python benchmarks/bench_chain_compile.py [--baseline-src DIR] [--repeats 3]

Each measurement runs in a fresh Python process without a persistent compilation cache: the
chain of ``chinplan.fit``'s defaults (the Chinchilla law, Student-t likelihood, the 245
embedded runs padded to 256, 500 warm-up steps + 1,000 draws, one chain, its start near the
point fit) lowered and compiled, then run once. ``--baseline-src DIR`` times the source tree
in DIR too (``git archive <commit> | tar -x -C DIR``), interleaved with this tree's, so both
see the same machine load. Every compiled chain in the test suite and every first fit on a
machine pays this (issue 23).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp
import chinplan
assert chinplan.__file__.startswith(sys.argv[1]), (chinplan.__file__, sys.argv[1])
from chinplan.inference import sampler
from chinplan.inference.fit import PRIOR_PRESETS, _point_start
from chinplan.inference.model import chinchilla_model, pad_runs
from chinplan.inference.runs import runs_arrays

a = runs_arrays(chinplan.datasets.chinchilla())
x = [jnp.asarray(v, jnp.float32) for v in (a.log_n, a.log_d, a.log_loss)]
padded = pad_runs(*x, jnp.ones_like(x[0]), (), ())
priors = PRIOR_PRESETS["chinchilla"]["weak"]  # the default
start = _point_start(*padded[:4], priors, "student_t")
run = sampler._runner(chinchilla_model, (("priors", priors),), 500, 1000, 1, "sequential", 0, tuple(sorted(start)))
args = (jax.random.key(0), padded, jnp.asarray(0.8, jnp.float32), {k: jnp.asarray(v, jnp.float32) for k, v in start.items()})
t0 = time.perf_counter()
compiled = run.lower(*args).compile()
t1 = time.perf_counter()
jax.block_until_ready(compiled(*args))
t2 = time.perf_counter()
print(json.dumps({"compile_s": t1 - t0, "sample_s": t2 - t1}))
"""


def _measure(src: str) -> dict:
    env = dict(os.environ, PYTHONPATH=src, JAX_ENABLE_COMPILATION_CACHE="false")
    env.pop("XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", CHILD, src], env=env, capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = [("this tree", HERE)] + ([("baseline", os.path.abspath(args.baseline_src))] if args.baseline_src else [])
    seen = {name: [] for name, _ in trees}
    for _ in range(args.repeats):
        for name, src in trees:
            seen[name].append(_measure(src))
    print(f"| tree | compile s (median of {args.repeats}) | one chain's 1,500 steps s |")
    print("|---|---|---|")
    for name, rows in seen.items():
        print(f"| {name} | {statistics.median(r['compile_s'] for r in rows):.2f} | {statistics.median(r['sample_s'] for r in rows):.2f} |")


if __name__ == "__main__":
    main()
