"""Peak memory of the engine on 1e10 draw-scenario pairs (10M scenarios x 1,000 draws).

Runs ``chinplan.bands`` (5/50/95% bands of the law's loss, ``fn = chinplan.loss``) over a
broadcast grid of model sizes N x token counts D with ``--scenarios`` points and ``--draws``
draws of the shipped posterior, and reports the process's peak resident memory
(``resource.getrusage(...).ru_maxrss``, which covers the JAX runtime, the compiled kernels,
the scenario columns and the results) before and after the run, and the wall time. The
draws x scenarios array (40 GB in float32 here) is never formed: the engine evaluates and
reduces one chunk of scenarios at a time. Run::

    python benchmarks/bench_memory.py --draws 1000 --scenarios 10000000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time

import jax
import numpy as np

import chinplan


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--scenarios", type=int, default=10_000_000)
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    post = chinplan.default_posterior().params
    idx = np.arange(args.draws) % np.asarray(post.E).shape[0]
    params = chinplan.LawParams(*(np.asarray(p, np.float32)[idx] for p in post))
    side = math.isqrt(args.scenarios - 1) + 1
    n_grid = np.logspace(8, 13, side)[:, None]
    d_grid = np.logspace(9, 15, side)[None, :]
    pairs = args.draws * side * side

    # Warm-up on a small grid: compilation and runtime start-up are in the baseline figure.
    chinplan.bands(chinplan.loss, params, n_grid[:8], d_grid[:, :8], progress=False)
    before = peak_rss_mib()
    start = time.perf_counter()
    result = chinplan.bands(chinplan.loss, params, n_grid, d_grid, progress=None)
    values = np.asarray(jax.block_until_ready(result.values))
    seconds = time.perf_counter() - start
    after = peak_rss_mib()

    figures = {
        "draws": args.draws, "scenarios": side * side, "pairs": pairs,
        "peak_rss_before_mib": before, "peak_rss_after_mib": after, "seconds": seconds,
        "pairs_per_s": pairs / seconds, "result_shape": list(values.shape),
        "all_finite": bool(np.isfinite(values).all()), "load_average": os.getloadavg()[0],
        "jax": jax.__version__, "cpus": os.cpu_count(),
    }
    print(f"{args.draws} draws x {side}x{side} = {side * side:.3g} scenarios = {pairs:.3g} pairs")
    print(f"peak RSS after warm-up {before:.0f} MiB, after the run {after:.0f} MiB; "
          f"{seconds:.1f} s ({pairs / seconds:.3g} pairs/s); bands shape {values.shape}, all finite: {figures['all_finite']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
