"""The extrapolation component: zero inside the data, exact per-draw maths, learning, files."""

import math

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from chinplan.inference import extrapolation as ex
from chinplan.inference.posterior import Posterior

LN10 = math.log(10.0)
RNG = np.random.default_rng(20261203)


def _numpy_log_loss(log_e, log_a, log_b, alpha, beta, log_n, log_d):
    return np.logaddexp(np.logaddexp(log_e + 0 * log_n, log_a - alpha * log_n), log_b - beta * log_d)


def _synthetic_posterior(num_draws=400, *, seed=0, with_extrapolation=True):
    """A Posterior built from draws near Besiroglu et al. 2024 (no NUTS), fitted 'runs' up to 1e21 FLOPs."""
    rng = np.random.default_rng(seed)
    shape = (2, num_draws // 2)
    sites = {
        "log_E": np.log(1.82) + 0.01 * rng.standard_normal(shape),
        "log_A": np.log(482.0) + 0.05 * rng.standard_normal(shape),
        "log_B": np.log(2085.0) + 0.05 * rng.standard_normal(shape),
        "alpha": 0.3478 + 0.005 * rng.standard_normal(shape),
        "beta": 0.3658 + 0.005 * rng.standard_normal(shape),
        "sigma": 0.004 + 0.0005 * np.abs(rng.standard_normal(shape)),
        "nu": 3.0 + rng.gamma(2.0, 1.0, shape),
    }
    log_n = np.log(np.array([1e8, 3e8, 1e9, 3e9, 1e9]))
    log_d = np.log(np.array([2e9, 6e9, 2e10, 5e10, 1.6e11]))
    idata = az.from_dict(posterior=sites, sample_stats={"diverging": np.zeros(shape, bool)})
    idata.add_groups(constant_data=xr.Dataset({"log_n": ("run", log_n), "log_d": ("run", log_d)}))
    idata.posterior.attrs.update(law="chinchilla", likelihood="student_t", num_runs=5)
    if with_extrapolation:
        domain = ex.Domain.of(log_n, log_d)
        group = xr.Dataset(
            {
                "u": (("chain", "draw"), 0.02 * rng.standard_normal(shape)),
                "v": (("chain", "draw"), 0.1 * rng.standard_normal(shape)),
                "kappa": (("chain", "draw"), np.full(shape, 0.01)),
                "tau_u": (("chain", "draw"), np.full(shape, 0.02)),
                "tau_v": (("chain", "draw"), np.full(shape, 0.1)),
            }
        )
        group.attrs["extrapolation_domain"] = "[%r, %r, %r]" % tuple(domain)
        idata.add_groups(extrapolation=group)
    return Posterior(idata)


def test_decades_beyond_zero_inside_and_exact_outside():
    domain = ex.Domain(21.0, 10.0, 11.5)
    log_n = np.log(np.array([1e9, 1e10, 1e11, 1e9]))
    log_d = np.log(np.array([1e10, 1e11, 1e11, 1e13]))
    d, d_c, d_n, d_d = ex.decades_beyond(domain, log_n, log_d)
    l10c = np.log10(6.0 * np.array([1e9, 1e10, 1e11, 1e9]) * np.array([1e10, 1e11, 1e11, 1e13]))
    np.testing.assert_allclose(d_c, np.maximum(0, l10c - 21.0), atol=1e-12)
    np.testing.assert_allclose(d_n, [0, 0, 1.0, 0], atol=1e-12)
    np.testing.assert_allclose(d_d, [0, 0, 0, 1.5], atol=1e-12)
    np.testing.assert_allclose(d, np.maximum(d_c, np.maximum(d_n, d_d)), atol=1e-12)
    assert d[0] == 0.0


def test_component_is_exactly_zero_on_fitted_runs():
    post = _synthetic_posterior()
    const = post.to_arviz().constant_data
    log_n, log_d = np.asarray(const["log_n"]), np.asarray(const["log_d"])
    assert np.all(post.extrapolation(np.exp(log_n), np.exp(log_d)).decades == 0.0)
    mean_ext, _ = post.sample_log_loss(log_n, log_d, key=jax.random.key(0), uncertainty="extrapolation")
    mean_law, _ = post.sample_log_loss(log_n, log_d, key=jax.random.key(0), uncertainty="law")
    np.testing.assert_array_equal(mean_ext, mean_law)


def test_predict_loss_matches_numpy_per_draw():
    post = _synthetic_posterior()
    n, d = np.array([1e9, 7e10, 4e11]), np.array([2e10, 1.4e12, 9e12])
    q = (0.05, 0.5, 0.95)
    key = jax.random.key(3)
    got = post.predict_loss(n, d, q=q, key=key)
    # independent float64 computation with the same noise draws
    s = {k: post.draws(k).astype(np.float64) for k in ("log_E", "log_A", "log_B", "alpha", "beta", "sigma", "nu")}
    g = post.to_arviz().extrapolation
    u, v, kappa = (np.asarray(g[k]).reshape(-1) for k in ("u", "v", "kappa"))
    dist, d_c, _, _ = ex.decades_beyond(post.domain, np.log(n), np.log(d))
    shift = LN10 * v[:, None] * d_c[None]
    mean = _numpy_log_loss(*(s[k][:, None] for k in ("log_E", "log_A", "log_B", "alpha", "beta")), np.log(n)[None] - shift, np.log(d)[None] + shift)
    mean = mean + u[:, None] * dist[None] ** ex.LEVEL_POWER
    _, rep = post.sample_log_loss(np.log(n), np.log(d), key=key)
    noise = rep - post.sample_log_loss(np.log(n), np.log(d), key=key)[0]
    np.testing.assert_allclose(post.sample_log_loss(np.log(n), np.log(d), key=key)[0], mean, rtol=0, atol=2e-5)
    want = np.quantile(np.exp(mean + noise), q, axis=0)
    np.testing.assert_allclose(got, want, rtol=5e-5)
    assert got.shape == (3, 3)
    # the noise is the fitted likelihood's: kappa * d * z + sigma * t_nu, whose scale we check
    z = noise / np.sqrt(s["sigma"][:, None] ** 2 + (kappa[:, None] * dist[None] ** ex.LEVEL_POWER) ** 2)
    assert np.all(np.isfinite(z))


def test_compute_optimal_law_matches_closed_form_and_extrapolated_matches_grid():
    post = _synthetic_posterior()
    compute = np.array([1e21, 1e23, 1e25])
    q = (0.05, 0.5, 0.95)
    s = {k: post.draws(k).astype(np.float64) for k in ("log_A", "log_B", "alpha", "beta", "log_E")}
    a = s["beta"] / (s["alpha"] + s["beta"])
    log_g = (np.log(s["alpha"]) + s["log_A"] - np.log(s["beta"]) - s["log_B"]) / (s["alpha"] + s["beta"])
    law_n = np.exp(log_g[:, None] + a[:, None] * np.log(compute / 6.0)[None])
    plan = post.compute_optimal(compute, q=q, key=jax.random.key(0), uncertainty="law")
    np.testing.assert_allclose(plan.n, np.quantile(law_n, q, axis=0), rtol=2e-3)
    np.testing.assert_allclose(plan.d, np.quantile(compute[None] / (6 * law_n), q, axis=0), rtol=2e-3)
    # extrapolated: brute-force float64 grid search per draw (float32 argmin resolution ~0.3%)
    g = post.to_arviz().extrapolation
    u, v = (np.asarray(g[k]).reshape(-1) for k in ("u", "v"))
    plan = post.compute_optimal(compute, q=q, key=jax.random.key(0))
    for j, c in enumerate(compute):
        x = np.log(law_n[:, j])[:, None] + np.linspace(-3, 3, 6001)[None] * LN10
        y = np.log(c / 6.0) - x
        dist, d_c, _, _ = ex.decades_beyond(post.domain, x, y)
        sh = LN10 * v[:, None] * d_c
        # the documented objective: the law moved by v dC, plus the level drift u dC (constant on the line)
        obj = _numpy_log_loss(*(s[k][:, None] for k in ("log_E", "log_A", "log_B", "alpha", "beta")), x - sh, y + sh) + u[:, None] * d_c
        best = np.exp(x[np.arange(len(x)), np.argmin(obj, axis=1)])
        np.testing.assert_allclose(plan.n[:, j], np.quantile(best, q), rtol=2e-3)


def test_bands_widen_beyond_the_data_and_law_bands_do_not_change_inside():
    post = _synthetic_posterior()
    key = jax.random.key(1)
    inside = post.predict_loss(1e9, 2e10, key=key)
    np.testing.assert_allclose(inside, post.predict_loss(1e9, 2e10, key=key, uncertainty="law"), rtol=1e-6)
    far_ext = post.predict_loss(1e12, 2e13, key=key)
    far_law = post.predict_loss(1e12, 2e13, key=key, uncertainty="law")
    assert far_ext[2] - far_ext[0] > 2 * (far_law[2] - far_law[0])


def test_save_load_round_trips_the_extrapolation_group(tmp_path):
    post = _synthetic_posterior()
    path = tmp_path / "p.nc"
    post.save(path)
    back = Posterior.load(path)
    for k in ("u", "v", "kappa", "tau_u", "tau_v"):
        np.testing.assert_array_equal(np.asarray(back.to_arviz().extrapolation[k]), np.asarray(post.to_arviz().extrapolation[k]))
    assert back.domain == post.domain
    key = jax.random.key(5)
    np.testing.assert_array_equal(back.predict_loss(5e11, 1e13, key=key), post.predict_loss(5e11, 1e13, key=key))


def test_law_only_posterior_refuses_extrapolation_uncertainty():
    post = _synthetic_posterior(with_extrapolation=False)
    with pytest.raises(ValueError, match="extrapolation=True"):
        post.predict_loss(1e9, 1e10, key=jax.random.key(0))
    assert post.predict_loss(1e9, 1e10, key=jax.random.key(0), uncertainty="law").shape == (3,)
    with pytest.raises(ValueError, match="uncertainty must be one of"):
        post.predict_loss(1e9, 1e10, key=jax.random.key(0), uncertainty="wide")
    with pytest.raises(ValueError, match="n"):
        post.predict_loss(-1.0, 1e10, key=jax.random.key(0), uncertainty="law")


def test_isoflop_minima_recover_a_known_parabola_vertex():
    rows = []
    for c, vertex in ((1e19, 8.3), (1e20, 8.9), (1e21, 9.4)):
        for x in np.linspace(vertex - 0.6, vertex + 0.6, 9):
            n = 10**x
            rows.append({"params": n, "tokens": c / (6 * n), "loss": 2.0 + 0.3 * (x - vertex) ** 2 + 0.002 * RNG.standard_normal()})
    minima = ex.isoflop_minima(pd.DataFrame(rows))
    assert len(minima) == 3
    np.testing.assert_allclose(minima["log10_params"], [8.3, 8.9, 9.4], atol=0.03)
    assert np.all(minima["lower"] <= minima["log10_params"]) and np.all(minima["log10_params"] <= minima["upper"])


def _coverage_check(hits: int, reps: int, level: float) -> None:
    se = math.sqrt(level * (1 - level) / reps)
    assert abs(hits / reps - level) < 3.5 * se, (hits / reps, level, se)


def test_level_drift_intervals_are_nominal_when_folds_see_a_discrepancy_of_known_size():
    """Ladders whose extrapolations drift by u d + kappa d z (a fresh u ~ N(0, tau^2) for each
    fold and for the question; tau and kappa drawn from their priors): the learned predictive
    of a point 1.5 decades beyond holds its truth at the nominal 80% rate, within binomial error."""
    rng = np.random.default_rng(11)
    reps, level, sigma = 120, 0.8, 0.02
    d_fold = np.linspace(0.05, 0.6, 30)
    hits = 0
    for r in range(reps):
        tau, kappa = abs(rng.normal(0.0, ex.PRIOR_SCALE_TAU_U)), abs(rng.normal(0.0, ex.PRIOR_SCALE_KAPPA))
        noisy = lambda d: rng.normal(0.0, tau) * d + kappa * d * rng.standard_normal(np.shape(d))  # noqa: E731
        folds = [(noisy(d_fold) + sigma * rng.standard_normal(30), np.full(30, sigma**2), d_fold) for _ in range(4)]
        evidence = ex.FoldEvidence(folds, np.array([]), np.array([]), np.array([]), [])
        hyper = ex.scale_posterior(evidence, ex.Domain(21.0, 10.0, 11.0))
        draws = ex.sample_discrepancy(hyper, 4000, key=jax.random.key(r))
        truth = noisy(1.5)
        pred = draws["u"] * 1.5 + draws["kappa"] * 1.5 * rng.standard_normal(4000)
        lo, hi = np.quantile(pred, [(1 - level) / 2, (1 + level) / 2])
        hits += bool(lo <= truth <= hi)
    _coverage_check(hits, reps, level)


def test_allocation_drift_intervals_are_nominal_for_a_shared_drift_of_known_size():
    """A valley drift v ~ N(0, tau_v^2) (tau_v from the prior) shared by the folds' misses and
    the question: the posterior of v * 1.5 decades covers the truth at the nominal 90% rate."""
    rng = np.random.default_rng(12)
    reps, level = 200, 0.9
    dist, se = np.array([0.2, 0.4, 0.7, 1.0]), 0.04
    hits = 0
    for r in range(reps):
        tau = abs(rng.normal(0.0, ex.PRIOR_SCALE_TAU_V))
        v = rng.normal(0.0, tau)
        misses = v * dist + se * rng.standard_normal(len(dist))
        evidence = ex.FoldEvidence([], misses, np.full(len(dist), se**2), dist, [])
        hyper = ex.scale_posterior(evidence, ex.Domain(21.0, 10.0, 11.0))
        draws = ex.sample_discrepancy(hyper, 4000, key=jax.random.key(r))
        lo, hi = np.quantile(draws["v"] * 1.5, [(1 - level) / 2, (1 + level) / 2])
        hits += bool(lo <= v * 1.5 <= hi)
    _coverage_check(hits, reps, level)


def test_plan_kernel_and_fan_chart_take_extrapolated_draws():
    from chinplan import engine, plots
    from chinplan.engine import kernels

    post = _synthetic_posterior()
    theta = post.extrapolated_params()
    compute = np.array([1e20, 1e23, 1e25])
    log_n, log_d, log_l = ex.compute_optimal_draws(theta, jax.numpy.log(jax.numpy.asarray(compute)))
    q = (0.05, 0.5, 0.95)
    got = engine.bands(kernels.plan, theta, compute, q=q).values
    np.testing.assert_allclose(got["n"], np.quantile(np.exp(np.asarray(log_n, np.float64)), q, axis=0), rtol=1e-5)
    np.testing.assert_allclose(got["loss"], np.quantile(np.exp(np.asarray(log_l, np.float64)), q, axis=0), rtol=1e-5)
    fig = plots.fan_chart(theta, np.logspace(19, 25, 13))
    shaded = [p for ax in fig.axes for p in ax.patches if p.get_label() == "beyond the fitted runs"]
    assert len(shaded) == 2
    edge = 10.0 ** post.domain.log10_compute
    for patch in shaded:
        assert patch.get_x() == pytest.approx(edge, rel=1e-6)


def test_loss_questions_take_extrapolated_draws_and_law_only_questions_refuse_them():
    from chinplan.decide import risk as decide
    from chinplan.engine import kernels

    post = _synthetic_posterior()
    theta = post.extrapolated_params()
    n, d = np.array([1e9, 3e11]), np.array([2e10, 6e12])
    mean, _ = post.sample_log_loss(np.log(n), np.log(d), key=jax.random.key(0))
    p = decide.prob_target(theta, n, d, 2.0)
    np.testing.assert_allclose(p, np.mean(np.exp(mean) <= 2.0, axis=0), atol=1e-6)
    one = jax.tree_util.tree_map(lambda x: x[0], theta)
    with pytest.raises(TypeError, match="law's posterior only"):
        kernels.loss_repeated(one, 1e9, 1e11, 1e10)


def test_posterior_refuses_a_damaged_extrapolation_group():
    post = _synthetic_posterior()
    idata = post.to_arviz().copy()
    bad = idata.extrapolation.copy()
    bad["u"] = bad["u"] * np.nan
    idata.extrapolation = bad
    with pytest.raises(ValueError, match="variable 'extrapolation/u' must be finite"):
        Posterior(idata)
    idata = post.to_arviz().copy()
    idata.extrapolation.attrs.pop("extrapolation_domain")
    with pytest.raises(ValueError, match="extrapolation_domain"):
        Posterior(idata)


def test_fold_loss_likelihood_equals_a_float64_mixture_of_normals():
    """The grid likelihood of one fold against scipy's Normal densities, summed per (kappa, u)
    in float64 at a few grid points (the mixture of the docstring, written out independently)."""
    from scipy import stats

    rng = np.random.default_rng(3)
    residual, var, d = rng.normal(0, 0.05, 17), rng.uniform(1e-4, 4e-4, 17), rng.uniform(0.05, 0.9, 17)
    ll = ex._loss_likelihood(residual, var, d)
    assert ll.shape == (len(ex.KAPPA_GRID), len(ex._U_GRID))
    for k, j in [(0, 0), (3, 1200), (40, 2400), (17, 901)]:
        kappa, u = ex.KAPPA_GRID[k], ex._U_GRID[j]
        core = stats.norm.pdf(residual - u * d, scale=np.sqrt(var + (kappa * d) ** 2))
        outlier = stats.norm.pdf(residual, scale=ex.OUTLIER_SD)
        expected = np.sum(np.log((1 - ex.OUTLIER_WEIGHT) * core + ex.OUTLIER_WEIGHT * outlier))
        assert ll[k, j] == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_fold_loss_likelihood_of_a_residual_beyond_the_overflow_of_its_fast_form():
    """A residual of 12 in log loss: exp(c - b) of the fast form would overflow, so the fold is
    summed by logaddexp; both forms against scipy's log densities in float64 (logsumexp)."""
    from scipy import special, stats

    residual, var, d = np.array([0.01, -0.02, 12.0]), np.array([2e-4, 3e-4, 2e-4]), np.array([0.1, 0.5, 0.9])
    for r in (residual, residual[:2]):  # with the far residual (logaddexp), without it (the fast form)
        ll = ex._loss_likelihood(r, var[: len(r)], d[: len(r)])
        assert np.all(np.isfinite(ll))
        for k, j in [(0, 0), (0, 1200), (40, 2400), (17, 901)]:
            kappa, u = ex.KAPPA_GRID[k], ex._U_GRID[j]
            sd = np.sqrt(var[: len(r)] + (kappa * d[: len(r)]) ** 2)
            terms = np.stack([np.log1p(-ex.OUTLIER_WEIGHT) + stats.norm.logpdf(r - u * d[: len(r)], scale=sd),
                              np.log(ex.OUTLIER_WEIGHT) + stats.norm.logpdf(r, scale=ex.OUTLIER_SD)])  # fmt: skip
            assert ll[k, j] == pytest.approx(np.sum(special.logsumexp(terms, axis=0)), rel=1e-12, abs=1e-9)
