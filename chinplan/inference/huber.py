"""Frequentist anchors: the Huber fit of Hoffmann et al. 2022 and its bootstrap.

Hoffmann et al. 2022 ("Training Compute-Optimal Large Language Models", Approach 3, Eq. 11)
fit the Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta by minimising, over
theta = (e, a, b, alpha, beta) with e = log E, a = log A, b = log B,

    J(theta) = sum_i w_i Huber_delta( LSE(e, a - alpha log N_i, b - beta log D_i) - log L_i ),
    Huber_delta(r) = r^2 / 2                    if |r| <= delta,
                     delta (|r| - delta / 2)    otherwise,            delta = 1e-3,

with L-BFGS started from every point of the grid alpha, beta in {0, 0.5, ..., 2},
e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4,500 starts), keeping the best.
Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt", arXiv 2404.10102) note
the loss must be summed (not averaged) or L-BFGS stops early, and bootstrap the fit with
4,000 resamples of the runs. Here every start (and every resample) is one lane of a single
``jax.vmap`` over an L-BFGS solve (``optax.scale_by_lbfgs`` directions, an Armijo
backtracking linesearch, one objective evaluation per step, the gradient in closed form),
all starts advancing together in jitted ``lax.while_loop`` rounds.

The weights w_i let a bootstrap resample be written as integer counts per run (a run drawn
k times has w_i = k), which is exactly the same objective as duplicating rows.

Everything works in float32 (JAX's default) and in float64 when the caller has enabled x64;
this module never changes global JAX flags.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.law import LawParams, log_loss_parts

__all__ = [
    "HuberFit",
    "HuberBootstrap",
    "HOFFMANN_GRID",
    "huber_objective",
    "hoffmann_grid",
    "huber_fit",
    "huber_bootstrap",
    "theta_to_params",
]

#: Hoffmann et al. 2022's start grid, as (e, a, b, alpha, beta) axis values.
HOFFMANN_GRID = (
    np.arange(-1.0, 1.01, 0.5),  # e = log E
    np.arange(0.0, 25.1, 5.0),  # a = log A
    np.arange(0.0, 25.1, 5.0),  # b = log B
    np.arange(0.0, 2.01, 0.5),  # alpha
    np.arange(0.0, 2.01, 0.5),  # beta
)

class HuberFit(NamedTuple):
    """Result of :func:`huber_fit`.

    Attributes:
      params: the best fit as natural constants ``LawParams(E, A, B, alpha, beta)``.
      theta: the best fit in the fitting parameterisation ``(log E, log A, log B, alpha, beta)``.
      objective: J(theta) at the best fit (summed, weighted Huber loss).
      grad_norm: Euclidean norm of dJ/dtheta at the best fit.
      num_iter: objective evaluations taken by the best start.
      best_index: index of the best start in ``starts``.
      starts: the start points, shape ``(S, 5)``.
      all_theta: the final point of every start, shape ``(S, 5)``.
      all_objectives: the final objective of every start, shape ``(S,)`` (``nan`` where a start
        diverged).
    """

    params: LawParams
    theta: jax.Array
    objective: jax.Array
    grad_norm: jax.Array
    num_iter: jax.Array
    best_index: jax.Array
    starts: jax.Array
    all_theta: jax.Array
    all_objectives: jax.Array

    def __repr__(self) -> str:
        """The best fit in full; the per-start arrays by shape only (4,500 starts by default)."""
        p = self.params
        law = ", ".join(f"{k}={float(getattr(p, k)):.6g}" for k in ("E", "A", "B", "alpha", "beta"))
        return (
            f"HuberFit(params=LawParams({law}), objective={float(self.objective):.6g}, "
            f"grad_norm={float(self.grad_norm):.3g}, num_iter={int(self.num_iter)}, best_index={int(self.best_index)}, "
            f"starts=<{_shape_text(self.starts)}>, all_theta=<{_shape_text(self.all_theta)}>, "
            f"all_objectives=<{_shape_text(self.all_objectives)}>)"
        )


def _shape_text(x) -> str:
    return f"array of shape {tuple(np.shape(x))}"


class HuberBootstrap(NamedTuple):
    """Result of :func:`huber_bootstrap`.

    Attributes:
      params: bootstrap draws as ``LawParams`` with a leading axis of ``num_resamples``.
      theta: the same draws as ``(num_resamples, 5)`` in ``(log E, log A, log B, alpha, beta)``.
      objective: each resample's final objective, shape ``(num_resamples,)``.
      num_iter: objective evaluations of each resample's best start.
      fit: the full-data :class:`HuberFit` the resamples started from.
      quantiles: the levels ``q`` of :attr:`percentiles`.
      percentiles: ``(len(q), 5)`` quantiles of ``(E, A, B, alpha, beta)`` over the draws.
      mean: ``(5,)`` mean of ``(E, A, B, alpha, beta)``.
      std: ``(5,)`` standard deviation of ``(E, A, B, alpha, beta)``.
      cov_theta: ``(5, 5)`` covariance of ``theta`` (the log-space parameters), the quantity
        Besiroglu et al. 2024 propagate as a multivariate normal.
    """

    params: LawParams
    theta: jax.Array
    objective: jax.Array
    num_iter: jax.Array
    fit: HuberFit
    quantiles: jax.Array
    percentiles: jax.Array
    mean: jax.Array
    std: jax.Array
    cov_theta: jax.Array


# ----------------------------------------------------------------------------- objective


def _huber(r: jax.Array, delta: jax.Array) -> jax.Array:
    """Huber_delta(r) = r^2/2 for |r| <= delta, else delta (|r| - delta/2) (Huber 1964), as
    ``optax.losses.huber_loss`` (the convention of ``scipy.special.huber``)."""
    return optax.losses.huber_loss(r, delta=delta)


def _log_pred(theta: jax.Array, log_n: jax.Array, log_d: jax.Array) -> jax.Array:
    """log L = logsumexp(e, a - alpha log N, b - beta log D) (Hoffmann et al. 2022, Eq. 11).

    The same quantity as :func:`chinplan.law.log_loss`, written directly on the log-space
    parameters so no ``exp(a)`` is ever formed (the start grid reaches a = 25 and the
    linesearch may probe further).
    """
    m, s0, s1, s2 = log_loss_parts(theta[0], theta[1], theta[2], theta[3], theta[4], log_n, log_d)
    return m + jnp.log(s0 + s1 + s2)


def huber_objective(
    theta: ArrayLike,
    log_n: ArrayLike,
    log_d: ArrayLike,
    log_loss: ArrayLike,
    weights: ArrayLike,
    delta: ArrayLike = 1e-3,
) -> jax.Array:
    """J(theta) = sum_i w_i Huber_delta(LSE(e, a - alpha log N_i, b - beta log D_i) - log L_i).

    The Approach-3 objective of Hoffmann et al. 2022 (Eq. 11), summed as Besiroglu et al.
    2024 insist, with per-run weights (bootstrap counts).

    Args:
      theta: ``(5,)`` array ``(log E, log A, log B, alpha, beta)``.
      log_n: ``(n,)`` log parameters.
      log_d: ``(n,)`` log training tokens.
      log_loss: ``(n,)`` log observed final losses.
      weights: ``(n,)`` non-negative weights.
      delta: Huber threshold.

    Returns:
      The scalar objective.
    """
    theta = jnp.asarray(theta)
    r = _log_pred(theta, log_n, log_d) - log_loss
    return jnp.sum(weights * _huber(r, delta))


def theta_to_params(theta: ArrayLike) -> LawParams:
    """``(..., 5)`` array ``(log E, log A, log B, alpha, beta)`` -> ``LawParams(E, A, B, alpha, beta)``."""
    theta = jnp.asarray(theta)
    return LawParams.from_logs(theta[..., 0], theta[..., 1], theta[..., 2], theta[..., 3], theta[..., 4])


def hoffmann_grid(axes=HOFFMANN_GRID, dtype=None) -> jax.Array:
    """All combinations of the per-parameter start values, shape ``(prod(len(axis)), 5)``.

    Args:
      axes: five 1-D sequences of start values for ``(e, a, b, alpha, beta)``; the default is
        Hoffmann et al. 2022's grid (5 * 6 * 6 * 5 * 5 = 4,500 starts).
      dtype: floating dtype; JAX's default float when ``None``.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    mesh = np.meshgrid(*[np.asarray(ax, dtype=np.float64) for ax in axes], indexing="ij")
    return jnp.asarray(np.stack([m.ravel() for m in mesh], axis=-1), dtype=dtype)


# ----------------------------------------------------------------------------- solver


def _value_and_grad(theta: jax.Array, data: tuple, delta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """J(theta) and dJ/dtheta in closed form, in one pass over the runs (three exps per run).

    With t0 = e, t1 = a - alpha log N, t2 = b - beta log D, m = max t_k, s_k = exp(t_k - m),
    r = m + log(s0 + s1 + s2) - log L and psi = w clip(r, -delta, delta) (Huber's derivative):
    dJ/de = sum psi s0 / S, dJ/da = sum psi s1 / S, dJ/db = sum psi s2 / S,
    dJ/dalpha = -sum psi s1 log N / S, dJ/dbeta = -sum psi s2 log D / S, S = s0 + s1 + s2.
    About 2.5 times cheaper than reverse-mode autodiff of :func:`huber_objective`, which
    ``tests/test_huber.py`` checks it against.
    """
    log_n, log_d, log_l, w = data
    m, s0, s1, s2 = log_loss_parts(theta[0], theta[1], theta[2], theta[3], theta[4], log_n, log_d)
    total = s0 + s1 + s2
    r = m + jnp.log(total) - log_l
    value = jnp.sum(w * _huber(r, delta))
    psi = w * jnp.clip(r, -delta, delta) / total
    g1, g2 = psi * s1, psi * s2
    grad = jnp.stack([jnp.sum(psi * s0), jnp.sum(g1), jnp.sum(g2), -jnp.sum(g1 * log_n), -jnp.sum(g2 * log_d)])
    return value, grad


class _Config(NamedTuple):
    """Static solver settings (hashable, so they key the jit cache)."""

    max_iter: int
    memory_size: int
    ftol: float
    max_stalls: int


class _Lane(NamedTuple):
    """The state of one start's L-BFGS solve (one vmap lane)."""

    theta: jax.Array  # current point
    value: jax.Array  # J(theta)
    grad: jax.Array  # dJ/dtheta
    direction: jax.Array  # search direction from theta
    step: jax.Array  # trial step length along direction
    memory: optax.ScaleByLBFGSState  # curvature pairs
    stalls: jax.Array  # consecutive accepted steps that lowered J by <= ftol |J|
    evals: jax.Array  # objective evaluations so far
    done: jax.Array


def _iterate(lane: _Lane, data: tuple, delta: jax.Array, cfg: _Config, c1: float = 1e-4) -> _Lane:
    """One objective evaluation of L-BFGS with an Armijo backtracking linesearch.

    The trial point theta + step * direction is accepted when J decreases by at least
    c1 * step * slope (Armijo; Nocedal & Wright 2006, Alg. 3.1). Accepted: the L-BFGS
    direction (``optax.scale_by_lbfgs``) from the new point, with a unit step; the memory is
    cleared when the curvature condition s.y > 0 fails or the step stalled (the kinks of the
    Huber loss at |r| = delta can spoil it). Rejected: the step shrinks to the minimiser of the
    quadratic through J(theta), J'(theta) and J(trial), safeguarded to [0.1, 0.5] of the
    step. A start stops after ``max_stalls`` consecutive accepted steps that lowered J by no
    more than ftol * |J| (the relative-decrease test of L-BFGS-B), when the step shrinks
    below rounding, or after ``max_iter`` evaluations.
    """
    lbfgs = optax.scale_by_lbfgs(memory_size=cfg.memory_size)
    dtype = lane.theta.dtype
    eps, tiny = jnp.finfo(dtype).eps, jnp.finfo(dtype).tiny
    trial = lane.theta + lane.step * lane.direction
    value, grad = _value_and_grad(trial, data, delta)
    slope = lane.grad @ lane.direction
    accept = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad)) & (value <= lane.value + c1 * lane.step * slope)
    s, y = trial - lane.theta, grad - lane.grad
    stalled = accept & ~(lane.value - value > cfg.ftol * jnp.maximum(jnp.abs(value), tiny))
    forget = (s @ y <= eps * jnp.linalg.norm(s) * jnp.linalg.norm(y)) | stalled
    memory = jax.tree.map(lambda fresh, kept: jnp.where(forget, fresh, kept), lbfgs.init(trial), lane.memory)
    direction, memory = lbfgs.update(grad, memory, trial)
    curvature = value - lane.value - slope * lane.step
    shrink = jnp.where(jnp.isfinite(value) & (curvature > 0), -slope * lane.step**2 / (2 * curvature), 0.1 * lane.step)
    shrink = jnp.clip(shrink, 0.1 * lane.step, 0.5 * lane.step)
    vanished = shrink * jnp.max(jnp.abs(lane.direction)) <= eps * jnp.maximum(1.0, jnp.max(jnp.abs(lane.theta)))
    stalls = jnp.where(accept, jnp.where(stalled, lane.stalls + 1, 0), lane.stalls)
    evals = lane.evals + 1
    pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, old)  # noqa: E731
    new = _Lane(
        theta=pick(trial, lane.theta),
        value=pick(value, lane.value),
        grad=pick(grad, lane.grad),
        direction=pick(-direction, lane.direction),
        step=jnp.where(accept, jnp.ones_like(shrink), shrink),
        memory=pick(memory, lane.memory),
        stalls=stalls,
        evals=evals,
        done=(stalls >= cfg.max_stalls) | (~accept & vanished) | (evals >= cfg.max_iter),
    )
    return jax.tree.map(lambda old, upd: jnp.where(lane.done, old, upd), lane, new)


def _center(theta: jax.Array, mu_n: jax.Array, mu_d: jax.Array, sign: int) -> jax.Array:
    """(e, a, b, alpha, beta) <-> (e, a - alpha mu_n, b - beta mu_d, alpha, beta) for sign = -1 / +1.

    a - alpha log N = (a - alpha mu_n) - alpha (log N - mu_n): the same law, but with centred
    log sizes the intercepts are nearly uncorrelated with the exponents. L-BFGS then works on
    a well-conditioned problem, and float32 no longer loses digits to the cancellation of
    a ~ 6 against alpha log N ~ 7.
    """
    shift = jnp.stack([theta[..., 3] * mu_n, theta[..., 4] * mu_d], axis=-1)
    return theta.at[..., 1:3].add(sign * shift)


def _fresh_lane(theta0: jax.Array, cfg: _Config) -> _Lane:
    """A lane about to start from ``theta0``: its first :func:`_iterate` evaluates J there.

    With J = inf, a zero direction and an empty memory, the first step is accepted at
    ``theta0`` itself and the memory update there gives the scaled steepest-descent
    direction, so no separate initial evaluation is needed.
    """
    lbfgs = optax.scale_by_lbfgs(memory_size=cfg.memory_size)
    zeros = jnp.zeros_like(theta0)
    one = jnp.ones((), theta0.dtype)
    inf = jnp.asarray(jnp.inf, theta0.dtype)
    return _Lane(theta0, inf, zeros, zeros, one, lbfgs.init(theta0), jnp.int32(0), jnp.int32(0), jnp.asarray(False))


class _Queue(NamedTuple):
    lanes: _Lane  # K solves in flight
    job: jax.Array  # (K,) the job each lane runs; J when the lane is idle
    next_job: jax.Array  # first job not yet handed to a lane
    theta: jax.Array  # (J, 5) final points, filled in as jobs finish
    value: jax.Array  # (J,)
    evals: jax.Array  # (J,)


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


@partial(jax.jit, static_argnames=("cfg", "num_lanes"))
def _solve_jobs(starts, log_n, log_d, log_l, weights, delta, cfg: _Config, num_lanes: int):
    """Minimises J for every (weights row, start) pair; returns ``(theta, value, evals)``.

    Job ``j`` fits weights row ``j // S`` from start ``j % S`` (``S`` starts, ``R`` rows,
    ``R * S`` jobs). Solves need very different numbers of evaluations (median about 40 on
    the Chinchilla runs from Hoffmann's grid, a few need hundreds), so rather than running
    all jobs in lockstep until the slowest one finishes, ``num_lanes`` vmapped lanes work
    through a queue inside one ``lax.while_loop``: in every step each lane evaluates J once
    (:func:`_iterate`), and a lane whose job has finished writes its result and takes the
    next job. One compiled loop serves any data of the same shapes. A job's path does not
    depend on its lane except through rounding (XLA may sum the runs in another order for
    another batch width), so ``num_lanes`` changes results only at the solver's tolerance. Solves run in the centred
    parameterisation of :func:`_center`; points come back in the original one, shaped
    ``theta (R, S, 5)``, ``value (R, S)`` (``inf`` where a start diverged), ``evals (R, S)``.
    """
    mu_n, mu_d = jnp.mean(log_n), jnp.mean(log_d)
    cn, cd = log_n - mu_n, log_d - mu_d
    starts = _center(starts, mu_n, mu_d, -1)
    S, R = starts.shape[0], weights.shape[0]
    J = R * S

    def fresh(job):
        return _fresh_lane(starts[jnp.minimum(job, J - 1) % S], cfg)

    def step(lane, job):
        w = weights[jnp.minimum(job, J - 1) // S]
        return _iterate(lane, (cn, cd, log_l, w), delta, cfg)

    def body(q: _Queue) -> _Queue:
        lanes = jax.vmap(step)(q.lanes, q.job)
        finished = lanes.done & (q.job < J)
        slot = jnp.where(finished, q.job, J)  # out of range: dropped
        theta = q.theta.at[slot].set(lanes.theta, mode="drop")
        value = q.value.at[slot].set(lanes.value, mode="drop")
        evals = q.evals.at[slot].set(lanes.evals, mode="drop")
        new_job = q.next_job + jnp.cumsum(finished) - 1
        refill = finished & (new_job < J)
        job = jnp.where(refill, new_job, jnp.where(finished, J, q.job))
        lanes = jax.tree.map(lambda f, old: jnp.where(_expand(refill, f), f, old), jax.vmap(fresh)(job), lanes)
        return _Queue(lanes, job, jnp.minimum(q.next_job + jnp.sum(finished), J), theta, value, evals)

    K = min(num_lanes, J)
    job0 = jnp.arange(K)
    q = _Queue(
        lanes=jax.vmap(fresh)(job0),
        job=job0,
        next_job=jnp.asarray(K),
        theta=jnp.zeros((J, 5), starts.dtype),
        value=jnp.full((J,), jnp.inf, starts.dtype),
        evals=jnp.zeros((J,), jnp.int32),
    )
    q = jax.lax.while_loop(lambda q: jnp.any(q.job < J), body, q)
    theta = _center(q.theta, mu_n, mu_d, +1).reshape(R, S, 5)
    value = jnp.where(jnp.isfinite(q.value), q.value, jnp.inf).reshape(R, S)
    return theta, value, q.evals.reshape(R, S)


# ----------------------------------------------------------------------------- inputs


def _validate(n, d, loss, weights):
    """Checks the runs on the host and returns float64 NumPy ``(log_n, log_d, log_l, w)``."""
    arrays = {}
    for name, x in (("n", n), ("d", d), ("loss", loss)):
        a = _checks.positive(name, x)
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one value per run), got shape {a.shape}")
        arrays[name] = a
    size = arrays["n"].shape[0]
    for name in ("d", "loss"):
        if arrays[name].shape[0] != size:
            raise ValueError(f"{name} has {arrays[name].shape[0]} runs but n has {size}")
    if size < 5:
        raise ValueError(f"need at least 5 runs to fit 5 constants, got {size}")
    if weights is None:
        return np.log(arrays["n"]), np.log(arrays["d"]), np.log(arrays["loss"]), np.ones(size)
    w = _checks.nonnegative("weights", weights)
    if w.shape != (size,):
        raise ValueError(f"weights must have shape ({size},), got {w.shape}")
    if not np.any(w > 0):
        raise ValueError("weights must not be all 0")
    return np.log(arrays["n"]), np.log(arrays["d"]), np.log(arrays["loss"]), w


def _config(max_iter, memory_size, ftol, dtype, max_stalls=2) -> _Config:
    eps = float(jnp.finfo(dtype).eps)
    return _Config(
        max_iter=_checks.integer("max_iter", max_iter),
        memory_size=_checks.integer("memory_size", memory_size),
        ftol=_checks.positive_number("ftol", ftol) if ftol is not None else 4.0 * eps,
        max_stalls=int(max_stalls),
    )


def _as_starts(grid, dtype, name: str = "grid") -> jax.Array:
    if grid is None:
        return hoffmann_grid(dtype=dtype)
    starts = _checks.finite(name, grid)
    if starts.ndim == 1:
        starts = starts[None]
    if starts.ndim != 2 or starts.shape[-1] != 5 or starts.shape[0] == 0:
        raise ValueError(f"{name} must have shape (S, 5), S >= 1, of (log E, log A, log B, alpha, beta), got {starts.shape}")
    return jnp.asarray(starts, dtype=dtype)


# ----------------------------------------------------------------------------- public API


def huber_fit(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    delta: float = 1e-3,
    grid: ArrayLike | None = None,
    max_iter: int = 300,
    memory_size: int = 10,
    ftol: float | None = None,
    num_lanes: int = 256,
) -> HuberFit:
    """Fits L(N, D) = E + A/N^alpha + B/D^beta by Hoffmann et al. 2022's Huber multi-start.

    Minimises J(theta) = sum_i w_i Huber_delta(LSE(e, a - alpha log N_i, b - beta log D_i)
    - log L_i) over theta = (log E, log A, log B, alpha, beta) (Hoffmann et al. 2022, Eq. 11;
    summed, as Besiroglu et al. 2024 require) with L-BFGS (``optax.scale_by_lbfgs``
    directions, Armijo backtracking) from every start of ``grid`` at once, vmapped and
    jitted, and keeps the best.

    Args:
      n: ``(runs,)`` parameters N.
      d: ``(runs,)`` training tokens D.
      loss: ``(runs,)`` final losses L.
      weights: optional ``(runs,)`` non-negative weights w_i (bootstrap counts); default 1.
      delta: Huber threshold (1e-3 in Hoffmann et al. 2022).
      grid: ``(S, 5)`` start points ``(log E, log A, log B, alpha, beta)``; default the
        4,500-point grid of Hoffmann et al. 2022 (:func:`hoffmann_grid`).
      max_iter: cap on objective evaluations per start (accepted steps plus backtracks).
      memory_size: L-BFGS history length.
      ftol: a start stops after two accepted steps in a row that lower J by <= ftol * |J|
        (default 4 eps of the working dtype: J has stopped moving).
      num_lanes: solves in flight at once (a vmapped batch working through the starts as a
        queue); bounds memory; results depend on it only through rounding.

    Returns:
      A :class:`HuberFit` (``num_iter`` counts objective evaluations). Computed in JAX's
      default float (float32 unless the caller enabled x64).
    """
    dtype = jnp.result_type(float)
    log_n, log_d, log_l, w = (jnp.asarray(x, dtype=dtype) for x in _validate(n, d, loss, weights))
    starts = _as_starts(grid, dtype)
    cfg = _config(max_iter, memory_size, ftol, dtype)
    num_lanes = _checks.integer("num_lanes", num_lanes)
    delta = jnp.asarray(_checks.positive_number("delta", delta), dtype)
    theta, value, evals = _solve_jobs(starts, log_n, log_d, log_l, w[None], delta, cfg, num_lanes)
    theta, value, gnorm, evals, i, all_theta, all_value = _fit_result(theta[0], value[0], evals[0], log_n, log_d, log_l, w, delta)
    return HuberFit(theta_to_params(theta), theta, value, gnorm, evals, i, starts, all_theta, all_value)


@jax.jit
def _fit_result(theta, value, evals, log_n, log_d, log_l, w, delta):
    """The best start; non-finite objectives become NaN."""
    value = jnp.where(jnp.isfinite(value), value, jnp.nan)
    i = jnp.argmin(jnp.where(jnp.isnan(value), jnp.inf, value))
    grad = _value_and_grad(theta[i], (log_n, log_d, log_l, w), delta)[1]
    return theta[i], value[i], jnp.linalg.norm(grad), evals[i], i, theta, value


def _resample_counts(key: jax.Array, num_resamples: int, size: int, dtype) -> jax.Array:
    """Counts of each run in ``num_resamples`` draws of ``size`` runs with replacement."""
    idx = jax.random.randint(key, (num_resamples, size), 0, size)
    return jax.vmap(lambda row: jnp.bincount(row, length=size))(idx).astype(dtype)


def _top_distinct(fit: HuberFit, k: int) -> jax.Array:
    """The full-data best fit plus the next ``k - 1`` best distinct local optima as starts."""
    value = np.asarray(fit.all_objectives, dtype=np.float64)
    theta = np.asarray(fit.all_theta, dtype=np.float64)
    order = np.argsort(np.where(np.isfinite(value), value, np.inf))
    chosen = [theta[order[0]]]
    for j in order[1:]:
        if len(chosen) >= k or not np.isfinite(value[j]):
            break
        if min(np.max(np.abs(theta[j] - c)) for c in chosen) > 1e-2:
            chosen.append(theta[j])
    return jnp.asarray(np.stack(chosen), dtype=fit.theta.dtype)


def huber_bootstrap(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    key: jax.Array,
    num_resamples: int = 4000,
    num_starts: int = 1,
    extra_starts: ArrayLike | None = None,
    fit: HuberFit | None = None,
    delta: float = 1e-3,
    grid: ArrayLike | None = None,
    quantiles: tuple[float, ...] = (0.025, 0.05, 0.5, 0.95, 0.975),
    max_iter: int = 300,
    memory_size: int = 10,
    ftol: float | None = None,
    num_lanes: int = 256,
) -> HuberBootstrap:
    """Bootstraps the Huber fit over runs (Besiroglu et al. 2024, §3: 4,000 resamples).

    Each resample draws ``runs`` runs with replacement (``jax.random.randint`` from ``key``),
    written as integer counts w_i, and minimises sum_i w_i Huber_delta(r_i(theta)), which is
    the objective on the duplicated rows. All resamples are refitted in one jitted call
    (``num_lanes`` vmapped solves working through the resamples as a queue), each started
    from the full-data best fit, plus the next ``num_starts - 1`` best distinct full-data local optima and any
    ``extra_starts``; each resample keeps its best start.

    Args:
      n, d, loss: ``(runs,)`` parameters, tokens and final losses.
      key: a JAX PRNG key (required; the library never makes its own).
      num_resamples: number of bootstrap resamples.
      num_starts: how many distinct full-data optima to start each resample from.
      extra_starts: optional ``(k, 5)`` additional starts ``(log E, log A, log B, alpha, beta)``.
      fit: a precomputed full-data :func:`huber_fit` (else one is run with ``grid``).
      delta: Huber threshold.
      grid: start grid for the full-data fit when ``fit`` is not given.
      quantiles: levels of the summary percentiles.
      max_iter, memory_size, ftol, num_lanes: as in :func:`huber_fit`.

    Returns:
      A :class:`HuberBootstrap` with ``(num_resamples, 5)`` draws and their summary.
    """
    num_resamples = _checks.integer("num_resamples", num_resamples)
    num_starts = _checks.integer("num_starts", num_starts)
    num_lanes = _checks.integer("num_lanes", num_lanes)
    _checks.key(key)
    _checks.positive_number("delta", delta)
    _checks.levels("quantiles", quantiles)
    dtype = jnp.result_type(float)
    log_n, log_d, log_l, _ = (jnp.asarray(x, dtype=dtype) for x in _validate(n, d, loss, None))
    kw = dict(max_iter=max_iter, memory_size=memory_size, ftol=ftol)
    if fit is None:
        fit = huber_fit(n, d, loss, delta=delta, grid=grid, **kw)
    starts = _top_distinct(fit, num_starts)
    if extra_starts is not None:
        starts = jnp.concatenate([starts, _as_starts(extra_starts, dtype, name="extra_starts")])
    counts = _resample_counts(key, int(num_resamples), log_n.shape[0], dtype)
    cfg = _config(dtype=dtype, **kw)
    theta, value, evals = _solve_jobs(starts, log_n, log_d, log_l, counts, jnp.asarray(delta, dtype), cfg, num_lanes)
    theta, value, evals = _best_per_row(theta, value, evals)
    return _summarise(theta, value, evals, fit, quantiles)


@jax.jit
def _best_per_row(theta, value, evals):
    i = jnp.argmin(value, axis=1)
    pick = lambda x: jnp.take_along_axis(x, i.reshape((-1, 1) + (1,) * (x.ndim - 2)), axis=1)[:, 0]  # noqa: E731
    return pick(theta), pick(value), pick(evals)


def _summarise(theta, value, it, fit, quantiles) -> HuberBootstrap:
    params = theta_to_params(theta)
    natural = jnp.stack(params, axis=-1)
    q = jnp.asarray(quantiles, dtype=theta.dtype)
    return HuberBootstrap(
        params=params,
        theta=theta,
        objective=value,
        num_iter=it,
        fit=fit,
        quantiles=q,
        percentiles=jnp.quantile(natural, q, axis=0),
        mean=jnp.mean(natural, axis=0),
        std=jnp.std(natural, axis=0, ddof=1),
        cov_theta=jnp.cov(theta, rowvar=False),
    )
