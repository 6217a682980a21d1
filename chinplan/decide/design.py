"""Which pilot runs to buy next: preposterior analysis on the posterior (issue 15).

For each candidate run (N, D), how much would its outcome narrow a decision quantity (the
90% band of the compute-optimal N at a target compute, the loss band of a plan, or the
uncertainty of a yes/no decision)? Without refitting:

1. **Outcomes.** ``O`` branches, each a "true" posterior draw ``s_o``; in branch ``o`` every
   candidate's outcome is that draw's predictive replicate (:meth:`Posterior.sample_log_loss`:
   the law with its extrapolation discrepancy, plus the fit's noise), so outcomes within a
   branch are jointly consistent.
2. **Update by importance reweighting** (preposterior analysis; Raiffa & Schlaifer 1961,
   Chaloner & Verdinelli 1995): the existing draws weighted by the outcome's likelihood,
   ``w_s ∝ p(y | theta_s)``, with the fit's own noise density
   (:func:`chinplan.inference.model.noise_distribution`) widened by the draw's extrapolation scatter,
   ``scale^2 = sigma^2 + (kappa d^(1/2))^2``. The effective sample size ``1 / sum w^2`` says
   when the weights have collapsed (a refit would then be needed; :func:`next_runs` warns).
3. **The decision quantity after the run**: weighted quantiles of the per-draw value (its
   90% band width, in decades for N*), or the binary entropy of a weighted probability;
   averaged over the outcome branches: the expected value after the run.

Batches (``k > 1``) are chosen greedily: each chosen run's log-likelihood is added to every
branch before the next is chosen, so later picks are judged given the earlier ones' outcomes
in the same branch. Greedy selection is a fair approximation here because the expected
reduction of a band's width behaves like a diminishing-returns (submodular) set function:
a run teaches less once a similar run is in the batch (Krause & Golovin 2014 for the
guarantees of greedy selection under submodularity).

Everything is vectorised over outcomes x draws and mapped over candidates with
``jax.lax.map`` (memory bounded by one candidate's ``O x S`` weights).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from chinplan import _checks
from chinplan.engine import kernels
from chinplan.extrapolated import decades_beyond, level_distance, log_loss_draws
from chinplan.law import FLOPS_PER_PARAM_TOKEN
from chinplan.inference.model import noise_distribution

__all__ = ["NextRuns", "OBJECTIVES", "candidate_grid", "next_runs", "reweight", "weighted_quantile"]

#: Built-in decision quantities: the 90% band of N* at ``target`` compute (its width in
#: decades), the 90% band of the loss of a plan ``target = (n, d)`` (its width in nats), the
#: binary entropy (nats) of P(loss of plan (n, d) <= l) for ``target = (n, d, l)``, and of
#: P(design A reaches a lower loss than design B) for ``target = (n_a, d_a, n_b, d_b)``.
#: (P(A cheaper than B) for fixed designs depends on the deployment, not on the law, so no
#: pilot run can inform it; with designs sized for a loss it is the loss question again.)
OBJECTIVES = ("nstar", "loss", "prob-target", "prob-lower-loss")
#: Warn when the mean effective sample size of a chosen run's weights falls below this share
#: of the draws: the reweighted answer then rests on too few draws (refit with the run).
MIN_ESS_SHARE = 0.02
BAND = (0.05, 0.95)


class NextRuns(NamedTuple):
    """Result of :func:`next_runs`.

    Attributes:
      table: one row per candidate, best first (largest expected reduction of the objective):
        ``params``, ``tokens``, ``flops``, ``now`` (the objective today), ``expected_after``,
        ``gain`` (now - expected_after), ``gain_per_flop``, ``ess_mean``, ``ess_min``
        (effective sample size of the weights over the outcome branches), ``decades_beyond``.
      chosen: the ``k`` runs picked greedily, in order, with the expected objective after
        each pick (the batch so far).
      objective: its name; ``units``: "decades" (nstar), "nats" (loss), "nats of entropy".
    """

    table: pd.DataFrame
    chosen: pd.DataFrame
    objective: str
    units: str
    #: FLOPs the chosen batch spends, and why the batch stops where it does.
    spent: float = 0.0
    stop: str = ""
    #: The supported shapes (:func:`supported_shapes`), or None when the posterior records no runs.
    shapes: dict | None = None


def weighted_quantile(sorted_values, weights, q):
    """Quantiles ``q`` of values (already sorted ascending) under ``weights`` (last axis; summing
    to 1): the smallest value whose cumulative weight reaches ``q`` (the inverse of the weighted
    empirical CDF; with equal weights the order statistic ``ceil(q S)``)."""
    cumulative = jnp.cumsum(weights, axis=-1)
    q = jnp.asarray(q, cumulative.dtype)
    index = jnp.sum(cumulative[..., None, :] < q[:, None] * cumulative[..., -1:, None], axis=-1)
    return sorted_values[jnp.minimum(index, sorted_values.shape[-1] - 1)]


#: The default candidates' model sizes span this many decades either side of the median N*
#: of their slice (the embedded isoFLOP slices span about 0.7), and none trains on fewer
#: tokens than parameters (the Chinchilla outliers sit below 0.41 tokens per parameter).
SLICE_HALF_WIDTH, MIN_TOKENS_PER_PARAM = 0.75, 1.0


def candidate_grid(posterior, budget: float, *, num_compute: int = 8, num_sizes: int = 16, decades: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Default candidates: isoFLOP slices at ``num_compute`` budgets log-spaced over the
    ``decades`` below ``budget``, each with ``num_sizes`` model sizes log-spaced
    :data:`SLICE_HALF_WIDTH` decades either side of the law's median compute-optimal N there
    (so every slice brackets its valley, as the allocation back-test needs), without runs of
    fewer than :data:`MIN_TOKENS_PER_PARAM` tokens per parameter. Returns ``(n, d)`` arrays."""
    compute = np.logspace(math.log10(budget) - decades, math.log10(budget), num_compute)
    centre = posterior.median_law_log_n_opt(np.log(compute))
    offsets = np.linspace(-SLICE_HALF_WIDTH, SLICE_HALF_WIDTH, num_sizes) * math.log(10.0)
    n = np.exp(centre[:, None] + offsets[None, :]).reshape(-1)
    d = np.repeat(compute, num_sizes) / (FLOPS_PER_PARAM_TOKEN * n)
    keep = d >= MIN_TOKENS_PER_PARAM * n
    return n[keep], d[keep]


#: How far (decades) beyond the fitted runs' parameters and tokens per parameter a pilot run
#: may go and still count as supported: its outcome is then simulated near the data.
SHAPE_MARGIN = 0.5


def supported_shapes(posterior, margin: float = SHAPE_MARGIN) -> dict | None:
    """The shapes the fit supports: log10 parameters and log10 tokens per parameter within the
    fitted runs' range, widened by ``margin`` decades each way; None without recorded runs."""
    try:
        data = posterior.to_arviz().get("constant_data")
    except (AttributeError, ValueError):
        return None
    if data is None or "log_n" not in data or "log_d" not in data:
        return None
    l10n = np.asarray(data["log_n"].values, np.float64) / math.log(10.0)
    ratio = np.asarray(data["log_d"].values, np.float64) / math.log(10.0) - l10n
    return {"log10_params": (float(l10n.min()) - margin, float(l10n.max()) + margin),
            "log10_tokens_per_param": (float(ratio.min()) - margin, float(ratio.max()) + margin), "margin": margin}


def _inside(shapes: dict, n, d) -> np.ndarray:
    l10n = np.log10(np.asarray(n, np.float64))
    ratio = np.log10(np.asarray(d, np.float64)) - l10n
    (n_lo, n_hi), (r_lo, r_hi) = shapes["log10_params"], shapes["log10_tokens_per_param"]
    return (l10n >= n_lo) & (l10n <= n_hi) & (ratio >= r_lo) & (ratio <= r_hi)


def describe_shapes(shapes: dict | None) -> str:
    """'parameters 18.1M-44.1B, tokens/param 1.2-1078 (the fitted runs' range widened by 0.5 decades)'."""
    if shapes is None:
        return "no fitted runs recorded"
    (n_lo, n_hi), (r_lo, r_hi) = shapes["log10_params"], shapes["log10_tokens_per_param"]
    return (f"parameters {_count(10 ** n_lo)}-{_count(10 ** n_hi)}, tokens/param {10 ** r_lo:.3g}-{10 ** r_hi:.4g} "
            f"(the fitted runs' range widened by {shapes['margin']:g} decades)")  # fmt: skip


def _count(value: float) -> str:
    from chinplan.format import human_count

    return human_count(value)


def _per_draw_values(objective, theta, target) -> tuple[jax.Array, str]:
    """(S,) per-draw values of the decision quantity, and its kind ("width" or "entropy")."""
    if callable(objective):
        values = jax.vmap(objective)(theta)
        return values, "entropy" if values.dtype == jnp.bool_ else "width"
    if objective == "nstar":
        compute = _checks.positive_number("target", target)
        return jax.vmap(lambda th: jnp.log10(kernels.plan(th, compute)["n"]))(theta), "width"
    if objective == "loss":
        n, d = (_checks.positive_number(f"target[{i}]", x) for i, x in enumerate(_pair(target, 2)))
        return jax.vmap(lambda th: kernels.loss(th, n, d))(theta), "width"
    if objective == "prob-lower-loss":
        n_a, d_a, n_b, d_b = (_checks.positive_number(f"target[{i}]", x) for i, x in enumerate(_pair(target, 4)))
        return jax.vmap(lambda th: kernels.lower_loss(th, n_a, d_a, n_b, d_b))(theta), "entropy"
    n, d, level = (_checks.positive_number(f"target[{i}]", x) for i, x in enumerate(_pair(target, 3)))
    return jax.vmap(lambda th: kernels.loss(th, n, d) <= level)(theta), "entropy"


def _pair(target, size: int):
    if not isinstance(target, (tuple, list)) or len(target) != size:
        raise ValueError(f"target must be a tuple of {size} numbers for this objective, got {target!r}")
    return target


def _entropy(p):
    p = jnp.clip(p, 1e-12, 1 - 1e-12)
    return -(p * jnp.log(p) + (1 - p) * jnp.log1p(-p))


def _log_likelihood(likelihood, nu, outcome, loc, scale):
    """log p(outcome | draw) under the fit's noise density; broadcasting (O, 1) x (1, S)."""
    return noise_distribution(likelihood, loc, scale, nu).log_prob(outcome)


@functools.partial(jax.jit, static_argnames=("likelihood",))
def _candidate_log_likelihood(c, mean, scale, outcomes, nu, *, likelihood):
    """(O, S) log-likelihood of candidate ``c``'s outcome in every branch under every draw."""
    return _log_likelihood(likelihood, nu, outcomes[:, c][:, None], mean[:, c][None, :], scale[:, c][None, :])


@functools.partial(jax.jit, static_argnames=("likelihood", "is_width"))
def _score(values, mean, scale, outcomes, base_ll, nu, *, likelihood, is_width):
    """Expected objective after each candidate, and the mean and least ESS of its weights.

    values (S,) per-draw decision values; mean and scale (S, C) the likelihood's location
    and scale at each candidate; outcomes (O, C); base_ll (O, S) the log-likelihood of runs
    already chosen in each branch; nu (1, S) for the Student-t (else None).
    """
    order = jnp.argsort(values)
    sorted_values = values[order].astype(mean.dtype)
    indicator = values.astype(mean.dtype)

    def one(c):
        w = jax.nn.softmax(base_ll + _candidate_log_likelihood(c, mean, scale, outcomes, nu, likelihood=likelihood), axis=-1)
        ess = 1.0 / jnp.sum(w**2, axis=-1)
        if is_width:
            lo, hi = weighted_quantile(sorted_values, w[:, order], jnp.asarray(BAND)).T
            objective = hi - lo
        else:
            objective = _entropy(w @ indicator)
        se = jnp.std(objective) / jnp.sqrt(objective.shape[0])  # Monte Carlo error over the outcome branches
        return jnp.mean(objective), jnp.mean(ess), jnp.min(ess), se

    return jax.lax.map(one, jnp.arange(mean.shape[1]))


def _likelihood_scale(posterior, theta, log_n, log_d):
    """(S, C) scale of an outcome's density per draw: ``sqrt(sigma^2 + (kappa d^(1/2))^2)``."""
    dtype = jnp.result_type(float)
    sigma = jnp.asarray(posterior.draws("sigma"), dtype)[:, None]
    spread = np.asarray(theta.kappa, np.float64)[:, None] * np.asarray(level_distance(posterior.domain, log_n, log_d))[None, :]
    return jnp.sqrt(sigma**2 + jnp.asarray(spread, dtype) ** 2)


def _nu(posterior):
    return jnp.asarray(posterior.draws("nu"), jnp.result_type(float))[None, :] if posterior.likelihood == "student_t" else None


def reweight(posterior, n, d, loss, *, uncertainty: str = "extrapolation") -> np.ndarray:
    """Importance weights (summing to 1, one per posterior draw) of the posterior updated with
    new runs ``(n, d, loss)`` without refitting: ``w_s ∝ prod_r p(log loss_r | theta_s)`` under
    the fit's noise density and the draw's extrapolation scatter (module docstring). Check the
    effective sample size ``1 / sum(w^2)``: when it is small, refit with the runs instead."""
    n, d, loss = (np.atleast_1d(_checks.positive(name, x)).astype(np.float64).reshape(-1) for name, x in (("n", n), ("d", d), ("loss", loss)))
    n, d, loss = np.broadcast_arrays(n, d, loss)
    log_n, log_d = np.log(n), np.log(d)
    theta = posterior.extrapolated_params(uncertainty)
    dtype = jnp.result_type(float)
    mean = jnp.asarray(log_loss_draws(theta, jnp.asarray(log_n, dtype), jnp.asarray(log_d, dtype)), dtype)
    scale = _likelihood_scale(posterior, theta, log_n, log_d)
    nu = _nu(posterior)
    ll = _log_likelihood(posterior.likelihood, None if nu is None else nu.T, jnp.asarray(np.log(loss), dtype), mean, scale)
    total = np.asarray(jnp.sum(ll, axis=1), np.float64)
    w = np.exp(total - total.max())
    return w / w.sum()


def next_runs(
    posterior,
    *,
    target,
    budget: float,
    objective: str | Callable = "nstar",
    candidates: tuple | None = None,
    k: int = 1,
    key: jax.Array,
    num_outcomes: int = 64,
    uncertainty: str = "extrapolation",
) -> NextRuns:
    """The pilot runs that most narrow a decision, by preposterior analysis (module docstring).

    Args:
      posterior: a Chinchilla-law :class:`chinplan.Posterior`.
      target: the decision's scenario: a compute budget for ``"nstar"``, a plan ``(n, d)`` for
        ``"loss"``, ``(n, d, target_loss)`` for ``"prob-target"``; ignored for a callable.
      budget: FLOPs available for the pilot runs (each candidate's ``6 N D`` must fit; a batch
        of ``k`` must fit together).
      objective: one of :data:`OBJECTIVES`, or ``fn(theta) -> value`` of one draw (an
        :class:`~chinplan.extrapolation.ExtrapolatedLaw`; a real value is judged by its 90%
        band width, a boolean by the binary entropy of its probability).
      candidates: ``(n, d)`` arrays; default :func:`candidate_grid` of ``budget``.
      k: how many runs to choose (greedy, within the budget).
      key: PRNG key of the simulated outcomes.
      num_outcomes: simulated outcomes (branches) per candidate.
      uncertainty: ``"extrapolation"`` (default) or ``"law"``: the predictive of the outcomes
        and the draws of the decision.

    Returns:
      :class:`NextRuns`.
    """
    if posterior.law != "chinchilla":
        raise ValueError(f"next_runs needs a Chinchilla-law posterior, got law={posterior.law!r}")
    budget = _checks.positive_number("budget", budget)
    k = _checks.integer("k", k, low=1)
    num_outcomes = _checks.integer("num_outcomes", num_outcomes, low=2)
    if num_outcomes > posterior.num_draws:  # each outcome is the replicate of one distinct draw
        raise ValueError(f"num_outcomes must be at most the posterior's {posterior.num_draws} draws (each simulated outcome "
                         f"is one draw's replicate; valid range [2, {posterior.num_draws}]), got {num_outcomes}")  # fmt: skip
    if not callable(objective):
        _checks.one_of("objective", objective, OBJECTIVES)
    if candidates is None:
        n, d = candidate_grid(posterior, budget)
    else:
        if not isinstance(candidates, (tuple, list)) or len(candidates) != 2:
            raise ValueError("candidates must be a pair (n, d) of arrays")
        n, d = np.broadcast_arrays(_checks.positive("candidates[0]", candidates[0]), _checks.positive("candidates[1]", candidates[1]))
        n, d = np.atleast_1d(n).astype(np.float64).reshape(-1), np.atleast_1d(d).astype(np.float64).reshape(-1)
    shapes = supported_shapes(posterior)
    if candidates is None and shapes is not None:  # the default grid keeps to the supported shapes
        inside = _inside(shapes, n, d)
        if inside.any():
            n, d = n[inside], d[inside]
    flops = FLOPS_PER_PARAM_TOKEN * n * d
    affordable = flops <= budget * (1 + 1e-12)
    if not affordable.any():
        raise ValueError(f"budget: no candidate fits in {budget:.3g} FLOPs (the smallest needs {flops.min():.3g})")
    n, d, flops = n[affordable], d[affordable], flops[affordable]
    supported = np.ones(n.shape, bool) if shapes is None else _inside(shapes, n, d)

    theta = posterior.extrapolated_params(uncertainty)
    values, kind = _per_draw_values(objective, theta, target)
    log_n, log_d = np.log(n), np.log(d)
    mean, replicate = posterior.sample_log_loss(log_n, log_d, key=key, uncertainty=uncertainty)
    num_draws = mean.shape[0]
    if num_outcomes > num_draws:  # each branch's truth is a distinct draw
        raise ValueError(f"num_outcomes must be at most the posterior's {num_draws} draws (each outcome branch is a distinct draw), got {num_outcomes}")
    truth = np.asarray(jax.random.choice(jax.random.fold_in(key, 1), num_draws, (num_outcomes,), replace=False))
    outcomes = replicate[truth]  # (O, C): branch o's outcomes all come from draw truth[o]
    dtype = jnp.result_type(float)
    scale = _likelihood_scale(posterior, theta, log_n, log_d)
    nu = _nu(posterior)

    mean_j, outcomes_j = jnp.asarray(mean, dtype), jnp.asarray(outcomes, dtype)
    is_width = kind == "width"
    sorted_now = jnp.sort(values.astype(dtype))
    uniform = jnp.full((1, num_draws), 1.0 / num_draws, dtype)
    if is_width:
        lo, hi = weighted_quantile(sorted_now, uniform, jnp.asarray(BAND))[0]
        now = float(hi - lo)
    else:
        now = float(_entropy(jnp.mean(values.astype(dtype))))

    base_ll = jnp.zeros((num_outcomes, num_draws), dtype)
    remaining, chosen_rows, table, stop = budget, [], None, f"{k} run(s) chosen, as asked (-k)"
    min_flops = float(flops.min())
    for pick in range(k):
        expected, ess_mean, ess_min, se = _score(values, mean_j, scale, outcomes_j, base_ll, nu, likelihood=posterior.likelihood, is_width=is_width)
        expected, ess_mean, ess_min, se = (np.asarray(x, np.float64) for x in (expected, ess_mean, ess_min, se))
        if pick == 0:
            table = pd.DataFrame({
                "params": n, "tokens": d, "flops": flops, "now": now, "expected_after": expected,
                "gain": now - expected, "gain_per_flop": (now - expected) / flops, "ess_mean": ess_mean, "ess_min": ess_min,
                "decades_beyond": decades_beyond(posterior.domain, log_n, log_d)[0], "supported": supported,
            })  # fmt: skip
        # leave room for the picks still to come (each at least the cheapest candidate)
        room = remaining - (k - pick - 1) * min_flops
        score = np.where((flops <= room * (1 + 1e-12)) & (supported | ~supported.any()), expected, np.inf)
        score[[row["index"] for row in chosen_rows]] = np.inf  # each run once
        if not np.isfinite(score).any():
            stop = f"no further supported candidate fits the {remaining:.3g} FLOPs left"
            break
        # The batch rule: the least expected band after the batch; among candidates within the
        # simulation's error of it, the one that spends most (larger runs, nearer the target):
        # ranking by gain per FLOP would always pick the cheapest corner.
        best = int(np.argmin(score))
        tied = np.isfinite(score) & (score <= score[best] + se[best])
        best = int(np.flatnonzero(tied)[np.argmax(flops[tied])])
        remaining -= flops[best]
        base_ll = base_ll + _candidate_log_likelihood(best, mean_j, scale, outcomes_j, nu, likelihood=posterior.likelihood)
        chosen_rows.append({"index": best, "params": n[best], "tokens": d[best], "flops": flops[best], "expected_after": expected[best],
                            "ess_mean": ess_mean[best]})  # fmt: skip
    chosen = pd.DataFrame(chosen_rows).drop(columns="index", errors="ignore")
    if len(chosen) and (chosen["ess_mean"] < MIN_ESS_SHARE * num_draws).any():
        warnings.warn(
            f"next_runs: the weights of a chosen run keep fewer than {MIN_ESS_SHARE:.0%} of the {num_draws} draws "
            f"(effective sample size {chosen['ess_mean'].min():.0f}); its expected effect is uncertain: refit with the run",
            stacklevel=2,
        )
    table = table.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)
    units = {"nstar": "decades", "loss": "nats"}.get(objective if isinstance(objective, str) else "", "nats of entropy" if not is_width else "value")
    spent = float(chosen["flops"].sum()) if len(chosen) else 0.0
    if not supported.all():
        chosen_outside = len(chosen) and not supported[[row["index"] for row in chosen_rows]].all()
        warnings.warn(f"next_runs: {int((~supported).sum())} of {len(supported)} candidates lie outside the shapes the fitted runs "
                      f"support ({describe_shapes(shapes)}): their simulated outcomes rest on the law alone; "
                      + ("a chosen run is among them" if chosen_outside else "they are marked (supported = False) and not chosen"),
                      stacklevel=2)  # fmt: skip
    name = objective if isinstance(objective, str) else getattr(objective, "__name__", "custom")
    return NextRuns(table, chosen, name, units, spent, stop, shapes)
