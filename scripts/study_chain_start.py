"""Where the chains start, and the nu = 0 trap (issue 22 item 7; docs/CALIBRATION.md).

    python scripts/study_chain_start.py   (from the repository root; about 4 minutes on 2 cores)

The splits study's size split at the 80% quantile of the embedded runs (196 runs fitted,
``calibration.backtest`` with the study's key), fitted under the narrower noise prior sigma ~
HalfNormal(0.02) twice:

* chains started as ``chinplan.fit`` started them until issue 22: numpyro's
  ``init_to_median`` (the median of prior draws: a law hundreds of sigma from the runs);
* chains started near a Huber point fit of the fitted runs, as ``chinplan.fit`` starts them
  now (``chinplan.inference.fit._point_start``: Hoffmann et al. 2022's approach 3, sigma at
  the robust residual scale, nu 10).

For the first, this script makes ``_point_start`` return None in its own process (the
fallback start). It prints each fit's attempts, the median nu and alpha of every chain, and
the split's law-only coverage.
"""

from __future__ import annotations

import json
import warnings

import jax

from chinplan import datasets
from chinplan.inference import calibration
from chinplan.inference.model import Priors

SPLIT, FRACTION, INDEX = "size", 0.8, 4  # study_splits.py's fifth split: key fold_in(key(0), 4)


def one(start: str) -> None:
    from chinplan.inference import fit as fit_module

    runs = datasets.chinchilla()
    point_start = fit_module._point_start
    if start == "median":
        fit_module._point_start = lambda *args, **kwargs: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = calibration.backtest(runs, key=jax.random.fold_in(jax.random.key(0), INDEX), split=SPLIT, train_fraction=FRACTION,
                                      uncertainty="law", levels=(0.5, 0.8, 0.9), progress=False, priors=Priors(sigma_scale=0.02))  # fmt: skip
    finally:
        fit_module._point_start = point_start
    p = bt.posterior.to_arviz().posterior
    attempts = [a["problems"][:1] or "passed" for a in json.loads(bt.posterior.attrs["fit_attempts"])]
    print(f"start {start}: {bt.num_fit} runs fitted; attempts {attempts}")
    nu, alpha = (", ".join(f"{float(x):.{k}f}" for x in p[name].median("draw").values) for name, k in (("nu", 2), ("alpha", 3)))
    print(f"  median nu per chain {nu}; alpha per chain {alpha}; coverage 50/80/90% "
          f"{', '.join(f'{c:.2f}' for c in bt.coverage.values())}")  # fmt: skip


if __name__ == "__main__":
    for start in ("median", "huber"):
        one(start)
