"""Issue 26, the leftovers of the third adversarial pass: dot-file outputs and the free space a
fit needs checked before NUTS (class 3), convergence recomputed from a posterior file's draws
and ``tco`` bounded in memory (class 4), environments and garbled messages (class 8)."""

import os

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
