"""The optima of :mod:`chinplan.optima` (Chinchilla part) against float64 NumPy oracles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
from test_law import C_GRID, PRESETS, np_compute_optimal, np_loss


@pytest.mark.parametrize("p", PRESETS)
def test_compute_optimal_matches_oracle(p, precision):
    dtype, rtol = precision
    got = chinplan.compute_optimal(p, C_GRID)
    n, d = np_compute_optimal(p, C_GRID)
    # exponents of up to 0.55 * log(1e28): float32 relative error grows with log C.
    tol = max(rtol, 3e-5 if dtype == np.float32 else rtol)
    np.testing.assert_allclose(np.asarray(got.n), n, rtol=tol)
    np.testing.assert_allclose(np.asarray(got.d), d, rtol=tol)
    np.testing.assert_allclose(np.asarray(got.loss), np_loss(p, n, d), rtol=tol)
    np.testing.assert_allclose(6.0 * n * d, C_GRID, rtol=1e-12)  # the oracle is on the budget line
    assert np.all(np.isfinite(np.asarray(got.n))) and np.all(np.isfinite(np.asarray(got.d)))


@pytest.mark.parametrize("p", PRESETS)
@pytest.mark.parametrize("c", [1e18, 5.76e23, 1e28])
def test_compute_optimal_is_brute_force_argmin(p, c):
    """A dense 1-D search over log N on the line 6ND = C finds the same optimum."""
    log_n = np.linspace(math.log(1e3), math.log(c / 6.0 / 1e3), 200_001)
    d = c / (6.0 * np.exp(log_n))
    losses = np_loss(p, np.exp(log_n), d)
    best = np.argmin(losses)
    got = chinplan.compute_optimal(p, c)
    step = log_n[1] - log_n[0]
    assert abs(math.log(float(got.n)) - log_n[best]) <= 2 * step
    assert float(got.loss) <= losses[best] * (1 + 2e-6)


@pytest.mark.parametrize("p", PRESETS)
def test_tokens_per_parameter(p, precision):
    dtype, rtol = precision
    n, d = np_compute_optimal(p, C_GRID)
    np.testing.assert_allclose(np.asarray(chinplan.tokens_per_parameter(p, C_GRID)), d / n, rtol=max(rtol, 3e-5))


def test_chinchilla_budget_gives_about_20_tokens_per_parameter():
    tpp = float(chinplan.tokens_per_parameter(chinplan.BESIROGLU_2024, 5.76e23))
    assert 15 < tpp < 30


@pytest.mark.parametrize("p", PRESETS)
def test_optimal_for_loss_matches_oracle(p, precision):
    dtype, rtol = precision
    # l - E near zero amplifies the rounding of the inputs themselves, so the oracle takes
    # the inputs exactly as JAX sees them (rounded to ``dtype``) and computes in float64.
    p = chinplan.LawParams(*(np.float64(dtype(x)) for x in p))
    E, A, B, alpha, beta = p
    targets = (E + np.array([1e-3, 0.05, 0.3, 1.0, 3.0])).astype(dtype).astype(np.float64)
    got = chinplan.optimal_for_loss(p, targets)
    n = (A * (1 + alpha / beta) / (targets - E)) ** (1 / alpha)
    d = (B * (1 + beta / alpha) / (targets - E)) ** (1 / beta)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(np.asarray(got.n), n, rtol=tol)
    np.testing.assert_allclose(np.asarray(got.d), d, rtol=tol)
    # The plan lies on the compute-optimal frontier and reaches the target.
    np.testing.assert_allclose(np_loss(p, n, d), targets, rtol=1e-11)
    n_c, d_c = np_compute_optimal(p, 6 * n * d)
    np.testing.assert_allclose(n_c, n, rtol=1e-9)


def test_optimal_for_loss_unreachable_is_infinite_not_nan():
    """Under tracing an unreachable target gives an infinite plan; a concrete call raises."""
    p = chinplan.HOFFMANN_2022
    with pytest.raises(ValueError, match=r"target_loss must exceed the irreducible loss E"):
        chinplan.optimal_for_loss(p, [p.E - 0.1, p.E, p.E + 0.5])
    got = jax.jit(chinplan.optimal_for_loss)(p, jnp.asarray([p.E - 0.1, p.E, p.E + 0.5]))
    n = np.asarray(got.n)
    assert np.isinf(n[0]) and np.isinf(n[1]) and np.isfinite(n[2])
    assert not np.any(np.isnan(np.asarray(got.loss)))
    g = jax.grad(lambda t: chinplan.optimal_for_loss(p, t).n)(p.E - 0.1)
    assert np.isfinite(float(g))
