"""Tests for chinplan.costs against independent float64 NumPy/SciPy computations."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chinplan import costs, law, optima, uncertain
from chinplan.costs import Deployment
from chinplan.uncertain import LogNormal, LogUniform, Uniform
from chinplan.law import LawParams

P = law.HOFFMANN_2022
RD, RN = law.R_D_STAR, law.R_N_STAR

# ----------------------------------------------------------------------------- oracles


def np_loss(p, n, d):
    E, A, B, al, be = (np.float64(x) for x in p)
    return E + A / n**al + B / d**be


def np_dc_loss(p, n, d, u):
    """Muennighoff et al. 2023, Eq. 5-6, written out in float64."""
    E, A, B, al, be = (np.float64(x) for x in p)
    ud = np.minimum(d, u)
    dp = ud + ud * RD * (1 - np.exp(-(d / ud - 1) / RD))
    g = (al * A / (be * B)) ** (1 / (al + be))
    ncap = g * (u * g) ** (be / al)  # the N_opt whose D_opt is u
    un = np.minimum(n, ncap)
    nprime = un + un * RN * (1 - np.exp(-(n / un - 1) / RN))
    return E + A / nprime**al + B / dp**be


def np_tco(n, d, dep):
    q, ti, to, peak, ut, up, ud, price = (np.float64(x) for x in dep[:8])
    peak_i = peak if dep.inference_peak_flops is None else np.float64(dep.inference_peak_flops)
    price_i = price if dep.inference_price is None else np.float64(dep.inference_price)
    tr_f = 6 * n * d
    inf_f = 2 * n * q * (ti + to)
    tr_h = tr_f / (3600 * peak * ut)
    inf_h = 2 * n * q * (ti / up + to / ud) / (3600 * peak_i)
    return dict(
        train_flops=tr_f,
        inference_flops=inf_f,
        flops=tr_f + inf_f,
        train_gpu_hours=tr_h,
        inference_gpu_hours=inf_h,
        gpu_hours=tr_h + inf_h,
        train_dollars=price * tr_h,
        inference_dollars=price_i * inf_h,
        dollars=price * tr_h + price_i * inf_h,
    )


def sardana_root(p, target, d_inf):
    """D solving the Sardana et al. equation, by brentq on log D (float64)."""
    E, A, B, al, be = (float(x) for x in p)

    def g(x):
        d = math.exp(x)
        return (B + be * B / al) * d**-be + (be * B * d_inf / (3 * al)) * d ** (-be - 1) + E - target

    x = scipy.optimize.brentq(g, -50.0, 200.0, xtol=1e-14, rtol=1e-15, maxiter=500)
    d = math.exp(x)
    n = (A / (target - E - B * d**-be)) ** (1 / al)
    return n, d


def random_law(rng):
    return LawParams(
        E=rng.uniform(1.0, 3.0),
        A=math.exp(rng.uniform(4.0, 8.0)),
        B=math.exp(rng.uniform(4.0, 8.0)),
        alpha=rng.uniform(0.2, 0.55),
        beta=rng.uniform(0.2, 0.55),
    )


DEP = Deployment(
    queries=3e9,
    input_tokens=800.0,
    output_tokens=250.0,
    peak_flops=costs.H100_SXM.bf16,
    mfu_train=0.42,
    mfu_prefill=0.55,
    mfu_decode=0.08,
    price=2.5,
    inference_peak_flops=costs.H200.bf16,
    inference_price=3.2,
)

DTYPES = [("float32", 2e-5), ("float64", 1e-11)]


def x64(dtype):
    return jax.enable_x64(dtype == "float64")


# ----------------------------------------------------------------------------- hardware


def test_hardware_presets():
    assert costs.A100.peak("bf16") == 312e12 and costs.A100.int8 == 624e12
    assert costs.H100_SXM.peak() == 989e12 and costs.H100_SXM.peak("fp8") == 1979e12
    assert costs.H200.peak("int8") == 1979e12 and costs.H200.memory_bytes > costs.H100_SXM.memory_bytes
    with pytest.raises(ValueError, match="fp8"):
        costs.A100.peak("fp8")
    with pytest.raises(ValueError, match="precision"):
        costs.H100_SXM.peak("fp4")
    # A Hardware is a pytree with numeric leaves.
    assert all(isinstance(x, float) for x in jax.tree_util.tree_leaves(costs.H200))
    assert costs.HARDWARE["h100"] is costs.H100_SXM


# ----------------------------------------------------------------------------- flops and costs


@pytest.mark.parametrize("dtype,rtol", DTYPES)
def test_flop_formulas(dtype, rtol):
    rng = np.random.default_rng(1)
    n = 10 ** rng.uniform(7, 13, 20)
    d = 10 ** rng.uniform(9, 15, 20)
    with x64(dtype):
        got = np.exp(np.asarray(law.log_training_flops(n, d), np.float64))
        np.testing.assert_allclose(got, 6 * n * d, rtol=rtol * 30)  # exp of a ~60 log amplifies
        assert law.log_training_flops(n, d).dtype == jnp.dtype(dtype)
        np.testing.assert_allclose(costs.inference_flops(n, d), 2 * n * d, rtol=rtol * 30)
        np.testing.assert_allclose(costs.lifetime_tokens(1e9, 500, 200), 7e11, rtol=rtol)
        np.testing.assert_allclose(costs.pflops_days(8.64e19 * 3), 3.0, rtol=rtol)
        np.testing.assert_allclose(costs.gpu_hours(3.6e18, 1e15, 0.5), 2.0, rtol=rtol * 10)
    # 6ND well beyond 1e25 stays finite and exact in float32.
    assert np.isfinite(float(law.training_flops(1e13, 1e15)))
    np.testing.assert_allclose(float(jnp.exp(law.log_training_flops(1e13, 1e15))), 6e28, rtol=1e-5)


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("separate_serving", [False, True])
def test_tco_against_numpy(dtype, rtol, separate_serving):
    dep = DEP if separate_serving else DEP._replace(inference_peak_flops=None, inference_price=None)
    rng = np.random.default_rng(2)
    n = 10 ** rng.uniform(8, 12, 16)
    d = 10 ** rng.uniform(10, 14, 16)
    with x64(dtype):
        got = costs.tco(n, d, dep)
        ref = np_tco(n, d, dep)
        for name, value in got._asdict().items():
            assert value.dtype == jnp.dtype(dtype)
            np.testing.assert_allclose(value, ref[name], rtol=rtol * 30, err_msg=name)
        np.testing.assert_allclose(costs.log_dollars(n, d, dep), np.log(ref["dollars"]), rtol=rtol)


def test_tco_linear_in_queries():
    base = costs.tco(7e10, 1.4e12, DEP)
    for k in (0.0, 1.0, 2.0, 10.0, 1e3):
        c = costs.tco(7e10, 1.4e12, DEP._replace(queries=DEP.queries * k))
        np.testing.assert_allclose(c.train_dollars, base.train_dollars, rtol=1e-6)
        np.testing.assert_allclose(c.inference_dollars, k * base.inference_dollars, rtol=1e-5)
        np.testing.assert_allclose(c.inference_flops, k * base.inference_flops, rtol=1e-5)
        np.testing.assert_allclose(c.dollars, base.train_dollars + k * base.inference_dollars, rtol=1e-5)
    # Zero queries: pure training cost, no NaN anywhere (gradients included).
    zero = costs.tco(7e10, 1.4e12, DEP._replace(queries=0.0))
    assert float(zero.inference_dollars) == 0.0 and all(np.isfinite(x) for x in zero)
    g = jax.grad(lambda q: costs.tco(7e10, 1.4e12, DEP._replace(queries=q)).dollars)(0.0)
    assert np.isfinite(float(g))


def test_tco_jit_vmap_grad():
    n = jnp.array([1e9, 1e10, 1e11])
    d = jnp.array([2e10, 2e11, 2e12])
    eager = costs.tco(n, d, DEP)
    jitted = jax.jit(costs.tco)(n, d, DEP)
    vmapped = jax.vmap(costs.tco, in_axes=(0, 0, None))(n, d, DEP)
    for a, b, c in zip(eager, jitted, vmapped):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-6)
    # d log(dollars) / d log N = 1: cost is linear in N at fixed D.
    g = jax.grad(lambda ln: costs.log_dollars(jnp.exp(ln), 1e12, DEP))(jnp.log(1e10))
    np.testing.assert_allclose(g, 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------- distributions


def test_distributions_sample():
    key = jax.random.key(0)
    m = 20_000
    ln = LogNormal(2.0, 0.3).sample(key, (m,))
    assert ln.shape == (m,) and bool(jnp.all(ln > 0))
    # Median within ~4 standard errors: se(median of log) = 1.2533 sigma / sqrt(m).
    assert abs(float(jnp.median(jnp.log(ln))) - math.log(2.0)) < 4 * 1.2533 * 0.3 / math.sqrt(m)
    u = Uniform(0.3, 0.5).sample(key, (m,))
    assert float(u.min()) >= 0.3 and float(u.max()) < 0.5
    assert abs(float(u.mean()) - 0.4) < 4 * 0.2 / math.sqrt(12 * m)
    lu = LogUniform(1e8, 1e10).sample(key, (m,))
    assert abs(float(jnp.mean(jnp.log10(lu))) - 9.0) < 4 * 2 / math.sqrt(12 * m)
    # Array parameters broadcast after the draw axis; same key -> same draws.
    arr = LogNormal(jnp.array([1.0, 2.0, 3.0]), 0.1).sample(key, (5,))
    assert arr.shape == (5, 3)
    np.testing.assert_array_equal(LogNormal(2.0, 0.3).sample(key, (m,)), ln)


def test_sample_deployment():
    dep = Deployment(queries=LogNormal(1e9, 0.5), input_tokens=500.0, output_tokens=Uniform(100.0, 300.0), price=2.0)
    out = costs.sample_deployment(dep, 64, key=jax.random.key(3))
    assert out.inference_price is None and out.inference_peak_flops is None
    for name in ("queries", "input_tokens", "output_tokens", "peak_flops", "mfu_train", "price"):
        assert getattr(out, name).shape == (64,), name
    np.testing.assert_array_equal(out.input_tokens, 500.0)
    assert float(out.output_tokens.min()) >= 100.0 and float(out.output_tokens.max()) < 300.0
    assert float(jnp.std(out.queries)) > 0
    again = costs.sample_deployment(dep, 64, key=jax.random.key(3))
    np.testing.assert_array_equal(again.queries, out.queries)
    # The per-draw pytree (law, deployment) maps over its leading axis.
    params = jax.tree_util.tree_map(lambda x: jnp.full((64,), x), P)
    theta = costs.with_cost_draws(params, dep, key=jax.random.key(3))
    per_draw = jax.vmap(lambda t: costs.tco(1e10, 2e11, t[1]).dollars)(theta)
    ref = np_tco(1e10, 2e11, Deployment(*(np.asarray(x) if x is not None else None for x in out)))["dollars"]
    np.testing.assert_allclose(per_draw, ref, rtol=1e-5)


@pytest.mark.parametrize(
    "field,value",
    [
        ("queries", -1.0),
        ("mfu_train", 0.0),
        ("mfu_decode", 1.5),
        ("peak_flops", 0.0),
        ("price", float("nan")),
        ("queries", LogNormal(1.0, 0.2)._replace(median=-1.0)),  # _replace skips the build-time check
        ("mfu_prefill", Uniform(0.4, 0.6)._replace(lo=0.6, hi=0.4)),
    ],
)
def test_deployment_validation(field, value):
    with pytest.raises(ValueError, match=field):
        costs.sample_deployment(Deployment(**{field: value}), 4, key=jax.random.key(0))


def test_sample_tree_errors():
    with pytest.raises(ValueError, match="num_draws"):
        uncertain.sample_tree(DEP, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="params"):
        costs.with_cost_draws(P, DEP, key=jax.random.key(0))
    params = jax.tree_util.tree_map(lambda x: jnp.full((4,), x), P)
    with pytest.raises(ValueError, match="key"):
        costs.with_cost_draws(params, Deployment(queries=LogNormal(1e9, 0.3)))
    const = costs.with_cost_draws(params, DEP)[1]  # no distributions: no key needed
    assert const.queries.shape == (4,)


# ----------------------------------------------------------------------------- inference optimum


def _random_cases(seed, k):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        p = random_law(rng)
        target = p.E + 10 ** rng.uniform(-2.5, 0.3)
        d_inf = 10 ** rng.uniform(6, 20)
        out.append((p, target, d_inf))
    return out


@pytest.mark.parametrize("dtype,rtol", [("float32", 3e-4), ("float64", 1e-10)])
def test_inference_optimal_vs_brentq(dtype, rtol):
    cases = _random_cases(4, 30)
    stacked = LawParams(*(np.array([c[0][i] for c in cases]) for i in range(5)))
    target = np.array([c[1] for c in cases])
    d_inf = np.array([c[2] for c in cases])
    with x64(dtype):
        got = jax.jit(optima.inference_optimal)(stacked, target, d_inf)
        assert got.n.dtype == jnp.dtype(dtype)
        assert bool(jnp.all(jnp.isfinite(got.n))) and bool(jnp.all(jnp.isfinite(got.d)))
        for i, (p, t, di) in enumerate(cases):
            n_ref, d_ref = sardana_root(p, t, di)
            np.testing.assert_allclose(float(got.d[i]), d_ref, rtol=rtol)
            np.testing.assert_allclose(float(got.n[i]), n_ref, rtol=rtol)
            np.testing.assert_allclose(float(got.loss[i]), t, rtol=1e-6)
        # The plan reaches the target loss.
        np.testing.assert_allclose(law.loss(stacked, got.n, got.d), target, rtol=rtol)


def test_inference_optimal_vs_constrained_minimisation():
    """SLSQP on min 6ND + 2N D_inf s.t. L(N, D) = target, in float64 log coordinates."""
    for p, t, di in _random_cases(5, 8):
        with jax.enable_x64(True):
            got = optima.inference_optimal(p, t, di)
        chin = optima.optimal_for_loss(p, t)
        u0, v0 = math.log(float(chin.n)), math.log(float(chin.d))
        scale = 6 * float(chin.n) * float(chin.d) + 2 * float(chin.n) * di

        def flops(z):
            return (6 * math.exp(z[0] + z[1]) + 2 * math.exp(z[0]) * di) / scale

        def constraint(z):
            return (np_loss(p, math.exp(z[0]), math.exp(z[1])) - t) / (t - p.E)

        res = scipy.optimize.minimize(
            flops, [u0, v0], method="SLSQP", constraints=[{"type": "eq", "fun": constraint}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        assert res.success, res.message
        z = [math.log(float(got.n)), math.log(float(got.d))]
        assert abs(constraint(z)) < 1e-9
        assert flops(z) <= res.fun * (1 + 1e-8)  # ours is at least as cheap
        np.testing.assert_allclose(flops(z), res.fun, rtol=1e-7)
        np.testing.assert_allclose(z, res.x, atol=2e-3)


@pytest.mark.parametrize("dtype,rtol", [("float32", 3e-6), ("float64", 1e-13)])
def test_inference_optimal_zero_inference_is_chinchilla(dtype, rtol):
    rng = np.random.default_rng(6)
    for _ in range(10):
        p = random_law(rng)
        t = p.E + 10 ** rng.uniform(-2.5, 0.3)
        with x64(dtype):
            got = optima.inference_optimal(p, t, 0.0)
            ref = optima.optimal_for_loss(p, t)
            np.testing.assert_allclose(got.d, ref.d, rtol=rtol)
            np.testing.assert_allclose(got.n, ref.n, rtol=rtol * 10)
            np.testing.assert_allclose(got.loss, ref.loss, rtol=rtol)


_law_strategy = st.tuples(
    st.floats(1.0, 3.0),
    st.floats(3.0, 9.0),
    st.floats(3.0, 9.0),
    st.floats(0.15, 0.6),
    st.floats(0.15, 0.6),
    st.floats(-3.0, 0.5),
    st.floats(0.0, 22.0),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_law_strategy)
def test_never_more_parameters_than_chinchilla(case):
    e, la, lb, al, be, log_gap, log_dinf = case
    p = LawParams(e, math.exp(la), math.exp(lb), al, be)
    t = e + 10**log_gap
    # Keep D*(t) and N*(t) (x 2^(1/beta) for inference) inside float32's range (3.4e38).
    assume((lb + math.log1p(be / al) - log_gap * math.log(10)) / be + math.log(2) / be < 80)
    assume((la + math.log1p(al / be) - log_gap * math.log(10)) / al < 80)
    d_inf = 10**log_dinf
    got = _jit_opt(p, t, d_inf)
    chin = optima.optimal_for_loss(p, t)
    assert np.isfinite(float(got.n)) and np.isfinite(float(got.d))
    # float32 forms the gap l - E by cancellation: a few ulps of l, amplified by 1/(gap min(alpha, beta))
    # in N and D (jit and eager may round exp(log E) differently).
    tol = 1e-5 + 8 * 2.0**-24 * t / (10**log_gap * min(al, be))
    assert float(got.n) <= float(chin.n) * (1 + tol)
    assert float(got.d) >= float(chin.d) * (1 - tol)
    # Monotone: more inference, smaller model (the same compiled function: no cancellation noise).
    more = _jit_opt(p, t, d_inf * 10 + 1e6)
    assert float(more.n) <= float(got.n) * (1 + 1e-5)


_jit_opt = jax.jit(optima.inference_optimal)


def test_inference_optimal_unreachable_and_invalid():
    target = jnp.array([1.5, P.E, 2.0, 2.5])
    with pytest.raises(ValueError, match=r"target_loss must exceed the irreducible loss E"):
        optima.inference_optimal(P, target, 1e12)  # concrete: an input error
    got = jax.jit(optima.inference_optimal)(P, target, 1e12)  # traced: inf plans, never NaN
    assert not bool(jnp.any(jnp.isnan(got.n))) and not bool(jnp.any(jnp.isnan(got.d)))
    np.testing.assert_array_equal(np.isinf(got.n), [True, True, False, False])
    np.testing.assert_array_equal(np.isinf(got.d), [True, True, False, False])
    np.testing.assert_allclose(got.loss[:2], P.E, rtol=1e-6)
    with pytest.raises(ValueError, match="inference_tokens"):
        optima.inference_optimal(P, 2.0, -1.0)
    # Gradients of the unreachable lanes are not NaN either.
    g = jax.grad(lambda t: jnp.sum(jnp.where(jnp.isfinite(optima.inference_optimal(P, t, 1e12).d), jnp.log(optima.inference_optimal(P, t, 1e12).d), 0.0)))(target)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_inference_optimal_jit_vmap_grad():
    targets = jnp.array([1.9, 2.0, 2.2])
    d_inf = jnp.array([0.0, 1e12, 1e16])
    eager = optima.inference_optimal(P, targets, d_inf)
    jitted = jax.jit(optima.inference_optimal)(P, targets, d_inf)
    vmapped = jax.vmap(optima.inference_optimal, in_axes=(None, 0, 0))(P, targets, d_inf)
    for a, b, c in zip(eager, jitted, vmapped):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-6)
    # Implicit gradient vs central finite differences of the brentq oracle (float64).
    with jax.enable_x64(True):
        for t, di in [(2.0, 1e12), (1.9, 1e15), (2.3, 0.0)]:
            g = jax.grad(lambda t, di: jnp.log(optima.inference_optimal(P, t, di).n), argnums=(0, 1))(t, di)
            h = 1e-6
            fd = (math.log(sardana_root(P, t + h, di)[0]) - math.log(sardana_root(P, t - h, di)[0])) / (2 * h)
            np.testing.assert_allclose(float(g[0]), fd, rtol=1e-5)
            if di > 0:
                fdi = (math.log(sardana_root(P, t, di * (1 + h))[0]) - math.log(sardana_root(P, t, di * (1 - h))[0])) / (2 * h * di)
                np.testing.assert_allclose(float(g[1]), fdi, rtol=1e-5)
            else:
                assert np.isfinite(float(g[1]))
            # Gradient with respect to the law's constants is finite.
            gp = jax.grad(lambda p: jnp.log(optima.inference_optimal(p, t, di).d))(LawParams(*map(jnp.asarray, P)))
            assert all(np.isfinite(float(x)) for x in gp)


def test_inference_optimal_no_recompile():
    traces = []

    @jax.jit
    def f(t, di):
        traces.append(1)
        return optima.inference_optimal(P, t, di)

    f(jnp.float32(2.0), jnp.float32(1e12))
    f(jnp.float32(2.1), jnp.float32(1e14))
    assert len(traces) == 1


def test_inference_optimal_float32_extremes():
    got = optima.inference_optimal(P, jnp.array([1.70, 1.8, 3.0, 5.0]), jnp.array([1e22, 1e25, 1e3, 1e20]))
    assert bool(jnp.all(jnp.isfinite(got.n))) and bool(jnp.all(jnp.isfinite(got.d)))
    np.testing.assert_allclose(law.loss(P, got.n, got.d), got.loss, rtol=1e-5)


# ----------------------------------------------------------------------------- cost optimum


def test_weighted_inference_tokens_formula():
    peak, peak_i, ut, up, ud, pr, pr_i = 989e12, 989e12, 0.42, 0.55, 0.08, 2.5, 3.2
    q, ti, to = DEP.queries, DEP.input_tokens, DEP.output_tokens
    peak_i = DEP.inference_peak_flops
    ref = (pr_i / peak_i) / (pr / peak) * ut * q * (ti / up + to / ud)
    np.testing.assert_allclose(costs.weighted_inference_tokens(DEP), ref, rtol=1e-5)


def test_cost_optimal_minimises_dollars():
    """Along the iso-loss curve, no D gives fewer dollars than cost_optimal (float64 scan)."""
    with jax.enable_x64(True):
        for t in (1.9, 2.1, 2.4):
            got = costs.cost_optimal(P, t, DEP)
            ours = np_tco(float(got.n), float(got.d), DEP)["dollars"]
            chin = optima.optimal_for_loss(P, t)
            E, A, B, al, be = P

            def dollars(x):
                d = math.exp(x)
                n = (A / (t - E - B * d**-be)) ** (1 / al)
                return np_tco(n, d, DEP)["dollars"]

            res = scipy.optimize.minimize_scalar(
                dollars, bounds=(math.log(float(chin.d)), math.log(float(chin.d)) + 15), method="bounded",
                options={"xatol": 1e-10},
            )
            assert ours <= res.fun * (1 + 1e-9)
            np.testing.assert_allclose(math.log(float(got.d)), res.x, atol=1e-3)
            np.testing.assert_allclose(float(law.loss(P, got.n, got.d)), t, rtol=1e-10)
            assert float(got.n) < float(chin.n)


# ----------------------------------------------------------------------------- data-constrained


def _dc_cases(seed, k):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        p = random_law(rng)
        c = 10 ** rng.uniform(20, 26)
        d_opt = float(optima.compute_optimal(p, c).d)
        u = d_opt * 10 ** rng.uniform(-1.5, 1.0)  # from ~30 epochs to no repetition
        out.append((p, c, u))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_data_constrained_vs_grid(dtype):
    cases = _dc_cases(7, 12)
    stacked = LawParams(*(np.array([c[0][i] for c in cases]) for i in range(5)))
    c_arr = np.array([c[1] for c in cases])
    u_arr = np.array([c[2] for c in cases])
    with x64(dtype):
        got = jax.jit(optima.data_constrained_optimal)(stacked, c_arr, u_arr)
        assert got.n.dtype == jnp.dtype(dtype)
    for i, (p, c, u) in enumerate(cases):
        n0 = float(optima.compute_optimal(p, c).n)
        x = np.linspace(math.log(n0) - 8, math.log(n0) + 8, 200_001)
        losses = np_dc_loss(p, np.exp(x), c / 6 / np.exp(x), u)
        j = int(np.argmin(losses))
        lo, hi = x[max(j - 1, 0)], x[min(j + 1, len(x) - 1)]
        # Refine the grid minimum with a float64 bounded scalar search.
        ref = scipy.optimize.minimize_scalar(
            lambda z: np_dc_loss(p, math.exp(z), c / 6 / math.exp(z), u), bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-12},
        )
        n, d = float(got.n[i]), float(got.d[i])
        np.testing.assert_allclose(6 * n * d, c, rtol=1e-5 if dtype == "float32" else 1e-12)
        ltol = 1e-6 if dtype == "float32" else 1e-13
        np.testing.assert_allclose(float(got.loss[i]), ref.fun, rtol=ltol)
        assert np_dc_loss(p, n, d, u) <= losses[j] * (1 + ltol)
        np.testing.assert_allclose(math.log(n), ref.x, atol=2e-4 if dtype == "float32" else 1e-6)


def test_data_constrained_unconstrained_limit_and_grad():
    c = jnp.array([1e21, 1e23, 1e25])
    plenty = optima.data_constrained_optimal(P, c, 1e18)
    chin = optima.compute_optimal(P, c)
    np.testing.assert_allclose(plenty.n, chin.n, rtol=1e-4)
    np.testing.assert_allclose(plenty.loss, chin.loss, rtol=1e-6)
    # Scarce data: a worse loss than Chinchilla's, never better.
    scarce = optima.data_constrained_optimal(P, c, chin.d / 30)
    assert bool(jnp.all(scarce.loss > chin.loss))
    # jit / vmap / grad compose.
    vm = jax.vmap(optima.data_constrained_optimal, in_axes=(None, 0, 0))(P, c, chin.d / 30)
    np.testing.assert_allclose(vm.n, scarce.n, rtol=1e-5)
    c0, u0 = 1e23, float(optima.compute_optimal(P, 1e23).d) / 10
    with jax.enable_x64(True):
        g = jax.grad(lambda lc: jnp.log(optima.data_constrained_optimal(P, jnp.exp(lc), u0).n))(math.log(c0))

    def log_n_ref(lc):  # float64 oracle: bounded scalar minimisation of the NumPy loss
        c = math.exp(lc)
        n0 = math.log(float(optima.compute_optimal(P, c).n))
        res = scipy.optimize.minimize_scalar(
            lambda z: np_dc_loss(P, math.exp(z), c / 6 / math.exp(z), u0), bounds=(n0 - 3, n0 + 3),
            method="bounded", options={"xatol": 1e-12},
        )
        return res.x

    h = 1e-2
    fd = (log_n_ref(math.log(c0) + h) - log_n_ref(math.log(c0) - h)) / (2 * h)
    np.testing.assert_allclose(float(g), fd, rtol=1e-3)
    with pytest.raises(ValueError, match="iters"):
        optima.data_constrained_optimal(P, 1e23, 1e11, iters=0)
