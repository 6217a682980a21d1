"""Issue 26, the leftovers of the third adversarial pass: dot-file outputs and the free space a
fit needs checked before NUTS (class 3), convergence recomputed from a posterior file's draws
and ``tco`` bounded in memory (class 4), environments and garbled messages (class 8)."""

import os
import re

import numpy as np
import pytest

from chinplan import _files
from chinplan.cli import main
from test_issue14 import run
from test_resume import ARGS, SCENARIOS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----- class 3: outputs only where they belong ----------------------------------------------
@pytest.mark.parametrize("name", [".csv", ".runs.CSV"])
def test_a_dot_file_ending_in_csv_is_a_csv_output(tmp_path, capsys, name):
    assert _files.suffix_of(tmp_path / name, (".parquet", ".nc", ".csv")) == ".csv"
    (tmp_path / "s.toml").write_text(SCENARIOS)
    code, out, err = run(capsys, ["sweep", str(tmp_path / "s.toml"), "-o", str(tmp_path / name), *ARGS])
    assert code == 0, err
    assert (tmp_path / name).read_text().startswith("compute,queries,")  # written as CSV
    assert not (tmp_path / f"{name}.parts").exists()


def test_a_suffix_alone_is_not_mistaken_for_one_it_lacks(tmp_path):
    for path, suffixes in (("out.csvx", (".csv",)), ("csv", (".csv",)), ("dir.csv/out", (".csv",)), ("a.png.txt", (".png", ".svg"))):
        with pytest.raises(_files.OutputPathError, match=rf"^-o '{path}' must end in {suffixes[0]}"):
            _files.check_suffix(path, suffixes, "-o")


def test_fit_refuses_an_output_on_a_full_disk_before_nuts(tmp_path, monkeypatch, capsys):
    import collections
    import shutil

    from chinplan.cli import fit as cli_fit

    monkeypatch.setattr(cli_fit, "fit", lambda *a, **k: pytest.fail("fit sampled before checking the free space"))
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, (1 << 30) - 4096, 4096))
    runs = os.path.join(ROOT, "chinplan", "datasets", "svg_extracted_data.csv")
    code, out, err = run(capsys, ["fit", runs, "-o", str(tmp_path / "post.nc"), "--samples", "1000", "--chains", "4"])
    assert code == 1 and err.count("\n") == 1, err
    assert "-o/--output: not enough space" in err and "4096 free" in err
    assert not (tmp_path / "post.nc").exists()


# ----- class 4: convergence recomputed from the draws, not read from an attribute -------------
def _posterior_file(tmp_path, name, edit):
    """The shipped posterior, edited by ``edit(idata)`` (which returns the new one), written to a file
    with no ``converged`` attribute (missing was taken as converged)."""
    import chinplan

    idata = edit(chinplan.default_posterior().to_arviz().copy())
    idata.posterior.attrs.pop("converged", None)
    idata.posterior.attrs.pop("fit_attempts", None)
    path = tmp_path / name
    idata.to_netcdf(str(path), engine="h5netcdf")
    return path


def _chains_apart(idata):
    post = idata.posterior.copy()
    shift = np.zeros(post["alpha"].shape)
    shift[0] = 0.02  # chain 0 sits elsewhere: R-hat far above 1.01
    post["alpha"] = post["alpha"] + shift.astype(post["alpha"].dtype)
    idata.posterior = post
    return idata


def test_the_shipped_posterior_passes_the_gate_it_is_trusted_without():
    import chinplan

    assert chinplan.default_posterior().convergence_problems() == []


@pytest.mark.parametrize("fast", [True, False])
def test_chains_that_disagree_are_found_from_the_draws_whatever_the_file_says(tmp_path, capsys, fast):
    from chinplan.cli import inputs

    path = _posterior_file(tmp_path, "apart.nc", _chains_apart)
    posterior = inputs.read_posterior(str(path), fast=fast)
    assert isinstance(posterior, inputs.FileDraws) is fast and "converged" not in posterior.attrs
    inputs.check_convergence(posterior, str(path))
    err = capsys.readouterr().err
    assert re.search(r"^chinplan: warning: the posterior did not converge \(alpha: R-hat \d\.\d{3} > 1\.01", err), err
    assert err.count("\n") == 1 and "not to be trusted" in err


def test_the_command_line_warns_of_an_unconverged_file_and_of_one_chain(tmp_path, capsys):
    apart = _posterior_file(tmp_path, "apart.nc", _chains_apart)
    code, out, err = run(capsys, ["plan", "--compute", "1e24", "--posterior", str(apart)])
    assert code == 0 and "alpha: R-hat" in err and "not to be trusted" in err, err
    one = _posterior_file(tmp_path, "one.nc", lambda idata: idata.isel(chain=[0]))
    code, out, err = run(capsys, ["plan", "--compute", "1e24", "--posterior", str(one)])
    assert code == 0, err
    assert f"--posterior {one} holds 1 chain: R-hat compares chains, so its convergence cannot be checked" in err
    assert "R-hat nan" not in err


def _tco_draws(num_draws):
    import chinplan
    import jax
    import jax.numpy as jnp

    from chinplan import deployment
    from chinplan.decide import risk

    law = chinplan.default_posterior().extrapolated_params("law").law
    law = jax.tree.map(lambda x: jnp.resize(x, (num_draws,)), law)  # the shipped draws, repeated
    chosen, _ = deployment.build_deployment(hardware="h100", precision="bf16", queries=1e10, input_tokens=400, output_tokens=100)
    return risk.draw_pairs(law, chosen, key=jax.random.key(0))


def test_tco_on_the_largest_posterior_a_file_may_hold_needs_bounded_working_memory():
    """The issue measured ``tco`` asking 56 GB for 20M draws and about 4.5 GB for the largest
    legitimate posterior. Files now hold at most MAX_DRAWS (1.6M) draws, and the engine's
    per-chunk program (one scenario per chunk at that size) for tco's per-draw solve and its
    bands needs, by XLA's own accounting of the compiled program, a bounded number of bytes
    a draw: checked here at the default chunk width for that many draws."""
    from chinplan.engine import kernels, reductions
    from chinplan.inference.posterior_file import MAX_DRAWS

    width = max(reductions._MIN_CHUNK_WIDTH, reductions._default_chunk_size(MAX_DRAWS, 1))
    params = reductions._prepare_params(_tco_draws(MAX_DRAWS))[0]
    chunk = (np.zeros(width, np.float32), (np.full(width, 2.0),))
    kernel = reductions._chunk_function.__wrapped__(kernels.tco_kernel("cost"), "quantiles", ((0.05, 0.5, 0.95), "omit"), 1)
    memory = kernel.lower(params, chunk, ()).compile().memory_analysis()
    assert width == 2 and memory.temp_size_in_bytes < 400 * width * MAX_DRAWS, memory.temp_size_in_bytes / MAX_DRAWS


@pytest.mark.parametrize("optimum", ["cost", "flops"])
def test_tco_bands_do_not_depend_on_the_chunk_size_not_even_a_chunk_of_one(optimum):
    """A one-scenario chunk compiled as scalar code rounded tco's optimum differently (up to
    2e-6 relative in 20 of 21 outputs) from the vector code of any wider chunk."""
    from chinplan.decide import risk

    theta = _tco_draws(3000)
    targets = [2.1, 2.0, 1.95]
    reference = jax_leaves(risk.tco_bands(theta, targets, optimum=optimum))
    for chunk_size in (1, 2, 3):
        for a, b in zip(jax_leaves(risk.tco_bands(theta, targets, optimum=optimum, chunk_size=chunk_size)), reference):
            np.testing.assert_array_equal(a, b)


def test_a_tco_target_gets_the_same_digits_alone_or_with_another(capsys):
    import json

    base = ["tco", "--queries", "1e10", "--tokens-per-query", "500", "--hardware", "h100", "--json", "--target-loss"]
    code, alone, err = run(capsys, [*base, "2.0"])
    assert code == 0, err
    code, both, err = run(capsys, [*base, "2.0", "1.9"])
    assert code == 0, err
    assert json.loads(alone)["targets"][0] == json.loads(both)["targets"][0]


def jax_leaves(tree):
    import jax

    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


# ----- class 8: garbled messages ---------------------------------------------------------------
@pytest.mark.parametrize("cell, index, says", [
    (-1.0, [0.0, 1.0, 36742300.0], r"^column 'params', row 36742300: value -1\.0 must be positive$"),
    (np.nan, None, r"^column 'params', row 2: value nan is not finite$"),
    ("SERIES", None, r"^column 'params', row 2: value a Series of 2 values is not a number$"),
    ("y" * 100, None, r"^column 'params', row 2: value 'y{50}'\.\.\. \(100 characters\) is not a number$"),
], ids=["whole-float-row", "nan", "series-cell", "long-text"])  # fmt: skip
def test_a_bad_cell_is_named_in_one_short_line_by_its_row_and_value(cell, index, says):
    import pandas as pd

    from chinplan.inference.runs import load_runs

    cell = pd.Series([1, 2]) if isinstance(cell, str) and cell == "SERIES" else cell
    frame = pd.DataFrame({"params": [1e8, 2e8, cell], "tokens": [1e9, 2e9, 3e9], "loss": [3.0, 2.9, 2.8]}, index=index)
    with pytest.raises(ValueError, match=says) as caught:
        load_runs(frame, min_runs=1)
    assert "\n" not in str(caught.value) and "np.float64" not in str(caught.value)


# ----- class 8: environments -----------------------------------------------------------------
def _cli(args, env=None, shell_suffix=""):
    """``python -m chinplan.cli ARGS`` in a fresh process from this checkout (bytes out)."""
    import shlex
    import subprocess
    import sys

    environ = {**os.environ, "PYTHONPATH": ROOT, "CHINPLAN_CACHE": "0", **(env or {})}
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "chinplan.cli", *args]) + shell_suffix
    return subprocess.run(["sh", "-c", command], capture_output=True, env=environ, cwd=ROOT, check=False, timeout=300)


def test_a_closed_stdout_is_an_error_not_a_silent_success():
    done = _cli(["hardware"], shell_suffix=" >&-")
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode() == "chinplan: error: standard output is closed (>&-), so nothing can be written; run with stdout open, or redirect it to a file\n"


def test_a_backend_that_cannot_start_is_named_in_one_line():
    from jax._src import hardware_utils

    if hardware_utils.has_visible_nvidia_gpu():
        pytest.skip("a GPU is visible here: JAX_PLATFORMS=cuda starts")
    done = _cli(["plan", "--compute", "1e24"], env={"JAX_PLATFORMS": "cuda"})
    err = done.stderr.decode()
    assert done.returncode == 1 and done.stdout == b"" and err.count("\n") == 1, err
    assert err.startswith("chinplan: error: JAX_PLATFORMS='cuda': JAX could not start a backend (no device of that platform is visible)")
    assert "AssertionError" not in err and "JAX_PLATFORMS=cpu" in err


def test_a_non_ascii_label_under_an_ascii_stdout_prints_the_whole_table():
    done = _cli(["compare", "70B:1.4T", "café=1e9:2e10"], env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    out = done.stdout.decode("ascii")  # nothing but ASCII was written
    assert out.count("caf?") >= 2 and out.rstrip().endswith("law|extrapolation)"), out


@pytest.mark.parametrize("attrs, says", [
    ({"fit_attempts": "{bad", "converged": 0}, r"attribute 'fit_attempts' must be a JSON list of the fit's attempts .*got '\{bad'$"),
    ({"fit_attempts": '[{"problems": "alpha"}]'}, r"attribute 'fit_attempts' must be a JSON list"),
    ({"converged": "maybe"}, r"attribute 'converged' must be 0 or 1, got 'maybe'$"),
])  # fmt: skip
def test_a_fit_record_that_is_not_json_is_refused_naming_the_file(tmp_path, capsys, attrs, says):
    import chinplan
    from chinplan.inference.posterior import Posterior

    idata = chinplan.default_posterior().to_arviz().copy()
    idata.posterior.attrs.update(attrs)
    path = tmp_path / "record.nc"
    idata.to_netcdf(str(path), engine="h5netcdf")
    with pytest.raises(ValueError, match=says):
        Posterior.load(path)
    code, out, err = run(capsys, ["plan", "--compute", "1e24", "--posterior", str(path)])
    assert code == 1 and err.count("\n") == 1 and f"posterior file '{path}'" in err and re.search(says.rstrip("$"), err), err
    assert "Expecting" not in err



# ----- class 2: a signal while JAX is imported -------------------------------------------------
def test_a_signal_in_a_deferred_block_is_raised_when_the_block_ends():
    import signal

    finished = []
    with pytest.raises(KeyboardInterrupt):
        with _files.signals_unwind():
            with _files.signals_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                finished.append("import")  # not interrupted half-way
            finished.append("command")  # never reached: the signal ends the command here
    assert finished == ["import"]


@pytest.mark.parametrize("where, signame, code, line", [
    ("backend", "SIGTERM", 143, "chinplan: terminated\n"),
    ("import", "SIGINT", 130, "chinplan: interrupted\n"),
])  # fmt: skip
def test_a_signal_while_jax_loads_finishes_the_import_then_exits_with_one_line(monkeypatch, capsys, where, signame, code, line):
    import importlib
    import signal

    import chinplan.cli

    finished = []
    real_import = importlib.import_module

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), getattr(signal, signame))
        finished.append(where)
        return real_import(*args, **kwargs) if args else None

    if where == "backend":
        monkeypatch.setattr(chinplan.cli, "check_backend", signalled)
    else:
        monkeypatch.setattr(importlib, "import_module", signalled)
    assert main(["plan", "--compute", "1e24"]) == code
    captured = capsys.readouterr()
    assert finished == [where] and captured.err == line and captured.out == ""


def test_sweep_refuses_an_output_on_a_full_disk_before_the_work(tmp_path, monkeypatch, capsys):
    import collections
    import shutil

    from test_resume import FailAfter

    from chinplan import engine

    (tmp_path / "s.toml").write_text(SCENARIOS)
    monkeypatch.setattr(engine, "bands", FailAfter(0))  # any work at all would be a KeyboardInterrupt
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, (1 << 30) - 4096, 4096))
    code, out, err = run(capsys, ["sweep", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out.nc"), *ARGS])
    assert code == 1 and err.count("\n") == 1 and "-o/--output: not enough space" in err and "4096 free" in err, err
    assert sorted(os.listdir(tmp_path)) == ["s.toml"]


def test_an_xla_flag_xla_does_not_know_is_one_line_not_an_abort():
    done = _cli(["plan", "--compute", "1e24"], env={"XLA_FLAGS": "--bogus_flag"})
    err = done.stderr.decode()
    assert done.returncode == 1 and done.stdout == b"" and err.count("\n") == 1, err
    assert err == ("chinplan: error: XLA_FLAGS='--bogus_flag': XLA cannot start with it (Unknown flag in XLA_FLAGS: "
                   "--bogus_flag); remove that flag or unset XLA_FLAGS\n")  # fmt: skip
