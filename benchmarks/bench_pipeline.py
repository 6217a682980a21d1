"""Benchmark of the full pipeline: compute-optimal allocation + TCO bands, JAX vs NumPy.

For ``--draws`` posterior draws x ``--scenarios`` scenarios, each scenario a (FLOP budget C,
lifetime query volume Q) pair, computes per draw and scenario

    N* = G (C/6)^a,  D* = G^-1 (C/6)^b,  L(N*, D*),
    TCO dollars = price [6 N* D* / (3600 P U_train) + 2 N* Q (T_in/U_prefill + T_out/U_decode) / (3600 P)]

and reduces over the draws to 5/50/95% bands of the four outputs, by

  bands   ``chinplan.bands`` with the per-point function :func:`plan_and_cost` (float32, the
          library's kernels ``compute_optimal`` + ``tco``; exact bitonic-network quantiles);
  mean    ``chinplan.expectation`` of the same function (the evaluation with a cheap
          reduction: the floor under ``bands``);
  plain   what a user writes: the maths vectorised in float64 NumPy over (draws x 1,000
          scenarios) chunks, bands by ``np.quantile`` (linear method);
  strong  a tuned NumPy: the same log/exp maths as chinplan in float32, draws on the last
          (contiguous) axis, one ``np.partition`` per output with all the order statistics
          interpolation needs, chunks of scenarios spread over ``--threads`` threads.

The NumPy baselines run on ``--numpy-scenarios`` (a prefix of the same scenarios) and are
scaled linearly to the full count (fixed chunk size, no cross-chunk work); they are compared
value for value with chinplan on that prefix. JAX compilation is reported apart (first call)
and excluded from the ratios. The methods run interleaved, ``--repeats`` rounds, and the
median wall and CPU time (all threads of the process) of each is reported. Run::

    python benchmarks/bench_pipeline.py --draws 1000 --scenarios 200000 --numpy-scenarios 20000 --repeats 5
"""

from __future__ import annotations

import os
import sys

if "--host-devices" in sys.argv:  # before JAX starts: XLA reads its flags once
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={sys.argv[sys.argv.index('--host-devices') + 1]}"

import argparse
import json
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import jax
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
    """The plain baseline: the maths in float64 NumPy over draws x chunk, bands by np.quantile."""
    E, A, B, alpha, beta = (np.asarray(p, dtype=np.float64)[:, None] for p in params)
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
            out[name][:, start : start + chunk] = np.quantile(y, Q, axis=0)
    return out


def strong_numpy_pipeline(params, compute, queries, chunk: int = 1000, threads: int = 2) -> dict[str, np.ndarray]:
    """The strong baseline: float32 log/exp maths, draws last, one partition, threads."""
    f32 = np.float32
    E, A, B, alpha, beta = (np.asarray(p, dtype=f32)[None, :] for p in params)
    log_a, log_b = np.log(A), np.log(B)
    s = alpha + beta
    log_g = (np.log(alpha) + log_a - np.log(beta) - log_b) / s
    ea, eb = beta / s, alpha / s
    n_draws = E.shape[1]
    positions = np.asarray(Q) * (n_draws - 1)
    lo = np.floor(positions).astype(int)
    hi = np.minimum(lo + 1, n_draws - 1)
    kth = np.unique(np.concatenate([lo, hi]))
    weight = (positions - lo).astype(f32)
    peak, mfu, price = DEPLOYMENT["peak_flops"], DEPLOYMENT["mfu_train"], DEPLOYMENT["price"]
    per_token_s = INPUT_TOKENS / DEPLOYMENT["mfu_prefill"] + OUTPUT_TOKENS / DEPLOYMENT["mfu_decode"]
    log_train = f32(np.log(6.0 * price / (3600.0 * peak * mfu)))
    log_serve = f32(np.log(2.0 * price * per_token_s / (3600.0 * peak)))
    log_c6 = (np.log(compute) - np.log(6.0)).astype(f32)[:, None]
    log_q = np.log(queries).astype(f32)[:, None]
    out = {k: np.empty((len(Q), compute.size), f32) for k in ("n", "d", "loss", "dollars")}

    def work(start: int) -> None:
        c6, lq = log_c6[start : start + chunk], log_q[start : start + chunk]
        log_n = log_g + ea * c6
        log_d = eb * c6 - log_g
        loss = E + np.exp(log_a - alpha * log_n) + np.exp(log_b - beta * log_d)
        dollars = np.exp(log_train + log_n + log_d) + np.exp(log_serve + log_n + lq)
        for name, y in (("n", np.exp(log_n)), ("d", np.exp(log_d)), ("loss", loss), ("dollars", dollars)):
            part = np.partition(y, kth, axis=1)
            out[name][:, start : start + chunk] = (part[:, lo] * (1 - weight) + part[:, hi] * weight).T

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(0, compute.size, chunk)))
    return out


def jax_pipeline(params, compute, queries, chunk_size=None):
    result = chinplan.bands(plan_and_cost, params, compute, queries, q=Q, chunk_size=chunk_size, progress=False)
    return jax.block_until_ready(result.values)


def jax_mean(params, compute, queries, chunk_size=None):
    result = chinplan.expectation(plan_and_cost, params, compute, queries, chunk_size=chunk_size, progress=False)
    return jax.block_until_ready(result)


def timed(run) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def max_rel(ours, theirs, m: int) -> float:
    return max(float(np.max(np.abs(np.asarray(ours[k])[:, :m] - theirs[k]) / np.abs(theirs[k]))) for k in theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--scenarios", type=int, default=200_000)
    parser.add_argument("--numpy-scenarios", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="threads of the strong NumPy baseline")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--host-devices", type=int, default=None,
                        help="split chinplan's chunks over this many CPU devices (sets XLA_FLAGS for this run)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    params = make_draws(args.draws)
    compute, queries = make_scenarios(args.scenarios)
    pairs = args.draws * args.scenarios
    m = min(args.numpy_scenarios, args.scenarios)
    scale = args.scenarios / m
    load_before = os.getloadavg()[0]
    print(f"jax {jax.__version__} on {jax.device_count()} {jax.devices()[0].platform} device(s) ({os.cpu_count()} cpus, {platform.processor() or platform.machine()}), "
          f"load average {load_before:.1f}")
    print(f"{args.draws} draws x {args.scenarios} scenarios = {pairs:.3g} pairs, 4 outputs, q={Q}; "
          f"NumPy on {m} scenarios, scaled x{scale:g}; median of {args.repeats} interleaved rounds")

    first, _, _ = timed(lambda: jax_pipeline(params, compute, queries, args.chunk_size))
    first_mean, _, _ = timed(lambda: jax_mean(params, compute, queries, args.chunk_size))
    compute, queries = make_scenarios(args.scenarios, seed=2)  # new values, same shapes
    methods = {
        "chinplan bands": (lambda: jax_pipeline(params, compute, queries, args.chunk_size), 1.0),
        "chinplan expectation": (lambda: jax_mean(params, compute, queries, args.chunk_size), 1.0),
        "NumPy plain (float64, np.quantile)": (lambda: numpy_pipeline(params, compute[:m], queries[:m]), scale),
        f"NumPy strong (float32, partition, {args.threads} thr)": (
            lambda: strong_numpy_pipeline(params, compute[:m], queries[:m], threads=args.threads), scale),
    }
    wall = {k: [] for k in methods}
    cpu = {k: [] for k in methods}
    outputs = {}
    for _ in range(args.repeats):
        for name, (run, factor) in methods.items():
            w, c, outputs[name] = timed(run)
            wall[name].append(w * factor)
            cpu[name].append(c * factor)
    med = {k: float(np.median(v)) for k, v in wall.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    names = list(methods)
    bands_s, plain_s, strong_s = med[names[0]], med[names[2]], med[names[3]]
    print(f"\n{'method':44s} {'wall s':>8s} {'cpu s':>8s} {'Mpairs/s':>9s}")
    for name in names:
        print(f"{name:44s} {med[name]:8.2f} {med_cpu[name]:8.2f} {pairs / med[name] / 1e6:9.1f}")
    print(f"first calls (compilation included): bands {first:.2f} s, expectation {first_mean:.2f} s")
    print(f"bands vs plain NumPy {plain_s / bands_s:.2f}x, vs strong NumPy {strong_s / bands_s:.2f}x; "
          f"bands / expectation {bands_s / med[names[1]]:.2f}")
    rel_plain = max_rel(outputs[names[0]], outputs[names[2]], m)
    rel_strong = max_rel(outputs[names[0]], outputs[names[3]], m)
    print(f"max relative difference of chinplan vs plain (float64) {rel_plain:.2e}, vs strong (float32) {rel_strong:.2e}")
    print(f"load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}")
    figures = {
        "draws": args.draws, "scenarios": args.scenarios, "pairs": pairs, "numpy_scenarios": m,
        "jax_devices": jax.device_count(),
        "repeats": args.repeats, "wall_s": med, "cpu_s": med_cpu, "bands_first_call_s": first,
        "speedup_vs_plain": plain_s / bands_s, "speedup_vs_strong": strong_s / bands_s,
        "bands_over_expectation": bands_s / med[names[1]], "max_rel_vs_plain": rel_plain,
        "max_rel_vs_strong": rel_strong, "load_average": [load_before, os.getloadavg()[0]],
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
