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
