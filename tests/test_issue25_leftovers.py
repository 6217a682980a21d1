"""Issue 25, the leftovers: HTML tables of the result types a notebook shows (one renderer,
:func:`chinplan.format.html_table`), the cost table and crossover of ``chinplan report``,
the distance below the fitted runs in the xarray outputs, and one 80-column printer for the
examples. Each test parses what is rendered and checks it against the object's own numbers."""

import pathlib
from html.parser import HTMLParser

import numpy as np
import pytest

import chinplan

ROOT = pathlib.Path(__file__).resolve().parents[1]
DRAWS = ["--draws", "200"]

from test_issue14 import run, run_json  # noqa: E402  (the in-process runner the CLI tests share)


class Tables(HTMLParser):
    """Every table of a page: its id, caption, headers and rows of cells (text, field, values)."""

    def __init__(self):
        super().__init__()
        self.tables, self.fetches, self._cell, self._in = [], [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):  # nothing fetched: only in-document references
            if key in attrs and not str(attrs[key]).startswith("#"):
                self.fetches.append((tag, key, attrs[key]))
        if tag in ("script", "link", "img", "iframe"):
            self.fetches.append((tag, None, None))
        if tag == "table":
            self.tables.append({"id": attrs.get("id"), "caption": "", "headers": [], "rows": [], "row_data": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
            self.tables[-1]["row_data"].append({k[5:]: v for k, v in attrs.items() if k.startswith("data-")})
        elif tag in ("td", "th"):
            values = attrs.get("data-values")
            self._cell = {"tag": tag, "text": "", "field": attrs.get("data-field"),
                          "values": None if values is None else [float(v) for v in values.split()]}  # fmt: skip
        elif tag == "caption":
            self._in = "caption"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append(self._cell)
            self._cell = None
        elif tag == "caption":
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        elif self._in == "caption":
            self.tables[-1]["caption"] += data


def parse(page: str) -> Tables:
    tables = Tables()
    tables.feed(page)
    for table in tables.tables:  # the first row of th cells is the header
        if table["rows"] and all(c["tag"] == "th" for c in table["rows"][0]):
            table["headers"] = [c["text"] for c in table["rows"].pop(0)]
            table["row_data"].pop(0)
    return tables


def _law_draws(num=64, seed=0):
    import chinplan as cp

    rng = np.random.default_rng(seed)
    base = cp.HOFFMANN_2022
    return cp.LawParams(*(np.asarray(v * np.exp(0.05 * rng.standard_normal(num)), np.float32) for v in base))


# --------------------------------------------------------------------------------------
# 1. _repr_html_ of the result types: tables whose numbers are the object's.
# --------------------------------------------------------------------------------------


def test_allocation_renders_as_a_table_of_its_numbers():
    import chinplan as cp

    budgets = np.array([1e21, 5.76e23, 1e25])
    plan = cp.compute_optimal(cp.HOFFMANN_2022, budgets)
    (table,) = parse(plan._repr_html_()).tables
    assert table["headers"] == ["index", "parameters N", "tokens D", "loss"] and "Allocation" in table["caption"]
    assert len(table["rows"]) == 3
    for i, row in enumerate(table["rows"]):
        by_field = {c["field"]: c for c in row if c["field"]}
        for field in ("n", "d", "loss"):
            assert by_field[field]["values"] == [float(np.asarray(getattr(plan, field))[i])], field
        assert by_field["n"]["text"] == cp.format.human_count(float(np.asarray(plan.n)[i]))


def test_cost_and_plan_cost_render_as_tables():
    import chinplan as cp
    from chinplan.engine.kernels import PlanCost

    cost = cp.tco(70e9, 1.4e12, cp.Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0))
    (table,) = parse(cost._repr_html_()).tables
    (row,) = table["rows"]
    assert [c["field"] for c in row] == list(cost._fields)  # a scalar result: no index column
    for cell in row:
        assert cell["values"] == [float(getattr(cost, cell["field"]))]
    assert "total cost" in table["headers"] and row[-1]["text"] == cp.format.human_dollars(float(cost.dollars))
    plan = PlanCost(np.array([1e9, np.inf]), np.array([2e10, np.inf]), np.array([1e5, np.inf]))
    rows = parse(plan._repr_html_()).tables[0]["rows"]
    assert rows[1][1]["values"] == [np.inf] and rows[1][1]["text"] == "inf"


def test_bands_render_every_quantile_and_the_nan_share():
    import chinplan as cp

    budgets = np.array([1e21, 1e23])
    result = cp.bands(cp.compute_optimal, _law_draws(), budgets, q=(0.1, 0.5, 0.9))
    assert result.q == (0.1, 0.5, 0.9)
    (table,) = parse(result._repr_html_()).tables
    assert table["headers"] == ["output", "scenario", "q10", "q50", "q90", "NaN draws"]
    assert len(table["rows"]) == 3 * len(budgets)
    k = 0
    for field in ("n", "d", "loss"):
        values = np.asarray(getattr(result.values, field), np.float64)
        for j in range(len(budgets)):
            row = table["rows"][k]
            assert row[0]["text"] == field and row[1]["text"] == f"[{j}]"
            assert [c["values"][0] for c in row[2:5]] == values[:, j].tolist()
            assert row[5]["values"] == [float(np.asarray(getattr(result.nan_fraction, field))[j])]
            k += 1
    # a pytree map keeps the fields but not the levels, and says so
    import jax

    mapped = jax.tree.map(lambda x: x, result)
    assert mapped.q is None and "levels not recorded" in mapped._repr_html_()


def test_regret_and_cost_bands_render_with_their_units():
    import chinplan as cp
    from chinplan.decide import regret, risk

    result = regret.regret_compute(_law_draws(32), np.array([1e21, 1e23]), as_frame=False)
    (table,) = parse(result._repr_html_()).tables
    for i, row in enumerate(table["rows"]):
        for cell in row[1:]:
            assert cell["values"] == [float(np.asarray(getattr(result, cell["field"]))[i])], cell["field"]
        assert row[1]["text"] == ["1e21", "1e23"][i]  # budgets in FLOPs, as the CLI writes them
    deployment = cp.Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0)
    bands = risk.tco_bands(_law_draws(32), np.array([2.2]), deployment)
    rows = {row[0]["text"]: row for row in parse(bands._repr_html_()).tables[0]["rows"]}
    dollars = np.asarray(bands.values["optimal"]["dollars"], np.float64)[:, 0]
    assert [c["values"][0] for c in rows["optimal_dollars"][2:5]] == dollars.tolist()
    assert rows["optimal_dollars"][3]["text"] == cp.format.human_dollars(dollars[1])  # a cost reads as dollars
    assert rows["savings"][3]["text"].endswith("%")


def test_long_results_say_how_many_rows_they_hide():
    import chinplan as cp

    plan = cp.compute_optimal(cp.HOFFMANN_2022, np.logspace(18, 26, 81))
    (table,) = parse(plan._repr_html_()).tables
    assert len(table["rows"]) == 50 and "first 50 of 81 rows" in table["caption"]


def test_records_html_errors_name_the_argument():
    from chinplan.format import records_html

    with pytest.raises(ValueError, match="columns must share one shape"):
        records_html("x", {"n": [1.0, 2.0], "d": [1.0, 2.0, 3.0]})


def test_one_owner_of_html_tables():
    """The report and the notebook views render tables through chinplan.format.html_table."""
    for path in ("chinplan/cli/report.py", "chinplan/engine/reductions.py", "chinplan/law.py", "chinplan/costs.py"):
        text = (ROOT / path).read_text()
        assert "<table" not in text and "<td" not in text, path


# --------------------------------------------------------------------------------------
# 3. The xarray outputs carry the distance below the smallest fitted run.
# --------------------------------------------------------------------------------------


def test_sweep_outputs_carry_decades_below(tmp_path, capsys):
    import xarray as xr

    scenarios = tmp_path / "budgets.toml"
    scenarios.write_text('[sweep]\noutputs = ["n", "d", "loss"]\n[grid]\ncompute = [1e10, 1e15, 1e24]\n')
    output = tmp_path / "out.nc"
    code, _, err = run(capsys, ["sweep", str(scenarios), "-o", str(output), *DRAWS, "--no-progress"])
    assert code == 0, err
    with xr.open_dataset(output, engine="h5netcdf") as ds:
        below, beyond = ds["decades_below"].values, ds["decades_beyond"].values
    doc = run_json(capsys, ["plan", "--compute", "1e10", "1e15", "1e24", *DRAWS])
    want = [plan["extrapolation"]["below_decades"] for plan in doc["plans"]]
    np.testing.assert_allclose(below, want, rtol=1e-6)  # one question, one answer: plan's
    assert below[0] > 5 and below[2] == 0.0 and beyond[2] > 0 and beyond[0] == 0.0


def test_run_sweep_decades_below_of_designs_and_budgets():
    from chinplan.decide import sweep
    from chinplan.extrapolated import Smallest, plan_decades_below

    log_n, log_d = np.log([1e8, 1e9]), np.log([2e9, 2e10])
    smallest = Smallest.of(log_n, log_d)
    assert smallest == pytest.approx((np.log10(6 * 1e8 * 2e9), 8.0))
    n, d = np.array([1e6, 1e8, 1e10]), np.array([1e8, 2e9, 1e12])
    law = _law_draws(16)
    design = sweep.Scenarios(axes={"n": n, "d": d}, plan="design", optimum="cost", outputs=("loss",),
                             quantiles=(0.5,), deployment=None, described={})  # fmt: skip
    ds = sweep.run_sweep(design, law, smallest=smallest)
    want = plan_decades_below(smallest, n[:, None], d[None, :])
    np.testing.assert_allclose(ds["decades_below"].values, want)
    assert ds["decades_below"].values[0, 0] == pytest.approx(max(np.log10(1.2e18 / 6e14), 2.0))  # 1M:100M
    assert ds["decades_below"].values[2, 2] == 0.0 and ds["decades_below"].values[1, 1] == 0.0
    budgets = sweep.Scenarios(axes={"compute": np.array([1e12, 1e24])}, plan="compute", optimum="cost", outputs=("loss",),
                              quantiles=(0.5,), deployment=None, described={})  # fmt: skip
    ds = sweep.run_sweep(budgets, law, smallest=smallest)
    np.testing.assert_allclose(ds["decades_below"].values, [smallest.log10_compute - 12.0, 0.0])
    assert "decades_below" not in sweep.run_sweep(budgets, law)  # no runs known: not reported


def test_decades_below_is_one_formula(capsys):
    """The CLI's rows and the xarray outputs measure below the fitted runs the same way."""
    from chinplan.cli import inputs
    from chinplan.extrapolated import Smallest, plan_decades_below

    draws = inputs.load_draws(type("Args", (), {"posterior": None, "draws": 50, "seed": 0, "uncertainty": None})(), fast=True)
    n, d = np.array([1e5, 1e7, 7e10]), np.array([1e6, 1e9, 1.4e12])
    below, smallest_c = inputs.below_decades(draws, n, d)
    np.testing.assert_allclose(plan_decades_below(Smallest.of(*inputs.fitted_runs(draws.posterior)), n, d), below, rtol=1e-12)
    # and both equal the distance written out from the embedded runs in float64
    runs = chinplan.datasets.chinchilla()
    c_min, n_min = float(np.min(6.0 * runs["params"] * runs["tokens"])), float(runs["params"].min())
    expected = np.maximum(0.0, np.maximum(np.log10(c_min / (6.0 * n * d)), np.log10(n_min / n)))
    np.testing.assert_allclose(below, expected, rtol=1e-9, atol=1e-12)
    assert smallest_c == pytest.approx(c_min, rel=1e-9) and below[2] == 0.0


def _below_from_runs(n, d):
    """Decades below the embedded runs of plans (N, D), written out from the runs in float64
    (independent of chinplan.extrapolated): the larger of the compute and the parameter gap."""
    runs = chinplan.datasets.chinchilla()
    c_min, n_min = float(np.min(6.0 * runs["params"] * runs["tokens"])), float(runs["params"].min())
    n, d = np.asarray(n, np.float64), np.asarray(d, np.float64)
    return np.maximum(0.0, np.maximum(np.log10(c_min / (6.0 * n * d)), np.log10(n_min / n)))


#: The draws carry the smallest run in the law's dtype (float32 by default), as they carry the
#: domain: log10 values near 18 and 8 round to within 2e-6 decades there (float32 spacing at 16-32
#: is 2^-19); 1e-5 decades leaves room for the rounding of both.
CARRIED_ATOL = 1e-5


@pytest.fixture(scope="module")
def shipped_theta():
    """64 extrapolation-aware draws of the shipped posterior (a file written before the draws
    carried the smallest run: the smallest comes from its constant_data, so the format is
    unchanged). 64 draws: the distances depend only on the median plan, which any draw count gives."""
    from chinplan.decide import risk
    from chinplan.inference.posterior import default_posterior

    return risk.subset_draws(default_posterior().extrapolated_params(), 64, seed=0)


def test_decision_outputs_carry_decades_below(shipped_theta):
    """target_cost_bands, chance_constrained's grid and evaluate_designs say how far below the
    smallest fitted run each plan lies, as the CLI and the sweeps do (issue 25, defect 2)."""
    from chinplan.costs import Deployment
    from chinplan.decide import risk

    deployment = Deployment(queries=1e9, input_tokens=500.0, output_tokens=500.0)
    data = risk.target_cost_bands(shipped_theta, [1.95, 2.5, 4.0], deployment)
    n, d = data["n"].sel(quantile=0.5).values, data["d"].sel(quantile=0.5).values
    np.testing.assert_allclose(data["decades_below"].values, _below_from_runs(n, d), atol=CARRIED_ATOL)
    assert data["decades_below"].values[2] > 0.5 and data["decades_below"].values[0] == 0.0  # loss 4: a tiny model
    n_grid, d_grid = np.array([1e6, 1e8, 7e10]), np.array([1e7, 1e10, 1.4e12])
    _, grid = risk.chance_constrained(shipped_theta, n_grid, d_grid, 3.0, 0.5, deployment)
    want = _below_from_runs(n_grid[:, None], d_grid[None, :])
    np.testing.assert_allclose(grid["decades_below"].values, want, atol=CARRIED_ATOL)
    assert grid["decades_below"].values[0, 0] > 4 and grid["decades_below"].values[2, 2] == 0.0
    frame = risk.evaluate_designs(shipped_theta, n_grid, d_grid, deployment)
    np.testing.assert_allclose(frame["decades_below"], _below_from_runs(n_grid, d_grid), atol=CARRIED_ATOL)
    np.testing.assert_allclose(frame["decades_beyond"], grid["decades_beyond"].values.diagonal())


def test_carried_smallest_is_the_one_the_cli_uses(shipped_theta):
    """One owner: the draws carry Posterior.smallest, which the CLI's rows and sweeps read."""
    from chinplan.cli import inputs
    from chinplan.decide import sweep
    from chinplan.extrapolated import Smallest, carried_smallest
    from chinplan.inference.posterior import default_posterior

    post = default_posterior()
    runs = chinplan.datasets.chinchilla()
    exact = Smallest(float(np.log10(np.min(6.0 * runs["params"] * runs["tokens"]))), float(np.log10(runs["params"].min())))
    assert post.smallest == pytest.approx(exact, abs=1e-12)
    assert carried_smallest(shipped_theta) == pytest.approx(exact, abs=CARRIED_ATOL)
    file_draws = inputs.load_draws(type("Args", (), {"posterior": None, "draws": 50, "seed": 0, "uncertainty": None})(), fast=True)
    assert file_draws.posterior.smallest == post.smallest  # the fast path reads the same runs
    assert carried_smallest(file_draws.theta) == carried_smallest(shipped_theta)
    budgets = sweep.Scenarios(axes={"compute": np.array([1e12, 1e24])}, plan="compute", optimum="cost", outputs=("loss",),
                              quantiles=(0.5,), deployment=None, described={})  # fmt: skip
    carried = sweep.run_sweep(budgets, shipped_theta)["decades_below"].values  # from the draws
    given = sweep.run_sweep(budgets, shipped_theta, smallest=post.smallest)["decades_below"].values
    np.testing.assert_allclose(carried, given, atol=CARRIED_ATOL)
    np.testing.assert_allclose(given, [exact.log10_compute - 12.0, 0.0], atol=1e-12)


def test_draws_that_do_not_know_their_runs_omit_decades_below(shipped_theta, tmp_path):
    """Law-only draws and a file without constant_data (its runs unknown) still load and
    decide; they report no distance below (NaN carried, one pytree structure for both)."""
    import jax

    from chinplan.costs import Deployment
    from chinplan.decide import risk
    from chinplan.extrapolated import carried_smallest, from_draws
    from chinplan.inference.posterior import Posterior, default_posterior

    post = default_posterior()
    unknown = from_draws(shipped_theta.law, post.domain, {k: shipped_theta[i] for i, k in ((1, "u"), (2, "v"), (3, "kappa"))})
    assert jax.tree.structure(unknown) == jax.tree.structure(shipped_theta)  # one compiled kernel for both
    assert carried_smallest(unknown) is None and carried_smallest(shipped_theta.law) is None
    deployment = Deployment(queries=1e9, input_tokens=500.0, output_tokens=500.0)
    data = risk.target_cost_bands(unknown, [2.5], deployment)
    assert "decades_beyond" in data and "decades_below" not in data
    _, grid = risk.chance_constrained(shipped_theta.law, np.array([1e6]), np.array([1e7]), 3.0, 0.5, deployment)
    assert "decades_below" not in grid and "decades_beyond" not in grid
    # a saved file with no runs recorded (constant_data dropped): loads, carries NaN, omits it
    idata = post.to_arviz()
    kept = {name: idata[name] for name in idata.groups() if name not in ("constant_data", "observed_data")}
    import arviz as az

    path = tmp_path / "no_runs.nc"
    Posterior(az.InferenceData(**kept)).save(path)
    loaded = Posterior.load(path)
    assert loaded.smallest is None
    theta = risk.subset_draws(loaded.extrapolated_params(), 16, seed=0)
    assert carried_smallest(theta) is None and np.isnan(np.asarray(theta.smallest)).all()
    assert "decades_below" not in risk.target_cost_bands(theta, [2.5], deployment)


# --------------------------------------------------------------------------------------
# 4. One 80-column printer for the examples.
# --------------------------------------------------------------------------------------


def test_wrap_lines_wraps_long_lines_only():
    from chinplan.format import wrap_lines

    table = "n".ljust(79)
    long = "  " + " ".join(["word"] * 40)
    lines = wrap_lines(f"{table}\n{long}").split("\n")
    assert lines[0] == table and all(len(line) <= 80 for line in lines) and len(lines) > 2
    assert all(line.startswith("    ") for line in lines[2:])  # continuations under the line's indent
    with pytest.raises(ValueError, match=r"width must be an integer >= 10, got 3"):
        wrap_lines("x", 3)


def test_say_prints_wrapped(capsys):
    from chinplan.format import say

    say("a" * 10, "b " * 60, sep="|")
    out = capsys.readouterr().out
    assert out.startswith("aaaaaaaaaa|b b") and max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize("name", ["fit_your_own_runs", "jax_interop", "roofline_trap", "data_constrained"])
def test_examples_print_through_chinplan_format_say(name):
    text = (ROOT / "examples" / f"{name}.py").read_text()
    assert "def say" not in text and "textwrap" not in text
    assert "from chinplan.format import say" in text


# --------------------------------------------------------------------------------------
# 2. chinplan report with a deployment: the cost table of `tco --json` and the crossover
#    that `tco --plot` draws, every number the CLI JSON's, and the commands that reproduce it.
# --------------------------------------------------------------------------------------

DEPLOYMENT = ["--queries", "1e10", "--tokens-per-query", "500", "--mfu-decode", "0.05:0.2", "--price", "$1.5:3"]


def test_report_options_are_forwarded_as_typed():
    from chinplan.cli.parser import build_parser
    from chinplan.cli.report import deployment_argv, tco_argv

    args = build_parser().parse_args(["report", "--compute", "1e24", "-o", "x.html", *DEPLOYMENT, "--hardware", "H200"])
    assert deployment_argv(args) == ["--queries", "1e+10", "--tokens-per-query", "500", "--hardware", "h200",
                                     "--mfu-decode", "0.05:0.2", "--price", "1.5:3"]  # fmt: skip
    again = build_parser().parse_args(tco_argv(args, [1.95]))
    for dest in ("queries", "tokens_per_query", "hardware", "mfu_decode", "price", "mfu", "seed", "quantiles"):
        assert getattr(again, dest) == getattr(args, dest), dest
    plain = build_parser().parse_args(["report", "--compute", "1e24", "-o", "x.html"])
    assert deployment_argv(plain) == []  # no deployment: the report is the plan alone


def test_report_with_a_deployment_matches_tco_json_and_its_crossover(capsys, tmp_path, monkeypatch):
    from chinplan.plots import charts

    out = tmp_path / "plan.html"
    argv = ["report", "--compute", "5.76e23", "1e24", *DRAWS, *DEPLOYMENT, "-o", str(out)]
    report = run_json(capsys, argv)
    page = out.read_text()
    tables = parse(page)
    assert not tables.fetches and "<svg" in page
    by_id = {t["id"]: t for t in tables.tables}
    # the cost tables: every cell is tco --json's number for the command the report names
    tco_command = report["commands"][1]
    assert tco_command[:3] == ["chinplan", "tco", "--target-loss"]
    doc = run_json(capsys, tco_command[1:])
    assert doc == report["costs"]
    assert [t["target_loss"] for t in doc["targets"]] == [float(f"{p['loss'][1]:.4g}") for p in report["plan"]["plans"]]
    checked = 0
    for i, target in enumerate(doc["targets"]):
        table = by_id[f"costs-{i}"]
        cells = {c["field"]: c["values"] for row in table["rows"] for c in row if c["field"]}
        for group in ("inference_optimal", "chinchilla"):
            for field, values in target[group].items():
                assert cells[f"{group}.{field}"] == [np.inf if v is None else v for v in values], (group, field)
                checked += 1
        assert cells["savings"] == target["savings"]
    assert checked == 2 * 2 * 10
    # the crossover: the report's JSON, its table, and what `tco --plot` draws for the same command
    crossings = report["crossover"]
    rows = by_id["crossover"]["rows"]
    assert len(rows) == len(crossings) == 2
    for row, c in zip(rows, crossings):
        cells = {cell["field"]: cell["values"] for cell in row if cell["field"]}
        assert cells["inference_optimal"] == c["inference_optimal"] and cells["chinchilla"] == c["chinchilla"]
        assert cells["median"] == [c["median"]] and c["median"] is not None
        assert cells["span"] == c["span"] and c["uncertain"]  # MFU decode sampled: the crossover is a band
        assert c["span"][0] < c["median"] < c["span"][1]
    # `tco --plot` of the report's tco command draws the first target's crossover: the same one
    drawn = []
    real = charts.crossover
    monkeypatch.setattr(charts, "crossover", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    code, _, err = run(capsys, [*tco_command[1:], "--plot", str(tmp_path / "tco.svg")])
    assert code == 0, err
    assert drawn[0]["median"] == crossings[0]["median"] and list(drawn[0]["span"]) == crossings[0]["span"]
    # the commands that reproduce it
    for command in report["commands"]:
        assert " ".join(command[:3]) in page
    assert "--plot tco.svg" in page and "deployment" in {c["text"] for row in by_id["assumptions"]["rows"] for c in row}


def test_report_training_only_has_costs_and_says_there_is_no_crossover(capsys, tmp_path):
    out = tmp_path / "plan.html"
    report = run_json(capsys, ["report", "--compute", "1e24", *DRAWS, "--hardware", "a100", "-o", str(out)])
    page = out.read_text()
    tables = {t["id"]: t for t in parse(page).tables}
    assert "crossover" not in tables and report["crossover"] is None
    assert "Training only (no --queries)" in page and report["commands"][1][-2:] == ["--hardware", "a100"]
    cells = {c["field"]: c["values"] for row in tables["costs-0"]["rows"] for c in row if c["field"]}
    target = report["costs"]["targets"][0]
    assert cells["chinchilla.train_dollars"] == target["chinchilla"]["train_dollars"]
    assert "A100" in " ".join(c["text"] for row in tables["assumptions"]["rows"] for c in row)
