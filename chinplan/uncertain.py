"""Uncertain inputs: distributions for any leaf of a scenario pytree, sampled once per draw.

Any field of a :class:`chinplan.Deployment` (or any other pytree) may be a :class:`LogNormal`,
:class:`Uniform` or :class:`LogUniform`; :func:`sample_tree` turns those into arrays with a
leading draw axis, to be carried next to the law's posterior draws, e.g.
``theta = (law_params, deployment)``.

Each distribution checks its own parameters when it is built from concrete numbers
(:func:`validate_distribution`: LogNormal median > 0, sigma >= 0; lo <= hi; LogUniform lo > 0),
and a quantity with a bounded domain (an MFU in (0, 1]) accepts only a distribution whose
support lies in it (Uniform or LogUniform inside the domain; a LogNormal is unbounded above
and is refused there: :func:`chinplan.costs.validate_deployment`). Draws are made in one fixed
dtype, :data:`SAMPLE_DTYPE` (float32), then cast to the dtype chinplan computes in, so a seed
gives the same draws with or without JAX's x64 mode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks
from chinplan._checks import as_float

__all__ = [
    "SAMPLE_DTYPE",
    "LogNormal",
    "Uniform",
    "LogUniform",
    "is_distribution",
    "validate_distribution",
    "sample_tree",
]


#: The dtype every standard normal or uniform variate is drawn in, whatever JAX's x64 mode:
#: the same key then gives the same draws in float32 and float64 (up to the last cast).
SAMPLE_DTYPE = jnp.float32


def _variates(draw, key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    """Standard variates (``jax.random.normal`` or ``uniform``) drawn in :data:`SAMPLE_DTYPE`,
    cast to ``dtype``: independent of the x64 mode."""
    return draw(key, shape, SAMPLE_DTYPE).astype(dtype)


_VALUES = (int, float, complex, str, bytes, np.generic, np.ndarray, jax.Array, list, tuple)


def _concrete(values) -> bool:
    """Whether every parameter is a concrete value (a number, an array, a string: checked when
    the distribution is built) rather than a tracer or a pytree sentinel (JAX rebuilds
    distributions from arbitrary leaves; those are checked at the boundary instead)."""
    return all(isinstance(v, _VALUES) and not _checks.is_traced(v) for v in values)


class _Checked:
    """Mixin: a distribution built from concrete values checks its parameters at once."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls, *args, **kwargs)
        if _concrete(self):
            validate_distribution(None, self)
        return self


class LogNormal(_Checked, NamedTuple("LogNormal", [("median", ArrayLike), ("sigma", ArrayLike)])):
    """A positive quantity whose log is normal: ``median * exp(sigma * z)``, z ~ N(0, 1).

    Unbounded above: not for a quantity with an upper bound (an MFU); use Uniform or
    LogUniform inside its domain there.
    """

    __slots__ = ()

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws of shape ``shape + broadcast(median, sigma).shape``."""
        median, sigma = jnp.broadcast_arrays(as_float(self.median), as_float(self.sigma))
        z = _variates(jax.random.normal, key, tuple(shape) + median.shape, median.dtype)
        return median * jnp.exp(sigma * z)


class Uniform(_Checked, NamedTuple("Uniform", [("lo", ArrayLike), ("hi", ArrayLike)])):
    """Uniform on ``[lo, hi)``."""

    __slots__ = ()

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws of shape ``shape + broadcast(lo, hi).shape``."""
        lo, hi = jnp.broadcast_arrays(as_float(self.lo), as_float(self.hi))
        u = _variates(jax.random.uniform, key, tuple(shape) + lo.shape, lo.dtype)
        return lo + (hi - lo) * u


class LogUniform(_Checked, NamedTuple("LogUniform", [("lo", ArrayLike), ("hi", ArrayLike)])):
    """Log-uniform on ``[lo, hi)``: ``exp(Uniform(log lo, log hi))``; for scales spanning decades."""

    __slots__ = ()

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws of shape ``shape + broadcast(lo, hi).shape``."""
        lo, hi = jnp.broadcast_arrays(jnp.log(as_float(self.lo)), jnp.log(as_float(self.hi)))
        u = _variates(jax.random.uniform, key, tuple(shape) + lo.shape, lo.dtype)
        return jnp.exp(lo + (hi - lo) * u)


_DISTRIBUTIONS = (LogNormal, Uniform, LogUniform)


def is_distribution(x: Any) -> bool:
    """Whether ``x`` is one of chinplan's input distributions."""
    return isinstance(x, _DISTRIBUTIONS)


def validate_distribution(name: str | None, dist: Any, valid: tuple[float, float, bool] | None = None) -> None:
    """Checks a distribution's parameters and, given ``valid = (lo, hi, low_open)``, its support.

    LogNormal needs median > 0 and sigma >= 0; Uniform needs lo <= hi; LogUniform also lo > 0.
    All parameters finite. Given a domain, the support must lie in it: Uniform/LogUniform
    bounds inside, and a LogNormal (support (0, inf)) only where the domain is unbounded
    above (a lognormal MFU with median 0.9 would put 42% of its draws above 1). ``name`` is
    the field holding it (None: the distribution itself, as it is built). Traced parameters
    are skipped.
    """
    if _checks.is_traced(dist):
        return
    kind = type(dist).__name__
    at = f"{name}: " if name else ""
    values = {}
    for f in dist._fields:
        values[f] = _checks.real_array(f"{name or kind}.{f}", getattr(dist, f))
        if not np.all(np.isfinite(values[f])):
            raise ValueError(f"{at}{kind}.{f} must be finite, got {dist}")
    if isinstance(dist, LogNormal):
        if np.any(values["median"] <= 0) or np.any(values["sigma"] < 0):
            raise ValueError(f"{at}LogNormal needs median > 0 and sigma >= 0, got {dist}")
        if valid is not None and (valid[1] < np.inf or valid[0] > 0):
            support = _checks.interval(*valid[:2], low_open=valid[2])
            raise ValueError(
                f"{at}a LogNormal (support (0, inf)) leaves the domain {support}; use Uniform(lo, hi) or "
                f"LogUniform(lo, hi) with bounds in {support}, got {dist}"
            )
        return
    lo, hi = values["lo"], values["hi"]
    if np.any(hi < lo) or (isinstance(dist, LogUniform) and np.any(lo <= 0)):
        raise ValueError(f"{at}{kind} needs lo <= hi (and lo > 0 if log-uniform), got {dist}")
    if valid is not None:
        low, high, low_open = valid
        if np.any(lo <= low if low_open else lo < low) or np.any(hi > high):
            support = _checks.interval(low, high, low_open=low_open)
            raise ValueError(f"{at}{kind} draws must lie in {support}, got {dist}")


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
