"""Uncertain inputs: distributions for any leaf of a scenario pytree, sampled once per draw.

Any field of a :class:`chinplan.Deployment` (or any other pytree) may be a :class:`LogNormal`,
:class:`Uniform` or :class:`LogUniform`; :func:`sample_tree` turns those into arrays with a
leading draw axis, to be carried next to the law's posterior draws, e.g.
``theta = (law_params, deployment)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan.law import as_float

__all__ = [
    "LogNormal",
    "Uniform",
    "LogUniform",
    "is_distribution",
    "validate_distribution",
    "sample_tree",
]


class LogNormal(NamedTuple):
    """A positive quantity whose log is normal: ``median * exp(sigma * z)``, z ~ N(0, 1)."""

    median: ArrayLike
    sigma: ArrayLike

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws of shape ``shape + broadcast(median, sigma).shape``."""
        median, sigma = jnp.broadcast_arrays(as_float(self.median), as_float(self.sigma))
        z = jax.random.normal(key, tuple(shape) + median.shape, median.dtype)
        return median * jnp.exp(sigma * z)


class Uniform(NamedTuple):
    """Uniform on ``[lo, hi)``."""

    lo: ArrayLike
    hi: ArrayLike

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws of shape ``shape + broadcast(lo, hi).shape``."""
        lo, hi = jnp.broadcast_arrays(as_float(self.lo), as_float(self.hi))
        u = jax.random.uniform(key, tuple(shape) + lo.shape, lo.dtype)
        return lo + (hi - lo) * u


class LogUniform(NamedTuple):
    """Log-uniform on ``[lo, hi)``: ``exp(Uniform(log lo, log hi))``; for scales spanning decades."""

    lo: ArrayLike
    hi: ArrayLike

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws of shape ``shape + broadcast(lo, hi).shape``."""
        lo, hi = jnp.broadcast_arrays(jnp.log(as_float(self.lo)), jnp.log(as_float(self.hi)))
        u = jax.random.uniform(key, tuple(shape) + lo.shape, lo.dtype)
        return jnp.exp(lo + (hi - lo) * u)


_DISTRIBUTIONS = (LogNormal, Uniform, LogUniform)


def is_distribution(x: Any) -> bool:
    """Whether ``x`` is one of chinplan's input distributions."""
    return isinstance(x, _DISTRIBUTIONS)


def validate_distribution(name: str, dist: Any, valid: tuple[float, float, bool] | None = None) -> None:
    """Checks a distribution's parameters and, given ``valid = (lo, hi, low_open)``, its support.

    LogNormal needs median > 0 and sigma >= 0; Uniform needs lo <= hi; LogUniform also lo > 0.
    All parameters finite. Traced parameters are skipped.
    """
    if _checks.is_traced(dist):
        return
    values = {}
    for f in dist._fields:
        values[f] = _checks.real_array(f"{name}.{f}", getattr(dist, f))
        if not np.all(np.isfinite(values[f])):
            raise ValueError(f"{name}: {type(dist).__name__}.{f} must be finite, got {dist}")
    if isinstance(dist, LogNormal):
        if np.any(values["median"] <= 0) or np.any(values["sigma"] < 0):
            raise ValueError(f"{name}: LogNormal needs median > 0 and sigma >= 0, got {dist}")
        return
    lo, hi = values["lo"], values["hi"]
    if np.any(hi < lo) or (isinstance(dist, LogUniform) and np.any(lo <= 0)):
        raise ValueError(f"{name}: {type(dist).__name__} needs lo <= hi (and lo > 0 if log-uniform), got {dist}")
    if valid is not None:
        low, high, low_open = valid
        if np.any(lo <= low if low_open else lo < low) or np.any(hi > high):
            support = _checks.interval(low, high, low_open=low_open)
            raise ValueError(f"{name}: {type(dist).__name__} draws must lie in {support}, got {dist}")


def sample_tree(tree: Any, num_draws: int, *, key: jax.Array | None) -> Any:
    """Replaces every distribution leaf of ``tree`` by ``num_draws`` draws.

    Plain (non-distribution) leaves are broadcast to ``(num_draws, *shape)`` so that every
    leaf of the result has the same leading draw axis, which is what the engine maps over.
    Leaf ``i`` (in pytree order) uses ``jax.random.fold_in(key, i)``, so draws are fully
    determined by ``key`` and independent across leaves.

    Args:
      tree: any pytree (typically a :class:`chinplan.Deployment`) whose leaves are numbers,
        arrays or distributions.
      num_draws: the number of draws (e.g. the number of posterior draws of the law).
      key: a PRNG key (may be None only if no leaf is a distribution).

    Returns:
      The same structure with array leaves of leading dimension ``num_draws``.
    """
    num_draws = _checks.integer("num_draws", num_draws)
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=is_distribution)
    if any(is_distribution(leaf) for leaf in leaves):
        if key is None:
            raise ValueError("key is required to sample distribution-valued leaves")
        _checks.key(key)
    out = []
    for i, leaf in enumerate(leaves):
        if is_distribution(leaf):
            out.append(leaf.sample(jax.random.fold_in(key, i), (num_draws,)))
        else:
            x = as_float(leaf)
            out.append(jnp.broadcast_to(x, (num_draws, *x.shape)))
    return jax.tree_util.tree_unflatten(treedef, out)
