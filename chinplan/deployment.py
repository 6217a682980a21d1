"""A deployment: how a model is trained and served, and at what price.

:class:`Deployment` is the pytree every cost kernel reads (queries, tokens per query,
hardware peaks, MFUs, prices, the roofline decode's fields); any field may be a distribution
of :mod:`chinplan.uncertain`, sampled once per posterior draw (:func:`sample_deployment`,
:func:`with_cost_draws`). :func:`build_deployment` makes one from preset names
(:data:`chinplan.hardware.HARDWARE`), as the command line and scenario files do. Values are
checked here, once, at the boundary (:func:`validate_deployment`); :mod:`chinplan.costs` turns
a deployment into FLOPs, GPU-hours and dollars.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import numpy as np

from chinplan import _checks, arch
from chinplan.hardware import H100_SXM, HARDWARE, Hardware, hardware_name
from chinplan.uncertain import is_distribution, sample_tree, validate_distribution

__all__ = [
    "Deployment",
    "ROOFLINE_FIELDS",
    "PRECISIONS",
    "DECODE_MODES",
    "build_deployment",
    "checked_deployment",
    "describe",
    "sample_deployment",
    "validate_deployment",
    "with_cost_draws",
]

#: The precisions a :class:`~chinplan.hardware.Hardware` gives peaks for, and the decode models.
PRECISIONS = Hardware._fields[: Hardware._fields.index("memory_bytes")]
DECODE_MODES = ("mfu", "roofline")


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
        Dubey et al. 2024, Table 4). Default 0.4.
      mfu_prefill: MFU of prefill (compute bound). Default 0.5, an assumption.
      mfu_decode: MFU of decoding (memory-bandwidth bound, hence low). Default 0.1, an
        assumption.
      price: dollars per GPU-hour for training. Default 2.0, an assumption.
      inference_peak_flops: peak FLOP/s of one serving accelerator; ``None`` = ``peak_flops``.
      inference_price: dollars per GPU-hour for serving; ``None`` = ``price``.
      batch: sequences decoded together per step. ``None`` (the default) is the fixed-MFU
        decode (``mfu_decode``); a number selects the roofline decode (:attr:`decode`,
        :func:`roofline_decode_seconds`), which uses the four fields below.
      context: mean KV-cache length per sequence while decoding, tokens; ``None`` =
        ``input_tokens + output_tokens / 2`` (the cache grows from the prompt by one per
        generated token).
      memory_bandwidth: HBM bytes/s of one serving accelerator (e.g. ``H100_SXM.memory_bandwidth``);
        ``None`` = the H100 SXM's 3.35e12, like ``peak_flops``.
      bytes_per_weight: bytes of a served weight and of a KV-cache element; ``None`` = 2 (bf16).
      kv_bytes_per_token: KV-cache bytes per token of context; ``None`` = from N by
        :func:`chinplan.arch.log_kv_bytes_per_token_for_params` (a Llama 3-style shape).
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
    batch: Any = None
    context: Any = None
    memory_bandwidth: Any = None
    bytes_per_weight: Any = None
    kv_bytes_per_token: Any = None

    @property
    def decode(self) -> str:
        """``"roofline"`` when :attr:`batch` is set, else ``"mfu"`` (decode at ``mfu_decode``)."""
        return "mfu" if self.batch is None else "roofline"


#: The fields only the roofline decode reads (they need ``batch``).
ROOFLINE_FIELDS = ("context", "memory_bandwidth", "bytes_per_weight", "kv_bytes_per_token")
#: Defaults of the roofline fields left ``None``: H100 SXM bandwidth, bf16 weights.
DEFAULT_MEMORY_BANDWIDTH = H100_SXM.memory_bandwidth
DEFAULT_BYTES_PER_WEIGHT = 2.0


#: Valid range of each field: (lo, hi, low_open); hi is included when finite.
_RANGES = {
    "queries": (0.0, math.inf, False),
    "input_tokens": (0.0, math.inf, False),
    "output_tokens": (0.0, math.inf, False),
    "peak_flops": (0.0, math.inf, True),
    "mfu_train": (0.0, 1.0, True),
    "mfu_prefill": (0.0, 1.0, True),
    "mfu_decode": (0.0, 1.0, True),
    "price": (0.0, math.inf, True),  # > 0: a free training GPU-hour makes the dollar optimum 0/0
    "inference_peak_flops": (0.0, math.inf, True),
    "inference_price": (0.0, math.inf, False),
    "batch": (1.0, math.inf, False),
    "context": (0.0, math.inf, False),
    "memory_bandwidth": (0.0, math.inf, True),
    "bytes_per_weight": (0.0, math.inf, True),
    "kv_bytes_per_token": (0.0, math.inf, False),
}


#: Fields that may be None (the serving chip and price are then training's; without
#: ``batch`` the decode runs at the fixed MFU and the roofline fields are unused).
_OPTIONAL = ("inference_peak_flops", "inference_price", "batch", *ROOFLINE_FIELDS)


def validate_deployment(deployment: Deployment) -> Deployment:
    """Checks the concrete fields of ``deployment``; raises ``ValueError`` naming the field.

    Counts and the serving price must be finite and >= 0, the training price and peaks finite
    and > 0, MFUs in (0, 1]; booleans, complex numbers and strings are rejected. Distribution
    fields are checked for finite, valid parameters and a support inside the field's range
    (Uniform/LogUniform bounds inside it; a LogNormal, unbounded above, is refused for an MFU).
    The products of counts the TCO forms (:func:`_check_products`) must be representable in
    the dtype chinplan computes in. Traced values are skipped (validate before ``jit``).
    """
    if not isinstance(deployment, Deployment):
        raise ValueError(f"deployment must be a chinplan.costs.Deployment, got {type(deployment).__name__}")
    _check_roofline_fields(deployment)
    for name, value in deployment._asdict().items():
        if (value is None and name in _OPTIONAL) or _checks.is_traced(value):
            continue
        if is_distribution(value):
            validate_distribution(f"deployment.{name}", value, _RANGES[name])
            continue
        lo, hi, low_open = _RANGES[name]
        _checks.in_range(f"deployment.{name}", value, lo, hi, low_open=low_open)
    _check_products(deployment)
    return deployment


def _check_products(deployment: Deployment) -> None:
    """The products of counts in the TCO, formed in float64 logs on the host, must fit the
    compute dtype: the lifetime tokens Q (T_in + T_out) and the weighted inference tokens
    D_w of :func:`weighted_inference_tokens` (beyond it the plans overflow to inf/NaN).
    Skipped while any field is traced or an unsampled distribution."""
    fields = deployment._asdict()
    if any(_checks.is_traced(v) or is_distribution(v) for v in fields.values()):
        return
    f = {k: _checks.real_array(k, v) for k, v in fields.items() if v is not None}
    with np.errstate(divide="ignore"):
        log_q, log_t = np.log(f["queries"]), np.log(f["input_tokens"] + f["output_tokens"])
        log_w = np.log(f["input_tokens"] / f["mfu_prefill"] + f["output_tokens"] / f["mfu_decode"])
        peak_inf, price_inf = f.get("inference_peak_flops", f["peak_flops"]), f.get("inference_price", f["price"])
        log_ratio = np.log(price_inf) - np.log(f["price"]) + np.log(f["peak_flops"]) - np.log(peak_inf)
    _checks.log_representable("deployment.queries x (input_tokens + output_tokens), the lifetime tokens,", log_q + log_t)
    _checks.log_representable(
        "the weighted inference tokens (inference_price/price) (peak_flops/inference_peak_flops) mfu_train "
        "queries (input_tokens/mfu_prefill + output_tokens/mfu_decode)",
        log_ratio + np.log(f["mfu_train"]) + log_q + log_w,
    )


def sample_deployment(deployment: Deployment, num_draws: int, *, key: jax.Array | None) -> Deployment:
    """Validates ``deployment`` and samples its distribution fields (see :func:`sample_tree`).

    ``None`` fields (inference hardware/price equal to training's) stay ``None``. The draws'
    products of counts are checked too (:func:`_check_products`): a heavy-tailed query volume
    can leave the representable range in some draws.
    """
    sampled = sample_tree(validate_deployment(deployment), num_draws, key=key)
    _check_products(sampled)
    return sampled


def with_cost_draws(
    params, deployment: Deployment, *, key: jax.Array | None = None
) -> tuple:
    """``(params, deployment)`` with the deployment sampled once per posterior draw of ``params``
    (LawParams draws, or extrapolation-aware ExtrapolatedLaw draws as ``plan`` uses).

    The result is the per-draw pytree that ``chinplan.bands`` and friends map over: each
    kernel receives ``theta = (LawParams, Deployment)`` of scalars. ``key`` is required when
    a field of ``deployment`` is a distribution; constant fields are broadcast to the draw axis.
    """
    constants = getattr(params, "law", params)  # an ExtrapolatedLaw's constants, or a LawParams
    return params, sample_deployment(deployment, _checks.law_draws(constants), key=key)


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


def _check_roofline_fields(deployment: Deployment) -> None:
    """ValueError when a roofline-only field is set without ``batch`` (it would be ignored)."""
    if deployment.batch is None:
        for name in ROOFLINE_FIELDS:
            if getattr(deployment, name) is not None:
                raise ValueError(
                    f"deployment.{name} is read only by the roofline decode; set deployment.batch "
                    f"(sequences per decode step, >= 1) too, or leave {name} None"
                )


def checked_deployment(deployment: Any) -> Any:
    """The boundary check of a sampled deployment: structure always, values when concrete."""
    _check_sampled(deployment)
    return validate_deployment(deployment)


# --------------------------------------------------------------------------------------
# Deployments from preset names.
# --------------------------------------------------------------------------------------


def describe(value):
    """A deployment field for JSON: a float, or {'uniform': [lo, hi]} etc. for a distribution."""
    if is_distribution(value):
        return {type(value).__name__.lower(): [float(v) for v in value]}
    return float(value)


def build_deployment(*, hardware, precision, inference_hardware=None, inference_precision=None, decode=None, **fields):
    """A Deployment from hardware preset names and field values, and its description for JSON.

    ``decode="roofline"`` selects the roofline decode (``batch`` defaults to 1): the serving
    chip's HBM bandwidth and the serving precision's bytes per weight
    (:data:`chinplan.arch.WEIGHT_BYTES`) fill ``memory_bandwidth`` and ``bytes_per_weight``
    unless given; ``decode="mfu"`` (or None) is the fixed-MFU decode.

    Preset names are case-insensitive. ``peak_flops`` (``inference_peak_flops``) in
    ``fields`` replaces the preset's peak for hardware without a preset; the description
    then names the hardware ``"custom"``.

    The fields are checked where they are used, once: by :func:`chinplan.decide.draw_pairs`
    (or :func:`chinplan.costs.validate_deployment`).

    Raises:
      ValueError: a precision the chosen hardware does not support.
    """

    def peak(name, precision, role):
        chip = HARDWARE[_checks.one_of("hardware" if role == "training" else "inference_hardware", name, HARDWARE)]
        _checks.one_of("precision" if role == "training" else "inference_precision", precision, PRECISIONS)
        if math.isnan(getattr(chip, precision)):
            supported = ", ".join(p for p in PRECISIONS if not math.isnan(getattr(chip, p)))
            raise ValueError(f"{role} precision {precision} is not supported by {name} (supported: {supported})")
        return chip.peak(precision)

    decode = _checks.one_of("decode", "mfu" if decode is None else decode, DECODE_MODES)
    roofline_given = [k for k in ("batch", *ROOFLINE_FIELDS) if fields.get(k) is not None]
    if decode == "mfu" and roofline_given:
        raise ValueError(f"{', '.join(roofline_given)} need decode = \"roofline\" (the fixed-MFU decode uses mfu_decode)")
    hardware = hardware_name(hardware) or hardware  # any case; unknown names fail in peak()
    inference_hardware = None if inference_hardware is None else hardware_name(inference_hardware) or inference_hardware
    custom_peak, custom_serving = fields.pop("peak_flops", None), fields.pop("inference_peak_flops", None)
    training_peak = peak(hardware, precision, "training") if custom_peak is None else custom_peak
    inference_peak = custom_serving
    if inference_peak is None and (inference_hardware is not None or inference_precision is not None):
        inference_peak = peak(inference_hardware or hardware, inference_precision or precision, "serving")
    training_chip = "custom" if custom_peak is not None else hardware
    serving_chip = "custom" if custom_serving is not None else (inference_hardware or training_chip)
    if decode == "roofline":
        fields.setdefault("batch", None)
        fields["batch"] = 1.0 if fields["batch"] is None else fields["batch"]
        if fields.get("memory_bandwidth") is None:
            if serving_chip == "custom":
                raise ValueError("the roofline decode on a serving chip without a preset (custom peak FLOP/s) needs memory_bandwidth")
            fields["memory_bandwidth"] = HARDWARE[serving_chip].memory_bandwidth
        if fields.get("bytes_per_weight") is None:
            fields["bytes_per_weight"] = arch.WEIGHT_BYTES[inference_precision or precision]
    deployment = Deployment(peak_flops=training_peak, inference_peak_flops=inference_peak, **fields)
    described = {
        "hardware": training_chip,
        "precision": precision,
        "inference_hardware": serving_chip,
        "inference_precision": inference_precision or precision,
        "decode": decode,
    }
    described.update({name: describe(value) for name, value in deployment._asdict().items() if value is not None})
    return deployment, described


# --------------------------------------------------------------------------------------
# The scenario file.
# --------------------------------------------------------------------------------------
