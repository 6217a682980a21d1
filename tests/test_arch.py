"""Tests for chinplan.arch against published models and independent hand counts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chinplan import arch
from chinplan.arch import TransformerShape

# Published totals (Hugging Face model cards / safetensors metadata of the official checkpoints).
LLAMA3_8B_PARAMS = 8_030_261_248
LLAMA2_7B_PARAMS = 6_738_415_616
GPT2_SMALL_PARAMS = 124_439_808


# ----------------------------------------------------------------------------- oracle


def weight_shapes(L, d, heads, kv, ff, vocab, *, gated, tied, positions=0, bias=False, layernorm=False):
    """Every weight tensor's shape, written out the way the checkpoints name them."""
    hd = d // heads
    tree = {"wte": (vocab, d), "final_norm": {"scale": (d,)}, "blocks": []}
    if positions:
        tree["wpe"] = (positions, d)
    if not tied:
        tree["lm_head"] = (d, vocab)
    if layernorm:
        tree["final_norm"]["bias"] = (d,)
    for _ in range(L):
        block = {
            "attn": {"wq": (d, heads * hd), "wk": (d, kv * hd), "wv": (d, kv * hd), "wo": (heads * hd, d)},
            "mlp": {"w_up": (d, ff), "w_down": (ff, d)},
            "norm1": [(d,)] * (2 if layernorm else 1),
            "norm2": [(d,)] * (2 if layernorm else 1),
        }
        if gated:
            block["mlp"]["w_gate"] = (d, ff)
        if bias:
            block["attn"].update(bq=(heads * hd,), bk=(kv * hd,), bv=(kv * hd,), bo=(d,))
            block["mlp"].update(b_up=(ff,), b_down=(d,))
        tree["blocks"].append(block)
    return tree


def count_shapes(tree):
    """Sums products of shapes in float64 (exact below 2**53), independently of arch."""
    is_shape = lambda x: isinstance(x, tuple) and all(isinstance(i, int) for i in x)  # noqa: E731
    leaves = jax.tree_util.tree_leaves(tree, is_leaf=is_shape)
    return int(np.sum([np.prod(np.array(s, dtype=np.float64)) for s in leaves], dtype=np.float64))


MODELS = {
    "llama3-8b": (
        TransformerShape(32, 4096, 32, 128256, n_kv_heads=8, d_ff=14336, gated_mlp=True),
        dict(L=32, d=4096, heads=32, kv=8, ff=14336, vocab=128256, gated=True, tied=False),
        LLAMA3_8B_PARAMS,
    ),
    "llama2-7b": (
        TransformerShape(32, 4096, 32, 32000, d_ff=11008, gated_mlp=True),
        dict(L=32, d=4096, heads=32, kv=32, ff=11008, vocab=32000, gated=True, tied=False),
        LLAMA2_7B_PARAMS,
    ),
    "gpt2-small": (
        TransformerShape(12, 768, 12, 50257, tied_embeddings=True, max_positions=1024, bias=True, norm="layernorm"),
        dict(L=12, d=768, heads=12, kv=12, ff=3072, vocab=50257, gated=False, tied=True, positions=1024, bias=True, layernorm=True),
        GPT2_SMALL_PARAMS,
    ),
}


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize("name", MODELS)
def test_published_counts(name):
    shape, oracle_args, published = MODELS[name]
    assert count_shapes(weight_shapes(**oracle_args)) == published  # the constant itself
    count = arch.transformer_params(shape)
    assert type(count) is int and count == published
    assert arch.SHAPES[name] == shape and arch.transformer_params(arch.SHAPES[name]) == published
    parts = arch.param_breakdown(shape)
    assert parts.total == published and all(type(x) is int for x in parts)


def test_breakdown_by_hand():
    p = arch.param_breakdown(MODELS["llama3-8b"][0])
    assert p.attention == 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024)
    assert p.mlp == 32 * 3 * 4096 * 14336
    assert p.embeddings == 2 * 128256 * 4096
    assert p.norms == (2 * 32 + 1) * 4096
    assert arch.transformer_params(MODELS["llama3-8b"][0], embeddings=False) == p.non_embedding == p.total - p.embeddings
    g = arch.param_breakdown(MODELS["gpt2-small"][0])
    assert g.embeddings == 50257 * 768 + 1024 * 768  # tied: no separate head
    assert g.attention == 12 * (768 * 2304 + 2304 + 768 * 768 + 768)  # GPT-2's c_attn and c_proj
    assert g.norms == 25 * 2 * 768


def test_gqa_and_defaults():
    llama3 = MODELS["llama3-8b"][0]
    mha = llama3._replace(n_kv_heads=None)
    assert arch.transformer_params(mha) - arch.transformer_params(llama3) == 32 * 2 * 4096 * (4096 - 1024)
    plain = TransformerShape(4, 256, 4, 1000)  # d_ff defaults to 4 d, 2 matrices
    assert arch.param_breakdown(plain).mlp == 4 * 2 * 256 * 1024
    assert arch.param_breakdown(plain._replace(mlp_ratio=2.5)).mlp == 4 * 2 * 256 * 640
    assert arch.transformer_params(TransformerShape(4.0, 256.0, 4, 1000)) == arch.transformer_params(plain)
    odd_types = TransformerShape(np.int64(4), jnp.asarray(256), np.float32(4), 1000)
    resolved = arch.validate_shape(odd_types)
    assert resolved == plain._replace(n_kv_heads=4, d_ff=1024) and all(type(x) is int for x in resolved[:6])


@pytest.mark.parametrize("L,d,V", [(12, 768, 50257), (48, 1600, 50257), (96, 12288, 50257), (80, 8192, 32000)])
def test_kaplan_approximation(L, d, V):
    """N ≈ 12 L d² + V d for a plain MHA, non-gated, tied, bias-free model (Kaplan et al. 2020, Table 1)."""
    shape = TransformerShape(L, d, d // 64, V, tied_embeddings=True)
    approx = 12.0 * L * d**2 + V * d
    exact = arch.transformer_params(shape)
    assert exact - approx == (2 * L + 1) * d  # only the norms are missing
    gpt2 = arch.transformer_params(shape._replace(bias=True, norm="layernorm", max_positions=1024))
    assert abs(gpt2 / approx - 1) < 0.01


def test_huge_counts_are_exact_ints():
    shape = TransformerShape(1000, 65536, 512, 256000, gated_mlp=True, d_ff=3 * 65536)
    n = arch.transformer_params(shape)
    expected = 1000 * (4 * 65536**2 + 3 * 65536 * 3 * 65536 + 2 * 65536) + 65536 + 2 * 256000 * 65536
    assert type(n) is int and n == expected and n > 2**32  # would wrap in int32 (and uint32)
    shape = shape._replace(n_layers=200_000)  # beyond float64's exact integers too
    assert arch.transformer_params(shape) == 200 * (expected - 65536 - 2 * 256000 * 65536) + 65536 + 2 * 256000 * 65536
    assert arch.transformer_params(shape) > 2**53


# ----------------------------------------------------------------------------- pytrees


def test_pytree_params_and_bytes():
    tree = {
        "a": jnp.zeros((3, 4)),
        "b": [np.ones(5, dtype=np.float16), (jnp.zeros((2, 2, 2), dtype=jnp.bfloat16), np.int8(3))],
        "c": {"d": jax.ShapeDtypeStruct((7, 11), jnp.float32), "e": None},
        "f": 2.0,
    }
    assert arch.pytree_params(tree) == 12 + 5 + 8 + 1 + 77 + 1
    assert arch.pytree_bytes(tree) == 12 * 4 + 5 * 2 + 8 * 2 + 1 + 77 * 4 + 8  # Python float: float64
    assert arch.pytree_params({}) == arch.pytree_bytes([]) == 0


@pytest.mark.parametrize("name", MODELS)
def test_pytree_from_shape_matches(name):
    shape, oracle_args, published = MODELS[name]
    shapes = weight_shapes(**oracle_args)
    is_shape = lambda x: isinstance(x, tuple) and all(isinstance(i, int) for i in x)  # noqa: E731
    init = lambda: jax.tree_util.tree_map(lambda s: jnp.zeros(s, jnp.bfloat16), shapes, is_leaf=is_shape)  # noqa: E731
    abstract = jax.eval_shape(init)  # ShapeDtypeStruct leaves, nothing allocated
    assert arch.pytree_params(abstract) == arch.transformer_params(shape) == published
    assert arch.pytree_bytes(abstract) == 2 * published
    if name == "gpt2-small":  # real arrays too
        assert arch.pytree_params(init()) == published


# ----------------------------------------------------------------------------- memory


def test_training_bytes_table():
    expected = {
        ("fp32", "adam"): 16, ("bf16-mixed", "adam"): 16, ("bf16", "adam"): 12,  # Rajbhandari et al. 2020 (ZeRO), §3.1
        ("fp32", "sgd-momentum"): 12, ("bf16-mixed", "sgd-momentum"): 12, ("bf16", "sgd-momentum"): 8,
        ("fp32", "sgd"): 8, ("bf16-mixed", "adafactor"): 8, ("bf16", "adafactor"): 4,
        ("bf16-mixed", "adam-8bit"): 10, ("fp16-mixed", "adamw"): 16,
    }  # fmt: skip
    for (precision, optimizer), b in expected.items():
        assert arch.TRAINING_BYTES_PER_PARAM[precision, optimizer] == b
        assert arch.training_bytes_per_param(precision, optimizer) == b
    assert arch.training_memory_bytes(7e9) == 112e9
    assert arch.training_memory_bytes(LLAMA3_8B_PARAMS, precision="fp32", optimizer="sgd") == 8.0 * LLAMA3_8B_PARAMS
    weights = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}
    for precision, b in weights.items():
        assert arch.weight_memory_bytes(70e9, precision=precision) == 70e9 * b
    assert arch.weight_memory_bytes(8e9) == 16e9


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: arch.training_memory_bytes(1e9, precision="fp64"), "precision"),
        (lambda: arch.training_memory_bytes(1e9, optimizer="lion"), "optimizer"),
        (lambda: arch.training_memory_bytes(0), "n_params"),
        (lambda: arch.training_memory_bytes(float("nan")), "n_params"),
        (lambda: arch.training_memory_bytes(float("inf")), "n_params"),
        (lambda: arch.weight_memory_bytes(-1.0), "n_params"),
        (lambda: arch.weight_memory_bytes(1e9, precision="int2"), "precision"),
    ],
)
def test_memory_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- LoRA


def test_lora_counts():
    llama2, llama3 = MODELS["llama2-7b"][0], MODELS["llama3-8b"][0]
    assert arch.lora_params(llama2, 8) == 32 * 2 * 8 * (4096 + 4096) == 4_194_304
    every = ("q", "k", "v", "o", "gate", "up", "down")
    by_hand = 32 * 16 * ((4096 + 4096) * 2 + (4096 + 1024) * 2 + (4096 + 14336) * 3)
    assert arch.lora_params(llama3, 16, targets=every) == by_hand
    assert arch.lora_params(llama2, 8, targets=("q", "v", "q")) == 4_194_304  # duplicates once
    assert arch.lora_params(llama2, 4, targets="down") == 32 * 4 * (11008 + 4096)
    assert arch.lora_params([(4096, 4096), (4096, 11008)], 8) == 8 * (8192 + 15104)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: arch.lora_params(MODELS["llama2-7b"][0], 0), "rank"),
        (lambda: arch.lora_params(MODELS["llama2-7b"][0], 2.5), "rank"),
        (lambda: arch.lora_params(MODELS["llama2-7b"][0], 8, targets=("q", "ffn")), "targets"),
        (lambda: arch.lora_params(MODELS["gpt2-small"][0], 8, targets=("gate",)), "targets"),
        (lambda: arch.lora_params([(4096, 0)], 8), "d_out"),
    ],
)
def test_lora_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- shape_for_params


def test_shape_for_params_accuracy_and_monotone():
    ns = np.geomspace(1e8, 1e12, 241)
    fits = [arch.shape_for_params(n) for n in ns]
    err = np.array([f.rel_error for f in fits])
    assert np.abs(err).max() < 0.06 and np.abs(err[ns >= 1e10]).max() < 0.02  # the documented bounds
    counts = [f.n_params for f in fits]
    widths = [f.shape.d_model for f in fits]
    assert counts == sorted(counts) and widths == sorted(widths)
    for n, f in zip(ns, fits):
        s = f.shape
        assert f.n_params == arch.transformer_params(s) and math.isclose(f.rel_error, f.n_params / n - 1)
        assert s.d_model % 128 == 0 and s.head_dim == 128 and s.d_ff % 256 == 0 and s.gated_mlp
        assert abs(s.d_ff / s.d_model - 8 / 3) < 0.1
        if n >= 1e9:
            assert 96 <= s.d_model / s.n_layers <= 160


def test_shape_for_params_options():
    fit = arch.shape_for_params(8e9, heads_per_kv=4, vocab_size=128256)
    s = fit.shape
    assert s.n_heads == 4 * s.n_kv_heads and s.d_model % 512 == 0 and abs(fit.rel_error) < 0.03
    fit = arch.shape_for_params(1e10, embeddings=False, aspect_ratio=64, tied_embeddings=True)
    assert arch.transformer_params(fit.shape, embeddings=False) == fit.n_params and abs(fit.rel_error) < 0.02
    assert fit.shape.tied_embeddings and 48 <= fit.shape.d_model / fit.shape.n_layers <= 80
    tiny = arch.shape_for_params(1e3)  # below the smallest shape: that shape, with its error
    assert tiny.shape.d_model == 128 and tiny.shape.n_layers == 1 and tiny.rel_error > 1


# ----------------------------------------------------------------------------- validation


BASE = TransformerShape(2, 256, 4, 1000)


@pytest.mark.parametrize(
    "bad,match",
    [
        (BASE._replace(n_layers=0), "n_layers"),
        (BASE._replace(n_layers=-3), "n_layers"),
        (BASE._replace(n_layers=2.5), "n_layers"),
        (BASE._replace(n_layers=float("nan")), "n_layers"),
        (BASE._replace(n_layers=True), "n_layers"),
        (BASE._replace(d_model=float("inf")), "d_model"),
        (BASE._replace(d_model=250), "d_model must be divisible by n_heads"),
        (BASE._replace(n_heads=0), "n_heads"),
        (BASE._replace(vocab_size="50257"), "vocab_size"),
        (BASE._replace(n_kv_heads=3), "n_kv_heads must divide"),
        (BASE._replace(n_kv_heads=0), "n_kv_heads"),
        (BASE._replace(d_ff=0), "d_ff"),
        (BASE._replace(mlp_ratio=float("nan")), "mlp_ratio"),
        (BASE._replace(mlp_ratio=-1.0), "mlp_ratio"),
        (BASE._replace(max_positions=-1), "max_positions"),
        (BASE._replace(gated_mlp="yes"), "gated_mlp"),
        (BASE._replace(norm="batchnorm"), "norm"),
        ((2, 256, 4, 1000), "shape"),
    ],
)
def test_shape_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        arch.transformer_params(bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_params=0), "n_params"),
        (dict(n_params=-1e9), "n_params"),
        (dict(n_params=float("nan")), "n_params"),
        (dict(n_params=float("inf")), "n_params"),
        (dict(n_params="big"), "n_params"),
        (dict(n_params=1e9, aspect_ratio=0), "aspect_ratio"),
        (dict(n_params=1e9, head_dim=0), "head_dim"),
        (dict(n_params=1e9, head_dim=64.5), "head_dim"),
        (dict(n_params=1e9, heads_per_kv=0), "heads_per_kv"),
        (dict(n_params=1e9, vocab_size=float("nan")), "vocab_size"),
        (dict(n_params=1e9, multiple_of=-128), "multiple_of"),
        (dict(n_params=1e9, ff_multiple_of=2.5), "ff_multiple_of"),
    ],
)
def test_shape_for_params_validation(kwargs, match):
    n = kwargs.pop("n_params")
    with pytest.raises(ValueError, match=match):
        arch.shape_for_params(n, **kwargs)
