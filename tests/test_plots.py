"""Tests of chinplan.plots: figures save as PNG/SVG, plotted data match float64 NumPy oracles,
bad inputs raise ValueError, and save() is atomic."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

import matplotlib  # noqa: E402  (a core dependency)

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import chinplan  # noqa: E402
from chinplan import costs, plots  # noqa: E402
from chinplan.costs import Deployment  # noqa: E402
from chinplan.uncertain import LogNormal, Uniform  # noqa: E402
from chinplan.law import LawParams  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# An odd number of draws makes every median an exact order statistic (no interpolation),
# so e.g. the median D* is exactly C / (6 x median N*).
N_DRAWS = 199
KEY = jax.random.key(7)
DESIGNS = {"Chinchilla 70B": (70e9, 1.4e12), "Llama-3 8B": (8e9, 15e12)}
DEP = Deployment(
    input_tokens=500.0,
    output_tokens=200.0,
    mfu_train=Uniform(0.35, 0.45),
    mfu_decode=Uniform(0.05, 0.2),
    price=LogNormal(2.0, 0.2),
)


@pytest.fixture(scope="module")
def params() -> LawParams:
    """199 draws spread over all four chains of the shipped posterior."""
    return LawParams(*(x[: 20 * N_DRAWS : 20] for x in chinplan.default_posterior().params))


def np_draws(params: LawParams) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64) for k, v in params._asdict().items()}


def np_compute_optimal(params: LawParams, compute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 N_opt, D_opt per draw (rows) x budget (columns), Hoffmann et al. 2022 Eq. 4."""
    p = {k: v[:, None] for k, v in np_draws(params).items()}
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / (p["alpha"] + p["beta"]))
    c6 = np.asarray(compute, np.float64)[None, :] / 6.0
    s = p["alpha"] + p["beta"]
    return g * c6 ** (p["beta"] / s), c6 ** (p["alpha"] / s) / g


def np_loss(params: LawParams, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    p = {k: v[:, None] for k, v in np_draws(params).items()}
    n, d = np.asarray(n, np.float64)[None], np.asarray(d, np.float64)[None]
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def line(ax: Axes, label: str):
    found = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in ax.get_lines()]
    return found[0]


def line_starting(ax: Axes, prefix: str):
    found = [ln for ln in ax.get_lines() if ln.get_label().startswith(prefix)]
    assert len(found) == 1, [ln.get_label() for ln in ax.get_lines()]
    return found[0]


def check_saves(fig: Figure, tmp_path, name: str, min_png_kb: float = 10.0) -> None:
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    plots.save(fig, png)
    plots.save(fig, str(svg))
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_png_kb * 1024
    text = svg.read_text()
    assert "<svg" in text and len(text) > 10 * 1024
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in (png.name, svg.name))
    assert not [p for p in leftovers if p.startswith(".chinplan-") or p.endswith(".tmp")]


# --------------------------------------------------------------------------------------
# fan_chart
# --------------------------------------------------------------------------------------


def test_fan_chart_saves_and_median_lines_match_numpy(params, tmp_path):
    compute = np.logspace(18, 26, 9)
    fig = plots.fan_chart(params, compute)
    assert isinstance(fig, Figure)
    check_saves(fig, tmp_path, "fan")
    ax_n, ax_d = fig.axes[:2]
    n_opt, d_opt = np_compute_optimal(params, compute)
    for ax, symbol, oracle in ((ax_n, "N*", n_opt), (ax_d, "D*", d_opt)):
        x, y = line(ax, f"{symbol} median").get_data()
        np.testing.assert_allclose(x, compute)
        np.testing.assert_allclose(y, np.quantile(oracle, 0.5, axis=0), rtol=2e-5)
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "FLOPs" in ax_d.get_xlabel() and "count" in ax.get_ylabel()
        # Nested bands: one shaded band per symmetric pair of levels, labelled.
        bands = [c.get_label() for c in ax.collections if c.get_label().startswith(symbol)]
        assert bands == [f"{symbol} 5–95% band", f"{symbol} 25–75% band"]
        assert ax.get_legend() is not None
    assert "Chinchilla 70B" in [t.get_text() for t in ax_n.texts]
    # Chinchilla is marked at its budget 6 N D = 5.88e23 with N = 70e9 (N panel).
    offsets = np.concatenate([c.get_offsets() for c in ax_n.collections if len(c.get_offsets())])
    assert np.any(np.isclose(offsets[:, 0], 6 * 70e9 * 1.4e12) & np.isclose(offsets[:, 1], 70e9))


def test_fan_chart_into_given_axes(params):
    compute = np.logspace(20, 24, 5)
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.fan_chart(params, compute, q=(0.1, 0.5, 0.9), references={}, ax=ax) is fig
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["N* median", "D* median"]
    n_opt, _ = np_compute_optimal(params, compute)
    np.testing.assert_allclose(line(ax, "N* median").get_ydata(), np.median(n_opt, axis=0), rtol=2e-5)

    fig2 = Figure()
    pair = fig2.subplots(1, 2)
    assert plots.fan_chart(params, compute, q=(0.5,), ax=pair) is fig2
    assert line(pair[1], "D* median") is not None


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(compute=[]), "compute"),
        (dict(compute=[1e20, -1e21]), "compute"),
        (dict(compute=[1e21, 1e20]), "compute"),
        (dict(q=(0.05, 0.95)), "q"),
        (dict(q=(0.05, 0.25, 0.5, 0.95)), "q"),
        (dict(q=(0.5, 1.5)), "q"),
        (dict(references={"x": (-1.0, 1e9)}), "references"),
        (dict(ax="not an axes"), "ax"),
    ],
)
def test_fan_chart_rejects_bad_inputs(params, kwargs, name):
    with pytest.raises(ValueError, match=name):
        plots.fan_chart(params, **kwargs)


def test_fan_chart_rejects_params_without_draw_axis():
    with pytest.raises(ValueError, match="params"):
        plots.fan_chart(chinplan.HOFFMANN_2022)
    with pytest.raises(ValueError, match="params"):
        plots.fan_chart({"E": [1.0]})


# --------------------------------------------------------------------------------------
# iso_loss
# --------------------------------------------------------------------------------------


def test_iso_loss_saves_and_matches_numpy(params, tmp_path):
    n_range, d_range = (1e8, 1e12), (1e10, 1e14)
    fig = plots.iso_loss(params, n_range=n_range, d_range=d_range, levels=[2.0, 2.2, 2.5], grid_points=41)
    check_saves(fig, tmp_path, "iso")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlim() == pytest.approx(n_range) and ax.get_ylim() == pytest.approx(d_range)
    assert "parameters" in ax.get_xlabel() and "tokens" in ax.get_ylabel()

    # The frontier median: each point (N, D) is the median compute-optimal plan at C = 6ND.
    n, d = line(ax, "compute-optimal frontier (median)").get_data()
    c = 6.0 * np.asarray(n) * np.asarray(d)
    n_opt, d_opt = np_compute_optimal(params, c)
    np.testing.assert_allclose(n, np.median(n_opt, axis=0), rtol=1e-4)
    np.testing.assert_allclose(d, np.median(d_opt, axis=0), rtol=1e-4)

    # Contour vertices lie on the pointwise median loss (up to the grid's interpolation).
    contours = [c for c in ax.collections if hasattr(c, "levels")]
    assert len(contours) == 1
    cs = contours[0]
    np.testing.assert_allclose(cs.levels, [2.0, 2.2, 2.5])
    for level, path in zip(cs.levels, cs.get_paths()):
        vertices = path.vertices
        assert len(vertices) > 5
        median = np.median(np_loss(params, vertices[:, 0], vertices[:, 1]), axis=0)
        np.testing.assert_allclose(median, level, rtol=3e-3)

    # Iso-FLOP lines: 6ND is constant along each.
    iso = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert iso
    for ln in iso:
        x, y = ln.get_data()
        assert np.ptp(np.log(6 * np.asarray(x) * np.asarray(y))) < 1e-9
    assert ax.get_legend() is not None


def test_iso_loss_default_levels_and_given_axes(params):
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.iso_loss(params, grid_points=16, ax=ax, references={}) is fig
    cs = [c for c in ax.collections if hasattr(c, "levels")][0]
    assert len(cs.levels) >= 4 and np.all(np.diff(cs.levels) > 0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_range=(0.0, 1e9)), "n_range"),
        (dict(n_range=(1e9, 1e7)), "n_range"),
        (dict(n_range=(1e9,)), "n_range"),
        (dict(d_range=(-1e9, 1e12)), "d_range"),
        (dict(d_range=(1e12, np.inf)), "d_range"),
        (dict(levels=[2.5, 2.0]), "levels"),
        (dict(levels=[]), "levels"),
        (dict(grid_points=3), "grid_points"),
        (dict(flops=[-1e20]), "flops"),
    ],
)
def test_iso_loss_rejects_bad_inputs(params, kwargs, name):
    with pytest.raises(ValueError, match=name):
        plots.iso_loss(params, **kwargs)


# --------------------------------------------------------------------------------------
# tco_vs_queries
# --------------------------------------------------------------------------------------


def np_costs(theta_dep: Deployment, n: float, d: float) -> tuple[np.ndarray, np.ndarray]:
    """Float64 training dollars and dollars per query, per draw of a sampled deployment."""
    f = {k: (None if v is None else np.asarray(v, np.float64)) for k, v in theta_dep._asdict().items()}
    train = f["price"] * 6 * n * d / (3600 * f["peak_flops"] * f["mfu_train"])
    per_query = f["price"] * 2 * n * (f["input_tokens"] / f["mfu_prefill"] + f["output_tokens"] / f["mfu_decode"])
    return train, per_query / (3600 * f["peak_flops"])


def test_tco_vs_queries_saves_and_matches_numpy(params, tmp_path):
    queries = np.logspace(7, 11, 41)
    fig = plots.tco_vs_queries(params, DESIGNS, DEP, queries, key=KEY)
    check_saves(fig, tmp_path, "tco")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "$" in ax.get_ylabel() and "queries" in ax.get_xlabel()

    # The same per-draw deployment the figure used (common random numbers).
    _, dep = costs.with_cost_draws(params, DEP, key=KEY)
    per_design = {}
    for label, (n, d) in DESIGNS.items():
        train, per_query = np_costs(dep, n, d)
        per_design[label] = (train, per_query)
        dollars = train[:, None] + per_query[:, None] * queries[None, :]
        x, y = line_starting(ax, label).get_data()
        np.testing.assert_allclose(x, queries)
        np.testing.assert_allclose(y, np.median(dollars, axis=0), rtol=2e-5)

    # Crossover: per draw, A (Chinchilla) is cheaper below Q*_i = (T_B - T_A) / (I_A - I_B), so
    # P(A cheaper at Q) = P(Q*_i > Q) crosses 0.5 at median Q* and 0.95/0.05 at its 5%/95% quantiles.
    (t_a, i_a), (t_b, i_b) = per_design.values()
    q_star = (t_b - t_a) / (i_a - i_b)
    assert np.all(q_star > 0)
    vline = line_starting(ax, "P(Chinchilla 70B cheaper) = 0.5")
    x = vline.get_xdata()
    assert x[0] == x[1]
    assert x[0] == pytest.approx(np.median(q_star), rel=0.04)
    spans = [p for p in ax.patches if p.get_label().startswith("crossover band")]
    assert len(spans) == 1
    span = spans[0]
    if hasattr(span, "get_width"):
        x0, x1 = span.get_x(), span.get_x() + span.get_width()
    else:
        xs = np.asarray(span.get_xy())[:, 0]
        x0, x1 = xs.min(), xs.max()
    assert x0 == pytest.approx(np.quantile(q_star, 0.05), rel=0.06)
    assert x1 == pytest.approx(np.quantile(q_star, 0.95), rel=0.06)
    assert x0 < x[0] < x1


def test_tco_vs_queries_constant_deployment_and_single_design(params):
    # Every draw agrees: the crossover is a thin span around the exact break-even volume.
    dep = Deployment(input_tokens=500.0, output_tokens=200.0)
    queries = np.logspace(7, 11, 17)
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.tco_vs_queries(params, DESIGNS, dep, queries, ax=ax) is fig
    train_a, per_a = np_costs(costs.with_cost_draws(params, dep)[1], *DESIGNS["Chinchilla 70B"])
    train_b, per_b = np_costs(costs.with_cost_draws(params, dep)[1], *DESIGNS["Llama-3 8B"])
    q_star = (train_b[0] - train_a[0]) / (per_a[0] - per_b[0])
    x = line_starting(ax, "P(Chinchilla 70B cheaper) = 0.5").get_xdata()[0]
    assert x == pytest.approx(q_star, rel=0.1)

    fig = plots.tco_vs_queries(params, {"only": (7e10, 1.4e12)}, dep, queries)
    assert [ln.get_label() for ln in fig.axes[0].get_lines()][0].startswith("only")
    assert not [p for p in fig.axes[0].patches if p.get_label().startswith("crossover")]

    # Out of range: no crossover inside [1e3, 1e4] queries; the legend says who is cheaper.
    fig = plots.tco_vs_queries(params, DESIGNS, dep, np.logspace(3, 4, 5))
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert any(lbl.startswith("no crossover in range: Chinchilla 70B cheaper") for lbl in labels)


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        (({}, DEP), dict(key=KEY), "designs"),
        ((["a"], DEP), dict(key=KEY), "designs"),
        (({"a": (-1.0, 1e12)}, DEP), dict(key=KEY), "designs"),
        (({"a": (1e9,)}, DEP), dict(key=KEY), "designs"),
        ((DESIGNS, "dep"), dict(key=KEY), "deployment"),
        ((DESIGNS, Deployment(mfu_train=1.5)), {}, "mfu_train"),
        ((DESIGNS, DEP, [1e7, -1e8]), dict(key=KEY), "queries"),
        ((DESIGNS, DEP, [1e7]), dict(key=KEY), "queries"),
        ((DESIGNS, DEP), {}, "key"),
        ((DESIGNS, DEP), dict(key=KEY, refine=0), "refine"),
    ],
)
def test_tco_vs_queries_rejects_bad_inputs(params, args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        plots.tco_vs_queries(params, *args, **kwargs)


# --------------------------------------------------------------------------------------
# pair_plot
# --------------------------------------------------------------------------------------


def small_idata(log_scale: bool = True):
    import arviz as az

    rng = np.random.default_rng(0)
    shape = (2, 60)
    post = {
        "alpha": 0.34 + 0.01 * rng.standard_normal(shape),
        "beta": 0.28 + 0.01 * rng.standard_normal(shape),
    }
    values = {"E": 1.8 + 0.02 * rng.standard_normal(shape), "A": 400 * np.exp(0.1 * rng.standard_normal(shape)),
              "B": 2000 * np.exp(0.1 * rng.standard_normal(shape))}
    for name, v in values.items():
        post[f"log_{name}" if log_scale else name] = np.log(v) if log_scale else v
    return az.from_dict(posterior=post), values


def test_pair_plot_from_posterior_saves(tmp_path):
    import matplotlib.pyplot as plt

    before = dict(matplotlib.rcParams)
    figs_before = plt.get_fignums()
    fig = plots.pair_plot(chinplan.default_posterior(), kind="kde", max_draws=100)
    assert isinstance(fig, Figure)
    check_saves(fig, tmp_path, "pair", min_png_kb=20.0)
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert {"E", "A", "B", "alpha", "beta"} <= labels
    # Built without pyplot and without touching global settings.
    assert plt.get_fignums() == figs_before
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize("log_scale", [True, False])
def test_pair_plot_scatter_data_from_idata(log_scale):
    idata, values = small_idata(log_scale)
    fig = Figure()
    axes = fig.subplots(2, 2, squeeze=False)
    out = plots.pair_plot(idata, kind="scatter", var_names=("E", "A"), marginals=False, axes=None, max_draws=None)
    assert out is not fig and isinstance(out, Figure)
    assert plots.pair_plot(idata, kind="scatter", var_names=("E", "A", "B"), marginals=False, axes=axes) is fig
    # The (E, A) panel holds exp(log_E), exp(log_A) of every draw.
    offsets = np.concatenate([np.asarray(c.get_offsets()) for c in axes[0, 0].collections if len(c.get_offsets())])
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(values["E"].ravel()), rtol=1e-6)
    np.testing.assert_allclose(np.sort(offsets[:, 1]), np.sort(values["A"].ravel()), rtol=1e-6)


@pytest.mark.parametrize(
    "data, kwargs, name",
    [
        ("not a posterior", {}, "posterior_or_idata"),
        (None, dict(kind="hexbin"), "kind"),
        (None, dict(var_names=("E",)), "var_names"),
        (None, dict(var_names=("E", "sigma")), "var_names"),
        (None, dict(max_draws=1), "max_draws"),
        (None, dict(axes=[[None]]), "axes"),
        (None, dict(var_names=("E", "A"), marginals=False, axes=[[None]]), "axes"),
    ],
)
def test_pair_plot_rejects_bad_inputs(data, kwargs, name):
    data = small_idata()[0] if data is None else data
    with pytest.raises(ValueError, match=name):
        plots.pair_plot(data, **kwargs)


def test_pair_plot_rejects_idata_without_constants():
    import arviz as az

    idata = az.from_dict(posterior={"alpha": np.zeros((1, 10)), "beta": np.zeros((1, 10))})
    with pytest.raises(ValueError, match="lacks 'E'"):
        plots.pair_plot(idata)


# --------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------


def tiny_figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([1, 2, 3], [1, 4, 9])
    return fig


@pytest.mark.parametrize("suffix", [".pdf", ".jpg", "", ".png.bak"])
def test_save_rejects_other_suffixes_and_leaves_no_file(tmp_path, suffix):
    with pytest.raises(ValueError, match="path"):
        plots.save(tiny_figure(), tmp_path / f"figure{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_non_figures(tmp_path):
    with pytest.raises(ValueError, match="fig"):
        plots.save("figure", tmp_path / "x.png")
    with pytest.raises(ValueError, match="dpi"):
        plots.save(tiny_figure(), tmp_path / "x.png", dpi=0)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_and_case_insensitive(tmp_path):
    target = tmp_path / "figure.PNG"
    plots.save(tiny_figure(), target)
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["figure.PNG"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600

    # A failure while writing leaves the old file untouched and no temporary file behind.
    original = target.read_bytes()
    fig = tiny_figure()

    def broken(*args, **kwargs):
        args[0].write(b"partial")
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save(fig, target)
    assert target.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["figure.PNG"]

    svg = tmp_path / "figure.Svg"
    plots.save(tiny_figure(), svg)
    assert "<svg" in svg.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.PNG", "figure.Svg"]
