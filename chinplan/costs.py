"""FLOPs, GPU-hours and dollars of training and serving a model: hardware, deployments, TCO.

Accounting (Kaplan et al. 2020, §2.1; the MFU and price conventions of Sardana et al. 2024):

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

Any field of a :class:`Deployment` may be a distribution of :mod:`chinplan.uncertain`;
:func:`sample_deployment` and :func:`with_cost_draws` sample it once per posterior draw.
Concrete inputs are checked at the boundary (:mod:`chinplan._checks`); traced ones are not.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks, arch
from chinplan.format import records_html
from chinplan.hardware import (  # noqa: F401  (re-exported: chinplan.costs.HARDWARE, ...)
    A100, A100_40GB, B200, GB200, H100_PCIE, H100_SXM, H200, HARDWARE, HARDWARE_ALIASES, HARDWARE_SOURCES,
    MI300X, MI325X, TPU_V5E, TPU_V5P, TPU_V6E, Hardware, UnknownHardwareError, hardware_name,
)
from chinplan.optima import _check_target, _optimum_for_tokens, _params_for_loss, _target_gap, golden_min
from chinplan.law import Allocation, LawParams, _log_training_flops, as_float, logs, safe_log
from chinplan.deployment import (  # noqa: F401  (re-exported: chinplan.costs.Deployment, ...)
    DEFAULT_BYTES_PER_WEIGHT,
    DEFAULT_MEMORY_BANDWIDTH,
    ROOFLINE_FIELDS,
    Deployment,
    checked_deployment,
    sample_deployment,
    validate_deployment,
    with_cost_draws,
)

__all__ = [
    "PFLOPS_DAY",
    "Hardware",
    "A100",
    "H100_SXM",
    "H200",
    "HARDWARE",
    "HARDWARE_ALIASES",
    "HARDWARE_SOURCES",
    "hardware_name",
    "UnknownHardwareError",
    "Deployment",
    "ROOFLINE_FIELDS",
    "TokenSeconds",
    "token_seconds",
    "Cost",
    "sample_deployment",
    "with_cost_draws",
    "validate_deployment",
    "representable_costs",
    "representable_plan_costs",
    "check_design",
    "lifetime_tokens",
    "inference_flops",
    "log_inference_flops",
    "pflops_days",
    "training_days",
    "gpus_for_days",
    "gpu_hours",
    "tco",
    "log_dollars",
    "weighted_inference_tokens",
    "log_weighted_inference_tokens",
    "cost_optimal",
]

LOG2 = math.log(2.0)
LOG3600 = math.log(3600.0)

#: One petaflop/s-day: 1e15 FLOP/s for 86,400 s = 8.64e19 FLOPs.
PFLOPS_DAY = 8.64e19

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

    def _repr_html_(self) -> str:
        """A notebook's view: one row per element, every number exact in ``data-values``."""
        return records_html("Cost: training and serving FLOPs, GPU-hours and dollars", self._asdict())


def lifetime_tokens(queries: ArrayLike, input_tokens: ArrayLike, output_tokens: ArrayLike) -> jax.Array:
    """Tokens processed over a model's life: queries x (input + output tokens per query)."""
    if not _checks.is_traced(queries, input_tokens, output_tokens):
        for name, x in (("queries", queries), ("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            _checks.nonnegative(name, x)
    return _lifetime_tokens(queries, input_tokens, output_tokens)


def _lifetime_tokens(queries: ArrayLike, input_tokens: ArrayLike, output_tokens: ArrayLike) -> jax.Array:
    return as_float(queries) * (as_float(input_tokens) + as_float(output_tokens))


def _log_lifetime_tokens(queries: ArrayLike, input_tokens: ArrayLike, output_tokens: ArrayLike) -> jax.Array:
    """log[Q (T_in + T_out)] as a sum of logs: the product of counts is never formed."""
    return safe_log(as_float(queries)) + safe_log(as_float(input_tokens) + as_float(output_tokens))


def _log_inference_flops(log_n: jax.Array, tokens: jax.Array) -> jax.Array:
    return LOG2 + log_n + safe_log(tokens)


def log_inference_flops(n: ArrayLike, tokens: ArrayLike) -> jax.Array:
    """log(2 N T): a forward pass costs about 2N FLOPs per token (Kaplan et al. 2020, §2.1).

    The attention term 2 n_layer n_ctx d_model per token is neglected, as in Sardana et al.
    2024. ``tokens = 0`` gives ``-inf``.
    """
    if not _checks.is_traced(n, tokens):
        _checks.positive("n", n)
        _checks.nonnegative("tokens", tokens)
    return _log_inference_flops(jnp.log(as_float(n)), as_float(tokens))


def inference_flops(n: ArrayLike, tokens: ArrayLike) -> jax.Array:
    """2 N T FLOPs to process ``tokens`` tokens with an ``n``-parameter model."""
    return jnp.exp(log_inference_flops(n, tokens))


def pflops_days(flops: ArrayLike) -> jax.Array:
    """FLOPs in petaflop/s-days (1 PF/s-day = 8.64e19 FLOPs)."""
    if not _checks.is_traced(flops):
        _checks.nonnegative("flops", flops)
    return as_float(flops) / PFLOPS_DAY


def gpu_hours(flops: ArrayLike, peak_flops: ArrayLike, mfu: ArrayLike) -> jax.Array:
    """GPU-hours to execute ``flops`` at ``mfu`` of ``peak_flops``: FLOPs / (3600 peak MFU)."""
    if not _checks.is_traced(flops, peak_flops, mfu):
        _checks.nonnegative("flops", flops)
        _checks.positive("peak_flops", peak_flops)
        _checks.in_range("mfu", mfu, 0.0, 1.0, low_open=True)
    return jnp.exp(jnp.log(as_float(flops)) + _log_hours_per_flop(as_float(peak_flops), as_float(mfu)))


def _gpu_hours_in(train_gpu_hours: ArrayLike) -> np.ndarray:
    """GPU-hours as float64, each >= 0 or +inf (an unreachable plan's); ValueError otherwise."""
    hours = np.asarray(train_gpu_hours, np.float64)
    if not np.all(hours >= 0):
        bad = hours[~(hours >= 0)].flat[0]
        raise ValueError(f"train_gpu_hours must be >= 0 (or inf), got {bad!r}")
    return hours


def training_days(train_gpu_hours: ArrayLike, gpus: ArrayLike) -> np.ndarray:
    """Wall-clock days to train on ``gpus`` accelerators: GPU-hours / (24 K).

    The GPU-hours carry the MFU (:func:`gpu_hours`); this assumes that MFU holds on K
    accelerators (no further loss to scaling, stragglers or restarts). Host NumPy float64,
    for quantiles of GPU-hours (a monotone map: the days' quantiles are these).
    """
    hours = _gpu_hours_in(train_gpu_hours)
    return hours / (24.0 * _checks.positive("gpus", np.asarray(gpus, np.float64)))


def gpus_for_days(train_gpu_hours: ArrayLike, days: ArrayLike) -> np.ndarray:
    """Accelerators needed to train within ``days`` days: ceil(GPU-hours / (24 T)), at the
    MFU of the GPU-hours (see :func:`training_days`); ``inf`` stays ``inf``."""
    hours = _gpu_hours_in(train_gpu_hours)
    return np.ceil(hours / (24.0 * _checks.positive("days", np.asarray(days, np.float64))))


def _log_hours_per_flop(peak: jax.Array, mfu: jax.Array) -> jax.Array:
    """log of the GPU-hours one FLOP takes at ``mfu`` of ``peak`` FLOP/s: -log(3600 peak MFU)."""
    return -LOG3600 - jnp.log(peak) - jnp.log(mfu)


class _Rates(NamedTuple):
    """Logs of the TCO's rates: everything in it but N and D."""

    train_hours: jax.Array  # GPU-hours per training FLOP: -log(3600 P U_train)
    inference_hours: jax.Array  # GPU-hours per 2N: log[Q (T_in/U_pf + T_out/U_dec)] - log(3600 P_inf); fixed-MFU decode only
    price: jax.Array  # log dollars per training GPU-hour
    inference_price: jax.Array  # log dollars per serving GPU-hour


def _rates(deployment: Deployment) -> _Rates:
    """The TCO of Sardana et al. 2024 (§3), written once in log form.

    cost = c_tr 6 N D / U_train + c_inf 2 N Q (T_in / U_prefill + T_out / U_decode),
    c = price / (3600 peak): every term is exp(log N [+ log 6 + log D] + one of these rates).
    """
    peak = as_float(deployment.peak_flops)
    peak_inf = peak if deployment.inference_peak_flops is None else as_float(deployment.inference_peak_flops)
    price = as_float(deployment.price)
    price_inf = price if deployment.inference_price is None else as_float(deployment.inference_price)
    q, t_in, t_out = (as_float(x) for x in (deployment.queries, deployment.input_tokens, deployment.output_tokens))
    w = t_in / as_float(deployment.mfu_prefill) + t_out / as_float(deployment.mfu_decode)
    return _Rates(
        train_hours=_log_hours_per_flop(peak, as_float(deployment.mfu_train)),
        inference_hours=safe_log(q) + safe_log(w) + _log_hours_per_flop(peak_inf, 1.0),
        price=jnp.log(price),
        inference_price=jnp.log(price_inf),
    )


def representable_costs(values: dict, reached: Any, what: str) -> None:
    """A finite plan whose cost overflowed the compute dtype is an input error, not a result:
    huge prices, query volumes or tiny MFUs give costs beyond float32's 3.4e38 that would
    print as null. ``values`` maps quantity names to host arrays; ``reached`` marks the
    entries whose plan is finite (an unreachable plan's inf is honest). ValueError naming
    the quantity."""
    for field, value in values.items():
        bad = np.asarray(reached) & ~np.isfinite(np.asarray(value, np.float64))
        if np.any(bad):
            dtype = np.dtype(jnp.result_type(float))
            raise ValueError(
                f"{field} of {what} overflows {dtype.name}, the dtype chinplan computes in (at most "
                f"{float(np.finfo(dtype).max):.6g}): the deployment's price, query volume or MFU is out of any "
                "realistic range (or enable JAX's x64 mode for float64)"
            )


def representable_plan_costs(values: dict, what: str) -> None:
    """:func:`representable_costs` of a plan's bands (``values`` with ``"n"`` and ``"d"``):
    an entry counts as reached where N and D are finite and 6ND is below the dtype's largest
    float / 1e3. A plan that is itself near the range (draws that barely reach a target near
    their E need astronomical N and D) has an honest inf cost, not an input error; the margin
    allows for quantiles of N, D and costs taken over different draws."""
    edge = np.log(float(np.finfo(np.dtype(jnp.result_type(float))).max)) - np.log(1e3)
    n, d = (np.asarray(values[k], np.float64) for k in ("n", "d"))
    with np.errstate(divide="ignore", invalid="ignore"):
        reached = np.isfinite(n) & np.isfinite(d) & (np.log(6.0) + np.log(n) + np.log(d) < edge)
    representable_costs({k: v for k, v in values.items() if k not in ("n", "d")}, reached, what)


def _serving_peak(deployment: Deployment) -> jax.Array:
    return as_float(deployment.peak_flops if deployment.inference_peak_flops is None else deployment.inference_peak_flops)


def _log_token_seconds(log_n: jax.Array, deployment: Deployment) -> tuple[jax.Array, jax.Array]:
    """log GPU-seconds of one prefill token and of one decode token of an N-parameter model.

    Prefill is compute bound: 2N / (P U_prefill). The fixed-MFU decode is 2N / (P U_decode).
    The roofline decode (``batch`` set; Williams et al. 2009's roofline, as LLM serving
    calculators apply it, e.g. Pope et al. 2022, §2) takes each step of a batch of B
    sequences as long as the slower of its compute and its memory traffic, which is every
    weight read once (N w bytes) and each sequence's KV cache read (S k bytes); per token

        t_decode = max(2N / (P U_prefill), (N w / B + S k) / BW),

    w bytes per weight, k KV bytes per token of context, S the mean context, BW the HBM
    bandwidth. The attention FLOPs (about 4 L S d per token) are neglected as in the 2N rule.
    """
    log_peak = jnp.log(_serving_peak(deployment))
    log_prefill = LOG2 + log_n - log_peak - jnp.log(as_float(deployment.mfu_prefill))
    if deployment.batch is None:
        return log_prefill, LOG2 + log_n - log_peak - jnp.log(as_float(deployment.mfu_decode))
    w = DEFAULT_BYTES_PER_WEIGHT if deployment.bytes_per_weight is None else deployment.bytes_per_weight
    log_w = jnp.log(as_float(w))
    bw = DEFAULT_MEMORY_BANDWIDTH if deployment.memory_bandwidth is None else deployment.memory_bandwidth
    if deployment.kv_bytes_per_token is None:
        log_kv = arch.log_kv_bytes_per_token_for_params(log_n, log_w)
    else:
        log_kv = safe_log(as_float(deployment.kv_bytes_per_token))
    if deployment.context is None:
        context = as_float(deployment.input_tokens) + 0.5 * as_float(deployment.output_tokens)
    else:
        context = as_float(deployment.context)
    log_bytes = jnp.logaddexp(log_n + log_w - jnp.log(as_float(deployment.batch)), safe_log(context) + log_kv)
    return log_prefill, jnp.maximum(log_prefill, log_bytes - jnp.log(as_float(bw)))


def _log_inference_hours(log_n: jax.Array, deployment: Deployment, rates: _Rates) -> jax.Array:
    """log GPU-hours of serving an N-parameter model: Q (T_in t_prefill + T_out t_decode) / 3600.

    The fixed-MFU decode is linear in N (``rates.inference_hours`` per 2N, Sardana et al.
    2024); the roofline decode is not (:func:`_log_token_seconds`).
    """
    if deployment.batch is None:
        return LOG2 + log_n + rates.inference_hours
    log_prefill, log_decode = _log_token_seconds(log_n, deployment)
    t_in, t_out = as_float(deployment.input_tokens), as_float(deployment.output_tokens)
    per_query = jnp.logaddexp(safe_log(t_in) + log_prefill, safe_log(t_out) + log_decode)
    return safe_log(as_float(deployment.queries)) - LOG3600 + per_query


class TokenSeconds(NamedTuple):
    """GPU-seconds of one prefill token and of one decode token (arrays)."""

    prefill: jax.Array
    decode: jax.Array


def token_seconds(n: ArrayLike, deployment: Deployment) -> TokenSeconds:
    """GPU-seconds per prefill token and per decode token of an ``n``-parameter model.

    Fixed-MFU decode: 2N / (P U_decode); roofline decode (``deployment.batch`` set):
    max(2N / (P U_prefill), (N w / B + S k) / BW), see :func:`_log_token_seconds`. Tokens per
    second per accelerator are the reciprocals.
    """
    if not _checks.is_traced(n):
        _checks.positive("n", n)
    checked_deployment(deployment)
    return TokenSeconds(*(jnp.exp(x) for x in _log_token_seconds(jnp.log(as_float(n)), deployment)))


def _check_design(n: ArrayLike, d: ArrayLike) -> None:
    if not _checks.is_traced(n, d):
        _checks.positive("n", n)
        _checks.positive("d", d)


def check_design(n: ArrayLike, d: ArrayLike, name: str = "n x d") -> None:
    """Fixed designs (N, D) that can be priced: every N and D finite and > 0, and the largest
    training FLOPs 6 N D (over the broadcast designs) representable in the compute dtype: every
    cost of a design scales with them, so beyond it a cost is inf, not a result. Concrete
    values only (tracers pass); ValueError naming ``name`` and the FLOPs' order of magnitude."""
    if _checks.is_traced(n, d):
        return
    n, d = _checks.positive("n", n), _checks.positive("d", d)
    if np.size(n) and np.size(d):
        top = float(np.max(math.log(6.0) + np.log(n) + np.log(d)))
        _checks.log_representable(f"{name}: the training FLOPs 6 N D of the largest design", top)


def tco(n: ArrayLike, d: ArrayLike, deployment: Deployment) -> Cost:
    """Total cost of ownership of training ``n`` parameters on ``d`` tokens and serving them.

    FLOPs = 6 N D + 2 N Q (T_in + T_out);
    GPU-hours = 6 N D / (3600 P U_train) + 2 N Q (T_in/U_prefill + T_out/U_decode) / (3600 P_inf);
    dollars = price * train GPU-hours + inference price * inference GPU-hours
    (Sardana et al. 2024, §3). Computed from logarithms (:func:`_rates`).

    Args:
      n: parameters N.
      d: training tokens D.
      deployment: a :class:`Deployment` of arrays (sample distributions first).

    Returns:
      A :class:`Cost` broadcast over the inputs.
    """
    check_design(n, d)
    checked_deployment(deployment)
    log_n = jnp.log(as_float(n))
    r = _rates(deployment)
    log_tr = _log_training_flops(log_n, jnp.log(as_float(d)))
    log_inf = LOG2 + log_n + _log_lifetime_tokens(deployment.queries, deployment.input_tokens, deployment.output_tokens)
    log_tr_h = log_tr + r.train_hours
    log_inf_h = _log_inference_hours(log_n, deployment, r)
    tr_f, inf_f, tr_h, inf_h = (jnp.exp(x) for x in (log_tr, log_inf, log_tr_h, log_inf_h))
    tr_d, inf_d = jnp.exp(r.price + log_tr_h), jnp.exp(r.inference_price + log_inf_h)
    cost = Cost(
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
    if not _checks.is_traced(n, d, deployment):  # concrete: an overflow is refused, not returned
        representable_costs(cost._asdict(), True, f"tco(n={_checks.show(n, 40)}, d={_checks.show(d, 40)})")
    return cost


def log_dollars(n: ArrayLike, d: ArrayLike, deployment: Deployment) -> jax.Array:
    """log of :func:`tco`'s dollars, as one logaddexp (smooth in log N, log D for optimisers)."""
    _check_design(n, d)
    checked_deployment(deployment)
    log_n = jnp.log(as_float(n))
    return _log_dollars(log_n, jnp.log(as_float(d)), deployment)


def _log_dollars(log_n: jax.Array, log_d: jax.Array, deployment: Deployment) -> jax.Array:
    """log of :func:`tco`'s dollars from log N and log D, unchecked."""
    r = _rates(deployment)
    log_tr = _log_training_flops(log_n, log_d)
    if deployment.batch is None:  # the fixed-MFU form, in its original order of operations
        return jnp.logaddexp(r.price + r.train_hours + log_tr, r.inference_price + r.inference_hours + LOG2 + log_n)
    return jnp.logaddexp(r.price + r.train_hours + log_tr, r.inference_price + _log_inference_hours(log_n, deployment, r))


def _linear_serving(deployment: Deployment) -> None:
    if deployment.batch is not None:
        raise ValueError(
            "weighted inference tokens exist only for the fixed-MFU decode (deployment.batch=None): "
            "the roofline decode's serving cost is not linear in N (use chinplan.cost_optimal)"
        )


def _log_average_weighted_tokens(log_n: jax.Array, deployment: Deployment) -> jax.Array:
    """log of the serving dollars of an N-parameter model over 2N training dollars per FLOP:
    the weighted tokens D_w of :func:`weighted_inference_tokens` averaged over N (equal to it
    for the fixed-MFU decode; for the roofline decode, a function of N)."""
    r = _rates(deployment)
    return r.inference_price + _log_inference_hours(log_n, deployment, r) - LOG2 - log_n - r.price - r.train_hours


def log_weighted_inference_tokens(deployment: Deployment) -> jax.Array:
    """log of :func:`weighted_inference_tokens`, unchecked (for callers that checked already)."""
    _linear_serving(deployment)
    r = _rates(deployment)
    return r.inference_price + r.inference_hours - r.price - r.train_hours


def weighted_inference_tokens(deployment: Deployment) -> jax.Array:
    """Inference tokens weighted by their price per training-equivalent FLOP.

    Dividing Sardana et al.'s cost c_tr/U_train 6 N D + c_inf 2 N Q (T_in/U_prefill +
    T_out/U_decode), with c = price / (3600 peak), by c_tr/U_train gives 6 N D + 2 N D_w,

        D_w = (c_inf / c_tr) U_train Q (T_in / U_prefill + T_out / U_decode),

    the lifetime tokens to put in the FLOPs-optimal problem to get the dollar-optimal one.
    Only for the fixed-MFU decode: the roofline's serving cost is not linear in N.
    """
    checked_deployment(deployment)
    return jnp.exp(log_weighted_inference_tokens(deployment))


# --------------------------------------------------------------------------------------
# The least-dollar plan for a target loss
# --------------------------------------------------------------------------------------


def cost_optimal(params: LawParams, target_loss: ArrayLike, deployment: Deployment) -> Allocation:
    """The (N, D) reaching ``target_loss`` at the least total dollars of :func:`chinplan.costs.tco`.

    Sardana et al. 2024's cost-weighted optimum: :func:`inference_optimal` with the lifetime
    inference tokens replaced by :func:`chinplan.costs.weighted_inference_tokens` (prices, peaks and MFUs of
    each phase).

    With the roofline decode (``deployment.batch`` set) the serving cost is not linear in N,
    so there are no weighted tokens: the least-dollar plan on the iso-loss curve is found by
    a golden-section search over log D (:func:`_roofline_optimum`).
    """
    _check_target(params, target_loss)
    checked_deployment(deployment)
    if deployment.batch is not None:
        return _roofline_optimum(params, target_loss, deployment)
    return _optimum_for_tokens(params, target_loss, log_weighted_inference_tokens(deployment))


_LN10 = math.log(10.0)


#: Golden-section steps of :func:`_roofline_optimum`: its bracket (log D*(l) to 3 decades
#: beyond the fixed-weight plan, some 7 to 30 units of log D) shrinks by 0.618^60 = 3e-13.
ROOFLINE_STEPS = 60


@jax.jit
def _roofline_optimum(params: LawParams, target_loss: ArrayLike, deployment: Deployment) -> Allocation:
    """The least-dollar plan reaching ``target_loss`` when serving cost is any increasing
    function of N (the roofline decode of :mod:`chinplan.costs`).

    On the iso-loss curve N(D) = [A / (l - E - B D^-beta)]^(1/alpha) the TCO is minimised over
    log D by golden section. Serving cost rises with N, so the optimum has N <= N*(l) and
    D >= D*(l), the Chinchilla plan: the bracket runs from log D*(l) to the larger of
    log D*(l) + 3 decades and 3 decades beyond the fixed-weight optimum whose weighted tokens
    are the serving dollars per parameter at N*(l).
    """
    _, la, lb, alpha, beta = logs(params)
    target, E, _, reachable, log_gap = _target_gap(params, target_loss)
    log_n0 = (la + jnp.log1p(alpha / beta) - log_gap) / alpha
    log_d0 = (lb + jnp.log1p(beta / alpha) - log_gap) / beta
    log_w = _log_average_weighted_tokens(log_n0, deployment)
    log_d_w = jnp.log(_optimum_for_tokens(params, target, log_w).d)
    lo = log_d0
    hi = jnp.maximum(lo, jnp.where(jnp.isfinite(log_d_w), log_d_w, lo)) + 3.0 * _LN10

    def log_n_of(log_d):
        return jnp.log(_params_for_loss(params, jnp.exp(log_d), target))

    def objective(log_d):
        log_n = log_n_of(log_d)
        ok = jnp.isfinite(log_n)
        return jnp.where(ok, _log_dollars(jnp.where(ok, log_n, 0.0), log_d, deployment), jnp.inf)

    log_d = golden_min(objective, lo, hi, ROOFLINE_STEPS)
    log_n = log_n_of(log_d)
    ok = reachable & jnp.isfinite(log_n)
    inf = jnp.asarray(jnp.inf, log_n.dtype)
    n = jnp.where(ok, jnp.exp(log_n), inf)
    d = jnp.where(ok, jnp.exp(log_d), inf)
    return Allocation(n, d, jnp.where(ok, jnp.broadcast_to(target, n.shape), E))
