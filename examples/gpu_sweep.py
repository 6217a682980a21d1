"""A large design sweep sized for an accelerator: millions of scenarios x 1,000 posterior draws.

The question
    Which model size N and token count D give the lowest median cost of ownership, for
    every lifetime query volume Q, among designs whose loss is below a target with 95%
    posterior probability? Answered by brute force: every (N, D, Q) on a fine grid, every
    posterior draw of the law and of the cost inputs, reduced to bands on the fly.

The method
    One per-draw, per-scenario function returns the loss L(N, D) (Hoffmann et al. 2022,
    Eq. 2) and the total cost of ownership (``chinplan.tco``: 6ND training FLOPs, 2N per
    served token, H100 peak x uncertain MFU x uncertain price). ``chinplan.bands`` maps it
    over draws x scenarios: the scenario axis is cut into fixed-size chunks, each chunk is
    split across all local devices (``jax.shard_map`` over a one-axis mesh; nothing to do
    here but have them), evaluated and immediately reduced to 5/50/95% quantiles with a
    sorting network, so the draws x scenarios array (8 GB per output at the default size)
    never exists. The default sweep, 256 N x 256 D x 32 Q = 2.1M scenarios x 1,000 draws =
    2.1e9 (draw, scenario) pairs, is meant for a GPU; on a CPU use ``--small`` (about 1e5
    pairs) or shrink the grid. To try the multi-device path on a CPU, start Python with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.

    Throughput is measured after a warm-up call that compiles the per-chunk kernel with
    the same chunk size (compilation excluded), as pairs per second, where one pair is
    one draw evaluated at one scenario and reduced (both outputs). A spot check compares a
    few scenarios' bands with a float64 NumPy computation.

How to read the output
    The timing block gives devices, chunk size, wall time and pairs/s. The table gives,
    per query volume, the design on the grid with the lowest median TCO among those whose
    95th-percentile loss meets the target: as Q grows the winner shrinks and trains on more tokens per parameter (the
    Chinchilla trap, example chinchilla_trap.py). Grid resolution limits the answer to
    one grid step (about 2.8% in N and D at the default size).

Run::

    python examples/gpu_sweep.py                          # on a GPU machine
    python examples/gpu_sweep.py --grid 64 64 16          # a CPU-sized sweep (65k scenarios)
    python examples/gpu_sweep.py --small                  # ~1e5 pairs, seconds on a CPU
"""

from __future__ import annotations

import argparse
import math
import time
from typing import NamedTuple

import jax
import numpy as np

import chinplan as cp
from chinplan.engine import kernels
from chinplan.format import human_count as count
from chinplan.format import human_dollars as usd


class Outcome(NamedTuple):
    """What the kernel returns for one draw and one scenario."""

    loss: jax.Array
    dollars: jax.Array


def numpy_loss(params, n: float, d: float) -> np.ndarray:
    """L(N, D) of every draw in float64 NumPy, written out independently of the kernels: the
    law (Hoffmann et al. 2022, Eq. 2), and for extrapolation-aware draws the valley moved by
    ``s = v dC + c min(1, dC / 0.1)`` decades and the level drift ``u d^(1/2)``."""
    law = getattr(params, "law", params)
    if law is params:
        s, level = 0.0, 0.0
    else:
        dom = params.domain
        l10n, l10d = math.log10(n), math.log10(d)
        d_c = np.maximum(0.0, l10n + l10d + math.log10(6.0) - dom[:, 0])
        dist = np.maximum(d_c, np.maximum(np.maximum(0.0, l10n - dom[:, 1]), np.maximum(0.0, l10d - dom[:, 2])))
        c = 0.0 if params.c is None else params.c
        s = params.v * d_c + c * np.minimum(1.0, d_c / 0.1)
        level = params.u * np.sqrt(dist)
    n_s, d_s = n * 10.0**-s, d * 10.0**s
    return (law.E + law.A * n_s**-law.alpha + law.B * d_s**-law.beta) * np.exp(level)


def outcome(theta, n, d, queries):
    """Loss and total cost of ownership of design (N, D) served for ``queries`` queries."""
    return Outcome(kernels.loss(theta, n, d), kernels.dollars_at_queries(theta, n, d, queries))


def deployment() -> cp.Deployment:
    """H100 training and serving, 300 + 200 tokens per query, uncertain MFU and prices (assumptions)."""
    return cp.Deployment(
        queries=0.0,
        input_tokens=300.0,
        output_tokens=200.0,
        peak_flops=cp.H100_SXM.bf16,
        mfu_train=cp.Uniform(0.35, 0.45),
        mfu_prefill=cp.Uniform(0.4, 0.6),
        mfu_decode=cp.LogUniform(0.05, 0.2),
        price=cp.LogNormal(2.0, 0.25),
        inference_price=cp.LogNormal(2.0, 0.25),
    )


def pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def chunk_size_for(draws: int, scenarios: int, devices: int, platform: str) -> int:
    """Scenarios per device per chunk: ~2**17 padded draws x scenarios on CPU (cache-sized), 2**23 on accelerators."""
    budget = 2**17 if platform == "cpu" else 2**23
    return max(1, min(budget // pow2(draws), pow2(math.ceil(scenarios / devices))))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=1000, help="posterior draws (at most 4,000 shipped)")
    p.add_argument("--grid", type=int, nargs=3, default=(256, 256, 32), metavar=("NN", "ND", "NQ"),
                   help="grid points in N (1B-1T), D (100B-100T) and Q (1e8-1e11)")
    p.add_argument("--target-loss", type=float, default=2.0, help="required 95th-percentile loss")
    p.add_argument("--chunk-size", type=int, help="scenarios per device per chunk (default: by platform)")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset of draws and the cost draws")
    p.add_argument("--uncertainty", choices=("extrapolation", "law"), default="extrapolation",
                   help="bands with the extrapolation component (default, as chinplan plan) or the law alone")
    p.add_argument("--posterior", metavar="FILE", help="a posterior saved with Posterior.save (default: shipped)")
    p.add_argument("--small", action="store_true", help="about 1e5 pairs (128 draws x 16 x 16 x 4), for CPUs and tests")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    draws, grid = args.draws, tuple(args.grid)
    if args.small:
        draws, grid = min(draws, 128), (16, 16, 4)
    posterior = cp.Posterior.load(args.posterior) if args.posterior else cp.default_posterior()
    # plan's default: the extrapolation-aware draws (the law alone with --uncertainty law)
    params = cp.decide.subset_draws(posterior.extrapolated_params(args.uncertainty), draws, seed=args.seed)
    n_draws = int(params.law.E.shape[0])
    theta = cp.with_cost_draws(params, deployment(), key=jax.random.PRNGKey(args.seed))

    n_grid = np.logspace(9, 12, grid[0])
    d_grid = np.logspace(11, 14, grid[1])
    q_grid = np.logspace(8, 11, grid[2])
    scenario = (n_grid[:, None, None], d_grid[None, :, None], q_grid[None, None, :])
    n_scenarios = math.prod(grid)
    devices = jax.local_devices()
    platform = devices[0].platform
    chunk = args.chunk_size or chunk_size_for(n_draws, n_scenarios, len(devices), platform)
    q = (0.05, 0.5, 0.95)

    # Warm-up: compile the per-chunk kernel with the same chunk size on one chunk's worth.
    step = chunk * len(devices)
    flat = [np.broadcast_to(a, grid).reshape(-1)[:step] for a in scenario]
    t0 = time.perf_counter()
    cp.bands(outcome, theta, *flat, q=q, chunk_size=chunk)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = cp.bands(outcome, theta, *scenario, q=q, chunk_size=chunk)
    jax.block_until_ready(result)
    seconds = time.perf_counter() - t0
    pairs = n_draws * n_scenarios
    rate = pairs / seconds

    print(f"Sweep: {grid[0]} N x {grid[1]} D x {grid[2]} Q = {n_scenarios:,} scenarios x {n_draws} draws "
          f"= {pairs:.3g} pairs")
    print(f"  (2 outputs each; {args.uncertainty} uncertainty)")
    print(f"  devices: {len(devices)} x {devices[0].device_kind} ({platform}); chunk {chunk} scenarios per device")
    print(f"  warm-up (compile + 1 chunk): {compile_s:.2f} s; sweep: {seconds:.2f} s")
    print(f"  throughput: {rate:.3g} pairs/s ({1e9 / rate:.2f} ns per pair)")

    # Spot check against float64 NumPy for a few scenarios.
    rng = np.random.default_rng(args.seed)
    f64 = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    dep = jax.tree.map(lambda x: np.asarray(x, np.float64), theta[1])
    loss_q = np.asarray(result.values.loss, np.float64)
    usd_q = np.asarray(result.values.dollars, np.float64)
    worst = 0.0
    for _ in range(4):
        i, j, k = (int(rng.integers(g)) for g in grid)
        n, d, queries = n_grid[i], d_grid[j], q_grid[k]
        loss = numpy_loss(f64, n, d)
        train = dep.price * 6 * n * d / (3600 * dep.peak_flops * dep.mfu_train)
        serve = dep.inference_price * 2 * n * queries * (
            dep.input_tokens / dep.mfu_prefill + dep.output_tokens / dep.mfu_decode) / (3600 * dep.peak_flops)
        for ours, draws_ in ((loss_q[:, i, j, k], loss), (usd_q[:, i, j, k], train + serve)):
            worst = max(worst, float(np.max(np.abs(ours / np.quantile(draws_, q) - 1))))
    print(f"  spot check vs float64 NumPy on 4 scenarios: max relative difference {worst:.1e}")

    # The design with the lowest median TCO meeting the loss target with 95% probability, per query volume.
    ds = cp.to_dataset(result, q, dims=("n", "d", "queries"),
                       coords={"n": n_grid, "d": d_grid, "queries": q_grid})
    feasible = ds.loss.sel(quantile=0.95) <= args.target_loss
    median_usd = ds.dollars.sel(quantile=0.5).where(feasible)
    best = []
    print(f"\nLowest median TCO with P(loss <= {args.target_loss}) >= 0.95, per lifetime query volume:")
    print(f"{'queries':>7}{'N':>7}{'D':>7}{'tokens/param':>13}{'loss q50 [q95]':>18}{'TCO median [5%, 95%]':>26}")
    for k, queries in enumerate(q_grid):
        table = median_usd.isel(queries=k).values
        if not np.isfinite(table).any():
            print(f"{count(queries):>7}  no feasible design on the grid")
            best.append(None)
            continue
        i, j = np.unravel_index(np.nanargmin(table), table.shape)
        row = {"queries": float(queries), "n": float(n_grid[i]), "d": float(d_grid[j]),
               "loss_q50": float(loss_q[1, i, j, k]), "loss_q95": float(loss_q[2, i, j, k]),
               "dollars": usd_q[:, i, j, k].copy()}
        best.append(row)
        tco = f"{usd(row['dollars'][1])} [{usd(row['dollars'][0])}, {usd(row['dollars'][2])}]"
        print(f"{count(queries):>7}{count(row['n']):>7}{count(row['d']):>7}{row['d'] / row['n']:>13.0f}"
              f"{row['loss_q50']:>10.4f} [{row['loss_q95']:.4f}]{tco:>26}")

    return {
        "draws": n_draws,
        "scenarios": n_scenarios,
        "pairs": pairs,
        "seconds": seconds,
        "compile_seconds": compile_s,
        "pairs_per_second": rate,
        "devices": len(devices),
        "platform": platform,
        "chunk_size": chunk,
        "spot_check_max_rel": worst,
        "best": best,
        "dataset": ds,
    }


if __name__ == "__main__":
    main()
