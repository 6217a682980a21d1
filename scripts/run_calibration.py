"""Measures the calibration figures of docs/CALIBRATION.md and writes them as JSON.

    nice -n 19 python scripts/run_calibration.py --out calibration.json
    # extend the SBC with repeats 24.. and pool the parts:
    nice -n 19 python scripts/run_calibration.py --skip-backtest --skip-ppc --sbc-start 24 --out part2.json
    python scripts/run_calibration.py --merge calibration.json part2.json --out merged.json

1. Backtest on the 245 embedded Chinchilla runs: fit (chinplan.fit.DEFAULT_FIT_SETTINGS,
   4 chains x 1000 draws after 500 warm-up) on the runs below the 65% FLOPs quantile,
   predict the rest; coverage of the 50/80/90% central predictive intervals and the median
   absolute / relative error of the posterior-median prediction.
2. Posterior predictive check of the shipped default posterior against all 245 runs.
3. How wide the default prior is: the share of prior draws whose law gives sensible losses
   (all in [1.5, 8] nats) on the Chinchilla design, for the default and the SBC prior.
4. Simulation-based calibration (chinplan.inference.sbc.sbc, SBC_PRIORS) with as many repeats as
   fit in --sbc-minutes (at most --sbc-repeats).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import chinplan
from chinplan import datasets
from chinplan.inference import calibration as validate
from chinplan.inference import sbc as sbc_mod
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS
from chinplan.law import LawParams, log_loss
from chinplan.inference.model import DEFAULT_PRIORS


def _compile_counter():
    """Counts XLA backend compilations (jax.monitoring), or None where unsupported."""
    counter = {"compiles": 0}

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            counter["compiles"] += 1

    try:
        jax.monitoring.register_event_duration_secs_listener(listener)
    except AttributeError:
        return None
    return counter


def prior_realism(priors, *, key, num=20000, low=1.5, high=8.0):
    """Share of prior draws whose noiseless losses on the design all lie in [low, high]."""
    design = sbc_mod.sbc_design(100)
    log_n = jnp.log(jnp.asarray(design["params"].to_numpy()))
    log_d = jnp.log(jnp.asarray(design["tokens"].to_numpy()))
    keys = jax.random.split(key, num)
    draws = jax.vmap(lambda k: sbc_mod.sample_prior(priors, key=k))(keys)
    law = LawParams.from_logs(draws["log_E"], draws["log_A"], draws["log_B"], draws["alpha"], draws["beta"])
    losses = np.exp(np.asarray(jax.vmap(lambda p: log_loss(p, log_n, log_d))(law)))
    sensible = np.all((losses >= low) & (losses <= high), axis=1)
    spread = losses.max(axis=1) - losses.min(axis=1)
    return {
        "share_sensible": float(sensible.mean()),
        "share_flat": float(np.mean(spread < 0.05)),
        "criterion": f"all losses in [{low}, {high}] nats on the 100-run design",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="calibration.json")
    parser.add_argument("--seed", type=int, default=20240416)
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--skip-ppc", action="store_true", help="also skips the prior-width figures")
    parser.add_argument("--sbc-start", type=int, default=0, help="first SBC repeat (to extend a run)")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="only merge the SBC parts of these outputs")
    parser.add_argument("--sbc-repeats", type=int, default=200)
    parser.add_argument("--sbc-minutes", type=float, default=15.0)
    parser.add_argument("--sbc-runs", type=int, default=100)
    parser.add_argument("--sbc-draws", type=int, default=200)
    parser.add_argument("--sbc-warmup", type=int, default=200)
    parser.add_argument("--sbc-chains", type=int, default=1)
    parser.add_argument("--sbc-ranks", type=int, default=49)
    args = parser.parse_args()
    key = jax.random.PRNGKey(args.seed)
    k_bt, k_ppc, k_prior, k_sbc = jax.random.split(key, 4)
    out = {"seed": args.seed, "chinplan_version": chinplan.__version__}
    if args.merge:
        return merge(args.merge, args.out, k_sbc)

    if not args.skip_backtest:
        settings = {k: v for k, v in DEFAULT_FIT_SETTINGS.items() if k != "seed"}
        t0 = time.perf_counter()
        bt = validate.backtest(datasets.chinchilla(), key=k_bt, progress=False, **settings)
        heldout = bt.table[bt.table["heldout"]]
        out["backtest"] = {
            "fit_settings": settings,
            "threshold_flops": bt.threshold,
            "num_fit": bt.num_fit,
            "num_heldout": bt.num_heldout,
            "coverage": {str(q): bt.coverage[q] for q in bt.levels},
            "coverage_se": {str(q): bt.coverage_se[q] for q in bt.levels},
            "coverage_without_outliers": {str(q): bt.coverage_without_outliers[q] for q in bt.levels},
            "num_outliers_fit": bt.num_outliers_fit,
            "num_outliers_heldout": bt.num_outliers_heldout,
            "median_abs_error": bt.median_abs_error,
            "median_rel_error": bt.median_rel_error,
            "mean_signed_error": float((heldout["pred_median"] - heldout["loss"]).mean()),
            "median_width_90": float((heldout["upper_90"] - heldout["lower_90"]).median()),
            "divergences": bt.posterior.num_divergences,
            "convergence_problems": bt.posterior.convergence_problems(),
            "posterior_median": {k: float(np.median(v)) for k, v in bt.posterior.derived().items()},
            "seconds": time.perf_counter() - t0,
        }
        print(json.dumps(out["backtest"], indent=1), flush=True)

    if not args.skip_ppc:
        ppc_and_prior(out, k_ppc, k_prior)

    counter = _compile_counter()
    t0 = time.perf_counter()
    result = sbc_mod.sbc(
        key=k_sbc,
        num_repeats=args.sbc_repeats,
        num_runs=args.sbc_runs,
        num_draws=args.sbc_draws,
        num_warmup=args.sbc_warmup,
        num_chains=args.sbc_chains,
        num_ranks=args.sbc_ranks,
        max_seconds=60.0 * args.sbc_minutes,
        first_repeat=args.sbc_start,
        progress=True,
    )
    compiles_total = None if counter is None else counter["compiles"]
    out["sbc"] = {
        "settings": result.settings,
        "num_repeats": result.num_repeats,
        "summary": result.summary().to_dict(orient="index"),
        "covered": result.covered.astype(int).to_dict(orient="list"),
        "repeats_with_divergences": int(np.sum(result.divergences > 0)),
        "seconds_first_repeat": float(result.seconds[0]),
        "seconds_median_later_repeat": float(np.median(result.seconds[1:])) if result.num_repeats > 1 else None,
        "xla_compiles_during_sbc": compiles_total,
        "seconds": time.perf_counter() - t0,
        "ranks": result.ranks.to_dict(orient="list"),
    }
    print(result.summary().round(3).to_string(), flush=True)
    print({k: v for k, v in out["sbc"].items() if k not in ("ranks", "summary", "covered")}, flush=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1, default=float)
    print(f"wrote {args.out}")


def merge(paths, out_path, key):
    """Pools the SBC repeats of several outputs (same settings, disjoint repeats)."""
    parts = [json.load(open(p)) for p in paths]
    ranks = {n: sum((p["sbc"]["ranks"][n] for p in parts), []) for n in sbc_mod.SBC_PARAMS}
    num = len(ranks["E"])
    num_ranks = parts[0]["sbc"]["settings"]["num_ranks"]
    summary = {}
    for n in sbc_mod.SBC_PARAMS:
        hits = 0
        for p in parts:
            if "covered" in p["sbc"]:
                hits += sum(p["sbc"]["covered"][n])
            else:  # older output: coverage x repeats is an exact count
                hits += round(p["sbc"]["summary"][n]["coverage"] * p["sbc"]["num_repeats"])
        cov = hits / num
        chi2, ks = sbc_mod.rank_uniformity(ranks[n], num_ranks, key=key)
        summary[n] = dict(coverage=cov, se=float(validate.binomial_se(cov, num)), chi2_p=chi2, ks_p=ks,
                          mean_rank=float(np.mean(ranks[n]) / num_ranks))
    merged = dict(parts[0])
    merged["sbc"] = dict(parts[0]["sbc"], num_repeats=num, summary=summary, ranks=ranks, parts=paths,
                         repeats_with_divergences=sum(p["sbc"]["repeats_with_divergences"] for p in parts),
                         seconds=sum(p["sbc"]["seconds"] for p in parts))
    merged["sbc"].pop("covered", None)
    for p in parts[1:]:
        for k, v in p.items():
            merged.setdefault(k, v)
    import pandas as pd

    print(f"{num} repeats")
    print(pd.DataFrame.from_dict(summary, orient="index").round(3).to_string())
    with open(out_path, "w") as fh:
        json.dump(merged, fh, indent=1, default=float)
    print(f"wrote {out_path}")


def ppc_and_prior(out, k_ppc, k_prior):
    t0 = time.perf_counter()
    check = validate.ppc(chinplan.default_posterior(), datasets.chinchilla(), key=k_ppc)
    out["ppc_default_posterior"] = {
        "summary": check.summary.to_dict(orient="index"),
        "coverage": {str(q): v for q, v in check.coverage.items()},
        "seconds": time.perf_counter() - t0,
    }
    print(json.dumps(out["ppc_default_posterior"], indent=1), flush=True)

    out["prior_realism"] = {
        "default_priors": prior_realism(DEFAULT_PRIORS, key=k_prior),
        "sbc_priors": prior_realism(sbc_mod.SBC_PRIORS, key=k_prior),
    }
    print(json.dumps(out["prior_realism"], indent=1), flush=True)


if __name__ == "__main__":
    main()
