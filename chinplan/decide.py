"""Decisions under the posterior: probabilities, risk measures and chance-constrained choices.

Each decision is a per-point kernel ``fn(theta, *scenario)`` for ONE posterior draw and ONE
scenario, reduced over draws by :mod:`chinplan.engine` (never materialising draws x
scenarios). ``theta`` is a :class:`~chinplan.law.LawParams` of scalars for loss questions, and
the pair ``(LawParams, Deployment)`` for cost questions: the deployment's uncertain inputs are
sampled once per law draw (:func:`chinplan.costs.with_cost_draws`), so every design is priced
under the same draws (common random numbers).

JAX callers use the kernels (``loss_at_most``, ``design_cost``, ``cheaper``,
``params_for_loss``) and the raw-array wrappers (:func:`prob_target`, :func:`expected_cost`,
:func:`cost_bands`, :func:`cost_cvar`, :func:`prob_cheaper`, :func:`smallest_model`); users get
pandas/xarray tables from :func:`evaluate_designs`, :func:`chance_constrained` and
:func:`regret_compute`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import costs, engine, law
from chinplan.costs import Cost, Deployment, _real_array
from chinplan.law import LawParams, as_float

__all__ = [
    "loss_at_most",
    "design_cost",
    "cheaper",
    "params_for_loss",
    "PlanCost",
    "target_plan_cost",
    "target_cost_bands",
    "draw_pairs",
    "median_params",
    "prob_target",
    "expected_cost",
    "cost_bands",
    "cost_cvar",
    "prob_cheaper",
    "smallest_model",
    "unreachable_fraction",
    "evaluate_designs",
    "chance_constrained",
    "Regret",
    "regret_compute",
    "smallest_budget",
]

PyTree = Any


# --------------------------------------------------------------------------------------
# Per-point kernels: ONE draw, ONE scenario.
# --------------------------------------------------------------------------------------


def _law_of(theta: PyTree) -> LawParams:
    return theta if isinstance(theta, LawParams) else theta[0]


def loss_at_most(theta: PyTree, n: ArrayLike, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """Whether L(N, D) <= target for this draw (Hoffmann et al. 2022, Eq. 2)."""
    return law.loss(_law_of(theta), n, d) <= as_float(target_loss)


def _loss_at_most_dc(theta: PyTree, n, d, target_loss, unique_tokens) -> jax.Array:
    """Whether the data-constrained loss (Muennighoff et al. 2023) is <= target."""
    return law.loss(_law_of(theta), n, d, unique_tokens=unique_tokens) <= as_float(target_loss)


def _loss(theta: PyTree, n, d) -> jax.Array:
    return law.loss(_law_of(theta), n, d)


def design_cost(theta: tuple[LawParams, Deployment], n: ArrayLike, d: ArrayLike) -> Cost:
    """:func:`chinplan.costs.tco` of design (N, D) under this draw's deployment."""
    return costs.tco(n, d, theta[1])


def cheaper(theta: tuple[LawParams, Deployment], n_a, d_a, n_b, d_b) -> jax.Array:
    """Whether design A costs strictly fewer dollars than design B under this draw."""
    dep = theta[1]
    return costs.log_dollars(n_a, d_a, dep) < costs.log_dollars(n_b, d_b, dep)


def params_for_loss(theta: PyTree, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """The fewest parameters reaching ``target_loss`` with ``d`` tokens under this draw.

    :func:`chinplan.law.params_for_loss` on the law of ``theta`` (a LawParams or a
    ``(LawParams, Deployment)`` pair): N = [A / (l - E - B D^-beta)]^(1/alpha), ``inf`` when
    l <= E + B D^-beta.
    """
    return law.params_for_loss(_law_of(theta), d, target_loss)


class PlanCost(NamedTuple):
    """A plan (n, d) for a target loss and its total cost of ownership in dollars."""

    n: jax.Array
    d: jax.Array
    dollars: jax.Array


def target_plan_cost(theta: tuple[LawParams, Deployment], target_loss: ArrayLike) -> PlanCost:
    """This draw's dollar-optimal plan for ``target_loss`` and its TCO.

    :func:`chinplan.costs.cost_optimal` under this draw's law and deployment (Sardana et al.
    2024), priced by :func:`chinplan.costs.tco`; ``inf`` everywhere if the target is at or
    below this draw's E.
    """
    plan = costs.cost_optimal(theta[0], target_loss, theta[1])
    ok = jnp.isfinite(plan.n)
    n, d = jnp.where(ok, plan.n, 1.0), jnp.where(ok, plan.d, 1.0)
    dollars = jnp.where(ok, costs.tco(n, d, theta[1]).dollars, jnp.inf)
    return PlanCost(plan.n, plan.d, dollars)


_COST_KERNELS = {
    field: (lambda theta, n, d, _f=field: getattr(costs.tco(n, d, theta[1]), _f)) for field in Cost._fields
}


# --------------------------------------------------------------------------------------
# Boundary helpers.
# --------------------------------------------------------------------------------------


def _n_draws(params: LawParams) -> int:
    """The number of draws; checks every constant is finite and > 0 in every draw (on the host)."""
    if not isinstance(params, LawParams):
        raise ValueError(f"params must be a LawParams with a leading draw axis, got {type(params).__name__}")
    shape = np.shape(params.E)
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"params must have one leading draw axis, got E of shape {shape}")
    for name, value in params._asdict().items():
        arr = _real_array(f"params.{name}", value)
        bad = ~(np.isfinite(arr) & (arr > 0))
        if np.any(bad):
            first = arr.reshape(-1)[np.argmax(bad.reshape(-1))]
            raise ValueError(
                f"params.{name} must be finite and > 0 in every draw (valid range (0, inf)), got "
                f"{first!r} in {int(bad.sum())} of {arr.size} draws"
            )
    return shape[0]


def _positive(name: str, x: ArrayLike) -> np.ndarray:
    """Host copy of ``x`` after checking every value is finite and > 0 (before tracing)."""
    arr = _real_array(name, x)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got {x!r}")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        first = arr.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(
            f"{name} must be finite and > 0 (valid range (0, inf)), got {first!r} at "
            f"{int(bad.sum())} of {arr.size} positions"
        )
    return arr


def _same_shape(**arrays: np.ndarray) -> tuple[int, ...]:
    """The broadcast shape of the named scenario arguments; ValueError naming them if none."""
    try:
        return tuple(np.broadcast_shapes(*(np.shape(a) for a in arrays.values())))
    except ValueError:
        shapes = ", ".join(f"{k}: {np.shape(a)}" for k, a in arrays.items())
        raise ValueError(f"scenario arguments do not broadcast to a common shape ({shapes})") from None


def _reachable_somewhere(params: LawParams, name: str, target: np.ndarray) -> None:
    """Raises if some target loss is at or below E for EVERY posterior draw.

    No N, D reaches l <= E_i (L > E for all finite N, D; Hoffmann et al. 2022, Eq. 2), so a
    target with l <= min_i E_i is unreachable under the whole posterior: an input error, not
    a result. Targets unreachable for only some draws are allowed and reported per scenario
    (:func:`unreachable_fraction`). The draws are concrete, so this is a host check.
    """
    e_min = float(np.min(np.asarray(params.E, np.float64)))
    bad = target <= e_min
    if np.any(bad):
        raise ValueError(
            f"{name} must exceed the irreducible loss E of at least one posterior draw "
            f"(min E = {e_min:.6g}); got {target[bad].reshape(-1)[0]!r}, unreachable for every draw"
        )


def _probability_level(name: str, p: float, *, low_closed: bool = False) -> float:
    """``p`` as a float in (0, 1] (or [0, 1] with ``low_closed``); ValueError naming ``name``."""
    valid = "[0, 1]" if low_closed else "(0, 1]"
    if isinstance(p, (bool, np.bool_, str, bytes)) or np.ndim(p) != 0:
        raise ValueError(f"{name} must be a number in {valid}, got {p!r}")
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in {valid}, got {p!r}") from None
    if not (0.0 <= p <= 1.0 if low_closed else 0.0 < p <= 1.0):
        raise ValueError(f"{name} must lie in {valid}, got {p}")
    return p


def _field(field: str) -> str:
    if field not in Cost._fields:
        raise ValueError(f"field must be one of {Cost._fields}, got {field!r}")
    return field


def draw_pairs(params: LawParams, deployment: Deployment | None = None, *, key: jax.Array | None = None):
    """``(params, deployment)`` with one deployment draw per law draw: the cost kernels' theta.

    :func:`chinplan.costs.with_cost_draws` after checking ``params``; ``key`` is required when
    any field of ``deployment`` is a distribution. ``deployment=None`` uses ``Deployment()``
    (training only, default hardware and prices). Pass the unsampled deployment.
    """
    _n_draws(params)
    return costs.with_cost_draws(params, Deployment() if deployment is None else deployment, key=key)


def median_params(params: LawParams) -> LawParams:
    """The posterior median of each constant (a point estimate; not itself a draw)."""
    _n_draws(params)
    return LawParams(*(jnp.median(as_float(x), axis=0) for x in params))


# --------------------------------------------------------------------------------------
# Raw-array wrappers.
# --------------------------------------------------------------------------------------


def prob_target(
    params: LawParams,
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
    _n_draws(params)
    arrays = dict(n=_positive("n", n), d=_positive("d", d), target_loss=_positive("target_loss", target_loss))
    if unique_tokens is not None:
        arrays["unique_tokens"] = _positive("unique_tokens", unique_tokens)
    _same_shape(**arrays)
    _reachable_somewhere(params, "target_loss", arrays["target_loss"])
    if unique_tokens is None:
        return engine.probability(loss_at_most, params, n, d, target_loss, chunk_size=chunk_size)
    return engine.probability(_loss_at_most_dc, params, n, d, target_loss, unique_tokens, chunk_size=chunk_size)


def expected_cost(
    params: LawParams,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    field: str = "dollars",
    chunk_size: int | None = None,
) -> jax.Array:
    """E[cost] of design (N, D) over the deployment's draws (``field`` of :class:`Cost`)."""
    _same_shape(n=_positive("n", n), d=_positive("d", d))
    theta = draw_pairs(params, deployment, key=key)
    return engine.expectation(_COST_KERNELS[_field(field)], theta, n, d, chunk_size=chunk_size)


def cost_bands(
    params: LawParams,
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
    _same_shape(n=_positive("n", n), d=_positive("d", d))
    theta = draw_pairs(params, deployment, key=key)
    return engine.bands(_COST_KERNELS[_field(field)], theta, n, d, q=q, chunk_size=chunk_size).values


def cost_cvar(
    params: LawParams,
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
    _same_shape(n=_positive("n", n), d=_positive("d", d))
    level = _probability_level("level", level, low_closed=True)
    theta = draw_pairs(params, deployment, key=key)
    return engine.cvar(_COST_KERNELS[_field(field)], theta, n, d, level=level, chunk_size=chunk_size)


def prob_cheaper(
    params: LawParams,
    n: ArrayLike,
    d: ArrayLike,
    deployment: Deployment | None = None,
    *,
    key: jax.Array | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """Pairwise matrix ``M[a, b] = P(dollars(design a) < dollars(design b))``.

    Args:
      params: law draws (they fix the draw count; costs do not depend on the law).
      n, d: 1-D arrays of the k candidate designs.
      deployment: the deployment, possibly with distribution-valued fields.
      key: PRNG key for those distributions.

    Returns:
      ``(k, k)`` array; the diagonal is 0 and ``M + M.T <= 1`` (ties count for neither).
    """
    n, d = np.atleast_1d(_positive("n", n)), np.atleast_1d(_positive("d", d))
    if n.ndim != 1 or n.shape != d.shape:
        raise ValueError(f"n and d must be 1-D arrays of the same length, got shapes {n.shape} and {d.shape}")
    theta = draw_pairs(params, deployment, key=key)
    return engine.probability(cheaper, theta, n[:, None], d[:, None], n[None, :], d[None, :], chunk_size=chunk_size)


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
    params: LawParams,
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
    n = _n_draws(params)
    target = _positive("target_loss", target_loss)
    _same_shape(target_loss=target, tokens=_positive("tokens", tokens))
    _reachable_somewhere(params, "target_loss", target)
    p = _probability_level("p", p)
    k = max(1, math.ceil(p * n - 1e-9 * n))  # guard p n = integer against rounding up
    q = _order_statistic_level(k, n)
    return engine.bands(params_for_loss, params, tokens, target_loss, q=(q,), chunk_size=chunk_size).values[0]


def _unreachable(theta: PyTree, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """Whether no N reaches ``target_loss`` with D tokens under this draw (N_i = inf)."""
    return jnp.isinf(law.params_for_loss(_law_of(theta), d, target_loss))


def unreachable_fraction(
    params: LawParams,
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
    _n_draws(params)
    target = _positive("target_loss", target_loss)
    if tokens is None:
        return engine.probability(lambda th, t: t <= _law_of(th).E, params, target, chunk_size=chunk_size)
    _same_shape(target_loss=target, tokens=_positive("tokens", tokens))
    return engine.probability(_unreachable, params, tokens, target_loss, chunk_size=chunk_size)


def target_cost_bands(
    params: LawParams,
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
      ``("quantile", "target_loss")``.
    """
    _n_draws(params)
    targets = np.atleast_1d(_positive("target_loss", target_loss))
    if targets.ndim != 1:
        raise ValueError(f"target_loss must be a scalar or 1-D, got shape {targets.shape}")
    _reachable_somewhere(params, "target_loss", targets)
    theta = draw_pairs(params, deployment, key=key)
    result = engine.bands(target_plan_cost, theta, targets, q=q, chunk_size=chunk_size)
    return engine.to_dataset(result, q, dims=("target_loss",), coords={"target_loss": targets})


# --------------------------------------------------------------------------------------
# Tables for users.
# --------------------------------------------------------------------------------------


def _bands_names(q: Sequence[float]) -> list[str]:
    return [f"q{100 * float(v):g}" for v in q]


def evaluate_designs(
    params: LawParams,
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
    ``dollars_cvar`` (CVaR at ``level``); returned as a ``pandas.DataFrame``. Use
    :func:`prob_cheaper` for the pairwise P(design a cheaper than design b).
    """
    import pandas as pd

    n, d = np.atleast_1d(_positive("n", n)), np.atleast_1d(_positive("d", d))
    if n.ndim != 1 or n.shape != d.shape:
        raise ValueError(f"n and d must be 1-D arrays of the same length, got shapes {n.shape} and {d.shape}")
    level = _probability_level("level", level, low_closed=True)
    theta = draw_pairs(params, deployment, key=key)
    frame = pd.DataFrame({"n": n, "d": d, "train_flops": 6.0 * n * d})
    frame["loss_mean"] = np.asarray(engine.expectation(_loss, params, n, d, chunk_size=chunk_size), np.float64)
    loss_q = np.asarray(engine.bands(_loss, params, n, d, q=q, chunk_size=chunk_size).values)
    for name, row in zip(_bands_names(q), loss_q):
        frame[f"loss_{name}"] = row
    if target_loss is not None:
        frame["p_target"] = np.asarray(prob_target(params, n, d, target_loss, chunk_size=chunk_size))
    dollars = _COST_KERNELS["dollars"]
    frame["dollars_mean"] = np.asarray(engine.expectation(dollars, theta, n, d, chunk_size=chunk_size))
    for name, row in zip(_bands_names(q), np.asarray(engine.bands(dollars, theta, n, d, q=q, chunk_size=chunk_size).values)):
        frame[f"dollars_{name}"] = row
    frame["dollars_cvar"] = np.asarray(engine.cvar(dollars, theta, n, d, level=level, chunk_size=chunk_size))
    return frame


def chance_constrained(
    params: LawParams,
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
      ``probability``, ``expected_dollars``, ``expected_flops`` and ``feasible``.
    """
    import pandas as pd
    import xarray as xr

    if objective not in ("dollars", "flops", "n"):
        raise ValueError(f"objective must be 'dollars', 'flops' or 'n', got {objective!r}")
    n_grid = np.atleast_1d(_positive("n_grid", n_grid))
    d_grid = np.atleast_1d(_positive("d_grid", d_grid))
    if n_grid.ndim != 1 or d_grid.ndim != 1:
        raise ValueError("n_grid and d_grid must be 1-D")
    _n_draws(params)
    _reachable_somewhere(params, "target_loss", _positive("target_loss", target_loss))
    p = _probability_level("p", p)
    nn, dd = n_grid[:, None], d_grid[None, :]
    prob = np.asarray(engine.probability(loss_at_most, params, nn, dd, target_loss, chunk_size=chunk_size))
    theta = draw_pairs(params, deployment, key=key)
    money = np.asarray(engine.expectation(_COST_KERNELS["dollars"], theta, nn, dd, chunk_size=chunk_size), np.float64)
    flops = np.asarray(engine.expectation(_COST_KERNELS["flops"], theta, nn, dd, chunk_size=chunk_size), np.float64)
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


def smallest_budget(point: LawParams) -> float:
    """The least FLOP budget whose Chinchilla optimum has N* >= 1 parameter and D* >= 1 token.

    With N* = G (C/6)^a and D* = G^-1 (C/6)^b (Hoffmann et al. 2022, Eq. 4):
    C_min = 6 exp(max(-log G / a, log G / b)). Since N* D* = C/6, C_min >= 6 FLOPs for any law.
    ``point`` is one law (scalars), computed on the host in float64.
    """
    e, la, lb, alpha, beta = (np.asarray(v, np.float64) for v in law.logs(point))
    if np.ndim(alpha) != 0:
        raise ValueError(f"point must be one law (scalar constants), got alpha of shape {np.shape(alpha)}")
    log_g = (np.log(alpha) + la - np.log(beta) - lb) / (alpha + beta)
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    return float(6.0 * np.exp(max(-log_g / a, log_g / b)))


class Regret(NamedTuple):
    """Point-estimate plan vs posterior-aware plan at each compute budget (arrays)."""

    compute: np.ndarray
    point_n: np.ndarray
    point_d: np.ndarray
    point_expected_loss: np.ndarray
    bayes_n: np.ndarray
    bayes_d: np.ndarray
    bayes_expected_loss: np.ndarray
    regret: np.ndarray


def regret_compute(
    params: LawParams,
    compute: ArrayLike,
    *,
    point: LawParams | None = None,
    grid_points: int = 241,
    span: float = 3.0,
    chunk_size: int | None = None,
    as_frame: bool = True,
):
    """Regret of planning with a point estimate instead of the posterior, per FLOP budget.

    Point plan: the Chinchilla optimum (Hoffmann et al. 2022, Eq. 4) at budget C under
    ``point`` (default: :func:`median_params`). Posterior-aware plan: the N on the budget line
    D = C / (6N) minimising the posterior expected loss E_theta[L_theta(N, D)], found on a
    grid of ``grid_points`` values of log N within ``span`` of the point plan (the point plan
    is the centre, so regret >= 0 exactly) and refined by the vertex of the parabola through
    the best grid point and its neighbours (the expected loss is convex in log N along the
    line: a sum of exponentials). Regret = E[L(point plan)] - E[L(posterior plan)].

    Returns:
      A ``pandas.DataFrame`` indexed by ``compute`` (or a :class:`Regret` of NumPy arrays
      with ``as_frame=False``).

    Raises:
      ValueError: a budget below :func:`smallest_budget` of the point law (about 6-30 FLOPs:
        the optimum would have N* < 1 parameter or D* < 1 token, almost surely a units
        mistake), besides the usual bad ``compute``, ``grid_points`` or ``span``.
    """
    _n_draws(params)
    c = np.atleast_1d(_positive("compute", compute))
    if c.ndim != 1:
        raise ValueError(f"compute must be a scalar or 1-D, got shape {c.shape}")
    if int(grid_points) != grid_points or grid_points < 3 or grid_points % 2 == 0:
        raise ValueError(f"grid_points must be an odd integer >= 3, got {grid_points!r}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span!r}")
    point = median_params(params) if point is None else point
    c_min = smallest_budget(point)
    if np.any(c < c_min):
        too_small = c[c < c_min][0]
        raise ValueError(
            f"compute must be at least {c_min:.6g} FLOPs (valid range [{c_min:.6g}, inf)): below that the "
            f"compute-optimal plan has fewer than 1 parameter or 1 token; got {too_small!r}"
        )
    plan = law.compute_optimal(point, c)
    x0 = np.log(np.asarray(plan.n, np.float64))
    offsets = np.linspace(-span, span, int(grid_points))
    x = x0[:, None] + offsets[None, :]
    log_c6 = np.log(c / 6.0)[:, None]
    grid_loss = np.asarray(
        engine.expectation(_loss, params, np.exp(x), np.exp(log_c6 - x), chunk_size=chunk_size), np.float64
    )
    centre = grid_points // 2
    point_loss = grid_loss[:, centre]
    j = np.clip(np.argmin(grid_loss, axis=1), 1, grid_points - 2)
    rows = np.arange(len(c))
    f0, f1, f2 = grid_loss[rows, j - 1], grid_loss[rows, j], grid_loss[rows, j + 1]
    h = offsets[1] - offsets[0]
    denom = f0 - 2 * f1 + f2
    shift = np.where(denom > 0, 0.5 * h * (f0 - f2) / np.where(denom > 0, denom, 1.0), 0.0)
    x_ref = x[rows, j] + np.clip(shift, -h, h)
    ref_loss = np.asarray(
        engine.expectation(_loss, params, np.exp(x_ref), np.exp(log_c6[:, 0] - x_ref), chunk_size=chunk_size), np.float64
    )
    j_best = np.argmin(grid_loss, axis=1)
    use_ref = ref_loss < grid_loss[rows, j_best]
    xb = np.where(use_ref, x_ref, x[rows, j_best])
    lb = np.where(use_ref, ref_loss, grid_loss[rows, j_best])
    result = Regret(
        compute=c,
        point_n=np.exp(x0),
        point_d=np.exp(log_c6[:, 0] - x0),
        point_expected_loss=point_loss,
        bayes_n=np.exp(xb),
        bayes_d=np.exp(log_c6[:, 0] - xb),
        bayes_expected_loss=lb,
        regret=point_loss - lb,
    )
    if not as_frame:
        return result
    import pandas as pd

    return pd.DataFrame(result._asdict()).set_index("compute")
