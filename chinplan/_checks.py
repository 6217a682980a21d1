"""Every boundary check of chinplan, written once.

Each public function validates its inputs once, at the outermost Python boundary, and passes
checked values inward. Every check raises a ``ValueError`` that names the argument, the bad
value and the valid range. Checks run on the host (NumPy), never inside traced code: a value
that is a JAX tracer (the caller's ``jit``, ``vmap`` or ``grad``) is not checked at all, so the
per-point formulas keep their documented NaN/inf semantics there (:func:`is_traced`).

Booleans, complex numbers and strings where numbers are expected are refused, not converted
(``True`` would become 1.0, ``1+2j`` would lose its imaginary part, ``"1e9"`` would be parsed).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "is_traced",
    "show",
    "real_array",
    "interval",
    "in_range",
    "representable",
    "log_representable",
    "affordable",
    "positive",
    "nonnegative",
    "finite",
    "positive_number",
    "integer",
    "seed",
    "one_of",
    "flag",
    "level",
    "levels",
    "key",
    "not_nan",
    "broadcast_shape",
    "draw_axis",
    "law",
    "law_draws",
    "reachable",
]

INF = math.inf
FLOAT64_MAX = float(np.finfo(np.float64).max)
#: The largest integer count chinplan accepts (int64: NumPy and XLA index with it).
INT_MAX = 2**63 - 1


def is_traced(*trees: Any) -> bool:
    """Whether any leaf of ``trees`` is a JAX tracer (inside the caller's jit, vmap or grad)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def show(x: Any, limit: int = 80) -> str:
    """``repr(x)`` on one line, cut to about ``limit`` characters (for error messages)."""
    text = " ".join(repr(x).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def real_array(name: str, x: Any) -> np.ndarray:
    """``x`` as a float64 host array; ValueError naming ``name`` unless it holds real numbers.

    Booleans, complex numbers, strings and other non-numeric values are rejected rather than
    silently converted.
    """
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError):  # e.g. a ragged nested list
        raise ValueError(f"{name} must be a number or an array of numbers, got {show(x)}") from None
    kind = raw.dtype.kind
    if kind == "O" and any(
        isinstance(v, (bool, np.bool_, str, bytes, complex, np.complexfloating)) for v in raw.reshape(-1)
    ):
        kind = "?"
    if kind not in "iufO" and not jnp.issubdtype(raw.dtype, jnp.floating):  # bfloat16 is kind "V"
        raise ValueError(f"{name} must be a real number or an array of real numbers, got {show(x)} (dtype {raw.dtype})")
    try:
        return np.asarray(raw, dtype=np.float64)
    except OverflowError:  # a Python int beyond float64 (10**400): not representable
        raise ValueError(
            f"{name} must be finite (valid range {interval(-FLOAT64_MAX, FLOAT64_MAX)}); got {show(x)}, "
            "an integer too large for a float64"
        ) from None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {show(x)}") from None


def not_nan(name: str, x: Any) -> np.ndarray:
    """``x`` as a float64 host array of real numbers, none NaN (+-inf allowed: the limits)."""
    arr = real_array(name, x)
    nan = np.isnan(arr)
    if np.any(nan):
        raise ValueError(f"{name} contains NaN at {int(nan.sum())} of {arr.size} positions")
    return arr


def _num(v: float) -> str:
    return "inf" if v == INF else "-inf" if v == -INF else f"{v:g}"


def interval(lo: float = -INF, hi: float = INF, *, low_open: bool = False, high_open: bool = False) -> str:
    """``[lo, hi]``-style text of a range; infinite ends are always open."""
    left = "(" if low_open or lo == -INF else "["
    right = ")" if high_open or hi == INF else "]"
    return f"{left}{_num(lo)}, {_num(hi)}{right}"


def _describe(lo: float, hi: float, low_open: bool, high_open: bool) -> str:
    parts = ["finite"]
    if lo > -INF:
        parts.append(f"{'>' if low_open else '>='} {_num(lo)}")
    if hi < INF:
        parts.append(f"{'<' if high_open else '<='} {_num(hi)}")
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def in_range(
    name: str,
    x: Any,
    lo: float = -INF,
    hi: float = INF,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_empty: bool = True,
    unit: str = "positions",
) -> np.ndarray:
    """Host copy of ``x`` after checking every value is finite and inside the range.

    Raises ``ValueError("{name} must be finite and > 0 (valid range (0, inf)), got -1.0 at 1
    of 3 positions")`` and the like.
    """
    arr = real_array(name, x)
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty, got {show(x)}")
    ok = np.isfinite(arr) & (arr > lo if low_open else arr >= lo) & (arr < hi if high_open else arr <= hi)
    if np.all(ok):
        representable(name, arr)
    else:
        bad = ~ok
        first = float(arr.reshape(-1)[np.argmax(bad.reshape(-1))])
        every, where = (" in every draw", "in") if unit == "draws" else ("", "at")
        count = f" {where} {int(bad.sum())} of {arr.size} {unit}" if arr.ndim else ""
        raise ValueError(
            f"{name} must be {_describe(lo, hi, low_open, high_open)}{every} (valid range "
            f"{interval(lo, hi, low_open=low_open, high_open=high_open)}), got {first!r}{count}"
        )
    return arr


def representable(name: str, arr: np.ndarray) -> np.ndarray:
    """``arr`` (float64) if every value survives the cast to the dtype chinplan computes in
    (JAX's default float: float32 unless x64 is on): no magnitude beyond its largest finite
    value (inf after the cast) or below its smallest normal one (0 or a denormal that XLA
    flushes to 0). A ValueError naming ``name`` gives the representable range."""
    dtype = np.dtype(jnp.result_type(float))
    if dtype == np.float64:
        return arr
    info = np.finfo(dtype)
    size = np.abs(arr)
    bad = (size > info.max) | ((size < info.tiny) & (size > 0))
    if np.any(bad):
        first = float(arr.reshape(-1)[np.argmax(bad.reshape(-1))])
        raise ValueError(
            f"{name} must be representable in {dtype.name}, the dtype chinplan computes in (magnitude 0 or "
            f"in [{float(info.tiny):.6g}, {float(info.max):.6g}]; enable JAX's x64 mode for float64), got {first!r}"
        )
    return arr


def log_representable(name: str, log_x: Any) -> None:
    """Checks a product formed in logs, ``exp(log_x)``, stays below the largest value of the
    dtype chinplan computes in (inf after the cast otherwise); -inf (a zero count) passes.
    The message gives the product's order of magnitude and the limit."""
    dtype = np.dtype(jnp.result_type(float))
    limit = float(np.finfo(dtype).max)
    log_x = np.asarray(log_x, np.float64)
    bad = log_x > math.log(limit)
    if np.any(bad):
        worst = float(np.max(log_x[bad]))
        count = f" in {int(bad.sum())} of {log_x.size} draws" if log_x.ndim else ""
        size = f"about 1e{worst / math.log(10):.1f}" if math.isfinite(worst) else "inf (beyond even float64)"
        raise ValueError(
            f"{name} must be representable in {dtype.name}, the dtype chinplan computes in (at most "
            f"{limit:.6g}; enable JAX's x64 mode for float64), got {size}{count}"
        )


def affordable(what: str, estimate: float, limit: float, unit: str, hint: str) -> None:
    """Refuses work whose size, estimated from the arguments before anything is allocated or
    run, exceeds ``limit``: a ValueError giving the estimate, the limit and what to change."""
    if estimate > limit:
        raise ValueError(f"{what} would need about {estimate:.3g} {unit}, more than the limit of {limit:.3g}; {hint}")


def positive(name: str, x: Any, *, allow_empty: bool = True) -> np.ndarray:
    """Checks ``x`` is finite and > 0 everywhere (a count, a budget, a price per unit)."""
    return in_range(name, x, 0.0, INF, low_open=True, allow_empty=allow_empty)


def nonnegative(name: str, x: Any) -> np.ndarray:
    """Checks ``x`` is finite and >= 0 everywhere (a count that may be zero)."""
    return in_range(name, x, 0.0, INF)


def finite(name: str, x: Any) -> np.ndarray:
    """Checks ``x`` holds finite real numbers (a logarithm, a loss)."""
    return in_range(name, x)


def positive_number(name: str, value: Any) -> float:
    """``value`` as one finite Python float > 0 (a number, not a string or a bool)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a finite number > 0, got {show(value)}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def integer(name: str, value: Any, low: int = 1, *, optional: bool = False, high: int = INT_MAX) -> int | None:
    """``value`` as a Python int in [``low``, ``high``]; integral floats are accepted, bools and
    strings not. ``high`` defaults to the int64 maximum (a count beyond it cannot index).

    With ``optional``, ``None`` is valid too (and returned).
    """
    if optional and value is None:
        return None
    n = None
    if not isinstance(value, (bool, np.bool_, str, bytes)):
        try:
            n = operator.index(value)  # Python/NumPy ints, exactly
        except TypeError:
            try:
                x = float(value)
                n = int(x) if math.isfinite(x) and x == int(x) else None
            except (TypeError, ValueError, OverflowError):
                pass
    if n is None or n < low:
        raise ValueError(f"{name} must be an integer >= {low}{' or None' if optional else ''}, got {show(value)}")
    if n > high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]{' or None' if optional else ''}, got {show(value)}")
    return n


def seed(name: str, value: Any) -> Any:
    """``value`` if ``numpy.random.default_rng`` takes it as a seed (an int >= 0 or a sequence
    of them, a SeedSequence or a Generator); ValueError naming ``name`` otherwise."""
    try:
        np.random.default_rng(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a seed: an integer >= 0 or a sequence of them, got {show(value)}") from None
    return value


def flag(name: str, value: Any) -> bool:
    """``value`` if it is True or False (a NumPy bool too); a truthy string is not a flag."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def one_of(name: str, value: Any, options) -> Any:
    """``value`` if it is one of ``options`` (any container of hashables); else a ValueError listing them."""
    try:
        ok = value in options
    except TypeError:  # an unhashable value
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return value


def level(name: str, p: Any, *, low_open: bool = False, high_open: bool = False) -> float:
    """One probability level ``p`` as a float in [0, 1] (ends open as asked)."""
    valid = interval(0.0, 1.0, low_open=low_open, high_open=high_open)
    try:
        scalar = not isinstance(p, (bool, np.bool_, str, bytes)) and np.ndim(p) == 0
    except (TypeError, ValueError):  # a ragged sequence
        scalar = False
    if not scalar:
        raise ValueError(f"{name} must be a number in {valid}, got {show(p)}")
    try:
        p = float(p)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number in {valid}, got {show(p)}") from None
    if not ((0.0 < p if low_open else 0.0 <= p) and (p < 1.0 if high_open else p <= 1.0)):
        raise ValueError(f"{name} must lie in {valid}, got {p}")
    return p


def levels(name: str, q: Any) -> tuple[float, ...]:
    """Quantile levels: a number or a non-empty 1-D sequence of numbers in [0, 1]."""
    try:
        raw = np.asarray(q)
    except (TypeError, ValueError):  # a ragged sequence
        raise ValueError(f"{name} must be a number or a sequence of numbers in [0, 1], got {show(q)}") from None
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a number or a sequence of numbers in [0, 1], got {q!r}")
    values = raw.astype(np.float64)
    if values.ndim > 1 or values.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D sequence of levels, got shape {values.shape}")
    values = values.reshape(-1)
    if not np.all((values >= 0) & (values <= 1)):
        raise ValueError(f"{name} must lie in [0, 1], got {values.tolist()}")
    return tuple(float(v) for v in values)


def key(value: Any, name: str = "key") -> jax.Array:
    """``value`` if it is a JAX PRNG key (typed ``jax.random.key`` or legacy ``PRNGKey``)."""
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
        if jnp.issubdtype(value.dtype, jax.dtypes.prng_key) and value.ndim == 0:
            return value
        if value.dtype == jnp.uint32 and value.shape == (2,):
            return value
    elif isinstance(value, jax.core.Tracer):
        return value  # a key traced by the caller: its dtype was checked where it was made
    raise ValueError(f"{name} must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), got {value!r}")


def broadcast_shape(**arrays: Any) -> tuple[int, ...]:
    """The broadcast shape of named arguments; ValueError naming them all if there is none."""
    try:
        return tuple(np.broadcast_shapes(*(np.shape(a) for a in arrays.values())))
    except ValueError:
        shapes = ", ".join(f"{k}: {np.shape(a)}" for k, a in arrays.items())
        raise ValueError(f"scenario arguments do not broadcast to a common shape ({shapes})") from None


def draw_axis(tree: Any, name: str = "params") -> int:
    """The common leading (draw) axis of every leaf of ``tree``: real leaves, >= 1 draw."""
    paths_leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if not paths_leaves:
        raise ValueError(f"{name} has no array leaves")
    n_draws = None
    for path, leaf in paths_leaves:
        where = jax.tree_util.keystr(path) or "<root>"
        kind = np.asarray(leaf).dtype.kind if not isinstance(leaf, jax.Array) else leaf.dtype.kind
        if kind not in "biuf" and not (isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jnp.floating)):
            raise ValueError(f"{name} leaf {where} must hold real numbers, got dtype kind {kind!r}")
        shape = np.shape(leaf)
        if not shape:
            raise ValueError(
                f"{name} leaf {where} is a scalar; {name} needs a leading draw axis "
                "(e.g. jax.tree.map(lambda v: jnp.asarray(v)[None], law) for a single law)"
            )
        if n_draws is None:
            n_draws = shape[0]
        if shape[0] != n_draws:
            raise ValueError(
                f"{name} leaves must share a leading draw axis: leaf {where} has shape {shape}, "
                f"the first leaf has {n_draws} draws"
            )
    if n_draws == 0:
        raise ValueError(f"{name} has zero draws")
    return n_draws


#: Domains of the law's constants: E, A, B > 0 (their logs are taken), alpha, beta > 0.
_LAW_FIELDS = ("E", "A", "B", "alpha", "beta")
#: The decay constants of a data-constrained law (chinplan.law.DataConstrainedParams).
_DECAY_FIELDS = ("r_d_star", "r_n_star")


def _law_fields(fields) -> tuple:
    return _LAW_FIELDS + tuple(f for f in fields[5:] if f in _DECAY_FIELDS)


def law(params: Any, name: str = "params") -> None:
    """Checks a law's concrete constants (E, A, B, alpha, beta) are finite and > 0.

    Fields that are tracers are skipped. ``params`` must be a NamedTuple with those fields.
    """
    fields = getattr(params, "_fields", None)
    if fields is None or tuple(fields)[:5] != _LAW_FIELDS:
        raise ValueError(f"{name} must be a chinplan.LawParams, got {type(params).__name__}")
    for field in _law_fields(tuple(fields)):
        value = getattr(params, field)
        if not is_traced(value):
            positive(f"{name}.{field}", value)


def law_draws(params: Any, name: str = "params") -> int:
    """The number of draws of a posterior law (one leading axis); every constant finite and > 0."""
    fields = getattr(params, "_fields", None)
    if fields is None or tuple(fields)[:5] != _LAW_FIELDS:
        raise ValueError(f"{name} must be a LawParams with a leading draw axis, got {type(params).__name__}")
    shape = np.shape(params.E)
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"{name} must have one leading draw axis, got E of shape {shape}")
    n_draws = draw_axis(params, name)
    for field in _law_fields(tuple(fields)):
        in_range(f"{name}.{field}", getattr(params, field), 0.0, INF, low_open=True, unit="draws")
    return n_draws


def reachable(name: str, target: Any, e: Any, *, every: bool = True) -> None:
    """Checks a target loss lies above the irreducible loss E.

    No (N, D) reaches l <= E (L > E for all finite N, D; Hoffmann et al. 2022, Eq. 2). With
    ``every`` (one law, or laws broadcast against the targets) each target must exceed the E
    it meets; without it (posterior draws) it must exceed the smallest E, so a target
    unreachable for only some draws stays a result (those draws give inf), not an error.
    """
    target = np.asarray(target, np.float64)
    e = np.asarray(e, np.float64)
    if every:
        t, ee = np.broadcast_arrays(target, e)
        bad = t <= ee
        if np.any(bad):
            raise ValueError(
                f"{name} must exceed the irreducible loss E (valid range (E, inf), E = "
                f"{float(ee[bad].reshape(-1)[0]):.6g}), got {float(t[bad].reshape(-1)[0])!r}"
            )
        return
    e_min = float(np.min(e))
    bad = target <= e_min
    if np.any(bad):
        raise ValueError(
            f"{name} must exceed the irreducible loss E of at least one posterior draw "
            f"(min E = {e_min:.6g}); got {float(target[bad].reshape(-1)[0])!r}, unreachable for every draw"
        )


def as_float(x: ArrayLike) -> jax.Array:
    """Returns ``x`` as a floating JAX array, converting integers on the host first.

    ``jnp.asarray(np.int64(15e12))`` silently becomes int32 (and wraps) when x64 is off;
    casting to float64 in NumPy first and then to JAX's default float keeps the value.
    Tracers and floating arrays pass through unchanged. Complex input is refused (the dtype
    is static, so this holds under ``jit`` too): the law has no meaning off the real line.
    """
    if jnp.iscomplexobj(x):
        raise TypeError(f"expected real numbers, got a complex value of dtype {jnp.result_type(x)}")
    if isinstance(x, jax.Array):
        return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))
    if isinstance(x, (int, np.integer)) or (isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating)):
        x = np.asarray(x, dtype=np.float64)
    if isinstance(x, (float, np.floating)) or (isinstance(x, np.ndarray) and x.dtype == np.float64):
        return jnp.asarray(x, dtype=jnp.result_type(float))
    return jnp.asarray(x)
