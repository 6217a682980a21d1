"""The jitted NUTS driver (chinplan._sampler): right answers, one compilation, every chain method."""

import contextlib
import textwrap
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from chinplan.inference import sampler as _sampler


MEAN = np.array([3.0, -1.0])
SCALE = np.array([2.0, 0.5])
RHO = 0.8


def gaussian(loc, *, rho):
    """A correlated 2-D Gaussian whose mean comes in as data: exact moments to test against."""
    cov = jnp.array([[SCALE[0] ** 2, rho * SCALE[0] * SCALE[1]], [rho * SCALE[0] * SCALE[1], SCALE[1] ** 2]])
    numpyro.sample("x", dist.MultivariateNormal(loc, cov))


def _run(loc, method, key=0, **kw):
    settings = dict(num_warmup=300, num_draws=1000, num_chains=2, chain_method=method)
    settings.update(kw)
    return _sampler.sample_nuts(gaussian, (jnp.asarray(loc, jnp.float32),), {"rho": RHO}, key=jax.random.PRNGKey(key), **settings)


@pytest.mark.parametrize("method", ["sequential", "vectorized", "parallel"])
def test_moments_of_a_correlated_gaussian(method):
    """Means within 4 Monte Carlo SE (SE = sd / sqrt(ESS)), sds within 4 SE (sd / sqrt(2 ESS))."""
    with pytest.warns(UserWarning, match="devices") if method == "parallel" and jax.local_device_count() < 2 else contextlib.nullcontext():
        samples, diverging = _run(MEAN, method)
    x = samples["x"]
    assert x.shape == (2, 1000, 2) and diverging.shape == (2, 1000)
    assert not diverging.any()
    ess = _moments_hold(x)
    assert np.all(ess > 200)
    corr = np.corrcoef(x.reshape(-1, 2).astype(np.float64).T)[0, 1]
    assert abs(corr - RHO) < 4 * (1 - RHO**2) / np.sqrt(ess.min())  # SE of r: (1 - rho^2) / sqrt(n)


def test_new_data_of_the_same_shape_does_not_recompile(count_compiles):
    _run(MEAN, "sequential", num_warmup=50, num_draws=50)
    with count_compiles() as compiled:
        samples, _ = _run(MEAN + 10.0, "sequential", key=1, num_warmup=50, num_draws=50)
    assert compiled == []
    assert np.all(np.abs(samples["x"].reshape(-1, 2).mean(0) - (MEAN + 10.0)) < 4 * SCALE)


def test_same_key_same_draws_and_chains_differ():
    a, _ = _run(MEAN, "sequential", num_warmup=50, num_draws=50)
    b, _ = _run(MEAN, "sequential", num_warmup=50, num_draws=50)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.array_equal(a["x"][0], a["x"][1])


def test_progress_bar_counts_every_step(capsys):
    _run(MEAN, "sequential", num_warmup=20, num_draws=30, progress=True)
    err = capsys.readouterr().err
    assert "100/100" in err  # 2 chains x 50 steps


PARALLEL_SCRIPT = textwrap.dedent(
    """
    import os, sys, warnings
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    sys.path.insert(0, {tests!r})
    from test_sampler import MEAN, _run
    from chinplan.inference import sampler as _sampler
    assert jax.local_device_count() == 4
    assert _sampler.chain_method_for(4, None) == "parallel"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: the chains really run in parallel
        samples, diverging = _run(MEAN, None, num_chains=4)
    np.savez(sys.argv[1], x=samples["x"], diverging=diverging)
    """
)

GROUPED_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    import jax, numpy as np
    jax.config.update("jax_num_cpu_devices", 2)
    sys.path.insert(0, {tests!r})
    from test_sampler import MEAN, _run
    from chinplan.inference import sampler as _sampler
    assert jax.local_device_count() == 2
    assert _sampler.chain_method_for(3, None) == "parallel"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        three, diverging = _run(MEAN, None, num_chains=3)  # groups of 2: the last padded
        before = _sampler._runner.cache_info().misses
        two, _ = _run(MEAN, None, num_chains=2)  # one group: the same compiled program
        assert _sampler._runner.cache_info().misses == before
    np.savez(sys.argv[1], x=three["x"], diverging=diverging, two=two["x"])
    """
)


def _moments_hold(x) -> np.ndarray:
    """Asserts the draws ``x`` (chain, draw, 2) have the target's means within 4 Monte Carlo
    SE (sd / sqrt(ESS)) and sds within 4 SE (sd / sqrt(2 ESS)); returns the ESS per dimension."""
    ess = np.asarray(az.ess({"x": x})["x"])
    flat = x.reshape(-1, 2).astype(np.float64)
    assert np.all(np.abs(flat.mean(0) - MEAN) < 4 * SCALE / np.sqrt(ess))
    assert np.all(np.abs(flat.std(0) / SCALE - 1) < 4 / np.sqrt(2 * ess))
    return ess


def test_parallel_chains_on_four_devices(run_script):
    """Four host devices: fit's default picks one chain per device, and the moments are right."""
    out = run_script(PARALLEL_SCRIPT.format(tests=str(Path(__file__).parent)))
    x = out["x"]
    assert x.shape == (4, 1000, 2) and not out["diverging"].any()
    assert not np.array_equal(x[0], x[1])
    _moments_hold(x)


def test_more_chains_than_devices_run_in_groups_of_one_chain_per_device(run_script):
    """Two host devices, three chains: two groups of two (the spare chain dropped), right
    moments; two chains reuse the compiled group (the refits of chinplan.fit run 2 chains)."""
    out = run_script(GROUPED_SCRIPT.format(tests=str(Path(__file__).parent)))
    x = out["x"]
    assert x.shape == (3, 1000, 2) and out["diverging"].shape == (3, 1000) and not out["diverging"].any()
    assert out["two"].shape == (2, 1000, 2)
    assert not np.array_equal(x[1], x[2])  # the third chain (in the padded group) is its own
    _moments_hold(x)


def test_a_higher_target_acceptance_reuses_the_compiled_chain(count_compiles):
    """The gate's retry at target acceptance 0.95 runs the program compiled for 0.8 (the
    target is an argument), and the target is used: the same key gives other draws."""
    low, _ = _run(MEAN, "sequential", num_warmup=50, num_draws=50)
    with count_compiles() as compiled:
        high, _ = _run(MEAN, "sequential", num_warmup=50, num_draws=50, target_accept_prob=0.95)
    assert compiled == []
    assert not np.array_equal(low["x"], high["x"])


def _three_sites():
    numpyro.sample("s", dist.HalfNormal(1.0))
    numpyro.sample("r", dist.Normal(0.0, 1.0))
    numpyro.sample("u", dist.Uniform(0.05, 2.0))
    numpyro.sample("other", dist.Normal(5.0, 0.1))


def test_init_near_moves_each_named_site_within_the_radius_in_unconstrained_coordinates():
    """Each named site starts at T(T^-1(value) + u), |u| <= radius (log for a positive site,
    the identity on the line, a scaled logit on an interval), a fresh u per key; an unnamed
    site starts at the prior median (of 15 draws: within 5 of its SEs, 1.25 sd / sqrt(15))."""
    from numpyro.handlers import seed, substitute, trace

    values, radius = {"s": 0.3, "r": -2.0, "u": 1.9}, 0.1
    logit = lambda x: np.log((x - 0.05) / 1.95) - np.log1p(-(x - 0.05) / 1.95)  # noqa: E731
    moves = {k: [] for k in values}
    for i in range(200):
        strategy = _sampler.init_near(values, radius)
        tr = trace(substitute(seed(_three_sites, jax.random.PRNGKey(i)), substitute_fn=strategy)).get_trace()
        got = {k: np.float64(tr[k]["value"]) for k in tr}
        moves["s"].append(np.log(got["s"]) - np.log(0.3))
        moves["r"].append(got["r"] + 2.0)
        moves["u"].append(logit(got["u"]) - logit(1.9))
        assert abs(got["other"] - 5.0) < 5 * 0.1 * 1.25 / np.sqrt(15)
    for k, m in moves.items():
        m = np.asarray(m)
        assert np.all(np.abs(m) <= radius * (1 + 1e-4)), k
        # 200 Uniform(-r, r) moves: the range exceeds 1.5 r but with probability ~ 1e-20
        assert np.ptp(m) > 1.5 * radius, k


def test_a_new_start_reuses_the_compiled_chain_and_is_used(count_compiles):
    """Start values are arguments of the compiled chain: new values do not compile again, and
    they are used: the same key from another start gives other draws (were the values
    ignored, the draws would be equal bit for bit, as two runs of one key are above)."""
    settings = dict(num_warmup=20, num_draws=5, num_chains=1, chain_method="sequential")
    run = lambda x: _sampler.sample_nuts(gaussian, (jnp.asarray(MEAN, jnp.float32),), {"rho": RHO}, key=jax.random.PRNGKey(0),  # noqa: E731
                                         init_values={"x": np.asarray(x, np.float32)}, **settings)  # fmt: skip
    near, _ = run(MEAN)
    with count_compiles() as compiled:
        far, _ = run(MEAN + 3.0 * SCALE)
    assert compiled == []
    assert np.all(np.isfinite(far["x"])) and not np.array_equal(near["x"], far["x"])
    again, _ = run(MEAN)
    np.testing.assert_array_equal(near["x"], again["x"])
