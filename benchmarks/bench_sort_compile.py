"""Compilation and run time of ``plan``'s bands with each sorter (session 29, issue 23).

    python benchmarks/bench_sort_compile.py

Each sorter runs in a fresh process (nothing compiled before it): ``engine.bands(kernels.plan,
theta, [5.76e23, 1e24])`` on the shipped posterior's extrapolation-aware draws (4,000), first
call (tracing, lowering, compiling and running) and best of 5 later calls, in CPU seconds of
the process. "network": the bitonic network for every sort (``NETWORK_MAX_SORT = -1``);
"default": XLA's sort for chunks up to ``NETWORK_MAX_SORT`` values, as chinplan runs.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import sys, time
import jax, numpy as np
import chinplan
from chinplan import engine
from chinplan.engine import kernels, quantile_network
if sys.argv[1] == "network":
    quantile_network.NETWORK_MAX_SORT = -1
theta = chinplan.default_posterior().extrapolated_params()
compute = np.array([5.76e23, 1e24])
call = lambda: jax.block_until_ready(engine.bands(kernels.plan, theta, compute, q=(0.05, 0.5, 0.95)).values)
start = time.process_time(); first = call(); cold = time.process_time() - start
warm = []
for _ in range(5):
    start = time.process_time(); again = call(); warm.append(time.process_time() - start)
print(f"{cold:.2f} {min(warm) * 1e3:.1f} " + " ".join(f"{float(v):.9g}" for v in np.ravel(first["n"])))
"""


def main() -> None:
    rows = {}
    for sorter in ("network", "default"):
        out = subprocess.run([sys.executable, "-c", CHILD, sorter], capture_output=True, text=True, check=True, env=None).stdout.split()
        rows[sorter] = out
    print("| sorter | first call (CPU s) | later call (CPU ms) |")
    print("|---|---|---|")
    for sorter, out in rows.items():
        print(f"| {sorter} | {out[0]} | {out[1]} |")
    same = rows["network"][2:] == rows["default"][2:]
    print(f"\nN* bands the same to 9 digits with either sorter: {same}")


if __name__ == "__main__":
    main()
