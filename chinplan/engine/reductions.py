"""The Monte Carlo engine: every posterior draw x every scenario, chunked, sharded, reduced.

A user writes ``fn(theta, *scenario)`` for ONE draw ``theta`` (e.g. a :class:`~chinplan.law.LawParams`
of scalars) and ONE scenario (scalars), returning an array or any pytree of arrays. The
engine evaluates ``y[i, s] = fn(theta_i, scenario_s)`` for draws ``i = 1..n`` and scenarios
``s = 1..S`` and reduces over the draw axis:

* :func:`bands`: linear-interpolated quantiles over draws (``np.quantile(method='linear')``),
* :func:`expectation`: the mean over draws,
* :func:`probability`: the fraction of draws for which a boolean ``fn`` is true,
* :func:`cvar`: the upper-tail conditional value at risk (mean of the worst ``1 - level``).

The draws x scenarios array is never held in memory. The broadcast scenarios are flattened to
one axis, cut into fixed-size chunks (the last one padded, so every chunk runs the same
compiled function), and for each chunk ``vmap(draws) x vmap(chunk)`` is evaluated and
immediately reduced over the draws. Peak memory is ``n_draws x chunk_size`` per output leaf.

Quantiles are exact order statistics from the bitonic sorting network of
:mod:`chinplan.quantiles` laid across the scenario axis (several times faster on CPU than
``jnp.sort``/``jnp.quantile`` along the draw axis; see ``benchmarks/bench_reduction.py``).
Inside your own ``jit``/``vmap`` use :func:`quantiles` (the same kernel over axis 0).

Chunks are driven by a Python loop over ONE compiled kernel per (fn, reduction, draw count,
chunk size): a new number of scenarios reuses it, dispatch is asynchronous, and a progress
bar can follow the chunks. The reduced results (no draw axis) are assembled on the host.

Scale-out: each chunk is split along the scenario axis over every device (``jax.shard_map``
over a one-axis ``Mesh``); every device runs the same per-chunk kernel on its own
``chunk_size`` scenarios, so results do not depend on the number of devices. With several
processes (call ``jax.distributed.initialize()`` in each first; the engine never does) the
mesh spans all global devices ordered by process; every process, given the same arguments,
feeds and evaluates only its own devices' shards, and one ``process_allgather`` at the end
gives every process the whole result, bit for bit the single-process one.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.engine.programs import saved_program, set_program_cache
from chinplan.engine.quantile_network import (
    DEFAULT_QUANTILES,
    _next_power_of_two,
    _quantiles,
    quantiles,
    upper_tail_sum,
)
from chinplan.format import HTML_ROWS, Cell, format_of, html_table, percent, quantile_name
from chinplan.law import as_float

__all__ = [
    "Bands",
    "bands_html",
    "quantiles",
    "bands",
    "expectation",
    "probability",
    "cvar",
    "set_program_cache",
]

#: Elements (padded draws x scenarios) per device per chunk when ``chunk_size`` is None, by
#: backend. On a CPU, 2**17 values (512 KiB) keep the sorting network's working set in a
#: core's cache: 128 scenarios for 1,000 draws (fastest of 64..1024 in bench_engine.py and
#: bench_reduction.py). An accelerator would be launch-bound on such chunks (55 small
#: kernels per chunk and output), so it gets 2**23 values (8,192 scenarios for 1,000 draws,
#: 32 MiB per output leaf); results are bitwise independent of the chunk size either way.
_TARGET_CHUNK_ELEMENTS = {"cpu": 2**17}
_ACCELERATOR_CHUNK_ELEMENTS = 2**23

#: Scenarios per device per chunk, at least: XLA compiles a one-scenario chunk as scalar code
#: whose transcendental functions round differently from the vector code of wider chunks
#: (``tco``'s optimum: up to 2e-6 relative, so one ``--target-loss`` and two gave different
#: digits for the same target). A chunk of one is padded to two: the same bits at any width.
_MIN_CHUNK_WIDTH = 2

#: Show a progress bar automatically (``progress=None``) only from this many chunks on.
_AUTO_PROGRESS_MIN_CHUNKS = 16

_SCENARIO_AXIS = "scenario"

_PUBLIC_NAMES = {"quantiles": "bands", "mean": "expectation", "probability": "probability", "cvar": "cvar"}

PyTree = Any


class _BandsFields(NamedTuple):
    values: PyTree
    nan_fraction: PyTree


class Bands(_BandsFields):
    """Quantile bands over posterior draws (a NamedTuple and a pytree of its two fields).

    Attributes:
      values: a pytree shaped like ``fn``'s output; each leaf has shape
        ``(len(q), *scenario_shape, *leaf_shape)``: ``values[k]`` is the ``q[k]`` quantile.
      nan_fraction: the same pytree; each leaf has shape ``(*scenario_shape, *leaf_shape)``
        and holds the fraction of draws whose output is NaN there. Under the default
        ``nan_policy='propagate'`` every quantile is NaN wherever this is non-zero; under
        ``'omit'`` the quantiles are over the non-NaN draws only (NaN if none are left).
      q: the quantile levels of ``values``' leading axis, as :func:`bands` computed them
        (not a field: None after a pytree map, ``_replace`` or pickling).

    In a notebook a ``Bands`` shows as an HTML table (one row per output and scenario, one
    column per quantile level), every number exact in the cells' ``data-values``.
    """

    q = None

    def __new__(cls, values, nan_fraction, q=None):
        self = super().__new__(cls, values, nan_fraction)
        if q is not None:
            self.q = tuple(float(v) for v in q)
        return self

    def _repr_html_(self) -> str:
        return bands_html(self)


def variable_names(tree: PyTree) -> list[tuple[str, Any]]:
    """(name, leaf) pairs: NamedTuple fields and dict keys joined by '_', 'value' for a bare array."""
    named = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = []
        for key in path:
            if isinstance(key, jax.tree_util.GetAttrKey):
                parts.append(key.name)
            elif isinstance(key, jax.tree_util.DictKey):
                parts.append(str(key.key))
            elif isinstance(key, jax.tree_util.SequenceKey):
                parts.append(str(key.idx))
            else:
                parts.append(str(key))
        named.append(("_".join(parts) or "value", leaf))
    return named


def bands_html(result: Bands, *, limit: int = HTML_ROWS) -> str:
    """A :class:`Bands` as an HTML table (:func:`chinplan.format.html_table`): one row per
    output leaf and scenario, one column per quantile level (``q5``, ... when ``result.q`` is
    known, else the level's position), then the share of draws that gave NaN."""
    named = variable_names(result.values)
    fractions = dict(variable_names(result.nan_fraction))
    levels = result.q
    rows, total = [], 0
    for name, leaf in named:
        array = np.asarray(leaf, np.float64)
        flat = array.reshape(array.shape[0], -1)
        nan = np.broadcast_to(np.asarray(fractions[name], np.float64), array.shape[1:]).reshape(-1)
        for j in range(flat.shape[1]):
            total += 1
            if len(rows) < limit:
                index = str([int(i) for i in np.unravel_index(j, array.shape[1:])]) if array.ndim > 1 else ""
                fmt = format_of(name)
                cells = [Cell(f"{v:g}" if not np.isfinite(v) else fmt(float(v)), (float(v),), field=name) for v in flat[:, j]]
                rows.append([Cell(name), Cell(index), *cells, Cell(percent(nan[j]), (float(nan[j]),), field=f"{name}_nan_fraction")])
    count = np.asarray(named[0][1]).shape[0] if named else 0
    heads = [quantile_name(v) for v in levels] if levels is not None and len(levels) == count else [f"level {k}" for k in range(count)]
    caption = "Bands over posterior draws" + ("" if levels is not None else " (quantile levels not recorded)")
    if total > limit:
        caption += f" (first {limit} of {total} rows)"
    return html_table(["output", "scenario", *heads, "NaN draws"], rows, caption=caption)


# --------------------------------------------------------------------------------------------
# Per-chunk reductions. Each takes fn's outputs with draws on axis 0 and scenarios on axis 1
# and returns leaves with the scenario axis FIRST (so one PartitionSpec shards them all).
# --------------------------------------------------------------------------------------------


def _floating(y: jax.Array) -> jax.Array:
    return y if jnp.issubdtype(y.dtype, jnp.floating) else y.astype(jnp.result_type(float))


def _reduce_quantiles(y: jax.Array, q: tuple[float, ...], nan_policy: str):
    y = _floating(y)
    values, nan_count = _quantiles(y, q, nan_policy)
    return jnp.moveaxis(values, 0, 1), nan_count.astype(y.dtype) / y.shape[0]


def _quantiles_of_leaves(leaves: list, q: tuple[float, ...], nan_policy: str) -> list[tuple[jax.Array, jax.Array]]:
    """:func:`_reduce_quantiles` of every leaf, bit for bit, through ONE sorting network: the
    leaves of a dtype side by side as columns (tco has 21 outputs: one network, not 21)."""
    floats = [_floating(leaf) for leaf in leaves]
    out: list = [None] * len(floats)
    by_dtype: dict = {}
    for i, leaf in enumerate(floats):
        by_dtype.setdefault(leaf.dtype, []).append(i)
    for indices in by_dtype.values():
        n = floats[indices[0]].shape[0]
        columns = [floats[i].reshape(n, -1) for i in indices]
        widths = [c.shape[1] for c in columns]
        values, nan_count = _quantiles(jnp.concatenate(columns, axis=1), q, nan_policy)
        start = 0
        for i, width in zip(indices, widths):
            rest = floats[i].shape[1:]
            v = values[:, start : start + width].reshape((len(q),) + rest)
            c = nan_count[start : start + width].reshape(rest)
            out[i] = (jnp.moveaxis(v, 0, 1), c.astype(floats[i].dtype) / n)
            start += width
    return out


def _reduce_mean(y: jax.Array):
    return jnp.mean(_floating(y), axis=0)


def _reduce_probability(y: jax.Array):
    if y.dtype != jnp.bool_:
        raise TypeError(f"probability() needs fn to return booleans, got dtype {y.dtype}")
    # An exact integer count divided once (XLA may multiply by 1/n instead: within 1 ulp).
    return jnp.sum(y, axis=0, dtype=jnp.int32).astype(jnp.result_type(float)) / y.shape[0]


def _reduce_cvar(y: jax.Array, tail_mass: jax.Array):
    y = _floating(y)
    return upper_tail_sum(y, tail_mass.astype(y.dtype))


def _reducer(kind: str, options: tuple) -> Callable[[jax.Array], Any]:
    if kind == "quantiles":
        return functools.partial(_reduce_quantiles, q=options[0], nan_policy=options[1])
    if kind == "mean":
        return _reduce_mean
    if kind == "probability":
        return _reduce_probability
    if kind == "cvar":
        return _reduce_cvar
    raise ValueError(f"unknown reduction {kind!r}")


@functools.lru_cache(maxsize=128)
def _chunk_function(fn: Callable, kind: str, options: tuple, n_devices: int) -> Callable:
    """The jitted per-chunk kernel, built once per (fn, reduction, static options, device count).

    ``jax.jit`` then caches one executable per input shape, so every chunk of every call with
    the same draw count and chunk size reuses one compiled function. The kernel is called as
    ``kernel(params, scenarios, traced)``; ``traced`` holds scalar options that may change
    between calls without recompiling (the CVaR tail mass).
    """
    reduce = _reducer(kind, options)

    def evaluate_and_reduce(params: PyTree, scenarios: tuple, traced: tuple) -> PyTree:
        # scenarios = (anchor, args): the anchor column gives vmap an axis even for fn(theta).
        anchor, args = scenarios
        per_draw = lambda theta: jax.vmap(lambda _, s: fn(theta, *s))(anchor, args)  # noqa: E731
        outputs = jax.vmap(per_draw)(params)  # leaves: (n_draws, chunk, *leaf_shape)
        if kind == "quantiles":  # every leaf through ONE sorting network (columns side by side)
            leaves, treedef = jax.tree.flatten(outputs)
            pairs = _quantiles_of_leaves(leaves, options[0], options[1])
            return (jax.tree.unflatten(treedef, [p[0] for p in pairs]), jax.tree.unflatten(treedef, [p[1] for p in pairs]))
        if kind == "cvar":
            pairs = [reduce(leaf, *traced) for leaf in jax.tree.leaves(outputs)]
            treedef = jax.tree.structure(outputs)
            return (jax.tree.unflatten(treedef, [p[0] for p in pairs]), jax.tree.unflatten(treedef, [p[1] for p in pairs]))
        return jax.tree.map(lambda leaf: reduce(leaf, *traced), outputs)

    if n_devices == 1:
        return jax.jit(evaluate_and_reduce)
    mesh = _scenario_mesh(n_devices)
    sharded = jax.shard_map(
        evaluate_and_reduce,
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(_SCENARIO_AXIS), PartitionSpec()),
        out_specs=PartitionSpec(_SCENARIO_AXIS),
    )
    return jax.jit(sharded)


def _kernel_for(fn: Callable, kind: str, options: tuple, n_devices: int) -> Callable:
    """The cached kernel; an unhashable ``fn`` gets a fresh (compiled-per-call) one."""
    try:
        hash(fn)
    except TypeError:
        return _chunk_function.__wrapped__(fn, kind, options, n_devices)
    return _chunk_function(fn, kind, options, n_devices)


def _scenario_devices() -> list:
    """The devices a chunk is split over: the local ones, or with several processes every
    global device ordered by (process, id), so each process owns one contiguous block."""
    if jax.process_count() == 1:
        return jax.local_devices()
    return sorted(jax.devices(), key=lambda d: (d.process_index, d.id))


@functools.lru_cache(maxsize=8)
def _scenario_mesh(n_devices: int) -> Mesh:
    return Mesh(np.asarray(_scenario_devices()[:n_devices]), (_SCENARIO_AXIS,))


# --------------------------------------------------------------------------------------------
# Validation at the Python boundary, before anything is traced.
# --------------------------------------------------------------------------------------------


def _prepare_params(params: PyTree) -> tuple[PyTree, int]:
    """Converts params leaves to floating arrays after checking their common leading draw axis."""
    n_draws = _checks.draw_axis(params)
    return jax.tree.map(as_float, params), n_draws


def _prepare_scenarios(scenario_args: Sequence[PyTree]) -> tuple[list[np.ndarray], Any, tuple[int, ...]]:
    """Host arrays of the scenario leaves, checked for NaN and broadcast compatibility."""
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(tuple(scenario_args))
    dtype = np.dtype(jnp.result_type(float))
    leaves = []
    names = [f"scenario_args[{path[0].idx}]{jax.tree_util.keystr(path[1:])}" for path, _ in paths_leaves]
    for name, (path, leaf) in zip(names, paths_leaves):
        # Integers (e.g. int64 token counts) become floats here, on the host, never int32.
        leaves.append(_checks.not_nan(name, leaf).astype(dtype))
    shape = _checks.broadcast_shape(**dict(zip(names, leaves)))
    if math.prod(shape) == 0:
        raise ValueError(f"scenario arguments broadcast to an empty shape {shape}")
    return leaves, treedef, tuple(shape)


# --------------------------------------------------------------------------------------------
# The driver: flatten, pad, loop over chunks (one compiled function), reassemble.
# --------------------------------------------------------------------------------------------


def _default_chunk_size(n_draws: int, scenarios_per_device: int, platform: str = "cpu") -> int:
    target = _TARGET_CHUNK_ELEMENTS.get(platform, _ACCELERATOR_CHUNK_ELEMENTS)
    by_memory = max(1, target // _next_power_of_two(n_draws))
    # Bucket small problems to a power of two so nearby sizes share one executable.
    return min(by_memory, _next_power_of_two(scenarios_per_device))


def _want_progress(progress: bool | None, n_chunks: int) -> bool:
    if progress is not None:
        return _checks.flag("progress", progress)
    return n_chunks >= _AUTO_PROGRESS_MIN_CHUNKS and sys.stderr is not None and sys.stderr.isatty()


def _run(
    fn: Callable,
    params: PyTree,
    scenario_args: Sequence[PyTree],
    kind: str,
    options: tuple,
    chunk_size: int | None,
    progress: bool | None,
    cvar_level: float | None = None,
) -> tuple[PyTree, tuple[int, ...]]:
    """Evaluates and reduces chunk by chunk; returns NumPy leaves ``(*scenario_shape, ...)``."""
    chunk_size = _checks.integer("chunk_size", chunk_size, optional=True)
    params, n_draws = _prepare_params(params)
    # Traced scalar options: the CVaR tail mass k = n (1 - level), in float64 on the host.
    traced = () if cvar_level is None else (jnp.asarray(n_draws * (1.0 - cvar_level), jnp.result_type(float)),)
    leaves, treedef, shape = _prepare_scenarios(scenario_args)
    n_scenarios = math.prod(shape)
    devices = _scenario_devices()
    n_devices, n_processes = len(devices), jax.process_count()
    per_device = max(_MIN_CHUNK_WIDTH, chunk_size or _default_chunk_size(n_draws, -(-n_scenarios // n_devices), devices[0].platform))
    step = per_device * n_devices
    n_chunks = -(-n_scenarios // step)
    padded = n_chunks * step
    # Flattened, padded scenario columns; padding repeats scenario 0 so it stays valid input.
    flat = []
    for leaf in leaves:
        column = np.broadcast_to(leaf, shape).reshape(-1)
        flat.append(np.concatenate([column, np.repeat(column[:1], padded - n_scenarios)]))
    anchor = np.zeros(step, np.float32)
    kernel = _kernel_for(fn, kind, options, n_devices)
    put = None
    if n_devices > 1:
        mesh = _scenario_mesh(n_devices)
        put = _putter(n_processes)
        params, traced = put((params, traced), NamedSharding(mesh, PartitionSpec()))
        scenario_sharding = NamedSharding(mesh, PartitionSpec(_SCENARIO_AXIS))
    show = _want_progress(progress, n_chunks) and jax.process_index() == 0
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_chunks, unit="chunk", desc=f"chinplan {_PUBLIC_NAMES[kind]}", leave=False)
    pieces = []
    for start in range(0, padded, step):
        chunk = (anchor, jax.tree.unflatten(treedef, [column[start : start + step] for column in flat]))
        if put is not None:
            chunk = put(chunk, scenario_sharding)
        elif start == 0 and n_processes == 1:  # one device: a saved program, if turned on
            kernel = saved_program(kernel, (fn, kind, options), (params, chunk, traced))
        pieces.append(kernel(params, chunk, traced))
        if bar is not None:
            jax.block_until_ready(pieces[-1])
            bar.update(1)
    if bar is not None:
        bar.close()
    # The reduced results are small (no draw axis): assemble them on the host, where new
    # scenario counts cost no compilation, and hand back device arrays.
    if n_processes > 1:
        joined = _gather_processes(pieces, step)
    else:
        host_pieces = [jax.tree.map(np.asarray, piece) for piece in pieces]
        joined = jax.tree.map(lambda *parts: np.concatenate(parts, axis=0), *host_pieces)
    return jax.tree.map(lambda leaf: leaf[:n_scenarios].reshape(shape + leaf.shape[1:]), joined), shape


def _putter(n_processes: int) -> Callable:
    """``put(tree, sharding)``: ``jax.device_put`` in one process; with several, every process
    holds the same host values and feeds only the shards of its own devices."""
    if n_processes == 1:
        return jax.device_put
    feed = lambda x, sharding: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])  # noqa: E731
    return lambda tree, sharding: jax.tree.map(lambda x: feed(np.asarray(x), sharding), tree)


def _gather_processes(pieces: list, step: int) -> PyTree:
    """Every chunk's results from every process, in scenario order, on every process.

    Each process keeps the rows of its own (contiguous) devices per chunk, and one
    ``process_allgather`` at the end exchanges them: ``(processes, chunks, rows)`` is then
    reordered to ``(chunks, processes, rows)``, the scenario order of the padded columns.
    """
    from jax.experimental import multihost_utils

    def local_rows(leaf: jax.Array) -> np.ndarray:
        shards = sorted(leaf.addressable_shards, key=lambda shard: shard.index[0].start or 0)
        return np.concatenate([np.asarray(shard.data) for shard in shards], axis=0)

    local = jax.tree.map(lambda *parts: np.stack([local_rows(p) for p in parts]), *pieces)
    gathered = multihost_utils.process_allgather(local, tiled=False)  # (processes, chunks, rows, ...)

    reorder = lambda leaf: np.swapaxes(leaf, 0, 1).reshape((leaf.shape[1] * step,) + leaf.shape[3:])  # noqa: E731
    return jax.tree.map(reorder, gathered)


# --------------------------------------------------------------------------------------------
# Public reductions.
# --------------------------------------------------------------------------------------------

_CALLING_CONVENTION = """
    Args:
      fn: ``fn(theta, *scenario)`` for ONE draw and ONE scenario; any JAX-traceable function
        returning an array or a pytree of arrays (e.g. an ``Allocation``). Pass the same
        function object on every call: compiled kernels are cached per function (a fresh
        ``lambda`` or ``functools.partial`` each call compiles again).
      params: pytree (e.g. ``LawParams``) whose leaves share a leading draw axis ``n_draws``.
      *scenario_args: arrays or pytrees of arrays broadcasting (NumPy rules) to the scenario
        shape; no NaN allowed. Integers are converted to floating point on the host.
      chunk_size: scenarios per device per step (None: about 2**17 / n_draws, a power of two).
        Results do not depend on it (a chunk of one is computed as one of two); peak memory
        is ``n_draws x chunk_size`` per output leaf.
      progress: a tqdm bar over chunks; None shows one only when stderr is a terminal and
        there are many chunks.
"""


def bands(
    fn: Callable,
    params: PyTree,
    *scenario_args: PyTree,
    q: ArrayLike = DEFAULT_QUANTILES,
    chunk_size: int | None = None,
    progress: bool | None = None,
    nan_policy: str = "propagate",
) -> Bands:
    """Quantile bands of ``fn(theta, *scenario)`` over posterior draws, for every scenario.

    For each scenario ``s`` and output leaf, with ``y_i = fn(theta_i, s)`` sorted as
    ``y_(0) <= ... <= y_(n-1)``: ``Q(q) = y_(i) + (h - i)(y_(i+1) - y_(i))``, ``h = q (n - 1)``,
    ``i = floor(h)``, exactly ``np.quantile(y, q, method='linear')`` up to float rounding of the
    interpolation. ``+inf`` (e.g. the model size for an unreachable target loss) is a
    legitimate order statistic; NaN never enters a quantile silently (see ``nan_policy``).
    {convention}
      q: quantile levels in [0, 1].
      nan_policy: ``'propagate'``: a quantile is NaN wherever any draw is NaN; ``'omit'``:
        quantiles of the non-NaN draws only. Either way ``Bands.nan_fraction`` reports, per
        scenario, the fraction of draws that gave NaN.

    Returns:
      ``Bands(values, nan_fraction)``: pytrees shaped like ``fn``'s output with leaves of shape
      ``(len(q), *scenario_shape, *leaf_shape)`` and ``(*scenario_shape, *leaf_shape)``.

    Raises:
      ValueError: bad ``q``, NaN in a scenario argument, scenario shapes that do not
        broadcast, or params leaves without a common leading draw axis.
    """
    levels = _checks.levels("q", q)
    _checks.one_of("nan_policy", nan_policy, ("omit", "propagate"))
    (values, nan_fraction), shape = _run(
        fn, params, scenario_args, "quantiles", (levels, nan_policy), chunk_size, progress
    )
    # Leaves come back as (*scenario_shape, len(q), *leaf_shape); put the quantile axis first.
    return Bands(
        jax.tree.map(lambda v: jnp.asarray(np.moveaxis(v, len(shape), 0)), values), jax.tree.map(jnp.asarray, nan_fraction), q=levels
    )


bands.__doc__ = bands.__doc__.format(convention=_CALLING_CONVENTION)


def expectation(
    fn: Callable, params: PyTree, *scenario_args: PyTree, chunk_size: int | None = None, progress: bool | None = None
) -> PyTree:
    """The posterior mean ``E[fn(theta, s)] = (1/n) sum_i fn(theta_i, s)`` for every scenario.
    {convention}
    Returns:
      A pytree shaped like ``fn``'s output with leaves ``(*scenario_shape, *leaf_shape)``. A NaN
      draw makes the mean NaN; an infinite draw makes it infinite.
    """
    result, _ = _run(fn, params, scenario_args, "mean", (), chunk_size, progress)
    return jax.tree.map(jnp.asarray, result)


expectation.__doc__ = expectation.__doc__.format(convention=_CALLING_CONVENTION)


def probability(
    fn: Callable, params: PyTree, *scenario_args: PyTree, chunk_size: int | None = None, progress: bool | None = None
) -> PyTree:
    """The posterior probability ``P[fn(theta, s)] = #{{i : fn(theta_i, s)}} / n`` per scenario.

    ``fn`` must return booleans (e.g. ``loss(theta, n, d) < 2.0``); a TypeError is raised
    otherwise. A NaN compared with anything is False, so count it explicitly if it matters.
    {convention}

    Returns:
      A pytree shaped like ``fn``'s output with floating leaves ``(*scenario_shape, *leaf_shape)``.
    """
    result, _ = _run(fn, params, scenario_args, "probability", (), chunk_size, progress)
    return jax.tree.map(jnp.asarray, result)


probability.__doc__ = probability.__doc__.format(convention=_CALLING_CONVENTION)


def cvar(
    fn: Callable,
    params: PyTree,
    *scenario_args: PyTree,
    level: float = 0.95,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> PyTree:
    """Upper-tail conditional value at risk: the mean of the worst ``1 - level`` of the draws.

    With ``y_(0) <= ... <= y_(n-1)`` the sorted draws of one scenario and ``k = n (1 - level)``
    draws' worth of probability mass in the tail, ``m = floor(k)``:

        CVaR_level = ( sum_{{j = n-m}}^{{n-1}} y_(j) + (k - m) y_(n-m-1) ) / k,

    the expectation over the upper ``1 - level`` tail of the empirical distribution (the
    boundary draw counted fractionally; Rockafellar & Uryasev 2002, equal to
    ``VaR + E[(y - VaR)^+] / (1 - level)``). ``level = 0`` gives the mean, ``level -> 1`` the
    maximum (``level = 1`` returns the maximum). Large values are bad: pass ``-y`` for a
    lower tail.
    {convention}
      level: in [0, 1].

    Returns:
      A pytree shaped like ``fn``'s output, leaves ``(*scenario_shape, *leaf_shape)``; NaN
      wherever any draw is NaN.
    """
    level = _checks.level("level", level)
    (total, maximum), _ = _run(fn, params, scenario_args, "cvar", (), chunk_size, progress, cvar_level=level)
    n_draws = _checks.draw_axis(params)

    def divide(t: np.ndarray, m: np.ndarray) -> jax.Array:
        # On the host: an IEEE division, the same bits whatever the chunk (XLA may use 1/k).
        k = t.dtype.type(n_draws * (1.0 - level))
        return jnp.asarray(np.where(k > 0, t / (k if k > 0 else 1), m))

    return jax.tree.map(divide, total, maximum)


cvar.__doc__ = cvar.__doc__.format(convention=_CALLING_CONVENTION)
