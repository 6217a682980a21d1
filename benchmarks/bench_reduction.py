"""The exact quantile reduction alone: designs compared on the same evaluated chunks.

For ``--draws`` draws x ``C`` scenarios of real outputs (the pipeline benchmark's N*, D*,
loss and TCO dollars from the shipped posterior) and of a tie-heavy synthetic column set
(integers 0..6), times per chunk, interleaved, median of ``--repeats``:

  chinplan  the bitonic network on integer keys with static reshapes, its last merge
            phase cleaning only the blocks that hold the wanted ranks (chinplan's kernel),
  reshape   the same network, full sort, then the rows picked,
  gather    the same network with one gathered partner row per stage in a lax.scan (the
            kernel before issue 13),
  select    counting-pass selection on integer keys, brackets snapped to data (passes
            reported; tried for issue 13 and not adopted: XLA:CPU materialises every
            comparison mask before reducing it),
  jnp.sort  XLA's sort along the draw axis,

each followed by the type-7 interpolation at q = 0.05, 0.5, 0.95. All four must agree bit
for bit. Compilation excluded (warm-up call, compile time printed). Run::

    python benchmarks/bench_reduction.py --draws 1000 --columns 128 1024 --repeats 9
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from bench_pipeline import make_draws, make_scenarios, plan_and_cost

from chinplan.engine import quantile_network as quant

Q = (0.05, 0.5, 0.95)


def _count_and_neighbours(keys: jax.Array, pivots: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per pivot row ``p`` of ``(R, *rest)``: ``#(keys < p)``, the largest key below ``p`` and
    the smallest key at or above it, over axis 0 (one read of ``keys``; reductions written
    per pivot row, which XLA:CPU fuses: faster here than a broadcast ``(n, R, *rest)``)."""
    info = jnp.iinfo(keys.dtype)
    count = jnp.stack([jnp.sum(keys < p, axis=0, dtype=jnp.int32) for p in pivots])
    # Distinct comparisons (p - 1 is below p: no wrap, p > lo) so that XLA fuses each one into
    # its own reduction instead of materialising one shared (n, *rest) mask.
    below = jnp.stack([jnp.max(jnp.where(keys <= p - 1, keys, info.min), axis=0) for p in pivots])
    above = jnp.stack([jnp.min(jnp.where(keys >= p, keys, info.max), axis=0) for p in pivots])
    return count, below, above


def _step(width: jax.Array, fraction: jax.Array) -> jax.Array:
    """``floor(width * fraction)`` for unsigned ``width`` and ``fraction`` in [0, 1], no overflow.

    The fraction is rounded down to 16 bits ``f``; ``(w >> 16) f + ((w & 0xffff) f >> 16)``
    fits the unsigned type and never exceeds ``width``.
    """
    udtype = width.dtype
    f = jnp.clip(jnp.floor(fraction * 65536.0), 0, 65535).astype(udtype)
    return (width >> 16) * f + (((width & 0xFFFF) * f) >> 16)


def _select(keys: jax.Array, ranks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Order statistics ``key_(r)`` per column of integer ``keys`` and the passes it took.

    Per rank and column a bracket ``lo <= key_(r) <= hi`` starts at the column's min and max
    with ``c_lo = #(x < lo) <= r < c_hi = #(x <= hi)``. Each pass counts ``#(x < p)`` at two
    pivots per bracket (linear interpolation of the rank in key space at
    ``r + 1/2 -+ (sqrt(c_hi - c_lo)/2 + 1)``; the first is the bisecting pivot every fourth
    pass, so it terminates) and snaps the bracket to the nearest data keys on either side of
    the pivot. Keys are integers, so ``lo == hi`` is the answer.
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
        active = lo < hi
        new_lo, new_hi, new_c_lo, new_c_hi = lo, hi, c_lo, c_hi
        for pivot in pivots:
            count, below_pivot, from_pivot = _count_and_neighbours(keys, pivot)
            # Snap to data: x_(r) >= pivot means x_(r) >= the smallest key >= pivot, and
            # x_(r) < pivot means x_(r) <= the largest key below it; the counts carry over.
            up = active & (count <= ranks) & (from_pivot > new_lo)
            down = active & (count > ranks) & (below_pivot < new_hi)
            new_lo, new_c_lo = jnp.where(up, from_pivot, new_lo), jnp.where(up, count, new_c_lo)
            new_hi, new_c_hi = jnp.where(down, below_pivot, new_hi), jnp.where(down, count, new_c_hi)
        return new_lo, new_hi, new_c_lo, new_c_hi, passes + 1

    state = jax.lax.while_loop(open_, narrow, (lo, hi, c_lo, c_hi, jnp.zeros((), jnp.int32)))
    return state[0], state[4]


def _next_up(keys: jax.Array, value: jax.Array, rank: jax.Array) -> jax.Array:
    """``key_(rank + 1)`` given ``value = key_(rank)`` (both ``(R, *rest)``): ``value`` itself
    while ties last, else the smallest key above it (one pass: counts and masked minima)."""
    top = jnp.iinfo(keys.dtype).max
    at_most = jnp.stack([jnp.sum(keys <= v, axis=0, dtype=jnp.int32) for v in value])
    larger = jnp.stack([jnp.min(jnp.where(keys > v, keys, top), axis=0) for v in value])
    return jnp.where(at_most > rank + 1, value, larger)


@functools.lru_cache(maxsize=8)
def _network_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Partner row and keep-the-minimum flag of every stage of a bitonic network on n rows."""
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
    return np.stack(partners).astype(np.int32), np.stack(keeps_min)


def _gather_network(x: jax.Array) -> jax.Array:
    """The previous kernel: one lax.scan step per stage, partner rows gathered by index."""
    partner, keeps_min = _network_tables(x.shape[0])

    def stage(x, table):
        rows_partner, rows_keep_min = table
        other = jnp.take(x, rows_partner, axis=0)
        return jnp.where(rows_keep_min[:, None], jnp.minimum(x, other), jnp.maximum(x, other)), None

    return jax.lax.scan(stage, x, (jnp.asarray(partner), jnp.asarray(keeps_min)))[0]


def _select_quantiles(y: jax.Array) -> jax.Array:
    keys = quant._to_sort_key(y)
    n = y.shape[0]
    position = np.asarray(Q) * (n - 1)
    below = np.floor(position).astype(np.int32)[:, None]
    above = np.minimum(below + 1, n - 1)
    low = _select(keys, below)[0]
    high = jnp.where(above == below, low, _next_up(keys, low, jnp.broadcast_to(below, low.shape)))
    weight = jnp.asarray(position - below[:, 0], y.dtype)[:, None]
    return quant._lerp(quant._from_sort_key(low, y.dtype), quant._from_sort_key(high, y.dtype), weight)


def _from_sorted(sorted_x: jax.Array) -> jax.Array:
    n = sorted_x.shape[0]
    position = np.asarray(Q) * (n - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, n - 1)
    weight = jnp.asarray(position - below, sorted_x.dtype)[:, None]
    return quant._lerp(sorted_x[below], sorted_x[above], weight)


def _by_network(sort_keys):
    def reduce(y):
        keys = quant._to_sort_key(y)
        n = y.shape[0]
        padded = quant._next_power_of_two(n)
        keys = jnp.concatenate([keys, jnp.full((padded - n,) + keys.shape[1:], jnp.iinfo(keys.dtype).max, keys.dtype)])
        return _from_sorted(quant._from_sort_key(sort_keys(keys)[:n], y.dtype))

    return reduce


DESIGNS = {
    "chinplan": lambda y: quant._quantiles(y, Q, "propagate")[0],
    "reshape": _by_network(quant._bitonic_sort_pow2),
    "gather": _by_network(_gather_network),
    "select": _select_quantiles,
    "jnp.sort": lambda y: _from_sorted(jnp.sort(y, axis=0)),
}


def chunks(n_draws: int, columns: int) -> dict[str, np.ndarray]:
    """Evaluated (draws, columns) float32 chunks: the pipeline's four outputs and tied integers."""
    params = make_draws(n_draws)
    compute, queries = make_scenarios(columns, seed=3)
    out = jax.vmap(lambda t: jax.vmap(lambda c, q: plan_and_cost(t, c, q))(compute, queries))(params)
    data = {k: np.asarray(v, np.float32) for k, v in out.items()}
    data["ties"] = np.random.default_rng(0).integers(0, 7, size=(n_draws, columns)).astype(np.float32)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--columns", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS))
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    passes = jax.jit(lambda y: _select(quant._to_sort_key(y), np.floor(np.asarray(Q) * (y.shape[0] - 1)).astype(np.int32)[:, None])[1])
    for columns in args.columns:
        data = chunks(args.draws, columns)
        jitted = {name: jax.jit(DESIGNS[name]) for name in args.designs}
        for name, f in jitted.items():
            start = time.perf_counter()
            results = {k: np.asarray(f(jnp.asarray(y))) for k, y in data.items()}
            compile_s = time.perf_counter() - start
            for k, y in data.items():
                np.testing.assert_array_equal(results[k], np.asarray(jitted[args.designs[0]](jnp.asarray(y))), err_msg=f"{name} {k}")
            print(f"  {name:9s} compile + first calls {compile_s:6.2f} s, bit-identical to {args.designs[0]}")
        times = {(name, k): [] for name in jitted for k in data}
        device_data = {k: jnp.asarray(y) for k, y in data.items()}
        for _ in range(args.repeats):
            for k, y in device_data.items():
                for name, f in jitted.items():
                    start = time.perf_counter()
                    jax.block_until_ready(f(y))
                    times[name, k].append(time.perf_counter() - start)
        print(f"\n{args.draws} draws x {columns} columns; ns per draw-scenario pair (median of {args.repeats});"
              f" load {os.getloadavg()[0]:.1f}")
        print(f"{'data':8s} " + " ".join(f"{name:>9s}" for name in jitted) + "  select passes")
        for k, y in device_data.items():
            cells = " ".join(f"{np.median(times[name, k]) / y.size * 1e9:9.2f}" for name in jitted)
            print(f"{k:8s} {cells}  {int(passes(y)):6d}")


if __name__ == "__main__":
    main()
