"""Calibration tools: backtest coverage, simulation-based calibration, predictive checks."""

import math
import warnings

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest

import chinplan
from chinplan import BESIROGLU_2024
from chinplan.inference import sampler as _sampler
from chinplan.inference import calibration as validate
from chinplan.inference import sbc as sbc_mod
from chinplan.inference.posterior import ConvergenceWarning

NOISE = 0.01  # log-loss noise of the synthetic runs: digitising alone adds ~0.005
TINY_FIT = dict(num_chains=1, num_warmup=100, num_draws=150, progress=False)
SBC_TINY = dict(num_runs=30, num_warmup=50, num_draws=50, num_ranks=9, num_chains=1)


def simulate(truth, *, key, num_runs=60, noise=NOISE):
    """Runs on the realistic Chinchilla design with Gaussian log-loss noise."""
    design = sbc_mod.sbc_design(num_runs)
    n, d = design["params"].to_numpy(copy=True), design["tokens"].to_numpy(copy=True)
    # The two largest-compute runs become over-sized (0.3 tokens per parameter, same FLOPs),
    # like the digitised Chinchilla outliers: flagged by backtest, still on the law here.
    c = 6.0 * n[-2:] * d[-2:]
    n[-2:] = np.sqrt(c / 1.8)
    d[-2:] = 0.3 * n[-2:]
    E, A, B, alpha, beta = (np.float64(x) for x in truth)
    mean = np.log(E + A * n**-alpha + B * d**-beta)
    log_loss = mean + noise * np.asarray(jax.random.normal(key, (num_runs,)), np.float64)
    return pd.DataFrame({"params": n, "tokens": d, "loss": np.exp(log_loss)})


@pytest.fixture(scope="module")
def synthetic_runs():
    return simulate(BESIROGLU_2024, key=jax.random.PRNGKey(5))


@pytest.fixture(scope="module")
def synthetic_backtest(synthetic_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 150 draws: ESS < 400 by design
        return validate.backtest(synthetic_runs, key=jax.random.PRNGKey(6), **TINY_FIT)


@pytest.fixture(scope="module")
def small_sbc():
    return sbc_mod.sbc(key=jax.random.PRNGKey(7), num_repeats=4, **SBC_TINY)


# ----- backtest --------------------------------------------------------------------------
def test_backtest_splits_at_the_documented_quantile(synthetic_runs, synthetic_backtest):
    bt = synthetic_backtest
    flops = 6.0 * synthetic_runs["params"] * synthetic_runs["tokens"]
    assert bt.threshold == pytest.approx(np.quantile(flops, validate.DEFAULT_TRAIN_FRACTION))
    assert bt.num_fit == int((flops < bt.threshold).sum()) and bt.num_fit + bt.num_heldout == len(synthetic_runs)
    table = bt.table
    assert table.loc[~table.heldout, "flops"].max() < bt.threshold <= table.loc[table.heldout, "flops"].min()
    assert bt.posterior.attrs["num_runs"] == bt.num_fit
    for q in (50, 80, 90):
        for col in (f"lower_{q}", f"upper_{q}", f"inside_{q}"):
            assert col in table
        assert (table[f"lower_{q}"] <= table["pred_median"]).all() and (table["pred_median"] <= table[f"upper_{q}"]).all()
    # nested intervals
    assert (table["lower_90"] <= table["lower_50"]).all() and (table["upper_50"] <= table["upper_90"]).all()


def test_backtest_coverage_on_synthetic_runs_is_nominal(synthetic_backtest):
    """Held-out coverage of each central interval is within 3 binomial SEs of its level."""
    bt = synthetic_backtest
    n = bt.num_heldout
    for q in bt.levels:
        tolerance = 3.0 * math.sqrt(q * (1 - q) / n) + 1.0 / n
        assert abs(bt.coverage[q] - q) <= tolerance, (q, bt.coverage[q], n)
        assert bt.coverage_se[q] == pytest.approx(math.sqrt(bt.coverage[q] * (1 - bt.coverage[q]) / n))
    # Noise of 1% in loss: the median relative error of the extrapolation is of that order.
    assert bt.median_rel_error < 0.02
    assert list(bt.summary().index) == [0.5, 0.8, 0.9]


def test_backtest_reports_outliers_apart(synthetic_backtest):
    """Held-out runs under 0.41 tokens per parameter are flagged and left out of the clean figure."""
    table = synthetic_backtest.table
    clean = table[table.heldout & ~table.outlier]
    assert synthetic_backtest.num_outliers_heldout == 2 and synthetic_backtest.num_outliers_fit == 0
    for q in synthetic_backtest.levels:
        assert synthetic_backtest.coverage_without_outliers[q] == pytest.approx(clean[f"inside_{q * 100:g}"].mean())


def test_backtest_threshold_too_low_or_too_high(synthetic_runs):
    key = jax.random.PRNGKey(0)
    flops = np.sort(6.0 * synthetic_runs["params"] * synthetic_runs["tokens"])
    with pytest.raises(ValueError, match="compute_threshold.*to fit"):
        validate.backtest(synthetic_runs, key=key, compute_threshold=flops[3])
    with pytest.raises(ValueError, match="compute_threshold.*to hold out"):
        validate.backtest(synthetic_runs, key=key, compute_threshold=flops[-3])
    with pytest.raises(ValueError, match="compute_threshold"):
        validate.backtest(synthetic_runs, key=key, compute_threshold=-1.0)
    with pytest.raises(ValueError, match="train_fraction.*to fit"):
        validate.backtest(synthetic_runs, key=key, train_fraction=0.05)
    with pytest.raises(ValueError, match="train_fraction"):
        validate.backtest(synthetic_runs, key=key, train_fraction=1.5)
    with pytest.raises(ValueError, match="not both"):
        validate.backtest(synthetic_runs, key=key, compute_threshold=flops[30], train_fraction=0.5)


@pytest.mark.parametrize("levels", [(0.5, 1.0), (0.0,), (-0.1, 0.9), (), ("a",)])
def test_bad_levels(synthetic_runs, levels):
    with pytest.raises(ValueError, match="levels"):
        validate.backtest(synthetic_runs, key=jax.random.PRNGKey(0), levels=levels)


# ----- SBC -------------------------------------------------------------------------------
def test_sbc_ranks_in_range_and_finite_coverage(small_sbc):
    res = small_sbc
    assert res.num_repeats == 4 and list(res.ranks.columns) == list(sbc_mod.SBC_PARAMS)
    assert res.ranks.dtypes.map(lambda t: np.issubdtype(t, np.integer)).all()
    assert ((res.ranks >= 0) & (res.ranks <= res.num_ranks)).all().all()
    assert np.isfinite(res.coverage).all() and ((res.coverage >= 0) & (res.coverage <= 1)).all()
    np.testing.assert_allclose(res.coverage_se, np.sqrt(res.coverage * (1 - res.coverage) / res.num_repeats))
    assert ((res.chi2_pvalue >= 0) & (res.chi2_pvalue <= 1)).all()
    assert ((res.ks_pvalue >= 0) & (res.ks_pvalue <= 1)).all()
    # Truths come from the realistic prior box.
    p = sbc_mod.SBC_PRIORS
    assert res.truths["alpha"].between(p.exponent_low, p.exponent_high).all()
    assert (res.truths["sigma"] > 0).all() and (res.truths["E"] > 0).all()
    assert set(res.summary().columns) == {"coverage", "se", "chi2_p", "ks_p", "mean_rank"}
    # Even this tiny run is informative: the law exponents rarely miss their 90% interval.
    assert res.coverage[["alpha", "beta"]].min() >= 0.5


def test_sbc_is_reproducible_and_extends_with_first_repeat(small_sbc):
    """Repeat i depends only on (key, i): a later call with first_repeat=1 repeats row 1."""
    again = sbc_mod.sbc(key=jax.random.PRNGKey(7), num_repeats=1, first_repeat=1, **SBC_TINY)
    pd.testing.assert_frame_equal(again.ranks, small_sbc.ranks.iloc[1:2])
    pd.testing.assert_frame_equal(again.truths, small_sbc.truths.iloc[1:2])
    assert _sampler._runner.cache_info().hits >= 1  # the NUTS function is compiled once per setting


def test_sbc_compiles_only_its_first_repeat(count_compiles):
    """Every repeat after the first reuses the compiled NUTS function: no XLA compilation."""
    settings = dict(SBC_TINY, num_warmup=20, num_draws=20, num_ranks=4)
    sbc_mod.sbc(key=jax.random.PRNGKey(3), num_repeats=1, **settings)  # compile (or reuse)
    with count_compiles() as compiled:
        res = sbc_mod.sbc(key=jax.random.PRNGKey(3), num_repeats=3, first_repeat=1, **settings)
    assert res.num_repeats == 3
    assert compiled == []


def test_rank_uniformity_p_values():
    key = jax.random.PRNGKey(0)
    uniform = np.tile(np.arange(20), 5)  # 100 ranks, exactly uniform on 0..19
    chi2, ks = sbc_mod.rank_uniformity(uniform, 19, key=key)
    assert chi2 > 0.99 and ks > 0.5
    skewed = np.zeros(100, dtype=int)
    chi2, ks = sbc_mod.rank_uniformity(skewed, 19, key=key)
    assert chi2 < 1e-6 and ks < 1e-6


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(level=1.5), "level"), (dict(num_ranks=1000), "num_ranks"), (dict(num_repeats=0), "num_repeats"),
     (dict(noise=-0.1), "noise"), (dict(num_runs=3), "num_runs"), (dict(chain_method="threads"), "chain_method")],
)
def test_sbc_bad_arguments(kwargs, name):
    args = dict(SBC_TINY, **kwargs)
    with pytest.raises(ValueError, match=name):
        sbc_mod.sbc(key=jax.random.PRNGKey(0), **args)


def test_sample_prior_matches_the_model_prior():
    """Moments of sample_prior against the Priors table (Monte Carlo tolerance: 5 SE)."""
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    draws = jax.vmap(lambda k: sbc_mod.sample_prior(chinplan.inference.model.DEFAULT_PRIORS, key=k))(keys)
    p = chinplan.inference.model.DEFAULT_PRIORS
    for site, mean, sd in [
        ("log_E", p.log_E_loc, p.log_E_scale),
        ("log_A", p.log_A_loc, p.log_A_scale),
        ("alpha", (p.exponent_low + p.exponent_high) / 2, (p.exponent_high - p.exponent_low) / math.sqrt(12)),
        ("sigma", p.sigma_scale * math.sqrt(2 / math.pi), p.sigma_scale * math.sqrt(1 - 2 / math.pi)),
        ("nu", p.nu_concentration / p.nu_rate, math.sqrt(p.nu_concentration) / p.nu_rate),
    ]:
        x = np.asarray(draws[site], np.float64)
        assert abs(x.mean() - mean) < 5 * sd / math.sqrt(x.size), site


# ----- posterior predictive checks ------------------------------------------------------
def test_ppc_groups_and_shapes(synthetic_backtest, synthetic_runs):
    posterior = synthetic_backtest.posterior
    fitted = synthetic_runs[synthetic_backtest.table["heldout"].to_numpy() == False]  # noqa: E712
    check = validate.ppc(posterior, fitted, key=jax.random.PRNGKey(8))
    idata = check.idata
    for group in ("posterior", "posterior_predictive", "observed_data", "constant_data"):
        assert group in idata.groups()
    assert idata.posterior_predictive["log_loss"].shape == (1, 150, len(fitted))
    np.testing.assert_allclose(idata.observed_data["log_loss"].values, np.log(fitted["loss"].to_numpy()))
    assert list(check.summary.index) == ["mean", "sd", "min", "max", "max_abs"]
    assert check.summary["p_value"].between(0, 1).all()
    # The model generated these data (up to Gaussian vs Student-t noise): no extreme p-value.
    assert check.summary.loc[["mean", "sd"], "p_value"].between(0.005, 0.995).all()
    assert 0.7 <= check.coverage[0.9] <= 1.0
    # Same key, same replicates; az.plot_ppc accepts the object.
    again = validate.ppc(posterior, fitted, key=jax.random.PRNGKey(8))
    np.testing.assert_array_equal(idata.posterior_predictive["log_loss"].values, again.idata.posterior_predictive["log_loss"].values)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = az.plot_ppc(idata, num_pp_samples=20, random_seed=0)
    plt.close("all")
    assert ax is not None


def test_predictive_log_loss_matches_the_law_in_the_median():
    posterior = chinplan.default_posterior()
    runs = chinplan.datasets.chinchilla().iloc[:20]
    draws = validate.predictive_log_loss(posterior, runs, key=jax.random.PRNGKey(9))
    assert draws.shape == (posterior.num_draws, 20)
    law = np.asarray(jax.vmap(lambda p: chinplan.log_loss(p, np.log(runs["params"].to_numpy()), np.log(runs["tokens"].to_numpy())))(posterior.params))
    # Symmetric noise: the predictive median tracks the law's median to Monte Carlo error.
    np.testing.assert_allclose(np.median(draws, 0), np.median(law, 0), atol=2e-3)


def _posterior_from_draws(law: str, likelihood: str, runs, seed: int = 0):
    """A Posterior built from fixed draws (no NUTS) for any law and likelihood the fit offers."""
    import arviz as az
    import xarray as xr

    from chinplan.inference.posterior import Posterior

    rng = np.random.default_rng(seed)
    shape = (2, 50)
    if law == "chinchilla":
        sites = {"log_E": np.log(1.82), "log_A": np.log(482.0), "log_B": np.log(2085.0), "alpha": 0.348, "beta": 0.366}
    else:
        sites = {"log_Nc": np.log(8.8e13), "log_Dc": np.log(5.4e13), "alpha_N": 0.076, "alpha_D": 0.095}
        if law == "kaplan_irreducible":
            sites["log_E"] = np.log(1.5)
    sites = {k: v + 0.01 * abs(v) * rng.standard_normal(shape) for k, v in sites.items()}
    sites["sigma"] = np.full(shape, 0.01)
    if likelihood == "student_t":
        sites["nu"] = np.full(shape, 5.0)
    idata = az.from_dict(posterior=sites, sample_stats={"diverging": np.zeros(shape, bool)})
    arrays = chinplan.inference.runs.runs_arrays(chinplan.load_runs(runs))
    idata.add_groups(constant_data=xr.Dataset({"log_n": ("run", arrays.log_n), "log_d": ("run", arrays.log_d)}))
    idata.posterior.attrs.update(law=law, likelihood=likelihood)
    return Posterior(idata)


@pytest.mark.parametrize("law", ["chinchilla", "kaplan", "kaplan_irreducible"])
@pytest.mark.parametrize("likelihood", ["student_t", "normal", "huber"])
def test_ppc_and_predictive_work_for_every_likelihood_and_law(law, likelihood, synthetic_runs):
    """The predictive is the model's own (noise_distribution), so no site is assumed: a
    Normal or Huber-like posterior has no nu (the old hand-typed copy raised KeyError 'nu')."""
    post = _posterior_from_draws(law, likelihood, synthetic_runs)
    result = validate.ppc(post, synthetic_runs, key=jax.random.PRNGKey(0))
    assert result.idata.posterior_predictive["log_loss"].shape == (2, 50, len(synthetic_runs))
    assert set(result.coverage) == {0.5, 0.8, 0.9}
    rep = validate.predictive_log_loss(post, synthetic_runs, key=jax.random.PRNGKey(1))
    mean, _ = post.sample_log_loss(np.log(synthetic_runs["params"].to_numpy()), np.log(synthetic_runs["tokens"].to_numpy()), key=jax.random.PRNGKey(1), uncertainty="law")
    # the replicates scatter around the law with the likelihood's scale (sigma = 0.01)
    resid = rep - mean
    assert np.all(np.isfinite(resid)) and 0.005 < np.median(np.abs(resid)) < 0.02


def test_backtest_with_a_normal_likelihood_kaplan_fit_and_the_size_split(synthetic_runs):
    """backtest runs every model the fit offers (here Kaplan's law with a Normal likelihood,
    scored with the law's intervals: the extrapolation component is the Chinchilla law's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bt = validate.backtest(synthetic_runs, key=jax.random.PRNGKey(8), split="size", uncertainty="law", law="kaplan", likelihood="normal", **TINY_FIT)
    assert bt.split == "size" and bt.posterior.law == "kaplan" and bt.posterior.likelihood == "normal"
    sizes = synthetic_runs["params"].to_numpy()
    assert bt.num_heldout == int((sizes >= np.quantile(sizes, 0.9)).sum())
    assert all(0.0 <= bt.coverage[q] <= 1.0 for q in bt.levels) and np.isfinite(bt.interval_score90)
    with pytest.raises(ValueError, match="extrapolation=True needs law='chinchilla'"):
        validate.backtest(synthetic_runs, key=jax.random.PRNGKey(8), law="kaplan", **TINY_FIT)
    with pytest.raises(ValueError, match="split must be one of"):
        validate.backtest(synthetic_runs, key=jax.random.PRNGKey(8), split="tokens", **TINY_FIT)
