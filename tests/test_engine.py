"""Tests of chinplan.engine against explicit float64 NumPy computations on small cases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chinplan import engine
from chinplan.engine import quantile_network
from chinplan.law import HOFFMANN_2022, LawParams, loss
from chinplan.optima import compute_optimal, optimal_for_loss

N_DRAWS = 200
Q = (0.05, 0.5, 0.95)
RTOL = 1e-6  # float32 quantiles of identical inputs: only the interpolation rounds
# N and D are exp(log N): one float32 ulp of log N ~ 25 (two compilations of the same fn may
# round differently) is a relative 2e-6 in N.
RTOL_EXP = 1e-5


def make_draws(n_draws: int = N_DRAWS, seed: int = 0, spread: float = 0.05) -> LawParams:
    """Posterior-like draws: each constant of Hoffmann et al. 2022 jittered by ``spread``."""
    rng = np.random.default_rng(seed)
    return LawParams(
        *(np.float32(v) * (1 + spread * rng.standard_normal(n_draws)).astype(np.float32) for v in HOFFMANN_2022)
    )


def draws64(params: LawParams) -> LawParams:
    """The same draws as float64 columns, shaped (n_draws, 1, 1) for broadcasting in NumPy."""
    return LawParams(*(np.asarray(v, np.float64)[:, None, None] for v in params))


def loss64(p: LawParams, n, d) -> np.ndarray:
    """Float64 oracle of L = E + A / N^alpha + B / D^beta over draws x scenarios."""
    return p.E + p.A / np.asarray(n, np.float64) ** p.alpha + p.B / np.asarray(d, np.float64) ** p.beta


def materialised(fn, params, *args) -> object:
    """fn over every draw x every broadcast scenario, explicitly (the thing the engine avoids)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    flat = [jnp.asarray(np.broadcast_to(a, shape).reshape(-1), jnp.float32) for a in args]
    out = jax.vmap(lambda t: jax.vmap(lambda *s: fn(t, *s))(*flat))(params)
    return jax.tree.map(lambda y: np.asarray(y, np.float64).reshape((y.shape[0],) + shape), out)


def cvar_oracle(y: np.ndarray, level: float) -> np.ndarray:
    """Explicit upper-tail CVaR over axis 0: (sum of top m + (k - m) * next) / k, k = n (1 - level)."""
    n = y.shape[0]
    ys = np.sort(y, axis=0)[::-1]  # descending
    k = n * (1 - level)
    m = int(np.floor(k))
    if k == 0:
        return ys[0]
    total = ys[:m].sum(axis=0) + ((k - m) * ys[m] if m < n else 0)
    return total / k


def quantile_oracle(x: np.ndarray, q) -> np.ndarray:
    """Type-7 quantiles in float64 with the engine's documented limits at +-inf."""
    xs = np.sort(np.asarray(x, np.float64), axis=0)
    n = xs.shape[0]
    out = []
    for level in q:
        h = level * (n - 1)
        i = int(np.floor(h))
        j = min(i + 1, n - 1)
        t = h - i
        lo, hi = xs[i], xs[j]
        with np.errstate(invalid="ignore"):
            lin = np.where(t >= 0.5, hi - (hi - lo) * (1 - t), lo + (hi - lo) * t)
        val = np.where(lo == -np.inf, lo, np.where(hi == np.inf, hi, lin))
        val = np.where((lo == -np.inf) & (hi == np.inf), np.nan, val)
        out.append(np.where((t == 0) | (lo == hi), lo, val))
    return np.stack(out)


@pytest.fixture(scope="module")
def draws() -> LawParams:
    return make_draws()


N_GRID = np.logspace(8, 11, 5)[:, None]  # (5, 1)
D_GRID = np.logspace(10, 13, 7)[None, :]  # (1, 7)
BUDGETS = np.logspace(20, 25, 37)


# ------------------------------------------------------------------ the quantile kernel alone


@pytest.fixture(params=["network", "xla-sort"])
def sorter(request, monkeypatch):
    """Runs the test with the bitonic network for every sort, then with XLA's sort for every
    sort (the engine picks by size, :data:`quantile_network.NETWORK_MAX_SORT`)."""
    limit = -1 if request.param == "network" else 2**62
    monkeypatch.setattr(quantile_network, "NETWORK_MAX_SORT", limit)
    jax.clear_caches()  # the choice is made while tracing
    yield request.param
    jax.clear_caches()


@pytest.mark.parametrize("n", [1, 2, 3, 999, 1000, 1024, 1025])
def test_draw_quantiles_matches_numpy_with_ties(n, sorter):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 7, size=(n, 13)).astype(np.float32) * np.float32(0.37)  # many ties
    x[:, 0] = rng.standard_normal(n)
    q = (0.0, 0.05, 1 / 3, 0.5, 0.95, 1.0)
    got = np.asarray(quantile_network.draw_quantiles(x, q))
    want = np.quantile(x.astype(np.float64), q, axis=0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    # Order statistics (q hitting an integer rank) are the input values themselves.
    np.testing.assert_array_equal(got[0], x.min(axis=0))
    np.testing.assert_array_equal(got[-1], x.max(axis=0))


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the sorter holds for every example
@given(
    n=st.sampled_from([1, 5, 16, 33]),
    seed=st.integers(0, 2**31 - 1),
    inf_share=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_draw_quantiles_property(n, seed, inf_share, sorter):
    """Random tied data with a share of +-inf: the kernel equals the float64 oracle."""
    q = (0.0, 0.1, 1 / 3, 0.5, 0.9, 1.0)  # fixed levels: one compilation per n
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(n, 3)).astype(np.float32)
    x[rng.random((n, 3)) < inf_share] = np.inf
    x[rng.random((n, 3)) < inf_share / 2] = -np.inf
    got = np.asarray(quantile_network.draw_quantiles(x, q))
    np.testing.assert_allclose(got, quantile_oracle(x, q), rtol=RTOL, atol=1e-6)


def test_sort_over_draws_is_a_sort(sorter):
    x = np.random.default_rng(1).standard_normal((999, 4, 3)).astype(np.float32)
    sorted_x, nan_count = quantile_network.sort_over_draws(x)
    np.testing.assert_array_equal(np.asarray(sorted_x), np.sort(x, axis=0))
    assert not np.asarray(nan_count).any()


def test_draw_quantiles_infinities(sorter):
    x = np.array([[1.0, 1.0, -np.inf, -np.inf], [2.0, np.inf, 0.0, -np.inf], [np.inf, np.inf, 5.0, np.inf]], np.float32)
    q = (0.0, 0.25, 0.5, 0.75, 1.0)
    got = np.asarray(quantile_network.draw_quantiles(x, q))
    want = quantile_oracle(x, q)
    np.testing.assert_array_equal(got, want)
    assert got[1, 0] == 1.5 and got[3, 0] == np.inf  # finite below, +inf above the boundary
    signed_zeros = np.array([[-0.0], [0.0], [-0.0], [1.0]], np.float32)  # integer sort keys: -0 < +0
    np.testing.assert_array_equal(np.asarray(quantile_network.draw_quantiles(signed_zeros, q)), quantile_oracle(signed_zeros, q))
    assert np.isnan(got[3, 3])  # between between -inf and +inf has no value
    # On finite data the oracle is NumPy's own definition.
    y = np.random.default_rng(2).standard_normal((11, 5))
    np.testing.assert_allclose(quantile_oracle(y, q), np.quantile(y, q, axis=0), rtol=1e-12)


def test_draw_quantiles_nan_policies(sorter):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 6)).astype(np.float32)
    x[rng.random((50, 6)) < 0.2] = np.nan
    x[:, 0] = np.nan  # a column with nothing left
    x[:, 1] = rng.standard_normal(50)  # a clean column
    propagated = np.asarray(quantile_network.draw_quantiles(x, Q))
    assert np.isnan(propagated[:, 2:]).all() and np.isnan(propagated[:, 0]).all()
    np.testing.assert_allclose(propagated[:, 1], np.quantile(x[:, 1].astype(np.float64), Q), rtol=RTOL)
    omitted = np.asarray(quantile_network.draw_quantiles(x, Q, nan_policy="omit"))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanquantile(x.astype(np.float64), Q, axis=0)
    np.testing.assert_allclose(omitted, want, rtol=RTOL)


def test_small_chunks_take_xla_sort_and_large_ones_the_network_with_the_same_bits(monkeypatch):
    """Bands of one chunk small enough for XLA's sort equal, bit for bit, those of the same
    scenarios in chunks sorted by the network: both are exact sorts of the same keys."""
    calls = []
    real = quantile_network._bitonic_sort_pow2
    monkeypatch.setattr(quantile_network, "_bitonic_sort_pow2", lambda *a, **k: calls.append(a[0].size) or real(*a, **k))
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((1000, 6)).astype(np.float32))  # 1,024 x 6 values: small
    x = x.at[rng.random((1000, 6)) < 0.05].set(jnp.inf)
    jax.clear_caches()
    small = np.asarray(quantile_network.draw_quantiles(x, Q))
    assert calls == []
    wide = jnp.tile(x, (1, 16))  # 1,024 x 96 values: above NETWORK_MAX_SORT, the network
    assert wide.size > quantile_network.NETWORK_MAX_SORT >= x.size
    big = np.asarray(quantile_network.draw_quantiles(wide, Q))
    assert calls and min(calls) > quantile_network.NETWORK_MAX_SORT
    np.testing.assert_array_equal(big[:, :6], small)
    jax.clear_caches()


# ------------------------------------------------------------------ bands and siblings vs NumPy


def test_bands_loss_broadcast_matches_numpy(draws):
    result = engine.bands(loss, draws, N_GRID, D_GRID, q=Q)
    assert result.values.shape == (3, 5, 7) and result.nan_fraction.shape == (5, 7)
    want = np.quantile(loss64(draws64(draws), N_GRID, D_GRID), Q, axis=0)
    np.testing.assert_allclose(np.asarray(result.values), want, rtol=2e-6)  # float32 law vs float64 law
    # Identical inputs (the engine's own float32 evaluations, materialised): rounding only.
    same = np.quantile(materialised(loss, draws, N_GRID, D_GRID), Q, axis=0)
    np.testing.assert_allclose(np.asarray(result.values), same, rtol=RTOL)
    assert not np.asarray(result.nan_fraction).any()


def test_bands_pytree_output(draws):
    result = engine.bands(compute_optimal, draws, BUDGETS, q=Q)
    assert result.values._fields == ("n", "d", "loss")
    full = materialised(compute_optimal, draws, BUDGETS)
    for field in ("n", "d", "loss"):
        got = np.asarray(getattr(result.values, field))
        assert got.shape == (3, 37)
        rtol = RTOL if field == "loss" else RTOL_EXP
        np.testing.assert_allclose(got, np.quantile(getattr(full, field), Q, axis=0), rtol=rtol)


def test_expectation_probability_cvar(draws):
    full = loss64(draws64(draws), N_GRID, D_GRID)
    mean = engine.expectation(loss, draws, N_GRID, D_GRID)
    np.testing.assert_allclose(np.asarray(mean), full.mean(axis=0), rtol=2e-6)

    below = lambda theta, n, d: loss(theta, n, d) < 2.4  # noqa: E731
    prob = np.asarray(engine.probability(below, draws, N_GRID, D_GRID))
    counts = (materialised(below, draws, N_GRID, D_GRID) > 0).sum(axis=0)
    np.testing.assert_array_equal(np.rint(prob * N_DRAWS), counts)  # the exact counts
    np.testing.assert_allclose(prob, counts / N_DRAWS, rtol=1.2e-7)  # XLA divides by multiplying: 1 ulp
    assert 0 < prob.min() < 1 or prob.max() == 1  # a non-trivial mix of outcomes

    y = materialised(loss, draws, N_GRID, D_GRID)
    for level in (0.0, 0.9, 0.95, 0.987, 1.0):
        got = np.asarray(engine.cvar(loss, draws, N_GRID, D_GRID, level=level))
        np.testing.assert_allclose(got, cvar_oracle(y, level), rtol=2e-6)
    np.testing.assert_allclose(np.asarray(engine.cvar(loss, draws, N_GRID, D_GRID, level=0.0)), y.mean(0), rtol=2e-6)


def test_chunk_size_invariance(draws):
    reference = None
    for chunk_size in (1, 7, None):
        got = (
            engine.bands(compute_optimal, draws, BUDGETS, chunk_size=chunk_size),
            engine.cvar(loss, draws, N_GRID, D_GRID, chunk_size=chunk_size),
        )
        got = jax.tree.map(np.asarray, got)
        if reference is None:
            reference = got
        else:
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL), got, reference)


def test_reductions_bitwise_independent_of_chunk_size(draws):
    """One rounding per value (E * s): every chunk size sees the same values, and the exact
    reductions (order statistics, fixed summation tree) give the same bits."""
    scale = lambda theta, s: theta.E * s  # noqa: E731
    with_nan = lambda theta, s: jnp.where(theta.alpha > 0.34, jnp.nan, theta.E * s)  # noqa: E731
    s = np.linspace(0.5, 3.0, 29)
    few = jax.tree.map(lambda v: v[:60], draws)  # a 64-row network: quick to compile
    runs = [
        (
            engine.bands(scale, few, s, chunk_size=c).values,
            engine.bands(with_nan, few, s, chunk_size=c, nan_policy="omit").values,
            engine.cvar(scale, few, s, level=0.9, chunk_size=c),
        )
        for c in (1, None)  # one column (scalar code) against the default chunk (vector code)
    ]
    for other in runs[1:]:
        jax.tree.map(np.testing.assert_array_equal, other, runs[0])
    y = np.asarray(few.E)[:, None] * np.float32(s)
    np.testing.assert_allclose(np.asarray(runs[0][0]), np.quantile(y.astype(np.float64), Q, axis=0), rtol=RTOL)


def test_quantiles_compose_with_jit_and_vmap():
    """engine.quantiles is the kernel for the user's own jit/vmap: a batch of draw sets."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 101, 3)).astype(np.float32)  # (batch, draws, columns)
    batched = jax.jit(jax.vmap(lambda s: engine.quantiles(s, Q)))
    got = np.asarray(batched(x))
    assert got.shape == (6, 3, 3)
    want = np.quantile(x.astype(np.float64), Q, axis=1).transpose(1, 0, 2)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-7)
    x[0, :10, 0] = np.nan
    omitted = np.asarray(jax.jit(lambda s: engine.quantiles(s, 0.5, nan_policy="omit"))(x[0]))
    np.testing.assert_allclose(omitted[0], np.median(x[0, 10:, 0].astype(np.float64)), rtol=RTOL)
    np.testing.assert_allclose(omitted[1:], np.median(x[0, :, 1:].astype(np.float64), axis=0), rtol=RTOL)


def test_integer_token_counts_stay_exact(draws):
    tokens = np.array([15_000_000_000_000, 2_000_000_000_000], dtype=np.int64)  # > int32
    got = engine.expectation(loss, draws, np.int64(8_000_000_000), tokens)
    want = loss64(draws64(draws), 8e9, tokens.astype(np.float64)).mean(axis=0)[0]
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-6)


# ------------------------------------------------------------------ non-finite outputs


def test_unreachable_targets_give_inf_order_statistics(draws):
    e = np.asarray(draws.E, np.float64)
    targets = np.array([np.quantile(e, 0.3), 2.5])  # first: 30% of draws cannot reach it
    result = engine.bands(optimal_for_loss, draws, targets, q=(0.1, 0.5, 0.9))
    full = materialised(optimal_for_loss, draws, targets)
    assert np.isinf(full.n[:, 0]).mean() == pytest.approx(np.mean(e >= np.float32(targets[0])), abs=0.01)
    np.testing.assert_allclose(np.asarray(result.values.n), quantile_oracle(full.n, (0.1, 0.5, 0.9)), rtol=RTOL_EXP)
    assert np.isinf(np.asarray(result.values.n)[2, 0]) and np.isfinite(np.asarray(result.values.n)[0, 0])
    assert not np.asarray(result.nan_fraction.n).any()  # inf is not NaN


def nan_for_large_e(theta, n, d):
    """The loss, but NaN for draws with E above 1.72 (a stand-in for an invalid domain)."""
    return jnp.where(theta.E > 1.72, jnp.nan, loss(theta, n, d))


def test_nan_fraction_reported_never_silent(draws):
    is_nan = np.asarray(draws.E) > np.float32(1.72)
    assert 0 < is_nan.mean() < 1
    result = engine.bands(nan_for_large_e, draws, N_GRID, D_GRID)
    np.testing.assert_allclose(np.asarray(result.nan_fraction), np.full((5, 7), is_nan.mean()), rtol=RTOL)
    assert np.isnan(np.asarray(result.values)).all()
    omitted = engine.bands(nan_for_large_e, draws, N_GRID, D_GRID, nan_policy="omit")
    clean = materialised(loss, draws, N_GRID, D_GRID)[~is_nan]
    np.testing.assert_allclose(np.asarray(omitted.values), np.quantile(clean, Q, axis=0), rtol=RTOL)
    assert np.isnan(np.asarray(engine.expectation(nan_for_large_e, draws, N_GRID, D_GRID))).all()
    assert np.isnan(np.asarray(engine.cvar(nan_for_large_e, draws, N_GRID, D_GRID))).all()


# ------------------------------------------------------------------ compilation and validation


def test_second_call_does_not_recompile():
    traces = []

    def counted_loss(theta, n, d):
        traces.append(1)
        return loss(theta, n, d)

    first = make_draws(seed=10)
    engine.bands(counted_loss, first, N_GRID, D_GRID)
    after_first = len(traces)
    assert after_first >= 1
    second = make_draws(seed=11)
    out = engine.bands(counted_loss, second, N_GRID * 2, D_GRID * 3)
    assert len(traces) == after_first
    want = np.quantile(materialised(loss, second, N_GRID * 2, D_GRID * 3), Q, axis=0)
    np.testing.assert_allclose(np.asarray(out.values), want, rtol=RTOL)
    # A different number of scenarios in the same chunk-size bucket reuses the kernel too.
    engine.bands(counted_loss, second, np.logspace(8, 11, 6)[:, None], D_GRID)
    assert len(traces) == after_first
    # CVaR levels are traced values, not compile-time constants.
    engine.cvar(counted_loss, first, N_GRID, D_GRID, level=0.9)
    after_cvar = len(traces)
    engine.cvar(counted_loss, second, N_GRID, D_GRID, level=0.99)
    assert len(traces) == after_cvar


def test_function_of_the_draw_alone(draws):
    """No scenario arguments: one scenario, shape ()."""
    result = engine.bands(lambda theta: theta.alpha / (theta.alpha + theta.beta), draws)
    a = np.asarray(draws.alpha, np.float64)
    want = np.quantile(a / (a + np.asarray(draws.beta, np.float64)), Q)
    assert result.values.shape == (3,)
    np.testing.assert_allclose(np.asarray(result.values), want, rtol=2e-6)


def test_validation_errors(draws):
    with pytest.raises(ValueError, match=r"scenario_args\[1\]"):
        engine.bands(loss, draws, N_GRID, np.array([1e10, np.nan]))
    with pytest.raises(ValueError, match="do not broadcast"):
        engine.bands(loss, draws, np.ones(3) * 1e9, np.ones(4) * 1e10)
    with pytest.raises(ValueError, match=r"scenario_args\[0\]\['d'\]"):
        engine.bands(lambda t, s: loss(t, s["n"], s["d"]), draws, {"n": 1e9, "d": np.array([np.nan])})
    bad = draws._replace(beta=draws.beta[:10])
    with pytest.raises(ValueError, match="beta"):
        engine.expectation(loss, bad, N_GRID, D_GRID)
    with pytest.raises(ValueError, match="leading draw axis"):
        engine.bands(loss, HOFFMANN_2022, N_GRID, D_GRID)
    for q in ((0.5, 1.5), (-0.1,), ()):
        with pytest.raises(ValueError, match="q "):
            engine.bands(loss, draws, N_GRID, D_GRID, q=q)
    with pytest.raises(ValueError, match="chunk_size"):
        engine.bands(loss, draws, N_GRID, D_GRID, chunk_size=0)
    with pytest.raises(ValueError, match="level"):
        engine.cvar(loss, draws, N_GRID, D_GRID, level=1.2)
    with pytest.raises(ValueError, match="nan_policy"):
        engine.bands(loss, draws, N_GRID, D_GRID, nan_policy="drop")
    with pytest.raises(TypeError, match="booleans"):
        engine.probability(loss, draws, N_GRID, D_GRID)


def test_progress_bar_and_dataset(draws, capsys):
    result = engine.bands(compute_optimal, draws, BUDGETS, chunk_size=8, progress=True)
    plain = engine.bands(compute_optimal, draws, BUDGETS, chunk_size=8, progress=False)
    jax.tree.map(np.testing.assert_array_equal, result, plain)
    ds = engine.to_dataset(result, Q, dims=("compute",), coords={"compute": BUDGETS})
    assert set(ds.data_vars) == {"n", "d", "loss", "n_nan_fraction", "d_nan_fraction", "loss_nan_fraction"}
    assert ds["loss"].dims == ("quantile", "compute")
    np.testing.assert_array_equal(ds["quantile"].values, Q)
    np.testing.assert_array_equal(ds["n"].sel(quantile=0.5).values, np.asarray(result.values.n[1]))
    same = engine.bands_dataset(compute_optimal, draws, BUDGETS, dims=("compute",), coords={"compute": BUDGETS})
    np.testing.assert_array_equal(same["d"].values, ds["d"].values)
    mean_ds = engine.to_dataset(engine.expectation(loss, draws, N_GRID, D_GRID), dims=("n", "d"))
    assert mean_ds["value"].dims == ("n", "d")


# ------------------------------------------------------------------ several devices


MULTI_DEVICE_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    sys.path.insert(0, {tests!r})
    from test_engine import BUDGETS, D_GRID, N_GRID, make_draws, nan_for_large_e
    from chinplan import engine
    from chinplan.optima import compute_optimal
    from chinplan.law import loss
    assert jax.local_device_count() == 4, jax.local_device_count()
    draws = make_draws()
    out = {{}}
    b = engine.bands(compute_optimal, draws, BUDGETS)
    out["n"], out["loss"] = np.asarray(b.values.n), np.asarray(b.values.loss)
    b = engine.bands(nan_for_large_e, draws, N_GRID, D_GRID, chunk_size=3, nan_policy="omit")
    out["nan"], out["nan_fraction"] = np.asarray(b.values), np.asarray(b.nan_fraction)
    out["cvar"] = np.asarray(engine.cvar(loss, draws, N_GRID, D_GRID, level=0.9, chunk_size=5))
    np.savez(sys.argv[1], **out)
    """
)


def test_four_devices_match_one(draws, run_script):
    assert jax.local_device_count() == 1
    four = run_script(MULTI_DEVICE_SCRIPT.format(tests=str(Path(__file__).parent)), timeout=120)
    b = engine.bands(compute_optimal, draws, BUDGETS)
    np.testing.assert_allclose(four["n"], np.asarray(b.values.n), rtol=RTOL)
    np.testing.assert_allclose(four["loss"], np.asarray(b.values.loss), rtol=RTOL)
    omitted = engine.bands(nan_for_large_e, draws, N_GRID, D_GRID, nan_policy="omit")
    np.testing.assert_allclose(four["nan"], np.asarray(omitted.values), rtol=RTOL)
    np.testing.assert_array_equal(four["nan_fraction"], np.asarray(omitted.nan_fraction))
    # Same per-device chunk size: the very same kernel runs on every device, bit for bit.
    np.testing.assert_array_equal(four["cvar"], np.asarray(engine.cvar(loss, draws, N_GRID, D_GRID, level=0.9, chunk_size=5)))
