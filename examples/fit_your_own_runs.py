"""Fit the scaling law to your own training runs, check the fit, and keep the posterior.

The question
    You have a table of small training runs (parameters N, tokens D or FLOPs C, final
    loss) and want the law L(N, D) = E + A/N^alpha + B/D^beta behind them, with honest
    uncertainty, to plan a larger run. How well do the runs pin the constants down, does
    the sampler converge, does a classical fit agree, and how do you reuse the result?

The method
    1. Runs: with no ``--runs`` file, a synthetic IsoFLOP sweep is simulated from known
       constants (Besiroglu et al. 2024 by default): at each of a few budgets C, model
       sizes from 1/8 to 8 times the compute-optimal N, D = C / (6N), log-normal noise on
       the loss and a few runs pushed far off the law (like the digitised Chinchilla
       outliers). It is written to a CSV with columns ``params``, ``flops``, ``loss``;
       ``chinplan.load_runs`` validates it and derives ``tokens`` = C / (6N). (Aliases such
       as ``N``, ``D``, ``C``, ``Model Size``, ``Training FLOP`` are accepted.)
    2. ``chinplan.fit`` runs NUTS (numpyro, dense mass matrix) on a Student-t likelihood
       for log loss, robust to the outliers, and returns a ``Posterior``.
    3. Diagnostics: R-hat (needs two or more chains), bulk and tail ESS, divergences;
       ``chinplan.ConvergenceWarning`` is raised by ``fit`` when a check fails.
    4. ``chinplan.huber_fit``: the classical Huber-loss multi-start L-BFGS fit of Hoffmann
       et al. 2022 (Approach 3), and optionally its bootstrap (Besiroglu et al. 2024), as a
       frequentist cross-check.
    5. ``Posterior.save`` / ``Posterior.load``: a NetCDF file carrying the draws and their
       provenance (data hash, priors, seed), ready for ``chinplan plan --posterior FILE``
       or any other example's ``--posterior`` option.
    6. The compute-optimal plan at a larger budget from the fitted posterior, against the
       plan of the true constants.

How to read the output
    The constants table shows the truth (when simulated), the posterior median with its
    90% interval, the Huber point fit and, if asked, the bootstrap 90% interval. The
    exponents alpha and beta and the plan are what matter for planning; A and B are
    strongly correlated with them and wander more on their own. R-hat <= 1.01 and bulk
    ESS >= 400 with no divergences mean the sampler can be trusted; ``--small`` runs too
    short a chain to pass these checks and says so.

Run::

    python examples/fit_your_own_runs.py                     # simulate, fit 2 chains x 1000 draws
    python examples/fit_your_own_runs.py --runs my_runs.csv --out results/
    python examples/fit_your_own_runs.py --small             # tiny NUTS run, for tests
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings

import jax
import numpy as np
import pandas as pd

import chinplan as cp
from chinplan.format import human_count as count
from chinplan.format import say

NAMES = ("E", "A", "B", "alpha", "beta")


def simulate_runs(truth: cp.LawParams, *, seed: int, budgets: int, sizes: int, noise: float, outliers: int) -> pd.DataFrame:
    """An IsoFLOP sweep: ``sizes`` model sizes at each of ``budgets`` budgets from 1e18 to 1e21 FLOPs.

    Sizes span 1/8 to 8 times the true compute-optimal N at each budget; the loss is the
    true law times exp(noise x z), z ~ N(0, 1), and the first ``outliers`` runs have their
    log loss raised by 0.1.
    """
    rng = np.random.default_rng(seed)
    compute = np.logspace(18, 21, budgets)
    n_opt = np.asarray(cp.compute_optimal(truth, compute).n, np.float64)
    factors = np.logspace(np.log10(1 / 8), np.log10(8), sizes)
    n = (n_opt[:, None] * factors[None, :]).reshape(-1)
    c = np.repeat(compute, sizes)
    d = c / (6.0 * n)
    E, A, B, alpha, beta = (float(x) for x in truth)
    log_loss = np.log(E + A * n**-alpha + B * d**-beta) + noise * rng.standard_normal(n.size)
    log_loss[rng.choice(n.size, size=outliers, replace=False)] += 0.1
    return pd.DataFrame({"params": n, "flops": c, "loss": np.exp(log_loss)})


def fmt(x) -> str:
    x = float(x)
    return f"{x:.4f}" if abs(x) < 10 else f"{x:.1f}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", metavar="CSV", help="your runs (default: simulate a sweep and write it to --out)")
    p.add_argument("--out", metavar="DIR", help="folder for the CSV and posterior (default: a new temporary folder)")
    p.add_argument("--truth", default="besiroglu2024", choices=sorted(cp.PRESETS), help="constants to simulate from")
    p.add_argument("--budgets", type=int, default=6, help="IsoFLOP budgets to simulate")
    p.add_argument("--sizes", type=int, default=12, help="model sizes per budget")
    p.add_argument("--noise", type=float, default=0.01, help="log-loss noise of the simulated runs")
    p.add_argument("--outliers", type=int, default=2, help="simulated runs pushed off the law")
    p.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain")
    p.add_argument("--warmup", type=int, default=500, help="NUTS warm-up steps per chain")
    p.add_argument("--chains", type=int, default=2, help="NUTS chains")
    p.add_argument("--bootstrap", type=int, default=200, help="Huber bootstrap resamples (0: none)")
    p.add_argument("--compute", type=float, default=1e22, help="budget for the plan at the end")
    p.add_argument("--seed", type=int, default=0, help="seed for the simulation, NUTS and bootstrap")
    p.add_argument("--plot", metavar="FILE", help="write a pair plot of the posterior (.png or .svg)")
    p.add_argument("--small", action="store_true", help="tiny sizes (1 chain x 100 draws, coarse Huber grid)")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    if args.small:
        args.draws, args.warmup, args.chains = min(args.draws, 100), min(args.warmup, 100), 1
        args.budgets, args.sizes, args.bootstrap = min(args.budgets, 4), min(args.sizes, 8), 0
    out = args.out or tempfile.mkdtemp(prefix="chinplan-fit-")
    os.makedirs(out, exist_ok=True)
    key_fit, key_boot = jax.random.split(jax.random.PRNGKey(args.seed))

    # 1. Runs: yours, or a simulated sweep written to CSV (the same path a user would take).
    truth = None
    if args.runs:
        csv = args.runs
    else:
        truth = cp.PRESETS[args.truth]
        frame = simulate_runs(truth, seed=args.seed, budgets=args.budgets, sizes=args.sizes,
                              noise=args.noise, outliers=args.outliers)
        csv = os.path.join(out, "runs.csv")
        frame.to_csv(csv, index=False)
    runs = cp.load_runs(csv)
    say(f"{len(runs)} runs from {csv}: N {count(runs.params.min())}-{count(runs.params.max())}, "
          f"C {runs.flops.min():.2g}-{runs.flops.max():.2g} FLOPs")

    # 2. NUTS. Convergence warnings are collected and reported, not fatal.
    arviz_log = logging.getLogger("arviz")
    level = arviz_log.level
    if args.chains == 1:
        arviz_log.setLevel(logging.ERROR)  # arviz logs that one chain cannot give R-hat
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", cp.ConvergenceWarning)
            posterior = cp.fit(runs, key=key_fit, num_draws=args.draws, num_warmup=args.warmup,
                               num_chains=args.chains, progress=False, allow_unconverged=True)  # reported below
        problems = [str(w.message) for w in caught if issubclass(w.category, cp.ConvergenceWarning)]
        failed = posterior.convergence_problems() if problems else []
        derived = posterior.derived(args.compute)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diagnostics = posterior.diagnostics()
    finally:
        arviz_log.setLevel(level)

    # 3. Diagnostics (computed above, with arviz's one-chain messages silenced).
    say(f"\nNUTS: {args.chains} chain(s) x {args.draws} draws after {args.warmup} warm-up; "
          f"{posterior.num_divergences} divergences")
    say(diagnostics.to_string(float_format=lambda x: f"{x:.3f}" if x < 10 else f"{x:.0f}"))
    if problems:
        shown = "; ".join(failed[:4]) + ("; ..." if len(failed) > 4 else "")
        say(f"ConvergenceWarning: {len(failed)} checks failed ({shown})")
        if args.chains == 1:
            say("  (one chain gives no R-hat; run two or more chains and more draws before trusting the fit)")
    else:
        say("all convergence checks pass (R-hat <= 1.01, bulk ESS >= 400, no divergences)")

    # 4. The classical fit and (optionally) its bootstrap.
    grid = None
    if args.small:  # 8 starts instead of Hoffmann et al.'s 4,500
        grid = cp.huber.hoffmann_grid(axes=(np.array([0.0, 0.5]), np.array([5.0, 10.0]), np.array([5.0, 10.0]),
                                            np.array([0.5]), np.array([0.5])))
    huber = cp.huber_fit(runs.params, runs.tokens, runs.loss, grid=grid)
    boot = None
    if args.bootstrap > 0:
        boot = cp.huber_bootstrap(runs.params, runs.tokens, runs.loss, key=key_boot,
                                  num_resamples=args.bootstrap, fit=huber, quantiles=(0.05, 0.95))

    q05 = {k: float(np.quantile(derived[k], 0.05)) for k in NAMES}
    q50 = {k: float(np.median(derived[k])) for k in NAMES}
    q95 = {k: float(np.quantile(derived[k], 0.95)) for k in NAMES}
    hub = {k: float(v) for k, v in zip(NAMES, huber.params)}
    say(f"\n{'':<6}{'truth':>9}{'posterior median [5%, 95%]':>30}{'Huber fit':>11}{'bootstrap [5%, 95%]':>23}")
    for i, k in enumerate(NAMES):
        t = fmt(getattr(truth, k)) if truth is not None else "?"
        post = f"{fmt(q50[k])} [{fmt(q05[k])}, {fmt(q95[k])}]"
        bs = f"[{fmt(boot.percentiles[0, i])}, {fmt(boot.percentiles[1, i])}]" if boot is not None else "-"
        say(f"{k:<6}{t:>9}{post:>30}{fmt(hub[k]):>11}{bs:>23}")

    # 5. Save and reload the posterior.
    path = os.path.join(out, "posterior.nc")
    posterior.save(path)
    reloaded = cp.Posterior.load(path)
    same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(posterior.params, reloaded.params))
    attrs = reloaded.attrs
    say(f"\nsaved {path} ({os.path.getsize(path) / 1024:.0f} KiB); reloaded draws identical: {same}")
    say(f"  provenance: data sha256 {str(attrs.get('data_sha256'))[:12]}..., {attrs.get('num_runs')} runs, "
          f"chinplan {attrs.get('chinplan_version')}, sampler: {attrs.get('sampler')}")
    say("  use it with (one command):")
    print(f"    chinplan plan --compute {args.compute:.3g} --posterior {path}")  # a command is never wrapped

    # 6. Plan a bigger run with the fitted posterior.
    uncertainty = reloaded.default_uncertainty()  # as `chinplan plan --posterior` answers
    plan = cp.bands(cp.kernels.plan, reloaded.extrapolated_params(uncertainty), args.compute).values
    plan_n, plan_d = np.asarray(plan["n"], np.float64), np.asarray(plan["d"], np.float64)
    say(f"\nPlan for C = {args.compute:.3g} FLOPs ({uncertainty} uncertainty): N* {count(plan_n[1])} [{count(plan_n[0])}, {count(plan_n[2])}], "
          f"D* {count(plan_d[1])} [{count(plan_d[0])}, {count(plan_d[2])}]")
    true_n = None
    if truth is not None:
        true_plan = cp.compute_optimal(truth, args.compute)
        true_n = float(true_plan.n)
        where = "inside" if plan_n[0] <= true_n <= plan_n[2] else "outside"
        say(f"  true constants: N* {count(true_plan.n)}, D* {count(true_plan.d)} ({where} the 90% band)")

    plot_path = None
    if args.plot:
        fig = cp.plots.pair_plot(posterior, kind="scatter", max_draws=500)
        cp.plots.save(fig, args.plot)
        plot_path = args.plot
        say(f"\nwrote {plot_path}")

    return {
        "num_runs": len(runs),
        "csv": csv,
        "truth": None if truth is None else {k: float(getattr(truth, k)) for k in NAMES},
        "posterior_median": q50,
        "posterior_q05": q05,
        "posterior_q95": q95,
        "huber": hub,
        "bootstrap": None if boot is None else {k: np.asarray(boot.percentiles[:, i]) for i, k in enumerate(NAMES)},
        "max_rhat": float(diagnostics.r_hat.max()),
        "min_ess_bulk": float(diagnostics.ess_bulk.min()),
        "divergences": posterior.num_divergences,
        "convergence_problems": failed,
        "posterior_path": path,
        "roundtrip_equal": same,
        "plan_n": plan_n,
        "plan_d": plan_d,
        "true_plan_n": true_n,
        "plot": plot_path,
    }


if __name__ == "__main__":
    main()
