"""The likelihood's core, chosen by LOO beside calibration (docs/CALIBRATION.md, issue 12).

    python scripts/study_likelihood.py [--out docs/likelihood_study.json] [--docs]   (from the repository root)

For each likelihood -- the default Student-t (nu free, Gamma(2, 0.1) prior), the Student-t
with a floor nu >= 3 (``Priors(nu_min=3)``), and the Normal -- it fits all 245 embedded runs
(PSIS-LOO of each, :func:`chinplan.inference.compare_models.compare`) and runs the Chinchilla
back-tests of :func:`chinplan.inference.calibration.report` with that likelihood (extrapolation-aware
intervals). With ``--docs`` it rewrites the block between ``<!-- likelihood:start -->`` and
``<!-- likelihood:end -->`` of docs/CALIBRATION.md.
"""

from __future__ import annotations

import time
import warnings

import jax

from chinplan import datasets
from chinplan.inference import calibration
from chinplan.inference import compare_models
from chinplan.inference.fit import fit
from chinplan.inference.model import Priors
from run_backtests import study_main

VARIANTS = {
    "student_t": dict(likelihood="student_t"),
    "student_t_nu_min_3": dict(likelihood="student_t", priors=Priors(nu_min=3.0)),
    "normal": dict(likelihood="normal"),
}


def render(results: dict) -> str:
    lines = [
        "| likelihood | elpd LOO (SE) | diff to best | median nu | split | cov 50% | cov 80% | cov 90% | median error | score |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for row in r["splits"]:
            if row["interval"] != "extrapolation":
                continue
            cov = " | ".join(f"{c['coverage']:.2f}" for c in row["coverage"])
            lines.append(
                f"| {name}{'' if r.get('converged', True) else ' (**unconverged**)'} | {r['elpd_loo']:.1f} ({r['se']:.1f}) | {r['elpd_diff']:.1f} | {r['nu_median']} | {row['split']} | {cov} | "
                f"{100 * row['median_rel_error']:.2f}% | {row['interval_score90']:.3f} |"
            )
    seconds = ", ".join(f"{name} {r['seconds']:.0f} s" for name, r in results.items())
    lines += ["", f"Wall time (2-core CPU): {seconds}."]
    return "\n".join(lines)


def run(seed: int) -> dict:
    runs = datasets.chinchilla()
    key = jax.random.key(seed)
    full, results = {}, {}
    for name, options in VARIANTS.items():
        start = time.perf_counter()
        # a study reports every variant: an unconverged fit is marked in the table, not dropped
        full[name] = fit(runs, key=key, extrapolation=False, log_likelihood=True, progress=False, allow_unconverged=True, **options)
        results[name] = calibration.report(runs, key=key, progress=False, **options)
        nu = full[name].draws("nu") if "nu" in full[name].to_arviz().posterior else None
        results[name]["nu_median"] = "-" if nu is None else f"{float(jax.numpy.median(jax.numpy.asarray(nu))):.2f}"
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        results[name]["converged"] = full[name].converged
        print(name, [(r["split"], r["interval"], [round(c["coverage"], 2) for c in r["coverage"]]) for r in results[name]["splits"]], flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare_models.compare(full)
    for name in results:
        results[name].update(elpd_loo=float(table.loc[name, "elpd_loo"]), se=float(table.loc[name, "se"]),
                             elpd_diff=float(table.loc[name, "elpd_diff"]))  # fmt: skip
    return results


if __name__ == "__main__":
    study_main(__doc__, "docs/likelihood_study.json", "likelihood", run, render)
