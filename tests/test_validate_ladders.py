"""The scoring functions of the ladders' back-test (chinplan.inference.ladders) on synthetic
data (no NUTS), and scripts/validate_ladders.py's markdown of its results."""

import importlib.util
import json
import math
import pathlib
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from chinplan.inference import ladders

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "validate_ladders.py"
DATA = pathlib.Path(__file__).resolve().parent / "data" / "validate_ladders"


@pytest.fixture(scope="module")
def vl():
    return ladders


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("validate_ladders", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crps_of_a_normal_at_its_centre_is_the_closed_form(vl):
    # CRPS(N(0, 1), 0) = (sqrt(2) - 1) / sqrt(pi) (Gneiting & Raftery 2007, Eq. 5 at z = 0)
    assert vl.crps_normal(0.0, 1.0, 0.0) == pytest.approx((math.sqrt(2) - 1) / math.sqrt(math.pi), rel=1e-12)
    assert vl.crps_normal(3.0, 0.2, 3.0) == pytest.approx(0.2 * (math.sqrt(2) - 1) / math.sqrt(math.pi), rel=1e-12)


def test_crps_of_samples_is_exact_and_matches_the_normal(vl):
    # two atoms: F = 1/2 on [0, 1); at y = 0 the CRPS is the integral of (1/2)^2 over [0, 1)
    assert vl.crps_samples([0.0, 1.0], 0.0) == pytest.approx(0.25, abs=1e-12)
    assert vl.crps_samples([0.5] * 7, 0.5) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.1, 200_000)
    for y in (0.3, 0.45, 0.0):
        assert vl.crps_samples(x, y) == pytest.approx(float(vl.crps_normal(0.3, 0.1, y)), rel=0.02)


def test_a_known_normal_covers_at_its_nominal_rates(vl):
    rng = np.random.default_rng(1)
    n = 4000
    mu, sd = 1.2, 0.15
    y = rng.normal(mu, sd, n)
    rows = pd.DataFrame([{**vl.score_normal(mu, sd, v), "d": 0.7, "ladder": "a"} for v in y])
    for lev in vl.LEVELS:
        se = math.sqrt(lev * (1 - lev) / n)
        assert abs(rows[f"in{lev:g}"].mean() - lev) < 4 * se
    # the band of a 90% interval of N(mu, sd^2), in decades: 2 * 1.645 sd
    assert rows["band90"].iloc[0] == pytest.approx(10 ** (2 * stats.norm.ppf(0.95) * sd), rel=1e-9)
    assert rows["crps"].mean() == pytest.approx(sd / math.sqrt(math.pi), rel=0.05)  # E CRPS of a calibrated Normal
    s = vl.summarize(rows)
    assert s["n"] == n and math.isnan(s["band90_beyond1"]) and s["band90_within1"] == pytest.approx(rows["band90"].iloc[0])


def test_draws_include_the_minimums_bootstrap_noise(vl):
    rng = np.random.default_rng(2)
    draws = rng.normal(0.0, 0.1, 400_000)
    s = 0.2
    noisy = vl.with_noise(draws, s, np.random.default_rng(3))
    assert np.std(noisy) == pytest.approx(math.hypot(0.1, s), rel=0.01)
    # the scores are those of the convolution N(0, 0.1^2 + s^2), not of the draws alone
    scored = vl.score_samples(draws, 0.25, s, np.random.default_rng(4))
    exact = vl.score_normal(0.0, math.hypot(0.1, s), 0.25)
    assert scored["band90"] == pytest.approx(exact["band90"], rel=0.02)
    assert scored["crps"] == pytest.approx(exact["crps"], rel=0.02)
    assert scored["in0.5"] == exact["in0.5"] is False and scored["in0.8"] == exact["in0.8"] is True
    assert vl.score_samples(draws, 0.25, 0.0, np.random.default_rng(4))["in0.9"] is False  # without the noise: a miss


def test_interval_score_charges_twenty_times_a_miss(vl):
    q = {0.05: -1.0, 0.1: -0.8, 0.25: -0.5, 0.5: 0.0, 0.75: 0.5, 0.9: 0.8, 0.95: 1.0}
    inside, above = vl.interval_scores(q, 0.2), vl.interval_scores(q, 1.1)
    assert inside["is90"] == pytest.approx(2.0) and inside["in0.5"] and inside["err"] == pytest.approx(0.2)
    assert above["is90"] == pytest.approx(2.0 + 20 * 0.1) and not above["in0.9"]
    assert inside["band90"] == pytest.approx(100.0)


def test_ladder_bootstrap_and_nested_choice(vl):
    df = pd.DataFrame({"ladder": ["a"] * 5 + ["b"] * 5, "in0.5": [True] * 5 + [False] * 5, "in0.8": True, "in0.9": True})
    b = vl.ladder_bootstrap(df, num=500)
    assert b["cov0.9"] == [1.0, 1.0] and b["cov0.5"] == [0.0, 1.0]
    # point 1 is best summed over all (1.0 against 1.1); without ladder 1 or 2, point 0 is;
    # NaN: a ladder without a line, scored by none (its choice is the best on all)
    table = np.array([[0.1, 0.5, 0.5, np.nan], [0.6, 0.2, 0.2, np.nan]])
    per, best = vl.nested_choice(table)
    assert best == 1 and per == [1, 0, 0, 1]
    assert list(vl.distance_bin([0.0, 0.49, 0.5, 1.0, 2.1])) == ["0-0.5", "0-0.5", "0.5-1", "1-2.1", "1-2.1"]


def test_the_docs_block_is_replaced_between_its_markers(script, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{script.MARKER_START}\nold\nlines\n{script.MARKER_END}\nafter\n")
    script.replace_block(doc, "new table")
    assert doc.read_text() == f"before\n{script.MARKER_START}\nnew table\n{script.MARKER_END}\nafter\n"
    (tmp_path / "none.md").write_text("no markers\n")
    with pytest.raises(SystemExit):
        script.replace_block(tmp_path / "none.md", "x")


def test_the_script_renders_saved_results_as_before(script, capsys, monkeypatch):
    """The markdown of docs/CALIBRATION.md from saved results, byte for byte what the script
    printed before the back-test moved into chinplan.inference.ladders: student_t.json is
    /tmp/vl6_student_t.json (the docs' run) without its scored points, likelihood_*.json the
    entries its noise models' table reads of the four runs; the .md files are the script's
    output from them before the move."""
    assert script.main(["--from-json", str(DATA / "student_t.json")])["fits"]
    assert capsys.readouterr().out == (DATA / "student_t.md").read_text()
    monkeypatch.chdir(DATA)  # the table names the files as given
    files = [f"likelihood_{name}.json" for name in ("student_t", "normal", "huber", "student_t_nu3")]
    assert script.main(["--likelihoods", *files]) == {}
    assert capsys.readouterr().out == (DATA / "likelihoods.md").read_text()


def test_the_script_keeps_no_copy_of_the_back_test():
    """The script renders; every formula, constant and step of the back-test is the package's."""
    source = SCRIPT.read_text()
    for name in ("def crps", "def interval_score", "def ladders", "def summarize", "def score_", "def select_", "isoflop_minima",
                 "fit(", "SEED =", "GRIDS =", "np.quantile"):  # fmt: skip
        assert name not in source, name


def test_the_line_selection_uses_the_package_line(vl):
    from chinplan.inference.allocation import AllocationHyper, fit_line

    # a ladder whose minima follow y = 9 + 0.6 (x - 18) exactly, the law's level at x0 = 18 is 9
    minima = pd.DataFrame({"log10_compute": [16.0, 16.5, 17.0, 17.5], "lower": 0.0, "upper": 0.0329, "num_runs": 9})
    minima["log10_params"] = 9 + 0.6 * (minima["log10_compute"] - 18)
    held = pd.DataFrame({"log10_compute": [18.5, 19.5], "lower": 0.0, "upper": 0.0329})
    held["log10_params"] = 9 + 0.6 * (held["log10_compute"] - 18)
    law_line = np.stack([np.random.default_rng(0).normal(9.0, 0.01, 400), np.full(400, 0.5)], axis=1)
    ev = {"law_line": law_line, "fitted_minima": minima, "x0": 18.0, "held": held}
    hyper = AllocationHyper(0.05, 0.0, 0.1)
    mu, sd = vl.line_normal(ev, hyper)
    line = fit_line(law_line, minima, 18.0, hyper)
    m, s = line.predictive(held["log10_compute"].to_numpy())
    np.testing.assert_allclose(mu, m)
    np.testing.assert_allclose(sd, np.hypot(s, 0.01))  # plus the measured minimum's own noise
    np.testing.assert_allclose(mu, held["log10_params"], atol=1e-3)
    assert vl.line_normal({**ev, "fitted_minima": minima.iloc[:1]}, hyper) is None  # one minimum: no line
    assert len(vl.hyper_grid()) == 6 * 4 * 9


def test_weighted_interval_score_is_alpha_over_two_times_each_interval_score(vl):
    # quantiles 5/25/75/95% of log loss; inside both intervals the score is the weighted widths,
    # above both it adds (2 / alpha) * miss per interval, weighted by alpha / 2: 2 * miss in all
    q = np.array([[-1.0], [-0.5], [0.5], [1.0]])
    assert vl.weighted_interval_score(q, np.array([0.0]))[0] == pytest.approx(0.25 * 1.0 + 0.05 * 2.0)
    assert vl.weighted_interval_score(q, np.array([1.5]))[0] == pytest.approx(0.25 * 1.0 + 0.05 * 2.0 + (1.5 - 0.5) + (1.5 - 1.0))


def test_a_grid_posterior_moved_by_the_prior_ratio_equals_learning_under_that_prior(monkeypatch):
    """The level scales' selection moves each fit's grid posterior to other prior scales by
    adding level_scale_log_prior(a, b) - level_scale_log_prior(): exactly what learning under
    (a, b) gives, also after the posterior file's 9-significant-digit rounding."""
    from chinplan.inference import extrapolation as ex

    rng = np.random.default_rng(5)
    d = np.linspace(0.05, 0.6, 30)
    folds = [(0.03 * d + 0.01 * rng.standard_normal(30), np.full(30, 1e-4), d) for _ in range(3)]
    evidence = ex.FoldEvidence(folds, np.array([]), np.array([]), np.array([]), [])
    stored = np.asarray(json.loads(ex.scale_posterior(evidence, ex.Domain(21.0, 10.0, 11.0)).to_attrs()["extrapolation_p_tau_u_kappa"]))
    with np.errstate(divide="ignore"):
        moved = np.log(stored) - ex.level_scale_log_prior() + ex.level_scale_log_prior(0.05, 0.03)
    moved = np.exp(moved - moved.max())
    moved /= moved.sum()
    original = ex.level_scale_log_prior
    monkeypatch.setattr(ex, "level_scale_log_prior", lambda a=0.05, b=0.03: original(a, b))
    direct = ex.scale_posterior(evidence, ex.Domain(21.0, 10.0, 11.0)).p_tau_u_kappa
    np.testing.assert_allclose(moved, direct, rtol=1e-6, atol=1e-12)
    assert direct[ex.TAU_U_GRID > 0.02].sum() > 0.01  # the move reaches mass the tight prior had all but excluded


def test_the_shipped_allocation_block_is_what_its_script_renders_from_the_shipped_posterior():
    """docs/CALIBRATION.md's N* at 5.76e23 and 1e26 before and after (issue 22 item 8) come from
    ``scripts/shipped_allocation.py`` run on the shipped posterior: its table is in the block
    (the script had broken when the back-test moved into the package, unnoticed)."""
    spec = importlib.util.spec_from_file_location("shipped_allocation", SCRIPT.with_name("shipped_allocation.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.table()
    text = (SCRIPT.parents[1] / "docs" / "CALIBRATION.md").read_text()
    block = text.split(module.START, 1)[1].split(module.END, 1)[0]
    scale = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "Q": 1e15}

    def numbers(markdown: str) -> list[float]:  # every figure, sizes with their unit
        return [float(v) * scale[u] for v, u in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)([KMBTQ]?)(?![\w.])", markdown)]

    # the same figures, to the 2-3 digits printed (a last digit may round the other way on
    # another CPU); the same words
    got, shown = numbers(rendered), numbers(block)
    assert len(got) == len(shown) > 20
    np.testing.assert_allclose(got, shown, rtol=0.012)  # "46B": two digits, half a unit is 1.1%
    assert re.sub(r"[\d.]+[KMBTQ]?", "#", rendered.strip()) == re.sub(r"[\d.]+[KMBTQ]?", "#", block.strip())
