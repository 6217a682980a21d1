"""``chinplan validate --ladders``: the shipped isoFLOP ladders of Porian et al. 2024, and the
command against :func:`chinplan.inference.ladders.backtest` called directly."""

import contextlib
import hashlib
import io
import json
import pathlib
import re
from importlib import resources

import numpy as np
import pytest

from chinplan import datasets
from chinplan.cli import main, render
from chinplan.cli.ladders import ladder_lines
from chinplan.inference import ladders

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DATA = pathlib.Path(__file__).resolve().parent / "data" / "validate_ladders"

#: The smallest ladder: 88 runs, 5 budgets fitted (53 runs), 7 isoFLOP minima held out.
LADDER = "OWT2/short-wu+cosine"
#: NUTS settings of the command's test: 1 chain of 100 warm-up steps and 100 draws. The test
#: checks that the command and the library give the same numbers from the same fits and that
#: the table is whole, not that the bands are calibrated, so a few draws suffice (100 of them
#: still give every quantile of QUANTILES its own draws). One chain leaves the convergence gate
#: nothing to retry but divergences (one chain has no R-hat, and more chains are added for a
#: low ESS only when nothing else failed). The fits then run in about 2 s; the test's ~30 s are
#: compiling the sampler for this ladder's 53 runs and the fold refits, and 2 x 4 s scoring.
NUTS = ["--chains", "1", "--warmup", "100", "--samples", "100"]
FIT_OPTIONS = {"num_chains": 1, "num_warmup": 100, "num_draws": 100}


def run(argv):
    """(exit code, stdout, stderr) of ``chinplan ARGV`` run in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_the_porian_ladders_are_shipped_unchanged():
    data = datasets.porian_path().read_bytes()
    assert hashlib.sha256(data).hexdigest() == datasets.PORIAN_SHA256
    note = (resources.files(datasets) / "SOURCE-porian.md").read_bytes()
    if (SHARED / "porian_isoflops.csv").exists():  # a checkout beside the shared data: the same bytes
        assert data == (SHARED / "porian_isoflops.csv").read_bytes()
        assert note == (SHARED / "SOURCE-porian.md").read_bytes()
    runs = datasets.porian()
    assert len(runs) == 1745 and runs["ladder"].nunique() == 15
    assert runs.groupby("ladder")["loss_kind"].first().value_counts().to_dict() == {"validation": 8, "train": 7}
    assert all(runs[c].dtype == np.float64 for c in ("params", "tokens", "budget", "loss", "flops"))
    np.testing.assert_allclose(runs["flops"], runs["budget"], rtol=1e-8)
    np.testing.assert_allclose(np.sort(runs["budget"].unique()), 1.25e16 * 2.0 ** np.arange(12), rtol=1e-12)
    sizes = runs.groupby(["ladder", "budget"]).size()
    assert sizes.min() == 5 and sizes.max() == 16
    # the back-test's ladders: the 8 validation-loss ones by name, then Chinchilla's runs
    names = ladders.ladder_names()
    assert names[-1] == "chinchilla" and sorted(names[:-1]) == names[:-1] and len(names) == 9
    assert ladders.short("porian:OWT2|short-warmup+cosine") == LADDER


def _comparable(results: dict) -> dict:
    """The results without wall times and where each fit came from."""
    out = render.jsonable({k: v for k, v in results.items() if k not in ("meta", "ladders")})
    for fit in out["fits"].values():
        for key in ("fit_wall_s", "from_cache"):
            fit.pop(key)
    return out


def test_the_command_prints_what_the_library_computes(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    cache = str(tmp_path / "fits")
    code, out, err = run(["validate", "--ladders", LADDER, *NUTS, "--cache", cache, "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ladders"] == [LADDER] and list(doc["fits"]) == ["porian:OWT2|short-warmup+cosine"]
    assert doc["meta"]["seed"] == ladders.SEED and doc["meta"]["nuts"] == {"chains": 1, "samples": 100, "warmup": 100}
    pooled = doc["allocation"]["new default"]["pooled"]
    assert pooled["n"] == doc["fits"]["porian:OWT2|short-warmup+cosine"]["heldout_minima"] > 0
    assert len(list(pathlib.Path(cache).glob("*.nc"))) == 1  # the fit kept for the next run
    # the library on the same fit (read back from the cache): the same numbers, to the bit
    direct = ladders.backtest([LADDER], cache=cache, seed=ladders.SEED, fit_options=FIT_OPTIONS)
    assert direct.results["meta"]["cached"] == 1
    assert _comparable(doc) == _comparable(direct.results)
    # the table, from the cache: within 80 columns, with the JSON's numbers
    code, out, err = run(["validate", "--ladders", LADDER, *NUTS, "--cache", cache])
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= render.WIDTH and "…" not in out, out
    cover = "/".join(f"{pooled[f'cov{q:g}']:.2f}" for q in ladders.LEVELS)
    assert re.search(rf"│ new default +│ +{pooled['n']} │ +{cover} │", out), out
    assert "fits converged: " in out and "1 of 1 fits from --cache" in " ".join(out.split())
    assert "1 of 1 OWT2/short-wu+cosine" in err and "from --cache" in err  # progress, a line per ladder


def test_the_full_table_fits_80_columns(monkeypatch, capsys):
    """The 9 ladders' results of docs/CALIBRATION.md as the command prints them."""
    monkeypatch.setenv("COLUMNS", "80")
    results = json.loads((DATA / "student_t.json").read_text())
    render.print_tables(ladder_lines(results))
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= render.WIDTH and "…" not in out, out
    text = " ".join(out.split())
    for which in ladders.PREDICTIVES:
        pooled = results["allocation"][which]["pooled"]
        cover = "/".join(f"{pooled[f'cov{q:g}']:.2f}" for q in ladders.LEVELS)
        assert re.search(rf"│ {re.escape(which)} +│ +{pooled['n']} │ +{cover} │", out), which
    converged = sum(fit["converged"] for fit in results["fits"].values())
    assert f"fits converged: {converged} of 9" in text


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--ladders", "nope"], "--ladders 'nope': no such ladder; choose from OWT2/long-wu+long-cosine, "),
        (["--ladders", "chinchilla", "--threshold", "1e20"], "--threshold does not apply to --ladders"),
        (["--ladders", "--levels", "0.9"], "--levels does not apply to --ladders"),
        (["--cache", "/tmp/nowhere"], "--cache '/tmp/nowhere' applies to --ladders only"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(argv, says):
    code, out, err = run(["validate", *argv])
    assert code == 2 and out == "" and err.count("\n") == 1 and says in err, err
