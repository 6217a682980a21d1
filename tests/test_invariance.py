"""Invariance and determinism: keys, chunk sizes, device counts, precision, compilation.

* The same PRNG key gives bit-identical output; another key gives another output.
* Engine and decision results do not depend on the chunk size: quantiles and probabilities
  bit for bit (order statistics and exact counts of values that are themselves
  chunk-independent), means and CVaR up to the reassociation of a sum over draws.
* Four (simulated) CPU devices give the one-device results (one subprocess).
* float32 agrees with float64 within tolerances derived from the conditioning of the
  exp/log chains.
* A second call with new values of the same shapes compiles nothing: counted with JAX's
  own compilation events (the ``count_compiles`` fixture of conftest.py), with jit cache
  sizes and the engine's trace counts.
"""

from __future__ import annotations

import math
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chinplan import costs, engine, law, optima, uncertain
from chinplan.decide import risk as decide
from chinplan.inference import huber
from chinplan.costs import Deployment
from chinplan.uncertain import LogNormal, Uniform
from chinplan.law import LawParams

EPS32 = float(np.finfo(np.float32).eps)
N_DRAWS = 64


def make_draws(n_draws: int = N_DRAWS, seed: int = 0, spread: float = 0.05) -> LawParams:
    """Posterior-like float32 draws: the constants of Hoffmann et al. 2022 jittered by ``spread``."""
    rng = np.random.default_rng(seed)
    return LawParams(
        *(np.float32(v) * (1 + spread * rng.standard_normal(n_draws)).astype(np.float32) for v in law.HOFFMANN_2022)
    )


def as64(p: LawParams) -> LawParams:
    return LawParams(*(np.asarray(v, np.float64) for v in p))


PARAMS = make_draws()
DEP = Deployment(
    queries=LogNormal(2e9, 0.7),
    input_tokens=600.0,
    output_tokens=Uniform(100.0, 400.0),
    mfu_train=Uniform(0.35, 0.45),
    price=LogNormal(2.0, 0.2),
)
N = np.array([8e9, 3e10, 7e10, 1.5e11, 4e11])
D = np.array([15e12, 3e12, 1.4e12, 5e11, 2e11])
BUDGETS = np.logspace(18, 28, 37)
TARGETS = np.array([1.9, 2.0, 2.2, 2.6])
CHUNK_SIZES = (5, 16, None)  # below and above a SIMD width of 8 floats; None: the default bucket


def equal_trees(a, b) -> None:
    """Bit-identical pytrees (NaN == NaN)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def differ(a, b) -> bool:
    return any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ----------------------------------------------------------------------------- keys


def test_sample_deployment_same_key_same_draws():
    one = costs.sample_deployment(DEP, N_DRAWS, key=jax.random.key(3))
    again = costs.sample_deployment(DEP, N_DRAWS, key=jax.random.key(3))
    other = costs.sample_deployment(DEP, N_DRAWS, key=jax.random.key(4))
    equal_trees(one, again)
    for name, value in DEP._asdict().items():
        if uncertain.is_distribution(value):
            assert not np.array_equal(getattr(one, name), getattr(other, name)), name
        elif value is not None:
            np.testing.assert_array_equal(getattr(one, name), getattr(other, name))
    # Leaf i uses fold_in(key, i): a field's draws do not depend on the other fields.
    alone = costs.sample_deployment(Deployment(queries=DEP.queries), N_DRAWS, key=jax.random.key(3))
    np.testing.assert_array_equal(alone.queries, one.queries)


def test_decisions_same_key_same_output_other_key_other_output():
    def run(key):
        return dict(
            expected=decide.expected_cost(PARAMS, N, D, DEP, key=key),
            bands=decide.cost_bands(PARAMS, N, D, DEP, key=key),
            cvar=decide.cost_cvar(PARAMS, N, D, DEP, key=key, level=0.9),
            cheaper=decide.prob_cheaper(PARAMS, N, D, DEP, key=key),
            plan=decide.target_cost_bands(PARAMS, TARGETS, DEP, key=key).dollars.values,
        )

    one, again, other = run(jax.random.key(42)), run(jax.random.key(42)), run(jax.random.key(7))
    equal_trees(one, again)
    for name in ("expected", "bands", "cvar", "plan"):
        assert differ(one[name], other[name]), name


def _synthetic_runs(seed: int, size: int = 24):
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(17, 23, size))
    d = np.exp(rng.uniform(19, 25, size))
    return n, d, np.asarray(law.loss(law.HOFFMANN_2022, n, d), np.float64) * np.exp(rng.normal(0, 1e-2, size))


# One start near the truth: (log E, log A, log B, alpha, beta).
HUBER_GRID = huber.hoffmann_grid(((0.5,), (6.0,), (6.0,), (0.3,), (0.3,)))
HUBER_KW = dict(grid=HUBER_GRID, max_iter=60)


def test_huber_bootstrap_same_key_same_draws():
    n, d, loss = _synthetic_runs(0)
    fit = huber.huber_fit(n, d, loss, **HUBER_KW)
    kw = dict(num_resamples=4, fit=fit, max_iter=60)
    one = huber.huber_bootstrap(n, d, loss, key=jax.random.key(0), **kw)
    again = huber.huber_bootstrap(n, d, loss, key=jax.random.key(0), **kw)
    other = huber.huber_bootstrap(n, d, loss, key=jax.random.key(1), **kw)
    np.testing.assert_array_equal(one.theta, again.theta)
    np.testing.assert_array_equal(one.objective, again.objective)
    assert not np.array_equal(one.theta, other.theta)


# ----------------------------------------------------------------------------- chunk sizes
#
# Quantiles are order statistics (values fn produced) interpolated with host-side weights;
# probabilities are exact integer counts. Both are bit-identical across chunk sizes as long
# as fn's values are, which holds for law.loss since it combines its three terms
# elementwise (jax.nn.logsumexp over a stacked axis rounded differently per batch width on
# CPU, an ulp; fixed in law.log_loss). Means and CVaR sum over draws, and XLA may associate
# that sum differently for another chunk width: a reassociated sum of n positive terms
# differs by at most (n - 1) eps relative.

SUM_RTOL = (N_DRAWS - 1) * EPS32


def _dollars_and_flops(theta, n, d):
    """A dict-valued kernel of a (LawParams, Deployment) draw: pytree in, pytree out."""
    cost = costs.tco(n, d, theta[1])
    return {"dollars": cost.dollars, "flops": cost.flops}


def _below(theta, n, d):
    return law.loss(theta, n, d) < 2.3


def test_engine_pytree_results_do_not_depend_on_chunk_size():
    theta = decide.draw_pairs(PARAMS, DEP, key=jax.random.key(42))  # (LawParams, Deployment)
    results = []
    for chunk_size in CHUNK_SIZES:
        results.append(
            dict(
                plan=engine.bands(optima.compute_optimal, PARAMS, BUDGETS, chunk_size=chunk_size),
                cost=engine.bands(_dollars_and_flops, theta, N, D, q=(0.1, 0.5, 0.9), chunk_size=chunk_size),
                prob=engine.probability(_below, PARAMS, N[:, None], D[None, :], chunk_size=chunk_size),
                cvar=engine.cvar(_dollars_and_flops, theta, N, D, level=0.8, chunk_size=chunk_size),
            )
        )
    first = results[0]
    for other in results[1:]:
        for name in ("plan", "cost", "prob"):
            equal_trees(other[name], first[name])
        for name in ("cvar",):  # (means: see the decisions test below)
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=SUM_RTOL), other[name], first[name])


def test_decisions_do_not_depend_on_chunk_size():
    key = jax.random.key(42)
    results = []
    for chunk_size in CHUNK_SIZES[::2]:
        results.append(
            dict(
                prob=decide.prob_target(PARAMS, N[:, None], D[None, :], 2.2, chunk_size=chunk_size),
                bands=decide.cost_bands(PARAMS, N, D, DEP, key=key, chunk_size=chunk_size),
                smallest=decide.smallest_model(PARAMS, TARGETS, 1e12, p=0.9, chunk_size=chunk_size),
                plan=decide.target_cost_bands(PARAMS, TARGETS, DEP, key=key, chunk_size=chunk_size),
                mean=decide.expected_cost(PARAMS, N, D, DEP, key=key, chunk_size=chunk_size),
            )
        )
    first = results[0]
    for other in results[1:]:
        for name in ("prob", "bands", "smallest"):
            equal_trees(other[name], first[name])
        for var in ("n", "d", "dollars"):
            np.testing.assert_array_equal(other["plan"][var].values, first["plan"][var].values)
        np.testing.assert_allclose(other["mean"], first["mean"], rtol=SUM_RTOL)


# ----------------------------------------------------------------------------- device count

FOUR_DEVICES = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    from chinplan import engine, law
    from chinplan.decide import risk as decide
    from chinplan.costs import Deployment
    from chinplan.uncertain import LogNormal, Uniform
    from chinplan.law import LawParams
    assert jax.local_device_count() == 4, jax.local_device_count()
    rng = np.random.default_rng(0)
    params = LawParams(*(np.float32(v) * (1 + 0.05 * rng.standard_normal({n_draws})).astype(np.float32)
                         for v in law.HOFFMANN_2022))
    dep = Deployment(queries=LogNormal(2e9, 0.7), input_tokens=600.0, output_tokens=Uniform(100.0, 400.0),
                     mfu_train=Uniform(0.35, 0.45), price=LogNormal(2.0, 0.2))
    N, D, T, B = np.array({n!r}), np.array({d!r}), np.array({t!r}), np.logspace(18, 28, 37)
    key = jax.random.key(42)
    out = dict(
        prob=decide.prob_target(params, N[:, None], D[None, :], 2.2),
        bands5=decide.cost_bands(params, N, D, dep, key=key, chunk_size=5),
        smallest=decide.smallest_model(params, T, 1e12, p=0.9),
        mean=decide.expected_cost(params, N, D, dep, key=key, chunk_size=5),
        cvar=decide.cost_cvar(params, N, D, dep, key=key, level=0.9),
    )
    np.savez(sys.argv[1], **{{k: np.asarray(v) for k, v in out.items()}})
    """
)


def test_decisions_on_four_devices_match_one(run_script):
    assert jax.local_device_count() == 1
    four = run_script(FOUR_DEVICES.format(n_draws=N_DRAWS, n=N.tolist(), d=D.tolist(), t=TARGETS.tolist()))
    key = jax.random.key(42)
    # Quantiles and probabilities: bit for bit, even though the default chunk differs per
    # device count (values are chunk-independent, see above).
    np.testing.assert_array_equal(four["prob"], decide.prob_target(PARAMS, N[:, None], D[None, :], 2.2))
    np.testing.assert_array_equal(four["bands5"], decide.cost_bands(PARAMS, N, D, DEP, key=key, chunk_size=5))
    np.testing.assert_array_equal(four["smallest"], decide.smallest_model(PARAMS, TARGETS, 1e12, p=0.9))
    # The same per-device chunk size runs the very same kernel on every device: bit for bit.
    np.testing.assert_array_equal(four["mean"], decide.expected_cost(PARAMS, N, D, DEP, key=key, chunk_size=5))
    # Default chunk sizes differ with the device count: sums over draws agree to reassociation.
    np.testing.assert_allclose(four["cvar"], decide.cost_cvar(PARAMS, N, D, DEP, key=key, level=0.9), rtol=SUM_RTOL)


# ----------------------------------------------------------------------------- float32 vs float64
#
# The float64 result is the reference (its own error is ~1e-14). A float32 result computed
# as exp(x), x a sum of logarithms, is off by a few ulps of the addends' magnitudes in x,
# i.e. a relative error of a few eps32 times sum |addend| (the condition number of exp at x
# is |x|); a difference l - E adds the condition number l / (l - E) of the subtraction.


def _both(fn, *args):
    """``fn(*args)`` jitted, in float32 and in float64 (inputs cast to float64 first)."""
    jitted = jax.jit(fn)
    lo = jax.tree.map(lambda x: np.asarray(x, np.float64), jitted(*args))
    with jax.enable_x64(True):
        args64 = jax.tree.map(lambda x: np.asarray(x, np.float64), args)
        hi = jax.tree.map(lambda x: np.asarray(x, np.float64), jitted(*args64))
    return lo, hi


def _rel(lo, hi):
    return np.abs(lo / hi - 1)


RNG = np.random.default_rng(5)
N_GRID = 10.0 ** RNG.uniform(6, 13, 64)
D_GRID = 10.0 ** RNG.uniform(8, 15, 64)
C_GRID = 10.0 ** np.linspace(15, 28, 27)


@pytest.mark.parametrize("name", sorted(law.PRESETS))
def test_float32_matches_float64_law(name):
    p = law.PRESETS[name]
    E, A, B, alpha, beta = (float(x) for x in p)
    lo, hi = _both(law.loss, p, N_GRID, D_GRID)
    # Addends of the exponents: |log E|, log A + alpha |log N|, log B + beta |log D|.
    tol = 4 * EPS32 * (4 + abs(math.log(E)) + math.log(A) + alpha * np.log(N_GRID) + math.log(B) + beta * np.log(D_GRID))
    assert np.all(_rel(lo, hi) <= tol), np.max(_rel(lo, hi) / tol)
    lo, hi = _both(optima.compute_optimal, p, C_GRID)
    # log N = log G + a (log C - log 6): a few ulps of |log C| (<= 65), a and b included.
    tol_nd = 8 * EPS32 * (1 + np.log(C_GRID))
    assert np.all(_rel(lo.n, hi.n) <= tol_nd) and np.all(_rel(lo.d, hi.d) <= tol_nd)
    # The loss at the optimum: its own rounding plus max(alpha, beta) times that of N and D.
    assert np.all(_rel(lo.loss, hi.loss) <= 4 * EPS32 * 25 + max(alpha, beta) * tol_nd)
    targets = E + np.array([1e-2, 0.1, 0.5, 2.0])
    lo, hi = _both(optima.optimal_for_loss, p, targets)
    # N* = [A (1 + alpha/beta) / (l - E)]^(1/alpha): rounding l to float32 (eps l / 2) is
    # amplified by l / (alpha (l - E)); the exp/log chain by |log N*| (<= 60).
    cond = targets / ((targets - E) * min(alpha, beta))
    tol_star = 8 * EPS32 * (cond + np.log(hi.n) + np.log(hi.d))
    assert np.all(_rel(lo.n, hi.n) <= tol_star) and np.all(_rel(lo.d, hi.d) <= tol_star)


def test_float32_matches_float64_costs():
    p = law.HOFFMANN_2022
    E, alpha, beta = float(p.E), float(p.alpha), float(p.beta)
    targets = np.array([1.75, 1.9, 2.1, 2.5, 3.0])
    d_inf = np.array([0.0, 1e9, 1e13, 1e17, 1e22])
    lo, hi = _both(optima.inference_optimal, p, targets, d_inf)
    # As for optimal_for_loss, with the log chains of the Newton solve (|log N| + |log D|) and
    # the gap l - E (condition l / (min(alpha, beta) (l - E)), E rounded twice: exp(log E)).
    cond = targets / ((targets - E) * min(alpha, beta))
    tol = 16 * EPS32 * (cond + np.log(hi.n) + np.log(hi.d))
    assert np.all(_rel(lo.n, hi.n) <= tol), np.max(_rel(lo.n, hi.n) / tol)
    assert np.all(_rel(lo.d, hi.d) <= tol), np.max(_rel(lo.d, hi.d) / tol)
    dep = Deployment(queries=3e9, input_tokens=800.0, output_tokens=250.0, mfu_train=0.42, mfu_prefill=0.55,
                     mfu_decode=0.08, price=2.5, inference_peak_flops=costs.H200.bf16, inference_price=3.2)
    lo, hi = _both(costs.tco, N_GRID, D_GRID, dep)
    # Every cost is exp(sum of logs): log 6 or 2, log N (<= 30), log D or log Q T (<= 35),
    # log 3600, log peak (35), log MFU, log price: magnitudes sum to <= 150.
    tol = 8 * EPS32 * 150
    for name in hi._fields:
        assert np.all(_rel(getattr(lo, name), getattr(hi, name)) <= tol), name


def test_float32_matches_float64_posterior_bands():
    """Bands of the compute optimum over draws: quantiles are 1-Lipschitz in the sup norm.

    Every draw's float32 value is within ``tol`` (relative) of its float64 value, so every
    order statistic, and every interpolation between two of them, is too (plus one rounding
    of the interpolation itself).
    """
    draws = make_draws(200, seed=3)
    lo = engine.bands(optima.compute_optimal, draws, BUDGETS).values
    with jax.enable_x64(True):
        hi = engine.bands(optima.compute_optimal, as64(draws), BUDGETS).values
        assert np.asarray(hi.n).dtype == np.float64
    tol = 8 * EPS32 * (1 + np.log(BUDGETS)) + EPS32
    for name in ("n", "d"):
        rel = _rel(np.asarray(getattr(lo, name), np.float64), np.asarray(getattr(hi, name)))
        assert np.all(rel <= tol), (name, np.max(rel / tol))
    rel = _rel(np.asarray(lo.loss, np.float64), np.asarray(hi.loss))
    assert np.all(rel <= 4 * EPS32 * 25 + 0.4 * tol), np.max(rel)


# ----------------------------------------------------------------------------- no recompilation

def _params32(p: LawParams) -> LawParams:
    return LawParams(*(jnp.asarray(x, jnp.float32) for x in p))


@pytest.mark.parametrize(
    "fn,arg",
    [(law.loss, None), (optima.compute_optimal, C_GRID), (optima.optimal_for_loss, np.array([1.9, 2.0, 2.5]))],
    ids=["loss", "compute_optimal", "optimal_for_loss"],
)
def test_law_under_jit_compiles_once(fn, arg, count_compiles):
    # A fresh function object: jax.jit's cache is per underlying function, shared by every
    # jax.jit(law.loss) in the process (other tests included).
    jitted = jax.jit(lambda *args: fn(*args))
    if arg is None:
        first = (jnp.asarray(N_GRID, jnp.float32), jnp.asarray(D_GRID, jnp.float32))
        second = (jnp.asarray(N_GRID * 3, jnp.float32), jnp.asarray(D_GRID / 2, jnp.float32))
    else:
        first, second = (jnp.asarray(arg, jnp.float32),), (jnp.asarray(arg * 1.1, jnp.float32),)
    jax.block_until_ready(jitted(_params32(law.HOFFMANN_2022), *first))
    p2 = _params32(law.BESIROGLU_2024)
    with count_compiles() as compiles:
        jax.block_until_ready(jitted(p2, *second))
    assert jitted._cache_size() == 1
    assert compiles == []


def test_engine_reductions_compile_once(count_compiles):
    traces = []

    def counted(theta, n, d):
        traces.append(1)
        return optima.compute_optimal(theta, 6 * n * d)._replace(loss=law.loss(theta, n, d))

    def counted_below(theta, n, d):
        traces.append(1)
        return law.loss(theta, n, d) < 2.3

    calls = {
        "bands": lambda p, n, d: engine.bands(counted, p, n, d),
        "expectation": lambda p, n, d: engine.expectation(counted, p, n, d),
        "probability": lambda p, n, d: engine.probability(counted_below, p, n, d),
        "cvar": lambda p, n, d: engine.cvar(counted, p, n, d, level=0.9),
    }
    n1, d1 = N[:, None], D[None, :]
    for call in calls.values():
        call(make_draws(seed=20), n1, d1)
    before = len(traces)
    with count_compiles() as compiles:
        for name, call in calls.items():
            out = call(make_draws(seed=21), n1 * 1.5, d1 / 3)
            jax.block_until_ready(out)
    assert len(traces) == before
    assert compiles == []


def test_decide_and_costs_entry_points_compile_once(count_compiles):
    keys = [jax.random.key(1), jax.random.key(2)]
    draws = [make_draws(seed=30), make_draws(seed=31)]
    scale = [1.0, 1.3]

    def round_trip(i):
        return (
            decide.prob_target(draws[i], N * scale[i], D, 2.2),
            decide.cost_bands(draws[i], N * scale[i], D, DEP, key=keys[i]),
            optima.inference_optimal(law.HOFFMANN_2022, TARGETS * scale[i], np.array([0.0, 1e10, 1e14, 1e18]) * scale[i]),
        )

    jax.block_until_ready(round_trip(0))
    cache = optima._optimum_for_tokens._cache_size()
    with count_compiles() as compiles:
        jax.block_until_ready(round_trip(1))
    assert optima._optimum_for_tokens._cache_size() == cache
    assert compiles == []


def test_huber_fit_compiles_once(count_compiles):
    huber.huber_fit(*_synthetic_runs(1), **HUBER_KW)
    cache = huber._solve_jobs._cache_size()
    with count_compiles() as compiles:
        huber.huber_fit(*_synthetic_runs(2), **HUBER_KW)
    assert huber._solve_jobs._cache_size() == cache
    assert compiles == []
