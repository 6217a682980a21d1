"""Benchmark of the Huber multi-start fit and bootstrap (chinplan.huber).

(a) the vmapped L-BFGS fit (chinplan.inference.huber.huber_fit: optax.scale_by_lbfgs directions,
    Armijo backtracking, a queue of ``--lanes`` solves) over Hoffmann et al.'s 4,500-start
    grid, first call (with compilation) and second call;
(b) a plain SciPy L-BFGS-B loop (float64 NumPy objective and analytic gradient, the same
    summed Huber objective) over the same starts, on the full grid or on an evenly spaced
    subset (``--scipy-every K``), in which case the total is extrapolated and labelled so;
(c) the bootstrap of ``--resamples`` resamples (4,000 by default).

Example:
    python benchmarks/bench_huber.py                      # everything, full SciPy grid
    python benchmarks/bench_huber.py --scipy-every 10     # SciPy on every 10th start
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.optimize
import scipy.special

import chinplan
from chinplan.inference import huber as H


def load_runs(drop_top: int):
    """(N, D, L) of the embedded runs, D = C/(6N), without the ``drop_top`` highest losses."""
    df = pd.read_csv(Path(chinplan.__file__).parent / "datasets" / "svg_extracted_data.csv")
    n = df["Model Size"].to_numpy(np.float64)
    d = df["Training FLOP"].to_numpy(np.float64) / (6.0 * n)
    loss = df["loss"].to_numpy(np.float64)
    keep = loss < np.sort(loss)[-drop_top] if drop_top else np.ones(len(loss), bool)
    return n[keep], d[keep], loss[keep]


def np_objective(theta, log_n, log_d, log_l, delta):
    """float64 sum_i Huber_delta(LSE(e, a - alpha log N_i, b - beta log D_i) - log L_i) and gradient."""
    e, a, b, alpha, beta = theta
    terms = np.stack([np.full_like(log_n, e), a - alpha * log_n, b - beta * log_d])
    pred = scipy.special.logsumexp(terms, axis=0)
    p = np.exp(terms - pred)
    r = pred - log_l
    g = np.clip(r, -delta, delta)
    grad = np.array([g @ p[0], g @ p[1], g @ p[2], -(g * p[1]) @ log_n, -(g * p[2]) @ log_d])
    return np.sum(scipy.special.huber(delta, r)), grad


def scipy_loop(starts, n, d, loss, delta):
    """SciPy L-BFGS-B (default tolerances) from each start in turn; returns (objectives, thetas)."""
    args = (np.log(n), np.log(d), np.log(loss), delta)
    out_f, out_x = [], []
    with np.errstate(all="ignore"):
        for s in starts:
            res = scipy.optimize.minimize(np_objective, s, args=args, jac=True, method="L-BFGS-B")
            out_f.append(res.fun)
            out_x.append(res.x)
    return np.asarray(out_f), np.asarray(out_x)


def timed(fn):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t


def fmt(theta):
    p = [float(x) for x in H.theta_to_params(jnp.asarray(theta))]
    return "E={:.4f} A={:.2f} B={:.2f} alpha={:.4f} beta={:.4f}".format(*p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drop-top", type=int, default=5, help="drop the K highest-loss runs (Besiroglu: 5)")
    ap.add_argument("--scipy-every", type=int, default=1, help="time SciPy on every K-th grid start (1: all)")
    ap.add_argument("--skip-scipy", action="store_true")
    ap.add_argument("--resamples", type=int, default=4000)
    ap.add_argument("--skip-bootstrap", action="store_true")
    ap.add_argument("--lanes", type=int, default=256, help="solves in flight (num_lanes)")
    ap.add_argument("--num-starts", type=int, default=1, help="distinct full-data optima per resample")
    ap.add_argument("--max-iter", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    n, d, loss = load_runs(args.drop_top)
    delta = 1e-3
    kw = {} if args.max_iter is None else dict(max_iter=args.max_iter)
    rec = dict(runs=int(len(n)), backend=jax.default_backend(), devices=str(jax.devices()),
               cpu_count=__import__("os").cpu_count(), python=platform.python_version(),
               jax=jax.__version__, dtype=str(jnp.result_type(float)))
    print(f"{len(n)} runs, backend {rec['backend']}, dtype {rec['dtype']}")

    # (a) vmapped multi-start fit.
    fit, t_first = timed(lambda: H.huber_fit(n, d, loss, delta=delta, num_lanes=args.lanes, **kw))
    fit, t_warm = timed(lambda: H.huber_fit(n, d, loss, delta=delta, num_lanes=args.lanes, **kw))
    obj = np.asarray(fit.all_objectives)
    rec.update(vmapped_first_call_s=t_first, vmapped_warm_s=t_warm, best_objective=float(fit.objective),
               best_theta=np.asarray(fit.theta).tolist(), best_start=int(fit.best_index),
               best_evals=int(fit.num_iter),
               starts_within_1em5_of_best=int(np.sum(obj <= float(fit.objective) * (1 + 1e-5))))
    print(f"(a) vmapped 4500 starts: first call {t_first:.2f} s (with compilation), warm {t_warm:.2f} s")
    print(f"    best J={float(fit.objective):.8g} from start {int(fit.best_index)}: {fmt(fit.theta)}")

    # (b) SciPy loop.
    if not args.skip_scipy:
        starts = np.asarray(H.hoffmann_grid(), np.float64)[:: args.scipy_every]
        (f_sp, x_sp), t_sp = timed(lambda: scipy_loop(starts, n, d, loss, delta))
        per = t_sp / len(starts)
        total = per * 4500
        i = int(np.nanargmin(f_sp))
        rec.update(scipy_starts=int(len(starts)), scipy_s=t_sp, scipy_per_start_s=per,
                   scipy_total_4500_s=total, scipy_total_is_extrapolated=bool(len(starts) < 4500),
                   scipy_best_objective=float(f_sp[i]), scipy_best_theta=x_sp[i].tolist(),
                   speedup_warm=total / t_warm, speedup_first_call=total / t_first)
        label = "measured" if len(starts) == 4500 else f"EXTRAPOLATED from {len(starts)} evenly spaced starts"
        print(f"(b) SciPy L-BFGS-B: {t_sp:.2f} s for {len(starts)} starts, {per * 1e3:.2f} ms/start; "
              f"4500 starts: {total:.1f} s ({label})")
        print(f"    best J={f_sp[i]:.8g}: {fmt(x_sp[i])}")
        print(f"    speed-up of vmapped (warm) over SciPy: {total / t_warm:.1f}x; with compilation {total / t_first:.1f}x")

    # (c) bootstrap.
    if not args.skip_bootstrap:
        boot, t_b = timed(lambda: H.huber_bootstrap(
            n, d, loss, key=jax.random.key(0), num_resamples=args.resamples, fit=fit,
            num_starts=args.num_starts, num_lanes=args.lanes, **kw))
        boot2, t_b2 = timed(lambda: H.huber_bootstrap(
            n, d, loss, key=jax.random.key(1), num_resamples=args.resamples, fit=fit,
            num_starts=args.num_starts, num_lanes=args.lanes, **kw))
        names = ["E", "A", "B", "alpha", "beta"]
        pct = np.asarray(boot.percentiles)
        q = [float(x) for x in boot.quantiles]
        rec.update(bootstrap_resamples=args.resamples, bootstrap_first_call_s=t_b, bootstrap_warm_s=t_b2,
                   bootstrap_max_evals=int(np.max(boot.num_iter)), bootstrap_mean_evals=float(np.mean(boot.num_iter)),
                   bootstrap_percentiles={nm: dict(zip(map(str, q), pct[:, j].tolist())) for j, nm in enumerate(names)})
        print(f"(c) bootstrap {args.resamples} resamples: first call {t_b:.2f} s (with compilation), "
              f"second call (new key) {t_b2:.2f} s")
        for j, nm in enumerate(names):
            print(f"    {nm:>5}: " + "  ".join(f"q{qq:g}={pct[k, j]:.4g}" for k, qq in enumerate(q)))
    if args.json:
        args.json.write_text(json.dumps(rec, indent=2))


if __name__ == "__main__":
    main()
