"""Issue 26: a suite that passes wherever a user runs it, and the third adversarial pass."""

import json
import os
import re
import stat
import warnings

import arviz as az
import jax
import numpy as np
import pandas as pd
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


# ----- class 1: a sweep's parts folder belongs to that sweep alone ---------------------------
from test_resume import ARGS, SCENARIOS, FailAfter  # noqa: E402

from chinplan import engine  # noqa: E402
from chinplan.cli import EXIT_INTERRUPTED, main  # noqa: E402
from chinplan.decide import resume  # noqa: E402
from chinplan.decide import sweep as _sweep  # noqa: E402


def _interrupted(tmp_path, monkeypatch, out, after=2):
    """A sweep of SCENARIOS (6 chunks) to ``out`` stopped by Ctrl-C after ``after`` chunks."""
    (tmp_path / "s.toml").write_text(SCENARIOS)
    monkeypatch.setattr(engine, "bands", FailAfter(after))
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(out), *ARGS]) == EXIT_INTERRUPTED
    monkeypatch.setattr(engine, "bands", FailAfter(None))


def test_sweep_never_deletes_foreign_files_in_its_parts_folder(tmp_path, capsys):
    out = tmp_path / "out.csv"
    parts = tmp_path / "out.csv.parts"
    parts.mkdir()
    (parts / "myscen.toml").write_text(SCENARIOS)
    (parts / "notes.txt").write_text("mine\n")
    code = main(["sweep", str(parts / "myscen.toml"), "-o", str(out), *ARGS])
    err = capsys.readouterr().err
    assert code != 0 and "parts folder" in err and "not a sweep chunk or manifest" in err, err
    assert sorted(os.listdir(parts)) == ["myscen.toml", "notes.txt"] and not out.exists()


def test_a_fresh_sweep_refuses_a_parts_folder_with_foreign_files_and_keeps_them(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.csv"
    _interrupted(tmp_path, monkeypatch, out)
    (tmp_path / "out.csv.parts" / "notes.txt").write_text("mine\n")
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(out), *ARGS]) != 0
    assert "notes.txt" in capsys.readouterr().err
    assert (tmp_path / "out.csv.parts" / "notes.txt").read_text() == "mine\n"
    os.unlink(tmp_path / "out.csv.parts" / "notes.txt")
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(out), *ARGS]) == 0  # only chunks: replaced
    assert not os.path.exists(tmp_path / "out.csv.parts") and not os.path.exists(tmp_path / "out.csv.parts.lock")


def test_checkpoint_remove_deletes_only_its_own_files(tmp_path):
    directory = str(tmp_path / "out.csv.parts")
    with resume.Checkpoint(directory, {"a": 1}, chunk=2, resume=False) as checkpoint:
        checkpoint.save(0, {"n": np.zeros((3, 2))})
        (tmp_path / "out.csv.parts" / "notes.txt").write_text("mine\n")  # appears mid-run
        checkpoint.remove()
    assert os.listdir(directory) == ["notes.txt"]


def test_two_sweeps_on_one_output_cannot_mix(tmp_path, monkeypatch, capsys):
    directory = str(tmp_path / "out.csv.parts")
    first = resume.Checkpoint(directory, {"a": 1}, chunk=2, resume=False)
    with pytest.raises(ValueError, match="another chinplan sweep is writing"):
        resume.Checkpoint(directory, {"a": 1}, chunk=2, resume=False)
    (tmp_path / "s.toml").write_text(SCENARIOS)
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out.csv"), *ARGS]) != 0
    assert "another chinplan sweep is writing" in capsys.readouterr().err
    first.close()
    with resume.Checkpoint(directory, {"a": 1}, chunk=2, resume=False):
        pass  # free again once the first let go
    # a fresh run reuses no chunk that appears in its folder: only those it saved itself
    with resume.Checkpoint(directory, {"a": 1}, chunk=2, resume=False) as checkpoint:
        os.makedirs(directory, exist_ok=True)
        np.savez(os.path.join(directory, "chunk-000000.npz"), n=np.ones((3, 2)))
        assert checkpoint.load(0) is None and checkpoint.done() == []


def test_the_scenarios_hash_is_of_the_bytes_parsed_even_through_a_pipe(tmp_path):
    import hashlib
    import threading

    fifo = tmp_path / "s.toml"
    os.mkfifo(fifo)
    data = SCENARIOS.encode()
    writer = threading.Thread(target=lambda: fifo.write_bytes(data))
    writer.start()
    scenarios = _sweep.load_scenarios(fifo)  # a pipe can be read once: the hash must not read it again
    writer.join(timeout=10)
    assert scenarios.sha256 == hashlib.sha256(data).hexdigest()


def test_resume_verifies_each_chunk_against_its_checksum(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.csv"
    _interrupted(tmp_path, monkeypatch, out)
    chunk = tmp_path / "out.csv.parts" / "chunk-000001.npz"
    with np.load(chunk) as saved:
        tampered = {name: saved[name] * 10 for name in saved.files}  # valid bands, wrong numbers
    np.savez(chunk, **tampered)
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(out), *ARGS, "--resume"]) != 0
    assert "chunk 1" in (err := capsys.readouterr().err) and "checksum" in err, err
    chunk.write_bytes(b"garbage, not an npz")
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(out), *ARGS, "--resume"]) != 0
    assert "checksum" in (err := capsys.readouterr().err) and "pickled" not in err, err
    assert not out.exists()


def test_resume_refuses_chunks_of_another_precision_or_jax(tmp_path, monkeypatch, capsys):
    import jax

    out = tmp_path / "out.csv"
    _interrupted(tmp_path, monkeypatch, out)
    with open(tmp_path / "out.csv.parts" / "manifest.json") as handle:
        manifest = json.load(handle)
    assert manifest["x64"] is bool(jax.config.jax_enable_x64) and manifest["jax_version"] == jax.__version__
    assert manifest["scenarios_sha256"] == resume.file_sha256(tmp_path / "s.toml") and len(manifest["chunks"]) == 2
    real = resume.numeric_settings
    monkeypatch.setattr(resume, "numeric_settings", lambda: {**real(), "x64": not real()["x64"]})
    assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(out), *ARGS, "--resume"]) != 0
    assert "different sweep (x64 was" in capsys.readouterr().err


# ----- classes 6 and 7: numbers that look valid and are not; tables read as written ----------
def test_a_scenario_file_with_a_utf8_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SCENARIOS.encode())
    scenarios = _sweep.load_scenarios(path)
    assert list(scenarios.axes) == ["compute", "queries"] and scenarios.shape == (7, 3)


def test_data_constrained_plan_names_the_quantile_it_warns_about():
    from chinplan.decide import data_constrained as dc

    post = dc.default_posterior()
    with pytest.warns(dc.EpochRangeWarning, match=r"^the 10% plan repeats the data") as record:
        dc.plan(post, 5.76e23, 5e9, q=(0.1, 0.9))
    assert not any("median" in str(w.message) for w in record)
    with pytest.warns(dc.EpochRangeWarning, match=r"^the median plan repeats"):
        dc.plan(post, 5.76e23, 5e9, q=(0.1, 0.5, 0.9))


def test_a_sweep_refuses_repeated_quantiles_and_outputs_instead_of_writing_fewer(tmp_path, capsys):
    for sweep_table, word in (("quantiles = [0.5, 0.5, 0.05, 0.0500000001]", "sweep.quantiles"), ("outputs = ['n', 'n', 'loss']", "sweep.outputs")):
        path = tmp_path / "dup.toml"
        path.write_text(f"[sweep]\n{sweep_table}\n" + SCENARIOS)
        assert main(["sweep", str(path), "-o", str(tmp_path / "out.csv"), *ARGS]) != 0
        assert word in capsys.readouterr().err and not (tmp_path / "out.csv").exists()


# ----- class 4: untrusted posterior files, values and not only structure ----------------------
def _crafted(tmp_path, name, *, group="posterior", attrs=None, **variables):
    """The shipped posterior with some values (or attributes of ``group``) replaced, written to a file."""
    idata = chinplan.default_posterior().to_arviz().copy()
    dataset = getattr(idata, group).copy()
    for key, value in variables.items():
        dataset[key] = (dataset[key].dims, np.broadcast_to(value, dataset[key].shape).copy())
    dataset.attrs.update(attrs or {})
    setattr(idata, group, dataset)
    path = tmp_path / name
    idata.to_netcdf(str(path), engine="h5netcdf")
    return path


@pytest.mark.parametrize("name, group, attrs, variables, match", [
    ("domain_low.nc", "extrapolation", {"extrapolation_domain": "[-30, -30, -30]"}, {}, r"'extrapolation_domain' \[-30.0, -30.0, -30.0\] is not the fitted runs'"),
    ("domain_huge.nc", "extrapolation", {"extrapolation_domain": "[1e300, 1e300, 1e300]"}, {}, r"'extrapolation_domain' .* is not the fitted runs'"),
    ("log_n_nan.nc", "constant_data", {}, {"log_n": np.nan}, r"variable 'constant_data/log_n'"),
    ("u_huge.nc", "extrapolation", {}, {"u": 1e30}, r"variable 'extrapolation/u'"),
    ("log_E_88.nc", "posterior", {}, {"log_E": 88.0}, r"variable 'posterior/log_E' has draws up to 88.*at most 10 x the largest fitted loss"),
    ("all_fixed.nc", "posterior", {"fixed_sites": "log_E,log_A,log_B,alpha,beta,sigma,nu"}, {}, r"attribute 'fixed_sites' names 'log_E'; only a data-constrained fit"),
])  # fmt: skip
def test_posterior_files_with_absurd_values_are_refused_on_load_and_by_the_cli(tmp_path, capsys, name, group, attrs, variables, match):
    path = _crafted(tmp_path, name, group=group, attrs=attrs, **variables)
    with pytest.raises(ValueError, match=match):
        Posterior.load(path)
    assert main(["plan", "--compute", "1e24", "--posterior", str(path)]) != 0  # the fast reader falls back, then refuses
    assert re.search(match, capsys.readouterr().err)


def test_a_data_constrained_fixed_site_must_not_vary(tmp_path):
    from chinplan.decide import data_constrained as dc

    idata = dc.default_posterior().to_arviz().copy()
    post = idata.posterior.copy()
    post.attrs["fixed_sites"] = "log_E"
    post["log_E"] = post["log_E"] + np.random.default_rng(0).normal(0, 0.01, post["log_E"].shape)
    idata.posterior = post
    with pytest.raises(ValueError, match=r"'fixed_sites' names 'log_E', whose draws vary"):
        Posterior(idata)


def test_a_sweep_estimates_its_cells_not_only_its_scenarios_before_any_work(tmp_path):
    path = tmp_path / "wide.toml"
    outputs = ", ".join(repr(name) for name in _sweep.SWEEP_OUTPUTS)
    levels = ", ".join(f"{v:.4f}" for v in np.linspace(0, 1, 1001))
    path.write_text(f"[sweep]\noutputs = [{outputs}]\nquantiles = [{levels}]\n[grid]\ncompute = {{logspace = [20, 24, 200]}}\nqueries = {{logspace = [6, 12, 200]}}\n"
                    "[deployment]\ninput_tokens = 400\noutput_tokens = 100\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"^wide\.toml: the sweep's 40,000 scenarios x \d+ outputs x 1001 quantiles would need about .* band cells, more than the limit"):
        _sweep.load_scenarios(path)


# ----- class 3: outputs only where they belong (every writing command, before any work) -------
def test_sweep_refuses_a_package_file_a_fifo_and_a_read_only_output_before_the_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text(SCENARIOS)
    monkeypatch.setattr(engine, "bands", FailAfter(0))  # any work at all would be a KeyboardInterrupt
    package_csv = os.path.join(os.path.dirname(chinplan.__file__), "datasets", "runs.csv")
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "pipe", tmp_path / "out.csv")
    locked = tmp_path / "locked.csv"
    locked.write_text("previous\n")
    locked.chmod(0o444)
    for output, says in ((package_csv, "inside the chinplan package"), (tmp_path / "out.csv", "is a FIFO"), (locked, "is read-only")):
        assert main(["sweep", str(tmp_path / "s.toml"), "-o", str(output), *ARGS]) == 2
        assert says in capsys.readouterr().err
    assert locked.read_text() == "previous\n" and not os.path.exists(package_csv)
    assert os.path.islink(tmp_path / "out.csv") and stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


# ----- class 2 (in part): SIGHUP unwinds like SIGTERM -------------------------------------------
@pytest.mark.parametrize("stub", ["compute", "write"])
def test_sighup_leaves_no_temporary_and_no_lock(tmp_path, stub):
    import signal as _signal

    from test_faults import COMMANDS, SWEEP_TOML, listing, run_cli, wait_ready

    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    (tmp_path / "out.nc").write_bytes(b"the previous output")
    process = run_cli(COMMANDS["sweep"](tmp_path), stub=stub)
    wait_ready(process)
    process.send_signal(_signal.SIGHUP)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 129 and "hung up" in err, err  # 128 + SIGHUP, one line, not -1 (killed)
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""
    assert (tmp_path / "out.nc").read_bytes() == b"the previous output"
    left = [n for n in listing(tmp_path) if n not in ("s.toml", "out.nc", "out.nc.parts")]
    assert left == [], left  # no hidden temporary, no lock file
    if (tmp_path / "out.nc.parts").exists():  # finished chunks stay for --resume, never a temporary
        assert all(n == "manifest.json" or n.endswith(".npz") for n in listing(tmp_path / "out.nc.parts"))


def test_an_ignored_sighup_stays_ignored_under_nohup():
    import signal as _signal

    from chinplan import _files

    before = _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    try:
        with _files.signals_unwind():
            assert _signal.getsignal(_signal.SIGHUP) is _signal.SIG_IGN
        _signal.signal(_signal.SIGHUP, _signal.SIG_DFL)
        with _files.signals_unwind():
            assert _signal.getsignal(_signal.SIGHUP) is not _signal.SIG_DFL  # handled when not ignored
        assert _signal.getsignal(_signal.SIGHUP) is _signal.SIG_DFL  # and given back
    finally:
        _signal.signal(_signal.SIGHUP, before)


# ----- class 5: the NUTS cap scales with the number of runs -------------------------------------
def test_the_nuts_iteration_cap_scales_with_the_number_of_runs():
    from unittest import mock

    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(7, 10, 1_000_000)
    many = pd.DataFrame({"params": n, "tokens": 20 * n * rng.uniform(0.5, 2, n.size), "loss": rng.uniform(2, 4, n.size)})
    with mock.patch("chinplan.fit.sample_nuts", side_effect=RuntimeError("fit started sampling")):
        # the defaults (4 chains x (1,000 + 1,000)) on a million runs: about 8,000 iterations x 4,082 times the work
        with pytest.raises(ValueError, match=r"on 1,000,000 runs that is 3\.27e\+07 iterations as on 245\).*NUTS iterations, more than the limit of 1e\+07"):
            chinplan.fit(many, key=jax.random.key(0), num_chains=4, num_warmup=1000, num_draws=1000)
        with pytest.raises(RuntimeError, match="fit started sampling"):  # the same fit on the 245 embedded runs starts
            chinplan.fit(chinplan.datasets.chinchilla(), key=jax.random.key(0), num_chains=4, num_warmup=1000, num_draws=1000)


def test_a_posterior_of_more_draws_than_a_fit_makes_is_refused_before_any_value_is_read(tmp_path):
    import h5py

    from chinplan.inference import posterior_file

    path = tmp_path / "many.nc"
    with h5py.File(path, "w") as handle:  # declared, never written: a few KB on disk
        handle.create_dataset("posterior/alpha", shape=(1, posterior_file.MAX_DRAWS + 1), dtype="<f4", chunks=(1, 65536), compression="gzip")
    with pytest.raises(ValueError, match=r"variable 'posterior/alpha' holds 1,600,001 draws, more than 1,600,000"):
        Posterior.load(path)
    assert os.path.getsize(path) < 1 << 20


# ----- class 6, the command line: no inf cost as a result, no quantile called the median -------
def test_compare_refuses_a_design_whose_flops_overflow(capsys):
    assert main(["compare", "1e30:1e30", "70B:1.4T"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "design 1e30:1e30" in err and "training FLOPs" in err and "$inf" not in err


def test_non_default_quantiles_are_never_called_the_median(capsys):
    args = ["tco", "--target-loss", "2.0", "--queries", "1e10", "--tokens-per-query", "500", "--hardware", "h100", "--quantiles", "0.1", "0.9"]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "median" not in out and "the 10% quantile plan (" in out
    assert main(["smallest", "--target-loss", "2.0", "--tokens", "1.4T", "--quantiles", "0.25", "0.75"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "at the median" not in out and "at the 25% quantile" in out
