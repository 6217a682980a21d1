"""Model choices: likelihoods, priors, the Kaplan law, LOO comparison, model averaging, files."""

import json
import math
import os
import warnings

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from numpyro import handlers
from scipy import integrate, stats

import chinplan
from chinplan import BESIROGLU_2024
from chinplan.inference import compare_models
from chinplan.inference import model
from chinplan.inference.compare_models import ParetoKWarning, average_plans, compare, mix_draws
from chinplan.inference.posterior import ConvergenceWarning, Posterior

FIT = dict(num_chains=1, num_draws=300, num_warmup=300, progress=False, allow_unconverged=True)  # one chain: no R-hat


def simulate_runs(*, key, num_runs=80, noise=0.006, outliers=3, shift=0.2):
    """Chinchilla-law runs (Besiroglu 2024 constants) with Normal log-loss noise; the first
    ``outliers`` runs are pushed up by ``shift`` in log loss."""
    k1, k2, k3 = jax.random.split(key, 3)
    log_n = np.asarray(jax.random.uniform(k1, (num_runs,), minval=np.log(5e7), maxval=np.log(2e10)), np.float64)
    log_c = np.asarray(jax.random.uniform(k2, (num_runs,), minval=np.log(1e18), maxval=np.log(1e22)), np.float64)
    log_d = log_c - np.log(6.0) - log_n
    E, A, B, alpha, beta = (np.float64(x) for x in BESIROGLU_2024)
    n, d = np.exp(log_n), np.exp(log_d)
    mean = np.log(E + A * n**-alpha + B * d**-beta)
    log_loss = mean + noise * np.asarray(jax.random.normal(k3, (num_runs,)), np.float64)
    log_loss[:outliers] += shift
    return pd.DataFrame({"params": n, "tokens": d, "loss": np.exp(log_loss)}), mean


@pytest.fixture(scope="module")
def data():
    return simulate_runs(key=jax.random.PRNGKey(7))


def _fit(runs, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the model comparison needs no extrapolation component (its refits would triple the time)
        return chinplan.fit(runs, key=jax.random.PRNGKey(8), extrapolation=False, **FIT, **options)


@pytest.fixture(scope="module")
def fits(data):
    runs, _ = data
    return {
        "student_t": _fit(runs, log_likelihood=True),
        "normal": _fit(runs, likelihood="normal", log_likelihood=True),
        "kaplan": _fit(runs, law="kaplan", log_likelihood=True),
    }


# ----- the default model is untouched ------------------------------------------------------
def test_default_model_has_the_historical_sites_in_order():
    fixed = handlers.substitute(model.chinchilla_model, data={"log_A_ref": 0.0, "log_B_ref": 0.0})
    trace = handlers.trace(handlers.seed(fixed, 0)).get_trace(np.zeros(3) + 20.0, np.zeros(3) + 22.0, np.zeros(3))
    assert list(trace) == [
        "log_E", "alpha", "beta", "log_A_ref", "log_B_ref", "log_A", "log_B",
        "log_A_prior", "log_B_prior", "sigma", "nu", "runs", "log_loss",
    ]  # fmt: skip
    assert model.DEFAULT_PRIORS == model.Priors()


# ----- the Huber-like likelihood -------------------------------------------------------------
@pytest.mark.parametrize("k", [0.1, 1.0, model.HUBER_K, 3.0])
@pytest.mark.parametrize("scale", [0.01, 1.0])
def test_huber_density_integrates_to_one(k, scale):
    with jax.enable_x64(True):
        d = model.HuberLike(0.3, scale, k)
        pdf = lambda x: float(np.exp(d.log_prob(x)))  # noqa: E731
        edges = [-np.inf, 0.3 - k * scale, 0.3, 0.3 + k * scale, np.inf]
        total = sum(integrate.quad(pdf, a, b, epsabs=1e-12)[0] for a, b in zip(edges[:-1], edges[1:]))
    assert abs(total - 1.0) < 1e-7, total


def test_huber_normaliser_closed_form_and_shape():
    k = 1.345
    z = math.sqrt(2 * math.pi) * (2 * stats.norm.cdf(k) - 1) + 2 * math.exp(-k * k / 2) / k
    np.testing.assert_allclose(float(model.huber_log_normaliser(k)), math.log(z), rtol=1e-6)
    d = model.HuberLike(0.0, 1.0, k)
    # Gaussian core within k, linear (Laplace) tails beyond: log p(x) - log p(x+1) = k there.
    np.testing.assert_allclose(float(d.log_prob(0.5) - d.log_prob(0.0)), -0.125, rtol=1e-5)
    np.testing.assert_allclose(float(d.log_prob(3.0) - d.log_prob(4.0)), k, rtol=1e-5)


def test_huber_sampler_matches_its_density():
    d = model.HuberLike(0.0, 1.0, model.HUBER_K)
    x = np.asarray(d.sample(jax.random.PRNGKey(0), (40_000,)), np.float64)
    grid = np.linspace(-8, 8, 4001)
    cdf = np.cumsum(np.exp(np.asarray(d.log_prob(grid), np.float64))) * (grid[1] - grid[0])
    ks = stats.kstest(x, lambda v: np.interp(v, grid, cdf))
    assert ks.pvalue > 1e-3, ks


# ----- every option fits and records its provenance ----------------------------------------
@pytest.mark.parametrize(
    "options, law, likelihood, priors_name, sites",
    [
        (dict(likelihood="huber"), "chinchilla", "huber", "weak", {"log_E", "log_A", "alpha", "sigma"}),
        (dict(priors="informed"), "chinchilla", "student_t", "informed", {"log_E", "log_B", "beta", "nu"}),
        (dict(law="kaplan_irreducible", likelihood="normal"), "kaplan_irreducible", "normal", "weak", {"log_Nc", "log_E"}),
    ],
)
def test_options_fit_and_record_provenance(data, options, law, likelihood, priors_name, sites, tmp_path):
    runs, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = chinplan.fit(runs.iloc[:40], key=jax.random.PRNGKey(8), num_chains=1, num_draws=100, num_warmup=150, progress=False, extrapolation=False, allow_unconverged=True, **options)
    attrs = post.attrs
    assert (attrs["law"], attrs["likelihood"], attrs["priors_name"]) == (law, likelihood, priors_name)
    assert sites <= set(post.to_arviz().posterior.data_vars)
    assert ("nu" in post.to_arviz().posterior) == (likelihood == "student_t")
    if likelihood == "huber":
        assert attrs["huber_k"] == model.HUBER_K
    if priors_name == "informed":
        assert json.loads(attrs["priors"]) == model.INFORMED_PRIORS._asdict()
    table = post.summary()
    assert np.isfinite(table.loc["tokens_per_param@5.76e+23", "q50"])
    post.save(tmp_path / "p.nc")
    loaded = Posterior.load(tmp_path / "p.nc")
    assert (loaded.law, loaded.likelihood) == (law, likelihood)


def test_three_fits_record_choices_and_kaplan_params(fits):
    for name, (law, likelihood) in {"student_t": ("chinchilla", "student_t"), "normal": ("chinchilla", "normal"), "kaplan": ("kaplan", "student_t")}.items():
        post = fits[name]
        assert (post.law, post.likelihood, post.attrs["priors_name"]) == (law, likelihood, "weak")
        assert post.has_log_likelihood
        assert post.to_arviz().log_likelihood["log_loss"].shape == (1, 300, 80)
        assert list(post.to_arviz().log_likelihood.data_vars) == ["log_loss"]
    assert np.isfinite(float(az.loo(fits["kaplan"].to_arviz()).elpd_loo))  # no var_name needed
    kaplan = fits["kaplan"]
    with pytest.raises(TypeError, match="kaplan_params"):
        kaplan.params
    kp = kaplan.kaplan_params
    assert isinstance(kp, model.KaplanParams) and kp.N_c.shape == (300,) and float(np.max(kp.E)) == 0.0
    with pytest.raises(TypeError, match="params"):
        fits["student_t"].kaplan_params
    assert set(kaplan.diagnostics().index) == {"log_Nc", "log_Dc", "alpha_N", "alpha_D", "sigma", "nu"}


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(likelihood="cauchy"), "likelihood"),
        (dict(law="power"), "law"),
        (dict(law="kaplan", priors="informed"), "priors"),
        (dict(law="kaplan", priors=model.DEFAULT_PRIORS), "KaplanPriors"),
        (dict(priors="strong"), "priors"),
    ],
)
def test_bad_model_options(options, match):
    with pytest.raises(ValueError, match=match):
        chinplan.fit(chinplan.datasets.chinchilla(), key=jax.random.PRNGKey(0), **options)


# ----- the Normal likelihood is pulled by outliers ------------------------------------------
def test_normal_likelihood_is_pulled_by_outliers_more_than_student_t(data, fits):
    runs, truth = data
    log_n, log_d = np.log(runs["params"].to_numpy()), np.log(runs["tokens"].to_numpy())
    clean = slice(3, None)
    errors = {}
    for name in ("student_t", "normal"):
        draws = fits[name].params
        pred = np.asarray(jax.vmap(chinplan.log_loss, in_axes=(0, None, None))(draws, log_n, log_d), np.float64)
        errors[name] = np.sqrt(np.mean((np.median(pred, 0)[clean] - truth[clean]) ** 2))
    sigma_t, sigma_n = (np.median(fits[n].draws("sigma")) for n in ("student_t", "normal"))
    assert sigma_n > 3 * sigma_t, (sigma_n, sigma_t)  # the Normal absorbs the outliers into sigma
    assert errors["normal"] > 1.5 * errors["student_t"], errors  # and its law is dragged off the clean runs


# ----- compare ------------------------------------------------------------------------------
def test_compare_ranks_the_true_law_first_and_weights_sum_to_one(fits):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = compare({"chinchilla": fits["student_t"], "kaplan": fits["kaplan"]})
    assert table.index[0] == "chinchilla"
    assert table.loc["kaplan", "elpd_diff"] > 4 * table.loc["kaplan", "dse"]
    np.testing.assert_allclose(table["weight"].sum(), 1.0, atol=1e-6)
    for column in ("elpd_loo", "se", "dse", "p_loo", "weight", "pareto_k_max", "n_pareto_k_ok", "n_pareto_k_bad"):
        assert column in table.columns
    assert (table[["n_pareto_k_ok", "n_pareto_k_bad", "n_pareto_k_very_bad"]].sum(axis=1) == 80).all()
    if (table["n_pareto_k_bad"] + table["n_pareto_k_very_bad"]).any():
        assert any(issubclass(w.category, ParetoKWarning) for w in caught)


def test_compare_surfaces_pareto_k_for_the_normal_model(fits):
    """A Normal fit to data with 3 far outliers leans on them: their LOO terms are unreliable."""
    with pytest.warns(ParetoKWarning, match="'normal'"):
        table = compare({"student_t": fits["student_t"], "normal": fits["normal"]})
    assert table.loc["normal", "n_pareto_k_bad"] + table.loc["normal", "n_pareto_k_very_bad"] >= 1
    assert table.index[0] == "student_t"


def test_compare_rejects_bad_input(fits, data):
    with pytest.raises(ValueError, match="log_likelihood=True"):
        compare({"a": fits["student_t"], "b": chinplan.default_posterior()})
    with pytest.raises(ValueError, match="ic"):
        compare({"a": fits["student_t"], "b": fits["normal"]}, ic="aic")
    with pytest.raises(ValueError, match="at least two"):
        compare({"a": fits["student_t"]})


# ----- averaging plans ----------------------------------------------------------------------
def _plan(theta, compute):
    return chinplan.compute_optimal(theta, compute)


def test_average_plans_with_weights_one_zero_is_the_first_model(fits):
    posts = {"t": fits["student_t"], "n": fits["normal"]}
    budgets = np.array([1e21, 5.76e23])
    got = average_plans(posts, (1.0, 0.0), _plan, budgets, key=jax.random.PRNGKey(1))
    want = chinplan.bands(_plan, fits["student_t"].params, budgets)
    for a, b in zip(jax.tree_util.tree_leaves(got.values), jax.tree_util.tree_leaves(want.values)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    mixed = mix_draws(posts, {"t": 1.0}, key=jax.random.PRNGKey(1))
    for a, b in zip(mixed, fits["student_t"].params):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mix_draws_follows_the_weights(fits):
    posts = {"t": fits["student_t"], "n": fits["normal"]}
    mixed = mix_draws(posts, (0.25, 0.75), key=jax.random.PRNGKey(2), num_draws=200)
    assert mixed.E.shape == (200,)
    # a draw is identified by all five constants (one constant alone can coincide in float32)
    E_t, E_n = (set(zip(*(np.asarray(x).tolist() for x in p.params))) for p in posts.values())
    from_t = sum(draw in E_t for draw in zip(*(np.asarray(x).tolist() for x in mixed)))
    assert from_t == 50
    with pytest.raises(TypeError, match="average_plans"):
        mix_draws({"t": fits["student_t"], "k": fits["kaplan"]}, (0.5, 0.5), key=jax.random.PRNGKey(0))
    table = pd.DataFrame({"weight": [0.0, 1.0]}, index=["t", "n"])
    assert compare_models.stacking_weights(posts, table).tolist() == [0.0, 1.0]


def test_average_plans_across_laws(fits):
    import jax.numpy as jnp

    def kaplan_tpp(theta, compute):
        log_n = model.kaplan_compute_optimal_log_n(jnp.log(theta.N_c), jnp.log(theta.D_c), theta.alpha_N, theta.alpha_D, jnp.log(compute))
        return jnp.exp(jnp.log(compute / 6.0) - 2 * log_n)

    def chin_tpp(theta, compute):
        plan = chinplan.compute_optimal(theta, compute)
        return plan.d / plan.n

    posts = {"k": fits["kaplan"], "t": fits["student_t"]}
    fns = {"k": kaplan_tpp, "t": chin_tpp}
    only_k = average_plans(posts, (1.0, 0.0), fns, 5.76e23, key=jax.random.PRNGKey(3))
    want = chinplan.bands(kaplan_tpp, fits["kaplan"].kaplan_params, 5.76e23)
    np.testing.assert_allclose(np.asarray(only_k.values), np.asarray(want.values), rtol=1e-6)
    half = np.asarray(average_plans(posts, (0.5, 0.5), fns, 5.76e23, key=jax.random.PRNGKey(3), q=(0.0, 1.0)).values)
    t_range = np.asarray(chinplan.bands(chin_tpp, fits["student_t"].params, 5.76e23, q=(0.0, 1.0)).values)
    assert half[0] <= min(t_range[0], float(want.values[0])) + 1e-6 and half[1] >= t_range[0]


# ----- files --------------------------------------------------------------------------------
def test_atomic_save_leaves_no_temp_file_and_a_failed_save_keeps_the_old_file(fits, tmp_path, monkeypatch):
    path = tmp_path / "post.nc"
    fits["student_t"].save(path)
    assert sorted(os.listdir(tmp_path)) == ["post.nc"]
    before = path.read_bytes()
    other = fits["normal"]

    def broken(target, data):  # the disk fills half-way through the temporary file
        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(data[: len(data) // 2])
            raise OSError("disk full")

        chinplan._files.write_atomic(target, write)

    monkeypatch.setattr(chinplan.inference.posterior_file, "write_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    assert sorted(os.listdir(tmp_path)) == ["post.nc"]
    assert path.read_bytes() == before
    assert Posterior.load(path).likelihood == "student_t"


def test_load_of_bad_files_gives_a_value_error_naming_the_path(fits, tmp_path):
    good = tmp_path / "good.nc"
    fits["student_t"].save(good)
    raw = good.read_bytes()
    cases = {
        "missing.nc": None,
        "empty.nc": b"",
        "truncated.nc": raw[: len(raw) // 2],
        "text.nc": b"E, A, B\n1.8, 482, 2085\n" * 20,
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ValueError) as info:
            Posterior.load(path)
        assert str(path) in str(info.value), (name, str(info.value))
        assert "Traceback" not in str(info.value)
    # A NetCDF posterior that lacks one of the variables its model needs.
    idata = fits["student_t"].to_arviz().copy()
    idata.posterior = idata.posterior.drop_vars("nu")
    lacking = tmp_path / "lacking.nc"
    idata.to_netcdf(str(lacking), engine="h5netcdf")
    with pytest.raises(ValueError, match=r"lacking\.nc.*nu"):
        Posterior.load(lacking)
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(ValueError, match=r"other\.nc"):
        Posterior.load(other)


def test_nu_floor_shifts_the_gamma_prior_and_leaves_the_default_unchanged():
    """``Priors(nu_min=m)``: nu = m + Gamma(2, 0.1) (density and draws); m = 0 is the default model."""
    from chinplan.inference.model import Priors, _noise

    def nu_site(priors):
        return handlers.trace(handlers.seed(_noise, 0)).get_trace("student_t", priors)["nu"]["fn"]

    floored = nu_site(Priors(nu_min=3.0))
    nu = np.asarray(floored.sample(jax.random.key(1), (4000,)), np.float64)
    assert nu.min() > 3.0
    # Gamma(2, rate 0.1): mean 20, sd 14.1; 4000 draws give a standard error of 0.22
    assert abs(nu.mean() - 23.0) < 5 * 14.1 / np.sqrt(4000)
    for value in (3.5, 10.0, 60.0):
        assert float(floored.log_prob(value)) == pytest.approx(stats.gamma.logpdf(value - 3.0, 2.0, scale=10.0), rel=1e-5)
    default = nu_site(Priors())
    assert type(default).__name__ == "Gamma"  # the default model is untouched
    assert float(default.log_prob(5.0)) == pytest.approx(stats.gamma.logpdf(5.0, 2.0, scale=10.0), rel=1e-5)
