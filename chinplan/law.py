"""The Chinchilla scaling law's forms, written for one point and computed in log space.

    L(N, D) = E + A / N^alpha + B / D^beta            (Hoffmann et al. 2022, Eq. 2)

Every function here takes a :class:`LawParams` (scalars for one law, or arrays that
broadcast against the other inputs) and array-like inputs, and is pure, jittable,
vmappable and differentiable. Work is done on ``log N``, ``log D`` and ``log C``, so the
functions stay exact in float32 for N up to 1e13, D up to 1e15 and C up to 1e28: nothing
as large as ``6 N D`` is ever formed outside a logarithm.

The optima built on these forms live in :mod:`chinplan.optima`.

Concrete inputs are checked at the boundary (:mod:`chinplan._checks`): NaN, inf, a count
<= 0 or a constant out of its domain raises a ``ValueError`` naming the argument. Under a
caller's ``jit``/``vmap``/``grad`` nothing is checked and IEEE rules apply (NaN in, NaN out).

Integer counts (NumPy ``int64`` or Python ``int``) are converted to floating point on the
host before they reach JAX, so a 15e12-token count never wraps around in int32.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan._checks import as_float  # noqa: F401  (re-exported: chinplan.law.as_float)
from chinplan.format import records_html

__all__ = [
    "LawParams",
    "DataConstrainedParams",
    "Allocation",
    "HOFFMANN_2022",
    "HOFFMANN_2022_PRINTED",
    "BESIROGLU_2024",
    "MUENNIGHOFF_2023",
    "MUENNIGHOFF_2023_DATA_CONSTRAINED",
    "PRESETS",
    "R_D_STAR",
    "R_N_STAR",
    "FLOPS_PER_PARAM_TOKEN",
    "as_float",
    "is_law",
    "decay_constants",
    "logs",
    "safe_log",
    "log_loss",
    "log_loss_parts",
    "loss",
    "loss_log",
    "effective_data",
    "effective_params",
    "log_g",
    "log_training_flops",
    "training_flops",
]

#: FLOPs per parameter per training token: C = 6 N D (Kaplan et al. 2020, §2.1).
FLOPS_PER_PARAM_TOKEN = 6.0
LOG6 = math.log(FLOPS_PER_PARAM_TOKEN)

#: Data-constrained decay constants of Muennighoff et al. 2023 (huggingface/datablations):
#: repeated data loses value after about R_D* epochs, excess parameters after R_N*.
R_D_STAR = 15.387
R_N_STAR = 5.309


class LawParams(NamedTuple):
    """Constants of L(N, D) = E + A/N^alpha + B/D^beta.

    Scalars describe one law; a leading axis holds posterior draws. All five are in natural
    units (E in nats, A and B such that A/N^alpha is in nats).
    """

    E: ArrayLike
    A: ArrayLike
    B: ArrayLike
    alpha: ArrayLike
    beta: ArrayLike

    @classmethod
    def from_logs(cls, log_E, log_A, log_B, alpha, beta) -> "LawParams":
        """Builds a law from ``log E``, ``log A``, ``log B`` (the fitting parameterisation)."""
        return cls(jnp.exp(log_E), jnp.exp(log_A), jnp.exp(log_B), jnp.asarray(alpha), jnp.asarray(beta))


class DataConstrainedParams(NamedTuple):
    """Constants of the data-constrained law (Muennighoff et al. 2023, Eq. 5-6).

    E, A, B, alpha, beta as :class:`LawParams`, and the decay constants ``r_d_star`` (repeated
    data loses its value over about R_D* epochs) and ``r_n_star`` (parameters beyond the
    compute-optimal size for the unique data, over about R_N* times that size). Every
    function of this module takes it where it takes a LawParams: without ``unique_tokens``
    it is the law of its first five constants (plenty of unique data repeats nothing).
    """

    E: ArrayLike
    A: ArrayLike
    B: ArrayLike
    alpha: ArrayLike
    beta: ArrayLike
    r_d_star: ArrayLike
    r_n_star: ArrayLike

    @property
    def base(self) -> LawParams:
        """The law of fresh data: LawParams(E, A, B, alpha, beta)."""
        return LawParams(*self[:5])


class Allocation(NamedTuple):
    """A training plan: parameters ``n``, training tokens ``d`` and the predicted ``loss``."""

    n: jax.Array
    d: jax.Array
    loss: jax.Array

    def _repr_html_(self) -> str:
        """A notebook's view: one row per element, every number exact in ``data-values``."""
        return records_html("Allocation: parameters N, tokens D, loss", self._asdict())


#: Hoffmann et al. 2022, unrounded constants from the paper's source (Approach 3).
HOFFMANN_2022 = LawParams(
    E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186), alpha=0.33917084, beta=0.2849083
)
#: Hoffmann et al. 2022 as printed in Eq. 10.
HOFFMANN_2022_PRINTED = LawParams(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
#: Besiroglu et al. 2024, refit of the digitised Chinchilla runs.
BESIROGLU_2024 = LawParams(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
#: Muennighoff et al. 2023 (data-constrained scaling), alpha = beta.
MUENNIGHOFF_2023 = LawParams(E=1.8691, A=520.82, B=1487.7, alpha=0.3526596, beta=0.3526596)

#: Muennighoff et al. 2023 with their fitted decay constants (the law of ``loss(..., unique_tokens=)``
#: when a plain LawParams is given).
MUENNIGHOFF_2023_DATA_CONSTRAINED = DataConstrainedParams(*MUENNIGHOFF_2023, R_D_STAR, R_N_STAR)

PRESETS = {
    "hoffmann2022": HOFFMANN_2022,
    "hoffmann2022-printed": HOFFMANN_2022_PRINTED,
    "besiroglu2024": BESIROGLU_2024,
    "muennighoff2023": MUENNIGHOFF_2023,
}


def safe_log(x: jax.Array) -> jax.Array:
    """log x with log 0 = -inf and a zero (not NaN) gradient at x = 0 (counts that may be 0)."""
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), -jnp.inf)


def is_law(x) -> bool:
    """Whether ``x`` is a law's constants: a :class:`LawParams` or a :class:`DataConstrainedParams`."""
    return isinstance(x, (LawParams, DataConstrainedParams))


def decay_constants(params) -> tuple:
    """``(R_D*, R_N*)`` of a law: its own for :class:`DataConstrainedParams`, else Muennighoff
    et al. 2023's published :data:`R_D_STAR`, :data:`R_N_STAR`."""
    if isinstance(params, DataConstrainedParams):
        return as_float(params.r_d_star), as_float(params.r_n_star)
    return R_D_STAR, R_N_STAR


def logs(params: LawParams):
    """``(log E, log A, log B, alpha, beta)`` of a law, as floating JAX arrays."""
    E, A, B, alpha, beta = (as_float(p) for p in tuple(params)[:5])
    return jnp.log(E), jnp.log(A), jnp.log(B), alpha, beta


def log_loss_parts(log_e, log_a, log_b, alpha, beta, log_n, log_d):
    """``(m, s0, s1, s2)`` with log L = m + log(s0 + s1 + s2) (Hoffmann et al. 2022, Eq. 11).

    s0, s1, s2 are E, A N^-alpha and B D^-beta scaled by exp(-m), m the largest log term
    (held constant for gradients): the one place the law's log L is written. :func:`log_loss`
    and the Huber fit (objective and closed-form gradient) are built on it. Unchecked.
    """
    t0, t1, t2 = jnp.broadcast_arrays(log_e, log_a - alpha * log_n, log_b - beta * log_d)
    # The three terms are combined elementwise rather than by jax.nn.logsumexp over a stacked
    # axis: XLA's CPU reduction over that axis rounds differently for different batch widths,
    # which made the engine's results depend (by an ulp) on the chunk size.
    m = jnp.maximum(jnp.maximum(t0, t1), t2)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    return m, jnp.exp(t0 - m), jnp.exp(t1 - m), jnp.exp(t2 - m)


def _log_loss(params: LawParams, log_n: ArrayLike, log_d: ArrayLike) -> jax.Array:
    e, a, b, alpha, beta = logs(params)
    m, s0, s1, s2 = log_loss_parts(e, a, b, alpha, beta, as_float(log_n), as_float(log_d))
    return m + jnp.log(s0 + s1 + s2)


def _check(params: LawParams | None = None, *, finite=(), positive=()) -> None:
    """The boundary check of this module's functions: the law, then named inputs (concrete only)."""
    if params is not None:
        _checks.law(params)
    for name, x in finite:
        if not _checks.is_traced(x):
            _checks.finite(name, x)
    for name, x in positive:
        if x is not None and not _checks.is_traced(x):
            _checks.positive(name, x)


def log_loss(params: LawParams, log_n: ArrayLike, log_d: ArrayLike) -> jax.Array:
    """``log L`` at ``log N``, ``log D``: logsumexp(log E, log A - alpha log N, log B - beta log D).

    This is the quantity the Huber fit and the Bayesian likelihood compare with observed log
    losses (Hoffmann et al. 2022, Eq. 11).
    """
    _check(params, finite=(("log_n", log_n), ("log_d", log_d)))
    return _log_loss(params, log_n, log_d)


def loss_log(params: LawParams, log_n: ArrayLike, log_d: ArrayLike) -> jax.Array:
    """L(N, D) from ``log N`` and ``log D``; convenient for gradients in log space."""
    return jnp.exp(log_loss(params, log_n, log_d))


def _log_effective(log_x: jax.Array, log_unique: jax.Array, r_star: float) -> jax.Array:
    """log of U + U R* (1 - exp(-R/R*)), U = min(X, unique), R = X/U - 1 (Muennighoff Eq. 5)."""
    log_u = jnp.minimum(log_x, log_unique)
    repeats = jnp.expm1(log_x - log_u)  # R >= 0: epochs beyond the first
    return log_u + jnp.log1p(-r_star * jnp.expm1(-repeats / r_star))


def effective_data(d: ArrayLike, unique_tokens: ArrayLike, params: LawParams | None = None) -> jax.Array:
    """Effective data D' of ``d`` tokens drawn from ``unique_tokens`` unique ones.

    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), U_D = min(D, unique), R_D = D/U_D - 1
    (Muennighoff et al. 2023, Eq. 5; R_D* of ``params`` when it is a
    :class:`DataConstrainedParams`, else the published 15.387). D' <= D, with equality when
    nothing is repeated; D' tends to U_D (1 + R_D*) for endless repetition.
    """
    _check(params, positive=(("d", d), ("unique_tokens", unique_tokens)))
    r_d, _ = decay_constants(params)
    return jnp.exp(_log_effective(jnp.log(as_float(d)), jnp.log(as_float(unique_tokens)), r_d))


def log_g(log_a, log_b, alpha, beta):
    """log G = (log(alpha A) - log(beta B)) / (alpha + beta) (Hoffmann et al. 2022, Eq. 4).

    G sets the compute-optimal split N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b. Works on JAX
    arrays (and tracers) and, for host code in float64, on NumPy arrays and Python numbers.
    """
    log = jnp.log if any(isinstance(x, jax.Array) for x in (log_a, log_b, alpha, beta)) else np.log
    return (log(alpha) + log_a - log(beta) - log_b) / (alpha + beta)


def _log_n_for_data(params: LawParams, log_d: jax.Array) -> jax.Array:
    """log of the compute-optimal N whose optimal D is ``exp(log_d)`` (N = G^(1 + a/b) D^(a/b))."""
    e, a, b, alpha, beta = logs(params)
    ratio = beta / alpha  # a / b
    return log_g(a, b, alpha, beta) * (1.0 + ratio) + ratio * log_d


def effective_params(params: LawParams, n: ArrayLike, unique_tokens: ArrayLike) -> jax.Array:
    """Effective parameters N' for a model of ``n`` parameters trained on ``unique_tokens``.

    U_N = min(N, N_opt(U_D)) with N_opt(U_D) the compute-optimal size for data U_D;
    R_N = N/U_N - 1; N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)) (Muennighoff et al. 2023,
    Eq. 6; R_N* of ``params`` when it is a :class:`DataConstrainedParams`, else 5.309).
    """
    _check(params, positive=(("n", n), ("unique_tokens", unique_tokens)))
    log_cap = _log_n_for_data(params, jnp.log(as_float(unique_tokens)))
    return jnp.exp(_log_effective(jnp.log(as_float(n)), log_cap, decay_constants(params)[1]))


def loss(params: LawParams, n: ArrayLike, d: ArrayLike, *, unique_tokens: ArrayLike | None = None) -> jax.Array:
    """Predicted final loss L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2).

    Args:
      params: the law's constants.
      n: parameters N.
      d: training tokens D.
      unique_tokens: if given, the number of unique tokens U_D; D and N are replaced by
        their effective values D' and N' of the data-constrained law (Muennighoff et al.
        2023): repeating data loses value after about R_D* epochs (the law's own for a
        :class:`DataConstrainedParams`, else the published R_D* = 15.4, R_N* = 5.3).

    Returns:
      The loss, broadcast over the inputs.
    """
    _check(params, positive=(("n", n), ("d", d), ("unique_tokens", unique_tokens)))
    log_n, log_d = jnp.log(as_float(n)), jnp.log(as_float(d))
    if unique_tokens is not None:
        log_n, log_d = log_effective_sizes(params, log_n, log_d, jnp.log(as_float(unique_tokens)))
    return jnp.exp(_log_loss(params, log_n, log_d))


def log_effective_sizes(params, log_n, log_d, log_u):
    """``(log N', log D')`` of the data-constrained law (Muennighoff et al. 2023, Eq. 5-6):
    the one place both are written. Unchecked; ``params`` a LawParams (published decay
    constants) or a :class:`DataConstrainedParams`."""
    r_d, r_n = decay_constants(params)
    return _log_effective(log_n, _log_n_for_data(params, log_u), r_n), _log_effective(log_d, log_u, r_d)


def _log_training_flops(log_n: jax.Array, log_d: jax.Array) -> jax.Array:
    return LOG6 + log_n + log_d


def log_training_flops(n: ArrayLike, d: ArrayLike) -> jax.Array:
    """log(6 N D): training compute (Kaplan et al. 2020, §2.1) = log 6 + log N + log D."""
    _check(positive=(("n", n), ("d", d)))
    return _log_training_flops(jnp.log(as_float(n)), jnp.log(as_float(d)))


def training_flops(n: ArrayLike, d: ArrayLike) -> jax.Array:
    """Training compute 6 N D (Kaplan et al. 2020, §2.1): exp of :func:`log_training_flops`.

    Values reach 1e25 and beyond, still well inside float32's range (3.4e38) because the
    product is never formed outside the exponent.
    """
    return jnp.exp(log_training_flops(n, d))
