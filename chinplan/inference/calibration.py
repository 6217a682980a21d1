"""Calibration of the Bayesian fit: backtests, simulation-based calibration, predictive checks.

Three questions, one function each:

* :func:`backtest` -- *does the posterior predictive extrapolate honestly?* Fit on the runs
  below a compute threshold, predict the larger runs, and count how many land inside the
  central predictive intervals (coverage), with the median absolute and relative error of
  the posterior-median prediction. This is the scaling-law use case: predict bigger runs
  from smaller ones.
* :func:`chinplan.inference.sbc.sbc` -- *is the inference machinery (model + NUTS) calibrated?* Simulation-based
  calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018, "Validating Bayesian
  Inference Algorithms with Simulation-Based Calibration", arXiv:1804.06788): draw
  theta* ~ p(theta), simulate y ~ p(y | theta*), fit p(theta | y), and record the rank of
  theta* among L posterior draws. When the sampler is correct the ranks are uniform on
  {0, ..., L} and every central interval of level q covers theta* in a fraction q of
  repeats.
* :func:`ppc` -- *does the fitted model reproduce the data it was fit to?* Posterior
  predictive checks (Gelman et al., "Bayesian Data Analysis", 3rd ed. 2013, ch. 6):
  replicated data y_rep ~ p(y_rep | y) as an arviz ``InferenceData`` (for
  ``az.plot_ppc``) and Bayesian p-values of test statistics of the residuals.

The predictive distribution is the model's own likelihood (:mod:`chinplan.model`): for a
posterior draw s,

    log L_rep = logsumexp(log E_s, log A_s - alpha_s log N, log B_s - beta_s log D)
                + sigma_s * t_{nu_s},

with t_nu a standard Student-t variate with nu degrees of freedom.
"""

from __future__ import annotations

import json
from typing import NamedTuple, Sequence

import arviz as az
import jax
import numpy as np
import pandas as pd
import xarray as xr

from chinplan import _checks
from chinplan.datasets import OUTLIER_MAX_TOKENS_PER_PARAM
from chinplan.extrapolated import decades_beyond
from chinplan.inference.extrapolation import isoflop_minima
from chinplan.inference.fit import fit
from chinplan.inference.posterior import Posterior, exp_quantiles
from chinplan.inference.runs import MIN_RUNS, load_runs, runs_arrays

__all__ = [
    "Backtest",
    "backtest",
    "AllocationBacktest",
    "allocation_backtest",
    "isoflop_minima",
    "SPLITS",
    "DEFAULT_TRAIN_FRACTION",
    "PPC",
    "ppc",
    "predictive_log_loss",
    "binomial_se",
]

#: Default share of runs (by FLOPs quantile) that :func:`backtest` fits on.
DEFAULT_TRAIN_FRACTION = 0.65
#: Default share of runs (by parameter-count quantile) the ``size`` split fits on.
DEFAULT_SIZE_TRAIN_FRACTION = 0.9
#: The back-test splits: the column whose larger values are held out.
SPLITS = {"compute": "flops", "size": "params"}

def binomial_se(p, n):
    """Standard error sqrt(p (1 - p) / n) of a proportion ``p`` measured on ``n`` trials."""
    p = np.asarray(p, dtype=np.float64)
    return np.sqrt(p * (1.0 - p) / n)


def _check_levels(levels) -> tuple[float, ...]:
    try:
        levels = tuple(float(q) for q in np.atleast_1d(np.asarray(levels, dtype=np.float64)))
    except (TypeError, ValueError):
        raise ValueError(f"levels must be numbers in (0, 1), got {levels!r}") from None
    if not levels or not all(0.0 < q < 1.0 for q in levels):
        raise ValueError(f"levels must be numbers strictly between 0 and 1, got {levels!r}")
    return levels


def _pct(q: float) -> str:
    return f"{100 * q:g}"


# ----------------------------------------------------------------------------------------
# Posterior predictive draws
# ----------------------------------------------------------------------------------------
def _predict(posterior: Posterior, log_n, log_d, key, uncertainty: str = "law"):
    """(mean, replicate) log losses from :meth:`Posterior.sample_log_loss`, shape (chain, draw, runs)."""
    mean, rep = posterior.sample_log_loss(log_n, log_d, key=key, uncertainty=uncertainty)
    post = posterior.to_arviz().posterior
    shape = (post.sizes["chain"], post.sizes["draw"], -1)
    return mean.reshape(shape), rep.reshape(shape)


def predictive_log_loss(posterior: Posterior, runs, *, key: jax.Array) -> np.ndarray:
    """Posterior predictive draws of log loss at the (N, D) of ``runs``.

    For each posterior draw s (chains flattened), one replicate per run:
    log L_rep = log L_s(N, D) + eps_s, eps from the posterior's own likelihood
    (:func:`chinplan.inference.model.noise_distribution`). Fixed ``key``, fixed draws.

    Args:
      posterior: a :class:`chinplan.inference.posterior.Posterior`.
      runs: a runs table (only ``params`` and ``tokens``/``flops`` are used, but a
        ``loss`` column is required by :func:`chinplan.load_runs`).
      key: JAX PRNG key for the Student-t noise.

    Returns:
      float64 array of shape (num_draws, num_runs).
    """
    arrays = runs_arrays(load_runs(runs, min_runs=1))
    _, rep = _predict(posterior, arrays.log_n, arrays.log_d, key)
    return rep.reshape(-1, rep.shape[-1])


# ----------------------------------------------------------------------------------------
# Backtest
# ----------------------------------------------------------------------------------------
class Backtest(NamedTuple):
    """Result of :func:`backtest`.

    Attributes:
      threshold: the compute threshold C*: runs with FLOPs < C* were fitted.
      num_fit, num_heldout: runs on each side of C*.
      levels: the central-interval levels.
      coverage: {level: fraction of held-out runs inside the central predictive interval}.
      coverage_se: {level: binomial standard error sqrt(p(1-p)/num_heldout)}.
      coverage_without_outliers: the same coverage over held-out runs that are not flagged
        as outliers (equal to ``coverage`` when none is held out).
      num_outliers_fit, num_outliers_heldout: flagged runs on each side of C*.
      median_abs_error: median over held-out runs of |median prediction - observed loss|.
      median_rel_error: median of |median prediction - observed| / observed.
      table: one row per run (fitted and held-out): params, tokens, flops, loss,
        tokens_per_param, outlier, heldout, pred_median (posterior predictive median of the
        loss), law_median (posterior median of the noiseless law), abs_error, rel_error and,
        per level q in percent, lower_q, upper_q, inside_q.
      posterior: the posterior fitted on the runs below C*.
      replicate_coverage: {level: the coverage each of :data:`NUM_REPLICATES` replicates of
        the held-out losses drawn from the predictive itself would get} (:func:`replicate_coverage`):
        the spread of coverage a calibrated predictive gives on this one split.
    """

    threshold: float
    num_fit: int
    num_heldout: int
    levels: tuple
    coverage: dict
    coverage_se: dict
    coverage_without_outliers: dict
    num_outliers_fit: int
    num_outliers_heldout: int
    median_abs_error: float
    median_rel_error: float
    table: pd.DataFrame
    posterior: Posterior
    split: str = "compute"
    uncertainty: str = "law"
    width90: float = float("nan")
    interval_score90: float = float("nan")
    replicate_coverage: dict | None = None

    def summary(self) -> pd.DataFrame:
        """One row per level: coverage, its binomial SE, and coverage without outliers."""
        return pd.DataFrame(
            {
                "coverage": [self.coverage[q] for q in self.levels],
                "se": [self.coverage_se[q] for q in self.levels],
                "coverage_without_outliers": [self.coverage_without_outliers[q] for q in self.levels],
            },
            index=pd.Index(self.levels, name="level"),
        )


#: Replicates of the held-out losses scored by :func:`replicate_coverage`.
NUM_REPLICATES = 1000


def replicate_coverage(draws: np.ndarray, level: float, num: int = NUM_REPLICATES) -> np.ndarray:
    """The coverage of the central ``level`` intervals of ``draws`` (posterior predictive
    replicates, shape (S, runs)) on ``num`` of its own replicates, evenly spaced in S.

    Each replicate is one joint draw of every held-out loss from the predictive (one
    posterior draw with its discrepancy, which the runs share, and its noise): the data a
    calibrated model expects. The spread of these coverages is how far a single split's
    coverage can sit from ``level`` with a model that is exactly right: with a discrepancy
    shared by the runs of a split, far more than the binomial SE of independent misses.
    (Each replicate is scored against intervals that include it: a 1/S effect.)
    """
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)  # exp is monotone: log or loss alike
    rows = draws[np.linspace(0, len(draws) - 1, min(num, len(draws))).astype(int)]
    return np.mean((lo <= rows) & (rows <= hi), axis=1)


def _relative_width(test: pd.DataFrame, log_draws: np.ndarray, level: float) -> float:
    """Median over held-out runs of the central ``level`` interval's width / predictive median
    (quantiles of log loss draws, so no heavy-tailed draw overflows exp)."""
    lo, hi, mid = exp_quantiles(log_draws, [(1 - level) / 2, (1 + level) / 2, 0.5])
    with np.errstate(invalid="ignore"):
        return float(np.median((hi - lo) / mid))


def _interval_score(y: np.ndarray, log_draws: np.ndarray, level: float) -> float:
    """Mean interval score (Gneiting & Raftery 2007, Eq. 43) of the central ``level`` interval,
    relative to the observed loss: ``[(u - l) + (2/a)(l - y)+ + (2/a)(y - u)+] / y``, a = 1 - level."""
    lo, hi = exp_quantiles(log_draws, [(1 - level) / 2, (1 + level) / 2])
    a = 1.0 - level
    score = (hi - lo) + 2.0 / a * np.maximum(lo - y, 0.0) + 2.0 / a * np.maximum(y - hi, 0.0)
    return float(np.mean(score / y))


def _split_threshold(size: np.ndarray, compute_threshold, train_fraction) -> float:
    if compute_threshold is not None and train_fraction is not None:
        raise ValueError("give compute_threshold or train_fraction, not both")
    if compute_threshold is None:
        fraction = DEFAULT_TRAIN_FRACTION if train_fraction is None else train_fraction
        fraction = _checks.level("train_fraction", fraction, low_open=True, high_open=True)
        return float(np.quantile(size, fraction))
    return _checks.positive_number("compute_threshold", compute_threshold)


def backtest(
    runs,
    *,
    key: jax.Array,
    compute_threshold: float | None = None,
    train_fraction: float | None = None,
    levels: Sequence[float] = (0.5, 0.8, 0.9),
    outlier_max_tokens_per_param: float | None = OUTLIER_MAX_TOKENS_PER_PARAM,
    split: str = "compute",
    uncertainty: str = "extrapolation",
    posterior: Posterior | None = None,
    **fit_kwargs,
) -> Backtest:
    """Fits on the smaller runs and checks the predictive intervals on the larger ones.

    Runs with training compute C < C* are fitted with :func:`chinplan.fit`; for every run
    with C >= C* the posterior predictive distribution of its loss is sampled (one
    Student-t replicate per posterior draw, see the module docstring) and the central
    interval of level q, [Q((1-q)/2), Q((1+q)/2)], is compared with the observed loss.

        coverage(q) = #{held-out runs with lower_q <= L_obs <= upper_q} / #{held-out runs}

    A calibrated predictive gives coverage(q) = q up to binomial error
    sqrt(q (1-q) / n_heldout) (larger in practice: the held-out runs share one posterior,
    so their hits are positively correlated).

    Args:
      runs: runs table (DataFrame or CSV path), validated with :func:`chinplan.load_runs`.
      key: JAX PRNG key; split into the fit's key and the predictive noise key.
      compute_threshold: C* in FLOPs. Default: the ``train_fraction`` quantile of the runs'
        FLOPs.
      train_fraction: quantile of FLOPs used as C* when ``compute_threshold`` is None
        (default :data:`DEFAULT_TRAIN_FRACTION` = 0.65, i.e. about 65% of runs fitted).
      levels: central-interval levels, each strictly between 0 and 1.
      outlier_max_tokens_per_param: runs with D/N below this are flagged ``outlier`` and
        coverage is also reported without them (default 0.41: the 5 digitised Chinchilla
        outliers near 1e19 FLOPs). None flags nothing.
      split: ``"compute"`` (hold out the runs at or above a compute threshold) or ``"size"``
        (hold out the runs with at least ``compute_threshold`` parameters -- the argument
        then counts parameters -- or, by default, the largest models, about 10% of runs).
      uncertainty: ``"extrapolation"`` (default) or ``"law"``: which predictive to score.
      posterior: an already fitted posterior of the same split (skips the fit; lets one fit
        serve both kinds of interval).
      **fit_kwargs: passed to :func:`chinplan.fit` (num_draws, num_warmup, num_chains,
        chain_method, priors, progress, ...).

    Returns:
      A :class:`Backtest`.

    Raises:
      ValueError: ``levels`` outside (0, 1); a ``compute_threshold`` that is not a positive
        number or that leaves fewer than 7 runs (the model's parameter count) to fit or to
        hold out; a ``train_fraction`` outside (0, 1).
    """
    levels = _check_levels(levels)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    runs = load_runs(runs)
    size = runs[SPLITS[split]].to_numpy(np.float64)
    if split == "size" and compute_threshold is None and train_fraction is None:
        train_fraction = DEFAULT_SIZE_TRAIN_FRACTION
    threshold = _split_threshold(size, compute_threshold, train_fraction)
    heldout = size >= threshold
    num_fit, num_heldout = int((~heldout).sum()), int(heldout.sum())
    arg = "compute_threshold" if compute_threshold is not None else "train_fraction"
    for part, count in (("to fit", num_fit), ("to hold out", num_heldout)):
        if count < MIN_RUNS:
            raise ValueError(
                f"{arg}: the threshold {threshold:.4g} FLOPs leaves {count} runs {part}; "
                f"each side needs at least {MIN_RUNS} (the model's parameter count)"
            )
    fit_key, pred_key = jax.random.split(key)
    if posterior is None:
        # a back-test scores its fit whatever the gate says (the ConvergenceWarning still shows)
        fit_kwargs = {"allow_unconverged": True, **fit_kwargs}
        posterior = fit(runs[~heldout].reset_index(drop=True), key=fit_key, extrapolation=uncertainty == "extrapolation", **fit_kwargs)

    arrays = runs_arrays(runs)
    mean, rep = _predict(posterior, arrays.log_n, arrays.log_d, pred_key, uncertainty)
    # quantiles in log space: a heavy-tailed (small nu) replicate can exceed exp's range
    log_rep = np.asarray(rep, np.float64).reshape(-1, rep.shape[-1])
    log_law = np.asarray(mean, np.float64).reshape(-1, mean.shape[-1])
    table = runs.copy()
    table["tokens_per_param"] = table["tokens"] / table["params"]
    table["outlier"] = (
        table["tokens_per_param"] < outlier_max_tokens_per_param if outlier_max_tokens_per_param is not None else False
    )
    table["heldout"] = heldout
    table["pred_median"] = exp_quantiles(log_rep, 0.5)
    table["law_median"] = exp_quantiles(log_law, 0.5)
    table["abs_error"] = np.abs(table["pred_median"] - table["loss"])
    table["rel_error"] = table["abs_error"] / table["loss"]
    table["decades_beyond"] = decades_beyond(posterior.domain, arrays.log_n, arrays.log_d)[0]
    coverage, coverage_se, coverage_clean = {}, {}, {}
    test = table[table["heldout"]]
    clean = test[~test["outlier"]]
    for q in levels:
        lo, hi = exp_quantiles(log_rep, [(1 - q) / 2, (1 + q) / 2])
        name = _pct(q)
        table[f"lower_{name}"], table[f"upper_{name}"] = lo, hi
        table[f"inside_{name}"] = (lo <= table["loss"]) & (table["loss"] <= hi)
        inside = table.loc[table["heldout"], f"inside_{name}"]
        coverage[q] = float(inside.mean())
        coverage_se[q] = float(binomial_se(coverage[q], num_heldout))
        coverage_clean[q] = float(table.loc[clean.index, f"inside_{name}"].mean()) if len(clean) else float("nan")
    return Backtest(
        threshold=threshold,
        num_fit=num_fit,
        num_heldout=num_heldout,
        levels=levels,
        coverage=coverage,
        coverage_se=coverage_se,
        coverage_without_outliers=coverage_clean,
        num_outliers_fit=int(table.loc[~table["heldout"], "outlier"].sum()),
        num_outliers_heldout=int(test["outlier"].sum()),
        median_abs_error=float(test["abs_error"].median()),
        median_rel_error=float(test["rel_error"].median()),
        table=table,
        posterior=posterior,
        split=split,
        uncertainty=uncertainty,
        width90=_relative_width(table[table["heldout"]], log_rep[:, heldout], 0.9),
        interval_score90=_interval_score(test["loss"].to_numpy(), log_rep[:, heldout], 0.9),
        replicate_coverage={q: replicate_coverage(log_rep[:, heldout], q) for q in levels},
    )


# ----------------------------------------------------------------------------------------
# Posterior predictive checks
# ----------------------------------------------------------------------------------------
class PPC(NamedTuple):
    """Result of :func:`ppc`.

    Attributes:
      idata: arviz InferenceData with groups posterior, posterior_predictive (``log_loss``,
        dims chain x draw x run), observed_data (``log_loss``, dim run) and constant_data
        (log_n, log_d); ``az.plot_ppc(idata)`` draws the check.
      summary: one row per test statistic of the residuals (mean, sd, min, max, max_abs):
        ``observed`` = E[T(y - mu_theta)], ``replicated`` = E[T(y_rep - mu_theta)] and the
        Bayesian p-value ``p_value`` = Pr(T(y_rep - mu_theta) >= T(y - mu_theta) | y).
      coverage: {level: in-sample fraction of observed log losses inside the central
        posterior predictive interval}.
    """

    idata: az.InferenceData
    summary: pd.DataFrame
    coverage: dict


_PPC_STATS = {
    "mean": lambda r: r.mean(axis=-1),
    "sd": lambda r: r.std(axis=-1, ddof=1),
    "min": lambda r: r.min(axis=-1),
    "max": lambda r: r.max(axis=-1),
    "max_abs": lambda r: np.abs(r).max(axis=-1),
}


def ppc(posterior: Posterior, runs, *, key: jax.Array, levels: Sequence[float] = (0.5, 0.8, 0.9)) -> PPC:
    """Posterior predictive check of a fit against runs (Gelman et al. BDA3, ch. 6).

    Replicates y_rep(s) = mu_s + sigma_s t_{nu_s}, one per posterior draw s, with
    mu_s = log L(N, D; theta_s) and y the observed log losses. For a discrepancy
    T(y, theta) of the residuals r = y - mu_theta, the posterior predictive (Bayesian)
    p-value is (BDA3, Eq. 6.8)

        p_B = Pr(T(y_rep, theta) >= T(y, theta) | y)
            ~= (1/S) sum_s 1[T(y_rep(s) - mu_s) >= T(y - mu_s)].

    p-values near 0 or 1 flag a feature of the data the model does not reproduce.

    Args:
      posterior: a :class:`chinplan.inference.posterior.Posterior`.
      runs: the runs to check against (normally those the posterior was fit to).
      key: JAX PRNG key for the replicates.
      levels: central-interval levels for the in-sample coverage, each in (0, 1).

    Returns:
      A :class:`PPC`.
    """
    levels = _check_levels(levels)
    arrays = runs_arrays(load_runs(runs, min_runs=1))
    mean, rep = _predict(posterior, arrays.log_n, arrays.log_d, key)  # (chain, draw, run)
    y = arrays.log_loss
    post = posterior.to_arviz().posterior
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "run": np.arange(len(y))}
    idata = az.InferenceData(
        posterior=post,
        posterior_predictive=xr.Dataset({"log_loss": (("chain", "draw", "run"), rep)}, coords=coords),
        observed_data=xr.Dataset({"log_loss": (("run",), y)}, coords={"run": coords["run"]}),
        constant_data=xr.Dataset({"log_n": ("run", arrays.log_n), "log_d": ("run", arrays.log_d)}, coords={"run": coords["run"]}),
    )
    resid_obs = (y - mean).reshape(-1, len(y))
    resid_rep = (rep - mean).reshape(-1, len(y))
    rows = {}
    for name, stat in _PPC_STATS.items():
        t_obs, t_rep = stat(resid_obs), stat(resid_rep)
        rows[name] = {"observed": t_obs.mean(), "replicated": t_rep.mean(), "p_value": float(np.mean(t_rep >= t_obs))}
    flat = rep.reshape(-1, len(y))
    coverage = {}
    for q in levels:
        lo, hi = np.quantile(flat, [(1 - q) / 2, (1 + q) / 2], axis=0)
        coverage[q] = float(np.mean((lo <= y) & (y <= hi)))
    return PPC(idata=idata, summary=pd.DataFrame.from_dict(rows, orient="index"), coverage=coverage)


# ----------------------------------------------------------------------------------------
# Allocation back-test
# ----------------------------------------------------------------------------------------
class AllocationBacktest(NamedTuple):
    """Result of :func:`allocation_backtest`: one row per held-out isoFLOP minimum.

    ``table`` columns: log10_compute, log10_params (the empirical minimum), lower, upper (its
    bootstrap 5-95%), decades_beyond, n05, n50, n95 (the predicted N* band), inside, width
    (n95 / n05). ``coverage`` is the fraction inside the 90% band, ``se`` its binomial SE.
    """

    uncertainty: str
    table: pd.DataFrame
    coverage: float
    se: float
    median_width: float


def allocation_backtest(posterior: Posterior, runs, *, key: jax.Array, uncertainty: str = "extrapolation") -> AllocationBacktest:
    """Checks the 90% N* bands of ``posterior`` against the empirical isoFLOP minima beyond it.

    The minima are :func:`isoflop_minima` of ``runs`` (Hoffmann et al. 2022, Approach 2); those
    whose slice lies above the posterior's largest fitted compute (by more than the slice
    half-width, 0.1 decade) are held out and compared with
    :meth:`Posterior.compute_optimal` at the slice's compute.
    """
    minima = isoflop_minima(load_runs(runs))
    held = minima[minima["log10_compute"] - 0.1 > posterior.domain.log10_compute].reset_index(drop=True)
    if held.empty:
        raise ValueError("runs: no isoFLOP minimum lies beyond the posterior's fitted compute")
    plan = posterior.compute_optimal(10.0 ** held["log10_compute"].to_numpy(), q=(0.05, 0.5, 0.95), key=key, uncertainty=uncertainty)
    table = held.copy()
    table["decades_beyond"] = held["log10_compute"] - posterior.domain.log10_compute
    table["n05"], table["n50"], table["n95"] = plan.n
    table["inside"] = (np.log10(plan.n[0]) <= held["log10_params"]) & (held["log10_params"] <= np.log10(plan.n[2]))
    table["width"] = plan.n[2] / plan.n[0]
    cov = float(table["inside"].mean())
    return AllocationBacktest(uncertainty, table, cov, float(binomial_se(cov, len(table))), float(table["width"].median()))


#: The coverage bands issue 12 asks of each split, per level (others: nominal +- 0.1).
TARGET_BANDS = {0.5: (0.40, 0.60), 0.9: (0.85, 0.95)}


def _replicate_summary(replicates: np.ndarray, observed: float, level: float) -> dict:
    """What a calibrated predictive expects of one split's coverage: its 5/50/95% quantiles
    over replicates, the share of replicates within the target band, and the observed
    coverage's predictive p-value (share of replicates at or below it)."""
    lo, hi = TARGET_BANDS.get(level, (level - 0.1, min(1.0, level + 0.1)))
    q05, q50, q95 = np.quantile(replicates, [0.05, 0.5, 0.95])
    return {
        "replicate_q05": float(q05), "replicate_q50": float(q50), "replicate_q95": float(q95),
        "replicate_in_band": float(np.mean((replicates >= lo - 1e-12) & (replicates <= hi + 1e-12))),
        "band": [lo, hi], "p_value": float(np.mean(replicates <= observed + 1e-12)),
    }  # fmt: skip


def _drift_seen(bt: Backtest) -> dict:
    """The held-out runs' drift (median log residual against the law's median, and median
    decades beyond the fit) beside what each leave-out fold of the fit saw of its own."""
    held = bt.table[bt.table["heldout"]]
    residual = np.log(held["loss"].to_numpy()) - np.log(held["law_median"].to_numpy())
    out = {"heldout_median_residual": float(np.median(residual)), "heldout_median_decades": float(np.median(held["decades_beyond"]))}
    group = getattr(bt.posterior.to_arviz(), "extrapolation", None)
    if group is not None and "extrapolation_folds" in group.attrs:
        out["folds"] = json.loads(group.attrs["extrapolation_folds"])
    return out


def report(runs, *, key: jax.Array, splits=("compute", "size"), levels=(0.5, 0.8, 0.9), compute_threshold=None, **fit_kwargs) -> dict:
    """The back-tests ``chinplan validate`` prints: for each split one fit (with the
    extrapolation component), scored with both kinds of interval, plus the allocation
    back-test of the compute split where the runs have isoFLOP slices beyond it.

    Returns:
      ``{"splits": [{"split", "interval", "num_fit", "num_predicted", "median_rel_error",
      "width90", "interval_score90", "coverage": [{"level", "coverage", "se"}]}],
      "allocation": [{"interval", "num_minima", "coverage", "se", "median_width",
      "minima": [...]}]}``.
    """
    runs = load_runs(runs)
    out = {"splits": [], "allocation": []}
    for i, split in enumerate(splits):
        split_key = jax.random.fold_in(key, i)
        posterior = None
        for interval in ("extrapolation", "law"):
            threshold = compute_threshold if split == "compute" else None
            bt = backtest(runs, key=split_key, split=split, uncertainty=interval, levels=levels, posterior=posterior, compute_threshold=threshold, **fit_kwargs)
            posterior = bt.posterior
            out["splits"].append(
                {
                    "split": split,
                    "interval": interval,
                    "num_fit": bt.num_fit,
                    "num_predicted": bt.num_heldout,
                    "median_rel_error": bt.median_rel_error,
                    "width90": bt.width90,
                    "interval_score90": bt.interval_score90,
                    "coverage": [
                        {"level": q, "coverage": bt.coverage[q], "se": bt.coverage_se[q], "without_outliers": bt.coverage_without_outliers[q],
                         **_replicate_summary(bt.replicate_coverage[q], bt.coverage[q], q)}
                        for q in bt.levels
                    ],
                    "num_outliers_predicted": bt.num_outliers_heldout,
                    **_drift_seen(bt),
                }
            )
            if split == "compute":
                try:
                    ab = allocation_backtest(posterior, runs, key=split_key, uncertainty=interval)
                except ValueError:
                    continue
                minima = ab.table[["log10_compute", "log10_params", "lower", "upper", "decades_beyond", "n05", "n50", "n95", "inside"]]
                out["allocation"].append(
                    {
                        "interval": interval,
                        "num_minima": len(ab.table),
                        "coverage": ab.coverage,
                        "se": ab.se,
                        "median_width": ab.median_width,
                        "minima": [{k: (bool(v) if k == "inside" else float(v)) for k, v in row.items()} for row in minima.to_dict("records")],
                    }
                )
    return out
