"""The Bayesian fit: recovery, agreement with the published replication, files, diagnostics."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import chinplan
from chinplan import BESIROGLU_2024, datasets
from chinplan.inference.posterior import ConvergenceWarning, Posterior


def simulate_runs(truth, *, key, num_runs=120, noise=0.006, outliers=3):
    """Runs over Chinchilla's ranges with Student-t-free Gaussian log-loss noise plus outliers."""
    k1, k2, k3 = jax.random.split(key, 3)
    log_n = np.asarray(jax.random.uniform(k1, (num_runs,), minval=np.log(5e7), maxval=np.log(2e10)), np.float64)
    log_c = np.asarray(jax.random.uniform(k2, (num_runs,), minval=np.log(1e18), maxval=np.log(1e22)), np.float64)
    log_d = log_c - np.log(6.0) - log_n
    n, d = np.exp(log_n), np.exp(log_d)
    E, A, B, alpha, beta = (np.float64(x) for x in truth)
    mean = np.log(E + A * n**-alpha + B * d**-beta)
    log_loss = mean + noise * np.asarray(jax.random.normal(k3, (num_runs,)), np.float64)
    log_loss[:outliers] += 0.2  # a few badly-off runs, like the 5 digitised outliers
    return pd.DataFrame({"params": n, "tokens": d, "loss": np.exp(log_loss)})


@pytest.fixture(scope="module")
def small_fit():
    runs = simulate_runs(BESIROGLU_2024, key=jax.random.PRNGKey(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return chinplan.fit(runs, key=jax.random.PRNGKey(4), num_draws=300, num_warmup=300, num_chains=2, allow_unconverged=True)


def test_parameter_recovery_90_percent_intervals_contain_truth():
    truth = BESIROGLU_2024
    runs = simulate_runs(truth, key=jax.random.PRNGKey(11), num_runs=150)
    posterior = chinplan.fit(runs, key=jax.random.PRNGKey(12), num_draws=500, num_warmup=400, num_chains=2)
    assert posterior.num_divergences == 0
    for name, value in zip(["E", "A", "B", "alpha", "beta"], truth):
        draws = posterior.derived()[name]
        lo, hi = np.quantile(draws, [0.05, 0.95])
        assert lo < value < hi, (name, lo, value, hi)
    # And the intervals are informative, not the prior: alpha and beta to within +-0.05.
    for name in ("alpha", "beta"):
        lo, hi = np.quantile(posterior.derived()[name], [0.05, 0.95])
        assert hi - lo < 0.1


def test_embedded_fit_agrees_with_besiroglu_replication():
    """The published point estimates lie inside the central 95% intervals of the posterior."""
    posterior = chinplan.default_posterior()
    derived = posterior.derived()
    published = dict(zip(["E", "A", "B", "alpha", "beta"], BESIROGLU_2024))
    for name, value in published.items():
        lo, hi = np.quantile(derived[name], [0.025, 0.975])
        assert lo < value < hi, (name, lo, value, hi)
    tpp = derived["tokens_per_param@5.76e+23"]
    assert 10 < np.median(tpp) < 30
    assert posterior.num_divergences == 0
    diag = posterior.diagnostics()
    assert (diag.r_hat < 1.01).all() and (diag.ess_bulk > 400).all()


def test_posterior_params_have_leading_draw_axis(small_fit):
    params = small_fit.params
    assert isinstance(params, chinplan.LawParams)
    draws = small_fit.num_draws  # 2 chains x 300, or a multiple when a low ESS asked for more chains
    assert draws % 600 == 0 and draws == small_fit.to_arviz().posterior.sizes["chain"] * 300
    assert all(leaf.shape == (draws,) for leaf in params)
    np.testing.assert_allclose(np.asarray(params.E), np.exp(small_fit.draws("log_E")), rtol=1e-6)
    plan = jax.vmap(chinplan.compute_optimal, in_axes=(0, None))(params, 1e22)
    assert plan.n.shape == (draws,) and np.all(np.isfinite(np.asarray(plan.n)))


def test_save_load_round_trip_is_lossless(small_fit, tmp_path):
    path = tmp_path / "post.nc"
    small_fit.save(path)
    loaded = Posterior.load(path)
    a, b = small_fit.to_arviz(), loaded.to_arviz()
    for group in ("posterior", "sample_stats", "observed_data", "constant_data"):
        xr.testing.assert_identical(a[group], b[group])
    attrs = loaded.attrs
    assert attrs["chinplan_version"] == chinplan.__version__
    assert attrs["num_runs"] == 120
    assert json.loads(attrs["priors"]) == chinplan.inference.model.DEFAULT_PRIORS._asdict()
    assert json.loads(attrs["seed"]) == np.asarray(jax.random.key_data(jax.random.PRNGKey(4))).tolist()
    assert len(attrs["data_sha256"]) == 64
    for x, y in zip(small_fit.params, loaded.params):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_unreadable_posterior_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Posterior.load(tmp_path / "missing.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"this is not netcdf" * 10)
    with pytest.raises(ValueError, match="not a readable chinplan posterior"):
        Posterior.load(garbage)
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(ValueError, match="posterior"):
        Posterior.load(other)


def test_a_starved_fit_raises_by_default_and_warns_when_allowed():
    """30 draws cannot pass the gate: by default no band of it is handed back (ConvergenceError
    with the draws on .posterior); allow_unconverged=True returns them with a warning."""
    runs = datasets.chinchilla()
    settings = dict(key=jax.random.PRNGKey(0), num_draws=30, num_warmup=20, num_chains=2, extrapolation=False, max_retries=0)
    with pytest.raises(chinplan.ConvergenceError, match="bulk ESS") as info:
        chinplan.fit(runs, **settings)
    assert info.value.posterior.num_draws == 60 and any("bulk ESS" in p for p in info.value.problems)
    assert "allow_unconverged=True" in str(info.value)
    with pytest.warns(ConvergenceWarning, match="bulk ESS"):
        post = chinplan.fit(runs, allow_unconverged=True, **settings)
    assert not post.converged


def test_summary_and_diagnostics_tables(small_fit):
    table = small_fit.summary()
    for row in ["E", "A", "B", "alpha", "beta", "a", "tokens_per_param@5.76e+23", "sigma", "nu"]:
        assert row in table.index
    for col in ["mean", "sd", "q5", "q50", "q95", "r_hat", "ess_bulk", "ess_tail"]:
        assert col in table.columns
    derived = small_fit.derived()
    np.testing.assert_allclose(table.loc["a", "q50"], np.median(derived["beta"] / (derived["alpha"] + derived["beta"])))
    assert list(small_fit.diagnostics().index) == list(chinplan.inference.model.PARAM_NAMES)


@pytest.mark.parametrize("arg, value", [("num_draws", 0), ("num_chains", 0), ("num_warmup", -1), ("num_draws", 1.5)])
def test_bad_fit_arguments(arg, value):
    with pytest.raises(ValueError, match=arg):
        chinplan.fit(datasets.chinchilla(), key=jax.random.PRNGKey(0), **{arg: value})


def test_second_fit_on_new_runs_of_the_same_shape_does_not_recompile(count_compiles):
    """The NUTS chains are one jitted function: a second fit (with its leave-out refits, which
    share the compiled sampler through the run weights) reuses it (no XLA compilation); on
    another number of runs padded to the same size (40 and 50 runs: 64) the NUTS chain is
    not compiled again (only small eager steps of the other shape are)."""
    # no retries: the gate's refits (other warm-up and draw counts) are not what is tested here
    settings = dict(num_draws=40, num_warmup=40, num_chains=2, progress=False, allow_unconverged=True, max_retries=0)
    first = simulate_runs(BESIROGLU_2024, key=jax.random.PRNGKey(11), num_runs=40)
    second = simulate_runs(chinplan.HOFFMANN_2022, key=jax.random.PRNGKey(12), num_runs=40)
    third = simulate_runs(chinplan.HOFFMANN_2022, key=jax.random.PRNGKey(13), num_runs=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        chinplan.fit(first, key=jax.random.PRNGKey(0), **settings)
        with count_compiles() as seen:
            post = chinplan.fit(second, key=jax.random.PRNGKey(1), **settings)
        with count_compiles() as other_size:
            chinplan.fit(third, key=jax.random.PRNGKey(2), **settings)
    assert seen == []
    assert post.has_extrapolation
    assert post.num_draws == 80
    assert "jit(chain)" not in other_size.names and None not in other_size.names


def test_one_chain_is_reported_once_and_not_retried():
    """One chain has no R-hat: the gate says so once (not an R-hat of nan per site), and the
    retries, which cannot mend it, are not run (one attempt); stuck chains are still retried."""
    from chinplan.inference import convergence

    rng = np.random.default_rng(0)
    one = {"a": rng.normal(size=(1, 500)), "b": rng.normal(size=(1, 500))}
    problems = convergence.gate_problems(one, np.zeros((1, 500), bool), ["a", "b"])
    assert problems == [convergence.ONE_CHAIN]
    assert not convergence.retry_may_help(problems)
    stuck = {"a": np.stack([rng.normal(size=500), 5 + rng.normal(size=500)])}
    problems = convergence.gate_problems(stuck, np.zeros((2, 500), bool), ["a"])
    assert any("R-hat" in p for p in problems) and convergence.retry_may_help(problems)
    assert convergence.retry_may_help(["3 divergent transitions"]) and not convergence.retry_may_help(["a: bulk ESS 300 < 400"])
    runs = simulate_runs(BESIROGLU_2024, key=jax.random.PRNGKey(3), num_runs=40)
    with pytest.warns(ConvergenceWarning, match="1 chain"):
        post = chinplan.fit(runs, key=jax.random.PRNGKey(4), num_draws=50, num_warmup=50, num_chains=1, extrapolation=False,
                            progress=False, allow_unconverged=True)  # fmt: skip
    assert len(json.loads(post.attrs["fit_attempts"])) == 1


def test_a_low_ess_alone_is_answered_with_more_chains(monkeypatch):
    """A gate that finds only a low bulk ESS gets as many chains again (new keys, the same
    compiled chain), while retries are left; the attempts record it and every group of the
    posterior (extrapolation draws too) has the chains' count."""
    from chinplan.inference import fit as fit_module

    verdicts = iter([["log_E: bulk ESS 120 < 400"], ["log_E: bulk ESS 250 < 400"], []])
    monkeypatch.setattr(fit_module, "gate_problems", lambda samples, diverging, sites: next(verdicts))
    runs = simulate_runs(BESIROGLU_2024, key=jax.random.PRNGKey(3), num_runs=40)
    settings = dict(num_draws=20, num_warmup=20, num_chains=2, progress=False, allow_unconverged=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 draws: the posterior's own check fails
        post = chinplan.fit(runs, key=jax.random.PRNGKey(5), **settings)
    attempts = json.loads(post.attrs["fit_attempts"])
    assert [a.get("num_chains") for a in attempts] == [None, 4, 6] and attempts[-1]["problems"] == []
    assert post.num_draws == 6 * 20 and post.attrs["num_chains"] == 6
    assert post.to_arviz().posterior.sizes["chain"] == 6 and post.to_arviz().extrapolation.sizes["chain"] == 6
    first = np.asarray(post.to_arviz().posterior["log_E"])
    assert not np.array_equal(first[0], first[2]) and not np.array_equal(first[2], first[4])  # new keys
    # no retries left: the low ESS is reported, not mended
    monkeypatch.setattr(fit_module, "gate_problems", lambda samples, diverging, sites: ["log_E: bulk ESS 120 < 400"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = chinplan.fit(runs, key=jax.random.PRNGKey(5), max_retries=0, **settings)
    assert len(json.loads(post.attrs["fit_attempts"])) == 1 and post.num_draws == 2 * 20


def test_an_r_hat_that_more_chains_reveal_gets_the_next_refit(monkeypatch):
    """The gate's checks in any order: a low ESS gets more chains; if the added chains then
    show R-hat > 1.01 (a stuck chain), that gets the escalation's next refit (longer warm-up)
    while retries are left, not the end of the fit. Before, the fit stopped there unconverged
    (the sequential fit of OWT2/tuned+const-lr, tests/test_ladder_fit.py)."""
    from chinplan.inference import fit as fit_module

    verdicts = iter([["log_E: bulk ESS 385 < 400"], ["sigma: R-hat 1.010 > 1.01"], []])
    monkeypatch.setattr(fit_module, "gate_problems", lambda samples, diverging, sites: next(verdicts))
    runs = simulate_runs(BESIROGLU_2024, key=jax.random.PRNGKey(3), num_runs=40)
    settings = dict(num_draws=20, num_warmup=20, num_chains=2, progress=False, extrapolation=False, allow_unconverged=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 draws: the posterior's own check fails
        post = chinplan.fit(runs, key=jax.random.PRNGKey(5), **settings)
    attempts = json.loads(post.attrs["fit_attempts"])
    assert [(a["num_warmup"], a.get("num_chains")) for a in attempts] == [(20, None), (20, 4), (40, None)]
    assert attempts[-1]["problems"] == [] and post.num_draws == 2 * 20  # the refit's chains, not the extended ones
    # the last refit allowed is a fresh start with chains twice as long (slow mixing), even
    # where the more chains took an earlier retry
    verdicts = iter([["log_E: bulk ESS 385 < 400"], ["sigma: R-hat 1.010 > 1.01"], []])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = chinplan.fit(runs, key=jax.random.PRNGKey(5), max_retries=2, **settings)
    attempts = json.loads(post.attrs["fit_attempts"])
    assert [(a["num_warmup"], a.get("num_chains"), a.get("num_draws")) for a in attempts] == [(20, None, None), (20, 4, None), (40, None, 40)]
    assert post.num_draws == 2 * 40 and post.to_arviz().posterior.sizes["draw"] == 40


def test_padded_runs_leave_the_log_density_unchanged(precision):
    """The sampler sees the runs padded with weight 0 to a power of two (at least 16): the
    models' log density of the padded data equals that of the runs alone, for the full fit and
    a leave-out fold (Chinchilla law), and with seed repeats (data-constrained law)."""
    from numpyro.infer.util import log_density

    from chinplan.inference import model as m

    assert [m.padded_runs(n) for n in (1, 16, 17, 40, 50, 64, 65, 245)] == [16, 16, 32, 64, 64, 64, 128, 256]
    rng = np.random.default_rng(0)
    n = 37
    dtype = jnp.result_type(float)
    log_n = jnp.asarray(rng.uniform(17, 23, n), dtype)
    log_d = jnp.asarray(rng.uniform(20, 26, n), dtype)
    y = jnp.asarray(rng.normal(0.8, 0.1, n), dtype)
    fold = jnp.asarray(rng.uniform(size=n) < 0.7, dtype)
    params = {"log_E": 0.5, "alpha": 0.3, "beta": 0.35, "log_A_ref": 1.0, "log_B_ref": 0.5, "sigma": 0.03, "nu": 4.0}
    params = {k: jnp.asarray(v, dtype) for k, v in params.items()}
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    for weight in (jnp.ones(n, dtype), fold):
        plain, _ = log_density(m.chinchilla_model, (log_n, log_d, y, weight), {}, params)
        padded_data = m.pad_runs(log_n, log_d, y, weight)
        assert padded_data[0].shape == (64,) and float(padded_data[3][n:].sum()) == 0.0
        padded, _ = log_density(m.chinchilla_model, padded_data, {}, params)
        np.testing.assert_allclose(float(padded), float(plain), rtol=rtol)
    log_u = log_d - jnp.asarray(rng.uniform(0, 2, n), dtype)
    repeats = jnp.asarray(rng.integers(1, 4, n), dtype)
    within = jnp.asarray(rng.uniform(0, 1e-3, n), dtype) * (repeats > 1)
    dc = dict(params, log_R_D=jnp.asarray(2.0, dtype), log_R_N=jnp.asarray(1.5, dtype), sigma_seed=jnp.asarray(0.01, dtype))
    plain, _ = log_density(m.data_constrained_model, (log_n, log_d, y, jnp.ones(n, dtype), log_u, repeats, within), {}, dc)
    padded_data = m.pad_runs(log_n, log_d, y, None, (log_u, repeats, within), (None, 1.0, 0.0))
    padded, _ = log_density(m.data_constrained_model, padded_data, {}, dc)
    np.testing.assert_allclose(float(padded), float(plain), rtol=rtol)


def test_chains_start_near_a_huber_point_fit_in_the_samplers_coordinates():
    """``_point_start``: the law sites at a Huber fit of the runs with weight > 0, in the
    model's reference coordinates (log A_ref = log A - alpha mean(log N) over those runs):
    mapped back in float64 here, the start's law reproduces noise-free runs; the weight-0
    runs (a fold, the padding) are neither fitted nor in the references; sigma starts at the
    residuals' robust scale (1.4826 MAD: within 4 of its SEs, 1 / sqrt(0.74 n) relative) and
    nu at 10; no start (None) where the point fit cannot run."""
    from chinplan.inference.fit import _point_start
    from chinplan.inference.model import DEFAULT_PRIORS

    def law(values, log_n, log_d, kept):
        alpha, beta = values["alpha"], values["beta"]
        log_a = values["log_A_ref"] + alpha * log_n[kept].mean()
        log_b = values["log_B_ref"] + beta * log_d[kept].mean()
        return np.logaddexp(np.logaddexp(values["log_E"], log_a - alpha * log_n), log_b - beta * log_d)

    for noise, num_runs in ((0.0, 120), (0.01, 400)):
        runs = simulate_runs(BESIROGLU_2024, key=jax.random.PRNGKey(8), num_runs=num_runs, noise=noise, outliers=0)
        log_n, log_d, log_l = (np.log(runs[c].to_numpy(np.float64)) for c in ("params", "tokens", "loss"))
        weight = np.ones(num_runs)
        weight[::3] = 0.0  # a leave-out fold
        log_l_fold = log_l.copy()
        log_l_fold[::3] += 0.5  # left-out runs far off the law: a start that fitted them would miss
        values = _point_start(log_n, log_d, log_l_fold, weight, DEFAULT_PRIORS, "student_t")
        assert set(values) == {"log_E", "alpha", "beta", "log_A_ref", "log_B_ref", "sigma", "nu"} and values["nu"] == 10.0
        kept = weight > 0
        residual = log_l[kept] - law(values, log_n, log_d, kept)[kept]
        if noise == 0.0:
            assert np.max(np.abs(residual)) < 2e-3, np.max(np.abs(residual))
            assert values["sigma"] == 1e-3  # the floor
        else:
            assert np.sqrt(np.mean(residual**2)) < 1.1 * noise
            assert abs(values["sigma"] / noise - 1) < 4 / np.sqrt(0.74 * kept.sum()), values["sigma"]
    assert "nu" not in _point_start(log_n, log_d, log_l, np.ones(num_runs), DEFAULT_PRIORS, "normal")
    assert _point_start(log_n, log_d, log_l, np.zeros(num_runs), DEFAULT_PRIORS, "student_t") is None  # no run to fit
