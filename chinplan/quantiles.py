"""Exact quantiles over the leading (draw) axis: counting-pass selection on integer keys.

Quantiles need a few order statistics, not the whole order. Each float is mapped to an
integer key with the same order (:func:`_to_sort_key`); for every target rank ``r`` a bracket
``[lo, hi]`` of keys holding ``x_(r)`` is narrowed by counting passes: ``c = #(x < p)`` for
pivots ``p`` in the bracket moves ``lo`` up to ``p`` when ``c <= r`` and ``hi`` down to
``p - 1`` otherwise, until ``lo == hi == key(x_(r))`` (:func:`select_order_statistics`). The
order statistics are therefore the input values themselves, and the quantiles equal NumPy's
``np.quantile(method='linear')`` up to the rounding of the final interpolation (Hyndman &
Fan 1996, definition 7), bitwise independent of how the other axes are chunked. NaN draws
are counted and keyed as ``+inf``, so a reduction can propagate or omit them.
:func:`sort_over_draws` (a bitonic network) remains for callers who need the whole order.
:mod:`chinplan.engine` applies these per chunk of scenarios.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.law import as_float

__all__ = ["DEFAULT_QUANTILES", "draw_quantiles", "quantiles", "select_order_statistics", "sort_over_draws"]

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


def _keys(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Integer sort keys of ``x`` with NaN keyed as ``+inf``, and the NaN count per column."""
    is_nan = jnp.isnan(x)
    return _to_sort_key(jnp.where(is_nan, jnp.inf, x)), jnp.sum(is_nan, axis=0, dtype=jnp.int32)


def _count_below(keys: jax.Array, pivots: jax.Array) -> jax.Array:
    """``#(keys < pivot)`` over axis 0 for each of the ``P`` pivot rows ``(P, *rest)``.

    One reduction per pivot: XLA:CPU fuses them into a single read of ``keys``, and this form
    measured faster than one broadcast comparison ``(n, P, *rest)`` or halving trees.
    """
    return jnp.stack([jnp.sum(keys < pivot, axis=0, dtype=jnp.int32) for pivot in pivots])


def _step(width: jax.Array, fraction: jax.Array) -> jax.Array:
    """``floor(width * fraction)`` for unsigned ``width`` and ``fraction`` in [0, 1], no overflow.

    The fraction is rounded down to 16 bits ``f``; ``(w >> 16) f + ((w & 0xffff) f >> 16)``
    fits the unsigned type and never exceeds ``width``.
    """
    udtype = width.dtype
    f = jnp.clip(jnp.floor(fraction * 65536.0), 0, 65535).astype(udtype)
    return (width >> 16) * f + (((width & 0xFFFF) * f) >> 16)


def select_order_statistics(keys: jax.Array, ranks: jax.Array) -> jax.Array:
    """The order statistics ``key_(r)`` (0-based ranks) of each column of integer ``keys``.

    ``keys`` has shape ``(n, *rest)``; ``ranks`` (int32, values in ``[0, n - 1]``) broadcasts
    to ``(R, *rest)``. Per rank and column a bracket ``lo <= key_(r) <= hi`` starts at the
    column's min and max with ``c_lo = #(x < lo) <= r < c_hi = #(x <= hi)``. Each pass counts
    ``#(x < p)`` at two pivots per bracket, placed by linear interpolation of the rank in key
    space at ``r + 1/2 -+ (sqrt(c_hi - c_lo)/2 + 1)`` (the first replaced by the bisecting
    pivot every fourth pass, so ``hi - lo`` at least halves every four passes: at most
    ``4 x bits`` passes), and moves ``lo`` up to a pivot with count ``<= r`` or ``hi`` down
    to ``p - 1`` for one with count ``> r``. Keys are integers, so ``lo == hi`` is the answer.
    Key arithmetic wraps in the unsigned type of the same width, so no overflow is possible.
    Usable under ``jit`` and ``vmap`` (a ``lax.while_loop`` until every bracket is closed).

    Returns:
      Keys of shape ``(R, *rest)``.
    """
    n = keys.shape[0]
    rest = keys.shape[1:]
    ranks = jnp.asarray(ranks, jnp.int32)
    shape = (ranks.shape[0],) + rest
    ranks = jnp.broadcast_to(ranks, shape)
    udtype = jnp.dtype(f"uint{8 * keys.dtype.itemsize}")
    bits = 8 * keys.dtype.itemsize
    lo = jnp.broadcast_to(jnp.min(keys, axis=0), shape)
    hi = jnp.broadcast_to(jnp.max(keys, axis=0), shape)
    c_lo = (lo - lo).astype(jnp.int32)  # derived from the keys: 'varying' under shard_map too
    c_hi = c_lo + n

    def open_(state):
        lo, hi, _, _, passes = state
        return jnp.any(lo < hi) & (passes < 4 * bits + 4)

    def narrow(state):
        lo, hi, c_lo, c_hi, passes = state
        width = jax.lax.bitcast_convert_type(hi - lo, udtype)
        span = (c_hi - c_lo).astype(jnp.float32)
        margin = 0.5 * jnp.sqrt(span) + 1.0
        target = (ranks - c_lo).astype(jnp.float32) + 0.5
        step_a = _step(width, jnp.clip((target - margin) / span, 0.0, 1.0))
        bisect = (width >> 1) + (width & 1)
        step_a = jnp.where(passes % 4 == 3, bisect, step_a)
        step_b = _step(width, jnp.clip((target + margin) / span, 0.0, 1.0))
        one = jnp.ones((), udtype)
        pivots = [lo + jax.lax.bitcast_convert_type(jnp.maximum(s, one), keys.dtype) for s in (step_a, step_b)]
        counts = _count_below(keys, jnp.concatenate(pivots))
        active = lo < hi
        new_lo, new_hi, new_c_lo, new_c_hi = lo, hi, c_lo, c_hi
        for pivot, count in zip(pivots, (counts[: shape[0]], counts[shape[0] :])):
            below = active & (count <= ranks) & (pivot > new_lo)
            above = active & (count > ranks) & (pivot - 1 < new_hi)
            new_lo, new_c_lo = jnp.where(below, pivot, new_lo), jnp.where(below, count, new_c_lo)
            new_hi, new_c_hi = jnp.where(above, pivot - 1, new_hi), jnp.where(above, count, new_c_hi)
        return new_lo, new_hi, new_c_lo, new_c_hi, passes + 1

    state = jax.lax.while_loop(open_, narrow, (lo, hi, c_lo, c_hi, jnp.zeros((), jnp.int32)))
    return state[0]


def _next_up(keys: jax.Array, value: jax.Array, rank: jax.Array) -> jax.Array:
    """``key_(rank + 1)`` given ``value = key_(rank)`` (both ``(R, *rest)``): ``value`` itself
    while ties last, else the smallest key above it (one pass: counts and masked minima)."""
    top = jnp.iinfo(keys.dtype).max
    at_most = jnp.stack([jnp.sum(keys <= v, axis=0, dtype=jnp.int32) for v in value])
    larger = jnp.stack([jnp.min(jnp.where(keys > v, keys, top), axis=0) for v in value])
    return jnp.where(at_most > rank + 1, value, larger)


def _quantile_ranks(n: int, nan_count: jax.Array, q: tuple[float, ...], nan_policy: str, dtype):
    """``(below, above, weight)`` with ``h = q (n_valid - 1)``, ``below = floor(h)``,
    ``above = min(below + 1, n_valid - 1)`` and ``weight = h - below`` (type 7)."""
    column = (-1,) + (1,) * nan_count.ndim
    if nan_policy == "propagate":
        position = np.asarray(q, np.float64) * (n - 1)  # on the host, in float64, as NumPy does
        below = np.floor(position).astype(np.int32)
        above = np.minimum(below + 1, n - 1).astype(np.int32)
        weight = jnp.asarray(position - below, dtype).reshape(column)
        return jnp.asarray(below).reshape(column), jnp.asarray(above).reshape(column), weight
    # 'omit': n_valid varies per column, so the ranks are computed on the device.
    last = jnp.maximum(n - nan_count - 1, 0)[None]
    position = jnp.asarray(q, dtype).reshape(column) * last.astype(dtype)
    below = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, last)
    above = jnp.minimum(below + 1, last)
    return below, above, position - below.astype(dtype)


def quantiles(samples: ArrayLike, q: ArrayLike = DEFAULT_QUANTILES, *, nan_policy: str = "propagate") -> jax.Array:
    """Exact type-7 quantiles over axis 0 (the selection kernel), for use inside ``jit``/``vmap``.

    ``Q(q) = x_(i) + (h - i)(x_(i+1) - x_(i))``, ``h = q (n - 1)``, ``i = floor(h)`` (Hyndman
    & Fan 1996, definition 7; ``np.quantile(method='linear')``), with ``x_(i)`` found by
    :func:`select_order_statistics` and ``x_(i+1)`` by one more pass. ``samples`` may be a
    tracer; ``q`` and ``nan_policy`` are static (Python values). :func:`draw_quantiles` is
    the checked host entry point and :func:`chinplan.engine.bands` the driver for sweeps.

    Returns:
      ``(len(q), *rest)`` (``rest`` for a scalar ``q``), in ``samples``' floating dtype.
    """
    levels = _checks.levels("q", q)
    _checks.one_of("nan_policy", nan_policy, ("omit", "propagate"))
    x = as_float(samples)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"samples must have a non-empty leading axis, got shape {x.shape}")
    values, _ = _quantiles_and_nan_count(x, levels, nan_policy)
    return values[0] if np.ndim(q) == 0 else values


def _quantiles_and_nan_count(x: jax.Array, q: tuple[float, ...], nan_policy: str) -> tuple[jax.Array, jax.Array]:
    keys, nan_count = _keys(x)
    below, above, weight = _quantile_ranks(x.shape[0], nan_count, q, nan_policy, x.dtype)
    low = select_order_statistics(keys, below)
    high = _next_up(keys, low, jnp.broadcast_to(below, low.shape))
    high = jnp.where(above == below, low, high)
    values = _lerp(_from_sort_key(low, x.dtype), _from_sort_key(high, x.dtype), weight)
    n_valid = x.shape[0] - nan_count
    values = jnp.where(nan_count > 0, jnp.nan, values) if nan_policy == "propagate" else jnp.where(n_valid > 0, values, jnp.nan)
    return values, nan_count


def draw_quantiles(samples: ArrayLike, q: ArrayLike = DEFAULT_QUANTILES, *, nan_policy: str = "propagate") -> jax.Array:
    """Exact quantiles over axis 0, equal to ``np.quantile(samples, q, axis=0)`` (linear method).

    ``Q(q) = x_(i) + (h - i)(x_(i+1) - x_(i))`` with ``h = q (n - 1)``, ``i = floor(h)`` and
    ``x_(0) <= ... <= x_(n-1)`` the sorted values (Hyndman & Fan 1996, definition 7). The order
    statistics come from counting-pass selection (:func:`select_order_statistics`), so they
    are the input values themselves; only the interpolation rounds. ``+inf`` and ``-inf`` are
    ordinary order statistics; see :func:`_lerp` for interpolation next to an infinity.

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
    return _quantiles_and_nan_count(x, q, nan_policy)[0]


def _tree_sum(x: jax.Array) -> jax.Array:
    """Sum over axis 0 by a fixed halving tree (zero-padded to a power of two): the same
    additions in the same order for every column, whatever the other axes' sizes."""
    padded = _next_power_of_two(x.shape[0])
    if padded > x.shape[0]:
        x = jnp.concatenate([x, jnp.zeros((padded - x.shape[0], *x.shape[1:]), x.dtype)])
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        x = x[:half] + x[half:]
    return x[0]


def upper_tail_mean(y: jax.Array, tail_mass: jax.Array) -> jax.Array:
    """CVaR over axis 0: ``(sum_{j >= n-m} y_(j) + (k - m) y_(n-m-1)) / k``, ``m = floor(k)``.

    ``k = tail_mass = n (1 - level)`` draws' worth of mass (Rockafellar & Uryasev 2002). With
    ``v = y_(a)``, ``a = max(n - m - 1, 0)`` from one selection, the top ``m`` order statistics
    are every ``y > v`` (``g`` of them) plus ``m - g`` copies of ``v``; ``k = 0`` gives the
    maximum. NaN anywhere in a column gives NaN. The sum is a fixed tree (:func:`_tree_sum`).
    """
    n = y.shape[0]
    keys, nan_count = _keys(y)
    k = jnp.asarray(tail_mass, y.dtype)
    m = jnp.floor(k)
    rank = jnp.clip(n - 1 - m.astype(jnp.int32), 0, n - 1)
    v_key = select_order_statistics(keys, jnp.broadcast_to(rank, (1,)))[0]
    v = _from_sort_key(v_key, y.dtype)
    above = keys > v_key
    g = jnp.sum(above, axis=0, dtype=jnp.int32).astype(y.dtype)
    top = _tree_sum(jnp.where(above, y, 0)) + jnp.where(m > g, (m - g) * v, 0)
    tail = top + jnp.where(k > m, (k - m) * v, 0)
    value = jnp.where(k > 0, tail / jnp.where(k > 0, k, 1), v)
    return jnp.where(nan_count > 0, jnp.nan, value)
