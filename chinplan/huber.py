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
``jax.vmap`` over an ``optax.lbfgs`` solve with a zoom linesearch inside ``lax.while_loop``,
so the whole grid is one jitted call.

The weights w_i let a bootstrap resample be written as integer counts per run (a run drawn
k times has w_i = k), which is exactly the same objective as duplicating rows.

Everything works in float32 (JAX's default) and in float64 when the caller has enabled x64;
this module never changes global JAX flags.
"""

from __future__ import annotations

import collections
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
from jax.typing import ArrayLike

from chinplan.law import LawParams

__all__ = [
    "HuberFit",
    "HuberBootstrap",
    "HOFFMANN_GRID",
    "huber",
    "huber_objective",
    "hoffmann_grid",
    "huber_fit",
    "huber_bootstrap",
    "theta_to_params",
    "params_to_theta",
]

#: Hoffmann et al. 2022's start grid, as (e, a, b, alpha, beta) axis values.
HOFFMANN_GRID = (
    np.arange(-1.0, 1.01, 0.5),  # e = log E
    np.arange(0.0, 25.1, 5.0),  # a = log A
    np.arange(0.0, 25.1, 5.0),  # b = log B
    np.arange(0.0, 2.01, 0.5),  # alpha
    np.arange(0.0, 2.01, 0.5),  # beta
)

# Number of times each jitted core has been traced (for no-recompilation tests).
TRACE_COUNTS: collections.Counter = collections.Counter()


class HuberFit(NamedTuple):
    """Result of :func:`huber_fit`.

    Attributes:
      params: the best fit as natural constants ``LawParams(E, A, B, alpha, beta)``.
      theta: the best fit in the fitting parameterisation ``(log E, log A, log B, alpha, beta)``.
      objective: J(theta) at the best fit (summed, weighted Huber loss).
      grad_norm: Euclidean norm of dJ/dtheta at the best fit.
      num_iter: L-BFGS iterations taken by the best start.
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


class HuberBootstrap(NamedTuple):
    """Result of :func:`huber_bootstrap`.

    Attributes:
      params: bootstrap draws as ``LawParams`` with a leading axis of ``num_resamples``.
      theta: the same draws as ``(num_resamples, 5)`` in ``(log E, log A, log B, alpha, beta)``.
      objective: each resample's final objective, shape ``(num_resamples,)``.
      num_iter: L-BFGS iterations of each resample's best start.
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


def huber(r: ArrayLike, delta: ArrayLike) -> jax.Array:
    """Huber_delta(r) = r^2/2 for |r| <= delta, else delta (|r| - delta/2) (Huber 1964).

    Same convention as ``scipy.special.huber`` and ``optax.huber_loss``.
    """
    r = jnp.asarray(r)
    abs_r = jnp.abs(r)
    return jnp.where(abs_r <= delta, 0.5 * r * r, delta * (abs_r - 0.5 * delta))


def _log_pred(theta: jax.Array, log_n: jax.Array, log_d: jax.Array) -> jax.Array:
    """log L = logsumexp(e, a - alpha log N, b - beta log D) (Hoffmann et al. 2022, Eq. 11).

    The same quantity as :func:`chinplan.law.log_loss`, written directly on the log-space
    parameters so no ``exp(a)`` is ever formed (the start grid reaches a = 25 and the
    linesearch may probe further).
    """
    e, a, b, alpha, beta = theta[0], theta[1], theta[2], theta[3], theta[4]
    t1 = a - alpha * log_n
    t2 = b - beta * log_d
    m = jnp.maximum(jnp.maximum(t1, t2), e)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    return m + jnp.log(jnp.exp(e - m) + jnp.exp(t1 - m) + jnp.exp(t2 - m))


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
    return jnp.sum(weights * huber(r, delta))


def theta_to_params(theta: ArrayLike) -> LawParams:
    """``(..., 5)`` array ``(log E, log A, log B, alpha, beta)`` -> ``LawParams(E, A, B, alpha, beta)``."""
    theta = jnp.asarray(theta)
    return LawParams.from_logs(theta[..., 0], theta[..., 1], theta[..., 2], theta[..., 3], theta[..., 4])


def params_to_theta(params: LawParams) -> jax.Array:
    """``LawParams(E, A, B, alpha, beta)`` -> ``(..., 5)`` array ``(log E, log A, log B, alpha, beta)``."""
    E, A, B, alpha, beta = (jnp.asarray(p) for p in params)
    return jnp.stack(jnp.broadcast_arrays(jnp.log(E), jnp.log(A), jnp.log(B), alpha, beta), axis=-1)


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


class _Config(NamedTuple):
    """Static solver settings (hashable, so they key the jit cache)."""

    max_iter: int
    memory_size: int
    max_linesearch_steps: int
    gtol: float
    ftol: float
    max_stalls: int


def _lbfgs_solve(theta0: jax.Array, data: tuple, delta: jax.Array, cfg: _Config):
    """Minimises J from ``theta0`` with optax L-BFGS + zoom linesearch, for one start.

    Stops when the iteration count reaches ``max_iter``, when ||dJ/dtheta|| <= gtol, or when
    one iteration decreases J by no more than ``ftol * max(|J|, tiny)`` (a failed or stalled
    linesearch), the relative-decrease test of L-BFGS-B. Non-finite iterates stop the solve.

    Returns:
      ``(theta, J(theta), ||grad||, iterations)``.
    """
    fun = partial(_objective_packed, data=data, delta=delta)
    opt = optax.lbfgs(
        memory_size=cfg.memory_size,
        linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=cfg.max_linesearch_steps, initial_guess_strategy="one"
        ),
    )
    tiny = jnp.finfo(theta0.dtype).tiny
    fresh = opt.init(theta0)

    def body(carry):
        theta, state, value, grad, stalls, it = carry
        updates, state = opt.update(grad, state, theta, value=value, grad=grad, value_fn=fun)
        # The zoom linesearch already evaluated J and dJ at the accepted point: reuse them.
        new_value, new_grad = otu.tree_get(state, "value"), otu.tree_get(state, "grad")
        stalled = ~(value - new_value > cfg.ftol * jnp.maximum(jnp.abs(new_value), tiny))
        # After a stalled step, forget the curvature pairs (restart from a scaled gradient
        # step): the kinks of the Huber loss at |r| = delta can spoil the L-BFGS memory.
        state = jax.tree.map(lambda f, s: jnp.where(stalled, f, s), fresh, state)
        stalls = jnp.where(stalled, stalls + 1, 0)
        return optax.apply_updates(theta, updates), state, new_value, new_grad, stalls, it + 1

    def cond(carry):
        theta, _, value, grad, stalls, it = carry
        finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(theta))
        return (it < cfg.max_iter) & (otu.tree_norm(grad) > cfg.gtol) & (stalls < cfg.max_stalls) & finite

    value0, grad0 = jax.value_and_grad(fun)(theta0)
    zero = jnp.asarray(0, jnp.int32)
    theta, _, value, grad, _, it = jax.lax.while_loop(cond, body, (theta0, fresh, value0, grad0, zero, zero))
    return theta, value, otu.tree_norm(grad), it


def _objective_packed(theta, *, data, delta):
    log_n, log_d, log_l, w = data
    return huber_objective(theta, log_n, log_d, log_l, w, delta)


def _center(theta: jax.Array, mu_n: jax.Array, mu_d: jax.Array, sign: int) -> jax.Array:
    """(e, a, b, alpha, beta) <-> (e, a - alpha mu_n, b - beta mu_d, alpha, beta) for sign = -1 / +1.

    a - alpha log N = (a - alpha mu_n) - alpha (log N - mu_n): the same law, but with centred
    log sizes the intercepts are nearly uncorrelated with the exponents. L-BFGS then works on
    a well-conditioned problem, and float32 no longer loses digits to the cancellation of
    a ~ 6 against alpha log N ~ 7.
    """
    shift = jnp.stack([theta[..., 3] * mu_n, theta[..., 4] * mu_d], axis=-1)
    return theta.at[..., 1:3].add(sign * shift)


def _solve_starts(starts, data, delta, cfg, batch_size=None):
    """Maps :func:`_lbfgs_solve` over ``starts`` of shape ``(S, 5)``; one shared data set.

    The solve runs in the centred parameterisation of :func:`_center` (the objective is the
    same function of the law) and returns points in the original one. All starts run as one
    vmapped batch (``batch_size=None``) or, with ``lax.map``, in vmapped chunks of
    ``batch_size`` so that a chunk stops as soon as its own starts converge.
    """
    log_n, log_d, log_l, w = data
    mu_n, mu_d = jnp.mean(log_n), jnp.mean(log_d)
    centred = (log_n - mu_n, log_d - mu_d, log_l, w)
    solve = lambda t0: _lbfgs_solve(t0, centred, delta, cfg)
    starts = _center(starts, mu_n, mu_d, -1)
    if batch_size is None or batch_size >= starts.shape[0]:
        theta, value, gnorm, it = jax.vmap(solve)(starts)
    else:
        theta, value, gnorm, it = jax.lax.map(solve, starts, batch_size=batch_size)
    return _center(theta, mu_n, mu_d, +1), value, gnorm, it


@partial(jax.jit, static_argnames=("cfg", "batch_size"))
def _fit_core(starts, log_n, log_d, log_l, w, delta, cfg: _Config, batch_size=None):
    TRACE_COUNTS["fit"] += 1
    theta, value, gnorm, it = _solve_starts(starts, (log_n, log_d, log_l, w), delta, cfg, batch_size)
    value = jnp.where(jnp.isfinite(value), value, jnp.nan)
    i = jnp.argmin(jnp.where(jnp.isnan(value), jnp.inf, value))
    return theta[i], value[i], gnorm[i], it[i], i, theta, value


@partial(jax.jit, static_argnames=("cfg", "batch_size"))
def _bootstrap_core(starts, log_n, log_d, log_l, counts, delta, cfg: _Config, batch_size):
    """Refits every resample (rows of ``counts``) from every start; keeps each one's best."""
    TRACE_COUNTS["bootstrap"] += 1

    def one(w):
        theta, value, gnorm, it = _solve_starts(starts, (log_n, log_d, log_l, w), delta, cfg)
        value = jnp.where(jnp.isfinite(value), value, jnp.inf)
        i = jnp.argmin(value)
        return theta[i], value[i], it[i]

    if batch_size is None or batch_size >= counts.shape[0]:
        return jax.vmap(one)(counts)
    return jax.lax.map(one, counts, batch_size=batch_size)


# ----------------------------------------------------------------------------- inputs


def _validate(n, d, loss, weights):
    """Checks the runs on the host and returns float64 NumPy ``(log_n, log_d, log_l, w)``."""
    arrays = {}
    for name, x in (("n", n), ("d", d), ("loss", loss)):
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"`{name}` must be 1-D (one value per run); got shape {a.shape}.")
        if not np.all(np.isfinite(a) & (a > 0)):
            bad = a[~(np.isfinite(a) & (a > 0))][0]
            raise ValueError(f"`{name}` must be finite and > 0; got {bad!r}.")
        arrays[name] = a
    size = arrays["n"].shape[0]
    for name in ("d", "loss"):
        if arrays[name].shape[0] != size:
            raise ValueError(f"`{name}` has {arrays[name].shape[0]} runs but `n` has {size}.")
    if size < 5:
        raise ValueError(f"need at least 5 runs to fit 5 constants; got {size}.")
    if weights is None:
        w = np.ones(size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (size,):
            raise ValueError(f"`weights` must have shape ({size},); got {w.shape}.")
        if not np.all(np.isfinite(w) & (w >= 0)) or not np.any(w > 0):
            raise ValueError("`weights` must be finite, >= 0 and not all 0.")
    return np.log(arrays["n"]), np.log(arrays["d"]), np.log(arrays["loss"]), w


def _config(max_iter, memory_size, max_linesearch_steps, gtol, ftol, dtype, max_stalls=2) -> _Config:
    eps = float(jnp.finfo(dtype).eps)
    if max_iter < 1:
        raise ValueError(f"`max_iter` must be >= 1; got {max_iter}.")
    return _Config(
        max_iter=int(max_iter),
        memory_size=int(memory_size),
        max_linesearch_steps=int(max_linesearch_steps),
        gtol=float(gtol) if gtol is not None else 0.0,
        ftol=float(ftol) if ftol is not None else 4.0 * eps,
        max_stalls=int(max_stalls),
    )


def _as_starts(grid, dtype) -> jax.Array:
    if grid is None:
        return hoffmann_grid(dtype=dtype)
    starts = jnp.asarray(np.asarray(grid, dtype=np.float64), dtype=dtype)
    if starts.ndim == 1:
        starts = starts[None]
    if starts.ndim != 2 or starts.shape[-1] != 5:
        raise ValueError(f"`grid` must have shape (S, 5) of (log E, log A, log B, alpha, beta); got {starts.shape}.")
    return starts


# ----------------------------------------------------------------------------- public API


def huber_fit(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    delta: float = 1e-3,
    grid: ArrayLike | None = None,
    max_iter: int = 100,
    memory_size: int = 10,
    max_linesearch_steps: int = 5,
    gtol: float | None = None,
    ftol: float | None = None,
    batch_size: int | None = None,
) -> HuberFit:
    """Fits L(N, D) = E + A/N^alpha + B/D^beta by Hoffmann et al. 2022's Huber multi-start.

    Minimises J(theta) = sum_i w_i Huber_delta(LSE(e, a - alpha log N_i, b - beta log D_i)
    - log L_i) over theta = (log E, log A, log B, alpha, beta) (Hoffmann et al. 2022, Eq. 11;
    summed, as Besiroglu et al. 2024 require) with optax L-BFGS and a zoom linesearch, from
    every start of ``grid`` at once (one vmapped, jitted call), and keeps the best.

    Args:
      n: ``(runs,)`` parameters N.
      d: ``(runs,)`` training tokens D.
      loss: ``(runs,)`` final losses L.
      weights: optional ``(runs,)`` non-negative weights w_i (bootstrap counts); default 1.
      delta: Huber threshold (1e-3 in Hoffmann et al. 2022).
      grid: ``(S, 5)`` start points ``(log E, log A, log B, alpha, beta)``; default the
        4,500-point grid of Hoffmann et al. 2022 (:func:`hoffmann_grid`).
      max_iter: L-BFGS iteration cap per start.
      memory_size: L-BFGS history length.
      max_linesearch_steps: zoom linesearch step cap per iteration.
      gtol: stop a start when ||grad J|| <= gtol (default 0: never on this test alone).
      ftol: stop a start when one iteration lowers J by <= ftol * |J| (default 4 eps of the
        working dtype, i.e. when the linesearch cannot make progress any more).
      batch_size: starts per vmapped chunk (``lax.map``); ``None`` runs all starts as one
        batch. Results do not depend on it.

    Returns:
      A :class:`HuberFit`. Computed in JAX's default float (float32 unless the caller enabled
      x64).
    """
    dtype = jnp.result_type(float)
    log_n, log_d, log_l, w = (jnp.asarray(x, dtype=dtype) for x in _validate(n, d, loss, weights))
    starts = _as_starts(grid, dtype)
    cfg = _config(max_iter, memory_size, max_linesearch_steps, gtol, ftol, dtype)
    theta, value, gnorm, it, i, all_theta, all_value = _fit_core(
        starts, log_n, log_d, log_l, w, jnp.asarray(delta, dtype), cfg, batch_size
    )
    return HuberFit(theta_to_params(theta), theta, value, gnorm, it, i, starts, all_theta, all_value)


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
    batch_size: int | None = None,
    max_iter: int = 100,
    memory_size: int = 10,
    max_linesearch_steps: int = 5,
    gtol: float | None = None,
    ftol: float | None = None,
) -> HuberBootstrap:
    """Bootstraps the Huber fit over runs (Besiroglu et al. 2024, §3: 4,000 resamples).

    Each resample draws ``runs`` runs with replacement (``jax.random.randint`` from ``key``),
    written as integer counts w_i, and minimises sum_i w_i Huber_delta(r_i(theta)), which is
    the objective on the duplicated rows. All resamples are refitted at once (vmapped,
    optionally in chunks of ``batch_size`` with ``lax.map``), each started from the full-data
    best fit, plus the next ``num_starts - 1`` best distinct full-data local optima and any
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
      batch_size: resamples per vmapped chunk (``None``: all at once).
      max_iter, memory_size, max_linesearch_steps, gtol, ftol: as in :func:`huber_fit`.

    Returns:
      A :class:`HuberBootstrap` with ``(num_resamples, 5)`` draws and their summary.
    """
    if num_resamples < 1:
        raise ValueError(f"`num_resamples` must be >= 1; got {num_resamples}.")
    if num_starts < 1:
        raise ValueError(f"`num_starts` must be >= 1; got {num_starts}.")
    if batch_size is not None and not 1 <= batch_size <= num_resamples:
        raise ValueError(f"`batch_size` must be in [1, num_resamples={num_resamples}]; got {batch_size}.")
    dtype = jnp.result_type(float)
    log_n, log_d, log_l, _ = (jnp.asarray(x, dtype=dtype) for x in _validate(n, d, loss, None))
    kw = dict(max_iter=max_iter, memory_size=memory_size, max_linesearch_steps=max_linesearch_steps, gtol=gtol, ftol=ftol)
    if fit is None:
        fit = huber_fit(n, d, loss, delta=delta, grid=grid, **kw)
    starts = _top_distinct(fit, num_starts)
    if extra_starts is not None:
        starts = jnp.concatenate([starts, _as_starts(extra_starts, dtype)])
    counts = _resample_counts(key, int(num_resamples), log_n.shape[0], dtype)
    cfg = _config(dtype=dtype, **kw)
    theta, value, it = _bootstrap_core(
        starts, log_n, log_d, log_l, counts, jnp.asarray(delta, dtype), cfg, batch_size
    )
    return _summarise(theta, value, it, fit, quantiles)


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
