"""Back-tests of loss and allocation on both embedded datasets (docs/CALIBRATION.md).

    python scripts/run_backtests.py [--out benchmarks/backtests.json]

For the Chinchilla runs and for the data-constrained paper's runs with at most 2 epochs
(where repetition costs under 0.2% of loss, so the Chinchilla law applies), it runs
:func:`chinplan.calibration.report`: the ``compute`` and ``size`` splits, each scored with
the extrapolation-aware and the law-only intervals, and the allocation back-test.
"""

from __future__ import annotations

import argparse
import json
import time

import jax

from chinplan import calibration, datasets


def datablations_few_epochs(max_epochs: float = 2.0):
    """The data-constrained paper's C4 runs with at most ``max_epochs`` epochs."""
    runs = datasets.datablations()
    runs = runs[(runs["epochs"] <= max_epochs) & (runs["dataset"] == "c4")]
    return runs[["params", "tokens", "loss"]].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/backtests.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    for name, runs in (("chinchilla", datasets.chinchilla()), ("datablations_2_epochs", datablations_few_epochs())):
        start = time.perf_counter()
        results[name] = calibration.report(runs, key=jax.random.key(args.seed), progress=False)
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        for row in results[name]["splits"]:
            cov = " ".join(f"{c['coverage']:.2f}" for c in row["coverage"])
            print(f"{name:22s} {row['split']:8s} {row['interval']:13s} fit {row['num_fit']:3d} pred {row['num_predicted']:3d} "
                  f"err {100 * row['median_rel_error']:.2f}% cov50/80/90 {cov} width90 {row['width90']:.3f} IS90 {row['interval_score90']:.3f}", flush=True)
        for row in results[name]["allocation"]:
            print(f"{name:22s} allocation {row['interval']:13s} {row['num_minima']} minima: coverage {row['coverage']:.2f} median width {row['median_width']:.1f}x", flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
