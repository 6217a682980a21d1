"""Issue 14, the user's side: one test (or a few) per defect a new user met; each fails on the
main branch the issue was filed against. In-process through ``chinplan.cli.main`` on a few
hundred draws of the shipped posterior (no NUTS), so the file runs in well under a minute.
"""

import functools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import chinplan
from chinplan import costs, format
from chinplan.cli import render as _render
from chinplan.cli import parser
from chinplan.inference import runs as data
from chinplan.decide import sweep
from chinplan.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRAWS = ["--draws", "200"]
SERVING = ["--queries", "1e10", "--tokens-per-query", "500"]


def run(capsys, argv):
    """(exit code, stdout, stderr) of ``chinplan ARGV`` run in-process."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, argv):
    code, out, err = run(capsys, [*argv, "--json"])
    assert code == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------------------
# 1. The template `chinplan sweep --help` prints runs as it stands.
# --------------------------------------------------------------------------------------


def help_template(capsys) -> str:
    code, out, _ = run(capsys, ["sweep", "--help"])
    assert code == 0
    return out.split("scenario file:\n", 1)[1]


def test_sweep_help_template_is_accepted_verbatim(capsys, tmp_path):
    text = help_template(capsys)
    tomllib.loads(text)  # the whole block after "scenario file:" is TOML
    path = tmp_path / "scenarios.toml"
    path.write_text(text)
    scenarios = sweep.load_scenarios(path)
    assert scenarios.plan == "compute" and scenarios.shape == (61, 3)
    out = tmp_path / "out.csv"
    code, _, err = run(capsys, ["sweep", str(path), "-o", str(out), "--draws", "20", "--no-progress"])
    assert code == 0, err
    assert len(pd.read_csv(out)) == 61 * 3


# --------------------------------------------------------------------------------------
# 2. Parquet works after a plain `pip install .`.
# --------------------------------------------------------------------------------------


def test_pyarrow_is_a_core_dependency_and_the_readme_says_parquet_works():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)["project"]
    assert any(re.match(r"pyarrow\b", dep) for dep in project["dependencies"])
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "Parquet" in readme and "pyarrow" in readme and "[io]" not in readme


# --------------------------------------------------------------------------------------
# 3. `chinplan plot tco -o tco.png` works with documented defaults.
# --------------------------------------------------------------------------------------


def test_plot_tco_runs_with_its_documented_defaults(capsys, tmp_path):
    out = tmp_path / "tco.png"
    code, _, err = run(capsys, ["plot", "tco", "-o", str(out), "--draws", "50"])
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, page, _ = run(capsys, ["plot", "--help"])
    assert code == 0 and f"default {parser.PLOT_TOKENS_PER_QUERY:g}" in " ".join(page.split())


# --------------------------------------------------------------------------------------
# 6. fit/validate: --samples is NUTS draws per chain; --draws elsewhere subsets a posterior.
# --------------------------------------------------------------------------------------


def test_fit_and_validate_take_samples_and_the_old_draws_is_a_deprecated_alias(capsys):
    cli_parser = parser.build_parser()
    for command in (["fit", "runs.csv", "-o", "p.nc"], ["validate"]):
        assert cli_parser.parse_args([*command, "--samples", "30"]).samples == 30
        assert cli_parser.parse_args(command).samples == 1000
        assert cli_parser.parse_args([*command, "--draws", "40"]).samples == 40
        assert "--draws is deprecated" in capsys.readouterr().err
        code, page, _ = run(capsys, [command[0], "--help"])
        assert code == 0 and "--samples N" in page and "--draws" not in page
    readme = " ".join(open(os.path.join(ROOT, "README.md")).read().split())
    assert "`fit` and `validate` make a posterior and take the NUTS settings instead: `--samples N`" in readme


# --------------------------------------------------------------------------------------
# 7. Hardware names in any case, the h100 alias explained, Deployment fields as TOML keys.
# --------------------------------------------------------------------------------------


def test_hardware_names_are_case_insensitive(capsys, tmp_path):
    out = run_json(capsys, ["compare", "8B:15T", *SERVING, "--hardware", "A100", "--inference-hardware", "H200", *DRAWS])
    assert out["deployment"]["hardware"] == "a100" and out["deployment"]["peak_flops"] == costs.A100.bf16
    assert out["deployment"]["inference_hardware"] == "h200"
    assert costs.HARDWARE["H100-SXM"] is costs.HARDWARE["h100"] and "A100" in costs.HARDWARE
    with pytest.raises(ValueError, match="unknown hardware 'b300'"):
        costs.HARDWARE["b300"]
    toml = tmp_path / "s.toml"
    toml.write_text('[grid]\ncompute = 1e24\n[deployment]\nhardware = "A100"\nprecision = "BF16"\n')
    assert sweep.load_scenarios(toml).described["hardware"] == "a100"


def test_h100_alias_is_explained_in_help(capsys):
    code, page, _ = run(capsys, ["tco", "--help"])
    assert code == 0 and "h100 = h100-sxm" in " ".join(page.split())


def test_peak_flops_is_a_scenario_key(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("[grid]\ncompute = 1e24\n[deployment]\npeak_flops = 1300e12\ninference_peak_flops = 2.6e15\n")
    scenarios = sweep.load_scenarios(toml)
    assert scenarios.deployment.peak_flops == 1300e12 and scenarios.deployment.inference_peak_flops == 2.6e15
    assert scenarios.described["hardware"] == "custom"
    assert "custom" in format.deployment_line(scenarios.described)
    toml.write_text('[grid]\ncompute = 1e24\n[deployment]\nhardware = "h100"\npeak_flops = 1e15\n')
    with pytest.raises(ValueError, match="deployment.hardware or deployment.peak_flops"):
        sweep.load_scenarios(toml)
    toml.write_text("[grid]\ncompute = 1e24\n[deployment]\npeak_flops = -1\n")
    with pytest.raises(ValueError, match="peak_flops"):
        sweep.load_scenarios(toml)


# --------------------------------------------------------------------------------------
# 8. Every table fits 80 columns and shows design labels whole.
# --------------------------------------------------------------------------------------


LONG = "llama-3-8b-instruct-style-long-design-label"
TABLE_COMMANDS = {
    "plan": ["plan", "--compute", "5.76e23", "1e24", "1e26", *DRAWS],
    "tco": ["tco", "--target-loss", "2.0", *SERVING, "--mfu", "0.3:0.5", *DRAWS],
    "compare": ["compare", "8B:15T", "chinchilla-70b=70B:1.4T", "280B:5.6T", *SERVING, "--price", "1.5:3", "--target-loss", "2.0", *DRAWS],
    "compare-long": ["compare", f"{LONG}=8B:15T", "70B:1.4T", *SERVING, *DRAWS],
    "smallest": ["smallest", "--target-loss", "2.0", "--tokens", "15T", *SERVING, *DRAWS],
    "hardware": ["hardware", "--sources"],
}


def _check_width(text: str) -> None:
    widest = max(len(line) for line in text.splitlines())
    assert widest <= _render.WIDTH, f"{widest} columns:\n{text}"
    assert "…" not in text, text


@pytest.mark.parametrize("name", sorted(TABLE_COMMANDS))
def test_command_tables_fit_80_columns(capsys, monkeypatch, name):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, TABLE_COMMANDS[name])
    assert code == 0, err
    _check_width(out)
    if name == "compare":
        for label in ("8B:15T", "chinchilla-70b", "280B:5.6T"):
            assert re.search(rf"│ {re.escape(label)} +│", out), out  # whole, on one line
    if name == "compare-long":  # folded onto lines, never cut
        assert LONG in "".join(re.findall(r"^│ (\S+) *│", out, flags=re.M))


def test_fit_and_validate_tables_fit_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    summary = chinplan.default_posterior().summary()
    table = _render.fit_table(summary, "Posterior of the law, 245 runs, 4000 draws")
    coverage = [{"level": q, "coverage": c, "se": 0.05} for q, c in ((0.5, 0.52), (0.8, 0.81), (0.9, 1.0))]
    row = {"split": "compute", "interval": "extrapolation", "num_fit": 160, "num_predicted": 85, "median_rel_error": 0.0123,
           "width90": 0.031, "interval_score90": 0.045, "coverage": coverage}  # fmt: skip
    allocation = {"interval": "law", "num_minima": 9, "coverage": 1.0, "se": 0.0, "median_width": 2.1}
    lines = _render.validate_lines({"splits": [row, {**row, "split": "size", "interval": "law"}], "allocation": [allocation]}, [0.5, 0.8, 0.9])
    _render.print_tables([table, *lines])
    out = capsys.readouterr().out
    _check_width(out)
    sigma = _render.compact_number(summary.loc["sigma", "q50"])
    assert re.search(rf"│ sigma +│ +{re.escape(sigma)} │", out), out  # sigma's median, whole
    assert "tokens/param @5.76e23" in out  # the derived row's label, whole
    assert "9 of 9 (1.00; no SE at 0 or 1)" in " ".join(out.split())  # not "± 0.00"


# --------------------------------------------------------------------------------------
# 9. Messages: unknown options, negative numbers, $ prices, no abbreviations, P = 0.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["plan", "--compte", "1e24"], "unrecognized option '--compte' (did you mean --compute?)"),
        (["plan", "--compute", "1e24", "--draw", "100"], "unrecognized option '--draw' (did you mean --draws?)"),
        (["plan", "--compute", "-1e24"], "'-1e24' must be a finite positive number (valid range (0, inf))"),
        (["plan", "--compute", "1e24", "-5e23"], "'-5e23' must be a finite positive number"),
        (["compare", "8B:15T", "--queries", "-1e9"], "'-1e9' must be a finite non-negative number (valid range [0, inf))"),
        (["--verison"], "unrecognized option '--verison' (did you mean --version?)"),
    ],
)
def test_usage_messages(capsys, argv, needle):
    code, out, err = run(capsys, argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_price_takes_a_dollar_sign(capsys):
    out = run_json(capsys, ["compare", "8B:15T", *SERVING, "--price", "$2.5", "--inference-price", "$1:$3", *DRAWS])
    assert out["deployment"]["price"] == 2.5 and out["deployment"]["inference_price"] == {"uniform": [1.0, 3.0]}


def test_compare_target_below_every_e_is_probability_zero(capsys):
    out = run_json(capsys, ["compare", "8B:15T", "70B:1.4T", "--target-loss", "1.5", *DRAWS])
    assert [entry["p_target"] for entry in out["designs"]] == [0.0, 0.0]
    code, text, err = run(capsys, ["compare", "8B:15T", "--target-loss", "1.5", *DRAWS])
    assert code == 0 and "no posterior draw reaches loss 1.5" in " ".join(text.split()), err


# --------------------------------------------------------------------------------------
# 11. The smaller ones.
# --------------------------------------------------------------------------------------


def test_fixed_band_prints_one_value():
    assert format.band_cell([1.19e6] * 3, format.human_dollars) == "$1.19M"
    assert format.band_cell([1.0, 2.0, 3.0], format.human_dollars) == "$2 ($1 - $3)"
    assert format.band_cell([1.0, 2.0, 3.0], format.human_dollars, stacked=True) == "$2\n$1 - $3"


def test_compare_prints_a_fixed_cost_once(capsys):
    code, out, err = run(capsys, ["compare", "8B:15T", *SERVING, *DRAWS])
    assert code == 0, err
    assert "$1.19M" in out and "($1.19M - $1.19M)" not in out and "$1.19M - $1.19M" not in out


def test_tco_splits_gpu_hours_into_training_and_serving(capsys):
    out = run_json(capsys, ["tco", "--target-loss", "2.0", *SERVING, *DRAWS])
    best = out["targets"][0]["inference_optimal"]
    np.testing.assert_allclose(np.add(best["train_gpu_hours"], best["inference_gpu_hours"])[1], best["gpu_hours"][1], rtol=0.2)
    code, text, _ = run(capsys, ["tco", "--target-loss", "2.0", *SERVING, *DRAWS])
    assert "training GPU-hours" in text and "serving GPU-hours" in text and "total GPU-hours" in text


def test_runs_csv_takes_human_sizes(tmp_path):
    runs = chinplan.datasets.chinchilla().head(10)
    path = tmp_path / "runs.csv"
    frame = pd.DataFrame({"params": [format.human_count(v) for v in runs.params], "tokens": runs.tokens.map("{:.6g}".format),
                          "loss": runs.loss})  # fmt: skip
    frame.loc[0, "params"] = "70M"
    frame.to_csv(path, index=False)
    loaded = data.load_runs(path)
    assert loaded.params[0] == 70e6 and np.all(np.isfinite(loaded.flops))
    frame.loc[1, "params"] = "70X"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"column 'params', row 1: value '70X' is not a number"):
        data.load_runs(path)


def test_fit_help_documents_the_runs_csv(capsys):
    code, page, _ = run(capsys, ["fit", "--help"])
    assert code == 0
    for text in ("runs file:", "'model size'", "'training flops'", "70M", "(default 1000)", "(default 500)", "(default 4)"):
        assert text in page


def test_parquet_carries_the_provenance(capsys, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "s.toml"
    path.write_text('[grid]\ncompute = [1e22, 1e24]\n[deployment]\nhardware = "H200"\n')
    out = tmp_path / "out.parquet"
    code, _, err = run(capsys, ["sweep", str(path), "-o", str(out), "--draws", "20", "--seed", "3"])
    assert code == 0, err
    meta = json.loads(pq.read_schema(out).metadata[sweep.PARQUET_METADATA_KEY])
    assert meta["seed"] == 3 and meta["num_draws"] == 20 and meta["chinplan_version"] == chinplan.__version__
    assert json.loads(meta["deployment"])["hardware"] == "h200" and len(meta["posterior_sha256"]) == 64
    assert len(pd.read_parquet(out)) == 2


def test_help_still_needs_no_jax():
    runner = "import sys\nfrom chinplan.cli import parser\nparser.build_parser()\nprint('jax' in sys.modules)\n"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr


def test_huber_fit_repr_is_short():
    starts = np.zeros((4500, 5))
    fit = chinplan.HuberFit(chinplan.HOFFMANN_2022, np.zeros(5), 1.0, 1e-6, 50, 7, starts, starts, np.zeros(4500))
    text = repr(fit)
    assert len(text) < 400 and "shape (4500, 5)" in text and "E=1.69" in text


def test_bands_dataset_has_coordinates_for_a_1d_grid():
    params = chinplan.default_posterior().params
    budgets = np.logspace(20, 26, 7)
    ds = chinplan.bands_dataset(chinplan.compute_optimal, params, budgets)
    np.testing.assert_array_equal(ds["scenario_0"].values, budgets)
    assert float(ds.n.sel(quantile=0.5, scenario_0=1e24)) > 0


def test_target_loss_sweep_does_not_repeat_the_target_as_loss(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[grid]\ntarget_loss = [2.0, 2.1]\n")
    assert "loss" not in sweep.load_scenarios(path).outputs


# --------------------------------------------------------------------------------------
# 10. Plots: no legend entry for a band that is not drawn; loss per design; titles; budgets.
# --------------------------------------------------------------------------------------


def test_tco_plot_legend_title_and_losses_with_a_fixed_deployment():
    params = chinplan.default_posterior().params
    dep = costs.Deployment(input_tokens=400.0, output_tokens=100.0, price=2.5)
    designs = {"Llama-3 8B": (8e9, 15e12), "Chinchilla 70B": (70e9, 1.4e12)}
    fig = chinplan.plots.tco_vs_queries(params, designs, dep, np.logspace(7, 12, 21))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any("band" in label for label in labels), labels
    assert all(re.search(r"loss \d\.\d{3}", label) for label in labels[:2]), labels
    title = ax.get_title().replace("\\$", "$")
    assert "989 TFLOP/s" in title and "$2.5/GPU-hour" in title and "500 tokens/query" in title


def test_plan_plot_marks_the_requested_budgets(tmp_path):
    params = chinplan.default_posterior().params
    fig = chinplan.plots.fan_chart(params, np.logspace(20, 26, 13), mark=[5.76e23, 1e25])
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert sorted({float(ln.get_xdata()[0]) for ln in lines}) == [5.76e23, 1e25]
    assert any(t.get_text() == "requested budget" for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())


# --------------------------------------------------------------------------------------
# 4. A fit says it is compiling before the sampling bar starts.
# --------------------------------------------------------------------------------------


def test_nuts_progress_shows_a_compiling_phase_then_sampling(monkeypatch, capsys):
    import jax

    from chinplan.inference import sampler as _sampler

    @functools.lru_cache(maxsize=None)  # as _sampler._runner: one jitted function per setting
    def fake_runner(model, model_kwargs, num_warmup, num_draws, num_chains, method, every, start=None):
        def chain(key, args, accept, init_values):  # no NUTS: the phases around the call are what is tested
            draws = jnp.zeros(num_draws) + args[0].sum()  # one chain, as the sequential runner
            return {"x": draws}, jnp.zeros(num_draws, bool)

        return jax.jit(chain)

    import jax.numpy as jnp

    monkeypatch.setattr(_sampler, "_runner", fake_runner)
    monkeypatch.setattr(_sampler, "_COMPILED", {})
    args = (np.arange(3.0),)
    samples, _ = _sampler.sample_nuts(None, args, {}, key=jax.random.PRNGKey(0), num_warmup=5, num_draws=4, num_chains=2, progress=True)
    err = capsys.readouterr().err
    assert samples["x"].shape == (2, 4) and float(samples["x"][0, 0]) == 3.0
    assert "NUTS compiling" in err and "NUTS sampling" in err and err.index("NUTS compiling") < err.index("NUTS sampling")
    _sampler.sample_nuts(None, (np.ones(3),), {}, key=jax.random.PRNGKey(1), num_warmup=5, num_draws=4, num_chains=2, progress=True)
    assert "NUTS compiling" not in capsys.readouterr().err  # same shapes: compiled once


# --------------------------------------------------------------------------------------
# 5. Numbers in the docs come from scripts, not typing.
# --------------------------------------------------------------------------------------


def _script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_tables_are_the_saved_backtests_rendered():
    backtests = _script("run_backtests")
    with open(os.path.join(ROOT, "docs", "backtests.json")) as handle:
        block = backtests.render(json.load(handle))
    text = open(os.path.join(ROOT, "docs", "CALIBRATION.md")).read()
    assert f"<!-- backtests:start -->\n{block}\n<!-- backtests:end -->" in text
    assert "± 0.00 |" not in block  # a coverage of 0 or 1 shows its count, not a zero SE


def _running_site_dirs():
    """The site directories the running interpreter imports from (its venv's, the base's when it
    sees them, the user's, and those added by .pth files), in sys.path order; not this tree."""
    import site

    dirs = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    dirs += [p for p in sys.path if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")]
    seen, out = set(), []
    for d in dirs:
        real = os.path.realpath(d)
        if os.path.isdir(d) and real not in seen and real != os.path.realpath(ROOT):
            seen.add(real)
            out.append(d)
    return out


def _link_running_site_packages(python):
    """Write a .pth file into the venv of ``python`` that appends the running site directories."""
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=120).stdout.strip()  # fmt: skip
    with open(os.path.join(purelib, "_chinplan_test_running_env.pth"), "w") as handle:
        handle.write("".join(d + "\n" for d in _running_site_dirs()))


def test_readme_commands_run_against_a_fresh_install_and_print_what_the_readme_shows(tmp_path):
    """A fresh virtual environment (the dependencies visible from this one), the package
    installed into it from the source tree as a user would, and every command README.md and
    docs/HARDWARE.md show run with its ``chinplan`` entry point: each must succeed and print
    exactly the shown output (scripts/update_readme.py regenerates those outputs)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if os.environ.get("CHINPLAN_TEST_COMPILE_CACHE_DIR"):  # the suite's compilation cache (conftest.py):
        env["JAX_COMPILATION_CACHE_DIR"] = os.environ["CHINPLAN_TEST_COMPILE_CACHE_DIR"]  # same bits, less compiling
    # The dependencies come from the *running* environment, not from the base interpreter that
    # `--system-site-packages` would reach (inside a user's venv, that one has no JAX): a .pth
    # file appends this environment's site directories after the new venv's own, so the fresh
    # install of chinplan is the one imported.
    _link_running_site_packages(bin_dir / "python")
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", ROOT],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    where = subprocess.run([str(bin_dir / "python"), "-c", "import chinplan; print(chinplan.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the fresh copy, not this tree
    done = subprocess.run([sys.executable, "scripts/update_readme.py", "--check", "--chinplan", str(bin_dir / "chinplan")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, "README.md is out of date (or a command failed): run python scripts/update_readme.py\n" + done.stderr


def test_fan_and_iso_loss_overlay_the_fitted_runs_and_drop_off_screen_references():
    params = chinplan.default_posterior().params
    runs = chinplan.datasets.chinchilla()
    fig = chinplan.plots.fan_chart(params, np.logspace(18, 21, 13), runs=(runs.params, runs.tokens))
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "fitted runs" in labels and not any("Chinchilla" in label or "Gopher" in label for label in labels), labels
    fig = chinplan.plots.iso_loss(params, n_range=(1e7, 1e10), d_range=(1e9, 1e12), runs=(runs.params, runs.tokens))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("fitted runs") for label in labels) and "Chinchilla" not in labels, labels
    assert fig.axes[0].get_ylim()[1] <= 1e12 * 1.0001


def test_cli_tco_plot_title_names_the_hardware(capsys, tmp_path, monkeypatch):
    seen = {}
    original = chinplan.plots.charts.tco_vs_queries

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        seen["title"] = fig.axes[0].get_title().replace("\\$", "$")
        return fig

    monkeypatch.setattr(chinplan.plots.charts, "tco_vs_queries", spy)
    code, _, err = run(capsys, ["plot", "tco", "-o", str(tmp_path / "t.svg"), "--hardware", "a100", "--price", "$3", "--draws", "50"])
    assert code == 0, err
    assert "A100 bf16" in seen["title"] and "$3/GPU-hour" in seen["title"] and "500 tokens/query" in seen["title"]


# --------------------------------------------------------------------------------------
# 12 (part): the presets a team uses, listed by `chinplan hardware`, with sources.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, precision, peak, memory, bandwidth",
    [
        ("A100-40GB", "bf16", 312e12, 40e9, 1.555e12),
        ("h100-pcie", "fp8", 1513e12, 80e9, 2.0e12),
        ("B200", "bf16", 2.25e15, 180e9, 8e12),
        ("GB200", "fp8", 5e15, 186e9, 8e12),
        ("MI300X", "fp8", 2614.9e12, 192e9, 5.3e12),
        ("mi325x", "bf16", 1307.4e12, 256e9, 6e12),
        ("TPU-v5e", "int8", 393e12, 16e9, 819e9),
        ("tpu-v5p", "bf16", 459e12, 95e9, 2.765e12),
        ("tpu-v6e", "bf16", 918e12, 32e9, 1.638e12),
    ],
)
def test_hardware_presets(name, precision, peak, memory, bandwidth):
    chip = costs.HARDWARE[name]
    assert chip.peak(precision) == peak and chip.memory_bytes == memory and chip.memory_bandwidth == bandwidth


def test_every_preset_has_a_source_and_the_parser_knows_it(capsys):
    assert set(costs.HARDWARE) == set(costs.HARDWARE_SOURCES) | set(costs.HARDWARE_ALIASES)
    assert sorted(parser.HARDWARE_NAMES) == sorted(costs.HARDWARE)
    out = run_json(capsys, ["hardware"])
    assert out["h100"]["alias_of"] == "h100-sxm" and out["mi300x"]["source"].startswith("AMD")
    code, text, _ = run(capsys, ["hardware", "--sources"])
    assert code == 0 and "tpu-v6e: Google Cloud TPU documentation" in text


def test_a_preset_plans_and_an_unsupported_precision_is_named(capsys):
    out = run_json(capsys, ["compare", "8B:15T", *SERVING, "--hardware", "MI300X", "--precision", "fp8", *DRAWS])
    assert out["deployment"]["peak_flops"] == 2614.9e12 and out["deployment"]["hardware"] == "mi300x"
    code, _, err = run(capsys, ["compare", "8B:15T", *SERVING, "--hardware", "tpu-v5e", "--precision", "fp8", *DRAWS])
    assert code == 1 and "fp8 is not supported by tpu-v5e (supported: bf16, int8)" in err


def test_peak_flops_option_for_a_chip_without_a_preset(capsys):
    out = run_json(capsys, ["compare", "8B:15T", *SERVING, "--peak-flops", "1.2e15", "--inference-peak-flops", "2e15", *DRAWS])
    assert out["deployment"]["peak_flops"] == 1.2e15 and out["deployment"]["inference_peak_flops"] == 2e15
    assert out["deployment"]["hardware"] == "custom"
    code, _, err = run(capsys, ["compare", "8B:15T", "--peak-flops", "-1e15"])
    assert code == 2 and "'-1e15' must be a finite positive number" in err


# --------------------------------------------------------------------------------------
# 15 (part): the chance-constrained answer in the CLI.
# --------------------------------------------------------------------------------------


def test_smallest_on_15t_tokens_is_about_13b(capsys):
    out = run_json(capsys, ["smallest", "--target-loss", "2.0", "--tokens", "15T", "--prob", "0.9", "--uncertainty", "law"])
    assert out["n"] == pytest.approx(13.2e9, rel=0.01) and out["num_draws"] == 4000
    want = float(chinplan.smallest_model(chinplan.default_posterior().params, 2.0, 15e12, p=0.9))
    assert out["n"] == pytest.approx(want, rel=1e-4)
    assert out["p_target"] >= 0.9 and out["loss"][0] < 2.0


def test_smallest_without_tokens_is_the_cheapest_feasible_grid_point(capsys):
    out = run_json(capsys, ["smallest", "--target-loss", "2.0", "--prob", "0.8", *DRAWS, "--uncertainty", "law"])
    assert out["p_target"] >= 0.8 and out["grid"]["n"][2] > 10
    from test_cli import thinned

    from chinplan.cli import costs as _smallest
    from chinplan.decide import risk as decide

    choice, _ = decide.chance_constrained(thinned(200).params, _smallest.N_GRID, _smallest.D_GRID, 2.0, 0.8)
    assert (out["n"], out["d"]) == (choice["n"], choice["d"])
    # the default carries the extrapolation component, and says how far beyond the answer is
    ext = run_json(capsys, ["smallest", "--target-loss", "2.0", "--prob", "0.8", *DRAWS])
    assert ext["uncertainty"] == "extrapolation" and ext["p_target"] >= 0.8 and ext["extrapolation"]["decades"] > 0
    choice, _ = decide.chance_constrained(decide.draw_pairs(thinned(200).theta), _smallest.N_GRID, _smallest.D_GRID, 2.0, 0.8)
    assert (ext["n"], ext["d"]) == (choice["n"], choice["d"])
