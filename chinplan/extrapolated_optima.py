"""Inverse questions under an extrapolation-aware draw: the fewest parameters, and the
optimum plan, that reach a target loss.

Under the law alone these have closed forms (:mod:`chinplan.optima`). With a draw's
discrepancy (:func:`chinplan.extrapolation.extrapolated_log_loss`: the valley drift ``v`` and
the level drift ``u d^(1/2)`` beyond the fitted runs) they do not, so they are solved
numerically, per draw, with fixed iteration counts (they jit and vmap):

* :func:`params_for_loss`: the smallest N with ``L(N, D) <= l`` at fixed D. A log grid of
  :data:`GRID_POINTS` sizes in ``[N_LOW, N_HIGH]`` finds the first size that reaches the target
  (the drift can make the loss non-monotone in N far beyond the data; the first crossing on
  the grid is taken), then :data:`BISECTIONS` bisection steps refine it between that size and
  the one before (a bracket of ``e^(range/points)`` shrunk by ``2^BISECTIONS``: below float32
  resolution). ``inf`` when no size on the grid reaches it.
* :func:`optimal_for_loss`: the plan reaching ``l`` at the least ``6 N D + 2 N T`` (training
  plus ``T`` weighted inference tokens; ``T = 0`` is the Chinchilla optimum, Hoffmann et al.
  2022; ``T > 0`` Sardana et al. 2024): a golden-section search over log D (:data:`GOLDEN_STEPS`
  steps over :data:`SEARCH_DECADES` decades either side of the law's own optimum) of
  ``log N(D) + log(3 D + T)`` with ``N(D)`` from :func:`params_for_loss`.

Exactness where the law is the answer: a draw with no discrepancy (``u = v = 0``, the
``uncertainty="law"`` draws) and a law answer that lies inside the fitted runs (0 decades
beyond, where the discrepancy is exactly zero) return the closed form itself, bit for bit.
Inside the data this is exact for ``params_for_loss`` (every smaller N is inside too, where the
law's loss is above the target) and for the Chinchilla optimum (any plan beyond costs more
compute); for ``T > 0`` a plan with more tokens beyond the data could in principle be a
little cheaper under a falling drift; the law's plan is kept there.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from chinplan import optima
from chinplan.extrapolated import ExtrapolatedLaw, decades_beyond, extrapolated_log_loss
from chinplan.law import Allocation, logs

__all__ = ["params_for_loss", "optimal_for_loss", "GRID_POINTS", "BISECTIONS", "GOLDEN_STEPS"]

#: The search range of model sizes (parameters) and its grid.
N_LOW, N_HIGH = 1e2, 1e18
GRID_POINTS = 128
BISECTIONS = 24
#: Golden-section steps and the half-width of the log-D bracket around the law's optimum.
GOLDEN_STEPS = 40
SEARCH_DECADES = 3.0
_LN10 = math.log(10.0)


def _no_drift(theta: ExtrapolatedLaw):
    still = (theta.u == 0) & (theta.v == 0)
    return still if theta.c is None else still & (theta.c == 0)


def _inside(theta: ExtrapolatedLaw, log_n, log_d):
    dom = theta.domain
    return decades_beyond((dom[..., 0], dom[..., 1], dom[..., 2]), log_n, log_d)[0] <= 0


def _search_log_n(theta: ExtrapolatedLaw, log_d, log_target):
    """Grid then bisection for the smallest log N with extrapolated log loss <= log_target."""
    grid = jnp.linspace(math.log(N_LOW), math.log(N_HIGH), GRID_POINTS, dtype=jnp.result_type(float))
    reach = extrapolated_log_loss(theta, grid, log_d) <= log_target
    found = jnp.any(reach)
    i = jnp.argmax(reach)  # the first size on the grid that reaches the target
    lo, hi = grid[jnp.maximum(i - 1, 0)], grid[i]

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        ok = extrapolated_log_loss(theta, mid, log_d) <= log_target
        return jnp.where(ok, lo, mid), jnp.where(ok, mid, hi)

    lo, hi = jax.lax.fori_loop(0, BISECTIONS, step, (lo, hi))
    return jnp.where(found, jnp.where(i == 0, grid[0], hi), jnp.inf)


def params_for_loss(theta: ExtrapolatedLaw, log_d, log_target):
    """log of the fewest parameters reaching ``exp(log_target)`` with ``exp(log_d)`` tokens
    under one extrapolation-aware draw; ``inf`` when none in ``[N_LOW, N_HIGH]`` does."""
    n_law = optima._params_for_loss(theta.law, jnp.exp(log_d), jnp.exp(log_target))
    log_n_law = jnp.log(n_law)
    exact = _no_drift(theta) | (jnp.isfinite(log_n_law) & _inside(theta, jnp.where(jnp.isfinite(log_n_law), log_n_law, 0.0), log_d))
    return jnp.where(exact, log_n_law, _search_log_n(theta, log_d, log_target))


def _law_optimum(theta: ExtrapolatedLaw, target, log_t):
    """The law's own optimum for the target with weighted inference tokens ``exp(log_t)``."""
    return optima._optimum_for_tokens(theta.law, target, log_t)


def optimal_for_loss(theta: ExtrapolatedLaw, target, log_t, law_plan: Allocation | None = None, log_cost=None) -> Allocation:
    """The plan reaching ``target`` at the least ``6 N D + 2 N exp(log_t)`` under one draw, or
    at the least ``log_cost(log N, log D)`` when that is given (``log_t`` unused; e.g. the
    roofline TCO of :func:`chinplan.costs.log_dollars`).

    ``log_t = -inf`` gives the Chinchilla (compute-optimal) plan. ``law_plan`` is the law's own
    closed-form answer to the same question (computed when omitted); it is returned as it is
    where the law is the answer. Returns an
    :class:`~chinplan.law.Allocation` with ``inf`` plans (and loss E) where the target is out of
    reach; ``loss`` is the target where it is reached.
    """
    target = jnp.asarray(target, jnp.result_type(float))
    log_target = jnp.log(target)
    law_plan = _law_optimum(theta, target, log_t) if law_plan is None else law_plan
    law_ok = jnp.isfinite(law_plan.n)
    log_n_law = jnp.log(jnp.where(law_ok, law_plan.n, 1.0))
    log_d_law = jnp.log(jnp.where(law_ok, law_plan.d, 1.0))
    exact = _no_drift(theta) | (law_ok & _inside(theta, log_n_law, log_d_law))

    # Centre of the search: the law's plan, or (target beyond the law's reach) the largest
    # tokens the law would use for a target just above its floor.
    _, _, lb, alpha, beta = logs(theta.law)
    centre = jnp.where(law_ok, log_d_law, (lb - jnp.log(jnp.maximum(target - theta.law.E, 1e-30) + 1e-6)) / beta)
    t = None if log_cost is not None else jnp.exp(log_t)

    def objective(log_d):
        log_n = params_for_loss(theta, log_d, log_target)
        ok = jnp.isfinite(log_n)
        if log_cost is not None:
            return jnp.where(ok, log_cost(jnp.where(ok, log_n, 0.0), log_d), jnp.inf), log_n
        return jnp.where(ok, log_n + jnp.log(3.0 * jnp.exp(log_d) + t), jnp.inf), log_n

    # Golden section on [a, b]; inf (unreachable) counts as worse than any finite value.
    a, b = centre - SEARCH_DECADES * _LN10, centre + SEARCH_DECADES * _LN10
    log_d = optima.golden_min(lambda x: objective(x)[0], a, b, GOLDEN_STEPS)
    value, log_n = objective(log_d)
    found = jnp.isfinite(value)
    inf = jnp.asarray(jnp.inf, log_n.dtype)
    n = jnp.where(found, jnp.exp(log_n), inf)
    dd = jnp.where(found, jnp.exp(log_d), inf)
    searched = Allocation(n, dd, jnp.where(found, target, theta.law.E))
    return jax.tree_util.tree_map(lambda x, y: jnp.where(exact, x, y), law_plan, searched)
