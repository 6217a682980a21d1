"""Where the chains start, and the nu = 0 trap (issue 22 item 7; docs/CALIBRATION.md).

    python scripts/study_chain_start.py   (from the repository root; about 4 minutes on 2 cores)

The splits study's size split at the 80% quantile of the embedded runs (196 runs fitted,
``calibration.backtest`` with the study's key), fitted under the narrower noise prior sigma ~
HalfNormal(0.02) twice:

* chains started as ``chinplan.fit`` starts them today: numpyro's ``init_to_median`` (the
  median of prior draws: a law hundreds of sigma from the runs);
* chains started at a Huber point fit of the fitted runs (``chinplan.inference.huber.huber_fit``,
  Hoffmann et al. 2022's approach 3), with sigma 0.01 and nu 10.

The second start is an experiment, not what ``chinplan.fit`` does: this script swaps
numpyro's ``init_to_median`` for ``init_to_value`` in its own process, before the sampler is
built. It prints each fit's attempts, the median nu and alpha of every chain, and the split's
law-only coverage.
"""

from __future__ import annotations

import json
import warnings

import jax
import numpy as np

from chinplan import datasets
from chinplan.inference import calibration
from chinplan.inference.huber import huber_fit
from chinplan.inference.model import Priors

SPLIT, FRACTION, INDEX = "size", 0.8, 4  # study_splits.py's fifth split: key fold_in(key(0), 4)


def huber_start(runs) -> dict:
    """The sampled sites' values at a Huber point fit of the runs the split fits."""
    size = runs["params"].to_numpy(np.float64)
    fitted = runs[size < np.quantile(size, FRACTION)]
    n, d, loss = (fitted[c].to_numpy(np.float64) for c in ("params", "tokens", "loss"))
    log_e, log_a, log_b, alpha, beta = (float(x) for x in np.asarray(huber_fit(n, d, loss).theta))
    # the model's reference coordinates (chinplan.inference.model._chinchilla_constants)
    return {"log_E": log_e, "alpha": alpha, "beta": beta, "log_A_ref": log_a - alpha * np.log(n).mean(),
            "log_B_ref": log_b - beta * np.log(d).mean(), "sigma": 0.01, "nu": 10.0}  # fmt: skip


def one(start: str) -> None:
    import numpyro.infer

    from chinplan.inference import sampler

    sampler._runner.cache_clear()  # the start is built into each compiled chain: build it anew
    sampler._COMPILED.clear()
    runs = datasets.chinchilla()
    median = numpyro.infer.init_to_median
    if start == "huber":
        numpyro.infer.init_to_median = numpyro.infer.init_to_value(values=huber_start(runs))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = calibration.backtest(runs, key=jax.random.fold_in(jax.random.key(0), INDEX), split=SPLIT, train_fraction=FRACTION,
                                      uncertainty="law", levels=(0.5, 0.8, 0.9), progress=False, priors=Priors(sigma_scale=0.02))  # fmt: skip
    finally:
        numpyro.infer.init_to_median = median
    p = bt.posterior.to_arviz().posterior
    attempts = [a["problems"][:1] or "passed" for a in json.loads(bt.posterior.attrs["fit_attempts"])]
    print(f"start {start}: {bt.num_fit} runs fitted; attempts {attempts}")
    nu, alpha = (", ".join(f"{float(x):.{k}f}" for x in p[name].median("draw").values) for name, k in (("nu", 2), ("alpha", 3)))
    print(f"  median nu per chain {nu}; alpha per chain {alpha}; coverage 50/80/90% "
          f"{', '.join(f'{c:.2f}' for c in bt.coverage.values())}")  # fmt: skip


if __name__ == "__main__":
    for start in ("median", "huber"):
        one(start)
