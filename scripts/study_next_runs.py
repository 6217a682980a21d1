"""Does next_runs buy better pilot runs? A simulation study with known constants (docs/DESIGN_OF_RUNS.md).

    python scripts/study_next_runs.py [--out docs/next_runs_study.json] [--docs] [--repeats R]   (from the repository root)

Truth: Besiroglu et al. 2024's constants with Normal noise of 0.01 in log loss. Each repeat
simulates a starting ladder (isoFLOP slices at 1e17, 3e17 and 1e18 FLOPs, five sizes each),
fits it, then spends the same pilot budget (3 runs, 1e20 FLOPs in all) three ways:

* ``next_runs``: :func:`chinplan.decide.design.next_runs` with ``k=3`` (law uncertainty: the fits
  here skip the extrapolation refits to keep the study short);
* ``isoflop``: one isoFLOP slice of three runs at a third of the budget each, at the fitted
  median N* and half a decade either side (the standard practice);
* ``random``: three candidates of the default grid drawn at random among those costing a
  third to all of a third of the budget (so it spends about as much).

The runs' outcomes are simulated from the truth, the ladder is refitted with them, and the
90% band of N* at 1e24 FLOPs is measured: its width (decades) and whether it holds the true
N*. For every repeat it also checks :func:`chinplan.decide.design.reweight` against the refit:
the reweighted band of the ``next_runs`` batch beside the refitted one.
"""

from __future__ import annotations

import time
import warnings

import jax
import numpy as np
import pandas as pd

import chinplan
from chinplan.decide import design
from chinplan.engine import kernels
from run_backtests import study_main

TRUTH = chinplan.BESIROGLU_2024
NOISE = 0.01
TARGET, BUDGET, K = 1e24, 1e20, 3


def simulate(n, d, rng):
    mean = np.log(np.asarray(chinplan.loss(TRUTH, np.asarray(n, np.float64), np.asarray(d, np.float64)), np.float64))
    return np.exp(mean + NOISE * rng.standard_normal(np.shape(n)))


def ladder(rng):
    n, d = [], []
    for c in (1e17, 3e17, 1e18):
        centre = (np.log10(c) - np.log10(120.0)) / 2  # N* at 20 tokens per parameter
        sizes = np.logspace(centre - 0.5, centre + 0.5, 5)
        n += list(sizes)
        d += list(c / (6 * sizes))
    n, d = np.array(n), np.array(d)
    return pd.DataFrame({"params": n, "tokens": d, "loss": simulate(n, d, rng)})


def nstar_band(posterior, weights=None):
    theta = posterior.extrapolated_params("law")
    log_n = np.log10(np.asarray(jax.vmap(lambda th: kernels.plan(th, TARGET)["n"])(theta), np.float64))
    if weights is None:
        return np.quantile(log_n, [0.05, 0.5, 0.95])
    order = np.argsort(log_n)
    cum = np.cumsum(weights[order])
    return log_n[order][np.searchsorted(cum, [0.05, 0.5, 0.95])]


def run(seed: int, repeats: int = 8) -> dict:
    true_log_n = float(np.log10(chinplan.compute_optimal(TRUTH, TARGET).n))
    rows, checks, start_converged = [], [], []
    start = time.perf_counter()
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        runs = ladder(rng)
        key = jax.random.key(seed * 1000 + r)
        with warnings.catch_warnings():  # every fit is kept and its convergence counted in the table
            warnings.simplefilter("ignore", chinplan.ConvergenceWarning)
            post = chinplan.fit(runs, key=key, extrapolation=False, progress=False, allow_unconverged=True)
        start_converged.append(not post.convergence_problems())
        med = np.median(np.log10(np.asarray(jax.vmap(lambda th: kernels.plan(th, BUDGET / K)["n"])(post.extrapolated_params("law")))))
        grid_n, grid_d = design.candidate_grid(post, BUDGET)
        picks = design.next_runs(post, target=TARGET, budget=BUDGET, k=K, key=key, uncertainty="law").chosen
        iso_n = 10.0 ** (med + np.array([-0.5, 0.0, 0.5]))
        iso = pd.DataFrame({"params": iso_n, "tokens": BUDGET / K / (6 * iso_n)})
        cost = 6 * grid_n * grid_d  # random runs of comparable cost: a third to all of their share
        affordable = np.flatnonzero((cost <= BUDGET / K * (1 + 1e-9)) & (cost >= BUDGET / K / 3))
        chosen = rng.choice(affordable, K, replace=False)
        rand = pd.DataFrame({"params": grid_n[chosen], "tokens": grid_d[chosen]})
        before = nstar_band(post)
        for name, batch in (("next_runs", picks[["params", "tokens"]]), ("isoflop", iso), ("random", rand)):
            batch = batch.assign(loss=simulate(batch["params"].to_numpy(), batch["tokens"].to_numpy(), rng))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", chinplan.ConvergenceWarning)
                refit = chinplan.fit(pd.concat([runs, batch], ignore_index=True), key=key, extrapolation=False, progress=False, allow_unconverged=True)
            lo, mid, hi = nstar_band(refit)
            rows.append({"repeat": r, "strategy": name, "flops": float((6 * batch.params * batch.tokens).sum()), "width_before": float(before[2] - before[0]),
                         "width_after": float(hi - lo), "covers": bool(lo <= true_log_n <= hi), "median_error": float(mid - true_log_n),
                         "converged": not refit.convergence_problems()})  # fmt: skip
            print(rows[-1], flush=True)
            if name == "next_runs":
                w = design.reweight(post, batch.params, batch.tokens, batch.loss, uncertainty="law")
                checks.append({"reweighted": [float(x) for x in nstar_band(post, w)], "refit": [float(lo), float(mid), float(hi)],
                               "ess": float(1.0 / np.sum(w**2)), "num_draws": post.num_draws})  # fmt: skip
    frame = pd.DataFrame(rows)
    summary = frame.groupby("strategy").agg(width_after=("width_after", "mean"), width_sd=("width_after", "std"), covers=("covers", "mean"),
                                             flops=("flops", "mean"), width_before=("width_before", "mean")).reset_index()  # fmt: skip
    return {"rows": rows, "summary": summary.to_dict("records"), "checks": checks, "true_log10_nstar": true_log_n,
            "start_converged": start_converged,
            "repeats": repeats, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def render(results: dict) -> str:
    lines = ["| strategy | FLOPs spent | 90% N* band before (decades) | after: mean (sd) | holds the true N* |", "|---|---|---|---|---|"]
    for s in results["summary"]:
        lines.append(f"| {s['strategy']} | {s['flops']:.2g} | {s['width_before']:.3f} | {s['width_after']:.3f} ({s['width_sd']:.3f}) | "
                     f"{round(s['covers'] * results['repeats'])} of {results['repeats']} |")  # fmt: skip
    lines += ["", "Reweighting the starting posterior with the next_runs batch's simulated outcomes (no refit) against",
              "refitting with them, per repeat (log10 N* at 1e24 FLOPs, 5/50/95%):", "",
              "| repeat | ESS of the weights | reweighted | refitted |", "|---|---|---|---|"]
    for r, c in enumerate(results["checks"]):
        lines.append(f"| {r} | {c['ess']:.0f} of {c['num_draws']} | {' / '.join(f'{x:.3f}' for x in c['reweighted'])} | "
                     f"{' / '.join(f'{x:.3f}' for x in c['refit'])} |")  # fmt: skip
    refits = [row.get("converged", True) for row in results["rows"]]
    starts = results.get("start_converged", [])
    lines += ["", f"{results['repeats']} repeats; wall time {results['seconds']:.0f} s (2-core CPU). Fits that failed the "
              f"convergence gate (kept, counted): {len(starts) - sum(starts)} of {len(starts)} starting fits, "
              f"{len(refits) - sum(refits)} of {len(refits)} refits."]
    return "\n".join(lines)


if __name__ == "__main__":
    study_main(__doc__, "docs/next_runs_study.json", "next-runs", run, render, path="docs/DESIGN_OF_RUNS.md")
