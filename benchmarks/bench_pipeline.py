"""Benchmark of the full pipeline: compute-optimal allocation + TCO bands, JAX vs NumPy.

For ``--draws`` posterior draws x ``--scenarios`` scenarios, each scenario a (FLOP budget C,
lifetime query volume Q) pair, computes per draw and scenario

    N* = G (C/6)^a,  D* = G^-1 (C/6)^b,  L(N*, D*),
    TCO dollars = price [6 N* D* / (3600 P U_train) + 2 N* Q (T_in/U_prefill + T_out/U_decode) / (3600 P)]

and reduces over the draws to 5/50/95% bands of the four outputs, by

  (jax)   ``chinplan.bands`` with the per-point function :func:`plan_and_cost` (float32, the
          library's kernels: ``compute_optimal`` + ``tco``; bitonic-network quantiles);
  (numpy) a straightforward vectorised NumPy float64 implementation of the same maths, in
          chunks of scenarios (draws x chunk arrays), bands by ``np.partition`` at the order
          statistics that linear-interpolated quantiles need.

NumPy runs on ``--numpy-scenarios`` scenarios (a prefix of the same scenarios) and its time is
scaled linearly to the full count (its cost is linear in the scenario count: fixed chunk size,
no cross-chunk work); the two are compared value for value on that prefix. JAX compilation is
reported separately (first call) and excluded from the ratio (second call, new values of the
same shapes, no recompilation). Run::

    python benchmarks/bench_pipeline.py --draws 1000 --scenarios 1000000 --numpy-scenarios 20000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import chinplan
from chinplan.costs import H100_SXM, Deployment

Q = (0.05, 0.5, 0.95)
INPUT_TOKENS, OUTPUT_TOKENS = 400.0, 100.0
DEPLOYMENT = dict(peak_flops=H100_SXM.bf16, mfu_train=0.4, mfu_prefill=0.5, mfu_decode=0.1, price=2.0)


def plan_and_cost(theta: chinplan.LawParams, compute, queries):
    """Per draw, per scenario: the Chinchilla plan for ``compute`` and its TCO at ``queries``."""
    plan = chinplan.compute_optimal(theta, compute)
    deployment = Deployment(queries=queries, input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS, **DEPLOYMENT)
    return {"n": plan.n, "d": plan.d, "loss": plan.loss, "dollars": chinplan.tco(plan.n, plan.d, deployment).dollars}


def make_scenarios(n_scenarios: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Budgets log-uniform in [1e20, 1e26] FLOPs and query volumes log-uniform in [1e7, 1e11]."""
    rng = np.random.default_rng(seed)
    compute = 10.0 ** rng.uniform(20, 26, n_scenarios)
    queries = 10.0 ** rng.uniform(7, 11, n_scenarios)
    return compute, queries


def make_draws(n_draws: int) -> chinplan.LawParams:
    """``n_draws`` draws of chinplan's shipped posterior (cycled if more are asked for)."""
    post = chinplan.default_posterior().params
    idx = np.arange(n_draws) % np.asarray(post.E).shape[0]
    return chinplan.LawParams(*(np.asarray(p, dtype=np.float32)[idx] for p in post))


def numpy_pipeline(params, compute, queries, chunk: int = 1000) -> dict[str, np.ndarray]:
    """The same maths in float64 NumPy, vectorised over draws x chunk, bands by partition."""
    E, A, B, alpha, beta = (np.asarray(p, dtype=np.float64)[:, None] for p in params)
    n_draws = E.shape[0]
    positions = np.asarray(Q) * (n_draws - 1)
    lo = np.floor(positions).astype(int)
    hi = np.minimum(lo + 1, n_draws - 1)
    kth = np.unique(np.concatenate([lo, hi]))
    weight = positions - lo
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    peak, mfu, price = DEPLOYMENT["peak_flops"], DEPLOYMENT["mfu_train"], DEPLOYMENT["price"]
    per_token_s = INPUT_TOKENS / DEPLOYMENT["mfu_prefill"] + OUTPUT_TOKENS / DEPLOYMENT["mfu_decode"]
    out = {k: np.empty((len(Q), compute.size)) for k in ("n", "d", "loss", "dollars")}
    for start in range(0, compute.size, chunk):
        c = compute[None, start : start + chunk]
        qv = queries[None, start : start + chunk]
        n = G * (c / 6.0) ** a
        d = (c / 6.0) ** b / G
        loss = E + A / n**alpha + B / d**beta
        dollars = price * (6.0 * n * d / (3600.0 * peak * mfu) + 2.0 * n * qv * per_token_s / (3600.0 * peak))
        for name, y in (("n", n), ("d", d), ("loss", loss), ("dollars", dollars)):
            part = np.partition(y, kth, axis=0)
            out[name][:, start : start + chunk] = part[lo] * (1 - weight[:, None]) + part[hi] * weight[:, None]
    return out


def jax_pipeline(params, compute, queries, chunk_size=None):
    result = chinplan.bands(plan_and_cost, params, compute, queries, q=Q, chunk_size=chunk_size, progress=False)
    return jax.block_until_ready(result.values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--scenarios", type=int, default=1_000_000)
    parser.add_argument("--numpy-scenarios", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    params = make_draws(args.draws)
    compute, queries = make_scenarios(args.scenarios)
    pairs = args.draws * args.scenarios
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} cpus, {platform.processor() or platform.machine()}), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{args.draws} draws x {args.scenarios} scenarios = {pairs:.3g} pairs, 4 outputs, q={Q}")

    start = time.perf_counter()
    jax_pipeline(params, compute, queries, args.chunk_size)
    first = time.perf_counter() - start
    compute2, queries2 = make_scenarios(args.scenarios, seed=2)  # new values, same shapes
    start = time.perf_counter()
    ours = jax_pipeline(params, compute2, queries2, args.chunk_size)
    warm = time.perf_counter() - start

    m = min(args.numpy_scenarios, args.scenarios)
    start = time.perf_counter()
    theirs = numpy_pipeline(params, compute2[:m], queries2[:m])
    numpy_s = time.perf_counter() - start
    numpy_full = numpy_s * args.scenarios / m

    rel = max(float(np.max(np.abs(np.asarray(ours[k])[:, :m] - theirs[k]) / np.abs(theirs[k]))) for k in theirs)
    figures = {
        "draws": args.draws, "scenarios": args.scenarios, "pairs": pairs,
        "jax_first_call_s": first, "jax_warm_s": warm, "jax_pairs_per_s": pairs / warm,
        "numpy_measured_scenarios": m, "numpy_measured_s": numpy_s, "numpy_extrapolated_s": numpy_full,
        "speedup_warm": numpy_full / warm, "speedup_with_compile": numpy_full / first,
        "max_rel_diff_vs_numpy_float64": rel, "load_average": os.getloadavg()[0],
    }
    print(f"jax (chinplan.bands)  first call {first:8.2f} s   warm {warm:8.2f} s   {pairs / warm:.3g} pairs/s")
    print(f"numpy float64         {numpy_s:8.2f} s on {m} scenarios -> {numpy_full:8.1f} s for {args.scenarios}")
    print(f"speed-up warm {numpy_full / warm:.1f}x, with compilation {numpy_full / first:.1f}x; "
          f"max relative difference vs float64 {rel:.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
