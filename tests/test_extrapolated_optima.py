"""Inverse questions under extrapolation-aware draws, against independent float64 NumPy/SciPy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from chinplan import engine, extrapolated_optima as xo, optima
from chinplan.decide import risk as decide
from chinplan.engine import kernels
from chinplan.costs import Deployment
from chinplan.extrapolated import ExtrapolatedLaw
from chinplan.law import LawParams

LN10 = math.log(10.0)
LAW = dict(E=1.82, A=482.0, B=2085.0, alpha=0.3478, beta=0.3658)
DOMAIN = (21.0, 10.0, 11.3)  # log10 of the largest fitted compute, params, tokens


def _draw(u=0.0, v=0.0, **law):
    constants = {**LAW, **law}
    return ExtrapolatedLaw(
        LawParams(**{k: jnp.asarray(x) for k, x in constants.items()}),
        jnp.asarray(u), jnp.asarray(v), jnp.asarray(0.01), jnp.asarray(DOMAIN),
    )  # fmt: skip


def _np_log_loss(draw, log_n, log_d):
    """The extrapolated log loss in float64 NumPy, written from the formula (not the library's)."""
    log_n, log_d = np.broadcast_arrays(np.asarray(log_n, np.float64), np.asarray(log_d, np.float64))
    l10n, l10d = log_n / LN10, log_d / LN10
    d_c = np.maximum(0.0, l10n + l10d + math.log10(6.0) - DOMAIN[0])
    d = np.maximum(np.maximum(d_c, l10n - DOMAIN[1]), np.maximum(l10d - DOMAIN[2], 0.0))
    shift = LN10 * draw["v"] * d_c
    n, dd = log_n - shift, log_d + shift
    law = draw["E"] + draw["A"] * np.exp(-draw["alpha"] * n) + draw["B"] * np.exp(-draw["beta"] * dd)
    return np.log(law) + draw["u"] * np.sqrt(d)


def _np_params_for_loss(draw, log_d, target):
    grid = np.linspace(math.log(1e2), math.log(1e18), 20001)
    ok = _np_log_loss(draw, grid, log_d) <= math.log(target)
    if not ok.any():
        return math.inf
    i = int(np.argmax(ok))
    if i == 0:
        return grid[0]
    return optimize.brentq(lambda x: _np_log_loss(draw, x, log_d) - math.log(target), grid[i - 1], grid[i], xtol=1e-12)


def _np_optimum(draw, target, tokens):
    def cost(log_d):
        log_n = _np_params_for_loss(draw, log_d, target)
        return log_n + math.log(3.0 * math.exp(log_d) + tokens) if math.isfinite(log_n) else 1e9

    grid = np.linspace(math.log(1e9), math.log(1e16), 200)
    values = [cost(x) for x in grid]
    if min(values) >= 1e9:
        return math.inf, math.inf
    i = int(np.argmin(values))
    best = optimize.minimize_scalar(cost, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]), method="bounded",
                                    options={"xatol": 1e-10})  # fmt: skip
    return _np_params_for_loss(draw, best.x, target), best.x


DRIFTS = [(0.03, 0.1), (-0.02, -0.15), (0.05, 0.0), (0.0, 0.2)]


@pytest.mark.parametrize("u,v", DRIFTS)
def test_params_for_loss_matches_float64_root(u, v):
    with jax.enable_x64(True):
        draw = _draw(u, v)
        for tokens, target in ((1e13, 1.95), (3e12, 2.05), (2e11, 2.3)):
            got = float(xo.params_for_loss(draw, jnp.log(tokens), jnp.log(target)))
            want = _np_params_for_loss({**LAW, "u": u, "v": v}, math.log(tokens), target)
            assert got == pytest.approx(want, abs=1e-6), (tokens, target)


@pytest.mark.parametrize("u,v", DRIFTS)
@pytest.mark.parametrize("tokens", [0.0, 1e13])
@pytest.mark.parametrize("target", [1.95, 2.05])
def test_optimum_for_loss_matches_float64_search(u, v, tokens, target):
    with jax.enable_x64(True):
        draw = _draw(u, v)
        log_t = math.log(tokens) if tokens > 0 else -math.inf
        got = xo.optimal_for_loss(draw, target, jnp.asarray(log_t))
        log_n, log_d = _np_optimum({**LAW, "u": u, "v": v}, target, tokens)
        if math.isinf(log_n):  # out of reach under a rising drift: the library says so too
            assert math.isinf(float(got.n)) and math.isinf(float(got.d))
            return
        # golden section: the cost is flat at its minimum, so the plan is known to ~1e-4 in log
        assert math.log(float(got.d)) == pytest.approx(log_d, abs=2e-3)
        assert math.log(float(got.n)) == pytest.approx(log_n, abs=2e-3)
        assert math.exp(_np_log_loss({**LAW, "u": u, "v": v}, math.log(float(got.n)), math.log(float(got.d)))) == pytest.approx(target, rel=1e-6)


def test_chinchilla_optimum_agrees_with_the_compute_route():
    """T = 0: the least-compute plan for a target is the compute optimum at that compute."""
    from chinplan.extrapolated import extrapolated_optimum_log

    with jax.enable_x64(True):
        draw = _draw(-0.02, 0.12)
        plan = xo.optimal_for_loss(draw, 1.9, jnp.asarray(-jnp.inf))
        log_n, _, log_l = extrapolated_optimum_log(draw, jnp.log(6.0 * plan.n * plan.d))
        assert float(log_n) == pytest.approx(math.log(float(plan.n)), abs=2e-3)
        assert float(log_l) == pytest.approx(math.log(1.9), abs=1e-6)


@pytest.mark.parametrize("kind", ["cost", "flops", "chinchilla"])
def test_no_drift_and_inside_the_data_give_the_closed_form_bit_for_bit(kind):
    dep = Deployment(queries=1e9, input_tokens=500.0, output_tokens=500.0)
    law = LawParams(**{k: jnp.asarray(x) for k, x in LAW.items()})
    solve = jax.jit(kernels.optimum, static_argnums=2)
    for draw, target in ((_draw(0.0, 0.0), 1.95), (_draw(0.05, 0.3), 2.9)):  # 2.9: a plan inside the data
        want = solve((law, dep), target, kind)
        got = solve((draw, dep), target, kind)
        assert np.all(np.asarray(jax.tree_util.tree_leaves(xo._inside(draw, jnp.log(want.n), jnp.log(want.d)))) | (target < 2.5))
        assert float(got.n) == float(want.n) and float(got.d) == float(want.d), (kind, target)
        n_law = float(optima.params_for_loss(law, 1e10, target))
        assert float(kernels.params_for_loss(draw, 1e10, target)) == pytest.approx(n_law, rel=1e-6)


def test_unreachable_targets_are_inf_not_nan():
    draw = _draw(0.05, 0.1)  # a rising level drift: very low targets stay out of reach
    assert math.isinf(float(xo.params_for_loss(draw, jnp.log(1e12), jnp.log(1.7))))
    plan = xo.optimal_for_loss(draw, 1.7, jnp.asarray(-jnp.inf))
    assert math.isinf(float(plan.n)) and math.isinf(float(plan.d))
    assert bool(kernels.below_floor(draw, 1.7))
    for target in (2.0, 2.3):  # out of reach exactly when the float64 search finds no plan
        reference = _np_optimum({**LAW, "u": 0.05, "v": 0.1}, target, 0.0)[0]
        assert bool(kernels.below_floor(draw, target)) == math.isinf(reference), target
    assert not bool(kernels.below_floor(draw, 2.3))


def _draws(num=64, seed=3):
    rng = np.random.default_rng(seed)
    law = LawParams(
        E=jnp.asarray(1.82 + 0.01 * rng.standard_normal(num)), A=jnp.asarray(482.0 * np.exp(0.05 * rng.standard_normal(num))),
        B=jnp.asarray(2085.0 * np.exp(0.05 * rng.standard_normal(num))), alpha=jnp.asarray(0.3478 + 0.005 * rng.standard_normal(num)),
        beta=jnp.asarray(0.3658 + 0.005 * rng.standard_normal(num)),
    )  # fmt: skip
    u, v = 0.03 * rng.standard_normal(num), 0.1 * rng.standard_normal(num)
    theta = ExtrapolatedLaw(law, jnp.asarray(u), jnp.asarray(v), jnp.full(num, 0.01), jnp.tile(jnp.asarray(DOMAIN), (num, 1)))
    return theta, law, u, v


def test_smallest_model_is_the_order_statistic_of_per_draw_requirements():
    theta, law, u, v = _draws()
    got = float(decide.smallest_model(theta, 2.0, 5e12, p=0.75))
    solve = jax.jit(xo.params_for_loss)
    per_draw = np.exp([float(solve(jax.tree_util.tree_map(lambda x: x[i], theta), jnp.log(5e12), jnp.log(2.0))) for i in range(len(u))])
    k = math.ceil(0.75 * len(u))
    assert got == pytest.approx(np.sort(per_draw)[k - 1], rel=1e-5)


def test_tco_bands_and_sweep_take_extrapolated_draws():
    from chinplan.decide import sweep

    theta, law, _, _ = _draws()
    dep = Deployment(queries=1e9, input_tokens=500.0, output_tokens=500.0)
    bands = decide.tco_bands(theta, np.array([1.95, 2.1]), dep, q=(0.5,))
    law_bands = decide.tco_bands(law, np.array([1.95, 2.1]), dep, q=(0.5,))
    assert np.all(np.isfinite(np.asarray(bands.values["optimal"]["n"])))
    # the drifts move the plans (they are not the law's answer) ...
    assert not np.allclose(bands.values["optimal"]["n"], law_bands.values["optimal"]["n"], rtol=1e-3)
    scenarios = sweep.Scenarios(
        axes={"target_loss": np.array([1.95, 2.1])}, plan="target_loss", optimum="cost", outputs=("n", "d", "dollars"),
        quantiles=(0.05, 0.5, 0.95), deployment=dep, described={},
    )  # fmt: skip
    data = sweep.run_sweep(scenarios, theta)
    np.testing.assert_allclose(data["n"].sel(quantile=0.5).values, np.asarray(bands.values["optimal"]["n"])[0], rtol=1e-5)
    assert "decades_beyond" in data and np.all(data["decades_beyond"].values > 0)


def test_xarray_outputs_carry_the_distance_beyond_the_fitted_runs():
    from chinplan.extrapolated import decades_beyond

    theta, law, _, _ = _draws()
    dep = Deployment(queries=1e9, input_tokens=500.0, output_tokens=500.0)
    n_grid, d_grid = np.array([1e9, 1e11]), np.array([1e11, 1e13])
    _, grid = decide.chance_constrained(theta, n_grid, d_grid, 2.2, 0.5, dep)
    want = decades_beyond(DOMAIN, np.log(n_grid)[:, None], np.log(d_grid)[None, :])[0]
    np.testing.assert_allclose(grid["decades_beyond"].values, want, atol=1e-5)
    assert grid["decades_beyond"].values[0, 0] == 0.0  # 1e9 params, 1e11 tokens: inside
    data = decide.target_cost_bands(theta, [1.95, 2.9], dep)
    assert data["decades_beyond"].values[0] > 1.0 and data["decades_beyond"].values[1] == 0.0
    _, law_grid = decide.chance_constrained(law, n_grid, d_grid, 2.2, 0.5, dep)
    assert "decades_beyond" not in law_grid  # law-only draws do not know the fitted runs
