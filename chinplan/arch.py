"""Architecture helpers, so that a plan can be stated as a concrete shape.

Parameter counts of a decoder-only transformer, exact and with a breakdown; the number and
bytes of the scalars of any JAX pytree; training and inference memory per parameter; LoRA's
trainable parameters; and a concrete shape for a parameter budget. The rough rule these
refine is (Kaplan et al. 2020, Table 1)

    N ≈ 12 L d² + V d        (attention 4d², MLP with a 4d hidden layer 8d², embeddings V d).

Everything here runs on the host with Python integers (counts of 1e12 do not wrap around in
int32); none of it is a hot path, and none of it is traced, except
:func:`log_kv_bytes_per_token_for_params`, the smooth KV-cache size the roofline serving cost
(:mod:`chinplan.costs`) evaluates inside kernels.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from chinplan import _checks

__all__ = [
    "TransformerShape",
    "ParamCount",
    "ShapeFit",
    "LLAMA2_7B",
    "LLAMA3_8B",
    "GPT2_SMALL",
    "SHAPES",
    "WEIGHT_BYTES",
    "TRAINING_BYTES_PER_PARAM",
    "validate_shape",
    "param_breakdown",
    "transformer_params",
    "pytree_params",
    "pytree_bytes",
    "training_bytes_per_param",
    "training_memory_bytes",
    "weight_memory_bytes",
    "lora_params",
    "shape_for_params",
    "KV_WIDTH",
    "KV_ASPECT_RATIO",
    "kv_bytes_per_token",
    "layers_for_params",
    "log_kv_bytes_per_token_for_params",
]

_NORMS = {"rmsnorm": 1, "layernorm": 2}  # parameters per channel: scale, or scale and bias
_LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


class TransformerShape(NamedTuple):
    """Shape of a decoder-only transformer (pre-norm, as in GPT-2 and Llama).

    Attributes:
      n_layers: number of transformer blocks L.
      d_model: residual width d; head_dim = d_model / n_heads.
      n_heads: query heads H.
      vocab_size: tokens V.
      n_kv_heads: key/value heads (grouped-query attention); ``None`` means n_heads (MHA).
        K and V are each n_kv_heads * head_dim wide.
      d_ff: MLP hidden width; ``None`` means round(mlp_ratio * d_model).
      mlp_ratio: used only when d_ff is None.
      gated_mlp: SwiGLU (gate, up, down: 3 matrices) instead of up, down (2).
      tied_embeddings: the output head reuses the token embedding matrix.
      max_positions: rows of a learned positional embedding; 0 for RoPE/ALiBi.
      bias: biases on every linear layer of the blocks (GPT-2); never on the output head.
      norm: ``"rmsnorm"`` (scale only, d) or ``"layernorm"`` (scale and bias, 2d); two per
        block and one final.
    """

    n_layers: int
    d_model: int
    n_heads: int
    vocab_size: int
    n_kv_heads: int | None = None
    d_ff: int | None = None
    mlp_ratio: float = 4.0
    gated_mlp: bool = False
    tied_embeddings: bool = False
    max_positions: int = 0
    bias: bool = False
    norm: str = "rmsnorm"

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


#: Llama 2 7B (Touvron et al. 2023; meta-llama/Llama-2-7b-hf config.json): 6,738,415,616.
LLAMA2_7B = TransformerShape(32, 4096, 32, 32000, d_ff=11008, gated_mlp=True)
#: Llama 3 8B (Meta 2024; meta-llama/Meta-Llama-3-8B config.json): 8,030,261,248.
LLAMA3_8B = TransformerShape(32, 4096, 32, 128256, n_kv_heads=8, d_ff=14336, gated_mlp=True)
#: GPT-2 small (Radford et al. 2019; openai-community/gpt2 config.json): 124,439,808.
GPT2_SMALL = TransformerShape(
    12, 768, 12, 50257, tied_embeddings=True, max_positions=1024, bias=True, norm="layernorm"
)
SHAPES = {"llama2-7b": LLAMA2_7B, "llama3-8b": LLAMA3_8B, "gpt2-small": GPT2_SMALL}


def validate_shape(shape: TransformerShape) -> TransformerShape:
    """Checks ``shape`` and returns it with Python ints and n_kv_heads and d_ff filled in.

    Raises:
      ValueError: naming the field, its value and the valid range.
    """
    if not isinstance(shape, TransformerShape):
        raise ValueError(f"shape must be a chinplan.arch.TransformerShape, got {type(shape).__name__}")
    n_layers, d, heads, vocab = (_checks.integer(f, getattr(shape, f)) for f in ("n_layers", "d_model", "n_heads", "vocab_size"))
    if d % heads:
        raise ValueError(f"d_model must be divisible by n_heads={heads}, got d_model={shape.d_model!r}")
    kv = heads if shape.n_kv_heads is None else _checks.integer("n_kv_heads", shape.n_kv_heads)
    if heads % kv:
        raise ValueError(f"n_kv_heads must divide n_heads={heads}, got n_kv_heads={shape.n_kv_heads!r}")
    if shape.d_ff is None:
        d_ff = _checks.integer("d_ff", round(_checks.positive_number("mlp_ratio", shape.mlp_ratio) * d))
    else:
        d_ff = _checks.integer("d_ff", shape.d_ff)
    for flag in ("gated_mlp", "tied_embeddings", "bias"):
        _checks.flag(flag, getattr(shape, flag))
    _checks.one_of("norm", shape.norm, _NORMS)
    return shape._replace(
        n_layers=n_layers, d_model=d, n_heads=heads, vocab_size=vocab, n_kv_heads=kv, d_ff=d_ff,
        max_positions=_checks.integer("max_positions", shape.max_positions, low=0),
        gated_mlp=bool(shape.gated_mlp), tied_embeddings=bool(shape.tied_embeddings), bias=bool(shape.bias),
    )  # fmt: skip


class ParamCount(NamedTuple):
    """Exact parameter count of a :class:`TransformerShape`, by part (Python ints).

    ``attention`` and ``mlp`` include their biases; ``embeddings`` holds the token embedding,
    the learned positional embedding and an untied output head; ``norms`` every norm.
    """

    attention: int
    mlp: int
    embeddings: int
    norms: int

    @property
    def total(self) -> int:
        return self.attention + self.mlp + self.embeddings + self.norms

    @property
    def non_embedding(self) -> int:
        """Kaplan et al. 2020's N: everything but the embeddings and output head."""
        return self.total - self.embeddings


def _matrices(s: TransformerShape) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each weight matrix of one block of a validated shape."""
    d, q, kv = s.d_model, s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim
    mats = {"q": (d, q), "k": (d, kv), "v": (d, kv), "o": (q, d), "up": (d, s.d_ff), "down": (s.d_ff, d)}
    if s.gated_mlp:
        mats["gate"] = (d, s.d_ff)
    return mats


def param_breakdown(shape: TransformerShape) -> ParamCount:
    """Exact parameter count of ``shape``, by part.

    Per block: attention d·H·h + 2·d·K·h + H·h·d (q, k, v, o; h = head_dim, K = n_kv_heads),
    MLP (3 if gated else 2)·d·d_ff, plus biases if ``bias``; two norms per block and a final
    norm. Embeddings: V·d, plus max_positions·d, plus V·d for an untied output head.
    """
    s = validate_shape(shape)
    mats = _matrices(s)

    def block_part(names: tuple[str, ...]) -> int:  # weights (and biases) of one block
        return sum(d_in * d_out + (d_out if s.bias else 0) for n, (d_in, d_out) in mats.items() if n in names)

    embeddings = s.vocab_size * s.d_model * (1 if s.tied_embeddings else 2) + s.max_positions * s.d_model
    return ParamCount(
        attention=s.n_layers * block_part(("q", "k", "v", "o")),
        mlp=s.n_layers * block_part(("gate", "up", "down")),
        embeddings=embeddings,
        norms=(2 * s.n_layers + 1) * _NORMS[s.norm] * s.d_model,
    )


def transformer_params(shape: TransformerShape, *, embeddings: bool = True) -> int:
    """Exact parameter count of ``shape`` (a Python int); see :func:`param_breakdown`.

    Args:
      shape: the transformer.
      embeddings: include the token and positional embeddings and the output head (the
        total, as Hoffmann et al. 2022 count N); ``False`` gives Kaplan et al. 2020's
        non-embedding count.
    """
    embeddings = _checks.flag("embeddings", embeddings)
    count = param_breakdown(shape)
    return count.total if embeddings else count.non_embedding


def _leaf_shape_dtype(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):  # jax/NumPy arrays, ShapeDtypeStruct
        return tuple(leaf.shape), np.dtype(leaf.dtype)
    array = np.asarray(leaf)
    return array.shape, array.dtype


def pytree_params(tree: Any) -> int:
    """Number of scalars in the leaves of ``tree`` (arrays, ``jax.ShapeDtypeStruct``,
    or anything ``numpy.asarray`` accepts); e.g. of ``jax.eval_shape(model.init, ...)``."""
    return sum(math.prod(_leaf_shape_dtype(x)[0]) for x in jax.tree_util.tree_leaves(tree))


def pytree_bytes(tree: Any) -> int:
    """Bytes of the leaves of ``tree``: size × ``dtype.itemsize`` (a sub-byte dtype such as
    int4 counts as its NumPy itemsize, 1 byte, so packed storage is overestimated)."""
    return sum(math.prod(s) * t.itemsize for s, t in map(_leaf_shape_dtype, jax.tree_util.tree_leaves(tree)))


#: Bytes per parameter of weights for inference; see :func:`weight_memory_bytes`.
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}

_PRECISION_BYTES = {  # (weights, gradients, fp32 master copy)
    "fp32": (4, 4, 0),
    "bf16-mixed": (2, 2, 4),
    "fp16-mixed": (2, 2, 4),
    "bf16": (2, 2, 0),
}
_OPTIMIZER_BYTES = {"adam": 8.0, "adamw": 8.0, "adam-8bit": 2.0, "sgd-momentum": 4.0, "sgd": 0.0, "adafactor": 0.0}

#: ``{(precision, optimizer): bytes per parameter}`` of training state; see
#: :func:`training_bytes_per_param`.
TRAINING_BYTES_PER_PARAM = {
    (p, o): float(sum(w) + s) for p, w in _PRECISION_BYTES.items() for o, s in _OPTIMIZER_BYTES.items()
}


def training_bytes_per_param(precision: str = "bf16-mixed", optimizer: str = "adam") -> float:
    """Bytes per parameter of weights + gradients + fp32 master copy + optimizer state.

    ============  =======  ====  ============  =========  =========  ========================
    precision     w+g+m    adam  sgd-momentum  sgd        adafactor  adam-8bit
    ============  =======  ====  ============  =========  =========  ========================
    fp32          4+4+0    16    12            8          8          10
    bf16-mixed    2+2+4    16    12            8          8          10
    bf16          2+2+0    12    8             4          4          6
    ============  =======  ====  ============  =========  =========  ========================

    Optimizer state, kept in fp32 whatever the weights' precision: Adam/AdamW two moments,
    8 B (Kingma & Ba 2015); SGD with momentum one buffer, 4 B; plain SGD none; Adafactor
    about 0 B, an approximation: its factored second moment is O(rows + cols) per matrix and
    by default it keeps no momentum (Shazeer & Stern 2018; add 4 B with beta1 > 0); 8-bit
    Adam two 8-bit moments, 2 B, block-wise scales neglected (Dettmers et al. 2022).
    Mixed precision (Micikevicius et al. 2018) keeps an fp32 master copy: 2 + 2 + 12 = 16 B
    with Adam (Rajbhandari et al. 2020, ZeRO, §3.1); "bf16" is pure bf16
    training without it, 12 B with Adam (the same accounting less the master copy). ``fp16-mixed`` equals
    ``bf16-mixed``. Activations, KV caches, communication buffers and fragmentation are NOT
    included: they depend on batch, sequence length and recomputation.
    """
    _checks.one_of("precision", precision, _PRECISION_BYTES)
    _checks.one_of("optimizer", optimizer, _OPTIMIZER_BYTES)
    return TRAINING_BYTES_PER_PARAM[precision, optimizer]


def training_memory_bytes(n_params: float, *, precision: str = "bf16-mixed", optimizer: str = "adam") -> float:
    """Training-state memory, n_params × :func:`training_bytes_per_param`; excludes activations.

    E.g. a 7e9-parameter model with mixed-precision Adam needs 7e9 × 16 B = 112 GB before
    activations (Rajbhandari et al. 2020, §3.1), i.e. sharding (ZeRO/FSDP) across at least two 80 GB GPUs.
    """
    return _checks.positive_number("n_params", n_params) * training_bytes_per_param(precision, optimizer)


def weight_memory_bytes(n_params: float, *, precision: str = "bf16") -> float:
    """Inference weight memory, n_params × bytes per weight; excludes KV cache and activations.

    =========  ======  ==========================================================
    precision  bytes   note
    =========  ======  ==========================================================
    fp32       4       IEEE single
    bf16/fp16  2       the usual serving precision
    fp8/int8   1       e.g. H100 FP8 (E4M3), LLM.int8() (Dettmers et al. 2022)
    int4       0.5     packed two per byte, as GPTQ/AWQ; group scales neglected
    =========  ======  ==========================================================
    """
    _checks.one_of("precision", precision, WEIGHT_BYTES)
    return _checks.positive_number("n_params", n_params) * WEIGHT_BYTES[precision]


def lora_params(
    shape_or_matrices: TransformerShape | Iterable[tuple[int, int]], rank: int, *, targets: Iterable[str] = ("q", "v")
) -> int:
    """Trainable parameters of LoRA: r·(d_in + d_out) per adapted matrix (Hu et al. 2021, §4.1).

    Args:
      shape_or_matrices: a :class:`TransformerShape` (every block is adapted at ``targets``)
        or an iterable of ``(d_in, d_out)`` pairs, each adapted once (``targets`` unused).
      rank: the LoRA rank r.
      targets: block matrices to adapt, among q, k, v, o, gate (gated MLPs only), up, down.
    """
    r = _checks.integer("rank", rank)
    if not isinstance(shape_or_matrices, TransformerShape):
        pairs = [(_checks.integer("d_in", a), _checks.integer("d_out", b)) for a, b in _pairs(shape_or_matrices)]
        return sum(r * (a + b) for a, b in pairs)
    s = validate_shape(shape_or_matrices)
    mats = _matrices(s)
    valid = [n for n in _LORA_TARGETS if n in mats]
    try:
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
    except TypeError:  # not iterable
        raise ValueError(f"targets must be a name or a sequence of names among {valid}, got {_checks.show(targets)}") from None
    for t in targets:
        if not isinstance(t, str) or t not in mats:
            raise ValueError(f"targets must be among {valid} for this shape, got {_checks.show(t)}")
    return s.n_layers * sum(r * sum(mats[t]) for t in dict.fromkeys(targets))


def _pairs(matrices) -> list[tuple]:
    """``(d_in, d_out)`` pairs of an iterable; ValueError naming shape_or_matrices otherwise."""
    what = "shape_or_matrices must be a TransformerShape or an iterable of (d_in, d_out) pairs"
    try:
        items = list(matrices)
    except TypeError:
        raise ValueError(f"{what}, got {_checks.show(matrices)}") from None
    for item in items:
        if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 2:
            raise ValueError(f"{what}, got the entry {_checks.show(item)}")
    return [tuple(item) for item in items]


class ShapeFit(NamedTuple):
    """A concrete shape for a parameter budget: the shape, its exact count and
    rel_error = count / n_params - 1."""

    shape: TransformerShape
    n_params: int
    rel_error: float


def shape_for_params(
    n_params: float,
    *,
    aspect_ratio: float = 128.0,
    head_dim: int = 128,
    heads_per_kv: int = 1,
    vocab_size: int = 32000,
    tied_embeddings: bool = False,
    multiple_of: int = 128,
    ff_multiple_of: int = 256,
    embeddings: bool = True,
) -> ShapeFit:
    """A Llama-style shape (SwiGLU, RoPE, RMSNorm, no biases) with about ``n_params`` parameters.

    d_model is a multiple of lcm(multiple_of, head_dim·heads_per_kv); n_heads = d_model /
    head_dim; d_ff = 8/3·d_model rounded to ``ff_multiple_of`` (Shazeer 2020; Touvron et al.
    2023); d_model / n_layers ≈ ``aspect_ratio`` (Llama 3 8B: 128, Llama 2 70B: 102).

    Each width d_k = k·step owns the budgets between the geometric midpoints of
    g(d_{k-1}), g(d_k), g(d_{k+1}), where g(d) is the count at n_layers = d / aspect_ratio;
    the candidates are the (d_k, n_layers) whose counts fall in d_k's range, and the one
    nearest ``n_params`` is returned. The candidate set does not depend on ``n_params``, so
    the chosen count and d_model are non-decreasing in it. For 1e8 <= n_params <= 1e12 and
    the defaults the count is within 6% (2% above 1e10); below the smallest shape
    (d = step, one layer) that shape is returned with its large error.

    Args:
      n_params: parameter budget (> 0); with ``embeddings=False`` a non-embedding budget.
      aspect_ratio: target d_model / n_layers.
      head_dim, heads_per_kv: head width; query heads per KV head (1 = MHA, 4 = Llama 3 8B).
      vocab_size, tied_embeddings: the embeddings.
      multiple_of, ff_multiple_of: rounding of d_model and d_ff.
      embeddings: count the embeddings and output head toward ``n_params``.
    """
    target = _checks.positive_number("n_params", n_params)
    ar = _checks.positive_number("aspect_ratio", aspect_ratio)
    hd, g, vocab = _checks.integer("head_dim", head_dim), _checks.integer("heads_per_kv", heads_per_kv), _checks.integer("vocab_size", vocab_size)
    step = math.lcm(_checks.integer("multiple_of", multiple_of), hd * g)
    ffm = _checks.integer("ff_multiple_of", ff_multiple_of)
    embeddings, tied_embeddings = _checks.flag("embeddings", embeddings), _checks.flag("tied_embeddings", tied_embeddings)

    def make(k: int, layers: int) -> TransformerShape:
        d = k * step
        d_ff = max(ffm, round(8 * d / 3 / ffm) * ffm)
        return TransformerShape(layers, d, d // hd, vocab, n_kv_heads=d // hd // g, d_ff=d_ff,
                                gated_mlp=True, tied_embeddings=bool(tied_embeddings))  # fmt: skip

    @functools.cache
    def linear(k: int) -> tuple[int, int]:  # count = fixed + layers * per_layer at width k
        one, two = (transformer_params(make(k, n), embeddings=embeddings) for n in (1, 2))
        return 2 * one - two, two - one

    def g_mid(k: int) -> float:  # boundary between widths k and k+1 (k = 0: no lower bound)
        if k == 0:
            return 0.0
        (f0, p0), (f1, p1) = linear(k), linear(k + 1)
        return math.sqrt((f0 + p0 * k * step / ar) * (f1 + p1 * (k + 1) * step / ar))

    hi = 1
    while g_mid(hi) <= target:  # the width k0 whose range holds the target: g_mid(k0-1) <= N < g_mid(k0)
        hi *= 2
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if g_mid(mid) <= target else (lo, mid)
    best = None
    for k in range(max(1, hi - 3), hi + 4):
        fixed, per_layer = linear(k)
        first = max(1, math.ceil((g_mid(k - 1) - fixed) / per_layer))
        last = math.ceil((g_mid(k) - fixed) / per_layer) - 1
        # the count fixed + layers * per_layer nearest the target over layers in [first, last],
        # in closed form (a loop over every layer count took time ~ 1 / aspect_ratio): the two
        # counts either side of it, the smaller first so that ties keep the fewer layers
        below = math.floor((target - fixed) / per_layer)
        for layers in sorted({min(max(below, first), last), min(max(below + 1, first), last)}):
            if layers < first:
                continue
            c = fixed + layers * per_layer
            if best is None or abs(c - target) < abs(best[0] - target):
                best = (c, k, layers)
    if best is None:  # no candidate near the target: the smallest shape
        best = (sum(linear(1)), 1, 1)
    c, k, layers = best
    return ShapeFit(make(k, layers), c, c / target - 1.0)


# --------------------------------------------------------------------------------------
# KV cache
# --------------------------------------------------------------------------------------

#: n_kv_heads x head_dim of the roofline's default shape family: 8 KV heads of 128, as in
#: Llama 3 8B, 70B and 405B (Meta 2024, config.json of each), Llama 2 70B and Mistral 7B.
KV_WIDTH = 1024
#: d_model / n_layers of the family (Llama 3 8B: 4096/32 = 128; 70B: 8192/80 = 102).
KV_ASPECT_RATIO = 128.0
#: Non-embedding parameters per layer of the family, in units of d_model^2: q and o 2 d^2,
#: a SwiGLU MLP with d_ff = 8/3 d 8 d^2; k and v (2 d KV_WIDTH) neglected.
_PARAMS_PER_LAYER_D2 = 10.0


def kv_bytes_per_token(shape: TransformerShape, bytes_per_element: float = 2.0) -> float:
    """KV-cache bytes per token of context of ``shape``: 2 (K and V) x L x n_kv_heads x
    head_dim x bytes (e.g. Llama 3 8B in bf16: 2 x 32 x 8 x 128 x 2 = 131,072 B)."""
    s = validate_shape(shape)
    return 2.0 * s.n_layers * s.n_kv_heads * s.head_dim * _checks.positive_number("bytes_per_element", bytes_per_element)


def layers_for_params(n_params: float) -> float:
    """Layers L of the family (:data:`KV_WIDTH`, :data:`KV_ASPECT_RATIO`) with n_params
    parameters: N = 10 d^2 L with d = r L, so L = (N / (10 r^2))^(1/3) (a real number)."""
    n = _checks.positive_number("n_params", n_params)
    return (n / (_PARAMS_PER_LAYER_D2 * KV_ASPECT_RATIO**2)) ** (1.0 / 3.0)


def log_kv_bytes_per_token_for_params(log_n, log_bytes_per_element):
    """log KV-cache bytes per token of the family's model of N parameters (traceable):

        k(N) = 2 KV_WIDTH L(N) bytes,   L(N) = (N / (10 r^2))^(1/3)   (:func:`layers_for_params`),

    a smooth stand-in for the shape of every size: 36.6 layers for Llama 3 8B's 8.03e9
    parameters (32 in fact: embeddings count in N) and 75.5 for 70B's 70.6e9 (80). Give the
    exact :func:`kv_bytes_per_token` of a known shape to ``Deployment.kv_bytes_per_token``.
    """
    log_layers = (log_n - math.log(_PARAMS_PER_LAYER_D2 * KV_ASPECT_RATIO**2)) / 3.0
    return math.log(2.0 * KV_WIDTH) + log_layers + jnp.asarray(log_bytes_per_element)
