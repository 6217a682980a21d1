"""FLOPs, GPU-hours and dollars of training and serving a model; inference-aware optima.

Accounting (Kaplan et al. 2020, §2.1; REFERENCES §5):

    training FLOPs   = 6 N D
    inference FLOPs  = 2 N per token read (prefill) or generated (decode)
    GPU-hours        = FLOPs / (3600 * peak FLOP/s * MFU)
    dollars          = GPU-hours * price per GPU-hour

so the total cost of ownership of a model of N parameters trained on D tokens and served for
Q queries of T_in input and T_out output tokens is (Sardana et al. 2024, §3)

    cost = c_tr * 6 N D / U_train + c_inf * 2 N Q (T_in / U_prefill + T_out / U_decode),
    c = price / (3600 * peak).

Every per-point function is pure, jittable, vmappable and differentiable, and works on
logarithms internally: 6 N D reaches 1e25 and more, so products are formed as
``exp(log 6 + log N + log D)`` and never overflow or lose precision in float32.

Any field of a :class:`Deployment` (or any other pytree) may be a distribution
(:class:`LogNormal`, :class:`Uniform`, :class:`LogUniform`); :func:`sample_tree` and
:func:`with_cost_draws` turn those into arrays with a leading draw axis, to be carried next
to the law's posterior draws, e.g. ``theta = (law_params, deployment)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import law
from chinplan.law import Allocation, LawParams, as_float

__all__ = [
    "PFLOPS_DAY",
    "Hardware",
    "A100",
    "H100_SXM",
    "H200",
    "HARDWARE",
    "UnknownHardwareError",
    "LogNormal",
    "Uniform",
    "LogUniform",
    "is_distribution",
    "Deployment",
    "Cost",
    "sample_tree",
    "sample_deployment",
    "with_cost_draws",
    "validate_deployment",
    "log_training_flops",
    "lifetime_tokens",
    "inference_flops",
    "log_inference_flops",
    "pflops_days",
    "gpu_hours",
    "tco",
    "log_dollars",
    "weighted_inference_tokens",
    "inference_optimal",
    "cost_optimal",
    "data_constrained_optimal",
]

LOG2 = math.log(2.0)
LOG3 = math.log(3.0)
LOG6 = math.log(6.0)
LOG3600 = math.log(3600.0)

#: One petaflop/s-day: 1e15 FLOP/s for 86,400 s = 8.64e19 FLOPs.
PFLOPS_DAY = 8.64e19

#: Newton steps used by :func:`inference_optimal`. The root is bracketed in a log-D interval
#: of width log(2)/beta and the log-space residual is convex with slope in [-beta-1, -beta],
#: so a handful of steps converge: over 300 random laws, targets and D_inf in [1, 1e24],
#: 4 steps reach 1e-11 and 5 reach float64 precision (7e-13 relative in D); 8 leave a margin.
NEWTON_STEPS = 8


# --------------------------------------------------------------------------------------
# Hardware
# --------------------------------------------------------------------------------------


class Hardware(NamedTuple):
    """Dense peak throughput of one accelerator, in FLOP/s (or OP/s for int8).

    All leaves are numbers so a ``Hardware`` is a pytree; the name lives in
    :data:`HARDWARE`. A precision the chip does not support is ``nan``.

    Attributes:
      bf16: dense bf16 tensor-core peak.
      fp16: dense fp16 tensor-core peak.
      fp8: dense fp8 tensor-core peak (``nan`` if unsupported).
      int8: dense int8 tensor-core peak, OP/s.
      memory_bytes: HBM capacity.
      memory_bandwidth: HBM bandwidth, bytes/s.
    """

    bf16: float
    fp16: float
    fp8: float
    int8: float
    memory_bytes: float
    memory_bandwidth: float

    def peak(self, precision: str = "bf16") -> float:
        """Peak FLOP/s at ``precision`` (one of ``bf16``, ``fp16``, ``fp8``, ``int8``)."""
        if precision not in ("bf16", "fp16", "fp8", "int8"):
            raise ValueError(f"precision must be one of bf16, fp16, fp8, int8; got {precision!r}")
        value = getattr(self, precision)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"precision {precision!r} is not supported by this hardware")
        return value


#: NVIDIA A100 SXM 80GB. Source: NVIDIA A100 Tensor Core GPU datasheet (2021): BF16/FP16
#: 312 TFLOPS, INT8 624 TOPS dense (twice that with structured sparsity); no FP8;
#: 80 GB HBM2e at 2,039 GB/s.
A100 = Hardware(bf16=312e12, fp16=312e12, fp8=float("nan"), int8=624e12, memory_bytes=80e9, memory_bandwidth=2.039e12)
#: NVIDIA H100 SXM5 80GB. Source: NVIDIA H100 Tensor Core GPU datasheet (2023): BF16/FP16
#: 1,979 TFLOPS and FP8/INT8 3,958 with sparsity, i.e. 989 (989.4) and 1,979 dense;
#: 80 GB HBM3 at 3.35 TB/s.
H100_SXM = Hardware(bf16=989e12, fp16=989e12, fp8=1979e12, int8=1979e12, memory_bytes=80e9, memory_bandwidth=3.35e12)
#: NVIDIA H200 SXM 141GB. Source: NVIDIA H200 Tensor Core GPU datasheet (2024): same tensor
#: cores as the H100 SXM (BF16 989, FP8 1,979, INT8 1,979 dense TFLOPS/TOPS); 141 GB HBM3e
#: at 4.8 TB/s.
H200 = Hardware(bf16=989e12, fp16=989e12, fp8=1979e12, int8=1979e12, memory_bytes=141e9, memory_bandwidth=4.8e12)

class UnknownHardwareError(KeyError, ValueError):
    """An unknown hardware preset name: a ``KeyError`` (dict lookup) that is also a ``ValueError``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _Presets(dict):
    """A dict of hardware presets whose missing keys raise a message listing the valid names."""

    def __missing__(self, name):
        raise UnknownHardwareError(f"unknown hardware {name!r}; choose from {', '.join(sorted(self))}")


HARDWARE = _Presets({"a100": A100, "h100": H100_SXM, "h100-sxm": H100_SXM, "h200": H200})


# --------------------------------------------------------------------------------------
# Distributions for uncertain cost inputs
# --------------------------------------------------------------------------------------


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
    """Whether ``x`` is one of chinplan's cost-input distributions."""
    return isinstance(x, _DISTRIBUTIONS)


def _real_array(name: str, x: Any) -> np.ndarray:
    """``x`` as a float64 host array; ValueError naming ``name`` unless it holds real numbers.

    Booleans, complex numbers, strings and other non-numeric values are rejected rather than
    silently converted (``True`` would become 1.0, ``1+2j`` would lose its imaginary part).
    """
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError):  # e.g. a ragged nested list
        raise ValueError(f"{name} must be a number or an array of numbers, got {x!r}") from None
    kind = raw.dtype.kind
    if kind == "O" and any(
        isinstance(v, (bool, np.bool_, str, bytes, complex, np.complexfloating)) for v in raw.reshape(-1)
    ):
        kind = "?"
    if kind not in "iufO" and not jnp.issubdtype(raw.dtype, jnp.floating):  # bfloat16 is kind "V"
        raise ValueError(f"{name} must be a real number or an array of real numbers, got {x!r} (dtype {raw.dtype})")
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {x!r}") from None


def _interval(lo: float, hi: float, closed: bool) -> str:
    return f"{'[' if closed else '('}{lo}, {hi}{']' if math.isfinite(hi) else ')'}"


def _validate_distribution(name: str, dist: Any, valid: tuple[float, float, bool] | None = None) -> None:
    """Checks a distribution's parameters and, given ``valid = (lo, hi, closed)``, its support."""
    values = {f: _real_array(f"{name}.{f}", getattr(dist, f)) for f in dist._fields}
    for f, v in values.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: {type(dist).__name__}.{f} must be finite, got {dist}")
    if isinstance(dist, LogNormal):
        if np.any(values["median"] <= 0) or np.any(values["sigma"] < 0):
            raise ValueError(f"{name}: LogNormal needs median > 0 and sigma >= 0, got {dist}")
        return
    lo, hi = values["lo"], values["hi"]
    if np.any(hi < lo) or (isinstance(dist, LogUniform) and np.any(lo <= 0)):
        raise ValueError(f"{name}: {type(dist).__name__} needs lo <= hi (and lo > 0 if log-uniform), got {dist}")
    if valid is not None:
        low, high, closed = valid
        if np.any(lo < low if closed else lo <= low) or np.any(hi > high):
            raise ValueError(
                f"{name}: {type(dist).__name__} draws must lie in {_interval(low, high, closed)}, got {dist}"
            )


def _check_key(key: Any) -> None:
    """ValueError unless ``key`` is a JAX PRNG key (new-style typed or legacy uint32)."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0:
        return
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.ndim == 1:
        return
    raise ValueError(f"key must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), got {key!r}")


def sample_tree(tree: Any, num_draws: int, *, key: jax.Array | None) -> Any:
    """Replaces every distribution leaf of ``tree`` by ``num_draws`` draws.

    Plain (non-distribution) leaves are broadcast to ``(num_draws, *shape)`` so that every
    leaf of the result has the same leading draw axis, which is what the engine maps over.
    Leaf ``i`` (in pytree order) uses ``jax.random.fold_in(key, i)``, so draws are fully
    determined by ``key`` and independent across leaves.

    Args:
      tree: any pytree (typically a :class:`Deployment`) whose leaves are numbers, arrays or
        distributions.
      num_draws: the number of draws (e.g. the number of posterior draws of the law).
      key: a PRNG key (may be None only if no leaf is a distribution).

    Returns:
      The same structure with array leaves of leading dimension ``num_draws``.
    """
    try:
        ok = not isinstance(num_draws, (bool, np.bool_, str, bytes)) and int(num_draws) == num_draws >= 1
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"num_draws must be a positive integer, got {num_draws!r}")
    num_draws = int(num_draws)
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=is_distribution)
    if any(is_distribution(leaf) for leaf in leaves):
        if key is None:
            raise ValueError("key is required to sample distribution-valued leaves")
        _check_key(key)
    out = []
    for i, leaf in enumerate(leaves):
        if is_distribution(leaf):
            out.append(leaf.sample(jax.random.fold_in(key, i), (num_draws,)))
        else:
            x = as_float(leaf)
            out.append(jnp.broadcast_to(x, (num_draws, *x.shape)))
    return jax.tree_util.tree_unflatten(treedef, out)


# --------------------------------------------------------------------------------------
# Deployment and cost
# --------------------------------------------------------------------------------------


class Deployment(NamedTuple):
    """How a model is trained and served; every field may be a number, an array or a
    distribution (sample it with :func:`sample_deployment` before use in a kernel).

    Attributes:
      queries: queries served over the model's life.
      input_tokens: prompt (prefill) tokens per query.
      output_tokens: generated (decode) tokens per query.
      peak_flops: peak FLOP/s of one training accelerator (e.g. ``H100_SXM.bf16``).
      mfu_train: model-FLOPs utilisation in training (Llama 3 reports 38-43% in bf16;
        REFERENCES §5). Default 0.4.
      mfu_prefill: MFU of prefill (compute bound). Default 0.5, an assumption.
      mfu_decode: MFU of decoding (memory-bandwidth bound, hence low). Default 0.1, an
        assumption.
      price: dollars per GPU-hour for training. Default 2.0, an assumption.
      inference_peak_flops: peak FLOP/s of one serving accelerator; ``None`` = ``peak_flops``.
      inference_price: dollars per GPU-hour for serving; ``None`` = ``price``.
    """

    queries: Any = 0.0
    input_tokens: Any = 0.0
    output_tokens: Any = 0.0
    peak_flops: Any = H100_SXM.bf16
    mfu_train: Any = 0.4
    mfu_prefill: Any = 0.5
    mfu_decode: Any = 0.1
    price: Any = 2.0
    inference_peak_flops: Any = None
    inference_price: Any = None


_RANGES = {
    "queries": (0.0, math.inf, True),
    "input_tokens": (0.0, math.inf, True),
    "output_tokens": (0.0, math.inf, True),
    "peak_flops": (0.0, math.inf, False),
    "mfu_train": (0.0, 1.0, False),
    "mfu_prefill": (0.0, 1.0, False),
    "mfu_decode": (0.0, 1.0, False),
    "price": (0.0, math.inf, True),
    "inference_peak_flops": (0.0, math.inf, False),
    "inference_price": (0.0, math.inf, True),
}


def _is_concrete(x: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def validate_deployment(deployment: Deployment) -> Deployment:
    """Checks the concrete fields of ``deployment``; raises ``ValueError`` naming the field.

    Counts and prices must be finite and >= 0, peaks finite and > 0, MFUs in (0, 1]; booleans,
    complex numbers and strings are rejected. Distribution fields are checked for finite,
    valid parameters, and Uniform/LogUniform bounds must lie in the field's range (a
    LogNormal is unbounded above: keep its sigma small for an MFU). Traced values are
    skipped (validate before ``jit``).
    """
    if not isinstance(deployment, Deployment):
        raise ValueError(f"deployment must be a chinplan.costs.Deployment, got {type(deployment).__name__}")
    for name, value in deployment._asdict().items():
        if value is None or not _is_concrete(value):
            continue
        if is_distribution(value):
            _validate_distribution(f"deployment.{name}", value, _RANGES[name])
            continue
        lo, hi, closed = _RANGES[name]
        x = _real_array(f"deployment.{name}", value)
        bad = ~np.isfinite(x) | (x < lo if closed else x <= lo) | (x > hi)
        if np.any(bad):
            raise ValueError(f"deployment.{name} must be finite and lie in {_interval(lo, hi, closed)}, got {value!r}")
    return deployment


def sample_deployment(deployment: Deployment, num_draws: int, *, key: jax.Array | None) -> Deployment:
    """Validates ``deployment`` and samples its distribution fields (see :func:`sample_tree`).

    ``None`` fields (inference hardware/price equal to training's) stay ``None``.
    """
    return sample_tree(validate_deployment(deployment), num_draws, key=key)


def with_cost_draws(
    params: LawParams, deployment: Deployment, *, key: jax.Array | None = None
) -> tuple[LawParams, Deployment]:
    """``(params, deployment)`` with the deployment sampled once per posterior draw of ``params``.

    The result is the per-draw pytree that ``chinplan.bands`` and friends map over: each
    kernel receives ``theta = (LawParams, Deployment)`` of scalars. ``key`` is required when
    a field of ``deployment`` is a distribution; constant fields are broadcast to the draw axis.
    """
    e = np.shape(params.E)
    if len(e) != 1:
        raise ValueError(f"params must have one leading draw axis, got E of shape {e}")
    leaves = jax.tree_util.tree_leaves(deployment, is_leaf=is_distribution)
    if key is None and any(is_distribution(x) for x in leaves):
        raise ValueError("key is required when deployment has distribution-valued fields")
    return params, sample_deployment(deployment, e[0], key=key)


class Cost(NamedTuple):
    """Total cost of ownership, split into training and inference (all arrays)."""

    train_flops: jax.Array
    inference_flops: jax.Array
    flops: jax.Array
    train_gpu_hours: jax.Array
    inference_gpu_hours: jax.Array
    gpu_hours: jax.Array
    train_dollars: jax.Array
    inference_dollars: jax.Array
    dollars: jax.Array


def log_training_flops(n: ArrayLike, d: ArrayLike) -> jax.Array:
    """log(6 N D) (Kaplan et al. 2020, §2.1); ``law.training_flops`` is its exponential."""
    return LOG6 + jnp.log(as_float(n)) + jnp.log(as_float(d))


def lifetime_tokens(queries: ArrayLike, input_tokens: ArrayLike, output_tokens: ArrayLike) -> jax.Array:
    """Tokens processed over a model's life: queries x (input + output tokens per query)."""
    return as_float(queries) * (as_float(input_tokens) + as_float(output_tokens))


def log_inference_flops(n: ArrayLike, tokens: ArrayLike) -> jax.Array:
    """log(2 N T): a forward pass costs about 2N FLOPs per token (Kaplan et al. 2020, §2.1).

    The attention term 2 n_layer n_ctx d_model per token is neglected, as in Sardana et al.
    2024. ``tokens = 0`` gives ``-inf``.
    """
    return LOG2 + jnp.log(as_float(n)) + jnp.log(as_float(tokens))


def inference_flops(n: ArrayLike, tokens: ArrayLike) -> jax.Array:
    """2 N T FLOPs to process ``tokens`` tokens with an ``n``-parameter model."""
    return jnp.exp(log_inference_flops(n, tokens))


def pflops_days(flops: ArrayLike) -> jax.Array:
    """FLOPs in petaflop/s-days (1 PF/s-day = 8.64e19 FLOPs)."""
    return as_float(flops) / PFLOPS_DAY


def gpu_hours(flops: ArrayLike, peak_flops: ArrayLike, mfu: ArrayLike) -> jax.Array:
    """GPU-hours to execute ``flops`` at ``mfu`` of ``peak_flops``: FLOPs / (3600 peak MFU)."""
    return jnp.exp(jnp.log(as_float(flops)) - LOG3600 - jnp.log(as_float(peak_flops)) - jnp.log(as_float(mfu)))


def _check_sampled(deployment: Any) -> None:
    """ValueError unless ``deployment`` is a Deployment with no unsampled distribution fields.

    A structural check (types only), so it is free and safe under ``jit``/``vmap``. Without it
    a ``LogNormal(median, sigma)`` field would be read as the array ``[median, sigma]``.
    """
    if not isinstance(deployment, Deployment):
        raise ValueError(f"deployment must be a chinplan.costs.Deployment, got {type(deployment).__name__}")
    for name, value in deployment._asdict().items():
        if is_distribution(value):
            raise ValueError(
                f"deployment.{name} is a {type(value).__name__} distribution; sample it first "
                "(chinplan.sample_deployment or chinplan.with_cost_draws)"
            )


def _serving(deployment: Deployment) -> tuple[jax.Array, jax.Array]:
    _check_sampled(deployment)
    peak = deployment.peak_flops if deployment.inference_peak_flops is None else deployment.inference_peak_flops
    price = deployment.price if deployment.inference_price is None else deployment.inference_price
    return as_float(peak), as_float(price)


def _safe_log(x: jax.Array) -> jax.Array:
    """log x with log 0 = -inf and a zero (not NaN) gradient at x = 0."""
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), -jnp.inf)


def _log_inference_hour_tokens(deployment: Deployment) -> jax.Array:
    """log[Q (T_in / U_prefill + T_out / U_decode)]: MFU-weighted lifetime tokens."""
    q, t_in, t_out = (as_float(x) for x in (deployment.queries, deployment.input_tokens, deployment.output_tokens))
    w = t_in / as_float(deployment.mfu_prefill) + t_out / as_float(deployment.mfu_decode)
    return _safe_log(q) + _safe_log(w)


def tco(n: ArrayLike, d: ArrayLike, deployment: Deployment) -> Cost:
    """Total cost of ownership of training ``n`` parameters on ``d`` tokens and serving them.

    FLOPs = 6 N D + 2 N Q (T_in + T_out);
    GPU-hours = 6 N D / (3600 P U_train) + 2 N Q (T_in/U_prefill + T_out/U_decode) / (3600 P_inf);
    dollars = price * train GPU-hours + inference price * inference GPU-hours
    (Sardana et al. 2024, §3; REFERENCES §3, §5). Computed from logarithms.

    Args:
      n: parameters N.
      d: training tokens D.
      deployment: a :class:`Deployment` of arrays (sample distributions first).

    Returns:
      A :class:`Cost` broadcast over the inputs.
    """
    log_n = jnp.log(as_float(n))
    peak_inf, price_inf = _serving(deployment)
    log_tr = LOG6 + log_n + jnp.log(as_float(d))
    q, t_in, t_out = (as_float(x) for x in (deployment.queries, deployment.input_tokens, deployment.output_tokens))
    log_inf = LOG2 + log_n + _safe_log(q * (t_in + t_out))
    log_tr_h = log_tr - LOG3600 - jnp.log(as_float(deployment.peak_flops)) - jnp.log(as_float(deployment.mfu_train))
    log_inf_h = LOG2 + log_n + _log_inference_hour_tokens(deployment) - LOG3600 - jnp.log(peak_inf)
    tr_f, inf_f, tr_h, inf_h = (jnp.exp(x) for x in (log_tr, log_inf, log_tr_h, log_inf_h))
    tr_d, inf_d = as_float(deployment.price) * tr_h, price_inf * inf_h
    return Cost(
        train_flops=tr_f,
        inference_flops=inf_f,
        flops=jnp.exp(jnp.logaddexp(log_tr, log_inf)),
        train_gpu_hours=tr_h,
        inference_gpu_hours=inf_h,
        gpu_hours=jnp.exp(jnp.logaddexp(log_tr_h, log_inf_h)),
        train_dollars=tr_d,
        inference_dollars=inf_d,
        dollars=tr_d + inf_d,
    )


def log_dollars(n: ArrayLike, d: ArrayLike, deployment: Deployment) -> jax.Array:
    """log of :func:`tco`'s dollars, as one logsumexp (smooth in log N, log D for optimisers)."""
    log_n = jnp.log(as_float(n))
    peak_inf, price_inf = _serving(deployment)
    log_tr = (
        jnp.log(as_float(deployment.price))
        - LOG3600
        - jnp.log(as_float(deployment.peak_flops))
        - jnp.log(as_float(deployment.mfu_train))
        + LOG6
        + log_n
        + jnp.log(as_float(d))
    )
    log_inf = jnp.log(price_inf) - LOG3600 - jnp.log(peak_inf) + LOG2 + log_n + _log_inference_hour_tokens(deployment)
    return jnp.logaddexp(log_tr, log_inf)


# --------------------------------------------------------------------------------------
# Inference-aware optimum (Sardana et al. 2024)
# --------------------------------------------------------------------------------------


def _check_nonnegative(name: str, x: Any) -> None:
    """Raises ``ValueError`` naming ``name`` if a concrete ``x`` is not finite and >= 0."""
    if _is_concrete(x):
        arr = _real_array(name, x)
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite and >= 0 (valid range [0, inf)), got {x!r}")


def _check_target(name: str, x: Any) -> None:
    """Raises ``ValueError`` naming ``name`` if a concrete target loss is not a finite real.

    Targets at or below E are allowed: they give ``inf`` plans (unreachable), never NaN.
    """
    if _is_concrete(x):
        arr = _real_array(name, x)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (a loss in nats), got {x!r}")


def _inference_log_d(params: LawParams, log_gap: jax.Array, log_c2: jax.Array) -> jax.Array:
    """log D solving c1 D^-beta + c2 D^(-beta-1) = gap with a fixed number of Newton steps.

    In x = log D the residual h(x) = logaddexp(log c1 - beta x, log c2 - (beta+1) x) - log gap
    is convex and decreasing with slope in [-beta-1, -beta]. Its root lies in
    [x0, x0 + log(2)/beta], x0 = max(root of each term alone); Newton from x0 (where h >= 0)
    climbs monotonically to the root and each step is clipped to the bracket. The result
    carries the implicit-function gradient dx/dtheta = -(dh/dtheta) / h'(x) of a Newton step
    from the stopped root, without changing its value.
    """
    _, _, lb, alpha, beta = law.logs(params)
    log_c1 = lb + jnp.log1p(beta / alpha)

    def h(x):
        return jnp.logaddexp(log_c1 - beta * x, log_c2 - (beta + 1.0) * x) - log_gap

    def dh(x):
        return -beta - jax.nn.sigmoid(log_c2 - log_c1 - x)

    lo = jnp.maximum((log_c1 - log_gap) / beta, (log_c2 - log_gap) / (beta + 1.0))
    hi = lo + LOG2 / beta

    def step(_, x):
        return jnp.clip(x - h(x) / dh(x), lo, hi)

    x = jax.lax.fori_loop(0, NEWTON_STEPS, step, lo)
    # Without inference the start is the root; keep it bit-exact (Chinchilla's D*).
    x = jax.lax.stop_gradient(jnp.where(jnp.isneginf(log_c2), lo, x))
    delta = h(x) / dh(x)
    return x - delta + jax.lax.stop_gradient(delta)  # value x, implicit-function gradient


@jax.jit
def _optimum_for_tokens(params: LawParams, target_loss: ArrayLike, log_d_inf: jax.Array) -> Allocation:
    e, la, lb, alpha, beta = law.logs(params)
    target = as_float(target_loss)
    E = as_float(params.E)  # not exp(log E): target - E may be tiny, so E must be exact (as in law)
    gap = target - E
    reachable = gap > 0
    log_gap = jnp.log(jnp.where(reachable, gap, 1.0))
    log_c2 = jnp.log(beta) + lb - LOG3 - jnp.log(alpha) + log_d_inf
    log_d = _inference_log_d(params, log_gap, log_c2)
    # N from the constraint L(N, D) = target: N = [A / (target - E - B D^-beta)]^(1/alpha).
    log_rest = log_gap + jnp.log1p(-jnp.exp(lb - beta * log_d - log_gap))
    log_n = (la - log_rest) / alpha
    inf = jnp.asarray(jnp.inf, log_n.dtype)
    n = jnp.where(reachable, jnp.exp(log_n), inf)
    d = jnp.where(reachable, jnp.exp(log_d), inf)
    return Allocation(n, d, jnp.where(reachable, jnp.broadcast_to(target, n.shape), E))


def inference_optimal(params: LawParams, target_loss: ArrayLike, inference_tokens: ArrayLike) -> Allocation:
    """The (N, D) reaching ``target_loss`` with the least training + inference FLOPs.

    Minimises 6 N D + 2 N D_inf subject to L(N, D) = l (Sardana et al. 2024, "Beyond
    Chinchilla-Optimal", Eq. 4). The Lagrange conditions reduce to one equation in D,

        (B + beta B / alpha) D^-beta + (beta B D_inf / (3 alpha)) D^(-beta-1) + E - l = 0,

    solved with a fixed number of safeguarded Newton steps in log D starting from the
    Chinchilla D*(l) (so it jits and vmaps); then N = [A / (l - E - B D^-beta)]^(1/alpha).

    With ``inference_tokens = 0`` this is :func:`chinplan.law.optimal_for_loss`; more inference
    always means a smaller model trained on more tokens. A target at or below E cannot be
    reached: ``n`` and ``d`` are then ``inf`` and ``loss`` is E (never NaN).

    Args:
      params: the law's constants (scalars, or arrays broadcasting with the other inputs).
      target_loss: the loss l to reach.
      inference_tokens: lifetime inference tokens D_inf (>= 0).

    Returns:
      ``Allocation(n, d, loss)``; ``loss`` is the target where reachable.
    """
    _check_target("target_loss", target_loss)
    _check_nonnegative("inference_tokens", inference_tokens)
    return _optimum_for_tokens(params, target_loss, _safe_log(as_float(inference_tokens)))


def weighted_inference_tokens(deployment: Deployment) -> jax.Array:
    """Inference tokens weighted by their price per training-equivalent FLOP.

    Dividing Sardana et al.'s cost c_tr/U_train 6 N D + c_inf 2 N Q (T_in/U_prefill +
    T_out/U_decode), with c = price / (3600 peak), by c_tr/U_train gives 6 N D + 2 N D_w,

        D_w = (c_inf / c_tr) U_train Q (T_in / U_prefill + T_out / U_decode),

    the lifetime tokens to put in the FLOPs-optimal problem to get the dollar-optimal one.
    """
    peak_inf, price_inf = _serving(deployment)
    log_ratio = (
        jnp.log(price_inf)
        - jnp.log(peak_inf)
        - jnp.log(as_float(deployment.price))
        + jnp.log(as_float(deployment.peak_flops))
        + jnp.log(as_float(deployment.mfu_train))
    )
    return jnp.exp(log_ratio + _log_inference_hour_tokens(deployment))


def cost_optimal(params: LawParams, target_loss: ArrayLike, deployment: Deployment) -> Allocation:
    """The (N, D) reaching ``target_loss`` at the least total dollars of :func:`tco`.

    Sardana et al. 2024's cost-weighted optimum: :func:`inference_optimal` with the lifetime
    inference tokens replaced by :func:`weighted_inference_tokens` (prices, peaks and MFUs of
    each phase).
    """
    _check_target("target_loss", target_loss)
    return _optimum_for_tokens(params, target_loss, jnp.log(weighted_inference_tokens(deployment)))


# --------------------------------------------------------------------------------------
# Data-constrained optimum (Muennighoff et al. 2023)
# --------------------------------------------------------------------------------------

def data_constrained_optimal(
    params: LawParams,
    compute: ArrayLike,
    unique_tokens: ArrayLike,
    *,
    iters: int = 48,
    width: float = 12.0,
) -> Allocation:
    """The best (N, D) on the budget line 6 N D = C when only ``unique_tokens`` exist.

    Minimises the data-constrained loss L(N', D') of Muennighoff et al. 2023 (Eq. 5-6, see
    :func:`chinplan.law.loss` with ``unique_tokens``) over x = log N, with D = C / (6N).
    Along the line, dL/dx = -alpha A N'^-alpha dlogN'/dx + beta B D'^-beta dlogD'/dlogD
    increases with x (the loss is unimodal), so ``iters`` bisection steps on the sign of
    dL/dx over [log N_opt(C) - width, log N_opt(C) + width] find the minimum to
    ``2 width / 2^iters`` in log N. (Bisection on the slope rather than golden section on
    the loss: the loss is flat at the optimum, so float32 resolves only about 1e-3 of log N
    from loss values, but 1e-7 from the slope.) A final Newton step from the stopped root
    carries the implicit-function gradient. Fixed iterations: jittable and vmappable. With
    plenty of unique tokens it is the Chinchilla optimum.

    Args:
      params: the law's constants.
      compute: FLOP budget C.
      unique_tokens: unique tokens U_D available (repeated as often as needed).
      iters: bisection steps (static).
      width: half-width of the log-N bracket around the unconstrained optimum (static).

    Returns:
      ``Allocation(n, d, loss)`` with the data-constrained loss.
    """
    if int(iters) != iters or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    log_c = jnp.log(as_float(compute))
    log_u = jnp.log(as_float(unique_tokens))
    log_n0, _ = law.compute_optimal_log(params, log_c)
    shape = jnp.broadcast_shapes(jnp.shape(log_n0), log_c.shape, log_u.shape)
    return _data_constrained(params, jnp.broadcast_to(log_c, shape), jnp.broadcast_to(log_u, shape),
                             jnp.broadcast_to(log_n0, shape), int(iters), float(width))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _data_constrained(params, log_c, log_u, log_n0, iters, width):
    def loss_on_line(theta, x):
        p, lc, lu = theta
        return law.loss(p, jnp.exp(x), jnp.exp(lc - LOG6 - x), unique_tokens=jnp.exp(lu))

    # Elementwise slope and curvature in x = log N (elements are independent, so the
    # gradient of the sum is the elementwise derivative).
    def slope(theta, x):
        return jax.grad(lambda x: jnp.sum(loss_on_line(theta, x)))(x)

    def curvature(theta, x):
        return jax.grad(lambda x: jnp.sum(slope(theta, x)))(x)

    theta = (params, log_c, log_u)
    theta_sg = jax.lax.stop_gradient(theta)  # the bracket search carries no gradient

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        rising = slope(theta_sg, mid) > 0  # the minimum lies left of mid
        return jnp.where(rising, lo, mid), jnp.where(rising, mid, hi)

    n0 = jax.lax.stop_gradient(log_n0)
    lo, hi = jax.lax.fori_loop(0, iters, step, (n0 - width, n0 + width))
    x = 0.5 * (lo + hi)
    curv = curvature(theta, x)
    newton = jnp.where(curv > 0, slope(theta, x) / jnp.where(curv > 0, curv, 1.0), 0.0)
    x = x - newton + jax.lax.stop_gradient(newton)  # value x, implicit-function gradient
    return Allocation(jnp.exp(x), jnp.exp(log_c - LOG6 - x), loss_on_line(theta, x))
