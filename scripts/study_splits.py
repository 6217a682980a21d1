"""Coverage over many splits of one ladder (docs/CALIBRATION.md, section 0c).

    python scripts/study_splits.py [--out docs/splits_study.json] [--docs]   (from the repository root)

One split's coverage is one draw of the discrepancy its held-out runs share; averaging over
several splits is the fairer judge of calibration. For the embedded Chinchilla runs this
fits the runs below the 50/60/70/80% quantiles of compute and the 80/85/90/95% quantiles of
parameters (each fit with its leave-the-largest-out refits), scores the held-out runs with
the extrapolation-aware and the law-only intervals, and reports each split and the mean over
splits with the range its own replicates give (:func:`chinplan.inference.calibration.replicate_coverage`).
The splits are nested, so they are not independent draws: the mean is a fairer judge than
one split, not a sample of independent trials. With ``--docs`` it rewrites the block between
``<!-- splits:start -->`` and ``<!-- splits:end -->`` of docs/CALIBRATION.md.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from chinplan import datasets
from chinplan.inference import calibration
from run_backtests import study_main

SPLITS = [("compute", f) for f in (0.5, 0.6, 0.7, 0.8)] + [("size", f) for f in (0.8, 0.85, 0.9, 0.95)]
LEVELS = (0.5, 0.8, 0.9)


def render(results: dict) -> str:
    lines = ["| split | fitted below | interval | predicted | cov 50% | cov 80% | cov 90% | median error |", "|---|---|---|---|---|---|---|---|"]
    for row in results["splits"]:
        cov = " | ".join(f"{row['coverage'][str(q)]:.2f}" for q in LEVELS)
        lines.append(f"| {row['split']} | {row['fraction']:.2f} quantile | {row['interval']} | {row['num_predicted']} | {cov} | {100 * row['median_rel_error']:.2f}% |")
    lines += ["", "| interval | splits | mean cov 50% (replicates 5-95%) | mean cov 80% | mean cov 90% (replicates 5-95%) |", "|---|---|---|---|---|"]
    for interval, m in results["mean"].items():
        lines.append(
            f"| {interval} | {m['num_splits']} | {m['0.5']:.2f} ({m['rep_0.5'][0]:.2f}-{m['rep_0.5'][1]:.2f}) | {m['0.8']:.2f} | "
            f"{m['0.9']:.2f} ({m['rep_0.9'][0]:.2f}-{m['rep_0.9'][1]:.2f}) |"
        )
    lines += ["", f"Wall time (2-core CPU): {results['seconds']:.0f} s."]
    return "\n".join(lines)


def run(seed: int) -> dict:
    runs = datasets.chinchilla()
    start = time.perf_counter()
    rows, replicates = [], {"extrapolation": {q: [] for q in LEVELS}, "law": {q: [] for q in LEVELS}}
    for i, (split, fraction) in enumerate(SPLITS):
        key = jax.random.fold_in(jax.random.key(seed), i)
        posterior = None
        for interval in ("extrapolation", "law"):
            bt = calibration.backtest(runs, key=key, split=split, train_fraction=fraction, uncertainty=interval,
                                      levels=LEVELS, posterior=posterior, progress=False)  # fmt: skip
            posterior = bt.posterior
            rows.append({"split": split, "fraction": fraction, "interval": interval, "num_predicted": bt.num_heldout,
                         "median_rel_error": bt.median_rel_error, "coverage": {str(q): bt.coverage[q] for q in LEVELS}})  # fmt: skip
            for q in LEVELS:
                replicates[interval][q].append(bt.replicate_coverage[q])
            print(rows[-1], flush=True)
    mean = {}
    for interval in ("extrapolation", "law"):
        chosen = [r for r in rows if r["interval"] == interval]
        entry = {"num_splits": len(chosen)}
        for q in LEVELS:
            entry[str(q)] = float(np.mean([r["coverage"][str(q)] for r in chosen]))
            # the mean over splits of each replicate (replicate j of every split together)
            pooled = np.mean(np.stack(replicates[interval][q]), axis=0)
            entry[f"rep_{q}"] = [float(x) for x in np.quantile(pooled, [0.05, 0.95])]
        mean[interval] = entry
    return {"splits": rows, "mean": mean, "seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    study_main(__doc__, "docs/splits_study.json", "splits", run, render)
