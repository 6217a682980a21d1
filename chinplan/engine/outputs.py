"""The engine's bands as labelled xarray Datasets: one variable per output leaf, a
``quantile`` dimension and the scenario axes with their coordinates (what sweeps, NetCDF
files and notebooks read)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.engine.reductions import DEFAULT_QUANTILES, Bands, bands, variable_names

__all__ = ["to_dataset", "bands_dataset"]

PyTree = Any



def to_dataset(
    result: Bands | PyTree,
    q: ArrayLike | None = DEFAULT_QUANTILES,
    dims: Sequence[str] | None = None,
    coords: dict[str, ArrayLike] | None = None,
):
    """An ``xarray.Dataset`` of a :func:`bands` result (or of any other reduction's pytree).

    One data variable per output leaf, named after the NamedTuple fields (``n``, ``d``,
    ``loss`` for an ``Allocation``), dict keys joined by ``_``, or ``value`` for a bare array.
    For :class:`Bands` the variables have dims ``("quantile", *dims)`` with a ``quantile``
    coordinate, and each gets a companion ``<name>_nan_fraction`` over ``dims``.

    Args:
      result: a :class:`Bands` or the pytree returned by :func:`expectation`,
        :func:`probability` or :func:`cvar`.
      q: the quantile levels the bands were computed at (ignored for other results).
      dims: names of the scenario axes (default ``scenario_0``, ``scenario_1``, ...). Extra
        per-leaf axes of ``fn``'s output are named ``<name>_dim_<i>``.
      coords: coordinate values per dim, e.g. ``{"compute": budgets}``.

    Returns:
      ``xarray.Dataset``.
    """
    import xarray as xr

    is_bands = isinstance(result, Bands)
    if is_bands:
        levels = _checks.levels("q", q)
        named = variable_names(result.values)
        fractions = dict(variable_names(result.nan_fraction))
    else:
        named = variable_names(result)
    variables = {}
    for name, leaf in named:
        array = np.asarray(leaf)
        if is_bands and array.shape[0] != len(levels):
            raise ValueError(f"q has {len(levels)} levels but bands leaf {name!r} has {array.shape[0]}")
        scenario_ndim = len(dims) if dims is not None else array.ndim - int(is_bands)
        scenario_dims = tuple(dims) if dims is not None else tuple(f"scenario_{i}" for i in range(scenario_ndim))
        extra = tuple(f"{name}_dim_{i}" for i in range(array.ndim - int(is_bands) - scenario_ndim))
        if is_bands:
            variables[name] = (("quantile",) + scenario_dims + extra, array)
            variables[f"{name}_nan_fraction"] = (scenario_dims + extra, np.asarray(fractions[name]))
        else:
            variables[name] = (scenario_dims + extra, array)
    all_coords = {"quantile": np.asarray(levels)} if is_bands else {}
    for dim, values in (coords or {}).items():
        all_coords[dim] = np.asarray(values)
    return xr.Dataset(variables, coords=all_coords)


def bands_dataset(
    fn: Callable,
    params: PyTree,
    *scenario_args: PyTree,
    q: ArrayLike = DEFAULT_QUANTILES,
    dims: Sequence[str] | None = None,
    coords: dict[str, ArrayLike] | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    nan_policy: str = "propagate",
):
    """:func:`bands` followed by :func:`to_dataset`: an ``xarray.Dataset`` with a quantile axis.

    Example::

        budgets = np.logspace(21, 25, 41)
        ds = bands_dataset(compute_optimal, posterior.params, budgets,
                           dims=("compute",), coords={"compute": budgets})
        ds.n.sel(quantile=0.5)
    """
    result = bands(fn, params, *scenario_args, q=q, chunk_size=chunk_size, progress=progress, nan_policy=nan_policy)
    if coords is None:
        coords = _default_coords(scenario_args, dims)
    return to_dataset(result, q, dims=dims, coords=coords)


def _default_coords(scenario_args, dims) -> dict:
    """Coordinates of the scenario axes when none are given: on each axis along which exactly
    one array argument varies (a 1-D grid such as ``np.logspace(20, 26, 61)``), its values."""
    arrays = [np.asarray(a) for a in scenario_args if isinstance(a, (np.ndarray, jax.Array))]
    if not arrays or len(arrays) != len(scenario_args):
        return {}
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    names = tuple(dims) if dims is not None else tuple(f"scenario_{i}" for i in range(len(shape)))
    coords = {}
    for i, name in enumerate(names[: len(shape)]):
        along = []
        for a in arrays:
            full = (1,) * (len(shape) - a.ndim) + a.shape
            if full[i] == shape[i] > 1 and all(size == 1 for j, size in enumerate(full) if j != i):
                along.append(a.reshape(-1))
        if len(along) == 1:
            coords[name] = along[0]
    return coords
