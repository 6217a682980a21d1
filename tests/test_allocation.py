"""The allocation predictive (chinplan.inference.allocation): the law's optimum and the fitted
runs' isoFLOP minima combined; carried per draw as a valley offset and drift."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import chinplan
from chinplan.extrapolated import VALLEY_RAMP, ExtrapolatedLaw, compute_optimal_draws
from chinplan.inference.allocation import DEFAULT_HYPER, MIN_MINIMA, AllocationHyper, AllocationLine, fit_line, law_line_draws, sample_valley
from chinplan.law import LawParams

X0 = 22.0  # log10 of the largest fitted compute


def _minima(x, y, sd):
    """A minima table as isoflop_minima writes it (5-95% bootstrap range = 3.29 sd)."""
    x, y, sd = (np.asarray(a, np.float64) for a in (x, y, sd))
    return pd.DataFrame({"log10_compute": x, "log10_params": y, "lower": y - 1.645 * sd, "upper": y + 1.645 * sd})


def _law_line(num=4000, level=10.5, level_sd=0.03, slope=0.5, slope_sd=0.02, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.normal(level, level_sd, num), rng.normal(slope, slope_sd, num)], axis=1)


def test_no_line_without_two_minima_so_the_fit_keeps_the_law_and_its_drift():
    law = _law_line()
    assert MIN_MINIMA == 2
    assert fit_line(law, None, X0) is None
    assert fit_line(law, _minima([21.0], [10.0], [0.02]), X0) is None
    assert fit_line(law, _minima([21.0, 21.0], [10.0, 10.1], [0.02, 0.02]), X0) is None  # one budget: no slope
    assert isinstance(fit_line(law, _minima([20.0, 21.0], [9.5, 10.0], [0.02, 0.02]), X0), AllocationLine)


def test_the_line_is_the_weighted_least_squares_oracle_with_the_laws_level_as_one_more_observation():
    law = _law_line()
    hyper = AllocationHyper(sigma0=0.07, sigma=0.04, tau=0.05)
    x, y, sd = np.array([19.5, 20.2, 21.0, 21.7]), np.array([9.1, 9.5, 9.9, 10.4]), np.array([0.01, 0.03, 0.02, 0.05])
    line = fit_line(law, _minima(x, y, sd), X0, hyper)
    # independent float64 oracle: weighted least squares on rows (1, x - x0) with weights
    # 1/(sd^2 + sigma^2), plus the prior as an observation of b0 alone with weight 1/(var + sigma0^2)
    prior_var = np.var(law[:, 0], ddof=1) + hyper.sigma0**2
    rows = np.vstack([np.stack([np.ones_like(x), x - X0], axis=1), [1.0, 0.0]])
    obs = np.append(y, law[:, 0].mean())
    w = np.append(1.0 / (sd**2 + hyper.sigma**2), 1.0 / prior_var)
    sw = np.sqrt(w)
    mean, *_ = np.linalg.lstsq(rows * sw[:, None], obs * sw, rcond=None)
    cov = np.linalg.inv(rows.T @ (w[:, None] * rows))
    np.testing.assert_allclose(line.mean, mean, rtol=1e-10)
    np.testing.assert_allclose(line.cov, cov, rtol=1e-10)
    # the predictive: line variance + drift (tau d)^2 + scatter sigma^2
    mu, sd_pred = line.predictive(np.array([21.0, 23.5]))
    h = np.array([[1.0, -1.0], [1.0, 1.5]])
    np.testing.assert_allclose(mu, h @ mean, rtol=1e-12)
    np.testing.assert_allclose(sd_pred**2, np.einsum("ij,jk,ik->i", h, cov, h) + np.array([0.0, (0.05 * 1.5) ** 2]) + 0.04**2, rtol=1e-10)


def test_law_line_draws_are_the_closed_form_optimum_at_the_edge():
    p = chinplan.HOFFMANN_2022
    draws = {"log_A": np.log([p.A]), "log_B": np.log([p.B]), "alpha": np.array([p.alpha]), "beta": np.array([p.beta])}
    level, slope = law_line_draws(draws, X0)[0]
    n_opt = float(chinplan.compute_optimal(p, 10.0**X0).n)  # Hoffmann et al. 2022, Eq. 4
    assert level == pytest.approx(math.log10(n_opt), abs=1e-5)
    assert slope == pytest.approx(p.beta / (p.alpha + p.beta), rel=1e-12)


def _theta(law_line_rows, c, v, domain_x0=X0):
    """ExtrapolatedLaw draws whose law lines are ``law_line_rows`` (level at x0, slope a):
    alpha = beta = 2a... chosen so a = beta/(alpha+beta) and G matches the level."""
    num = len(c)
    a = law_line_rows[:, 1]
    alpha = np.full(num, 0.34)
    beta = alpha * a / (1 - a)
    # log10 N*(x0) = log10 G + a (x0 - log10 6): solve log G, then A with B = 400
    log_g = (law_line_rows[:, 0] - a * (domain_x0 - math.log10(6.0))) * math.log(10.0)
    log_b = np.full(num, math.log(400.0))
    # log G = log(alpha A / (beta B)) / (alpha + beta)  =>  log A = (alpha+beta) log G + log(beta B / alpha)
    log_a = (alpha + beta) * log_g + np.log(beta / alpha) + log_b
    law = LawParams(jnp.asarray(np.full(num, 1.7)), jnp.asarray(np.exp(log_a)), jnp.asarray(np.exp(log_b)), jnp.asarray(alpha), jnp.asarray(beta))
    zeros = jnp.zeros(num)
    domain = jnp.tile(jnp.asarray([domain_x0, 11.0, 12.0]), (num, 1))
    return ExtrapolatedLaw(law, zeros, jnp.asarray(v), zeros, domain, jnp.asarray(c))


def test_each_draw_follows_the_line_beyond_the_ramp_and_the_law_inside():
    with jax.enable_x64(True):
        law = _law_line(num=64)
        line = fit_line(law, _minima([20.0, 21.0, 21.8], [9.6, 10.1, 10.5], [0.02] * 3), X0)
        valley = sample_valley(line, law, key=jax.random.key(3))
        theta = _theta(law, valley["c"], valley["v"])
        d = np.array([0.0, VALLEY_RAMP, 1.0, 2.5])
        log_n = np.asarray(compute_optimal_draws(theta, jnp.asarray((X0 + d) * math.log(10.0)))[0]) / math.log(10.0)
        np.testing.assert_allclose(log_n[:, 0], law[:, 0], rtol=0, atol=1e-9)  # inside: the law's optimum
        ramp = np.minimum(1.0, d / VALLEY_RAMP)
        want = law[:, :1] + law[:, 1:] * d + valley["c"][:, None] * ramp + valley["v"][:, None] * d
        np.testing.assert_allclose(log_n, want, rtol=0, atol=1e-9)


def test_the_draws_carry_the_predictive():
    law = _law_line(num=40_000)
    line = fit_line(law, _minima([20.0, 20.6, 21.2, 21.8], [9.6, 9.9, 10.2, 10.6], [0.02, 0.03, 0.02, 0.04]), X0)
    valley = sample_valley(line, law, key=jax.random.key(0))
    n = len(law)
    for d in (0.5, 2.0):
        y = law[:, 0] + law[:, 1] * d + valley["c"] + valley["v"] * d  # beyond the ramp
        mu, sd = line.predictive(X0 + d)
        assert abs(y.mean() - mu) <= 4 * sd / math.sqrt(n), (d, y.mean(), mu)
        assert abs(y.std() / sd - 1) <= 4 / math.sqrt(2 * n), (d, y.std(), sd)


@pytest.mark.parametrize("tau", [0.0, 0.05, 0.15])
def test_synthetic_ladders_drawn_from_the_model_are_covered_at_nominal_rates(tau):
    """Ladders drawn from the model itself (the line's level from the law-anchored prior, any
    slope, slope drift tau beyond the data, slice scatter sigma): the central 50% and 90%
    intervals at 0.5 and 2 decades beyond hold the truth at their nominal rates within 4
    binomial standard errors of 2,000 ladders (a false alarm has probability < 1e-4)."""
    rng = np.random.default_rng(int(tau * 1000) + 1)
    hyper = AllocationHyper(sigma0=0.05, sigma=0.05, tau=tau)
    law = _law_line(num=2000, seed=11)
    prior_sd = math.sqrt(np.var(law[:, 0], ddof=1) + hyper.sigma0**2)
    x = X0 - np.array([1.2, 0.9, 0.6, 0.3, 0.0])
    sd = np.array([0.01, 0.02, 0.02, 0.04, 0.05])
    num, hits = 2000, {(lvl, d): 0 for lvl in (0.5, 0.9) for d in (0.5, 2.0)}
    for _ in range(num):
        b0, b1 = rng.normal(law[:, 0].mean(), prior_sd), rng.uniform(0.4, 0.8)
        y = b0 + b1 * (x - X0) + rng.normal(0, np.sqrt(sd**2 + hyper.sigma**2))
        line = fit_line(law, _minima(x, y, sd), X0, hyper)
        t = rng.normal(0, tau)
        for d in (0.5, 2.0):
            truth = b0 + (b1 + t) * d + rng.normal(0, hyper.sigma)
            mu, s = line.predictive(X0 + d)
            for lvl in (0.5, 0.9):
                half = s * {0.5: 0.6744897501960817, 0.9: 1.6448536269514722}[lvl]
                hits[(lvl, d)] += abs(truth - mu) <= half
    for (lvl, d), k in hits.items():
        se = math.sqrt(lvl * (1 - lvl) / num)
        assert abs(k / num - lvl) <= 4 * se, (lvl, d, k / num)


def test_the_line_round_trips_through_the_posterior_file(tmp_path):
    line = fit_line(_law_line(), _minima([20.0, 21.0, 21.8], [9.6, 10.1, 10.5], [0.02] * 3), X0, DEFAULT_HYPER)
    again = AllocationLine.from_attrs(line.to_attrs())
    np.testing.assert_array_equal(again.mean, line.mean)
    np.testing.assert_array_equal(again.cov, line.cov)
    assert (again.x0, again.num_minima, again.hyper) == (line.x0, line.num_minima, line.hyper)
    with pytest.raises(ValueError, match="allocation_line"):
        AllocationLine.from_attrs({"allocation_line": '{"mean": [1, "nan"], "cov": [[1, 0], [0, 1]], "x0": 1, "num_minima": 2, "hyper": {"sigma0": 0.05, "sigma": 0.05, "tau": 0.05}}'})
