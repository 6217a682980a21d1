"""Benchmark of chinplan.decide.design.next_runs (issue 15): 1,000 candidates x 64 outcomes x 4,000 draws.

(a) chinplan: ``next_runs`` on the default posterior, first call (compilation included) and
    second call (another key: no recompilation);
(b) NumPy/SciPy float64 baseline of the same per-candidate work (Student-t log-likelihood of
    64 outcomes under 4,000 draws, weights, weighted 5/95% quantiles of log10 N*), timed on
    ``--baseline-candidates`` candidates and scaled to all of them (labelled so).

    python benchmarks/bench_design.py
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np
from scipy import stats

import chinplan
from chinplan.decide import design
from chinplan.engine import kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-candidates", type=int, default=20)
    args = parser.parse_args()
    post = chinplan.default_posterior()
    n, d = design.candidate_grid(post, 1e21, num_compute=40, num_sizes=30)
    n, d = n[:1000], d[:1000]
    times = []
    for seed in (0, 1):
        start = time.perf_counter()
        design.next_runs(post, target=1e24, budget=1e21, candidates=(n, d), key=jax.random.key(seed), num_outcomes=64)
        times.append(time.perf_counter() - start)
    # baseline
    theta = post.extrapolated_params()
    log_nstar = np.log10(np.asarray(jax.vmap(lambda th: kernels.plan(th, 1e24)["n"])(theta), np.float64))
    order = np.argsort(log_nstar)
    mean, rep = post.sample_log_loss(np.log(n[: args.baseline_candidates]), np.log(d[: args.baseline_candidates]), key=jax.random.key(0))
    sigma, nu = post.draws("sigma").astype(np.float64), post.draws("nu").astype(np.float64)
    truth = np.random.default_rng(0).choice(post.num_draws, 64, replace=False)
    start = time.perf_counter()
    for c in range(args.baseline_candidates):
        logw = stats.t.logpdf(rep[truth, c][:, None], df=nu[None], loc=mean[None, :, c], scale=sigma[None])
        w = np.exp(logw - logw.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        cum = np.cumsum(w[:, order], axis=1)
        lo = log_nstar[order][np.argmax(cum >= 0.05, axis=1)]
        hi = log_nstar[order][np.argmax(cum >= 0.95, axis=1)]
        _ = np.mean(hi - lo)
    baseline = (time.perf_counter() - start) * len(n) / args.baseline_candidates
    print(f"machine: {platform.processor() or platform.machine()}, {jax.device_count()} JAX device(s), jax {jax.__version__}")
    print(f"candidates x outcomes x draws: {len(n)} x 64 x {post.num_draws}")
    print(f"chinplan next_runs: first call {times[0]:.1f} s (compilation included), second call {times[1]:.1f} s")
    print(f"NumPy/SciPy float64 baseline: {baseline:.1f} s (timed on {args.baseline_candidates} candidates, scaled)")
    print(f"speed-up of the second call: {baseline / times[1]:.1f}x")


if __name__ == "__main__":
    main()
