"""Property-based tests (hypothesis) of the law and the costs, in float32 and float64.

Every property is checked over wide valid ranges (N up to 1e13, D up to 1e15, C up to 1e28,
constants around the published fits) in JAX's default float32 and inside
``jax.enable_x64(True)``. The functions under test are jitted once at module level and fed
arrays of fixed shapes, so examples reuse one executable per dtype.

Tolerances are stated per property in units of the working dtype's machine epsilon ``eps``
and derived from the computation's conditioning. The recurring pattern: a quantity computed
as ``exp(x)`` with ``x`` a sum of logarithms carries an absolute error of a few ulps of
``|x|`` in ``x``, i.e. a relative error of a few ``eps * |x|`` after the exponential (the
condition number of ``exp`` at ``x`` is ``|x|``). ``|log C|`` reaches 65, so float32 results
are good to about ``1e-5`` relative, float64 to about ``1e-14``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chinplan import costs, law, optima
from chinplan.costs import Deployment
from chinplan.law import LawParams

DTYPES = ("float32", "float64")
EPS = {name: float(np.finfo(name).eps) for name in DTYPES}  # 1.19e-7 and 2.22e-16

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

LOG_N = (math.log(1e6), math.log(1e13))
LOG_D = (math.log(1e8), math.log(1e15))
LOG_U = (math.log(1e6), math.log(1e16))


def x64(dtype: str):
    """float64 inside ``jax.enable_x64(True)``; float32 is JAX's default (no flag flipped)."""
    return jax.enable_x64(dtype == "float64")


def as_dtype(p: LawParams, dtype: str) -> LawParams:
    return LawParams(*(jnp.asarray(x, dtype) for x in p))


def array(values, dtype: str) -> jax.Array:
    return jnp.asarray(np.asarray(values, np.float64), dtype)


def f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


def loss_rtol(eps: float, p: LawParams, n: float, d: float) -> float:
    """Relative rounding of L = exp(logsumexp(log E, log A - alpha log N, log B - beta log D)).

    Each exponent carries a few ulps of its addends; their absolute errors become relative
    errors of L after the exp. Bound: eps (4 + |log E| + |log A| + alpha |log N| + |log B|
    + beta |log D|), about 25 eps when the reducible terms dominate (small budgets).
    """
    E, A, B, alpha, beta = (float(x) for x in p)
    return eps * (4 + abs(math.log(E)) + math.log(A) + alpha * abs(math.log(n)) + math.log(B) + beta * abs(math.log(d)))


# Jitted once: every example of every property reuses one executable per (dtype, shape).
_loss = jax.jit(law.loss)
_loss_dc = jax.jit(lambda p, n, d, u: law.loss(p, n, d, unique_tokens=u))
_compute_optimal = jax.jit(optima.compute_optimal)
_optimal_for_loss = jax.jit(optima.optimal_for_loss)
_effective_data = jax.jit(law.effective_data)
_effective_params = jax.jit(law.effective_params)
_inference_optimal = jax.jit(optima.inference_optimal)
_tco = jax.jit(costs.tco)

# Constants around the published fits (Hoffmann 2022: A 406, B 411, alpha 0.34, beta 0.28;
# Besiroglu 2024: E 1.82, A 482, B 2085, alpha 0.35, beta 0.37; Muennighoff 2023: E 1.87,
# A 521, B 1488, alpha = beta = 0.35), widened on every side.
laws = st.one_of(
    st.sampled_from(list(law.PRESETS.values())),
    st.builds(
        lambda e, la, lb, al, be: LawParams(e, math.exp(la), math.exp(lb), al, be),
        st.floats(1.5, 2.2),
        st.floats(5.5, 7.0),
        st.floats(5.5, 8.0),
        st.floats(0.25, 0.45),
        st.floats(0.25, 0.45),
    ),
)


def ordered_pair(lo: float, hi: float, min_gap: float):
    """Two floats ``x < y`` in ``[lo, hi]`` at least ``min_gap`` apart."""
    return (
        st.tuples(st.floats(lo, hi), st.floats(lo, hi))
        .map(sorted)
        .filter(lambda xy: xy[1] - xy[0] >= min_gap)
        .map(tuple)
    )


# ----------------------------------------------------------------------------- compute optimum


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, **SETTINGS)
@given(p=laws, log10_c=st.floats(15.0, 28.0))
def test_compute_optimal_is_on_the_budget_line_and_is_the_argmin(dtype, p, log10_c):
    """6 N_opt D_opt = C, and moving along 6ND = C in either direction never lowers the loss."""
    eps = EPS[dtype]
    c = 10.0**log10_c
    with x64(dtype):
        pd = as_dtype(p, dtype)
        opt = _compute_optimal(pd, array(c, dtype))
        n, d = float(opt.n), float(opt.d)
        # log N + log D = (a + b)(log C - log 6) with a, b and the products each rounded:
        # about 6 ulps of |log C| in the exponent, plus the exp and the float64 product 6 n d.
        rtol = 8 * eps * (1 + math.log(c))
        assert abs(6.0 * n * d / c - 1.0) <= rtol, (6.0 * n * d / c - 1.0, rtol)
        # Perturb log N by +-h along the budget line (D = C / 6N, formed in float64 on the host).
        h = np.array([-1.0, -0.1, -1e-2, -1e-3, 1e-3, 1e-2, 0.1, 1.0])
        n_h = n * np.exp(h)
        d_h = c / (6.0 * n_h)
        at_opt = f64(_loss(pd, array(np.full_like(h, n), dtype), array(np.full_like(h, d), dtype)))
        moved = f64(_loss(pd, array(n_h, dtype), array(d_h, dtype)))
        # The loss is flat at the optimum (the rise for h = 1e-3 can be below float32's
        # rounding); the optimum's own error (rtol in N) changes the loss only at second order.
        # So the perturbed loss may undercut the optimum only by the loss's own rounding,
        # twice (both sides): at C = 1e16, where the reducible terms are 10 of L = 11.8,
        # float32 shows 5e-7 relative.
        tol = 2 * loss_rtol(eps, p, n, d)
        assert np.all(moved >= at_opt * (1 - tol)), (moved - at_opt, h)
        if dtype == "float64":  # float64 resolves the rise for every h: a strict minimum
            assert np.all(moved > at_opt), (moved - at_opt, h)


# ----------------------------------------------------------------------------- monotone loss


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=80, **SETTINGS)
@given(p=laws, log_n=ordered_pair(*LOG_N, 1e-3), log_d=ordered_pair(*LOG_D, 1e-3))
def test_loss_falls_as_n_and_d_grow(dtype, p, log_n, log_d):
    """L(N2, D) < L(N1, D) for N2 > N1 and likewise in D: strictly in float64.

    float32 asks only for non-increasing: for N near 1e13 the change A N^-alpha (1 - e^-1e-3
    alpha) can be 1e-8, below float32's ulp of L ~ 2 (2.4e-7), so neighbours may tie.
    """
    (n1, n2), (d1, d2) = np.exp(log_n), np.exp(log_d)
    with x64(dtype):
        pd = as_dtype(p, dtype)
        l0, l_more_n, l_more_d = f64(_loss(pd, array([n1, n2, n1], dtype), array([d1, d1, d2], dtype)))
    if dtype == "float64":
        # The smallest change here, beta B D^-beta 1e-3 >= 0.25 e^5.5 1e15^-0.45 1e-3 ~ 1e-8,
        # is 1e7 ulps of L.
        assert l_more_n < l0 and l_more_d < l0, (l0, l_more_n, l_more_d)
    else:
        assert l_more_n <= l0 and l_more_d <= l0, (l0, l_more_n, l_more_d)


# ----------------------------------------------------------------------------- data-constrained


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=80, **SETTINGS)
@given(log_d=st.floats(*LOG_D), log_u=ordered_pair(*LOG_U, 1e-3), log_n=st.floats(*LOG_N), p=laws)
def test_effective_data_and_params(dtype, log_d, log_u, log_n, p):
    """Muennighoff et al. 2023: D' <= D, D' = D without repetition, D' grows with unique tokens.

    D' = exp(log U + log1p(R* (1 - exp(-R/R*)))) in float arithmetic: the exponent carries half
    an ulp of |log D| and more, so D' matches D to ``eps (1 + 2 |log D|)`` relative, never
    exceeding it by more (observed: 0.52 eps |log D| at most over 1e5 random cases). The same
    holds for N' against N with the cap N_opt(U_D).
    """
    eps = EPS[dtype]
    d, n = math.exp(log_d), math.exp(log_n)
    u1, u2 = np.exp(log_u)
    us = np.sort([u1, u2, d, 10 * d])  # ascending unique tokens; at least the last two >= D
    with x64(dtype):
        pd = as_dtype(p, dtype)
        eff_d = f64(_effective_data(array(np.full(4, d), dtype), array(us, dtype)))
        eff_n = f64(_effective_params(pd, array(np.full(4, n), dtype), array(us, dtype)))
        plain = f64(_loss(pd, array(np.full(4, n), dtype), array(np.full(4, d), dtype)))
        dc = f64(_loss_dc(pd, array(np.full(4, n), dtype), array(np.full(4, d), dtype), array(us, dtype)))
    tol_d = eps * (1 + 2 * abs(log_d))
    tol_n = eps * (1 + 2 * abs(log_n))
    # At most D (and N).
    assert np.all(eff_d <= d * (1 + tol_d)), eff_d / d - 1
    assert np.all(eff_n <= n * (1 + tol_n)), eff_n / n - 1
    # Nothing repeated (U >= D): D' = D, the very same value for every such U.
    repeated = us < d
    np.testing.assert_allclose(eff_d[~repeated], d, rtol=tol_d)
    assert np.all(eff_d[~repeated] == eff_d[-1]), eff_d
    # Monotone (non-decreasing) in the unique tokens, for D' and for N' (whose cap N_opt(U)
    # keeps growing with U).
    assert np.all(np.diff(eff_d) >= 0), eff_d
    assert np.all(np.diff(eff_n) >= 0), eff_n
    if dtype == "float64":
        # Strictly increasing while data are repeated and U grows by >= 1e-3 in log. The rise is
        # second order near U = D (dD'/dU = 0 at R = 0): >= D R^2 / (2 R*) ~ 3e-8 D for
        # R >= 1e-3, far above float64 rounding.
        for i in range(3):
            if us[i] < d * math.exp(-1e-3) and us[i + 1] >= us[i] * math.exp(1e-3):
                assert eff_d[i] < eff_d[i + 1], (i, eff_d)
    # The data-constrained loss is never below the unconstrained one (up to rounding of L).
    assert np.all(dc >= plain * (1 - 4 * eps)), dc - plain
    # ... and equals it when nothing is repeated and N is within the cap N_opt(U_D).
    # (N' = N detects "within the cap"; the cap N_opt(U_D) itself is checked in test_law.)
    enough = eff_n >= n * (1 - tol_n)
    for k in range(4):
        if enough[k] and not repeated[k]:
            np.testing.assert_allclose(dc[k], plain[k], rtol=4 * eps + max(p.alpha, p.beta) * (tol_n + tol_d))


# ----------------------------------------------------------------------------- inference optimum


def _inference_tol(eps: float, p: LawParams, target: float, gap: float, n: float, d: float) -> float:
    """Relative tolerance of the inference-aware plan against the Chinchilla plan.

    Two sources: (1) the log-space chains (|log N|, |log D| up to ~50 in the exponents, each
    rounded a few times and divided by alpha or beta); (2) the gap l - E: the target and E
    are rounded to the dtype (half an ulp of l each) and :func:`chinplan.optima.inference_optimal`
    used to form E as exp(log E), one more ulp of E (see the regression test below). A relative error
    eps l / gap in the gap moves log N by 1/alpha (log D by 1/beta) times as much: condition
    number l / (gap min(alpha, beta)). Observed at most 0.65x (float32) and 4.6x (float64) of
    eps (cond + |log N| + |log D|) over 400 random cases; 16x leaves a margin.
    """
    cond = target / (gap * min(float(p.alpha), float(p.beta)))
    return 16 * eps * (cond + abs(math.log(n)) + abs(math.log(d)))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, **SETTINGS)
@given(p=laws, log10_gap=st.floats(-2.0, 0.3), log10_dinf=st.floats(0.0, 24.0))
def test_inference_optimal_is_smaller_reaches_target_and_is_chinchilla_at_zero(dtype, p, log10_gap, log10_dinf):
    """Sardana et al. 2024: N_inf <= N_chin, D_inf >= D_chin, L(N_inf, D_inf) = l; at D_inf = 0 equal."""
    eps = EPS[dtype]
    gap = 10.0**log10_gap
    target = float(p.E) + gap
    with x64(dtype):
        pd = as_dtype(p, dtype)
        t = array(target, dtype)
        plans = _inference_optimal(pd, jnp.stack([t, t]), array([10.0**log10_dinf, 0.0], dtype))
        chin = _optimal_for_loss(pd, t)
        n, d = f64(plans.n), f64(plans.d)
        n_c, d_c = float(chin.n), float(chin.d)
        reached = f64(_loss(pd, plans.n, plans.d))
    assert np.all(np.isfinite(n)) and np.all(np.isfinite(d))
    tol = _inference_tol(eps, p, target, gap, n_c, d_c)
    # Never more parameters (and never fewer tokens) than the Chinchilla plan for the same loss.
    assert n[0] <= n_c * (1 + tol), (n[0] / n_c - 1, tol)
    assert d[0] >= d_c * (1 - tol), (d[0] / d_c - 1, tol)
    # Reaches the target: L(N, D) = l up to the loss's rounding plus the plan's. A relative
    # error delta of N moves L by alpha A N^-alpha delta <= gap delta; the exp/log chain
    # gives delta ~ eps |log N|, and the exp(log E) ulp moves L by eps E.
    tol_l = 4 * eps + eps * (float(p.E) + gap * (abs(math.log(n[0])) + abs(math.log(d[0])))) / target
    np.testing.assert_allclose(reached, target, rtol=tol_l)
    # Zero inference tokens: the Chinchilla optimum.
    np.testing.assert_allclose(n[1], n_c, rtol=tol)
    np.testing.assert_allclose(d[1], d_c, rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inference_optimal_at_zero_tokens_is_exactly_chinchilla(dtype):
    """With an E for which exp(log E) != E, the zero-inference plan must still be Chinchilla's.

    Regression test: costs once formed the gap l - E as l - exp(log E); the ulp of E, times
    the condition number l / (alpha gap), put the plan 3e-3 (float32) away from Chinchilla's.
    """
    eps = EPS[dtype]
    p = law.HOFFMANN_2022._replace(E=1.7058087548273855)
    with x64(dtype):
        target = float(array(p.E, dtype)) + 2e-4
        got = optima.inference_optimal(p, target, 0.0)
        chin = optima.optimal_for_loss(p, target)
        n_c, d_c = float(chin.n), float(chin.d)
        # Only the exp/log chains (no conditioning of the gap: both sides see the same gap).
        tol = 16 * eps * (abs(math.log(n_c)) + abs(math.log(d_c)))
        np.testing.assert_allclose(float(got.n), n_c, rtol=tol)
        np.testing.assert_allclose(float(got.d), d_c, rtol=tol)


# ----------------------------------------------------------------------------- costs vs queries

deployments = st.builds(
    lambda q, ti, to, peak, ut, up, ud, price, peak_i, price_i: Deployment(q, ti, to, peak, ut, up, ud, price, peak_i, price_i),
    st.floats(1.0, 1e12),
    st.floats(1.0, 1e4),
    st.floats(1.0, 1e4),
    st.sampled_from([costs.A100.bf16, costs.H100_SXM.bf16, costs.H100_SXM.fp8]),
    st.floats(0.05, 0.9),
    st.floats(0.05, 0.9),
    st.floats(0.01, 0.9),
    st.floats(0.5, 10.0),
    st.sampled_from([costs.A100.bf16, costs.H200.bf16]),
    st.floats(0.5, 10.0),
)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, **SETTINGS)
@given(
    dep=deployments,
    log_n=st.floats(*LOG_N),
    log_d=st.floats(*LOG_D),
    log10_k=st.floats(-3.0, 3.0),
)
def test_costs_are_linear_in_query_volume(dtype, dep, log_n, log_d, log10_k):
    """tco at k Q: inference FLOPs, GPU-hours and dollars are k times those at Q; training unchanged.

    Each cost is exp(x) with x a sum of logarithms (log 2 + log N + log Q + log T - log 3600
    - log peak - log MFU + log price): x carries a few ulps of each addend, so the cost's
    relative error is a few eps times the sum of their magnitudes (~150 here: 1.8e-5 in
    float32), at Q and at k Q alike (k Q is rounded once more to the dtype).
    """
    eps = EPS[dtype]
    k = 10.0**log10_k
    n, d = math.exp(log_n), math.exp(log_d)
    with x64(dtype):
        cast = lambda dp: Deployment(*(array(v, dtype) for v in dp))  # noqa: E731
        base = _tco(array(n, dtype), array(d, dtype), cast(dep))
        scaled = _tco(array(n, dtype), array(d, dtype), cast(dep._replace(queries=dep.queries * k)))
    magnitudes = [abs(log_n), abs(log_d), abs(math.log(dep.queries * max(k, 1.0))),
                  abs(math.log(dep.input_tokens + dep.output_tokens)), math.log(3600.0),
                  math.log(max(dep.peak_flops, dep.inference_peak_flops))]
    magnitudes += [abs(math.log(x)) for x in (dep.mfu_prefill, dep.mfu_decode, dep.inference_price, dep.price, 6.0)]
    tol = 8 * eps * (2 + sum(magnitudes))
    for name in ("inference_flops", "inference_gpu_hours", "inference_dollars"):
        b, s = float(getattr(base, name)), float(getattr(scaled, name))
        np.testing.assert_allclose(s, k * b, rtol=tol, err_msg=name)
    for name in ("train_flops", "train_gpu_hours", "train_dollars"):
        # The training part does not read the queries: the same computation, bit for bit.
        assert f64(getattr(scaled, name)) == f64(getattr(base, name)), name
    want = float(base.train_dollars) + k * float(base.inference_dollars)
    np.testing.assert_allclose(float(scaled.dollars), want, rtol=tol)
    assert float(scaled.flops) >= float(scaled.train_flops) * (1 - tol)
