"""Optimal plans under a law: compute-optimal, for a target loss, inference- and cost-aware,
data-constrained, and the smallest meaningful budget.

Every optimum is written for one point in log space and is pure, jittable, vmappable and
differentiable (fixed-iteration solvers carry implicit-function gradients). Concrete inputs
are checked at the boundary (:mod:`chinplan._checks`): a negative or zero budget, NaN, inf,
a target at or below E, or a law constant out of its domain raise a ``ValueError`` naming the
argument; under a caller's ``jit``/``vmap``/``grad`` nothing is checked and unreachable
targets give ``inf`` plans (never NaN).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.law import FLOPS_PER_PARAM_TOKEN, LOG6, Allocation, LawParams, _log_loss, as_float, log_g, logs, loss, safe_log

__all__ = [
    "compute_optimal",
    "compute_optimal_log",
    "optimal_for_loss",
    "params_for_loss",
    "tokens_per_parameter",
    "inference_optimal",
    "data_constrained_optimal",
    "smallest_budget",
    "sensible_budget",
]

LOG2 = math.log(2.0)
LOG3 = math.log(3.0)

#: Newton steps used by :func:`inference_optimal`. The root is bracketed in a log-D interval
#: of width log(2)/beta and the log-space residual is convex with slope in [-beta-1, -beta],
#: so a handful of steps converge: over 300 random laws, targets and D_inf in [1, 1e24],
#: 4 steps reach 1e-11 and 5 reach float64 precision (7e-13 relative in D); 8 leave a margin.
NEWTON_STEPS = 8


def _check_law(params: LawParams) -> None:
    _checks.law(params)


def _check_positive(**named) -> None:
    for name, x in named.items():
        if not _checks.is_traced(x):
            _checks.positive(name, x)


def _check_target(params: LawParams, target_loss: ArrayLike) -> None:
    """The law, and a finite target above E (each where concrete)."""
    _check_law(params)
    if _checks.is_traced(target_loss):
        return
    _checks.finite("target_loss", target_loss)
    if not _checks.is_traced(params.E):
        _checks.reachable("target_loss", target_loss, params.E)


# --------------------------------------------------------------------------------------
# Chinchilla optimum (Hoffmann et al. 2022)
# --------------------------------------------------------------------------------------


def compute_optimal_log(params: LawParams, log_compute: ArrayLike):
    """``(log N_opt, log D_opt)`` for ``log C`` (Hoffmann et al. 2022, Eq. 4).

    log G = (log(alpha A) - log(beta B)) / (alpha + beta);
    log N_opt = log G + a (log C - log 6); log D_opt = -log G + b (log C - log 6).
    """
    _check_law(params)
    if not _checks.is_traced(log_compute):
        _checks.finite("log_compute", log_compute)
    return _compute_optimal_log(params, log_compute)


def _compute_optimal_log(params: LawParams, log_compute: ArrayLike):
    e, a, b, alpha, beta = logs(params)
    g = log_g(a, b, alpha, beta)
    log_c6 = as_float(log_compute) - LOG6
    s = alpha + beta
    return g + (beta / s) * log_c6, -g + (alpha / s) * log_c6


def compute_optimal(params: LawParams, compute: ArrayLike) -> Allocation:
    """The Chinchilla optimum for a FLOP budget C = 6 N D (Hoffmann et al. 2022, Eq. 4).

    N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta/(alpha+beta), b = alpha/(alpha+beta).

    Returns:
      ``Allocation(n, d, loss)`` broadcast over ``compute`` and ``params``.
    """
    _check_law(params)
    _check_positive(compute=compute)
    log_n, log_d = _compute_optimal_log(params, jnp.log(as_float(compute)))
    return Allocation(jnp.exp(log_n), jnp.exp(log_d), jnp.exp(_log_loss(params, log_n, log_d)))


def _target_gap(params: LawParams, target_loss: ArrayLike):
    """``(l, E, l - E, reachable, log(l - E))``; E exact (not exp(log E)): l - E may be tiny."""
    target = as_float(target_loss)
    E = as_float(params.E)
    gap = target - E
    reachable = gap > 0
    return target, E, gap, reachable, jnp.log(jnp.where(reachable, gap, 1.0))


def optimal_for_loss(params: LawParams, target_loss: ArrayLike) -> Allocation:
    """The compute-optimal plan that reaches ``target_loss`` (Hoffmann et al. 2022, §3).

    N*(l) = [A (1 + alpha/beta) / (l - E)]^(1/alpha), D*(l) = [B (1 + beta/alpha) / (l - E)]^(1/beta).
    A target at or below E cannot be reached: a concrete call raises ``ValueError``; under
    tracing ``n`` and ``d`` are then ``inf`` and ``loss`` is E.
    """
    _check_target(params, target_loss)
    e, a, b, alpha, beta = logs(params)
    target, E, gap, reachable, log_gap = _target_gap(params, target_loss)
    log_n = (a + jnp.log1p(alpha / beta) - log_gap) / alpha
    log_d = (b + jnp.log1p(beta / alpha) - log_gap) / beta
    inf = jnp.asarray(jnp.inf, log_n.dtype)
    # An unreachable target is approached only by an infinite plan, whose loss is E; a NaN
    # target (or constant) stays NaN.
    unreachable = jnp.where(jnp.isnan(gap), jnp.nan, inf)
    n = jnp.where(reachable, jnp.exp(log_n), unreachable)
    d = jnp.where(reachable, jnp.exp(log_d), unreachable)
    return Allocation(n, d, jnp.where(reachable, jnp.broadcast_to(target, n.shape), jnp.where(jnp.isnan(gap), jnp.nan, E)))


def params_for_loss(params: LawParams, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """The fewest parameters that reach ``target_loss`` with ``d`` training tokens.

    From L(N, D) = l: N = [A / (l - E - B D^-beta)]^(1/alpha), in log space; ``inf`` when
    l <= E + B D^-beta (no model size reaches the target with these tokens); NaN in, NaN out
    under tracing. Concrete calls raise for d <= 0 and targets at or below E.
    """
    _check_target(params, target_loss)
    _check_positive(d=d)
    return _params_for_loss(params, d, target_loss)


def _params_for_loss(params: LawParams, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """:func:`params_for_loss` without its checks (for callers that checked, or trace)."""
    e, a, b, alpha, beta = logs(params)
    rest = as_float(target_loss) - as_float(params.E) - jnp.exp(b - beta * jnp.log(as_float(d)))
    reachable = rest > 0
    log_n = (a - jnp.log(jnp.where(reachable, rest, 1.0))) / alpha
    return jnp.where(reachable, jnp.exp(log_n), jnp.where(jnp.isnan(rest), jnp.nan, jnp.inf))


def tokens_per_parameter(params: LawParams, compute: ArrayLike) -> jax.Array:
    """D_opt / N_opt at budget C: exp(-2 log G + (b - a)(log C - log 6))."""
    _check_law(params)
    _check_positive(compute=compute)
    log_n, log_d = _compute_optimal_log(params, jnp.log(as_float(compute)))
    return jnp.exp(log_d - log_n)


# --------------------------------------------------------------------------------------
# Inference-aware optimum (Sardana et al. 2024)
# --------------------------------------------------------------------------------------


def _inference_log_d(params: LawParams, log_gap: jax.Array, log_c2: jax.Array) -> jax.Array:
    """log D solving c1 D^-beta + c2 D^(-beta-1) = gap with a fixed number of Newton steps.

    In x = log D the residual h(x) = logaddexp(log c1 - beta x, log c2 - (beta+1) x) - log gap
    is convex and decreasing with slope in [-beta-1, -beta]. Its root lies in
    [x0, x0 + log(2)/beta], x0 = max(root of each term alone); Newton from x0 (where h >= 0)
    climbs monotonically to the root and each step is clipped to the bracket. The result
    carries the implicit-function gradient dx/dtheta = -(dh/dtheta) / h'(x) of a Newton step
    from the stopped root, without changing its value.
    """
    _, _, lb, alpha, beta = logs(params)
    log_c1 = lb + jnp.log1p(beta / alpha)

    def h(x):
        return jnp.logaddexp(log_c1 - beta * x, log_c2 - (beta + 1.0) * x) - log_gap

    def dh(x):
        return -beta - jax.nn.sigmoid(log_c2 - log_c1 - x)

    lo = jnp.maximum((log_c1 - log_gap) / beta, (log_c2 - log_gap) / (beta + 1.0))
    hi = lo + LOG2 / beta

    def step(_, x):
        return jnp.clip(x - h(x) / dh(x), lo, hi)

    x = jax.lax.fori_loop(0, NEWTON_STEPS, step, lo)
    # Without inference the start is the root; keep it bit-exact (Chinchilla's D*).
    x = jax.lax.stop_gradient(jnp.where(jnp.isneginf(log_c2), lo, x))
    delta = h(x) / dh(x)
    return x - delta + jax.lax.stop_gradient(delta)  # value x, implicit-function gradient


@jax.jit
def _optimum_for_tokens(params: LawParams, target_loss: ArrayLike, log_d_inf: jax.Array) -> Allocation:
    e, la, lb, alpha, beta = logs(params)
    target, E, _, reachable, log_gap = _target_gap(params, target_loss)
    log_c2 = jnp.log(beta) + lb - LOG3 - jnp.log(alpha) + log_d_inf
    log_d = _inference_log_d(params, log_gap, log_c2)
    # N from the constraint L(N, D) = target: N = [A / (target - E - B D^-beta)]^(1/alpha).
    log_rest = log_gap + jnp.log1p(-jnp.exp(lb - beta * log_d - log_gap))
    log_n = (la - log_rest) / alpha
    inf = jnp.asarray(jnp.inf, log_n.dtype)
    n = jnp.where(reachable, jnp.exp(log_n), inf)
    d = jnp.where(reachable, jnp.exp(log_d), inf)
    return Allocation(n, d, jnp.where(reachable, jnp.broadcast_to(target, n.shape), E))


def inference_optimal(params: LawParams, target_loss: ArrayLike, inference_tokens: ArrayLike) -> Allocation:
    """The (N, D) reaching ``target_loss`` with the least training + inference FLOPs.

    Minimises 6 N D + 2 N D_inf subject to L(N, D) = l (Sardana et al. 2024, "Beyond
    Chinchilla-Optimal", Eq. 4). The Lagrange conditions reduce to one equation in D,

        (B + beta B / alpha) D^-beta + (beta B D_inf / (3 alpha)) D^(-beta-1) + E - l = 0,

    solved with a fixed number of safeguarded Newton steps in log D starting from the
    Chinchilla D*(l) (so it jits and vmaps); then N = [A / (l - E - B D^-beta)]^(1/alpha).

    With ``inference_tokens = 0`` this is :func:`optimal_for_loss`; more inference
    always means a smaller model trained on more tokens. A target at or below E cannot be
    reached: concrete calls raise; under tracing ``n`` and ``d`` are then ``inf`` and ``loss``
    is E (never NaN).

    Args:
      params: the law's constants (scalars, or arrays broadcasting with the other inputs).
      target_loss: the loss l to reach.
      inference_tokens: lifetime inference tokens D_inf (>= 0).

    Returns:
      ``Allocation(n, d, loss)``; ``loss`` is the target where reachable.
    """
    _check_target(params, target_loss)
    if not _checks.is_traced(inference_tokens):
        _checks.nonnegative("inference_tokens", inference_tokens)
    return _optimum_for_tokens(params, target_loss, safe_log(as_float(inference_tokens)))


_INVPHI = (math.sqrt(5.0) - 1.0) / 2.0


def golden_min(objective, a, b, steps: int):
    """The x in [a, b] minimising a unimodal ``objective(x)`` by ``steps`` golden-section steps
    (a fixed count, so it jits and vmaps); ``inf`` values count as worse than any finite one,
    and with neither probe finite the search moves right (towards more tokens)."""
    c, d = b - _INVPHI * (b - a), a + _INVPHI * (b - a)
    fc, fd = objective(c), objective(d)

    def step(_, state):
        a, b, c, d, fc, fd = state
        left = (fc <= fd) & jnp.isfinite(fc)  # the minimum lies in [a, d]
        a2, b2 = jnp.where(left, a, c), jnp.where(left, d, b)
        c2 = jnp.where(left, b2 - _INVPHI * (b2 - a2), d)
        d2 = jnp.where(left, c, a2 + _INVPHI * (b2 - a2))
        new = objective(jnp.where(left, c2, d2))
        return a2, b2, c2, d2, jnp.where(left, new, fd), jnp.where(left, fc, new)

    a, b, c, d, fc, fd = jax.lax.fori_loop(0, steps, step, (a, b, c, d, fc, fd))
    return jnp.where((fc <= fd) & jnp.isfinite(fc), c, d)


# --------------------------------------------------------------------------------------
# Data-constrained optimum (Muennighoff et al. 2023)
# --------------------------------------------------------------------------------------


def data_constrained_optimal(
    params: LawParams,
    compute: ArrayLike,
    unique_tokens: ArrayLike,
    *,
    iters: int = 48,
    width: float = 12.0,
) -> Allocation:
    """The best (N, D) on the budget line 6 N D = C when only ``unique_tokens`` exist.

    Minimises the data-constrained loss L(N', D') of Muennighoff et al. 2023 (Eq. 5-6, see
    :func:`chinplan.loss` with ``unique_tokens``) over x = log N, with D = C / (6N).
    Along the line, dL/dx = -alpha A N'^-alpha dlogN'/dx + beta B D'^-beta dlogD'/dlogD
    increases with x (the loss is unimodal), so ``iters`` bisection steps on the sign of
    dL/dx over [log N_opt(C) - width, log N_opt(C) + width] find the minimum to
    ``2 width / 2^iters`` in log N. (Bisection on the slope rather than golden section on
    the loss: the loss is flat at the optimum, so float32 resolves only about 1e-3 of log N
    from loss values, but 1e-7 from the slope.) A final Newton step from the stopped root
    carries the implicit-function gradient. Fixed iterations: jittable and vmappable. With
    plenty of unique tokens it is the Chinchilla optimum.

    Args:
      params: the law's constants.
      compute: FLOP budget C.
      unique_tokens: unique tokens U_D available (repeated as often as needed).
      iters: bisection steps (static).
      width: half-width of the log-N bracket around the unconstrained optimum (static).

    Returns:
      ``Allocation(n, d, loss)`` with the data-constrained loss.
    """
    iters = _checks.integer("iters", iters)
    width = _checks.positive_number("width", width)
    _check_law(params)
    _check_positive(compute=compute, unique_tokens=unique_tokens)
    log_c = jnp.log(as_float(compute))
    log_u = jnp.log(as_float(unique_tokens))
    log_n0, _ = _compute_optimal_log(params, log_c)
    shape = jnp.broadcast_shapes(jnp.shape(log_n0), log_c.shape, log_u.shape)
    return _data_constrained(params, jnp.broadcast_to(log_c, shape), jnp.broadcast_to(log_u, shape),
                             jnp.broadcast_to(log_n0, shape), int(iters), float(width))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _data_constrained(params, log_c, log_u, log_n0, iters, width):
    def loss_on_line(theta, x):
        p, lc, lu = theta
        return loss(p, jnp.exp(x), jnp.exp(lc - LOG6 - x), unique_tokens=jnp.exp(lu))

    # Elementwise slope and curvature in x = log N (elements are independent, so the
    # gradient of the sum is the elementwise derivative).
    def slope(theta, x):
        return jax.grad(lambda x: jnp.sum(loss_on_line(theta, x)))(x)

    def curvature(theta, x):
        return jax.grad(lambda x: jnp.sum(slope(theta, x)))(x)

    theta = (params, log_c, log_u)
    theta_sg = jax.lax.stop_gradient(theta)  # the bracket search carries no gradient

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        rising = slope(theta_sg, mid) > 0  # the minimum lies left of mid
        return jnp.where(rising, lo, mid), jnp.where(rising, mid, hi)

    n0 = jax.lax.stop_gradient(log_n0)
    lo, hi = jax.lax.fori_loop(0, iters, step, (n0 - width, n0 + width))
    x = 0.5 * (lo + hi)
    curv = curvature(theta, x)
    newton = jnp.where(curv > 0, slope(theta, x) / jnp.where(curv > 0, curv, 1.0), 0.0)
    x = x - newton + jax.lax.stop_gradient(newton)  # value x, implicit-function gradient
    return Allocation(jnp.exp(x), jnp.exp(log_c - LOG6 - x), loss_on_line(theta, x))


# --------------------------------------------------------------------------------------
# The smallest meaningful budget
# --------------------------------------------------------------------------------------


def smallest_budget(point: LawParams) -> float:
    """The least FLOP budget whose Chinchilla optimum has N* >= 1 parameter and D* >= 1 token.

    With N* = G (C/6)^a and D* = G^-1 (C/6)^b (Hoffmann et al. 2022, Eq. 4):
    C_min = 6 exp(max(-log G / a, log G / b)). Since N* D* = C/6, C_min >= 6 FLOPs for any law.
    ``point`` is one law (scalars), computed on the host in float64.
    """
    _checks.law(point, "point")
    e, la, lb, alpha, beta = (np.asarray(v, np.float64) for v in logs(point))
    if np.ndim(alpha) != 0:
        raise ValueError(f"point must be one law (scalar constants), got alpha of shape {np.shape(alpha)}")
    g = log_g(la, lb, alpha, beta)
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    return float(FLOPS_PER_PARAM_TOKEN * np.exp(max(-g / a, g / b)))


def sensible_budget(name: str, compute: ArrayLike, point: LawParams) -> np.ndarray:
    """``compute`` (float64, at least 1-D) if every budget is finite, representable and at
    least :func:`smallest_budget` of ``point``: below it the compute-optimal plan has fewer
    than 1 parameter or 1 token, almost surely a units mistake (PF-days or a log10 typed as
    FLOPs). The one check of a FLOP budget wherever a planner meets one."""
    c = np.atleast_1d(_checks.positive(name, compute, allow_empty=False))
    c_min = smallest_budget(point)
    if np.any(c < c_min):
        too_small = c[c < c_min][0]
        raise ValueError(
            f"{name} must be at least {c_min:.6g} FLOPs (valid range [{c_min:.6g}, inf)): below that the "
            f"compute-optimal plan has fewer than 1 parameter or 1 token; got {float(too_small)!r}"
        )
    return c
