"""Exact quantiles over the leading (draw) axis, by a bitonic sorting network.

The draws sit on the leading axis (padded to a power of two with ``+inf``), keyed as integers
with the floats' order, and every stage of compare-exchanges is an elementwise
``minimum``/``maximum`` of rows paired by a static reshape, across all other axes. Min/max only move values, so the sorted column is exactly the sorted
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
from chinplan._checks import as_float

__all__ = ["DEFAULT_QUANTILES", "draw_quantiles", "quantiles", "sort_over_draws", "upper_tail_mean", "upper_tail_sum"]

#: The default quantile levels: a 90% band and the median.
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)




#: Values (padded draws x columns) up to which a chunk is sorted by XLA's own sort
#: (``lax.sort`` of the same integer keys) instead of the bitonic network. Both are exact
#: sorts of the same keys, so every order statistic, and every quantile, is the same bit for
#: bit either way. The network runs 11-16x faster on a CPU (benchmarks/RESULTS.md) but
#: compiles for seconds (an unrolled stage per compare-exchange: ``plan``'s bands of 4,000
#: draws compile in 2.6 s of CPU with it, 1.2 s without); up to 2**16 values (16 columns of
#: 4,096 draws: one question from the command line) the sort takes milliseconds, so the
#: network would never pay for its compilation. Sweeps' chunks (2**17 values by default,
#: :mod:`chinplan.engine.reductions`) take the network.
NETWORK_MAX_SORT = 2**16


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _bitonic_sort_pow2(x: jax.Array, ranks: tuple[int, ...] | None = None) -> jax.Array:
    """Sorts ``x`` ascending along axis 0, whose length ``n`` must be a power of two; no NaN.

    Batcher's bitonic network in its all-ascending form (Batcher 1968; Knuth TAOCP 5.3.4):
    for block sizes ``k = 2, 4, ..., n``, first compare row ``i`` of each block's lower half
    with row ``k - 1 - i`` of its upper half (the "flip"), then for ``j = k/4, ..., 1`` compare
    rows ``j`` apart (half-cleaners); each compare keeps the minimum in the lower row.
    ``log2(n) (log2(n) + 1) / 2`` stages (55 for n = 1024), each a static reshape of the rows
    into ``(blocks, 2, j)`` and an elementwise min/max over every other axis at once, so a
    chunk of scenarios is sorted together. Min/max only move values: the result is a
    permutation of ``x``. Static reshapes measured 1.3-2.7x faster than gathering each row's
    partner by index (``benchmarks/bench_reduction.py``), at about 0.5 s more compilation.

    With static ``ranks``, returns only those rows of the sorted ``x`` (``(len(ranks), *rest)``):
    after the last flip, a half-cleaner maps each bitonic block onto two halves holding
    exactly its lower and upper ranks, so only blocks holding a wanted rank are cleaned
    further (:func:`_clean_blocks`): the last 9 of 55 stages shrink to about 2.
    """
    n = x.shape[0]
    rest = x.shape[1:]
    k = 2
    while k <= n:
        halves = x.reshape((n // k, 2, k // 2) + rest)
        low, high = halves[:, 0], jnp.flip(halves[:, 1], axis=1)
        x = jnp.stack([jnp.minimum(low, high), jnp.flip(jnp.maximum(low, high), axis=1)], axis=1).reshape(x.shape)
        if k == n and ranks is not None:
            return _clean_blocks(x, ranks)
        j = k // 4
        while j >= 1:
            pairs = x.reshape((n // (2 * j), 2, j) + rest)
            x = jnp.stack([jnp.minimum(pairs[:, 0], pairs[:, 1]), jnp.maximum(pairs[:, 0], pairs[:, 1])], axis=1)
            x = x.reshape((n,) + rest)
            j //= 2
        k *= 2
    return x if ranks is None else x[np.asarray(ranks)]


def _clean_blocks(x: jax.Array, ranks: tuple[int, ...]) -> jax.Array:
    """Rows ``ranks`` of the sorted ``x``, given ``x`` after the network's last flip (two
    bitonic halves, the lower one below the upper): half-cleaners on the blocks that hold a
    wanted rank only, keeping each block's first rank to know which ranks it holds."""
    n = x.shape[0]
    rest = x.shape[1:]
    length = max(n // 2, 1)
    starts = [s for s in range(0, n, length) if any(s <= r < s + length for r in ranks)]
    blocks = jnp.stack([x[s : s + length] for s in starts])  # (B, length, *rest)
    while length > 1:
        half = length // 2
        pairs = blocks.reshape((len(starts), 2, half) + rest)
        low, high = jnp.minimum(pairs[:, 0], pairs[:, 1]), jnp.maximum(pairs[:, 0], pairs[:, 1])
        kept = [(b, side) for b in range(len(starts)) for side in (0, 1)
                if any(starts[b] + side * half <= r < starts[b] + (side + 1) * half for r in ranks)]
        blocks = jnp.stack([(low if side == 0 else high)[b] for b, side in kept])
        starts = [starts[b] + side * half for b, side in kept]
        length = half
    return blocks[np.asarray([starts.index(r) for r in ranks]), 0]


def sort_over_draws(samples: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Sorts ``samples`` along axis 0 with a bitonic network, NaN last (usable under ``jit``).

    Args:
      samples: array of shape ``(n, *rest)``; integers are converted to floating point.

    Returns:
      ``(sorted, nan_count)``: ``sorted`` has shape ``(n, *rest)``, ascending along axis 0 with
      ``+inf`` above every finite value; each NaN is replaced by ``+inf`` and placed last (the
      first ``n - nan_count`` rows of a column are its non-NaN values in order).
      ``nan_count`` (int32, shape ``rest``) counts the NaNs per column.
    """
    return _order_statistics(as_float(samples))


def _order_statistics(x: jax.Array, ranks: tuple[int, ...] | None = None) -> tuple[jax.Array, jax.Array]:
    """:func:`sort_over_draws` of floating ``x``, or only its rows ``ranks`` (static, < n)."""
    n = x.shape[0]
    is_nan = jnp.isnan(x)
    nan_count = jnp.sum(is_nan, axis=0, dtype=jnp.int32)
    x = jnp.where(is_nan, jnp.inf, x)
    padded = _next_power_of_two(n)
    if padded > n:
        x = jnp.concatenate([x, jnp.full((padded - n, *x.shape[1:]), jnp.inf, x.dtype)])
    columns = _to_sort_key(x).reshape(padded, -1)  # one column axis: a simpler program
    if columns.size <= NETWORK_MAX_SORT:  # small: XLA's sort, the same rows, quick to compile
        rows = jax.lax.sort(columns, dimension=0)
        rows = rows if ranks is None else rows[np.asarray(ranks)]
    else:
        rows = _bitonic_sort_pow2(columns, ranks)
    rows = rows[:n] if ranks is None else rows
    return _from_sort_key(rows.reshape(rows.shape[:1] + x.shape[1:]), x.dtype), nan_count


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


def _quantiles(x: jax.Array, q: tuple[float, ...], nan_policy: str) -> tuple[jax.Array, jax.Array]:
    """Quantiles ``(len(q), *rest)`` of floating ``x`` over axis 0, and the NaN count.

    With ``n`` values ``x_(0) <= ... <= x_(n-1)``: ``h = q (n - 1)``, ``i = floor(h)``,
    ``Q(q) = x_(i) + (h - i) (x_(i+1) - x_(i))`` (Hyndman & Fan type 7, NumPy's default).
    Under ``'propagate'`` the ranks are static and only those rows leave the network.
    """
    n = x.shape[0]
    dtype = x.dtype
    column = (-1,) + (1,) * (x.ndim - 1)
    if nan_policy == "propagate":
        position = np.asarray(q, np.float64) * (n - 1)  # on the host, in float64, as NumPy does
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, n - 1)
        ranks = tuple(sorted(set(below.tolist()) | set(above.tolist())))
        rows, nan_count = _order_statistics(x, ranks)
        pick = lambda r: rows[np.asarray([ranks.index(i) for i in r])]  # noqa: E731
        weight = jnp.asarray(position - below, dtype).reshape(column)
        return jnp.where(nan_count > 0, jnp.nan, _lerp(pick(below), pick(above), weight)), nan_count
    # 'omit': n_valid varies per column, so the ranks are computed on the device.
    sorted_x, nan_count = _order_statistics(x)
    n_valid = (n - nan_count)[None]
    levels = jnp.asarray(q, dtype).reshape(column)
    position = levels * jnp.maximum(n_valid - 1, 0).astype(dtype)
    below = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, jnp.maximum(n_valid - 1, 0))
    above = jnp.minimum(below + 1, jnp.maximum(n_valid - 1, 0))
    weight = position - below.astype(dtype)
    values = _lerp(jnp.take_along_axis(sorted_x, below, 0), jnp.take_along_axis(sorted_x, above, 0), weight)
    return jnp.where(n_valid > 0, values, jnp.nan), nan_count


def quantiles(samples: ArrayLike, q: ArrayLike = DEFAULT_QUANTILES, *, nan_policy: str = "propagate") -> jax.Array:
    """Exact type-7 quantiles over axis 0, for use inside ``jit`` and ``vmap``.

    The same kernel as :func:`draw_quantiles` (``Q(q) = x_(i) + (h - i)(x_(i+1) - x_(i))``,
    ``h = q (n - 1)``, Hyndman & Fan 1996 definition 7) without its host-side ``jit``:
    ``samples`` may be a tracer; ``q`` and ``nan_policy`` are static Python values. Use it
    inside your own JAX code; :func:`chinplan.engine.bands` stays the driver for big sweeps.

    Returns:
      ``(len(q), *rest)`` (``rest`` for a scalar ``q``), in ``samples``' floating dtype.
    """
    levels = _checks.levels("q", q)
    _checks.one_of("nan_policy", nan_policy, ("omit", "propagate"))
    x = as_float(samples)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"samples must have a non-empty leading axis, got shape {x.shape}")
    result = _quantiles(x, levels, nan_policy)[0]
    return result[0] if np.ndim(q) == 0 else result


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
    return _quantiles(x, q, nan_policy)[0]


def _tree_sum(x: jax.Array) -> jax.Array:
    """Sum over axis 0 by a fixed halving tree (zero-padded to a power of two): the same
    additions in the same order for every column, whatever the sizes of the other axes."""
    padded = _next_power_of_two(x.shape[0])
    if padded > x.shape[0]:
        x = jnp.concatenate([x, jnp.zeros((padded - x.shape[0], *x.shape[1:]), x.dtype)])
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        x = x[:half] + x[half:]
    return x[0]


def upper_tail_sum(y: jax.Array, tail_mass: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(T, max)`` over axis 0: ``T = sum_{j >= n-m} y_(j) + (k - m) y_(n-m-1)``, ``m = floor(k)``.

    The numerator of :func:`upper_tail_mean` (``k = tail_mass``) and the column maximum; both
    NaN wherever a draw is NaN. ``T`` is a fixed summation tree (:func:`_tree_sum`) over the
    sorted draws, so a column's value never depends on the chunk it sits in.
    """
    n = y.shape[0]
    sorted_y, nan_count = sort_over_draws(y)
    k = jnp.asarray(tail_mass, y.dtype)
    m = jnp.floor(k)
    rank = jnp.arange(n, dtype=y.dtype).reshape((n,) + (1,) * (y.ndim - 1))
    top = _tree_sum(jnp.where(rank >= n - m, sorted_y, 0))
    edge = _tree_sum(jnp.where(rank == n - m - 1, sorted_y, 0))  # one term: exact
    # The barrier keeps (k - m) y_(n-m-1) a rounded product, never fused into an FMA with
    # the sum (which a compiler may do for some chunk widths and not others).
    part = jax.lax.optimization_barrier(jnp.where(k > m, (k - m) * edge, 0))
    nan = nan_count > 0
    return jnp.where(nan, jnp.nan, top + part), jnp.where(nan, jnp.nan, sorted_y[n - 1])


def upper_tail_mean(y: jax.Array, tail_mass: jax.Array) -> jax.Array:
    """CVaR over axis 0: ``T / k`` from :func:`upper_tail_sum`, the maximum for ``k = 0``.

    ``k = tail_mass = n (1 - level)`` draws' worth of mass in the upper tail: the mean of the
    worst ``1 - level`` of the draws, the boundary draw counted fractionally (Rockafellar &
    Uryasev 2002). NaN anywhere in a column gives NaN. Traceable; XLA may divide by
    multiplying with ``1/k`` (1 ulp), which is why the engine divides on the host.
    """
    total, maximum = upper_tail_sum(y, tail_mass)
    k = jnp.asarray(tail_mass, y.dtype)
    return jnp.where(k > 0, total / jnp.where(k > 0, k, 1), maximum)
