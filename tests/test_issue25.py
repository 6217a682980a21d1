"""Issue 25, the user's side: a test (or a few) per numbered defect, each failing on the branch
the issue was filed against. In-process through ``chinplan.cli.main`` on a few hundred draws
of the shipped posterior (no NUTS except one tiny Kaplan fit)."""

import os
import re

import numpy as np
import pytest

from chinplan.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRAWS = ["--draws", "200"]


from test_issue14 import run, run_json  # noqa: E402  (the in-process runner the CLI tests share)


def one_plain_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("chinplan: error:")]
    assert len(lines) == 1, err
    assert "unexpected" not in lines[0] and "np.float" not in lines[0] and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------------------
# 1. A Kaplan posterior: fit says which commands read it; the others refuse it in one line.
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kaplan_file(tmp_path_factory):
    from chinplan import datasets

    folder = tmp_path_factory.mktemp("kaplan")
    runs = folder / "runs.csv"
    datasets.chinchilla().iloc[::10].to_csv(runs, index=False)
    out = folder / "kaplan.nc"
    code = main([str(x) for x in ("fit", runs, "-o", out, "--law", "kaplan", "--samples", 50, "--warmup", 50, "--chains", 1,
                                  "--max-retries", 0, "--allow-unconverged")])  # fmt: skip
    assert code == 0
    return str(out)


def test_1_kaplan_posterior_is_refused_in_one_plain_line(capsys, kaplan_file):
    capsys.readouterr()
    for argv in (["plan", "--compute", "1e24"], ["tco", "--target-loss", "2.5"], ["compare", "70B:1.4T"], ["smallest", "--target-loss", "2.5"]):
        code, out, err = run(capsys, [*argv, "--posterior", kaplan_file])
        assert code == 1, err
        line = one_plain_line(err)
        assert "kaplan" in line and "Chinchilla-law" in line and "kaplan_params" in line
        assert "refit with chinplan fit" not in err


def test_1_fit_kaplan_says_which_commands_read_it(tmp_path, capsys, kaplan_file):
    from chinplan import datasets

    runs = tmp_path / "runs.csv"
    datasets.chinchilla().iloc[::10].to_csv(runs, index=False)
    code, out, err = run(capsys, [str(x) for x in ("fit", runs, "-o", tmp_path / "k.nc", "--law", "kaplan", "--samples", 30,
                                                   "--warmup", 30, "--chains", 1, "--max-retries", 0, "--allow-unconverged")])  # fmt: skip
    assert code == 0, err
    text = " ".join(out.split())
    assert "read only Chinchilla-law files" in text and "kaplan_params" in text


# --------------------------------------------------------------------------------------
# 2. Budgets below the smallest fitted run are stated and warned, not "inside the fitted runs".
# --------------------------------------------------------------------------------------


def test_2_below_the_smallest_run_is_stated_and_warned(capsys):
    code, out, err = run(capsys, ["plan", "--compute", "1e10", "1e24", *DRAWS])
    assert code == 0, err
    text = " ".join(out.split())
    assert "1e10 FLOPs lies inside" not in text
    assert re.search(r"1e10 FLOPs is [\d.]+ decades below the smallest fitted run", text)
    assert "below the smallest fitted run" in err
    doc = run_json(capsys, ["plan", "--compute", "1e10", "1e24", *DRAWS])
    assert doc["plans"][0]["extrapolation"]["below_decades"] > 5
    assert doc["plans"][1]["extrapolation"]["below_decades"] == 0
    doc = run_json(capsys, ["compare", "1M:10M", "70B:1.4T", *DRAWS])
    assert doc["designs"][0]["extrapolation"]["below_decades"] > 3
    code, out, err = run(capsys, ["compare", "1M:10M", "70B:1.4T", *DRAWS])
    assert "1M:10M is" in " ".join(out.split()) and "below the smallest fitted run" in err


# --------------------------------------------------------------------------------------
# 3. Figure titles: "$" is text (not mathtext), nothing cut at the edges, a sampled price is
#    shown as sampled (its range and median), not as a single price.
# --------------------------------------------------------------------------------------


def _title_inside(fig, text) -> bool:
    fig.canvas.draw()
    box, frame = text.get_window_extent(), fig.bbox
    return box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y1 <= frame.y1 + 1


def test_3_tco_title_is_plain_text_whole_and_labels_sampled_prices():
    import jax

    from chinplan import Deployment, plots
    from chinplan.inference.posterior import default_posterior
    from chinplan.uncertain import Uniform

    params = default_posterior().params
    params = jax.tree_util.tree_map(lambda x: x[:100], params)
    dep = Deployment(input_tokens=375.0, output_tokens=125.0, price=Uniform(1.5, 3.0), inference_price=3.0)
    fig = plots.tco_vs_queries(params, {"8B": (8e9, 15e12), "70B": (70e9, 1.4e12)}, dep, np.logspace(7, 12, 9),
                               key=jax.random.PRNGKey(0), hardware="H100 bf16")  # fmt: skip
    title = fig.axes[0].title
    text = title.get_text()
    assert text.count("$") == text.count(r"\$") > 0  # every dollar escaped: never mathtext
    assert re.search(r"\$1\.5\d*-[23][.\d]*/GPU-hour \(sampled, median \$2\.\d+\)", text.replace("\\", ""))
    assert _title_inside(fig, title)


# --------------------------------------------------------------------------------------
# 4. --unique-tokens: distance beyond the runs, --gpus refused, every row beyond the epochs
#    named, and the loss scale said.
# --------------------------------------------------------------------------------------


def test_4_unique_tokens_says_distance_rows_and_loss_scale(capsys):
    code, out, err = run(capsys, ["plan", "--compute", "1e22", "1e24", "--unique-tokens", "100B", "10B", *DRAWS])
    assert code == 0, err
    text, warned = " ".join(out.split()), " ".join(err.split())
    assert re.search(r"1e24 FLOPs is 2\.\d decades beyond the largest data-constrained run", text)
    assert "not comparable with plain plan's losses" in text
    for row in ("1e22 FLOPs on 10B unique", "1e24 FLOPs on 100B unique", "1e24 FLOPs on 10B unique"):
        assert row in warned
    assert "1e22 FLOPs on 100B unique" not in warned
    doc = run_json(capsys, ["plan", "--compute", "1e24", "--unique-tokens", "100B", *DRAWS])
    assert doc["plans"][0]["compute_decades_beyond"] > 1.5 and "C4" in doc["loss_scale"]


def test_4_unique_tokens_refuses_cluster_options(capsys):
    code, _, err = run(capsys, ["plan", "--compute", "1e24", "--unique-tokens", "100B", "--gpus", "1024", *DRAWS])
    assert code == 2 and "--gpus" in one_plain_line(err) and "--unique-tokens" in err


# --------------------------------------------------------------------------------------
# 5. --max-epochs inf, the epoch table's warning, an allocation the runs cannot identify.
# --------------------------------------------------------------------------------------


def test_5_max_epochs_accepts_inf():
    from chinplan.cli.parser import build_parser

    args = build_parser().parse_args(["fit", "runs.csv", "-o", "p.nc", "--law", "data-constrained", "--max-epochs", "inf"])
    assert args.max_epochs == float("inf")


def test_5_epoch_table_of_fitted_epochs_does_not_warn():
    import warnings

    from chinplan.decide import data_constrained

    posterior = data_constrained.default_posterior()
    with warnings.catch_warnings():
        warnings.simplefilter("error", data_constrained.EpochRangeWarning)
        data_constrained.epoch_table(posterior, 1e9, 20e9, [1, 2, 4, 8])
    with pytest.warns(data_constrained.EpochRangeWarning, match="16 epochs"):
        data_constrained.epoch_table(posterior, 1e9, 20e9, [1, 16])


def test_5_fit_says_when_the_runs_do_not_identify_the_allocation():
    import pandas as pd

    from chinplan.cli.fit import unidentified_allocation

    summary = pd.DataFrame({"q50": [0.34, 0.697, 20.0], "q5": [0.3, 0.03, 15.0], "q95": [0.4, 33.5, 26.0]},
                           index=["alpha", "tokens_per_param@5.76e+23", "tokens_per_param@1e+24"])  # fmt: skip
    lines = unidentified_allocation(summary, 12)
    assert len(lines) == 1 and "tokens/param @5.76e23" in lines[0] and "do not identify the allocation" in lines[0]


# --------------------------------------------------------------------------------------
# 6. 80 columns when stdout is not a terminal (no COLUMNS): tables and footers; titles whole;
#    smallest without --tokens says it is the cheapest design.
# --------------------------------------------------------------------------------------

SERVING = ["--queries", "1e10", "--tokens-per-query", "500"]
NARROW_COMMANDS = {
    "plan": ["plan", "--compute", "1e10", "5.76e23", "1e24", "--gpus", "1024", *DRAWS],
    "tco": ["tco", "--target-loss", "2.0", *SERVING, "--gpus", "1024", *DRAWS],
    "compare": ["compare", "8B:15T", "70B:1.4T", "1M:10M", *SERVING, "--days", "30", *DRAWS],
    "smallest": ["smallest", "--target-loss", "2.0", *DRAWS],
    "unique": ["plan", "--compute", "1e24", "--unique-tokens", "100B", *DRAWS],
}


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("name", sorted(NARROW_COMMANDS))
def test_6_output_fits_80_columns_without_columns(capsys, monkeypatch, name):
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, err = run(capsys, NARROW_COMMANDS[name])
    assert code == 0, err
    assert _widest(out) <= 80, out
    if name == "compare":
        assert "P(row has lower loss than column)" in out.splitlines()[[i for i, line in enumerate(out.splitlines()) if "lower loss" in line][0]]
    if name == "smallest":
        title = " ".join(out.split())
        assert "Cheapest design" in title and "Smallest model" not in title


@pytest.mark.parametrize("name", ["chinchilla_vs_gopher", "chinchilla_trap", "data_constrained", "roofline_trap"])
def test_6_examples_fit_80_columns(capsys, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--small"])
    out = capsys.readouterr().out
    assert _widest(out) <= 80, out


def test_6_fit_table_fits_80_columns_without_columns(capsys, monkeypatch):
    import chinplan
    from chinplan.cli import render

    monkeypatch.delenv("COLUMNS", raising=False)
    summary = chinplan.default_posterior().summary()
    render.print_tables([render.fit_table(summary, "Posterior of the law, 245 runs, 4000 draws"), "tokens/param: extrapolation uncertainty, as chinplan plan answers with this file " * 2])
    assert _widest(capsys.readouterr().out) <= 80


# --------------------------------------------------------------------------------------
# 7. Without --queries: "training only"; compare of one design has no 1x1 probability tables.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["compare", "70B:1.4T"], ["smallest", "--target-loss", "2.1"], ["tco", "--target-loss", "2.1"]])
def test_7_no_queries_is_training_only(capsys, argv):
    code, out, err = run(capsys, [*argv, *DRAWS])
    assert code == 0, err
    text = " ".join(out.split())
    assert "training only (no --queries)" in text and "0 queries x 0 tokens" not in text
    if argv[0] == "compare":
        assert "P(row" not in text


# --------------------------------------------------------------------------------------
# 8. Hardware: an unknown name points at --peak-flops; h100-80gb is an alias; TPUs are
#    costed in chip-hours on chips.
# --------------------------------------------------------------------------------------


def test_8_unknown_hardware_names_the_custom_chip_options(capsys):
    code, _, err = run(capsys, ["tco", "--target-loss", "2.1", "--hardware", "h100-nvl"])
    line = one_plain_line(err)
    assert code == 2 and "'h100-nvl'" in line and "--peak-flops" in line and "--memory-bandwidth" in line and "tpu-v5p" in line


def test_8_h100_80gb_is_an_alias(capsys):
    from chinplan.hardware import HARDWARE, HARDWARE_ALIASES

    assert HARDWARE["H100-80GB"] == HARDWARE["h100-sxm"] and HARDWARE_ALIASES["h100-80gb"] == "h100-sxm"
    doc = run_json(capsys, ["tco", "--target-loss", "2.1", "--hardware", "h100-80gb", *DRAWS])
    assert doc["deployment"]["peak_flops"] == HARDWARE["h100"].bf16


def test_8_tpus_are_costed_in_chips(capsys):
    code, out, err = run(capsys, ["tco", "--target-loss", "2.1", "--hardware", "tpu-v5p", *SERVING, "--gpus", "1024", *DRAWS])
    assert code == 0, err
    assert "GPU" not in out and "chip-hours" in out and "days on 1,024 chips" in out
    code, out, err = run(capsys, ["plan", "--compute", "1e24", "--hardware", "tpu-v5p", "--gpus", "1024", *DRAWS])
    assert code == 0 and "GPU" not in out and "days on 1,024 chips" in out
    code, out, err = run(capsys, ["compare", "70B:1.4T", "--hardware", "tpu-v5e", "--days", "30", *DRAWS])
    assert code == 0 and "GPU" not in out and "chips for 30 days" in out


# --------------------------------------------------------------------------------------
# 9 (and issue 26, class 8): CLI errors are one plain line with the value as typed.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["tco", "--target-loss", "1.5"],
    ["smallest", "--target-loss", "1.5"],
    ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "--objective", "prob-target", "--target-loss", "1.5"],
])  # fmt: skip
def test_9_unreachable_target_is_one_plain_line(capsys, argv):
    code, _, err = run(capsys, argv)
    line = one_plain_line(err)
    assert code == 1 and "--target-loss 1.5 is at or below the irreducible loss E" in line and "np." not in line


def test_9_next_runs_outcomes_beyond_the_draws(capsys):
    code, _, err = run(capsys, ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "--outcomes", "100000"])
    line = one_plain_line(err)
    assert code == 2 and "--outcomes 100000 must be at most the posterior's 4000 draws" in line


def test_9_design_library_outcomes_beyond_the_draws():
    import jax

    from chinplan.decide import design
    from chinplan.inference.posterior import default_posterior

    with pytest.raises(ValueError, match=r"num_outcomes must be at most the posterior's 4000 draws"):
        design.next_runs(default_posterior(), target=1e24, budget=1e21, num_outcomes=5000, key=jax.random.PRNGKey(0))


def test_9_overflow_message_never_reads_1einf():
    from chinplan import _checks

    with pytest.raises(ValueError) as caught:
        _checks.log_representable("lifetime tokens", np.array([1.0, np.inf, np.inf]))
    assert "1einf" not in str(caught.value) and "beyond even float64" in str(caught.value) and "in 2 of 3 draws" in str(caught.value)


def test_9_pair_plot_of_one_draw_is_a_plain_error():
    import arviz as az

    from chinplan import plots

    idata = az.from_dict(posterior={k: np.ones((1, 1)) for k in ("log_E", "log_A", "log_B", "alpha", "beta")})
    with pytest.raises(ValueError, match="at least 2 posterior draws; the posterior has 1"):
        plots.pair_plot(idata)


# --------------------------------------------------------------------------------------
# 10. validate: counts read plainly, --levels has help, convergence said, no overflow warnings.
# --------------------------------------------------------------------------------------


def _fake_report(runs, **kwargs):
    import warnings

    from chinplan.inference.posterior import ConvergenceWarning

    np.exp(np.array([1000.0]))  # what quantiles of exp(replicates) do far out: an overflow
    warnings.warn("NUTS may not have converged: sigma: R-hat 1.05 > 1.01", ConvergenceWarning)
    coverage = [{"level": q, "coverage": c, "se": 0.05} for q, c in ((0.5, 0.52), (0.8, 0.81), (0.9, 0.9))]
    row = {"split": "compute", "interval": "extrapolation", "num_fit": 160, "num_predicted": 85, "median_rel_error": 0.0123,
           "width90": 0.031, "interval_score90": 0.045, "coverage": coverage}  # fmt: skip
    allocation = {"interval": "law", "num_minima": 5, "coverage": 1.0, "se": 0.0, "median_width": 2.1}
    return {"splits": [row], "allocation": [allocation]}


def test_10_validate_reads_plainly_and_says_convergence(capsys, monkeypatch):
    import chinplan.cli.fit as fit_cli

    monkeypatch.setattr(fit_cli, "calibration_report", _fake_report)
    code, out, err = run(capsys, ["validate", "--splits", "compute"])
    assert code == 0, err
    text = " ".join(out.split())
    assert "hold 5 of 5 (1.00; no SE at 0 or 1) isoFLOP minima" in text and "of 5 of 5" not in text and ") of 5" not in text
    assert "back-test fits: 1 did not converge" in text and "R-hat 1.05" in text
    assert "RuntimeWarning" not in err and "overflow" not in err
    doc = run_json(capsys, ["validate", "--splits", "compute"])
    assert doc["converged"] is False and len(doc["convergence_problems"]) == 1


def test_10_levels_has_help_and_a_range(capsys):
    code, out, _ = run(capsys, ["validate", "--help"])
    assert code == 0 and re.search(r"--levels P \[P \.\.\.\]\s+central predictive intervals", out)
    code, _, err = run(capsys, ["validate", "--levels", "1.0"])
    assert code == 2 and "(0, 1)" in err


# --------------------------------------------------------------------------------------
# 11. Counts in the docs come from the docs they count (scripts/update_readme.py).
# --------------------------------------------------------------------------------------


def test_11_doc_counts_are_generated_and_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("update_readme", os.path.join(ROOT, "scripts", "update_readme.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    counts = list(script.COUNT.finditer(readme))
    assert any(m.group("path") == "docs/BAD_INPUTS.md" for m in counts)
    assert script.update_counts(readme) == readme  # every count is the row count of its doc
    with open(os.path.join(ROOT, "docs", "BAD_INPUTS.md")) as f:
        rows = len(re.findall(r"^\| *\d+ *\|", f.read(), flags=re.M))
    assert f"-->{rows:,}<!--" in readme
    assert not re.search(r"\(\d+ rows:", readme)  # no typed count left


# --------------------------------------------------------------------------------------
# 12. Figures: the pair plot's diagonal is a density; every iso-loss contour is labelled;
#     next-runs --plot names its decision and budget; the data-constrained example's series.
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_params():
    import jax

    from chinplan.inference.posterior import default_posterior

    posterior = default_posterior()
    return posterior, jax.tree_util.tree_map(lambda x: x[:200], posterior.params)


def test_12_pair_plot_diagonal_is_a_density(small_params):
    from chinplan import plots

    fig = plots.pair_plot(small_params[0], max_draws=200)
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert "E" not in ylabels and ylabels.count("density") == 1  # the E diagonal is a density, not E
    density = fig.axes[ylabels.index("density")]
    assert not len(density.get_yticks())
    assert len(fig.axes[ylabels.index("A")].get_yticklabels()) > 0
    diagonal = [ax for ax in fig.axes if ax.get_ylabel() in ("", "density") and not len(ax.get_yticks())]
    assert len(diagonal) == 5


def test_12_every_visible_iso_loss_contour_is_labelled(small_params):
    from chinplan import plots

    fig = plots.iso_loss(small_params[1], grid_points=48)
    ax = fig.axes[0]
    contour = next(c for c in ax.collections if hasattr(c, "allsegs"))
    visible = [level for level, segs in zip(contour.levels, contour.allsegs) if any(len(s) for s in segs)]
    labels = sorted(float(t.get_text()) for t in ax.texts if t.get_gid() == "iso-loss-label")
    assert len(visible) >= 5 and labels == pytest.approx(sorted(visible), abs=0.006)


def test_12_next_runs_plot_title_names_target_and_budget(capsys, tmp_path, monkeypatch):
    import chinplan.cli.next_runs as next_runs_cli

    seen = {}
    original = next_runs_cli._figure

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        seen["title"] = fig.axes[0].get_title()
        return fig

    monkeypatch.setattr(next_runs_cli, "_figure", spy)
    code, _, err = run(capsys, ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "--outcomes", "16", "--plot", str(tmp_path / "n.png")])
    assert code == 0, err
    assert "1e24 FLOPs" in seen["title"] and "budget 1e21 FLOPs" in seen["title"] and "nstar" in seen["title"]


def test_12_data_constrained_example_plot(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("dc_example", os.path.join(ROOT, "examples", "data_constrained.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = {}
    import chinplan

    original = chinplan.plots.save

    def spy(fig, path, **kwargs):
        seen["fig"] = fig
        return original(fig, path, **kwargs)

    chinplan.plots.save, saved = spy, chinplan.plots.save
    try:
        module.main(["--small", "--plot", str(tmp_path / "dc.png")])
    finally:
        chinplan.plots.save = saved
    labels = [h.get_label() for h in seen["fig"].axes[0].get_legend().legend_handles]
    assert any("beyond the 8 epochs of the fitted runs" in label for label in labels)
    assert any("all unique" in label for label in labels) and not any("same number of unique tokens" in label for label in labels)


# --------------------------------------------------------------------------------------
# 13. Help and numbers.
# --------------------------------------------------------------------------------------


def test_13_unique_tokens_help_is_not_a_default(capsys):
    code, out, _ = run(capsys, ["plan", "--help"])
    text = " ".join(out.split())
    assert code == 0 and "(500B)" not in text and "e.g. 500B (no default)" in text


def test_13_small_ratios_and_days_keep_their_digits():
    from chinplan.cli import cluster
    from chinplan.format import FORMATS, ratio

    assert ratio(0.0339) == "0.0339" and ratio(8.3) == "8.3" and ratio(267.4) == "267.4" and ratio(1875) == "1875.0"
    assert FORMATS["tokens_per_param"](0.03) == "0.03"
    assert cluster.FORMATS["days_on_gpus"](7.8) == "7.80" and cluster.FORMATS["days_on_gpus"](5.97) == "5.97"
    assert cluster.FORMATS["days_on_gpus"](1234.5) == "1,234"


def test_13_tokens_per_param_below_one_in_compare(capsys):
    code, out, err = run(capsys, ["compare", "70B:2B", *DRAWS])
    assert code == 0, err
    assert "0.0286" in out and "│          0.0 │" not in out


def test_13_few_draws_warn(capsys):
    code, _, err = run(capsys, ["plan", "--compute", "1e24", "--draws", "10"])
    assert code == 0 and "--draws 10" in err and "5% and 95% quantiles of 10 draws" in err
    code, _, err = run(capsys, ["plan", "--compute", "1e24", *DRAWS])
    assert "--draws" not in err


def test_13_jax_interop_slope_at_the_optimum_is_not_minus_zero(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("jax_interop_example", os.path.join(ROOT, "examples", "jax_interop.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--small"])
    out = capsys.readouterr().out
    assert "-0.000000" not in out and "+0.000000" not in out and "zero at the optimum" in " ".join(out.split())
    assert _widest(out) <= 80, out  # defect 6: examples fit 80 columns too


# --------------------------------------------------------------------------------------
# Issue 22: tco's second column is the compute optimum under the default uncertainty.
# --------------------------------------------------------------------------------------


def test_issue22_tco_column_is_compute_optimal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, ["tco", "--target-loss", "2.0", "--queries", "1e10", "--tokens-per-query", "500", *DRAWS])
    assert code == 0, err
    assert "compute-optimal" in out and "Chinchilla-optimal" not in out
    doc = run_json(capsys, ["tco", "--target-loss", "2.0", *DRAWS])
    assert "chinchilla" in doc["targets"][0]  # JSON keys stay stable


# --------------------------------------------------------------------------------------
# Pilot runs that spend the budget: the batch rule, supported shapes, units, ESS explained.
# --------------------------------------------------------------------------------------


def test_next_runs_batch_spends_the_budget_inside_the_supported_shapes(capsys):
    doc = run_json(capsys, ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "-k", "3", "--outcomes", "32"])
    assert doc["budget_share"] >= 0.5 or "larger runs" in doc["stop"]
    assert doc["spent"] == pytest.approx(sum(c["flops"] for c in doc["chosen"])) and doc["spent"] <= 1e21 * (1 + 1e-9)
    shapes = doc["supported_shapes"]
    for run_ in doc["chosen"]:
        l10n = np.log10(run_["params"])
        ratio = np.log10(run_["tokens"] / run_["params"])
        assert shapes["log10_params"][0] <= l10n <= shapes["log10_params"][1]
        assert shapes["log10_tokens_per_param"][0] <= ratio <= shapes["log10_tokens_per_param"][1]
    assert all(c["supported"] for c in doc["candidates"])  # the default grid keeps to them
    code, out, err = run(capsys, ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "-k", "3", "--outcomes", "32"])
    text = " ".join(out.split())
    assert code == 0 and "of the budget; it stops because" in text and "N* band now, dec" in text
    assert "ESS: effective sample size" in text and "supported shapes" in text


def test_next_runs_marks_and_warns_a_run_outside_the_supported_shapes():
    import jax

    from chinplan.decide import design
    from chinplan.inference.posterior import default_posterior

    n, d = np.array([1e6, 1e8]), np.array([1e10, 2e9])  # 1M parameters: below every fitted run
    with pytest.warns(UserWarning, match="outside the shapes the fitted runs support"):
        result = design.next_runs(default_posterior(), target=1e24, budget=1e21, candidates=(n, d), k=2,
                                  key=jax.random.PRNGKey(0), num_outcomes=8)  # fmt: skip
    by_params = dict(zip(result.table["params"], result.table["supported"]))
    assert by_params[1e6] == False and by_params[1e8] == True  # noqa: E712


# --------------------------------------------------------------------------------------
# chinplan report: one self-contained HTML file whose numbers are the CLI JSON's.
# --------------------------------------------------------------------------------------


def test_report_is_self_contained_and_matches_plan_json(capsys, tmp_path):
    from html.parser import HTMLParser

    out = tmp_path / "plan.html"
    code, _, err = run(capsys, ["report", "--compute", "5.76e23", "1e24", "1e10", *DRAWS, "-o", str(out)])
    assert code == 0, err
    page = out.read_text()

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.fetches = [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "tr" and "data-compute" in attrs:
                self.rows.append({"compute": float(attrs["data-compute"])})
            if tag == "td" and "data-field" in attrs:
                self.rows[-1][attrs["data-field"]] = [float(v) for v in attrs["data-values"].split()]
            for key in ("src", "href"):  # nothing fetched: only in-document references
                if key in attrs and not str(attrs[key]).startswith("#"):
                    self.fetches.append((tag, key, attrs[key]))
            if tag in ("script", "link", "img", "iframe"):
                self.fetches.append((tag, None, None))

    cells = Cells()
    cells.feed(page)
    assert not cells.fetches and "<svg" in page
    doc = run_json(capsys, ["plan", "--compute", "5.76e23", "1e24", "1e10", *DRAWS])
    assert len(cells.rows) == len(doc["plans"]) == 3
    for row, plan in zip(cells.rows, doc["plans"]):
        assert row["compute"] == plan["compute"]
        for field in ("n", "d", "tokens_per_param", "loss"):
            assert row[field] == plan[field], field  # every number exactly the JSON's
    assert "below the smallest fitted run" in page and "decades beyond the largest fitted run" in page
    assert "chinplan plan --compute" in page and "data sha256" in page
