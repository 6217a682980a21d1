"""Issue 23, the command line's part: look-ups without JAX, missing files refused before JAX,
the compilation cache and saved programs, the draws read once with h5py, one sorting network
for every output, a spinner only on a terminal. No timing assertions here: the seconds live
in benchmarks/bench_cli.py."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
import chinplan.cli as cli
from chinplan.cli import inputs, main, render
from chinplan.engine import programs, reductions
from chinplan.inference import posterior_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """``python -c code`` with this checkout first on the path."""
    environ = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=cwd or ROOT, check=False)


MAIN_WITHOUT_JAX = """
import sys
from chinplan.cli import main
try:
    code = main({argv!r})
except SystemExit as exit:
    code = exit.code
print("JAX LOADED" if "jax" in sys.modules else "NO JAX", code)
"""


# --------------------------------------------------------------------------------------
# Look-ups and refusals without JAX
# --------------------------------------------------------------------------------------


def test_hardware_runs_without_jax():
    done = run_python(MAIN_WITHOUT_JAX.format(argv=["hardware", "--sources"]))
    assert done.stdout.strip().endswith("NO JAX 0"), done.stdout + done.stderr
    assert "h100-sxm" in done.stdout and "a100-80gb" in done.stdout
    assert cli.COMMAND_MODULES["hardware"] == "render"


def test_hardware_json_is_unchanged(capsys):
    assert main(["hardware", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["h100"]["alias_of"] == "h100-sxm" and table["h100-sxm"]["bf16"] == pytest.approx(989e12, rel=1e-3)


@pytest.mark.parametrize("command", [[], ["plan"], ["tco"], ["compare"], ["smallest"], ["fit"], ["validate"], ["sweep"],
                                     ["plot"], ["next-runs"], ["hardware"]])  # fmt: skip
def test_every_help_loads_no_jax(command):
    done = run_python(MAIN_WITHOUT_JAX.format(argv=[*command, "--help"]))
    assert done.stdout.strip().endswith("NO JAX 0"), done.stdout[-500:] + done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "--compute", "1e24", "--posterior", "/no/such.nc"], "error: posterior file '/no/such.nc' does not exist"),
        (["tco", "--target-loss", "2", "--posterior", "/no/such.nc"], "error: posterior file '/no/such.nc' does not exist"),
        (["plan", "--compute", "1e24", "--posterior", "."], "error: posterior file '.' is a directory, not a NetCDF file"),
        (["plan", "--compute", "1e24", "--posterior", "EMPTY"], "is empty (0 bytes), not a readable chinplan posterior"),
        (["fit", "/no/such.csv", "-o", "x.nc"], "error: runs file '/no/such.csv' does not exist"),
        (["validate", "/no/such.csv"], "error: runs file '/no/such.csv' does not exist"),
        (["validate", "EMPTY"], "is empty"),
    ],
)
def test_missing_inputs_are_refused_before_jax(argv, message, tmp_path):
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    argv = [str(empty) if a == "EMPTY" else a for a in argv]
    done = run_python(MAIN_WITHOUT_JAX.format(argv=argv), cwd=str(tmp_path))
    assert done.stdout.strip() == "NO JAX 1", done.stdout + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_readers_give_the_same_messages(tmp_path):
    """The refusal before JAX and the library's readers say the same thing."""
    with pytest.raises(ValueError, match="posterior file '/no/such.nc' does not exist"):
        chinplan.Posterior.load("/no/such.nc")
    with pytest.raises(ValueError, match="is a directory, not a NetCDF file"):
        chinplan.Posterior.load(str(tmp_path))
    with pytest.raises(ValueError, match=r"runs file '/no/such.csv' does not exist"):
        chinplan.load_runs("/no/such.csv")


# --------------------------------------------------------------------------------------
# The compilation cache: the command line's, never the library's
# --------------------------------------------------------------------------------------


def test_cache_dir_follows_the_environment(tmp_path):
    home = os.path.expanduser("~")
    assert cli.cache_dir({}) == os.path.join(home, ".cache", "chinplan", "jax")
    assert cli.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == os.path.join(str(tmp_path), "chinplan", "jax")
    assert cli.cache_dir({"XDG_CACHE_HOME": "/x", "CHINPLAN_CACHE_DIR": str(tmp_path / "c")}) == str(tmp_path / "c")
    for off in ("0", "false", "off", "no"):
        assert cli.cache_dir({"CHINPLAN_CACHE": off, "CHINPLAN_CACHE_DIR": str(tmp_path)}) is None
    assert cli.cache_dir({"CHINPLAN_CACHE": "1", "CHINPLAN_CACHE_DIR": str(tmp_path)}) == str(tmp_path)


def test_the_library_leaves_the_jax_config_alone():
    done = run_python("import chinplan, jax; chinplan.default_posterior(); print(repr(jax.config.jax_compilation_cache_dir))",
                      env={"CHINPLAN_CACHE": "1"})  # fmt: skip
    assert done.stdout.strip() in ("None", "''"), done.stdout + done.stderr


COUNTED_RUN = """
import json, sys, jax
from chinplan.cli import main
seen = []  # JAX reports a backend compilation's duration even when the cache answered it
jax.monitoring.register_event_listener(lambda event, **kw: seen.append(event))
code = main({argv!r})
misses, hits = seen.count("/jax/compilation_cache/cache_misses"), seen.count("/jax/compilation_cache/cache_hits")
print(json.dumps({{"code": code, "compiles": misses, "hits": hits, "cache": jax.config.jax_compilation_cache_dir}}), file=sys.stderr)
"""


def _counted(argv, env):
    done = run_python(COUNTED_RUN.format(argv=argv), env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_call_compiles_nothing(tmp_path):
    """The first call fills the cache (compiled programs and the engine's saved programs);
    the second, in a new process, compiles nothing (every program a cache hit) and prints the
    same bits."""
    cache = tmp_path / "cache"
    env = {"CHINPLAN_CACHE": "1", "CHINPLAN_CACHE_DIR": str(cache)}
    argv = ["tco", "--target-loss", "2.0", "--queries", "1e9", "--tokens-per-query", "500", "--draws", "200", "--json"]
    first, stats = _counted(argv, env)
    assert stats["code"] == 0 and stats["compiles"] > 0 and stats["cache"] == str(cache)
    assert any(cache.iterdir()) and any((cache / cli.PROGRAMS).glob("*.program"))
    second, stats = _counted(argv, env)
    assert stats["compiles"] == 0 and stats["hits"] > 0
    assert second == first


def test_cache_off_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    out, stats = _counted(["plan", "--compute", "1e24", "--draws", "100"], {"CHINPLAN_CACHE": "0", "CHINPLAN_CACHE_DIR": str(cache)})
    assert stats["code"] == 0 and not cache.exists() and not stats["cache"]


def test_a_callers_cache_is_kept(tmp_path):
    """JAX_COMPILATION_CACHE_DIR set by the caller wins over the command line's directory."""
    theirs = tmp_path / "theirs"
    _, stats = _counted(["plan", "--compute", "1e24", "--draws", "100"],
                        {"CHINPLAN_CACHE": "1", "CHINPLAN_CACHE_DIR": str(tmp_path / "ours"), "JAX_COMPILATION_CACHE_DIR": str(theirs)})  # fmt: skip
    assert stats["cache"] == str(theirs) and not (tmp_path / "ours").exists()


# --------------------------------------------------------------------------------------
# Saved programs (engine): traced once per machine, same bits
# --------------------------------------------------------------------------------------

TRACES = []


def _two_outputs(theta, n, d):
    TRACES.append(1)  # runs once per trace
    loss = chinplan.loss(theta, n, d)
    return {"loss": loss, "double": 2.0 * loss, "finite": jnp.isfinite(loss).astype(jnp.float32)}


@pytest.fixture
def program_dir(tmp_path):
    programs.set_program_cache(tmp_path / "programs")
    reductions._chunk_function.cache_clear()
    yield tmp_path / "programs"
    programs.set_program_cache(None)
    reductions._chunk_function.cache_clear()


def test_saved_programs_skip_tracing_and_keep_the_bits(program_dir):
    params = chinplan.default_posterior().params
    n, d = np.logspace(8, 11, 7), np.logspace(10, 13, 7)
    programs.set_program_cache(None)
    expected = reductions.bands(_two_outputs, params, n, d)
    programs.set_program_cache(program_dir)
    reductions._chunk_function.cache_clear()
    TRACES.clear()
    first = reductions.bands(_two_outputs, params, n, d)
    assert TRACES and list(program_dir.glob("*.program"))
    programs.set_program_cache(program_dir)  # a new process: nothing in memory
    reductions._chunk_function.cache_clear()
    TRACES.clear()
    second = reductions.bands(_two_outputs, params, n, d)
    assert not TRACES  # read back, not traced
    for result in (first, second):
        for name in ("loss", "double", "finite"):
            np.testing.assert_array_equal(np.asarray(result.values[name]), np.asarray(expected.values[name]))
            np.testing.assert_array_equal(np.asarray(result.nan_fraction[name]), np.asarray(expected.nan_fraction[name]))


def test_a_saved_program_that_cannot_run_is_replaced(program_dir, monkeypatch):
    """A file that deserialises but that XLA cannot run (seen on CPU: "NOT_FOUND: Function
    multiply_add_fusion.1" from a cache shared by checkouts of different code) costs a
    recompilation, not the command: the answer is the kernel's and the file goes."""
    from jax.experimental import serialize_executable

    params = chinplan.default_posterior().params
    n, d = np.logspace(8, 11, 7), np.logspace(10, 13, 7)
    expected = reductions.bands(_two_outputs, params, n, d)  # writes the program
    saved = list(program_dir.glob("*.program"))
    assert saved

    def broken(*args, **kwargs):
        def run(*a):
            raise jax.errors.JaxRuntimeError("NOT_FOUND: Function multiply_add_fusion.1")

        return run

    monkeypatch.setattr(serialize_executable, "deserialize_and_load", broken)
    programs.set_program_cache(program_dir)  # a new process: nothing in memory
    reductions._chunk_function.cache_clear()
    got = reductions.bands(_two_outputs, params, n, d)
    for name in ("loss", "double", "finite"):
        np.testing.assert_array_equal(np.asarray(got.values[name]), np.asarray(expected.values[name]))
    assert not any(path.exists() for path in saved)


def test_only_stable_kernels_are_saved(program_dir):
    import functools

    from chinplan.engine import kernels

    assert programs._stable_name(kernels.design_point) == "chinplan.engine.kernels:design_point"
    assert programs._stable_name(functools.partial(kernels.tco_point, kind="cost")).startswith("chinplan.engine.kernels:tco_point")
    assert programs._stable_name(lambda theta, n: n) is None
    scale = 3.0
    assert programs._stable_name(lambda theta, n: scale * n) is None
    assert programs._stable_name(functools.partial(kernels.tco_point, kind=np.ones(2))) is None
    params = chinplan.default_posterior().params
    reductions.expectation(lambda theta, n: scale * n + theta.E, params, np.ones(3))  # a closure: never saved
    assert not program_dir.exists() or not list(program_dir.glob("*.program"))


# --------------------------------------------------------------------------------------
# One sorting network for every output leaf
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
def test_one_network_for_all_leaves_gives_each_leafs_bits(nan_policy):
    key = jax.random.key(3)
    a = jax.random.normal(key, (300, 5))
    b = jnp.where(jax.random.uniform(jax.random.fold_in(key, 1), (300, 5, 2)) < 0.1, jnp.nan, a[..., None] * 3.0)
    c = jnp.where(a > 1.5, jnp.inf, a) > 0  # a boolean leaf
    q = (0.05, 0.5, 0.95)
    merged = reductions._quantiles_of_leaves([a, b, c], q, nan_policy)
    for leaf, (values, nan_fraction) in zip([a, b, c], merged):
        alone = reductions._reduce_quantiles(leaf, q, nan_policy)
        np.testing.assert_array_equal(np.asarray(values), np.asarray(alone[0]))
        np.testing.assert_array_equal(np.asarray(nan_fraction), np.asarray(alone[1]))


def test_tco_traces_one_sorting_network(monkeypatch):
    from chinplan.engine import quantile_network

    calls = []
    real = quantile_network._bitonic_sort_pow2
    monkeypatch.setattr(quantile_network, "_bitonic_sort_pow2", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(quantile_network, "NETWORK_MAX_SORT", -1)  # the network even for 64 draws
    reductions._chunk_function.cache_clear()
    draws = inputs.load_draws(argparse.Namespace(posterior=None, draws=64, seed=0), fast=True)
    result = chinplan.decide.tco_bands(draws.theta, [2.0], key=jax.random.key(0))
    assert len(jax.tree.leaves(result.values)) > 10 and len(calls) == 1
    reductions._chunk_function.cache_clear()


# --------------------------------------------------------------------------------------
# The draws, read once with h5py
# --------------------------------------------------------------------------------------


def test_file_draws_equal_the_posterior():
    fast = inputs.read_posterior(None, fast=True)
    full = chinplan.default_posterior()
    assert isinstance(fast, inputs.FileDraws) and fast.num_draws == full.num_draws and fast.has_extrapolation
    for mine, theirs in zip(jax.tree.leaves(fast.params), jax.tree.leaves(full.params)):
        assert mine.dtype == theirs.dtype
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    for uncertainty in ("extrapolation", "law"):
        for mine, theirs in zip(jax.tree.leaves(fast.extrapolated_params(uncertainty)), jax.tree.leaves(full.extrapolated_params(uncertainty))):
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    assert tuple(fast.domain) == tuple(full.domain)
    for got, want in ((fast.extrapolation(compute=[1e22, 5.76e23]), full.extrapolation(compute=[1e22, 5.76e23])),
                      (fast.extrapolation([7e10, 1e9], [1.4e12, 2e10]), full.extrapolation([7e10, 1e9], [1.4e12, 2e10]))):  # fmt: skip
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)
    assert int(fast.attrs["num_runs"]) == int(full.attrs["num_runs"]) and int(fast.attrs["converged"]) == int(full.attrs["converged"])
    assert json.loads(fast.attrs["fit_attempts"]) == json.loads(full.attrs["fit_attempts"])
    assert fast.to_arviz().posterior.sizes["draw"] == full.to_arviz().posterior.sizes["draw"]


def test_the_hot_path_loads_no_arviz():
    code = ("import sys; from chinplan.cli import main; main(['plan', '--compute', '5.76e23', '--draws', '100']); "
            "print(sorted(m for m in ('arviz', 'xarray', 'pandas', 'numpyro', 'matplotlib', 'scipy') if m in sys.modules))")  # fmt: skip
    done = run_python(code, env={"CHINPLAN_CACHE": "0"})
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_other_laws_and_bad_files_fall_back_to_the_full_reader(tmp_path):
    from chinplan.decide import data_constrained

    path = tmp_path / "dc.nc"
    data_constrained.default_posterior().save(path)
    assert posterior_file.read_draws(path) is None
    assert inputs.read_posterior(str(path), fast=True).law == "data_constrained"  # the full Posterior
    idata = chinplan.default_posterior().to_arviz().isel(draw=slice(0, 20)).copy()
    values = idata.posterior["alpha"].values.copy()
    values[0, 3] = np.nan
    idata.posterior["alpha"] = (("chain", "draw"), values)
    bad = tmp_path / "bad.nc"
    posterior_file.write(idata, bad)
    assert posterior_file.read_draws(bad) is None
    with pytest.raises(ValueError) as fast_error:
        inputs.read_posterior(str(bad), fast=True)
    with pytest.raises(ValueError) as full_error:
        chinplan.Posterior.load(str(bad))
    assert str(fast_error.value) == str(full_error.value)


def test_plan_output_is_the_same_from_either_reader(capsys, monkeypatch):
    argv = ["plan", "--compute", "5.76e23", "1e26", "--draws", "300", "--json"]
    assert main(argv) == 0
    fast = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(posterior_file, "read_draws", lambda path: None)  # the full reader
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == fast


# --------------------------------------------------------------------------------------
# Progress: a spinner on a terminal only
# --------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_spinner_only_on_a_terminal(monkeypatch):
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    with render.working("tco: computing"):
        pass
    assert pipe.getvalue() == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with render.working("tco: computing"):
        pass
    assert "tco: computing" in terminal.getvalue()


def test_commands_show_the_spinner_on_a_terminal(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(render, "working", lambda message: shown.append(message) or __import__("contextlib").nullcontext())
    assert main(["plan", "--compute", "1e24", "--draws", "100"]) == 0
    assert shown and shown[0].startswith("plan:")
