"""Tests of chinplan.decide against explicit, materialised float64 NumPy computations."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from chinplan.decide import regret
from chinplan import costs, law, optima
from chinplan.decide import risk as decide
from chinplan.costs import Deployment
from chinplan.uncertain import LogNormal, Uniform
from chinplan.law import LawParams

N_DRAWS = 128


def make_draws(n_draws: int = N_DRAWS, seed: int = 0, spread: float = 0.05) -> LawParams:
    rng = np.random.default_rng(seed)
    return LawParams(
        *(np.float32(v) * (1 + spread * rng.standard_normal(n_draws)).astype(np.float32) for v in law.HOFFMANN_2022)
    )


PARAMS = make_draws()
DEP = Deployment(
    queries=LogNormal(2e9, 0.7), input_tokens=600.0, output_tokens=Uniform(100.0, 400.0), mfu_train=Uniform(0.35, 0.45),
    price=LogNormal(2.0, 0.2),
)
KEY = jax.random.key(42)
N = np.array([8e9, 3e10, 7e10, 1.5e11])
D = np.array([15e12, 3e12, 1.4e12, 5e11])


def np_loss(p, n, d):
    """Float64 loss for every draw (rows) x scenario (columns)."""
    E, A, B, al, be = (np.asarray(x, np.float64)[:, None] for x in p)
    return E + A / np.asarray(n, np.float64)[None] ** al + B / np.asarray(d, np.float64)[None] ** be


def np_dollars(dep, n, d, per_draw=False):
    """Float64 TCO dollars for every draw of a sampled deployment x every design.

    With ``per_draw``, ``n`` and ``d`` are (draws, k): each draw prices its own designs.
    """
    f = {k: (None if v is None else np.asarray(v, np.float64)[:, None]) for k, v in dep._asdict().items()}
    n, d = np.asarray(n, np.float64), np.asarray(d, np.float64)
    if not per_draw:
        n, d = n[None], d[None]
    train_h = 6 * n * d / (3600 * f["peak_flops"] * f["mfu_train"])
    inf_h = 2 * n * f["queries"] * (f["input_tokens"] / f["mfu_prefill"] + f["output_tokens"] / f["mfu_decode"])
    inf_h = inf_h / (3600 * f["peak_flops"])
    return f["price"] * (train_h + inf_h)


def cvar_oracle(y, level):
    n = y.shape[0]
    ys = np.sort(y, axis=0)[::-1]
    k = n * (1 - level)
    m = int(math.floor(k))
    return (ys[:m].sum(axis=0) + (k - m) * ys[m]) / k


# ----------------------------------------------------------------------------- kernels


def test_params_for_loss_kernel():
    p = law.HOFFMANN_2022
    d = jnp.array([1e10, 3e11, 1e12, 1e13])  # well-conditioned: l - E - B D^-beta >= 0.08
    n = decide.params_for_loss(p, d, 2.0)
    assert bool(jnp.isinf(n[0]))  # 1e10 tokens cannot reach 2.0 at any size
    np.testing.assert_allclose(law.loss(p, n[1:], d[1:]), 2.0, rtol=1e-6)
    E, A, B, al, be = p
    ref = (A / (2.0 - E - B * np.asarray(d[1:], np.float64) ** -be)) ** (1 / al)
    np.testing.assert_allclose(n[1:], ref, rtol=3e-5)
    with jax.enable_x64(True):
        np.testing.assert_allclose(decide.params_for_loss(p, np.asarray(d[1:], np.float64), 2.0), ref, rtol=1e-12)
    # jit / vmap over draws / grad compose.
    per_draw = jax.jit(jax.vmap(decide.params_for_loss, in_axes=(0, None, None)))(PARAMS, 1e12, 2.1)
    assert per_draw.shape == (N_DRAWS,)
    g = jax.grad(lambda t: jnp.log(decide.params_for_loss(p, 1e12, t)))(2.0)
    assert np.isfinite(float(g)) and float(g) < 0


def test_cost_kernels_compose():
    theta = decide.draw_pairs(PARAMS, DEP, key=KEY)
    one = jax.tree.map(lambda x: x[0], theta)
    c = decide.design_cost(one, 7e10, 1.4e12)
    g = jax.grad(lambda ln: jnp.log(decide.design_cost(one, jnp.exp(ln), 1.4e12).dollars))(jnp.log(7e10))
    np.testing.assert_allclose(g, 1.0, rtol=1e-5)  # dollars are linear in N
    batched = jax.jit(jax.vmap(decide.design_cost, in_axes=(0, None, None)))(theta, 7e10, 1.4e12)
    np.testing.assert_allclose(batched.dollars[0], c.dollars, rtol=1e-6)
    assert bool(decide.cheaper(one, 7e9, 1e12, 7e10, 1e12)) and not bool(decide.cheaper(one, 7e9, 1e12, 7e9, 1e12))


# ----------------------------------------------------------------------------- probabilities


def test_prob_target_equals_explicit_counts():
    target = np.array([1.9, 2.0, 2.1])[:, None]
    got = np.asarray(decide.prob_target(PARAMS, N[None], D[None], target))
    assert got.shape == (3, 4)
    # The same float32 loss, materialised: the counts are identical.
    losses32 = np.asarray(jax.vmap(lambda p: law.loss(p, N, D))(PARAMS))
    np.testing.assert_array_equal(got, (losses32[:, None, :] <= target[None]).mean(axis=0))
    # The float64 oracle agrees except for draws within float32 rounding of the target.
    losses64 = np_loss(PARAMS, N, D)
    ref = (losses64[:, None, :] <= target[None]).mean(axis=0)
    near = (np.abs(losses64[:, None, :] - target[None]) < 1e-5).sum(axis=0)
    assert np.all(np.abs(got - ref) * N_DRAWS <= near)


def test_prob_target_float64():
    with jax.enable_x64(True):
        p64 = LawParams(*(np.asarray(x, np.float64) for x in PARAMS))
        got = np.asarray(decide.prob_target(p64, N, D, 2.0))
    np.testing.assert_array_equal(got, (np_loss(p64, N, D) <= 2.0).mean(axis=0))


def test_prob_target_data_constrained():
    u = 2e12
    got = np.asarray(decide.prob_target(PARAMS, N, D, 2.05, unique_tokens=u))
    per_draw = np.asarray(jax.vmap(lambda p: law.loss(p, N, D, unique_tokens=u))(PARAMS))
    np.testing.assert_array_equal(got, (per_draw <= 2.05).mean(axis=0))
    # Repetition never helps: never more likely than with unlimited unique data.
    assert np.all(got <= np.asarray(decide.prob_target(PARAMS, N, D, 2.05)))


def test_prob_cheaper_matrix():
    got = np.asarray(decide.prob_cheaper(PARAMS, N, D, DEP, key=KEY))
    theta = decide.draw_pairs(PARAMS, DEP, key=KEY)
    dollars = np_dollars(theta[1], N, D)  # (draws, designs)
    ref = (dollars[:, :, None] < dollars[:, None, :]).mean(axis=0)
    # Ties between float32 log-costs are measure-zero here; allow none.
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.diag(got), 0.0)
    np.testing.assert_allclose(got + got.T + np.eye(4), 1.0, atol=1e-7)


# ----------------------------------------------------------------------------- cost reductions


def test_cost_mean_bands_cvar_vs_numpy():
    theta = decide.draw_pairs(PARAMS, DEP, key=KEY)
    dollars = np_dollars(theta[1], N, D)
    np.testing.assert_allclose(decide.expected_cost(PARAMS, N, D, DEP, key=KEY), dollars.mean(axis=0), rtol=2e-5)
    q = (0.1, 0.5, 0.9)
    np.testing.assert_allclose(
        decide.cost_bands(PARAMS, N, D, DEP, key=KEY, q=q), np.quantile(dollars, q, axis=0), rtol=2e-5
    )
    np.testing.assert_allclose(decide.cost_cvar(PARAMS, N, D, DEP, key=KEY, level=0.9), cvar_oracle(dollars, 0.9), rtol=2e-5)
    # Other fields: GPU-hours.
    hours = decide.expected_cost(PARAMS, N, D, DEP, key=KEY, field="train_gpu_hours")
    f = theta[1]
    ref = (6 * N[None] * D[None] / (3600 * np.asarray(f.peak_flops)[:, None] * np.asarray(f.mfu_train, np.float64)[:, None])).mean(0)
    np.testing.assert_allclose(hours, ref, rtol=2e-5)


def test_costs_linear_in_query_volume():
    base = Deployment(queries=1e9, input_tokens=500.0, output_tokens=200.0)
    e1 = decide.expected_cost(PARAMS, N, D, base, field="inference_dollars")
    e3 = decide.expected_cost(PARAMS, N, D, base._replace(queries=3e9), field="inference_dollars")
    np.testing.assert_allclose(e3, 3 * np.asarray(e1), rtol=1e-5)


def test_constant_deployment_needs_no_key_and_distributions_do():
    const = Deployment(queries=1e9, input_tokens=500.0, output_tokens=200.0)
    band = np.asarray(decide.cost_bands(PARAMS, N, D, const))
    np.testing.assert_allclose(band[0], band[-1], rtol=1e-6)  # costs do not depend on the law
    with pytest.raises(ValueError, match="key"):
        decide.expected_cost(PARAMS, N, D, DEP)


# ----------------------------------------------------------------------------- chance constraints


@pytest.mark.parametrize("p", [0.5, 0.9, 1.0])
def test_smallest_model_is_the_order_statistic(p):
    tokens = np.array([3e11, 1e12, 1e13])
    got = np.asarray(decide.smallest_model(PARAMS, 2.0, tokens, p))
    per_draw = np.asarray(jax.vmap(lambda th: decide.params_for_loss(th, tokens, 2.0))(PARAMS))
    k = math.ceil(p * N_DRAWS)
    # The k-th smallest requirement; two compilations (e.g. sharded over devices) of N = exp(log N)
    # may differ by an ulp of log N, a relative 2e-6 in N.
    np.testing.assert_allclose(got, np.sort(per_draw, axis=0)[k - 1], rtol=1e-5)
    for j, n_star in enumerate(got):
        if np.isfinite(n_star):
            assert (per_draw[:, j] <= n_star * (1 + 1e-5)).sum() >= k
            assert (per_draw[:, j] < n_star * (1 - 1e-5)).sum() < k
            # The forward loss at that size reaches the target in >= p of the draws (up to
            # float32 rounding of the forward loss: a 1e-5 relative margin on N).
            assert float(decide.prob_target(PARAMS, n_star * (1 + 1e-5), tokens[j], 2.0)) >= p
        else:
            assert np.isfinite(per_draw[:, j]).sum() < k


def test_smallest_model_float64():
    with jax.enable_x64(True):
        p64 = LawParams(*(np.asarray(x, np.float64) for x in PARAMS))
        got = np.asarray(decide.smallest_model(p64, 2.0, 1e12, 0.8))
    E, A, B, al, be = (np.asarray(x, np.float64) for x in p64)
    rest = 2.0 - E - B * 1e12**-be
    per_draw = np.where(rest > 0, (A / np.where(rest > 0, rest, 1.0)) ** (1 / al), np.inf)
    np.testing.assert_allclose(got, np.sort(per_draw)[math.ceil(0.8 * N_DRAWS) - 1], rtol=1e-12)


@pytest.mark.parametrize("objective", ["dollars", "flops", "n"])
def test_chance_constrained_vs_explicit_grid(objective):
    n_grid = np.logspace(9.5, 11.5, 9)
    d_grid = np.logspace(11, 13.5, 11)
    dep = Deployment(queries=1e9, input_tokens=500.0, output_tokens=200.0, mfu_train=Uniform(0.3, 0.5))
    choice, grid = decide.chance_constrained(PARAMS, n_grid, d_grid, 2.0, 0.8, dep, key=KEY, objective=objective)
    losses = np.asarray(jax.vmap(lambda p: law.loss(p, n_grid[:, None], d_grid[None, :]))(PARAMS))
    prob = (losses <= 2.0).mean(axis=0)
    np.testing.assert_array_equal(grid.probability.values, prob)
    theta = decide.draw_pairs(PARAMS, dep, key=KEY)
    nn, dd = np.meshgrid(n_grid, d_grid, indexing="ij")
    money = np_dollars(theta[1], nn.ravel(), dd.ravel()).mean(axis=0).reshape(nn.shape)
    np.testing.assert_allclose(grid.expected_dollars.values, money, rtol=2e-5)
    feasible = prob >= 0.8
    np.testing.assert_array_equal(grid.feasible.values, feasible)
    assert choice["found"]
    if objective == "n":
        assert choice["n"] == n_grid[feasible.any(axis=1)].min()
    else:
        score = money if objective == "dollars" else grid.expected_flops.values
        i, j = np.unravel_index(np.argmin(np.where(feasible, score, np.inf)), score.shape)
        assert (choice["n"], choice["d"]) == (n_grid[i], d_grid[j])
    assert choice["probability"] >= 0.8
    # A requirement no grid point meets (reachable by some draws off the grid): flagged.
    none, _ = decide.chance_constrained(PARAMS, n_grid, d_grid, 1.75, 0.8, dep, key=KEY, objective=objective)
    assert not none["found"] and np.isnan(none["n"])
    # A target at or below E for every draw is an input error.
    with pytest.raises(ValueError, match=r"target_loss must exceed .* got 1.0,"):
        decide.chance_constrained(PARAMS, n_grid, d_grid, 1.0, 0.8, dep, key=KEY, objective=objective)


# ----------------------------------------------------------------------------- tables and regret


def test_evaluate_designs_table():
    frame = decide.evaluate_designs(PARAMS, N, D, DEP, key=KEY, target_loss=2.0, q=(0.05, 0.95), level=0.9)
    assert list(frame["n"]) == list(N)
    losses = np_loss(PARAMS, N, D)
    np.testing.assert_allclose(frame["loss_mean"], losses.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(frame["loss_q95"], np.quantile(losses, 0.95, axis=0), rtol=1e-5)
    dollars = np_dollars(decide.draw_pairs(PARAMS, DEP, key=KEY)[1], N, D)
    np.testing.assert_allclose(frame["dollars_cvar"], cvar_oracle(dollars, 0.9), rtol=2e-5)
    np.testing.assert_allclose(frame["train_flops"], 6 * N * D)
    assert frame["p_target"].between(0, 1).all()


def test_regret_vs_brute_force():
    compute = np.array([1e21, 1e24])
    reg = regret.regret_compute(PARAMS, compute, as_frame=False)
    assert np.all(reg.regret >= 0)
    med = LawParams(*(np.median(np.asarray(x, np.float64)) for x in PARAMS))
    for i, c in enumerate(compute):
        # Point plan: Chinchilla optimum under the median constants.
        np.testing.assert_allclose(reg.point_n[i], float(optima.compute_optimal(med, c).n), rtol=1e-4)

        def mean_loss(x):
            return np_loss(PARAMS, [math.exp(x)], [c / 6 / math.exp(x)]).mean()

        np.testing.assert_allclose(reg.point_expected_loss[i], mean_loss(math.log(reg.point_n[i])), rtol=1e-5)
        ref = scipy.optimize.minimize_scalar(mean_loss, bounds=(math.log(reg.point_n[i]) - 3, math.log(reg.point_n[i]) + 3), method="bounded", options={"xatol": 1e-9})
        np.testing.assert_allclose(reg.bayes_expected_loss[i], ref.fun, rtol=2e-6)
        np.testing.assert_allclose(math.log(reg.bayes_n[i]), ref.x, atol=0.05)
        np.testing.assert_allclose(reg.bayes_n[i] * reg.bayes_d[i] * 6, c, rtol=1e-6)
    frame = regret.regret_compute(PARAMS, compute)
    assert list(frame.index) == list(compute) and "regret" in frame


def test_regret_zero_for_a_degenerate_posterior():
    same = LawParams(*(np.full(8, np.float32(v)) for v in law.HOFFMANN_2022))
    reg = regret.regret_compute(same, [1e22], as_frame=False)
    np.testing.assert_allclose(reg.regret, 0.0, atol=1e-6)
    np.testing.assert_allclose(reg.bayes_n, reg.point_n, rtol=0.03)


# ----------------------------------------------------------------------------- validation


def test_validation_errors():
    with pytest.raises(ValueError, match="p must"):
        decide.smallest_model(PARAMS, 2.0, 1e12, 0.0)
    with pytest.raises(ValueError, match="params"):
        decide.prob_target(law.HOFFMANN_2022, 1e10, 1e12, 2.0)
    with pytest.raises(ValueError, match="n must"):
        decide.prob_target(PARAMS, -1.0, 1e12, 2.0)
    with pytest.raises(ValueError, match="field"):
        decide.expected_cost(PARAMS, N, D, field="euros")
    with pytest.raises(ValueError, match="objective"):
        decide.chance_constrained(PARAMS, N, D, 2.0, objective="fastest")
    with pytest.raises(ValueError, match="same length"):
        decide.prob_cheaper(PARAMS, N, D[:2])
    with pytest.raises(ValueError, match="grid_points"):
        regret.regret_compute(PARAMS, 1e22, grid_points=10)


def test_target_cost_bands_vs_materialised():
    targets = np.array([1.72, 2.0, 2.3])
    ds = decide.target_cost_bands(PARAMS, targets, DEP, key=KEY, q=(0.1, 0.5, 0.9))
    theta = decide.draw_pairs(PARAMS, DEP, key=KEY)
    per_draw = jax.vmap(lambda th: jax.vmap(lambda t: decide.target_plan_cost(th, t))(targets))(theta)
    dollars = np.asarray(per_draw.dollars, np.float64)
    with np.errstate(invalid="ignore"):  # NumPy interpolates inf - inf to NaN; the engine keeps inf
        ref = np.quantile(dollars, (0.1, 0.5, 0.9), axis=0)
    ref = np.where(np.isnan(ref), np.inf, ref)
    np.testing.assert_allclose(ds.dollars.values, ref, rtol=1e-5)
    # Unreachable draws (E_i >= 1.72) are inf, not NaN.
    unreachable = np.asarray(PARAMS.E) >= 1.72
    assert unreachable.any() and np.all(np.isinf(dollars[unreachable, 0])) and not np.isnan(dollars).any()
    # Each draw's cost-optimal plan is no dearer than its Chinchilla plan for the same loss.
    chin = jax.vmap(lambda p: optima.optimal_for_loss(p, targets[1:]))(PARAMS)
    own = np_dollars(theta[1], chin.n, chin.d, per_draw=True)
    assert np.all(dollars[:, 1:] <= own * (1 + 1e-5))


# --------------------------------------------------------------------------------------
# Draws: one decision checks the law draws once and samples the deployment once.
# --------------------------------------------------------------------------------------


def test_draws_are_sampled_once_and_reused_by_every_cost_question(monkeypatch):
    key = jax.random.key(7)
    n, d = np.array([7e10, 8e9]), np.array([1.4e12, 15e12])
    expected = {
        "cost_bands": np.asarray(decide.cost_bands(PARAMS, n, d, DEP, key=key)),
        "expected_cost": np.asarray(decide.expected_cost(PARAMS, n, d, DEP, key=key)),
        "prob_cheaper": np.asarray(decide.prob_cheaper(PARAMS, n, d, DEP, key=key)),
    }
    theta = decide.draw_pairs(PARAMS, DEP, key=key)
    assert isinstance(theta, decide.Draws) and theta.law is PARAMS
    calls = {"sample": 0, "law": 0}
    real_sample, real_law = costs.sample_deployment, decide._checks.law_draws

    def counting_sample(*args, **kwargs):
        calls["sample"] += 1
        return real_sample(*args, **kwargs)

    def counting_law(*args, **kwargs):
        calls["law"] += 1
        return real_law(*args, **kwargs)

    monkeypatch.setattr(costs, "sample_deployment", counting_sample)
    monkeypatch.setattr(decide._checks, "law_draws", counting_law)
    got = {
        "cost_bands": np.asarray(decide.cost_bands(theta, n, d)),
        "expected_cost": np.asarray(decide.expected_cost(theta, n, d)),
        "prob_cheaper": np.asarray(decide.prob_cheaper(theta, n, d)),
    }
    decide.prob_target(theta, n, d, 2.0)
    decide.prob_lower_loss(theta, n, d)
    assert calls == {"sample": 0, "law": 0}  # neither re-sampled nor re-checked
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_draws_refuse_a_second_deployment_or_key():
    theta = decide.draw_pairs(PARAMS, DEP, key=jax.random.key(0))
    assert decide.draw_pairs(theta) is theta
    with pytest.raises(ValueError, match="already a Draws"):
        decide.cost_bands(theta, 7e10, 1.4e12, DEP)
    with pytest.raises(ValueError, match="already a Draws"):
        decide.prob_cheaper(theta, [7e10], [1.4e12], key=jax.random.key(1))


def test_prob_lower_loss_and_draw_fraction_match_numpy():
    n, d = np.array([7e10, 2.8e11]), np.array([1.4e12, 3e11])
    losses = np.asarray(jax.vmap(lambda p: law.loss(p, n, d))(PARAMS), np.float64)
    expected = np.mean(losses[:, 0] < losses[:, 1])
    m = decide.draw_fraction(PARAMS, decide.prob_lower_loss(PARAMS, n, d))
    assert m[0, 1] == expected and m[0, 0] == 0.0 and m.dtype == np.float64
    assert np.all(np.round(m * N_DRAWS) == m * N_DRAWS)  # exactly k / n


def test_plan_and_tco_bands_match_per_draw_optima():
    bands = decide.plan_bands(PARAMS, [5.76e23, 1e24], q=(0.5,))
    n = np.asarray(jax.vmap(lambda p: optima.compute_optimal(p, 5.76e23).n)(PARAMS), np.float64)
    np.testing.assert_allclose(bands["n"][0, 0], np.quantile(n, 0.5), rtol=1e-5)
    dep = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0)
    result = decide.tco_bands(PARAMS, [2.0], dep, q=(0.5,))
    chin = np.asarray(jax.vmap(lambda p: optima.optimal_for_loss(p, 2.0).n)(PARAMS), np.float64)
    np.testing.assert_allclose(np.asarray(result.values["chinchilla"]["n"])[0, 0], np.quantile(chin, 0.5), rtol=1e-5)
    with pytest.raises(ValueError, match="optimum"):
        decide.tco_bands(PARAMS, [2.0], dep, optimum="chinchilla")


def test_crossing_interpolates_in_log_x():
    x = np.array([1e6, 1e8, 1e10])
    assert decide.crossing(x, [0.0, 0.4, 0.8], 0.6) == pytest.approx(1e9, rel=1e-12)
    assert decide.crossing(x, [0.0, 0.5, 1.0], 0.5) == 1e8  # on a grid point: that point
    assert decide.crossing(x, [0.1, 0.2, 0.3], 0.5) is None
