"""The per-draw kernels (chinplan.kernels) against float64 NumPy, one draw and one scenario."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
from chinplan import costs, engine, optima
from chinplan.engine import kernels
from chinplan.costs import Deployment
from chinplan.law import HOFFMANN_2022, LawParams

P = HOFFMANN_2022
DEP = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0, price=2.0, inference_price=1.5)
THETA = (P, DEP)


def numpy_loss(p, n, d):
    e, a, b, alpha, beta = (float(v) for v in p)
    return e + a * n**-alpha + b * d**-beta


def test_loss_kernels_match_numpy_and_accept_a_pair():
    n, d = 7e10, 1.4e12
    assert float(kernels.loss(P, n, d)) == pytest.approx(numpy_loss(P, n, d), rel=1e-6)
    assert float(kernels.loss(THETA, n, d)) == float(kernels.loss(P, n, d))  # (law, deployment) pairs too
    gap = float(kernels.loss_gap(P, 7e10, 1.4e12, 2.8e11, 3e11))
    assert gap == pytest.approx(numpy_loss(P, 2.8e11, 3e11) - numpy_loss(P, 7e10, 1.4e12), abs=1e-5)
    assert bool(kernels.lower_loss(P, 7e10, 1.4e12, 2.8e11, 3e11)) == (gap > 0)
    assert bool(kernels.loss_not_worse(P, n, d, n, d)) and not bool(kernels.lower_loss(P, n, d, n, d))
    target = numpy_loss(P, n, d)
    assert bool(kernels.loss_at_most(P, n, d, target + 1e-3)) and not bool(kernels.loss_at_most(P, n, d, target - 1e-3))


def test_repeated_data_costs_loss():
    out = kernels.fresh_and_repeated(P, 7e10, 1.4e12, 1e11)
    assert float(out["repeated"]) > float(out["fresh"]) and float(out["cost"]) > 0
    assert float(out["repeated"]) == float(kernels.loss_repeated(P, 7e10, 1.4e12, 1e11))
    assert bool(kernels.loss_at_most_repeated(P, 7e10, 1.4e12, float(out["repeated"]) + 1e-3, 1e11))


def test_requirement_and_unreachable():
    d, target = 1.4e12, 2.0
    e, a, b, alpha, beta = (float(v) for v in P)
    expected = (a / (target - e - b * d**-beta)) ** (1 / alpha)
    assert float(kernels.params_for_loss(P, d, target)) == pytest.approx(expected, rel=1e-4)
    assert not bool(kernels.unreachable(P, d, target)) and bool(kernels.unreachable(P, 1e9, e + 1e-3))
    assert bool(kernels.below_floor(P, e - 0.01)) and not bool(kernels.below_floor(THETA, e + 0.01))


def test_plan_is_the_compute_optimum():
    plan = kernels.plan(P, 5.76e23)
    best = optima.compute_optimal(P, 5.76e23)
    assert float(plan["n"]) == float(best.n) and float(plan["loss"]) == float(best.loss)
    assert float(plan["tokens_per_param"]) == pytest.approx(float(best.d) / float(best.n), rel=1e-6)


def test_cost_kernels_are_the_tco():
    cost = costs.tco(7e10, 1.4e12, DEP)
    assert float(kernels.design_cost(THETA, 7e10, 1.4e12).dollars) == float(cost.dollars)
    for field in costs.Cost._fields:
        assert float(kernels.cost_field(field)(THETA, 7e10, 1.4e12)) == float(getattr(cost, field))
    assert kernels.cost_field("dollars") is kernels.cost_field("dollars")  # built once: one compilation
    with pytest.raises(ValueError, match="field"):
        kernels.cost_field("euros")
    at = float(kernels.dollars_at_queries(THETA, 7e10, 1.4e12, 1e11))
    assert at == float(costs.tco(7e10, 1.4e12, DEP._replace(queries=1e11)).dollars)
    small, big = (8e9, 15e12), (7e10, 1.4e12)
    assert bool(kernels.cheaper_at_queries(THETA, *small, *big, 1e12)) and not bool(kernels.cheaper_at_queries(THETA, *small, *big, 0.0))
    assert bool(kernels.cheaper(THETA, 1e9, 1e10, *big))


def test_optimum_dispatch_is_the_library():
    target = 2.0
    tokens = costs.lifetime_tokens(DEP.queries, DEP.input_tokens, DEP.output_tokens)
    expected = {
        "cost": costs.cost_optimal(P, target, DEP),
        "flops": optima.inference_optimal(P, target, tokens),
        "chinchilla": optima.optimal_for_loss(P, target),
    }
    for kind, best in expected.items():
        got = kernels.optimum(THETA, target, kind)
        assert float(got.n) == float(best.n) and float(got.d) == float(best.d), kind


def test_priced_is_inf_where_unreachable_and_never_nan():
    out = kernels.priced(jnp.inf, jnp.inf, jnp.nan, DEP, ("n", "tokens_per_param", "dollars", "gpu_hours"))
    assert all(np.isinf(float(v)) for v in out.values())
    grad = jax.grad(lambda n: kernels.priced(n, 1e12, 2.0, DEP, ("dollars",))["dollars"])(7e10)
    assert np.isfinite(float(grad))
    unreachable = jax.jit(kernels.target_plan_cost)(THETA, float(P.E) - 0.01)  # per draw, traced: inf
    assert np.isinf(float(unreachable.n)) and np.isinf(float(unreachable.dollars))
    plan = kernels.target_plan_cost(THETA, 2.0)
    assert float(plan.dollars) == pytest.approx(float(costs.tco(plan.n, plan.d, DEP).dollars), rel=1e-6)


def test_tco_point_savings_and_design_point():
    out = kernels.tco_point(THETA, 2.0, kind="cost")
    a, b = float(out["optimal"]["dollars"]), float(out["chinchilla"]["dollars"])
    assert a <= b * (1 + 1e-6) and float(out["savings"]) == pytest.approx(1 - a / b, rel=1e-5)
    assert kernels.tco_kernel("flops") is kernels.tco_kernel("flops")
    assert np.isnan(float(jax.jit(kernels.tco_point)(THETA, float(P.E) - 0.01)["savings"]))
    design = kernels.design_point(THETA, 7e10, 1.4e12)
    assert set(design) == set(kernels.DESIGN_FIELDS)
    assert float(design["dollars"]) == float(costs.tco(7e10, 1.4e12, DEP).dollars)


def test_sweep_kernel_replaces_deployment_fields_and_is_cached():
    k = kernels.sweep_kernel("design", "cost", ("n", "d", "queries"), ("loss", "dollars"))
    assert k is kernels.sweep_kernel("design", "cost", ("n", "d", "queries"), ("loss", "dollars"))
    out = k(THETA, 7e10, 1.4e12, 1e11)
    assert float(out["dollars"]) == float(costs.tco(7e10, 1.4e12, DEP._replace(queries=1e11)).dollars)
    compute = kernels.sweep_kernel("compute", "cost", ("compute",), ("n",))(THETA, 5.76e23)
    assert float(compute["n"]) == float(optima.compute_optimal(P, 5.76e23).n)
    target = kernels.sweep_kernel("target_loss", "chinchilla", ("target_loss",), ("d",))(THETA, 2.0)
    assert float(target["d"]) == float(optima.optimal_for_loss(P, 2.0).d)


def test_kernels_map_over_draws_in_the_engine():
    draws = LawParams(*(np.full(16, np.float32(v)) * np.linspace(0.95, 1.05, 16, dtype=np.float32) for v in P))
    losses = np.asarray(jax.vmap(lambda p: kernels.loss(p, 7e10, 1.4e12))(draws), np.float64)
    bands = engine.bands(kernels.loss, draws, np.asarray([7e10]), np.asarray([1.4e12]), q=(0.5,)).values
    np.testing.assert_allclose(np.asarray(bands)[0, 0], np.quantile(losses, 0.5), rtol=1e-6)
    assert chinplan.decide.loss_at_most is kernels.loss_at_most  # decide re-exports, never copies
