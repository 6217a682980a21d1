"""Planning short of unique data, with bands: the data-constrained law under its own posterior.

The law of Muennighoff et al. 2023 (Eq. 5-6; :func:`chinplan.law.log_effective_sizes`)
replaces D and N by effective values that discount repeated tokens (decay constant R_D*)
and parameters beyond the compute-optimal size for the unique data (R_N*). A posterior
fitted with ``chinplan.fit(runs, law="data_constrained", key=...)`` carries all seven
constants; the one shipped with the package (:func:`default_posterior`) is fitted to the
C4 runs of that paper up to :data:`chinplan.fit.DEFAULT_MAX_EPOCHS` epochs, the range in
which the law holds (docs/DATA_CONSTRAINED.md). The questions, each with bands over draws:

* :func:`plan`: the data-constrained compute-optimal plan (N, D, epochs, loss) for budgets
  and unique-token counts (:func:`chinplan.engine.kernels.data_constrained_plan`);
* :func:`epoch_table`: at N parameters, what each number of epochs over U costs and buys
  (:func:`chinplan.engine.kernels.epoch_value`);
* :func:`epochs_until`: how many epochs before a further epoch's tokens are worth less than
  a fraction of fresh ones (:func:`chinplan.engine.kernels.epochs_until`).

Every answer beyond the fitted range of epochs warns (:class:`EpochRangeWarning`) with the
number of epochs: there the law's errors grow several-fold, in both directions.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from chinplan import _checks, engine
from chinplan.engine import kernels
from chinplan.law import FLOPS_PER_PARAM_TOKEN
from chinplan.inference.posterior import EpochRangeWarning, Posterior, draws_of, fitted_epochs, warn_beyond  # noqa: F401  (re-exported)

__all__ = [
    "default_posterior",
    "POSTERIOR_FILE",
    "EpochRangeWarning",
    "draws_of",
    "fitted_epochs",
    "warn_beyond",
    "plan",
    "epoch_table",
    "epochs_until",
]

#: The shipped data-constrained posterior (scripts/build_default_posterior.py --law data-constrained).
POSTERIOR_FILE = "datablations_posterior.nc"


@lru_cache(maxsize=1)
def default_posterior():
    """The data-constrained posterior of the embedded datablations runs (C4, at most
    :data:`chinplan.fit.DEFAULT_MAX_EPOCHS` epochs), shipped with the package."""
    with resources.as_file(resources.files("chinplan.datasets") / POSTERIOR_FILE) as path:
        return Posterior.load(path)


def plan(posterior, compute, unique_tokens, *, q=engine.DEFAULT_QUANTILES, num_draws=None, seed=0, chunk_size=None):
    """Bands of the data-constrained compute-optimal plan for each budget and unique-token count.

    Per draw: the N on the budget line 6ND = C minimising L(N', D') (Muennighoff et al.
    2023; :func:`chinplan.optima.data_constrained_optimal`), with D = C/(6N) and epochs D/U.

    Args:
      posterior: a data-constrained :class:`~chinplan.Posterior`.
      compute: FLOP budgets (array, > 0).
      unique_tokens: unique tokens available (array, > 0); broadcast against ``compute``.
      q: quantile levels.
      num_draws: use a random subset of this many draws (chosen with ``seed``); None: all.

    Returns:
      An ``xarray.Dataset`` with variables n, d, epochs, loss over (quantile, compute,
      unique_tokens). Warns (:class:`EpochRangeWarning`) when a median plan lies beyond the
      fitted epochs.
    """
    params = draws_of(posterior)
    if num_draws is not None and num_draws < posterior.num_draws:
        from chinplan.decide.risk import subset_draws

        params = subset_draws(params, num_draws, seed=seed)
    compute = np.atleast_1d(_checks.positive("compute", compute)).astype(np.float64)
    unique = np.atleast_1d(_checks.positive("unique_tokens", unique_tokens)).astype(np.float64)
    over = unique[None, :] > compute[:, None] / FLOPS_PER_PARAM_TOKEN  # more than even a 1-parameter model would see
    if over.any():
        i, j = (int(k[0]) for k in np.nonzero(over))
        raise ValueError(
            f"unique_tokens must be at most compute / 6, the tokens even a 1-parameter model trained on the budget would see "
            f"(valid range (0, {compute[i] / FLOPS_PER_PARAM_TOKEN:.6g}] for compute {compute[i]:.6g}), got {unique[j]:.6g}"
        )
    ds = engine.bands_dataset(
        kernels.data_constrained_plan, params, compute[:, None], unique[None, :], q=q,
        dims=("compute", "unique_tokens"), coords={"compute": compute, "unique_tokens": unique}, chunk_size=chunk_size,
    )  # fmt: skip
    warn_beyond(posterior, *_central(ds, "epochs", "plan"))
    return ds


def _central(ds, name: str, what: str):
    """The band of ``name`` at the median, or at the level nearest it, and what to call it:
    "the median plan" only when 0.5 is among the levels (else, e.g., "the 10% plan")."""
    levels = np.asarray(ds["quantile"].values, np.float64)
    i = int(np.argmin(np.abs(levels - 0.5)))
    label = "median" if levels[i] == 0.5 else f"{100 * levels[i]:g}%"
    return ds[name].isel(quantile=i).values, f"the {label} {what}"


def epoch_table(posterior, n, unique_tokens, epochs, *, q=engine.DEFAULT_QUANTILES, chunk_size=None):
    """At ``n`` parameters and ``unique_tokens`` U, bands of what each epoch count costs and buys.

    Variables (:func:`chinplan.engine.kernels.epoch_value`) over (quantile, epochs): ``repeated``
    L(N, eU | U), ``fresh`` L(N, eU | eU) had every token been unique, ``cost`` their difference,
    ``gain`` L(e) - L(e + 1) (what one more epoch buys), ``fresh_gain`` what U more fresh
    tokens would buy instead, and ``token_value`` exp(-(e - 1)/R_D*), the worth of a token
    seen for the e-th time relative to a fresh one (dD'/dD).
    """
    params = draws_of(posterior)
    n = _checks.positive("n", n)
    unique = _checks.positive("unique_tokens", unique_tokens)
    epochs = np.atleast_1d(_checks.in_range("epochs", epochs, 1.0, np.inf)).astype(np.float64)
    ds = engine.bands_dataset(kernels.epoch_value, params, n, epochs * unique, unique, q=q, dims=("epochs",),
                              coords={"epochs": epochs}, chunk_size=chunk_size)  # fmt: skip
    warn_beyond(posterior, epochs, "the epoch table")  # its rows, not the one-more-epoch column's e + 1
    return ds


def epochs_until(posterior, fraction, *, q=engine.DEFAULT_QUANTILES):
    """Bands of the epoch count after which a further epoch's tokens are worth less than
    ``fraction`` of fresh ones: e* = 1 + R_D* ln(1/fraction) (a token seen the e-th time adds
    exp(-(e - 1)/R_D*) effective tokens; Muennighoff et al. 2023, Eq. 5).

    Returns:
      An ``xarray.Dataset`` with ``epochs`` over (quantile, fraction).
    """
    params = draws_of(posterior)
    fraction = np.atleast_1d(_checks.in_range("fraction", fraction, 0.0, 1.0, low_open=True, high_open=True)).astype(np.float64)
    ds = engine.bands_dataset(kernels.epochs_until, params, fraction, q=q, dims=("fraction",), coords={"fraction": fraction})
    values, label = _central(ds, "epochs", "answer")
    warn_beyond(posterior, values, label)
    return ds
