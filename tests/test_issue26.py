"""Issue 26: a suite that passes wherever a user runs it, and the third adversarial pass."""

import os
import re
import warnings

import arviz as az
import jax
import numpy as np
import pytest
import xarray as xr

import chinplan
from chinplan.inference import calibration
from chinplan.inference.posterior import Posterior

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----- the suite as users run it -------------------------------------------------------------
def test_ci_runs_the_readme_install_and_test_line_in_a_fresh_venv():
    readme = open(os.path.join(ROOT, "README.md")).read()
    line = next(x for x in readme.splitlines() if "pytest" in x and x.startswith("pip install"))
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert "set -euo pipefail" in ci
    steps = [x.strip() for x in ci.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    venv = next(i for i, x in enumerate(steps) if re.match(r"python3 -m venv ", x))
    activate = next(i for i, x in enumerate(steps) if re.match(r"(source|\.) .*/bin/activate", x))
    assert venv < activate < steps.index(line), steps  # the README's line, verbatim, in the venv
    assert "--system-site-packages" not in ci


# ----- loss quantiles in log space -----------------------------------------------------------
def _heavy_tailed_posterior(num_draws=2000, seed=0):
    """Draws near Besiroglu et al. 2024 with a Cauchy noise (nu = 1, sigma = 1) on log loss:
    some replicates lie far beyond float32's exp range (log loss > 88.7)."""
    rng = np.random.default_rng(seed)
    shape = (2, num_draws // 2)
    sites = {
        "log_E": np.log(1.82) + 0.01 * rng.standard_normal(shape),
        "log_A": np.log(482.0) + 0.05 * rng.standard_normal(shape),
        "log_B": np.log(2085.0) + 0.05 * rng.standard_normal(shape),
        "alpha": 0.3478 + 0.005 * rng.standard_normal(shape),
        "beta": 0.3658 + 0.005 * rng.standard_normal(shape),
        "sigma": np.full(shape, 1.0),
        "nu": np.full(shape, 1.0),
    }
    idata = az.from_dict(posterior=sites, sample_stats={"diverging": np.zeros(shape, bool)})
    log_n, log_d = np.log([1e8, 3e8, 1e9, 3e9, 1e9]), np.log([2e9, 6e9, 2e10, 5e10, 1.6e11])
    idata.add_groups(constant_data=xr.Dataset({"log_n": ("run", log_n), "log_d": ("run", log_d)}))
    idata.posterior.attrs.update(law="chinchilla", likelihood="student_t", num_runs=5)
    return Posterior(idata)


def test_predict_loss_takes_quantiles_in_log_space_without_overflow_warnings():
    post = _heavy_tailed_posterior()
    key = jax.random.key(0)
    q = (0.001, 0.05, 0.5, 0.95, 0.999)
    _, rep = post.sample_log_loss(np.log([1e9, 1e11]), np.log([2e10, 2e12]), key=key, uncertainty="law")
    rep = np.asarray(rep, np.float64)
    assert rep.max() > 88.8  # beyond float32's exp range: the case this guards
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp was a RuntimeWarning
        got = post.predict_loss(np.array([1e9, 1e11]), np.array([2e10, 2e12]), q=q, key=key, uncertainty="law")
        alloc = post.compute_optimal(np.array([1e21, 1e23]), q=q, key=key, uncertainty="law")
    # exp is monotone: the quantiles of the loss are exp of the quantiles of the log loss
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(got, np.exp(np.quantile(rep, q, axis=0)), rtol=1e-12)
    assert np.all(np.isfinite(got[1:4])) and np.all(np.diff(got, axis=0) >= 0)
    assert np.all(np.isfinite(alloc.n)) and np.all(np.isfinite(alloc.loss[1:4]))


def test_validate_on_a_heavy_tailed_posterior_passes_no_runtime_warning():
    post = _heavy_tailed_posterior()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        bt = calibration.backtest(chinplan.datasets.chinchilla(), key=jax.random.key(1), posterior=post, uncertainty="law")
    assert np.all(np.isfinite(bt.table["pred_median"])) and 0.0 <= bt.coverage[0.9] <= 1.0
