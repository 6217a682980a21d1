"""The command line: every command end to end on the embedded default, JSON, files, errors.

Commands run in-process through ``chinplan.cli.main`` (output captured with capsys) on a
few hundred draws, so the whole file stays well under a minute; one smoke test runs the
installed ``chinplan`` entry point in a subprocess.
"""

import argparse
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import chinplan
from chinplan import costs, format
from chinplan.cli import inputs, plan
import chinplan.cli as cli
from chinplan.cli import parser
from chinplan.decide import risk as decide
from chinplan.decide import sweep
from chinplan.cli import main
from test_sweep import BAD_SCENARIOS, SWEEP_TOML

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DRAWS = "200"
SERVING = ["--queries", "1e9", "--tokens-per-query", "500"]


def _reject_constant(name):
    raise AssertionError(f"non-standard JSON constant {name} in output")


def run_json(capsys, argv):
    """Runs ``chinplan ARGV --json`` in-process; the parsed, strict JSON document."""
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    return json.loads(captured.out, parse_constant=_reject_constant)


def thinned(draws=int(DRAWS), seed=0):
    """The draws the CLI uses for ``--draws N --seed S`` on the embedded posterior."""
    return inputs.load_draws(argparse.Namespace(posterior=None, draws=draws, seed=seed))


@pytest.fixture(scope="module")
def small_posterior(tmp_path_factory):
    """A 200-draw posterior file (4 chains x 50 draws of the embedded fit)."""
    path = tmp_path_factory.mktemp("posterior") / "small.nc"
    idata = chinplan.default_posterior().to_arviz().isel(draw=slice(0, 50))
    chinplan.Posterior(idata).save(path)
    return str(path)


# --------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------


def test_plan_json_matches_the_library(capsys):
    out = run_json(capsys, ["plan", "--compute", "5.76e23", "1e24", "--uncertainty", "law"])
    assert [p["compute"] for p in out["plans"]] == [5.76e23, 1e24]
    direct = decide.plan_bands(chinplan.default_posterior().params, [5.76e23, 1e24], [0.05, 0.5, 0.95])
    np.testing.assert_allclose(out["plans"][1]["n"], direct["n"][:, 1])
    # Explicit per-draw oracle for the median of N* at 5.76e23
    post = chinplan.default_posterior()
    n = np.asarray(chinplan.compute_optimal(post.params, 5.76e23).n, np.float64)
    np.testing.assert_allclose(out["plans"][0]["n"][1], np.quantile(n, 0.5), rtol=1e-5)
    assert 70e9 / 2 < out["plans"][0]["n"][1] < 70e9 * 2  # Chinchilla: 70B at 5.76e23 FLOPs
    lo, med, hi = out["plans"][0]["tokens_per_param"]
    assert lo < med < hi


def test_plan_defaults_to_extrapolation_bands_and_says_how_far_beyond(capsys):
    out = run_json(capsys, ["plan", "--compute", "1e21", "5.76e23"])
    assert out["uncertainty"] == "extrapolation"
    post = chinplan.default_posterior()
    want = post.compute_optimal(np.array([1e21, 5.76e23]), q=(0.05, 0.5, 0.95), key=jax.random.key(0))
    for i in range(2):
        np.testing.assert_allclose(out["plans"][i]["n"], want.n[:, i], rtol=1e-5)
        np.testing.assert_allclose(out["plans"][i]["d"], want.d[:, i], rtol=1e-5)
    inside, beyond = (p["extrapolation"] for p in out["plans"])
    assert inside["decades"] == 0.0
    largest = 6 * datasets_max_compute()
    assert beyond["largest_fitted_compute"] == pytest.approx(largest, rel=1e-9)
    assert beyond["compute_decades"] == pytest.approx(np.log10(5.76e23 / largest), rel=1e-9)
    law = run_json(capsys, ["plan", "--compute", "5.76e23", "--uncertainty", "law"])["plans"][0]["n"]
    ext = out["plans"][1]["n"]
    assert ext[2] / ext[0] > law[2] / law[0]  # wider beyond the data
    assert main(["plan", "--compute", "5.76e23"]) == 0
    assert "1.6 decades beyond the largest fitted run (1.3e22 FLOPs)" in capsys.readouterr().out


def datasets_max_compute():
    runs = chinplan.datasets.chinchilla()
    return float(np.max(runs["params"] * runs["tokens"]))


def test_plan_table(capsys):
    assert main(["plan", "--compute", "5.76e23"]) == 0
    out = capsys.readouterr().out
    assert "5.76e23 FLOPs" in out and "B" in out and "T" in out


def test_plan_thinning_follows_the_seed_and_draws_a_fan_chart(tmp_path, capsys):
    plot = tmp_path / "fan.png"
    a = run_json(capsys, ["plan", "--compute", "1e24", "--draws", DRAWS, "--seed", "1", "--plot", str(plot), "--uncertainty", "law"])
    assert a["num_draws"] == 200 and a["seed"] == 1 and a["plot"] == str(plot)
    assert plot.read_bytes()[:8] == PNG_MAGIC
    again = run_json(capsys, ["plan", "--compute", "1e24", "--draws", DRAWS, "--seed", "1", "--uncertainty", "law"])
    other = run_json(capsys, ["plan", "--compute", "1e24", "--draws", DRAWS, "--seed", "2", "--uncertainty", "law"])
    assert again["plans"] == a["plans"] and other["plans"] != a["plans"]
    n = np.asarray(chinplan.compute_optimal(thinned(seed=1).params, 1e24).n, np.float64)
    np.testing.assert_allclose(a["plans"][0]["n"], np.quantile(n, [0.05, 0.5, 0.95]), rtol=1e-5)


def test_plan_reads_a_posterior_file(small_posterior, capsys):
    out = run_json(capsys, ["plan", "--compute", "1e23", "--posterior", small_posterior])
    assert out["num_draws"] == 200 and out["posterior"] == small_posterior


# --------------------------------------------------------------------------------------
# tco
# --------------------------------------------------------------------------------------


def test_tco_json_matches_per_draw_optima(tmp_path, capsys):
    plot = tmp_path / "tco.svg"
    out = run_json(capsys, ["tco", "--target-loss", "2.0", *SERVING, "--hardware", "h100", "--draws", DRAWS, "--plot", str(plot),
                            "--uncertainty", "law"])  # fmt: skip
    assert out["num_draws"] == 200 and out["deployment"]["hardware"] == "h100"
    assert out["plot"] == str(plot) and b"<svg" in plot.read_bytes()[:2000]
    assert out["deployment"]["input_tokens"] + out["deployment"]["output_tokens"] == 500
    (target,) = out["targets"]
    assert target["target_loss"] == 2.0 and target["unreachable_fraction"] == 0.0
    best, chin = target["inference_optimal"], target["chinchilla"]
    keys = {"n", "d", "tokens_per_param", "train_flops", "train_gpu_hours", "inference_gpu_hours", "gpu_hours",
            "train_dollars", "inference_dollars", "dollars"}  # fmt: skip
    assert set(best) == set(chin) == keys
    # Serving a billion queries: a smaller model trained on more tokens, and cheaper overall.
    assert best["n"][1] < chin["n"][1] and best["d"][1] > chin["d"][1]
    assert best["dollars"][1] <= chin["dollars"][1] and all(s > -1e-5 for s in target["savings"])
    assert all(v > 0 for v in best["gpu_hours"] + best["dollars"])
    # Oracle: the per-draw optimum and its TCO, quantiles in float64.
    dep = chinplan.Deployment(queries=1e9, input_tokens=375.0, output_tokens=125.0)
    params = thinned().params
    plan = chinplan.cost_optimal(params, 2.0, dep)
    np.testing.assert_allclose(best["n"][1], np.quantile(np.asarray(plan.n, np.float64), 0.5), rtol=1e-5)
    dollars = np.asarray(chinplan.tco(plan.n, plan.d, dep).dollars, np.float64)
    np.testing.assert_allclose(best["dollars"][1], np.quantile(dollars, 0.5), rtol=1e-4)
    chinchilla = chinplan.optimal_for_loss(params, 2.0)
    np.testing.assert_allclose(chin["d"][1], np.quantile(np.asarray(chinchilla.d, np.float64), 0.5), rtol=1e-5)


def test_tco_reports_draws_that_cannot_reach_the_target(capsys):
    e = np.asarray(thinned().params.E, np.float64)
    target = float(np.round(np.median(e), 3))
    out = run_json(capsys, ["tco", "--target-loss", str(target), *SERVING, "--draws", DRAWS, "--uncertainty", "law"])
    fraction = out["targets"][0]["unreachable_fraction"]
    assert 0.2 < fraction < 0.8
    assert fraction == pytest.approx(np.mean(e >= np.float32(target)), abs=1.5 / len(e))
    assert out["targets"][0]["inference_optimal"]["n"][2] is None  # +inf: never NaN, never silent
    assert main(["tco", "--target-loss", str(target), *SERVING, "--draws", DRAWS, "--uncertainty", "law"]) == 0
    text = capsys.readouterr().out
    assert "unreachable" in text and f"{100 * fraction:.1f}%" in text


def test_tco_carries_the_extrapolation_component_by_default(capsys):
    out = run_json(capsys, ["tco", "--target-loss", "1.9", *SERVING, "--draws", DRAWS])
    assert out["uncertainty"] == "extrapolation"
    dep = chinplan.Deployment(queries=1e9, input_tokens=375.0, output_tokens=125.0)
    theta = decide.draw_pairs(thinned().theta, dep)
    want = decide.tco_bands(theta, [1.9], q=(0.05, 0.5, 0.95)).values
    (target,) = out["targets"]
    np.testing.assert_allclose(target["inference_optimal"]["n"], np.asarray(want["optimal"]["n"])[:, 0], rtol=1e-5)
    law = run_json(capsys, ["tco", "--target-loss", "1.9", *SERVING, "--draws", DRAWS, "--uncertainty", "law"])["targets"][0]
    # beyond the fitted runs the band is wider than the law's alone
    width = lambda band: band[2] / band[0]  # noqa: E731
    assert width(target["inference_optimal"]["n"]) > width(law["inference_optimal"]["n"])
    beyond = target["extrapolation"]
    assert beyond["decades"] > 1.0
    ext = thinned().posterior.extrapolation(target["inference_optimal"]["n"][1], target["inference_optimal"]["d"][1])
    assert beyond["decades"] == pytest.approx(float(ext.decades), abs=1e-9)


def test_tco_table(capsys):
    argv = ["tco", "--target-loss", "2.1", "--queries", "10B", "--input-tokens", "400", "--output-tokens", "100",
            "--hardware", "h200", "--precision", "fp8", "--mfu", "0.3:0.5", "--price", "2.5", "--draws", DRAWS]  # fmt: skip
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())  # notes wrap at 80 columns
    for expected in ("inference-aware optimum", "compute-optimal", "parameters N", "GPU-hours", "total cost", "$",
                     "savings", "H200 fp8 (1979 TFLOP/s peak)", "MFU 30%-50% train", "$2.5 per GPU-hour", "10B queries"):  # fmt: skip
        assert expected in text
    assert "unreachable" not in text


def test_deployment_options():
    argv = ["tco", "--target-loss", "2", "--queries", "1e9", "--tokens-per-query", "1000", "--output-share", "0.1",
            "--hardware", "h200", "--precision", "fp8", "--inference-hardware", "a100", "--inference-precision", "bf16",
            "--mfu-decode", "0.05:0.2",
            "--price", "1.5:3", "--inference-price", "1.2"]  # fmt: skip
    deployment, described = inputs.deployment_of(parser.build_parser().parse_args(argv))
    assert (deployment.input_tokens, deployment.output_tokens) == pytest.approx((900.0, 100.0))
    assert deployment.peak_flops == chinplan.H200.fp8 and deployment.inference_peak_flops == chinplan.A100.bf16
    assert deployment.mfu_decode == chinplan.Uniform(0.05, 0.2) and deployment.inference_price == 1.2
    assert described["price"] == {"uniform": [1.5, 3.0]} and described["inference_hardware"] == "a100"
    line = format.deployment_line(described)
    assert "serving on A100 bf16" in line and "$1.5-$3 train / $1.2 serve" in line and "5%-20% decode" in line


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------


def test_compare_json_probabilities(capsys):
    designs = ["8B:15T", "70B:1.4T", "280B:5.6T"]
    argv = ["compare", *designs, *SERVING, "--mfu-decode", "0.05:0.15", "--target-loss", "2.0", "--draws", DRAWS]
    out = run_json(capsys, argv)
    assert out["labels"] == designs and [d["label"] for d in out["designs"]] == designs
    first = out["designs"][0]
    assert (first["n"], first["d"], first["train_flops"]) == (8e9, 15e12, 6 * 8e9 * 15e12)
    for name in ("p_cheaper", "p_lower_loss"):
        m = np.asarray(out[name])
        assert m.shape == (3, 3) and np.all(np.diag(m) == 0) and np.all((m >= 0) & (m <= 1))
        assert np.all(m + m.T <= 1 + 1e-12)  # ties count for neither
    lower = np.asarray(out["p_lower_loss"])
    assert lower[2, 0] == 1.0 and lower[0, 2] == 0.0  # 280B on 5.6T tokens beats 8B on 15T
    loss = [d["loss"] for d in out["designs"]]
    assert all(lo < med < hi for lo, med, hi in loss) and loss[2][1] < loss[1][1] < loss[0][1]
    assert 0 < out["designs"][0]["p_target"] < out["designs"][1]["p_target"] <= 1
    # Common random numbers: the decode MFU is uncertain, so the 8B-vs-70B call is a probability.
    assert 0 < out["p_cheaper"][0][1] < 1


def test_compare_table_and_plot(tmp_path, capsys):
    plot = tmp_path / "designs.png"
    designs = ["[small]=8B:15T", "chinchilla=70e9:1.4e12", "gopher=280B:300B"]  # 3 designs, as above: no recompiling
    assert main(["compare", *designs, *SERVING, "--mfu-decode", "0.05:0.15", "--draws", DRAWS, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    for expected in ("P(row cheaper than column)", "P(row has lower loss than column)", "[small]", "chinchilla", "gopher", "$"):
        assert expected in text
    assert plot.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------------------
# sweep (SWEEP_TOML and BAD_SCENARIOS live in tests/test_sweep.py)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".nc", ".csv"])
def test_sweep_writes_each_format(suffix, tmp_path, capsys, small_posterior):
    import pandas as pd
    import xarray as xr

    scenarios = tmp_path / "scenarios.toml"
    scenarios.write_text(SWEEP_TOML)
    output = tmp_path / f"out{suffix}"
    summary = run_json(capsys, ["sweep", str(scenarios), "-o", str(output), "--posterior", small_posterior])
    assert summary["rows"] == 14 and summary["axes"] == {"compute": 7, "queries": 2} and summary["num_draws"] == 200
    assert not list(tmp_path.glob(".chinplan-*"))  # the temporary file was renamed into place
    if suffix == ".nc":
        ds = xr.open_dataset(output, engine="h5netcdf")
        assert dict(ds.sizes) == {"quantile": 3, "compute": 7, "queries": 2}
        assert list(ds.data_vars) == ["n", "d", "loss", "dollars", "decades_beyond", "decades_below"]
        assert ds.attrs["uncertainty"] == "extrapolation"
        frame = ds.drop_vars(["decades_beyond", "decades_below"]).sel(quantile=0.5).to_dataframe().reset_index()
        frame = frame.rename(columns={k: f"{k}_q50" for k in ("n", "d", "loss", "dollars")})
        ds.close()
    else:
        frame = pd.read_parquet(output) if suffix == ".parquet" else pd.read_csv(output)
        assert list(frame.columns[:2]) == ["compute", "queries"] and "dollars_q95" in frame
    assert len(frame) == 14
    med = frame.pivot(index="compute", columns="queries", values="n_q50")
    assert np.all(np.diff(med[0.0].to_numpy()) > 0)  # N* grows with the budget
    dollars = frame.pivot(index="compute", columns="queries", values="dollars_q50")
    assert np.all(dollars[1e9] > dollars[0.0])  # serving costs money
    from chinplan.extrapolated import compute_optimal_draws

    posterior = chinplan.Posterior.load(small_posterior)
    log_n = compute_optimal_draws(posterior.extrapolated_params(), jax.numpy.log(jax.numpy.asarray([1e24])))[0]
    np.testing.assert_allclose(med.loc[1e24, 0.0], np.quantile(np.exp(np.asarray(log_n, np.float64)), 0.5), rtol=1e-5)


def test_sweep_target_loss_grid_reports_unreachable_draws(tmp_path, capsys, small_posterior):
    import pandas as pd

    scenarios = tmp_path / "targets.toml"
    scenarios.write_text(
        '[sweep]\noptimum = "flops"\n[grid]\ntarget_loss = [1.81, 2.0]\nmfu_decode = {linspace = [0.05, 0.2, 3]}\n'
        "[deployment]\nqueries = 1e10\ninput_tokens = 400\noutput_tokens = 100\n"
    )
    output = tmp_path / "targets.csv"
    argv = ["sweep", str(scenarios), "-o", str(output), "--posterior", small_posterior, "--no-progress"]
    assert main([*argv, "--uncertainty", "law"]) == 0
    assert "6 scenarios" in " ".join(capsys.readouterr().out.split())  # wrapped at 80 columns
    frame = pd.read_csv(output)
    assert len(frame) == 6 and {"n_q50", "dollars_q95", "unreachable_fraction"} <= set(frame.columns)
    e = np.asarray(chinplan.Posterior.load(small_posterior).params.E, np.float64)
    by_target = frame.groupby("target_loss")["unreachable_fraction"].first()
    assert by_target[2.0] == 0.0 and by_target[1.81] == pytest.approx(np.mean(e >= np.float32(1.81)), abs=0.01)
    assert np.isinf(frame["n_q95"][frame.target_loss == 1.81]).all()
    # extrapolation-aware (the default): the plans for 2.0 lie beyond the fitted runs, and say so
    assert main(argv) == 0
    capsys.readouterr()
    frame = pd.read_csv(output)
    assert (frame["decades_beyond"][frame.target_loss == 2.0] > 1.0).all()


def test_sweep_over_designs(tmp_path, capsys, small_posterior):
    scenarios = tmp_path / "designs.toml"
    scenarios.write_text('[grid]\nn = ["8B", "70B"]\nd = {logspace = [11, 13, 3]}\n[sweep]\noutputs = ["loss", "train_flops"]\n')
    output = tmp_path / "designs.nc"
    summary = run_json(capsys, ["sweep", str(scenarios), "-o", str(output), "--posterior", small_posterior])
    assert summary["rows"] == 6 and summary["plan"] == "design"
    import xarray as xr

    with xr.open_dataset(output, engine="h5netcdf") as ds:
        loss = ds["loss"].sel(quantile=0.5).values  # (n, d)
        assert np.all(np.diff(loss, axis=1) < 0) and np.all(loss[1] < loss[0])  # more data, more params: lower loss
        np.testing.assert_allclose(ds["train_flops"].sel(quantile=0.05, n=8e9, d=1e12), 6 * 8e9 * 1e12, rtol=1e-5)


# --------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, suffix, extra",
    [
        ("fan", ".png", ["--compute-range", "1e20", "1e25"]),
        ("iso-loss", ".svg", []),
        ("tco", ".png", ["--designs", "8B:15T", "70B:1.4T", "--tokens-per-query", "500"]),
        ("pair", ".png", ["--pair-kind", "scatter"]),
    ],
)
def test_plot_command_writes_a_figure(kind, suffix, extra, tmp_path, capsys, small_posterior):
    output = tmp_path / f"figure{suffix}"
    out = run_json(capsys, ["plot", kind, "-o", str(output), "--posterior", small_posterior, *extra])
    assert out["kind"] == kind and out["bytes"] == output.stat().st_size > 0
    data = output.read_bytes()
    assert data[:8] == PNG_MAGIC if suffix == ".png" else b"<svg" in data[:2000]


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


def test_fit_command_writes_a_posterior(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    chinplan.datasets.chinchilla().to_csv(runs, index=False)
    out = tmp_path / "post.nc"
    summary = run_json(capsys, ["fit", str(runs), "-o", str(out), "--samples", "100", "--warmup", "100", "--chains", "1", "--allow-unconverged"])
    assert set(summary["summary"]) >= {"E", "alpha", "beta"} and summary["num_draws"] == 100
    assert chinplan.Posterior.load(out).num_draws == 100
    assert summary["extrapolation"] is True and summary["attempts"]


def test_fit_command_refuses_an_unconverged_fit_of_seven_runs(tmp_path, capsys):
    """The issue's case: 7 runs give R-hat > 1.01 and divergences; the gate retries, records
    what it did in the file, and exits 1 with one line unless --allow-unconverged."""
    runs = tmp_path / "runs.csv"
    chinplan.datasets.chinchilla().iloc[[10, 40, 80, 120, 160, 200, 240]].to_csv(runs, index=False)
    out = tmp_path / "post.nc"
    args = ["fit", str(runs), "-o", str(out), "--samples", "200", "--warmup", "100", "--max-retries", "1", "--no-extrapolation"]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "did not converge after 2 attempt(s)" in err
    attrs = chinplan.Posterior.load(out).attrs
    assert attrs["converged"] == 0 and len(json.loads(attrs["fit_attempts"])) == 2


def test_validate_command_back_tests_the_embedded_runs(capsys):
    result = run_json(capsys, ["validate", "--samples", "100", "--warmup", "100", "--chains", "1", "--splits", "compute"])
    rows = {(row["split"], row["interval"]): row for row in result["splits"]}
    assert set(rows) == {("compute", "extrapolation"), ("compute", "law")}
    row = rows[("compute", "extrapolation")]
    assert row["num_fit"] + row["num_predicted"] == 245 and row["num_predicted"] > 50
    assert [c["level"] for c in row["coverage"]] == [0.5, 0.8, 0.9]
    for c in row["coverage"]:
        assert c["se"] == pytest.approx(np.sqrt(c["coverage"] * (1 - c["coverage"]) / row["num_predicted"]))
    # the same posterior scored two ways: the extrapolation-aware intervals are the wider
    assert row["width90"] > rows[("compute", "law")]["width90"]
    assert {a["interval"] for a in result["allocation"]} == {"extrapolation", "law"}
    assert all(a["num_minima"] == len(a["minima"]) > 0 for a in result["allocation"])
    coverage = [c["coverage"] for c in row["coverage"]]
    assert all(0 <= c <= 1 for c in coverage) and coverage == sorted(coverage)  # nested intervals
    assert 0 < row["median_rel_error"] < 0.05


# --------------------------------------------------------------------------------------
# Errors: one line on stderr, a non-zero exit code, never a traceback.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["plan", "--compute", "-1"], 2, "must be a finite positive number"),
        (["validate", "--threshold", "-5"], 2, "must be a finite positive number"),
        (["validate", "/no/such/runs.csv"], 1, "does not exist"),
        (["plan", "--compute", "nan"], 2, "must be a finite positive number"),
        (["plan", "--compute", "abc"], 2, "is not a number"),
        (["plan"], 2, "--compute"),
        (["plan", "--compute", "1e24", "--posterior", "/no/such.nc"], 1, "does not exist"),
        (["plan", "--compute", "1e24", "--quantiles", "1.5"], 1, "quantiles"),
        (["plan", "--compute", "1e24", "--plot", "fan.gif"], 2, "must end in .png, .svg"),
        (["plan", "--compute", "1e24", "--draws", "0"], 2, "at least 1"),
        (["tco", "--target-loss", "2", "--hardware", "tpu"], 2, "unknown hardware 'tpu'"),
        (["tco", "--target-loss", "1.0", "--draws", DRAWS], 1, "irreducible loss E of every posterior draw"),
        (["tco", "--target-loss", "2", "--queries", "1e9"], 2, "--tokens-per-query"),
        (["tco", "--target-loss", "2", "--tokens-per-query", "5", "--input-tokens", "4"], 2, "not both"),
        (["tco", "--target-loss", "2", "--hardware", "a100", "--precision", "fp8"], 1, "fp8 is not supported by a100"),
        (["tco", "--target-loss", "2", "--precision", "fp8", "--inference-hardware", "a100"], 1, "serving precision fp8"),
        (["tco", "--target-loss", "2", "--mfu", "1.5"], 2, "(0, 1]"),
        (["tco", "--target-loss", "2", "--price", "3:1"], 2, "LO < HI"),
        (["compare", "70X:1T", "8B:15T"], 2, "'70X' is not a number"),
        (["compare", "70B", "8B:15T"], 2, "must be N:D"),
        (["compare", "a=70B:1T", "a=8B:15T"], 2, "more than once"),
        (["sweep", "/no/such.toml", "-o", "out.csv"], 1, "does not exist"),
        (["sweep", "s.toml", "-o", "out.xlsx"], 2, "must end in .parquet, .nc, .csv"),
        (["sweep", "s.toml", "-o", "/no/such/dir/out.csv"], 1, "does not exist"),
        (["plot", "violin", "-o", "x.png"], 2, "invalid choice"),
        (["plot", "fan", "-o", "x.pdf"], 2, "must end in .png, .svg"),
        (["plot", "tco", "-o", "x.png", "--tokens-per-query", "0"], 2, "--tokens-per-query"),
        (["fit", "/no/such.csv", "-o", "x.nc"], 1, "does not exist"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code(argv, code, message, capsys):
    with pytest.raises(SystemExit) as exc:
        sys.exit(main(argv))
    assert exc.value.code == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("text, message", BAD_SCENARIOS)
def test_bad_scenario_files_name_the_key(text, message, tmp_path, capsys):
    scenarios = tmp_path / "bad.toml"
    scenarios.write_text(text)
    code = main(["sweep", str(scenarios), "-o", str(tmp_path / "out.csv"), "--draws", DRAWS])
    err = capsys.readouterr().err.strip()
    assert code == 1 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("XLA exploded\nwith a long\nmessage")

    monkeypatch.setitem(cli._COMMANDS, "plan", broken)
    assert main(["plan", "--compute", "1e24"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "chinplan: error: unexpected RuntimeError: XLA exploded with a long message"


# --------------------------------------------------------------------------------------
# The installed entry point, and the formatting helpers.
# --------------------------------------------------------------------------------------


def test_installed_entry_point_runs():
    exe = shutil.which("chinplan")
    command = [exe] if exe else [sys.executable, "-m", "chinplan.cli"]
    result = subprocess.run([*command, "plan", "--compute", "1e23", "--draws", "50", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout, parse_constant=_reject_constant)
    assert out["plans"][0]["compute"] == 1e23 and out["num_draws"] == 50


# --------------------------------------------------------------------------------------
# The parser needs no JAX.
# --------------------------------------------------------------------------------------


def test_help_does_not_import_jax():
    """``chinplan --help`` (and a subcommand's) builds the parser without the numerical stack."""
    runner = (
        "import sys\n"
        "from chinplan import cli\n"
        "for argv in (['--help'], ['plan', '--help'], ['compare', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, exit.code\n"
        "print(sorted(m for m in ('jax', 'matplotlib', 'xarray') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: chinplan" in result.stdout and "--hardware" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_sweep_help_prints_the_schema(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--help"])
    assert exc.value.code == 0
    assert sweep.SCENARIOS_SCHEMA.splitlines()[0] in capsys.readouterr().out


def test_parser_choices_match_the_library():
    """The parser knows preset names without importing the library; they must agree with it."""
    assert sorted(parser.HARDWARE_NAMES) == sorted(costs.HARDWARE)
    assert tuple(parser.PRECISIONS) == tuple(sweep.PRECISIONS)


def test_every_command_has_an_implementation():
    """cli.py names the commands; _commands (or the module cli.COMMAND_MODULES names) implements
    each as cmd_<name>(args) -> exit code."""
    import importlib

    subparsers = next(a for a in parser.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(cli._COMMANDS) == set(cli.COMMAND_MODULES)
    for name, module in cli.COMMAND_MODULES.items():
        assert callable(getattr(importlib.import_module(f"chinplan.cli.{module}"), f"cmd_{name.replace('-', '_')}"))
    assert cli.COMMAND_MODULES["plan"] == "plan" and plan.cmd_plan


def test_compare_loss_bands_carry_the_extrapolation_component(capsys):
    out = run_json(capsys, ["compare", "8B:15T", "70B:1.4T", "--queries", "1e10", "--tokens-per-query", "500"])
    assert out["uncertainty"] == "extrapolation"
    post = chinplan.default_posterior()
    n, d = np.array([8e9, 70e9]), np.array([15e12, 1.4e12])
    mean, _ = post.sample_log_loss(np.log(n), np.log(d), key=jax.random.key(0))
    for i, design in enumerate(out["designs"]):
        np.testing.assert_allclose(design["loss"], np.quantile(np.exp(mean[:, i]), [0.05, 0.5, 0.95]), rtol=1e-5)
        assert design["extrapolation"]["decades"] == pytest.approx(float(post.extrapolation(n[i], d[i]).decades), rel=1e-9)
    law = run_json(capsys, ["compare", "8B:15T", "70B:1.4T", "--queries", "1e10", "--tokens-per-query", "500", "--uncertainty", "law"])
    for a, b in zip(out["designs"], law["designs"]):
        assert a["loss"][2] - a["loss"][0] > b["loss"][2] - b["loss"][0]  # wider beyond the data
        assert a["dollars"] == b["dollars"]  # a fixed design's cost does not depend on the law
