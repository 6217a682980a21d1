"""Benchmark of the Monte Carlo engine: law evaluation vs bitonic bands vs sort-based bands.

Times, for ``--draws`` posterior draws x ``--scenarios`` scenarios (a broadcast grid of
model sizes N x token counts D, ``fn = chinplan.law.loss``):

  (a) ``engine.expectation``: evaluate the law and reduce with a mean (the floor: the cost of
      evaluating ``fn`` at every draw x scenario, chunked the same way);
  (b) ``engine.bands``: the same evaluation, quantiles from the bitonic sorting network;
  (c) the same chunk loop with ``jnp.quantile`` (XLA sort along the draw axis) per chunk.

Compilation is excluded (one warm-up call each), every timing blocks until the result is
ready, and the best of ``--repeats`` runs is reported. (b) and (c) are also compared value
for value. Run::

    python benchmarks/bench_engine.py --draws 1000 --scenarios 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from chinplan import engine
from chinplan.law import HOFFMANN_2022, LawParams, loss


def make_draws(n_draws: int, seed: int = 0) -> LawParams:
    """Posterior-like draws: each constant of Hoffmann et al. 2022 jittered by 5%."""
    rng = np.random.default_rng(seed)
    return LawParams(*(np.float32(v) * (1 + 0.05 * rng.standard_normal(n_draws)).astype(np.float32) for v in HOFFMANN_2022))


def make_grid(n_scenarios: int) -> tuple[np.ndarray, np.ndarray]:
    """A (side, 1) x (1, side) grid of N and D with side**2 >= n_scenarios."""
    side = math.isqrt(n_scenarios - 1) + 1
    return np.logspace(8, 12, side)[:, None], np.logspace(10, 14, side)[None, :]


def sort_based_bands(params, n_grid, d_grid, q, chunk_size):
    """Baseline: the engine's chunk loop, reducing each chunk with jnp.quantile (a full sort)."""
    shape = np.broadcast_shapes(n_grid.shape, d_grid.shape)
    columns = [np.broadcast_to(a, shape).reshape(-1).astype(np.float32) for a in (n_grid, d_grid)]
    total = columns[0].size
    padded = -(-total // chunk_size) * chunk_size
    columns = [np.concatenate([c, np.repeat(c[:1], padded - total)]) for c in columns]
    pieces = [_sort_chunk(params, c0[i : i + chunk_size], c1[i : i + chunk_size], q) for c0, c1 in [columns] for i in range(0, padded, chunk_size)]
    return np.concatenate([np.asarray(p) for p in pieces], axis=1)[:, :total].reshape((len(q),) + shape)


@jax.jit
def _sort_chunk(params, n, d, q):
    y = jax.vmap(lambda theta: jax.vmap(lambda ni, di: loss(theta, ni, di))(n, d))(params)
    return jnp.quantile(y, q, axis=0)


def best_time(run, repeats: int) -> float:
    jax.block_until_ready(run())  # warm-up: compilation excluded
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    return min(times)


def chunk_sweep(args) -> None:
    """bands of the pipeline's plan + TCO function at several chunk sizes, interleaved."""
    from bench_pipeline import Q, make_draws as posterior_draws, make_scenarios, plan_and_cost

    params = posterior_draws(args.draws)
    compute, queries = make_scenarios(args.scenarios)
    run = lambda c: engine.bands(plan_and_cost, params, compute, queries, q=Q, chunk_size=c, progress=False).values  # noqa: E731
    for c in args.chunk_sweep:
        jax.block_until_ready(run(c))
    times = {c: [] for c in args.chunk_sweep}
    for _ in range(args.repeats):
        for c in args.chunk_sweep:
            start = time.perf_counter()
            jax.block_until_ready(run(c))
            times[c].append(time.perf_counter() - start)
    pairs = args.draws * args.scenarios
    print(f"plan + TCO bands, {args.draws} draws x {args.scenarios} scenarios, load {os.getloadavg()[0]:.1f}")
    for c in args.chunk_sweep:
        print(f"chunk {c:5d}: {np.median(times[c]):7.3f} s  {pairs / np.median(times[c]) / 1e6:6.1f} Mpairs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--scenarios", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=None, help="scenarios per chunk (default: the engine's)")
    parser.add_argument("--skip-sort", action="store_true", help="skip the slow jnp.quantile baseline")
    parser.add_argument("--chunk-sweep", type=int, nargs="+", default=None,
                        help="only time bands at these chunk sizes, interleaved, median of --repeats")
    args = parser.parse_args()
    if args.chunk_sweep:
        chunk_sweep(args)
        return

    params = make_draws(args.draws)
    n_grid, d_grid = make_grid(args.scenarios)
    n_scenarios = n_grid.size * d_grid.size
    q = engine.DEFAULT_QUANTILES
    chunk = args.chunk_size or engine._default_chunk_size(args.draws, n_scenarios)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} cpus, {platform.processor() or platform.machine()}), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{args.draws} draws x {n_scenarios} scenarios (grid {n_grid.size} x {d_grid.size}), chunk {chunk}, q={q}, best of {args.repeats}")

    rows = []
    mean_s = best_time(lambda: engine.expectation(loss, params, n_grid, d_grid, chunk_size=chunk, progress=False), args.repeats)
    rows.append(("(a) law + mean (engine.expectation)", mean_s))
    bands_s = best_time(lambda: engine.bands(loss, params, n_grid, d_grid, q=q, chunk_size=chunk, progress=False).values, args.repeats)
    rows.append(("(b) law + bitonic bands (engine.bands)", bands_s))
    if not args.skip_sort:
        q_array = jnp.asarray(q, jnp.float32)
        sort_s = best_time(lambda: sort_based_bands(params, n_grid, d_grid, q_array, chunk), args.repeats)
        rows.append(("(c) law + jnp.quantile bands (sort)", sort_s))

    evaluations = args.draws * n_scenarios
    print(f"\n{'method':42s} {'seconds':>9s} {'ns/eval':>9s} {'x (a)':>7s}")
    for name, seconds in rows:
        print(f"{name:42s} {seconds:9.3f} {seconds / evaluations * 1e9:9.2f} {seconds / mean_s:7.2f}")
    reduce_bitonic = bands_s - mean_s
    print(f"\nquantile reduction alone (b - a): {reduce_bitonic:.3f} s")
    if not args.skip_sort:
        print(f"sort-based reduction alone (c - a): {sort_s - mean_s:.3f} s; "
              f"bands speed-up (c / b): {sort_s / bands_s:.1f}x; reduction speed-up: {(sort_s - mean_s) / max(reduce_bitonic, 1e-9):.1f}x")
        ours = np.asarray(engine.bands(loss, params, n_grid, d_grid, q=q, chunk_size=chunk).values)
        theirs = sort_based_bands(params, n_grid, d_grid, q_array, chunk)
        print(f"max relative difference (b) vs (c): {np.max(np.abs(ours - theirs) / np.abs(theirs)):.2e}")


if __name__ == "__main__":
    main()
