"""The shipped posterior is what scripts/build_default_posterior.py makes from the embedded data."""

import importlib
import importlib.util
import json
import pathlib

import arviz as az
import numpy as np
import pytest

import chinplan
from chinplan import datasets
from chinplan.inference.runs import runs_arrays
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS, _data_hash

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "build_default_posterior.py"


def test_shipped_posterior_provenance():
    post = chinplan.default_posterior()
    attrs = post.attrs
    assert attrs["data_sha256"] == _data_hash(*runs_arrays(datasets.chinchilla()))
    assert attrs["num_runs"] == 245
    assert post.num_draws == DEFAULT_FIT_SETTINGS["num_chains"] * DEFAULT_FIT_SETTINGS["num_draws"]
    assert chinplan.default_posterior() is post  # loaded once


def _build_script():
    spec = importlib.util.spec_from_file_location("build_default_posterior", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _agree_within_mc_error(shipped, rebuilt, names, sd_range):
    """Each site's mean within 4 Monte Carlo standard errors (a false alarm in any of 10 means
    has probability < 7e-4) and its sd within ``sd_range`` of the shipped one."""
    a, b = shipped.to_arviz().posterior, rebuilt.to_arviz().posterior
    mcse_a, mcse_b = az.mcse(a[names]), az.mcse(b[names])
    for name in names:
        diff = abs(float(a[name].mean()) - float(b[name].mean()))
        se = np.hypot(float(mcse_a[name]), float(mcse_b[name]))
        assert diff <= 4 * se, (name, diff, se)
        ratio = float(b[name].std()) / float(a[name].std())
        assert sd_range[0] < ratio < sd_range[1], (name, ratio)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the build script is not part of an installed package")
def test_rebuilding_reproduces_the_shipped_posterior_within_mc_error():
    rebuilt = _build_script().build_default_posterior(progress=False)
    shipped = chinplan.default_posterior()
    _agree_within_mc_error(shipped, rebuilt, ["log_E", "log_A", "log_B", "alpha", "beta", "sigma", "nu"], (0.85, 1.15))  # ESS > 2000
    # the extrapolation component: the learned scale posteriors (grids over a deterministic
    # refit pipeline) and the 4,000 draws of the valley drift and level drift
    ga, gb = shipped.to_arviz().extrapolation, rebuilt.to_arviz().extrapolation
    # The domain follows from the runs alone (float64 numpy, no sampling): no Monte Carlo error,
    # only the last-bit differences of libm/SIMD log between CPUs (~1e-16 relative), so 1e-12
    # leaves four orders of magnitude of margin.
    np.testing.assert_allclose(json.loads(ga.attrs["extrapolation_domain"]), json.loads(gb.attrs["extrapolation_domain"]), rtol=1e-12)
    folds_a, folds_b = json.loads(ga.attrs["extrapolation_folds"]), json.loads(gb.attrs["extrapolation_folds"])
    # The folds' names and sizes are counts of runs and isoFLOP minima chosen by the runs alone
    # (no draw enters them): integers, so equal on every machine.
    assert [(f["fold"], f["num_dropped"], f["num_minima"]) for f in folds_a] == [(f["fold"], f["num_dropped"], f["num_minima"]) for f in folds_b]
    # How far out a fold's held-out runs lie is a median of distances computed from the runs
    # alone (no draw enters it): float64 rounding only, so 1e-9 relative (against ~1e-15 of
    # accumulated rounding in a few dozen float64 operations).
    np.testing.assert_allclose([f["median_decades"] for f in folds_a], [f["median_decades"] for f in folds_b], rtol=1e-9)
    # each fold's median residual is a median over its refit's 2,000 draws (FOLD_CHAINS = 2
    # chains x 1,000): XLA's floating point differs between CPUs, NUTS turns that into other
    # (equally valid) draws, so a rebuild agrees within Monte Carlo error, not bit for bit.
    # The posterior sd of a predicted log loss is below 0.01 here, so the MC standard error
    # of its median is about 1.25 * 0.01 / sqrt(2000) = 2.8e-4 per build, 4e-4 for the
    # difference of two: 2e-3 is 5 standard errors.
    np.testing.assert_allclose([f["median_residual"] for f in folds_a], [f["median_residual"] for f in folds_b], atol=2e-3)
    for name in ("u", "v"):
        x, y = np.asarray(ga[name]).ravel(), np.asarray(gb[name]).ravel()
        se = np.hypot(x.std(), y.std()) / np.sqrt(x.size)  # independent draws given the scales
        assert abs(x.mean() - y.mean()) <= 4 * se, (name, x.mean(), y.mean(), se)
        assert 0.85 < y.std() / x.std() < 1.15, (name, y.std() / x.std())


@pytest.mark.skipif(not SCRIPT.exists(), reason="the build script is not part of an installed package")
def test_rebuilding_reproduces_the_shipped_data_constrained_posterior_within_mc_error():
    from chinplan.decide import data_constrained

    rebuilt = _build_script().build_data_constrained_posterior(progress=False)
    shipped = data_constrained.default_posterior()
    assert rebuilt.attrs["data_sha256"] == shipped.attrs["data_sha256"]  # a hash of the embedded runs: no draw enters it
    names = ["log_E", "log_A", "log_B", "alpha", "beta", "log_R_D", "log_R_N", "sigma", "nu", "sigma_seed"]
    _agree_within_mc_error(shipped, rebuilt, names, (0.8, 1.25))  # bulk ESS > 900 for every site
