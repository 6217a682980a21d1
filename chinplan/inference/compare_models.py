"""Comparing model choices by predictive accuracy, and averaging plans over models.

* :func:`compare` estimates each model's expected log pointwise predictive density (ELPD)
  by Pareto-smoothed importance-sampling leave-one-out cross-validation (PSIS-LOO; Vehtari,
  Gelman & Gabry 2017) or WAIC, with arviz, and returns ``az.compare``'s table (elpd, se,
  elpd_diff, dse, p, stacking weights) plus Pareto-k counts per model. Runs whose LOO
  estimate is unreliable (Pareto k above arviz's threshold, ``min(1 - 1/log10 S, 0.7)`` for
  S draws) are reported in a :class:`ParetoKWarning` naming the model and the runs.
* :func:`mix_draws` and :func:`average_plans` implement Bayesian model averaging by
  stacking (Yao, Vehtari, Simpson & Gelman 2018, "Using stacking to average Bayesian
  predictive distributions", Bayesian Analysis 13(3)): the stacking weights ``w_k`` maximise
  the LOO log score of the mixture ``sum_k w_k p(y | M_k)``, and a plan is then computed
  under the mixture posterior ``sum_k w_k p(theta | y, M_k)``, realised by taking
  ``round(w_k M)`` draws from model k (all of them, in order, when that is all of the
  model's draws; otherwise a random subset without replacement, or with replacement when
  more are needed than exist).

Every posterior passed here must come from ``chinplan.fit(..., log_likelihood=True)`` on the
same runs (the data hashes are checked): LOO compares predictions of the same observations.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.typing import ArrayLike

from chinplan.engine.reductions import DEFAULT_QUANTILES, Bands, bands
from chinplan.inference.posterior import Posterior
from chinplan.law import LawParams

__all__ = ["ParetoKWarning", "compare", "stacking_weights", "mix_draws", "average_plans", "law_params"]


class ParetoKWarning(UserWarning):
    """Some runs have a Pareto k above the reliability threshold: their LOO term is unreliable."""


def _check_posteriors(posteriors: Mapping[str, Posterior], *, need_log_likelihood: bool) -> None:
    if not isinstance(posteriors, Mapping) or len(posteriors) == 0:
        raise ValueError("posteriors must be a non-empty dict {name: Posterior}")
    for name, post in posteriors.items():
        if not isinstance(post, Posterior):
            raise ValueError(f"posteriors[{name!r}] must be a chinplan Posterior, got {type(post).__name__}")
        if need_log_likelihood and not post.has_log_likelihood:
            raise ValueError(
                f"posteriors[{name!r}] has no pointwise log-likelihood; fit it with chinplan.fit(..., log_likelihood=True)"
            )
    hashes = {name: post.attrs.get("data_sha256") for name, post in posteriors.items()}
    if len(set(hashes.values())) > 1:
        detail = ", ".join(f"{n}: {str(h)[:12]}" for n, h in hashes.items())
        raise ValueError(f"the posteriors were fitted to different runs (data hashes {detail}); LOO needs the same runs")


def compare(posteriors: Mapping[str, Posterior], ic: str = "loo", *, method: str = "stacking") -> pd.DataFrame:
    """Ranks models by estimated out-of-sample predictive accuracy (PSIS-LOO or WAIC).

    Args:
      posteriors: ``{name: Posterior}``, at least two, each fitted with
        ``log_likelihood=True`` to the same runs.
      ic: ``"loo"`` (default, PSIS-LOO) or ``"waic"``.
      method: how ``az.compare`` weights the models: ``"stacking"`` (default; Yao et al.
        2018), ``"BB-pseudo-BMA"`` or ``"pseudo-BMA"``.

    Returns:
      ``az.compare``'s DataFrame, best model first: ``rank``, ``elpd_loo`` (or
      ``elpd_waic``), ``p_loo`` (effective number of parameters), ``elpd_diff``, ``weight``
      (sum 1), ``se``, ``dse``, ``warning``, ``scale``; for LOO also ``pareto_k_max``,
      ``n_pareto_k_ok`` (k <= arviz's threshold), ``n_pareto_k_bad`` (threshold < k <= 1) and
      ``n_pareto_k_very_bad`` (k > 1).

    Warns:
      ParetoKWarning: for every model with runs above the Pareto-k threshold, naming the
        runs (their row numbers in the runs table) and the largest k.

    Raises:
      ValueError: fewer than two models, a bad ``ic``, a posterior without the pointwise
        log-likelihood, or posteriors of different runs.
    """
    if ic not in ("loo", "waic"):
        raise ValueError(f"ic must be 'loo' or 'waic', got {ic!r}")
    _check_posteriors(posteriors, need_log_likelihood=True)
    if len(posteriors) < 2:
        raise ValueError(f"compare needs at least two models, got {len(posteriors)}")
    elpds, kstats = {}, {}
    for name, post in posteriors.items():
        idata = post.to_arviz()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if ic == "loo":
                elpd = az.loo(idata, pointwise=True, var_name="log_loss")
            else:
                elpd = az.waic(idata, pointwise=True, var_name="log_loss")
        elpds[name] = elpd
        if ic == "loo":
            k = np.asarray(elpd.pareto_k).reshape(-1)
            good_k = float(getattr(elpd, "good_k", 0.7))
            kstats[name] = dict(
                pareto_k_max=float(np.max(k)),
                n_pareto_k_ok=int(np.sum(k <= good_k)),
                n_pareto_k_bad=int(np.sum((k > good_k) & (k <= 1.0))),
                n_pareto_k_very_bad=int(np.sum(k > 1.0)),
            )
            bad = np.flatnonzero(k > good_k)
            if bad.size:
                shown = ", ".join(f"{i} (k={k[i]:.2f})" for i in bad[np.argsort(-k[bad])][:10])
                warnings.warn(
                    f"model {name!r}: {bad.size} run(s) with Pareto k > {good_k:.2f}, so their PSIS-LOO "
                    f"terms are unreliable: runs {shown}{' ...' if bad.size > 10 else ''}. "
                    "Treat the elpd difference with care (or refit without those runs for exact LOO).",
                    ParetoKWarning,
                    stacklevel=2,
                )
        else:
            for w in caught:
                if "posterior variance of the log predictive densities exceeds 0.4" in str(w.message):
                    warnings.warn(f"model {name!r}: {w.message}", ParetoKWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*")
        warnings.filterwarnings("ignore", message=".*posterior variance of the log predictive.*")
        table = az.compare(elpds, ic=ic, method=method)
    if kstats:
        for column in ("pareto_k_max", "n_pareto_k_ok", "n_pareto_k_bad", "n_pareto_k_very_bad"):
            table[column] = [kstats[name][column] for name in table.index]
    return table


def stacking_weights(posteriors: Mapping[str, Posterior], weights) -> np.ndarray:
    """Weights aligned with ``posteriors``' order, non-negative and normalised to sum 1.

    ``weights`` may be a sequence in the dict's order, a mapping ``{name: weight}`` (missing
    names get 0), or the DataFrame returned by :func:`compare` (its ``weight`` column).
    """
    names = list(posteriors)
    if isinstance(weights, pd.DataFrame):
        if "weight" not in weights.columns:
            raise ValueError("a weights DataFrame must have a 'weight' column (the output of compare())")
        weights = weights["weight"].to_dict()
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights name models {unknown} that are not in posteriors {names}")
        values = np.array([float(weights.get(n, 0.0)) for n in names])
    else:
        values = np.asarray(weights, dtype=np.float64).reshape(-1)
        if values.size != len(names):
            raise ValueError(f"weights must have one entry per posterior ({len(names)}), got {values.size}")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {values.tolist()}")
    return values / values.sum()


def law_params(posterior: Posterior):
    """The draws of a posterior's law: a LawParams (Chinchilla) or a KaplanParams (Kaplan)."""
    return posterior.params if posterior.law == "chinchilla" else posterior.kaplan_params


def _counts(w: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder rounding of ``w * total`` to integers summing to ``total``."""
    raw = w * total
    counts = np.floor(raw).astype(int)
    short = total - counts.sum()
    if short > 0:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _selection(posteriors, weights, key, num_draws):
    """[(name, indices)] of the draws each model contributes to the mixture."""
    names = list(posteriors)
    w = stacking_weights(posteriors, weights)
    sizes = np.array([posteriors[n].num_draws for n in names])
    if num_draws is None:
        num_draws = int(min(sizes[w > 0]))
    if not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
        raise ValueError(f"num_draws must be a positive integer, got {num_draws!r}")
    counts = _counts(w, int(num_draws))
    keys = jax.random.split(key, len(names))
    chosen = []
    for name, size, count, k in zip(names, sizes, counts, keys):
        if count == 0:
            continue
        if count == size:
            idx = np.arange(size)
        else:
            idx = np.sort(np.asarray(jax.random.choice(k, size, (int(count),), replace=bool(count > size))))
        chosen.append((name, idx))
    return chosen


def mix_draws(posteriors: Mapping[str, Posterior], weights, *, key: jax.Array, num_draws: int | None = None) -> LawParams:
    """Draws from the stacking mixture of Chinchilla-law posteriors, as one LawParams.

    Bayesian model averaging by stacking (Yao et al. 2018): ``round(w_k M)`` draws come from
    model k (see the module docstring), so any chinplan function of a LawParams with a
    leading draw axis (:func:`chinplan.bands`, :func:`chinplan.probability`, the decide
    module, plots) runs on the averaged posterior unchanged.

    Args:
      posteriors: ``{name: Posterior}``, all of the Chinchilla law.
      weights: see :func:`stacking_weights` (e.g. the DataFrame from :func:`compare`).
      key: PRNG key for the subsampling.
      num_draws: size M of the mixture; default the fewest draws of any model with weight > 0.

    Raises:
      TypeError: a Kaplan-law posterior has weight > 0 (no LawParams; use :func:`average_plans`).
    """
    _check_posteriors(posteriors, need_log_likelihood=False)
    chosen = _selection(posteriors, weights, key, num_draws)
    for name, _ in chosen:
        if posteriors[name].law != "chinchilla":
            raise TypeError(
                f"posteriors[{name!r}] is of the {posteriors[name].law!r} law, which has no LawParams; "
                "use average_plans with a fn for each law"
            )
    return _gather(posteriors, chosen)


def _gather(posteriors, chosen) -> LawParams:
    parts = [[jnp.asarray(leaf)[idx] for leaf in posteriors[name].params] for name, idx in chosen]
    return LawParams(*(jnp.concatenate(leaves) for leaves in zip(*parts)))


def average_plans(
    posteriors: Mapping[str, Posterior],
    weights,
    fn: Callable | Mapping[str, Callable],
    *scenario_args,
    key: jax.Array,
    q: ArrayLike = DEFAULT_QUANTILES,
    num_draws: int | None = None,
    chunk_size: int | None = None,
    nan_policy: str = "propagate",
) -> Bands:
    """Quantile bands of a plan under the stacking mixture of several models' posteriors.

    Bayesian model averaging by stacking (Yao et al. 2018): with weights ``w`` (e.g. the
    ``weight`` column of :func:`compare`), the bands are those of ``fn`` over
    ``round(w_k M)`` draws of each model k, computed by :func:`chinplan.bands` (streamed over
    draws and scenarios). With weights ``(1, 0, ...)`` this is exactly ``bands(fn,
    first.params, ...)``.

    Args:
      posteriors: ``{name: Posterior}`` of the same runs.
      weights: see :func:`stacking_weights`.
      fn: ``fn(theta, *scenario)`` for one draw and one scenario. When every model with
        weight > 0 is of the Chinchilla law, ``theta`` is a LawParams. Otherwise give a
        mapping ``{name: fn}`` (or a single fn that accepts both): model k's ``theta`` is a
        :class:`~chinplan.inference.model.KaplanParams` for a Kaplan law; the outputs of all models
        must have the same structure, shapes and dtypes.
      *scenario_args, q, chunk_size, nan_policy: as :func:`chinplan.bands`.
      key: PRNG key for the subsampling of draws.
      num_draws: size M of the mixture; default the fewest draws of any model with weight > 0.

    Returns:
      :class:`chinplan.Bands` of the mixture.
    """
    _check_posteriors(posteriors, need_log_likelihood=False)
    chosen = _selection(posteriors, weights, key, num_draws)
    if isinstance(fn, Mapping):
        missing = [name for name, _ in chosen if name not in fn]
        if missing:
            raise ValueError(f"fn has no function for the models {missing}")
        fns = [fn[name] for name, _ in chosen]
    elif callable(fn):
        fns = [fn] * len(chosen)
    else:
        raise ValueError(f"fn must be a callable or a mapping of model name to callable, got {type(fn).__name__}")
    if all(posteriors[name].law == "chinchilla" for name, _ in chosen) and all(f is fns[0] for f in fns):
        mixed = _gather(posteriors, chosen)
        return bands(fns[0], mixed, *scenario_args, q=q, chunk_size=chunk_size, nan_policy=nan_policy)
    # Different laws: one pytree holding every model's slot; each draw carries its model's
    # index and fills the other slots with a valid placeholder (that model's first draw),
    # and lax.switch evaluates the right model's fn.
    full = [law_params(posteriors[name]) for name, _ in chosen]
    slots = []
    for j, params in enumerate(full):
        pieces = []
        for i, (_, idx) in enumerate(chosen):
            if i == j:
                pieces.append(jax.tree_util.tree_map(lambda leaf, idx=idx: jnp.asarray(leaf)[idx], params))
            else:
                pieces.append(jax.tree_util.tree_map(lambda leaf, m=len(idx): jnp.broadcast_to(jnp.asarray(leaf)[:1], (m,)), params))
        slots.append(jax.tree_util.tree_map(lambda *leaves: jnp.concatenate(leaves), *pieces))
    which = jnp.concatenate([jnp.full((len(idx),), i, jnp.result_type(float)) for i, (_, idx) in enumerate(chosen)])
    theta = (which, tuple(slots))

    def mixed_fn(th, *scenario):
        index, per_model = th
        index = jnp.round(index).astype(jnp.int32)  # the engine hands params leaves over as floats
        branches = [lambda s, f=f, p=p: f(p, *s) for f, p in zip(fns, per_model)]
        return jax.lax.switch(index, branches, scenario)

    return bands(mixed_fn, theta, *scenario_args, q=q, chunk_size=chunk_size, nan_policy=nan_policy)
