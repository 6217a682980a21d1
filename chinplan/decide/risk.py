"""Decisions under the posterior: probabilities, risk measures and chance-constrained choices.

Each decision reduces a per-draw kernel of :mod:`chinplan.kernels` over the posterior draws
with :mod:`chinplan.engine` (never materialising draws x scenarios). Cost questions need a
deployment sampled once per law draw: :func:`draw_pairs` checks the law draws and samples the
deployment ONCE, giving a :class:`Draws` that every cost wrapper accepts in place of
``params`` (then without ``deployment`` or ``key``), so one decision over several designs
validates once, samples once and prices every design under the same draws (common random
numbers). Every wrapper also takes plain ``params`` (LawParams with a leading draw axis).

JAX callers use the kernels and the raw-array wrappers (:func:`prob_target`,
:func:`expected_cost`, :func:`cost_bands`, :func:`cost_cvar`, :func:`prob_cheaper`,
:func:`smallest_model`); users get pandas/xarray tables from :func:`evaluate_designs`,
:func:`chance_constrained` (the regret of a point-estimate plan: :mod:`chinplan.regret`).
"""

from __future__ import annotations

import collections

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks, costs, engine
from chinplan.engine import kernels
from chinplan.costs import Deployment
from chinplan.decide.curves import crossing  # noqa: F401  (re-exported: chinplan.decide.risk.crossing)
from chinplan.extrapolated import ExtrapolatedLaw, carried_smallest, plan_decades_below, plan_decades_beyond
from chinplan.engine.kernels import PlanCost, cheaper, design_cost, loss_at_most, params_for_loss, target_plan_cost
from chinplan.format import quantile_name
from chinplan.law import LawParams, as_float
from chinplan.optima import sensible_budget

__all__ = [
    "loss_at_most",
    "design_cost",
    "cheaper",
    "params_for_loss",
    "PlanCost",
    "target_plan_cost",
    "Draws",
    "draw_pairs",
    "draw_fraction",
    "median_params",
    "subset_draws",
    "crossing",
    "draw_count",
    "plan_bands",
    "tco_bands",
    "prob_lower_loss",
    "target_cost_bands",
    "prob_target",
    "expected_cost",
    "cost_bands",
    "cost_cvar",
    "prob_cheaper",
    "smallest_model",
    "unreachable_fraction",
    "evaluate_designs",
    "chance_constrained",
]


# --------------------------------------------------------------------------------------
# Draws: checked once, sampled once.
# --------------------------------------------------------------------------------------


class Draws(NamedTuple):
    """Checked law draws and one sampled deployment per draw: the cost kernels' ``theta``.

    A pytree with one leading draw axis on every leaf; the engine hands each kernel
    ``theta = (LawParams, Deployment)`` of scalars. Make it with :func:`draw_pairs`.
    """

    law: LawParams | ExtrapolatedLaw
    deployment: Deployment


def draw_pairs(params: LawParams | Draws, deployment: Deployment | None = None, *, key: jax.Array | None = None) -> Draws:
    """``(params, deployment)`` with one deployment draw per law draw, checked once.

    Checks every constant of ``params`` is finite and > 0 in every draw, checks the
    deployment and samples its distribution fields once per draw
    (:func:`chinplan.costs.sample_deployment`); ``key`` is required when any field is a
    distribution. ``deployment=None`` uses ``Deployment()`` (training only, default hardware
    and prices). A :class:`Draws` is checked again (law constants, deployment values and its
    products of counts, one draw axis: a Draws built by hand is an argument like any other)
    and returned as it is.
    """
    if isinstance(params, Draws):
        if deployment is not None or key is not None:
            raise ValueError("params is already a Draws (law draws with a sampled deployment): pass no deployment or key")
        return _checked_draws(params)
    num = _checks.law_draws(_constants(params))
    return _verified(Draws(params, costs.sample_deployment(Deployment() if deployment is None else deployment, num, key=key)))


#: The Draws objects already checked (by identity; strong references, so an id is never reused
#: while listed): a Draws from draw_pairs, or one checked once, is not checked again.
_VERIFIED: collections.OrderedDict = collections.OrderedDict()


def _verified(draws: Draws) -> Draws:
    _VERIFIED[id(draws)] = draws
    while len(_VERIFIED) > 16:
        _VERIFIED.popitem(last=False)
    return draws


def _checked_draws(draws: Draws) -> Draws:
    """A :class:`Draws` after its boundary checks: every law constant finite and > 0 in every
    draw, a sampled deployment of valid values, and one draw axis for both. Checked once: a
    Draws made by :func:`draw_pairs` (or checked before) is returned as it is."""
    if _VERIFIED.get(id(draws)) is draws:
        return draws
    num = _checks.law_draws(_constants(draws.law))
    if not isinstance(draws.deployment, Deployment):
        raise ValueError(f"params.deployment must be a chinplan.costs.Deployment, got {type(draws.deployment).__name__}")
    if _checks.draw_axis((draws.law, jax.tree.map(jnp.atleast_1d, draws.deployment)), "params") != num:
        raise ValueError("params (a Draws) must have one draw axis for its law and its deployment")
    costs.checked_deployment(draws.deployment)
    return _verified(draws)


def _constants(params: LawParams | ExtrapolatedLaw) -> LawParams:
    """The law's constants: LawParams itself, or an extrapolation-aware draw's ``law``."""
    return params.law if isinstance(params, ExtrapolatedLaw) else params


def _law_draws(params: LawParams | ExtrapolatedLaw | Draws) -> tuple[LawParams | ExtrapolatedLaw, int]:
    """The law draws (LawParams, or ExtrapolatedLaw for the loss questions that carry the
    extrapolation component) and their number; checked unless they come from a :class:`Draws`."""
    if isinstance(params, Draws):
        return _checked_draws(params).law, int(np.shape(_constants(params.law).E)[0])
    return params, _checks.law_draws(_constants(params))


def draw_count(params: LawParams | ExtrapolatedLaw | Draws) -> int:
    """The number of posterior draws of ``params``."""
    return _law_draws(params)[1]


def draw_fraction(params: LawParams | Draws, probability: ArrayLike) -> np.ndarray:
    """A probability over draws (a float32 k / n from the engine) as k / n in float64."""
    n = draw_count(params)
    return np.round(np.asarray(probability, np.float64) * n) / n


def _reachable(params: LawParams, name: str, target: np.ndarray) -> None:
    """A target at or below E for EVERY draw is an input error (:func:`chinplan._checks.reachable`)."""
    _checks.reachable(name, target, _constants(params).E, every=False)


def _designs(n: ArrayLike, d: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """1-D arrays of k candidate designs (N, D), checked finite and > 0."""
    n, d = np.atleast_1d(_positive("n", n)), np.atleast_1d(_positive("d", d))
    if n.ndim != 1 or n.shape != d.shape:
        raise ValueError(f"n and d must be 1-D arrays of the same length, got shapes {n.shape} and {d.shape}")
    return n, d


def median_params(params: LawParams | Draws) -> LawParams:
    """The posterior median of each constant (a point estimate; not itself a draw)."""
    law_params, _ = _law_draws(params)
    return LawParams(*(jnp.median(as_float(x), axis=0) for x in law_params))


# --------------------------------------------------------------------------------------
# Raw-array wrappers.
# --------------------------------------------------------------------------------------


def _positive(name: str, x: ArrayLike) -> np.ndarray:
    return _checks.positive(name, x, allow_empty=False)


def prob_target(
    params: LawParams | Draws,
    n: ArrayLike,
    d: ArrayLike,
    target_loss: ArrayLike,
    *,
    unique_tokens: ArrayLike | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """P(L(N, D) <= target) under the posterior, for every broadcast (n, d, target).

    The fraction of draws theta_i with L_i(N, D) <= l (an exact count over n draws). With
    ``unique_tokens`` the data-constrained loss of Muennighoff et al. 2023 is used.
    """
    law_params, _ = _law_draws(params)
    arrays = dict(n=_positive("n", n), d=_positive("d", d), target_loss=_positive("target_loss", target_loss))
    if unique_tokens is not None:
        arrays["unique_tokens"] = _positive("unique_tokens", unique_tokens)
    _checks.broadcast_shape(**arrays)
    _reachable(law_params, "target_loss", arrays["target_loss"])
    if unique_tokens is None:
        return engine.probability(loss_at_most, law_params, n, d, target_loss, chunk_size=chunk_size)
    return engine.probability(
        kernels.loss_at_most_repeated, law_params, n, d, target_loss, unique_tokens, chunk_size=chunk_size
    )


def _cost_question(params, n, d, deployment, key, field) -> tuple[Draws, object]:
    """Checked designs, the draws (sampled once) and the kernel of ``field``."""
    _checks.broadcast_shape(n=_positive("n", n), d=_positive("d", d))
    costs.check_design(n, d)  # a cost of inf is not a result
    kernel = kernels.cost_field(field)
    return draw_pairs(params, deployment, key=key), kernel


def expected_cost(
    params: LawParams | Draws,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    field: str = "dollars",
    chunk_size: int | None = None,
) -> jax.Array:
    """E[cost] of design (N, D) over the deployment's draws (``field`` of :class:`~chinplan.costs.Cost`)."""
    theta, kernel = _cost_question(params, n, d, deployment, key, field)
    return _representable(engine.expectation(kernel, theta, n, d, chunk_size=chunk_size), field, "expected_cost")


def cost_bands(
    params: LawParams | Draws,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    q: ArrayLike = engine.DEFAULT_QUANTILES,
    field: str = "dollars",
    chunk_size: int | None = None,
) -> jax.Array:
    """Quantiles of the cost of design (N, D): shape ``(len(q), *broadcast shape)``."""
    theta, kernel = _cost_question(params, n, d, deployment, key, field)
    return _representable(engine.bands(kernel, theta, n, d, q=q, chunk_size=chunk_size).values, field, "cost_bands")


def cost_cvar(
    params: LawParams | Draws,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    level: float = 0.95,
    field: str = "dollars",
    chunk_size: int | None = None,
) -> jax.Array:
    """CVaR_level of the cost: the mean of the most expensive ``1 - level`` of the draws."""
    level = _checks.level("level", level)
    theta, kernel = _cost_question(params, n, d, deployment, key, field)
    return _representable(engine.cvar(kernel, theta, n, d, level=level, chunk_size=chunk_size), field, "cost_cvar")


def _representable(values: jax.Array, field: str, what: str) -> jax.Array:
    """A fixed design's cost is finite for every draw: an inf is an overflow of the compute
    dtype (a mean or tail mean of huge costs), refused by :func:`chinplan.costs.representable_costs`."""
    costs.representable_costs({field: np.asarray(values)}, True, what)
    return values


def prob_cheaper(
    params: LawParams | Draws,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """Pairwise matrix ``M[a, b] = P(dollars(design a) < dollars(design b))``.

    Args:
      params: law draws (they fix the draw count; costs do not depend on the law), or a
        :class:`Draws` (then no ``deployment`` or ``key``).
      n, d: 1-D arrays of the k candidate designs.
      deployment: the deployment, possibly with distribution-valued fields.
      key: PRNG key for those distributions.

    Returns:
      ``(k, k)`` array; the diagonal is 0 and ``M + M.T <= 1`` (ties count for neither).
    """
    n, d = _designs(n, d)
    costs.check_design(n, d)
    theta = draw_pairs(params, deployment, key=key)
    return engine.probability(cheaper, theta, n[:, None], d[:, None], n[None, :], d[None, :], chunk_size=chunk_size)


def prob_lower_loss(params: LawParams | Draws, n: ArrayLike, d: ArrayLike, *, chunk_size: int | None = None) -> jax.Array:
    """Pairwise matrix ``M[a, b] = P(L(design a) < L(design b))`` over the law draws."""
    n, d = _designs(n, d)
    law_params, _ = _law_draws(params)
    pairs = (n[:, None], d[:, None], n[None, :], d[None, :])
    return engine.probability(kernels.lower_loss, law_params, *pairs, chunk_size=chunk_size)


def _order_statistic_level(k: int, n: int) -> float:
    """A level q whose linear-interpolation quantile is the k-th smallest of n (1-based).

    NumPy's position is q (n - 1) in float64; q is nudged down until the position is at most
    k - 1, so the quantile never exceeds the k-th order statistic by interpolating towards
    the next one (which may be ``inf``).
    """
    if n == 1:
        return 0.0
    q = np.float64(k - 1) / np.float64(n - 1)
    while q > 0 and q * (n - 1) > k - 1:
        q = np.nextafter(q, -1.0)
    return float(q)


def smallest_model(
    params: LawParams | Draws,
    target_loss: ArrayLike,
    tokens: ArrayLike,
    p: float = 0.9,
    *,
    chunk_size: int | None = None,
) -> jax.Array:
    """The smallest N with P(L(N, D) <= target) >= p, for each broadcast (target, tokens).

    Each draw needs N_i = [A_i / (l - E_i - B_i D^-beta_i)]^(1/alpha_i) (:func:`params_for_loss`)
    and L_i(N, D) <= l exactly when N >= N_i, so the answer is the k-th smallest N_i,
    k = ceil(p n): the empirical p-quantile of the requirement. ``inf`` when fewer than k
    draws can reach the target with D tokens. Exact in float32; in float64 the
    interpolation may put it below the order statistic by about 1e-13 relative. (The loss
    evaluated forward at the returned N equals the target only up to float rounding, so
    :func:`prob_target` there can read one draw short of p; 1e-5 more N in float32 is safe.)
    """
    law_params, n = _law_draws(params)
    target = _positive("target_loss", target_loss)
    _checks.broadcast_shape(target_loss=target, tokens=_positive("tokens", tokens))
    _reachable(law_params, "target_loss", target)
    p = _checks.level("p", p, low_open=True)
    k = max(1, math.ceil(p * n - 1e-9 * n))  # guard p n = integer against rounding up
    q = _order_statistic_level(k, n)
    return engine.bands(params_for_loss, law_params, tokens, target_loss, q=(q,), chunk_size=chunk_size).values[0]


def unreachable_fraction(
    params: LawParams | Draws,
    target_loss: ArrayLike,
    tokens: ArrayLike | None = None,
    *,
    chunk_size: int | None = None,
) -> jax.Array:
    """Per scenario, the fraction of posterior draws for which ``target_loss`` is unreachable.

    Without ``tokens``: the fraction with l <= E_i (no (N, D) at all reaches l; Hoffmann et
    al. 2022, Eq. 2). With ``tokens`` D: the fraction with l <= E_i + B_i D^-beta_i (no N
    reaches l with D tokens), i.e. the draws whose requirement N_i of :func:`smallest_model`
    is ``inf``. Such draws enter quantiles as ``+inf`` (an order statistic), never as NaN;
    this count says how many there are. Unlike the other wrappers, a target below every
    draw's E is allowed here (the answer is 1).
    """
    law_params, _ = _law_draws(params)
    target = _positive("target_loss", target_loss)
    if tokens is None:
        return engine.probability(kernels.below_floor, law_params, target, chunk_size=chunk_size)
    _checks.broadcast_shape(target_loss=target, tokens=_positive("tokens", tokens))
    return engine.probability(kernels.unreachable, law_params, tokens, target_loss, chunk_size=chunk_size)


def _targets(params: LawParams, target_loss: ArrayLike) -> np.ndarray:
    """Target losses as a checked 1-D host array, reachable by at least one draw."""
    targets = np.atleast_1d(_positive("target_loss", target_loss))
    if targets.ndim != 1:
        raise ValueError(f"target_loss must be a scalar or 1-D, got shape {targets.shape}")
    _reachable(params, "target_loss", targets)
    return targets


def target_cost_bands(
    params: LawParams | Draws,
    target_loss: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    q: Sequence[float] = engine.DEFAULT_QUANTILES,
    chunk_size: int | None = None,
):
    """Posterior bands of the dollar-optimal plan for each target loss and of its TCO.

    Per draw, :func:`target_plan_cost` (the plan that draw would choose knowing its own law
    and deployment); the bands show how uncertain the size, tokens and bill of reaching
    ``target_loss`` are. Unreachable draws count as ``inf`` (an honest order statistic).

    Returns:
      ``xarray.Dataset`` with variables ``n``, ``d``, ``dollars`` over
      ``("quantile", "target_loss")``; with extrapolation-aware draws also ``decades_beyond``
      and ``decades_below`` over ``target_loss``: how far the median plan lies beyond the
      fitted runs and below the smallest of them (:func:`_distances`).
    """
    theta = draw_pairs(params, deployment, key=key)
    targets = _targets(theta.law, target_loss)
    result = engine.bands(target_plan_cost, theta, targets, q=q, chunk_size=chunk_size)
    data = engine.to_dataset(result, q, dims=("target_loss",), coords={"target_loss": targets})
    mid = int(np.argmin(np.abs(np.asarray(q) - 0.5)))  # the median plan (the level nearest 0.5)
    for name, values in _distances(theta.law, data["n"].values[mid], data["d"].values[mid]).items():
        data[name] = ("target_loss", values)
    return data


def _decades_beyond(law_draws: ExtrapolatedLaw, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Decades beyond the fitted runs of plans (N, D) (:func:`chinplan.extrapolation.plan_decades_beyond`)."""
    return plan_decades_beyond(np.asarray(law_draws.domain, np.float64)[0], n, d)


def _distances(law_draws, n: np.ndarray, d: np.ndarray) -> dict:
    """``{"decades_beyond", "decades_below"}`` of plans (N, D): how far beyond the fitted runs
    (:func:`chinplan.extrapolated.plan_decades_beyond`) and below the smallest of them
    (:func:`chinplan.extrapolated.plan_decades_below`, the one owner the CLI and the sweeps
    use too), from what extrapolation-aware draws carry; each omitted when the draws do not
    know it (law-only draws know neither)."""
    if not isinstance(law_draws, ExtrapolatedLaw):
        return {}
    out = {"decades_beyond": _decades_beyond(law_draws, n, d)}
    smallest = carried_smallest(law_draws)
    if smallest is not None:
        out["decades_below"] = plan_decades_below(smallest, n, d)
    return out


def plan_bands(params: LawParams | Draws, compute: ArrayLike, q: Sequence[float] = engine.DEFAULT_QUANTILES) -> dict:
    """Bands of the compute-optimal plan (:func:`chinplan.engine.kernels.plan`) for each FLOP budget.

    Returns:
      ``{"n", "d", "tokens_per_param", "loss"}``, each a float64 array ``(len(q), len(compute))``.
    """
    law_params, _ = _law_draws(params)
    compute = sensible_budget("compute", compute, median_params(_constants(law_params)))
    result = engine.bands(kernels.plan, law_params, compute, q=_checks.levels("q", q))
    return {name: np.asarray(v, dtype=np.float64) for name, v in result.values.items()}


def tco_bands(
    params: LawParams | Draws,
    target_loss: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    optimum: str = "cost",
    q: Sequence[float] = engine.DEFAULT_QUANTILES,
    chunk_size: int | None = None,
) -> engine.Bands:
    """Per target loss, bands of the ``optimum`` plan and of the Chinchilla plan, priced.

    Per draw :func:`chinplan.engine.kernels.tco_point`: the inference-aware optimum (``"cost"``,
    least dollars, or ``"flops"``, least lifetime FLOPs; Sardana et al. 2024) and the
    training-only Chinchilla plan (Hoffmann et al. 2022) with their TCO, and the savings
    1 - dollars/dollars_chinchilla (NaN where a plan is unreachable; omitted from its bands).

    Returns:
      :class:`chinplan.engine.Bands` with values ``{"optimal": {...}, "chinchilla": {...},
      "savings"}`` over ``(len(q), len(targets))`` and the NaN fraction per output.
    """
    _checks.one_of("optimum", optimum, ("cost", "flops"))
    theta = draw_pairs(params, deployment, key=key)
    targets = _targets(theta.law, target_loss)
    result = engine.bands(kernels.tco_kernel(optimum), theta, targets, q=tuple(q), nan_policy="omit", chunk_size=chunk_size)
    for group in ("optimal", "chinchilla"):  # an inf cost of a reached plan of sensible size is refused
        costs.representable_plan_costs({f: result.values[group][f] for f in kernels.TCO_FIELDS}, f"the {group} plan")
    return result


# --------------------------------------------------------------------------------------
# Tables for users.
# --------------------------------------------------------------------------------------


def evaluate_designs(
    params: LawParams | Draws,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    target_loss: float | None = None,
    key: jax.Array | None = None,
    q: Sequence[float] = engine.DEFAULT_QUANTILES,
    level: float = 0.95,
    chunk_size: int | None = None,
):
    """One row per candidate design (N, D): loss bands, P(reach target), dollars and risk.

    Columns: ``n``, ``d``, ``train_flops`` (6ND), ``loss_mean``, ``loss_q5`` ... (quantiles
    ``q``), ``p_target`` (if ``target_loss``), ``dollars_mean``, ``dollars_q5`` ...,
    ``dollars_cvar`` (CVaR at ``level``), and with extrapolation-aware draws
    ``decades_beyond`` and ``decades_below`` (:func:`_distances`); returned as a
    ``pandas.DataFrame``. Use :func:`prob_cheaper` for the pairwise P(design a cheaper than
    design b).
    """
    import pandas as pd

    n, d = _designs(n, d)
    costs.check_design(n, d)  # a cost of inf is not a result
    level = _checks.level("level", level)
    theta = draw_pairs(params, deployment, key=key)
    names = [quantile_name(v) for v in q]
    frame = pd.DataFrame({"n": n, "d": d, "train_flops": 6.0 * n * d})  # law.training_flops, exact in float64
    frame["loss_mean"] = np.asarray(engine.expectation(kernels.loss, theta.law, n, d, chunk_size=chunk_size), np.float64)
    loss_q = np.asarray(engine.bands(kernels.loss, theta.law, n, d, q=q, chunk_size=chunk_size).values)
    for name, row in zip(names, loss_q):
        frame[f"loss_{name}"] = row
    if target_loss is not None:
        frame["p_target"] = np.asarray(prob_target(theta, n, d, target_loss, chunk_size=chunk_size))
    dollars = kernels.cost_field("dollars")
    frame["dollars_mean"] = np.asarray(engine.expectation(dollars, theta, n, d, chunk_size=chunk_size))
    for name, row in zip(names, np.asarray(engine.bands(dollars, theta, n, d, q=q, chunk_size=chunk_size).values)):
        frame[f"dollars_{name}"] = row
    frame["dollars_cvar"] = np.asarray(engine.cvar(dollars, theta, n, d, level=level, chunk_size=chunk_size))
    for name, values in _distances(theta.law, n, d).items():
        frame[name] = values
    return frame


def chance_constrained(
    params: LawParams | Draws,
    n_grid: ArrayLike,
    d_grid: ArrayLike,
    target_loss: float,
    p: float = 0.9,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    objective: str = "dollars",
    chunk_size: int | None = None,
):
    """The best design on an N x D grid that reaches ``target_loss`` with probability >= p.

    For every grid point the engine computes P(L(N, D) <= l) and the expected cost; the
    feasible points are those with P >= p, and the choice minimises ``objective``:
    ``"dollars"`` (expected TCO of :func:`chinplan.costs.tco`), ``"flops"`` (expected total
    FLOPs 6ND + 2N x lifetime tokens) or ``"n"`` (the smallest model; ties broken by FLOPs).

    Returns:
      ``(choice, grid)``: ``choice`` is a ``pandas.Series`` with ``n``, ``d``, ``probability``,
      ``expected_dollars``, ``expected_flops`` and ``found`` (False, with NaN values, when no
      grid point is feasible); ``grid`` is an ``xarray.Dataset`` over dims ``(n, d)`` with
      ``probability``, ``expected_dollars``, ``expected_flops`` and ``feasible`` (and, with
      extrapolation-aware draws, ``decades_beyond`` and ``decades_below``: :func:`_distances`).
    """
    import pandas as pd
    import xarray as xr

    _checks.one_of("objective", objective, ("dollars", "flops", "n"))
    n_grid = np.atleast_1d(_positive("n_grid", n_grid))
    d_grid = np.atleast_1d(_positive("d_grid", d_grid))
    if n_grid.ndim != 1 or d_grid.ndim != 1:
        raise ValueError("n_grid and d_grid must be 1-D")
    costs.check_design(n_grid[:, None], d_grid[None, :], "n_grid x d_grid")
    target_loss = _checks.positive_number("target_loss", target_loss)
    p = _checks.level("p", p, low_open=True)
    theta = draw_pairs(params, deployment, key=key)
    _reachable(theta.law, "target_loss", np.asarray(target_loss))
    nn, dd = n_grid[:, None], d_grid[None, :]
    prob = np.asarray(engine.probability(loss_at_most, theta.law, nn, dd, target_loss, chunk_size=chunk_size))
    money = np.asarray(engine.expectation(kernels.cost_field("dollars"), theta, nn, dd, chunk_size=chunk_size), np.float64)
    flops = np.asarray(engine.expectation(kernels.cost_field("flops"), theta, nn, dd, chunk_size=chunk_size), np.float64)
    feasible = prob >= p
    grid = xr.Dataset(
        {
            "probability": (("n", "d"), prob),
            "expected_dollars": (("n", "d"), money),
            "expected_flops": (("n", "d"), flops),
            "feasible": (("n", "d"), feasible),
        },
        coords={"n": n_grid, "d": d_grid},
        attrs={"target_loss": float(target_loss), "p": p, "objective": objective},
    )
    for name, values in _distances(theta.law, nn, dd).items():
        grid[name] = (("n", "d"), values)
    if not feasible.any():
        nan = float("nan")
        choice = dict(n=nan, d=nan, probability=nan, expected_dollars=nan, expected_flops=nan, found=False)
        return pd.Series(choice), grid
    if objective == "n":
        score = np.where(feasible, nn, np.inf)
        best = score == score.min()
        i, j = np.unravel_index(np.argmin(np.where(best, flops, np.inf)), prob.shape)
    else:
        score = np.where(feasible, money if objective == "dollars" else flops, np.inf)
        i, j = np.unravel_index(np.argmin(score), prob.shape)
    choice = dict(
        n=float(n_grid[i]),
        d=float(d_grid[j]),
        probability=float(prob[i, j]),
        expected_dollars=float(money[i, j]),
        expected_flops=float(flops[i, j]),
        found=True,
    )
    return pd.Series(choice), grid


def subset_draws(params, num_draws: int, *, seed):
    """A random subset of ``num_draws`` posterior draws without replacement, in draw order.

    ``params`` is a LawParams or any pytree holding one as ``.law`` (an
    :class:`~chinplan.extrapolation.ExtrapolatedLaw`) whose leaves share the leading draw axis.
    ``seed`` seeds NumPy's generator (any ``numpy.random.default_rng`` seed), so the subset is
    reproducible; all draws are returned when ``num_draws`` is at least their number.
    """
    total = _checks.law_draws(getattr(params, "law", params))
    num_draws = _checks.integer("num_draws", num_draws)
    seed = _checks.seed("seed", seed)
    if num_draws >= total:
        return params
    # A host-side draw (no compilation).
    index = np.sort(np.random.default_rng(seed).choice(total, num_draws, replace=False))
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[index]), params)
