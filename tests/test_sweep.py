"""Scenario sweeps as library API (chinplan.sweep): the TOML schema, load_scenarios, run_sweep,
sweep_frame. The same sweep from Python and from ``chinplan sweep`` (tests/test_cli.py)."""

import jax
import numpy as np
import pytest

import chinplan
from chinplan.decide import sweep
from chinplan.cli import main

#: Scenario files with one mistake each, and a piece of the message that must name it.
BAD_SCENARIOS = [
        ("[grid\ncompute = 1e24\n", "malformed TOML"),
        ("[grid]\ncompute = 1e24\n[deploy]\nprice = 2\n", "'deploy'"),
        ("[grid]\ncompute = 1e24\nqueris = [1, 2]\n", "grid.queris"),
        ("[grid]\ncompute = {logspace = [20, 26]}\n", "grid.compute.logspace"),
        ("[grid]\ncompute = {range = [1, 2]}\n", "grid.compute"),
        ("[grid]\ncompute = [-1e24]\n", "grid.compute"),
        ("[grid]\ncompute = 1e24\ntarget_loss = 2.0\n", "exactly one plan"),
        ("[grid]\nn = 1e9\n", "exactly one plan"),
        ("[grid]\nqueries = [1e9]\n", "exactly one plan"),
        ("[grid]\ncompute = 1e24\nqueries = [1e9]\n[deployment]\nqueries = 1e9\n", "grid.queries"),
        ("[grid]\ncompute = 1e24\n[sweep]\noutputs = ['dolars']\n", "sweep.outputs"),
        ("[grid]\ncompute = 1e24\n[sweep]\nquantiles = [0.5, 2]\n", "sweep.quantiles"),
        ("[grid]\ncompute = 1e24\n[sweep]\noptimum = 'cost'\n", "sweep.optimum"),
        ("[grid]\ncompute = 1e24\n[deployment]\nhardware = 'tpu'\n", "deployment.hardware"),
        ("[grid]\ncompute = 1e24\n[deployment]\nprice = {gamma = [1, 2]}\n", "deployment.price"),
        ("[grid]\ncompute = 1e24\n[deployment]\nprice = {lognormal = [-1, 0.2]}\n", "deployment.price"),
        ("[grid]\ncompute = [1e24, '70X']\n", "'70X'"),
        ("[grid]\ntarget_loss = [1.0, 2.0]\n", "grid.target_loss"),
        ("[grid]\ncompute = {linspace = [1e24, 1e24, 3]}\n", "grid.compute repeats"),
        ("[grid]\ncompute = 1e24\n[deployment]\nprice = -1\n", "deployment.price"),
        ("[grid]\ncompute = 1e24\n[deployment]\nprecision = 'fp8'\nhardware = 'a100'\n", "fp8 is not supported by a100"),
        ("grid = 3\n", "'grid' must be a table"),
        ("[grid]\ncompute = 1e24\nqueries = [1e9]\n", "input_tokens"),
    ]

SWEEP_TOML = """
[sweep]
quantiles = [0.05, 0.5, 0.95]
outputs = ["n", "d", "loss", "dollars"]

[grid]
compute = {logspace = [20, 26, 7]}
queries = {values = [0, "1B"]}

[deployment]
hardware = "h100"
input_tokens = 400
output_tokens = 100
price = {lognormal = [2.0, 0.25]}
"""


@pytest.fixture(scope="module")
def params():
    return jax.tree.map(lambda x: x[:200], chinplan.default_posterior().params)


def write(tmp_path, text, name="scenarios.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", BAD_SCENARIOS)
def test_bad_scenario_files_raise_value_errors_naming_the_key(text, message, tmp_path, params):
    with pytest.raises(ValueError) as err:
        scenarios = sweep.load_scenarios(write(tmp_path, text, "bad.toml"))
        sweep.run_sweep(scenarios, params, key=jax.random.key(0))  # reachability is checked against the draws
    assert message in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        sweep.load_scenarios(tmp_path / "nope.toml")


def test_load_scenarios_parses_axes_plan_and_deployment(tmp_path):
    scenarios = sweep.load_scenarios(write(tmp_path, SWEEP_TOML))
    assert list(scenarios.axes) == ["compute", "queries"] and scenarios.shape == (7, 2)
    np.testing.assert_allclose(scenarios.axes["compute"], np.logspace(20, 26, 7))
    np.testing.assert_array_equal(scenarios.axes["queries"], [0.0, 1e9])
    assert scenarios.plan == "compute" and scenarios.outputs == ("n", "d", "loss", "dollars")
    assert scenarios.quantiles == (0.05, 0.5, 0.95)
    assert scenarios.deployment.price == chinplan.LogNormal(2.0, 0.25)
    assert scenarios.deployment.peak_flops == chinplan.H100_SXM.bf16
    assert scenarios.described["price"] == {"lognormal": [2.0, 0.25]}


def test_python_sweep_equals_the_command_line(tmp_path, params):
    """The library sweep and ``chinplan sweep`` give the same table for the same draws and key."""
    import pandas as pd

    from chinplan.extrapolated import Smallest

    path = write(tmp_path, SWEEP_TOML)
    posterior = tmp_path / "small.nc"
    idata = chinplan.default_posterior().to_arviz().isel(draw=slice(0, 50))
    chinplan.Posterior(idata).save(posterior)
    out = tmp_path / "out.csv"
    assert main(["sweep", str(path), "-o", str(out), "--posterior", str(posterior), "--seed", "3", "--no-progress"]) == 0
    key = jax.random.fold_in(jax.random.PRNGKey(3), 1)  # the CLI's cost stream
    loaded = chinplan.Posterior.load(posterior)
    runs = loaded.to_arviz().constant_data  # the fitted runs: how far below them a plan lies
    smallest = Smallest.of(runs["log_n"].values, runs["log_d"].values)
    dataset = sweep.run_sweep(sweep.load_scenarios(path), loaded.extrapolated_params(), key=key, domain=loaded.domain, smallest=smallest)
    frame = sweep.sweep_frame(dataset)
    cli_frame = pd.read_csv(out)
    assert list(frame.columns) == list(cli_frame.columns)
    np.testing.assert_allclose(frame.to_numpy(), cli_frame.to_numpy(), rtol=1e-12)


def test_sweep_frame_has_one_row_per_scenario(tmp_path, params):
    dataset = sweep.run_sweep(sweep.load_scenarios(write(tmp_path, SWEEP_TOML)), params, key=jax.random.key(1))
    assert dict(dataset.sizes) == {"quantile": 3, "compute": 7, "queries": 2}
    frame = sweep.sweep_frame(dataset)
    assert len(frame) == 14 and list(frame.columns[:2]) == ["compute", "queries"]
    assert {"n_q5", "n_q50", "n_q95", "dollars_q95"} <= set(frame.columns)
    n = np.asarray(chinplan.compute_optimal(params, 1e24).n, np.float64)
    row = frame[(frame.compute == 1e24) & (frame.queries == 0.0)]
    np.testing.assert_allclose(row["n_q50"], np.quantile(n, 0.5), rtol=1e-5)


def test_target_loss_sweep_reports_unreachable_fraction(tmp_path, params):
    text = "[grid]\ntarget_loss = [1.81, 2.0]\n[sweep]\noptimum = 'chinchilla'\n"
    dataset = sweep.run_sweep(sweep.load_scenarios(write(tmp_path, text)), params)
    e = np.asarray(params.E, np.float64)
    frac = dataset["unreachable_fraction"].values
    assert frac[1] == 0.0 and frac[0] == pytest.approx(np.mean(e >= np.float32(1.81)), abs=0.01)
    n = np.asarray(chinplan.optimal_for_loss(params, 2.0).n, np.float64)
    np.testing.assert_allclose(dataset["n"].sel(quantile=0.5, target_loss=2.0), np.quantile(n, 0.5), rtol=1e-5)


def test_a_distribution_needs_a_key(tmp_path, params):
    with pytest.raises(ValueError, match="key"):
        sweep.run_sweep(sweep.load_scenarios(write(tmp_path, SWEEP_TOML)), params)
