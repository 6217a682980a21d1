"""The law's formulas against an independent float64 NumPy computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
from chinplan import law

PRESETS = list(chinplan.PRESETS.values())


def np_loss(p, n, d):
    """Float64 oracle for L = E + A N^-alpha + B D^-beta, direct arithmetic."""
    E, A, B, alpha, beta = (np.float64(x) for x in p)
    return E + A / np.power(np.float64(n), alpha) + B / np.power(np.float64(d), beta)


def np_compute_optimal(p, c):
    E, A, B, alpha, beta = (np.float64(x) for x in p)
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    n = G * (c / 6.0) ** a
    d = (c / 6.0) ** b / G
    return n, d


def np_effective(x, unique, r_star):
    u = np.minimum(x, unique)
    r = x / u - 1.0
    return u + u * r_star * (1.0 - np.exp(-r / r_star))


RNG = np.random.default_rng(0)
N_GRID = 10.0 ** RNG.uniform(6, 13, 64)
D_GRID = 10.0 ** RNG.uniform(8, 15, 64)
C_GRID = 10.0 ** np.linspace(15, 28, 27)


@pytest.mark.parametrize("p", PRESETS)
def test_loss_matches_float64_oracle(p, precision):
    dtype, rtol = precision
    got = np.asarray(chinplan.loss(p, N_GRID, D_GRID))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np_loss(p, N_GRID, D_GRID), rtol=rtol)


def test_loss_of_int64_counts_does_not_overflow():
    # 15e12 tokens does not fit in int32: it must not wrap around on its way into JAX.
    n, d = np.int64(8_000_000_000), np.int64(15_000_000_000_000)
    p = chinplan.HOFFMANN_2022
    np.testing.assert_allclose(float(chinplan.loss(p, n, d)), np_loss(p, 8e9, 15e12), rtol=2e-6)
    np.testing.assert_allclose(
        np.asarray(chinplan.loss(p, np.array([n]), np.array([d]))), [np_loss(p, 8e9, 15e12)], rtol=2e-6
    )
    np.testing.assert_allclose(float(chinplan.loss(p, int(n), int(d))), np_loss(p, 8e9, 15e12), rtol=2e-6)


@pytest.mark.parametrize("p", PRESETS)
def test_data_constrained_matches_oracle(p, precision):
    dtype, rtol = precision
    E, A, B, alpha, beta = (np.float64(x) for x in p)
    n = 10.0 ** RNG.uniform(8, 11, 40)
    d = 10.0 ** RNG.uniform(10, 13, 40)
    unique = 10.0 ** RNG.uniform(9, 13, 40)
    d_eff = np_effective(d, unique, law.R_D_STAR)
    # N_opt(U_D): the compute-optimal size whose optimal data equals U_D.
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_cap = G * (unique * G) ** (beta / alpha)
    _, d_check = np_compute_optimal(p, 6 * n_cap * unique)
    np.testing.assert_allclose(d_check, unique, rtol=1e-9)
    n_eff = np_effective(n, n_cap, law.R_N_STAR)
    tol = max(rtol, 5e-6) if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(np.asarray(chinplan.effective_data(d, unique)), d_eff, rtol=tol)
    np.testing.assert_allclose(np.asarray(chinplan.effective_params(p, n, unique)), n_eff, rtol=tol)
    got = chinplan.loss(p, n, d, unique_tokens=unique)
    np.testing.assert_allclose(np.asarray(got), np_loss(p, n_eff, d_eff), rtol=tol)


def test_effective_data_properties():
    d = np.array([1e9, 1e10, 4e10, 1e11, 1e13])
    u = 1e10
    eff = np.asarray(chinplan.effective_data(d, u), dtype=np.float64)
    assert np.all(eff <= d * (1 + 1e-6))
    np.testing.assert_allclose(eff[:2], d[:2], rtol=1e-6)  # nothing repeated: D' = D
    assert eff[2] > 0.9 * d[2]  # four epochs are nearly as good as new data
    np.testing.assert_allclose(eff[-1], u * (1 + law.R_D_STAR), rtol=1e-3)  # saturation


def test_float32_extremes_stay_finite_and_accurate():
    p = chinplan.HOFFMANN_2022
    got = chinplan.compute_optimal(p, 1e28)
    n, d = np_compute_optimal(p, 1e28)
    np.testing.assert_allclose([float(got.n), float(got.d)], [n, d], rtol=3e-5)
    np.testing.assert_allclose(float(chinplan.loss(p, 1e13, 1e15)), np_loss(p, 1e13, 1e15), rtol=2e-6)
    # exp of a log near 66 in float32: relative error about 66 * 2^-24 = 4e-6.
    np.testing.assert_allclose(float(chinplan.training_flops(1e13, 1e15)), 6e28, rtol=1e-5)


def test_jit_vmap_grad_compose():
    p = chinplan.HOFFMANN_2022
    f = jax.jit(jax.vmap(lambda ln, d: chinplan.law.loss_log(p, ln, jnp.log(d))))
    ln = jnp.log(jnp.asarray(N_GRID))
    np.testing.assert_allclose(np.asarray(f(ln, D_GRID)), np_loss(p, N_GRID, D_GRID), rtol=2e-6)
    # d L / d log N = -alpha A N^-alpha
    g = jax.vmap(jax.grad(lambda ln, d: chinplan.loss(p, jnp.exp(ln), d)))(ln, jnp.asarray(D_GRID))
    expected = -p.alpha * p.A * N_GRID ** (-p.alpha)
    np.testing.assert_allclose(np.asarray(g), expected, rtol=5e-5)
    # vmap over a leading axis of draws in the params pytree
    draws = chinplan.LawParams(*(jnp.full((3,), x) for x in p))
    out = jax.vmap(chinplan.compute_optimal, in_axes=(0, None))(draws, 1e24)
    assert out.n.shape == (3,)
    # eager == jit
    np.testing.assert_allclose(
        np.asarray(jax.jit(chinplan.compute_optimal)(p, C_GRID).n),
        np.asarray(chinplan.compute_optimal(p, C_GRID).n),
        rtol=5e-6,
    )


def test_second_jitted_call_does_not_recompile():
    traces = []

    @jax.jit
    def plan(params, c):
        traces.append(1)
        return chinplan.compute_optimal(params, c).n, chinplan.loss(params, c / 1e12, 1e12)

    p = chinplan.HOFFMANN_2022
    as_arrays = lambda q: chinplan.LawParams(*(jnp.float32(x) for x in q))
    plan(as_arrays(p), jnp.asarray(C_GRID, jnp.float32))
    plan(as_arrays(chinplan.BESIROGLU_2024), jnp.asarray(C_GRID * 2, jnp.float32))
    assert len(traces) == 1
