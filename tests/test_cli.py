"""The command line: runs end to end on the embedded default, clear errors, exit codes."""

import json
import subprocess
import sys

import pytest

from chinplan.cli import human_count, human_flops, main


def test_plan_json_matches_the_library(capsys):
    import numpy as np

    import chinplan
    from chinplan.cli import plan_bands

    assert main(["plan", "--compute", "5.76e23", "1e24", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["compute"] for p in out["plans"]] == [5.76e23, 1e24]
    direct = plan_bands(chinplan.default_posterior(), [5.76e23, 1e24], [0.05, 0.5, 0.95])
    np.testing.assert_allclose(out["plans"][1]["n"], direct["n"][:, 1])
    # Explicit per-draw oracle for the median of N* at 5.76e23
    post = chinplan.default_posterior()
    n = np.asarray(chinplan.compute_optimal(post.params, 5.76e23).n, np.float64)
    np.testing.assert_allclose(out["plans"][0]["n"][1], np.quantile(n, 0.5), rtol=1e-5)
    lo, med, hi = out["plans"][0]["tokens_per_param"]
    assert lo < med < hi


def test_plan_table(capsys):
    assert main(["plan", "--compute", "5.76e23"]) == 0
    out = capsys.readouterr().out
    assert "5.76e23 FLOPs" in out and "B" in out and "T" in out


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["plan", "--compute", "-1"], 2, "must be a finite positive number"),
        (["plan", "--compute", "nan"], 2, "must be a finite positive number"),
        (["plan", "--compute", "abc"], 2, "is not a number"),
        (["plan"], 2, "--compute"),
        (["plan", "--compute", "1e24", "--posterior", "/no/such.nc"], 1, "does not exist"),
        (["plan", "--compute", "1e24", "--quantiles", "1.5"], 1, "quantiles"),
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


def test_fit_command_writes_a_posterior(tmp_path, capsys):
    import chinplan

    runs = tmp_path / "runs.csv"
    chinplan.datasets.chinchilla().to_csv(runs, index=False)
    out = tmp_path / "post.nc"
    code = main(["fit", str(runs), "-o", str(out), "--draws", "100", "--warmup", "100", "--chains", "1", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["summary"]) >= {"E", "alpha", "beta"}
    assert chinplan.Posterior.load(out).num_draws == 100


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "chinplan.cli", "plan", "--compute", "1e23", "--json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["plans"][0]["compute"] == 1e23


def test_human_formats():
    assert human_count(70e9) == "70B"
    assert human_count(1.4e12) == "1.4T"
    assert human_count(float("inf")) == "inf"
    assert human_flops(5.76e23) == "5.76e23 FLOPs"
    assert human_flops(1e24) == "1e24 FLOPs"
