"""The extrapolated law: one posterior draw of the law with its discrepancy beyond the data.

How far beyond the fitted runs a question lies (:func:`decades_beyond`: decades beyond their
largest compute, parameters and tokens), and the mean log loss of a draw there
(:func:`extrapolated_log_loss`)::

    log L(N, D) = log L_theta(N 10^(-v dC), D 10^(v dC)) + u d^(1/2)

with ``u`` the level drift and ``v`` the allocation (valley) drift of that draw, learned at
fit time by :mod:`chinplan.inference.extrapolation` (which documents the whole predictive).
This module is per-point maths only (no fitting): the engine's kernels, the decisions and the
posterior all use it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from chinplan.law import LawParams, log_g, log_loss

__all__ = [
    "Domain",
    "ExtrapolatedLaw",
    "compute_optimal_draws",
    "decades_beyond",
    "plan_decades_beyond",
    "Smallest",
    "plan_decades_below",
    "carried_smallest",
    "extrapolated_log_loss",
    "extrapolated_optimum_log",
    "level_distance",
    "log_loss_draws",
    "LEVEL_POWER",
    "VALLEY_RAMP",
    "valley_shift",
    "from_draws",
]

LN10 = math.log(10.0)
LOG10_6 = math.log10(6.0)


class Domain(NamedTuple):
    """The fitted runs' largest log10 compute, parameters and tokens."""

    log10_compute: float
    log10_params: float
    log10_tokens: float

    @classmethod
    def of(cls, log_n: np.ndarray, log_d: np.ndarray) -> "Domain":
        l10n, l10d = np.asarray(log_n) / LN10, np.asarray(log_d) / LN10
        return cls(float(np.max(l10n + l10d) + LOG10_6), float(np.max(l10n)), float(np.max(l10d)))


def decades_beyond(domain, log_n, log_d):
    """``(d, dC, dN, dD)``: decades beyond the fitted runs in compute, N and D; ``d`` is the largest.

    Works on NumPy or JAX arrays of natural logs; each part is ``max(0, log10 x - log10 x_max)``.
    """
    xp = jnp if isinstance(log_n, jax.Array) or isinstance(log_d, jax.Array) else np
    l10n, l10d = log_n / LN10, log_d / LN10
    d_c = xp.maximum(0.0, l10n + l10d + LOG10_6 - domain[0])
    d_n = xp.maximum(0.0, l10n - domain[1])
    d_d = xp.maximum(0.0, l10d - domain[2])
    return xp.maximum(d_c, xp.maximum(d_n, d_d)), d_c, d_n, d_d


def plan_decades_beyond(domain, n, d) -> np.ndarray:
    """``d`` of :func:`decades_beyond` for plans given as sizes (N, D) on the host, float64;
    ``inf`` for an unreachable (non-finite) plan."""
    n, d = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(d, np.float64))
    ok = np.isfinite(n) & np.isfinite(d)
    beyond = decades_beyond(np.asarray(domain, np.float64), np.log(np.where(ok, n, 1.0)), np.log(np.where(ok, d, 1.0)))[0]
    return np.where(ok, beyond, np.inf)


class Smallest(NamedTuple):
    """The smallest fitted run's log10 compute and the smallest fitted model's log10 parameters."""

    log10_compute: float
    log10_params: float

    @classmethod
    def of(cls, log_n: np.ndarray, log_d: np.ndarray) -> "Smallest":
        l10n, l10d = np.asarray(log_n, np.float64) / LN10, np.asarray(log_d, np.float64) / LN10
        return cls(float(np.min(l10n + l10d) + LOG10_6), float(np.min(l10n)))


def plan_decades_below(smallest, n, d) -> np.ndarray:
    """Decades below the fitted runs of plans (N, D) on the host, float64: the larger of
    ``log10 C_min - log10 6ND`` (compute) and ``log10 N_min - log10 N`` (parameters), at
    least 0; ``smallest`` a :class:`Smallest`. 0 for an unreachable (non-finite) plan, whose
    distance :func:`plan_decades_beyond` reports as ``inf``."""
    n, d = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(d, np.float64))
    ok = np.isfinite(n) & np.isfinite(d) & (n > 0) & (d > 0)
    l10n, l10d = np.log10(np.where(ok, n, 1.0)), np.log10(np.where(ok, d, 1.0))
    below = np.maximum(0.0, np.maximum(smallest[0] - (l10n + l10d + LOG10_6), smallest[1] - l10n))
    return np.where(ok, below, 0.0)


#: The level terms grow as ``d ** LEVEL_POWER``: 1/2 is a random walk in the decades beyond
#: the data (a Wiener process), which matches the back-tests' errors growing about 3x from
#: half a decade to two (docs/CALIBRATION.md); the valley drift stays linear in ``dC``.
LEVEL_POWER = 0.5


def _level(d):
    """``d ** LEVEL_POWER`` with a zero (not NaN) gradient at ``d = 0``, inside the data."""
    xp = jnp if isinstance(d, jax.Array) else np
    return xp.where(d > 0, xp.where(d > 0, d, 1.0) ** LEVEL_POWER, 0.0)


def level_distance(domain, log_n, log_d):
    """``d ** LEVEL_POWER``, the scale of the level drift and scatter at a point (0 inside)."""
    return _level(decades_beyond(domain, log_n, log_d)[0])


class ExtrapolatedLaw(NamedTuple):
    """One draw (or a leading draw axis) of the law with its discrepancy; a pytree.

    Attributes:
      law: the law's constants.
      u: level drift (log loss per decade beyond the data).
      v: allocation drift (decades of N per decade beyond, at fixed compute).
      kappa: per-point scatter (log loss per decade beyond).
      domain: the fitted data's largest log10 (compute, params, tokens), shape (..., 3).
      c: valley offset beyond the data (decades of N at fixed compute), reached over the
        first :data:`VALLEY_RAMP` decades beyond; None (the default) is 0.
      smallest: the fitted data's smallest log10 (compute, params) (:class:`Smallest`), shape
        (..., 2), NaN where the posterior records no runs; no kernel reads it: it rides with
        the draws so that a decision's outputs can say how far below the fitted runs a plan
        lies (:func:`carried_smallest`, :func:`plan_decades_below`). None (the default): unknown.
    """

    law: LawParams
    u: jax.Array
    v: jax.Array
    kappa: jax.Array
    domain: jax.Array
    c: jax.Array | None = None
    smallest: jax.Array | None = None


def carried_smallest(theta) -> Smallest | None:
    """The fitted runs' smallest log10 (compute, params) that extrapolation-aware draws carry
    (:attr:`ExtrapolatedLaw.smallest`, from the first draw: every draw holds the same), as a
    float64 :class:`Smallest`; None for law-only draws (LawParams) or draws that do not know
    their runs."""
    smallest = getattr(theta, "smallest", None)
    if smallest is None:
        return None
    first = np.asarray(smallest, np.float64).reshape(-1, 2)[0]
    return Smallest(float(first[0]), float(first[1])) if np.all(np.isfinite(first)) else None


#: Decades beyond the data over which the valley offset ``c`` ramps in linearly (the
#: allocation is continuous at the data's edge; from here on the offset is whole).
VALLEY_RAMP = 0.1


def valley_shift(theta: ExtrapolatedLaw, d_c):
    """Decades the isoFLOP valley moves at ``d_c`` decades beyond in compute:
    ``v dC + c min(1, dC / VALLEY_RAMP)`` (0 inside the data)."""
    shift = theta.v * d_c
    if theta.c is not None:
        shift = shift + theta.c * jnp.minimum(1.0, d_c / VALLEY_RAMP)
    return shift


def extrapolated_log_loss(theta: ExtrapolatedLaw, log_n, log_d):
    """Mean log loss of one draw with its discrepancy: ``log L(N 10^-s, D 10^s) + u d^(1/2)``,
    ``s`` the valley's shift (:func:`valley_shift`: ``v dC``, plus the offset ``c``).

    The valley slides with the compute distance ``dC`` only, so on an isoFLOP line it is a
    pure translation and the compute-optimal N moves by exactly ``v dC`` decades.
    """
    dom = theta.domain
    d, d_c, _, _ = decades_beyond((dom[..., 0], dom[..., 1], dom[..., 2]), log_n, log_d)
    shift = LN10 * valley_shift(theta, d_c)
    return log_loss(theta.law, log_n - shift, log_d + shift) + theta.u * _level(d)


def extrapolated_optimum_log(theta: ExtrapolatedLaw, log_compute):
    """``(log N, log D, log L)`` of one draw's compute optimum on ``6 N D = C``, with its discrepancy.

    On an isoFLOP line the allocation drift is a pure translation by ``v dC`` decades of N
    (``dC`` is constant there), so the optimum is the law's closed form (Hoffmann et al.
    2022, Eq. 4: ``log N = log G + a log(C/6)``, ``a = beta/(alpha+beta)``) moved by
    ``v dC``: it minimises the law moved by ``v dC`` plus the level drift ``u dC^(1/2)``, which is
    constant on the line. The returned loss is :func:`extrapolated_log_loss` at that plan.
    """
    law, dom = theta.law, theta.domain
    log_c6 = log_compute - math.log(6.0)
    a = law.beta / (law.alpha + law.beta)
    log_n = log_g(jnp.log(law.A), jnp.log(law.B), law.alpha, law.beta) + a * log_c6
    d_c = jnp.maximum(0.0, log_compute / LN10 - dom[..., 0])
    log_n = log_n + LN10 * valley_shift(theta, d_c)
    log_d = log_c6 - log_n
    return log_n, log_d, extrapolated_log_loss(theta, log_n, log_d)


@jax.jit
def log_loss_draws(theta: ExtrapolatedLaw, log_n, log_d):
    """(draws, *shape) mean log loss of every draw (leading axis of ``theta``) at every point."""
    return jax.vmap(extrapolated_log_loss, in_axes=(0, None, None))(theta, log_n, log_d)


@jax.jit
def compute_optimal_draws(theta: ExtrapolatedLaw, log_compute):
    """(draws, *shape) log N, log D and mean log loss of each draw's compute optimum."""
    flat = log_compute.reshape(-1)
    out = jax.vmap(jax.vmap(extrapolated_optimum_log, in_axes=(None, 0)), in_axes=(0, None))(theta, flat)
    return tuple(x.reshape((-1,) + log_compute.shape) for x in out)


def from_draws(law: LawParams, domain, terms: dict | None, smallest=None) -> ExtrapolatedLaw:
    """Posterior draws (leading axis of ``law``) as an :class:`ExtrapolatedLaw`: ``terms`` the
    extrapolation group's ``u``, ``v``, ``kappa`` (and ``c`` where the fit learned the
    allocation line) as arrays of the draws, or None for the law alone (every term 0);
    ``smallest`` the fitted runs' :class:`Smallest` (None: unknown, carried as NaN). Every
    combination shares one pytree structure, so law and extrapolation draws share one
    compiled kernel."""
    dtype = law.alpha.dtype
    num = law.alpha.shape[0]
    zeros = jnp.zeros(num, dtype)
    terms = {} if terms is None else terms
    u, v, kappa, c = (jnp.asarray(np.asarray(terms[k]).reshape(-1), dtype) if k in terms else zeros for k in ("u", "v", "kappa", "c"))
    low = jnp.full(2, jnp.nan, dtype) if smallest is None else jnp.asarray(tuple(smallest), dtype)
    return ExtrapolatedLaw(law, u, v, kappa, jnp.broadcast_to(jnp.asarray(domain, dtype), (num, 3)), c, jnp.broadcast_to(low, (num, 2)))
