"""One question, one answer (issue 22): every surface answers with plan's default uncertainty,
says which it used, and gives plan's numbers for the same posterior and draws."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import chinplan
from chinplan.cli import main
from chinplan.extrapolated import compute_optimal_draws
from chinplan.plots import charts

BUDGET = 5.76e23


def _json(capsys, argv):
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def post():
    return chinplan.default_posterior()


def test_the_default_is_the_extrapolation_aware_allocation_with_the_minima(post):
    assert post.default_uncertainty() == "extrapolation"
    line = post.allocation_line
    assert line is not None and line.num_minima >= 2  # the embedded runs hold isoFLOP slices
    # the shipped answer at Chinchilla's budget contains the law's own median and the paper's 70B
    log_n = np.asarray(compute_optimal_draws(post.extrapolated_params(), jnp.log(jnp.asarray([BUDGET])))[0], np.float64)[:, 0]
    lo, hi = np.exp(np.quantile(log_n, (0.05, 0.95)))
    law_log_n = np.asarray(compute_optimal_draws(post.extrapolated_params("law"), jnp.log(jnp.asarray([BUDGET])))[0], np.float64)[:, 0]
    assert lo < np.exp(np.median(law_log_n)) < hi and lo < 70e9 < hi


def test_summary_tokens_per_param_is_plans(capsys, post):
    plan = _json(capsys, ["plan", "--compute", str(BUDGET)])
    summary = post.summary(compute=BUDGET)
    assert summary.attrs["uncertainty"] == plan["uncertainty"] == "extrapolation"
    row = summary.loc[f"tokens_per_param@{BUDGET:.3g}"]
    # the same 4,000 draws through the same kernel: equal up to float32 rounding of the quantile
    assert row["q50"] == pytest.approx(plan["plans"][0]["tokens_per_param"][1], rel=1e-5)
    assert row["q5"] == pytest.approx(plan["plans"][0]["tokens_per_param"][0], rel=1e-5)
    assert post.summary(compute=BUDGET, uncertainty="law").attrs["uncertainty"] == "law"


def test_the_fan_chart_draws_plans_median(capsys, post):
    plan = _json(capsys, ["plan", "--compute", str(BUDGET)])
    fig = charts.fan_chart(post.extrapolated_params(), np.array([1e22, BUDGET, 1e25]))
    median = next(line for line in fig.axes[0].get_lines() if line.get_label() == "N* median")
    assert float(median.get_ydata()[1]) == pytest.approx(plan["plans"][0]["n"][1], rel=1e-5)
    assert "extrapolation uncertainty" in fig.axes[0].get_title()
    law_fig = charts.fan_chart(post.extrapolated_params("law"), np.array([1e22, BUDGET, 1e25]))
    assert "law uncertainty" in law_fig.axes[0].get_title()


@pytest.mark.parametrize("kind", ["fan", "iso-loss", "tco"])
def test_plot_commands_take_plans_default_and_say_which(capsys, tmp_path, kind):
    out = _json(capsys, ["plot", kind, "-o", str(tmp_path / f"{kind}.png"), "--draws", "100"])
    assert out["uncertainty"] == "extrapolation"
    out = _json(capsys, ["plot", kind, "-o", str(tmp_path / f"{kind}-law.png"), "--draws", "100", "--uncertainty", "law"])
    assert out["uncertainty"] == "law"


def test_plan_shows_the_law_median_beside_the_default_when_they_differ(capsys, post, tmp_path):
    plan = _json(capsys, ["plan", "--compute", str(BUDGET)])
    assert "law_median_n" not in plan["plans"][0]  # the shipped default and the law agree here
    # a posterior whose valley sits 0.3 decades off the law beyond the data: the law's median is shown
    idata = post.to_arviz()
    shifted = idata.extrapolation.copy()
    shifted["c"] = xr.full_like(shifted["c"], 0.3)
    idata = idata.copy()
    idata.extrapolation = shifted
    path = tmp_path / "shifted.nc"
    chinplan.Posterior(idata).save(path)
    plan = _json(capsys, ["plan", "--compute", str(BUDGET), "--posterior", str(path)])
    law = _json(capsys, ["plan", "--compute", str(BUDGET), "--posterior", str(path), "--uncertainty", "law"])
    assert plan["plans"][0]["law_median_n"] == pytest.approx(law["plans"][0]["n"][1], rel=1e-5)
    assert main(["plan", "--compute", str(BUDGET), "--posterior", str(path)]) == 0
    assert "the law alone says N*" in capsys.readouterr().out
