"""Exact quantiles over the leading (draw) axis, by a bitonic sorting network.

The draws sit on the leading axis (padded to a power of two with ``+inf``) and every stage of
compare-exchanges is an elementwise ``minimum``/``maximum`` of the rows and their partner rows
across all other axes. Min/max only move values, so the sorted column is exactly the sorted
draws and the quantiles equal NumPy's ``np.quantile(method='linear')`` up to the rounding of
the final interpolation (Hyndman & Fan 1996, definition 7). NaN draws sort last and are
counted, so a reduction can propagate or omit them. :mod:`chinplan.engine` applies these
per chunk of scenarios.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.law import as_float

__all__ = ["DEFAULT_QUANTILES", "draw_quantiles", "sort_over_draws"]

#: The default quantile levels: a 90% band and the median.
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)




def _next_power_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@functools.lru_cache(maxsize=32)
def _bitonic_network(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The stages of a bitonic sorting network on ``n`` (a power of two) rows.

    Stage ``(k, j)`` for ``k = 2, 4, ..., n`` and ``j = k/2, ..., 1`` pairs row ``i`` with
    row ``i XOR j``; the pair is sorted ascending when bit ``k`` of ``i`` is clear and
    descending otherwise. Row ``i`` keeps the minimum of its pair when it is the pair's
    lower row of an ascending pair or the upper row of a descending one.

    Returns:
      ``(partner, keeps_min)``, each of shape ``(n_stages, n)``, ``n_stages = log2(n) (log2(n) + 1) / 2``.
    """
    rows = np.arange(n)
    partners, keeps_min = [], []
    k = 2
    while k <= n:
        j = k // 2
        while j >= 1:
            partner = rows ^ j
            partners.append(partner)
            keeps_min.append((rows < partner) == ((rows & k) == 0))
            j //= 2
        k *= 2
    if not partners:
        return np.zeros((0, n), np.int32), np.zeros((0, n), bool)
    return np.stack(partners).astype(np.int32), np.stack(keeps_min)


def _bitonic_sort_pow2(x: jax.Array) -> jax.Array:
    """Sorts ``x`` ascending along axis 0, whose length must be a power of two; no NaN allowed.

    One ``lax.scan`` step per network stage (55 for n = 1024): gather every row's partner,
    then keep ``minimum(x, partner)`` or ``maximum(x, partner)`` row by row. Each stage is
    elementwise across the whole chunk, so all scenarios of a chunk are sorted at once; the
    scan keeps compilation small (one stage body, whatever the number of draws).
    """
    partner, keeps_min = _bitonic_network(x.shape[0])
    if partner.shape[0] == 0:
        return x
    row_shape = (-1,) + (1,) * (x.ndim - 1)

    def stage(x: jax.Array, table: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        rows_partner, rows_keep_min = table
        other = jnp.take(x, rows_partner, axis=0)
        return jnp.where(rows_keep_min.reshape(row_shape), jnp.minimum(x, other), jnp.maximum(x, other)), None

    return jax.lax.scan(stage, x, (jnp.asarray(partner), jnp.asarray(keeps_min)))[0]


def sort_over_draws(samples: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Sorts ``samples`` along axis 0 with a bitonic network, NaN last.

    Args:
      samples: array of shape ``(n, *rest)``; integers are converted to floating point.

    Returns:
      ``(sorted, nan_count)``: ``sorted`` has shape ``(n, *rest)``, ascending along axis 0 with
      ``+inf`` above every finite value; each NaN is replaced by ``+inf`` and placed last (the
      first ``n - nan_count`` rows of a column are its non-NaN values in order).
      ``nan_count`` (int32, shape ``rest``) counts the NaNs per column.
    """
    x = as_float(samples)
    n = x.shape[0]
    is_nan = jnp.isnan(x)
    nan_count = jnp.sum(is_nan, axis=0, dtype=jnp.int32)
    x = jnp.where(is_nan, jnp.inf, x)
    padded = _next_power_of_two(n)
    if padded > n:
        x = jnp.concatenate([x, jnp.full((padded - n, *x.shape[1:]), jnp.inf, x.dtype)])
    return _from_sort_key(_bitonic_sort_pow2(_to_sort_key(x))[:n], x.dtype), nan_count


def _to_sort_key(x: jax.Array) -> jax.Array:
    """Signed integers ordered like the (non-NaN) floats ``x``: integer min/max are cheaper.

    IEEE floats are sign-magnitude: the bits of a non-negative float already order as signed
    integers; a negative float's magnitude bits are flipped so that more negative sorts lower.
    The map is its own inverse and exact; -0.0 sorts just below +0.0.
    """
    int_dtype = jnp.dtype(f"int{8 * x.dtype.itemsize}")
    bits = jax.lax.bitcast_convert_type(x, int_dtype)
    return jnp.where(bits < 0, bits ^ jnp.iinfo(int_dtype).max, bits)


def _from_sort_key(key: jax.Array, dtype) -> jax.Array:
    bits = jnp.where(key < 0, key ^ jnp.iinfo(key.dtype).max, key)
    return jax.lax.bitcast_convert_type(bits, dtype)


def _lerp(low: jax.Array, high: jax.Array, weight: jax.Array) -> jax.Array:
    """``low + weight (high - low)`` as NumPy's ``method='linear'`` computes it, honest at inf.

    NumPy evaluates ``low + d w`` for ``w < 0.5`` and ``high - d (1 - w)`` otherwise
    (``d = high - low``). Non-finite neighbours are resolved as limits: ``w = 0`` or
    ``low == high`` gives ``low`` exactly; otherwise a ``-inf`` low gives ``-inf`` and a
    ``+inf`` high gives ``+inf``; ``(-inf, +inf)`` gives NaN (inf - inf has no value).
    """
    diff = high - low
    linear = jnp.where(weight >= 0.5, high - diff * (1 - weight), low + diff * weight)
    limit = jnp.where(low == -jnp.inf, low, jnp.where(high == jnp.inf, high, linear))
    limit = jnp.where((low == -jnp.inf) & (high == jnp.inf), jnp.nan, limit)
    return jnp.where((weight == 0) | (low == high), low, limit)


def _quantiles_from_sorted(
    sorted_x: jax.Array, nan_count: jax.Array, q: tuple[float, ...], nan_policy: str
) -> jax.Array:
    """Quantiles ``(len(q), *rest)`` from columns sorted by :func:`sort_over_draws`.

    With ``n`` values ``x_(0) <= ... <= x_(n-1)``: ``h = q (n - 1)``, ``i = floor(h)``,
    ``Q(q) = x_(i) + (h - i) (x_(i+1) - x_(i))`` (Hyndman & Fan type 7, NumPy's default).
    """
    n = sorted_x.shape[0]
    dtype = sorted_x.dtype
    if nan_policy == "propagate":
        position = np.asarray(q, np.float64) * (n - 1)  # on the host, in float64, as NumPy does
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, n - 1)
        weight = jnp.asarray(position - below, dtype).reshape((-1,) + (1,) * (sorted_x.ndim - 1))
        values = _lerp(sorted_x[below], sorted_x[above], weight)
        return jnp.where(nan_count > 0, jnp.nan, values)
    # 'omit': n_valid varies per column, so the ranks are computed on the device.
    n_valid = (n - nan_count)[None]
    levels = jnp.asarray(q, dtype).reshape((-1,) + (1,) * (sorted_x.ndim - 1))
    position = levels * jnp.maximum(n_valid - 1, 0).astype(dtype)
    below = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, jnp.maximum(n_valid - 1, 0))
    above = jnp.minimum(below + 1, jnp.maximum(n_valid - 1, 0))
    weight = position - below.astype(dtype)
    values = _lerp(jnp.take_along_axis(sorted_x, below, 0), jnp.take_along_axis(sorted_x, above, 0), weight)
    return jnp.where(n_valid > 0, values, jnp.nan)


def draw_quantiles(samples: ArrayLike, q: ArrayLike = DEFAULT_QUANTILES, *, nan_policy: str = "propagate") -> jax.Array:
    """Exact quantiles over axis 0, equal to ``np.quantile(samples, q, axis=0)`` (linear method).

    ``Q(q) = x_(i) + (h - i)(x_(i+1) - x_(i))`` with ``h = q (n - 1)``, ``i = floor(h)`` and
    ``x_(0) <= ... <= x_(n-1)`` the sorted values (Hyndman & Fan 1996, definition 7). The order
    statistics come from a bitonic sorting network (:func:`sort_over_draws`), so they are the
    input values themselves; only the interpolation rounds. ``+inf`` and ``-inf`` are ordinary
    order statistics; see :func:`_lerp` for interpolation next to an infinity.

    Args:
      samples: array of shape ``(n, *rest)``; integers are converted to floating point.
      q: quantile levels in [0, 1], a scalar or a 1-D sequence.
      nan_policy: ``'propagate'`` (a column with any NaN gives NaN) or ``'omit'`` (quantiles of
        the non-NaN values of each column, NaN if there are none; ``np.nanquantile``).

    Returns:
      Array of shape ``(len(q), *rest)`` (or ``rest`` for a scalar ``q``).
    """
    levels = _checks.levels("q", q)
    _checks.one_of("nan_policy", nan_policy, ("omit", "propagate"))
    x = as_float(samples)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"samples must have a non-empty leading axis, got shape {x.shape}")
    result = _jitted_draw_quantiles(x, levels, nan_policy)
    return result[0] if np.ndim(q) == 0 else result


@functools.partial(jax.jit, static_argnums=(1, 2))
def _jitted_draw_quantiles(x: jax.Array, q: tuple[float, ...], nan_policy: str) -> jax.Array:
    sorted_x, nan_count = sort_over_draws(x)
    return _quantiles_from_sorted(sorted_x, nan_count, q, nan_policy)


def _upper_tail_weights(n: int, tail_mass: jax.Array, dtype) -> jax.Array:
    """Weights ``w`` over ascending order statistics with ``sum(w y_sorted) / k = CVaR``.

    ``k = tail_mass = n (1 - level)`` draws' worth of mass sits in the upper tail: the top
    ``m = floor(k)`` order statistics get weight 1 and the next one down ``k - m``.
    """
    rank = jnp.arange(n, dtype=dtype)
    whole = jnp.floor(tail_mass)
    return jnp.where(rank >= n - whole, 1.0, jnp.where(rank == n - whole - 1, tail_mass - whole, 0.0)).astype(dtype)
