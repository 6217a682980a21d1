"""Matplotlib figures of the posterior and of the plans and costs it implies.

Every function builds its figure with the object-oriented API (``matplotlib.figure.Figure``,
never ``pyplot``), so it works headless, never opens a window and never changes global
``rcParams``. Each takes an optional ``ax`` (``axes`` for the pair plot) to draw into an
existing figure, and returns the matplotlib ``Figure``. :func:`save` writes PNG or SVG
atomically.

* :func:`fan_chart`: posterior bands of the compute-optimal N*(C) and D*(C)
  (Hoffmann et al. 2022, Eq. 4) with Chinchilla, Gopher and Llama-3 8B marked.
* :func:`iso_loss`: iso-loss contours on the (N, D) plane with the compute-optimal frontier,
  its 5-95% band, and iso-FLOP lines 6ND = C.
* :func:`tco_vs_queries`: total cost of ownership of candidate designs against lifetime query
  volume (Sardana et al. 2024), with the crossover query volume of the first two designs.
* :func:`pair_plot`: the posterior of (E, A, B, alpha, beta) through arviz.

Quantities come from :mod:`chinplan.engine` (every draw x every scenario, reduced over draws),
so the plotted bands are exactly what :func:`chinplan.bands` and :func:`chinplan.probability`
return.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks, engine
from chinplan.plots import axes as _figures
from chinplan.decide import risk as decide
from chinplan.decide.crossover import crossover
from chinplan.engine import kernels
from chinplan._files import suffix_of, write_atomic
from chinplan.costs import Deployment
from chinplan.extrapolated import ExtrapolatedLaw
from chinplan.format import short_sci
from chinplan.law import LawParams

__all__ = [
    "REFERENCE_MODELS",
    "save",
    "fan_chart",
    "iso_loss",
    "tco_vs_queries",
    "pair_plot",
]

#: Published training runs marked on the figures: (parameters N, training tokens D).
#: Chinchilla and Gopher: Hoffmann et al. 2022 (Table 1; Chinchilla's budget is 5.76e23
#: FLOPs); Llama-3 8B: Meta, "The Llama 3 Herd of Models" (2024), over 15T tokens.
REFERENCE_MODELS: dict[str, tuple[float, float]] = {
    "Chinchilla 70B": (70e9, 1.4e12),
    "Gopher 280B": (280e9, 300e9),
    "Llama-3 8B": (8e9, 15e12),
}

_SAVE_FORMATS = {".png": "png", ".svg": "svg"}
_N_COLOUR = "tab:blue"
_D_COLOUR = "tab:orange"
_MARKERS = ("o", "s", "^", "D", "v", "P")


# --------------------------------------------------------------------------------------
# Boundary helpers: validate on the host, with errors that name the argument.
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Files.
# --------------------------------------------------------------------------------------


def save(fig, path: str | os.PathLike, *, dpi: float = 150) -> None:
    """Writes ``fig`` to ``path`` as PNG or SVG (by suffix, case-insensitive), atomically.

    The image is written to a temporary file in the same directory and renamed over ``path``
    with ``os.replace``, so a reader never sees a half-written file and a failure leaves no
    file behind.

    Args:
      fig: a matplotlib ``Figure``.
      path: destination ending in ``.png`` or ``.svg``.
      dpi: resolution of a PNG.

    Raises:
      ValueError: ``fig`` is not a Figure, or ``path`` has another suffix.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    path = os.fspath(path)
    suffix = suffix_of(path, _SAVE_FORMATS)
    if suffix is None:
        raise ValueError(f"path must end in .png or .svg, got {path!r}")
    dpi = _checks.positive_number("dpi", dpi)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            fig.savefig(handle, format=_SAVE_FORMATS[suffix], dpi=dpi)

    write_atomic(path, write, suffix=suffix + ".tmp")


# --------------------------------------------------------------------------------------
# 1. Fan chart of the compute-optimal allocation.
# --------------------------------------------------------------------------------------


def fan_chart(
    params: LawParams,
    compute: ArrayLike = np.logspace(18, 26, 41),
    *,
    q: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    references: Mapping[str, tuple[float, float]] | None = None,
    mark: Sequence[float] | None = None,
    runs: tuple[ArrayLike, ArrayLike] | None = None,
    ax=None,
):
    """Posterior fan chart of the compute-optimal parameters N*(C) and tokens D*(C).

    ``runs``: (N, D) of the fitted runs, drawn as grey dots at their budget C = 6ND (where the
    data are, against where the plan extrapolates). References outside the budgets shown are
    left out (no legend entry for a marker off the axes).

    ``mark``: budgets to mark with dashed vertical lines (the ones ``chinplan plan`` was asked
    about), each labelled with its median N* and D*.

    ``params`` may be a LawParams (the law's posterior) or an
    :class:`~chinplan.extrapolation.ExtrapolatedLaw` (``Posterior.extrapolated_params()``):
    then the plans carry the extrapolation component and the budgets beyond the fitted runs
    are shaded grey.

    For every draw theta_i and budget C, N_opt = G (C/6)^a and D_opt = G^-1 (C/6)^b with
    G = (alpha A / (beta B))^(1/(alpha+beta)), a = beta/(alpha+beta), b = alpha/(alpha+beta)
    (Hoffmann et al. 2022, Eq. 4), reduced over draws by :func:`chinplan.bands` with
    :func:`chinplan.compute_optimal` as the per-draw function. N* is drawn in blue and D* in
    orange, on log-log axes: the median as a line (labelled ``"N* median"`` and
    ``"D* median"``) and nested shaded bands for the other levels of ``q``. Published runs
    (Chinchilla, Gopher, Llama-3 8B by default) are marked at their budget C = 6ND.

    Args:
      params: LawParams with a leading draw axis (e.g. ``default_posterior().params``).
      compute: training budgets C in FLOPs, 1-D, increasing, > 0.
      q: quantile levels; must contain 0.5 and pair up symmetrically around it
        (outermost band from the lowest and highest levels).
      references: name -> (N, D) of runs to mark (default :data:`REFERENCE_MODELS`;
        an empty mapping marks none).
      ax: None for a new Figure with two stacked panels (N* above, D* below, shared C axis);
        a pair of Axes for those two panels; or one Axes to draw both curves in it.

    Returns:
      The matplotlib Figure.
    """
    from matplotlib.axes import Axes

    n_draws = _checks.law_draws(params.law if isinstance(params, ExtrapolatedLaw) else params)
    budgets = _figures._positive_grid("compute", compute)
    levels, pairs = _figures._nested_levels(q)
    references = _figures._references(REFERENCE_MODELS if references is None else references)
    if ax is None:
        fig = _figures._new_figure((7.5, 8.0))
        ax_n, ax_d = fig.subplots(2, 1, sharex=True)
    elif isinstance(ax, Axes):
        fig, ax_n = _figures._axes_or_new(ax, (7.5, 5.0))
        ax_d = ax_n
    else:
        try:
            ax_n, ax_d = ax
        except (TypeError, ValueError):
            raise ValueError(f"ax must be None, an Axes or a pair of Axes, got {ax!r}") from None
        if not (isinstance(ax_n, Axes) and isinstance(ax_d, Axes)):
            raise ValueError(f"ax must be None, an Axes or a pair of Axes, got {ax!r}")
        fig = _figures._figure_of(ax_n)
    one_panel = ax_n is ax_d

    marked = [] if mark is None else [float(c) for c in _checks.positive("mark", mark).reshape(-1)]
    fitted = _figures._runs(runs)
    references = {k: v for k, v in references.items() if budgets[0] <= _figures._budget(*v) <= budgets[-1]}
    result = engine.bands(kernels.plan, params, budgets, q=levels).values
    index = {v: i for i, v in enumerate(levels)}
    if isinstance(params, ExtrapolatedLaw):  # shade the budgets beyond the fitted runs
        edge = 10.0 ** float(np.asarray(params.domain)[0, 0])
        for axis in {ax_n, ax_d}:
            if edge < budgets[-1]:
                axis.axvspan(max(edge, budgets[0]), budgets[-1], color="0.85", zorder=0, label="beyond the fitted runs")
    panels = (
        (ax_n, "N*", np.asarray(result["n"], np.float64), _N_COLOUR, 0, "parameters"),
        (ax_d, "D*", np.asarray(result["d"], np.float64), _D_COLOUR, 1, "training tokens"),
    )
    for axis, symbol, values, colour, which, noun in panels:
        for k, (lo, hi) in enumerate(pairs):
            axis.fill_between(
                budgets,
                values[index[lo]],
                values[index[hi]],
                color=colour,
                alpha=0.15 + 0.2 * k / max(1, len(pairs) - 1),
                linewidth=0,
                label=f"{symbol} {_figures._band_label(lo, hi)} band",
            )
        axis.plot(budgets, values[index[0.5]], color=colour, linewidth=2.0, label=f"{symbol} median")
        for k, (name, nd) in enumerate(references.items()):
            c, y = _figures._budget(nd[0], nd[1]), nd[which]
            marker = _MARKERS[k % len(_MARKERS)]
            axis.scatter([c], [y], marker=marker, s=55, color=colour, edgecolor="black", zorder=5)
            if which == 0 or not one_panel:  # legend entry: the marker identifies the run
                axis.scatter(
                    [],
                    [],
                    marker=marker,
                    s=55,
                    color="lightgrey" if one_panel else colour,
                    edgecolor="black",
                    label=f"{name} ({short_sci(nd[0])} params, {short_sci(nd[1])} tokens)",
                )
            if one_panel:  # N labels below-left, D labels above-left, so close pairs stay apart
                offset = (-7, -13) if which == 0 else (-7, 7)
            else:
                offset = (-7, 7 if k % 2 == 0 else -13)
            axis.annotate(
                f"{name} {symbol[0]}" if one_panel else name,
                (c, y),
                xytext=offset,
                textcoords="offset points",
                ha="right",
                fontsize=8,
            )
        if fitted is not None:
            inside = (fitted[2] >= budgets[0]) & (fitted[2] <= budgets[-1])
            axis.scatter(fitted[2][inside], fitted[which][inside], s=6, color="0.45", alpha=0.6, linewidth=0, zorder=3,
                         label="fitted runs" if which == 0 or not one_panel else None)  # fmt: skip
        for j, c in enumerate(marked):
            if which == 0 or not one_panel:
                axis.axvline(c, color="0.3", linestyle="--", linewidth=1.0, label="requested budget" if j == 0 else None)
            y = float(np.interp(np.log(c), np.log(budgets), values[index[0.5]]))
            axis.annotate(f"{symbol[0]}={short_sci(y)}", (c, y), xytext=(5, -4 if which == 0 else 4), textcoords="offset points", fontsize=8)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlim(budgets[0], budgets[-1])
        axis.grid(True, which="major", alpha=0.3)
        if not one_panel:
            axis.set_ylabel(f"{noun} {symbol} (count)")
            axis.legend(loc="upper left", fontsize=8)
    ax_d.set_xlabel("training compute C (FLOPs)")
    if ax is not None and not one_panel:
        ax_n.set_xlabel("training compute C (FLOPs)")  # the caller's panels may not share x
    if one_panel:
        ax_n.set_ylabel("parameters N* or training tokens D* (count)")
        ax_n.legend(loc="upper left", fontsize=7.5)
    ax_n.set_title(_figures.plain_title(f"Compute-optimal allocation, {n_draws} posterior draws ({_figures.uncertainty_label(params)})"), fontsize=10)
    return fig


# --------------------------------------------------------------------------------------
# 2. Iso-loss contours on the (N, D) plane.
# --------------------------------------------------------------------------------------


def iso_loss(
    params: LawParams,
    *,
    n_range: tuple[float, float] = (1e7, 1e13),
    d_range: tuple[float, float] = (1e9, 1e15),
    levels: ArrayLike | None = None,
    grid_points: int = 81,
    flops: ArrayLike | None = None,
    references: Mapping[str, tuple[float, float]] | None = None,
    runs: tuple[ArrayLike, ArrayLike] | None = None,
    ax=None,
):
    """Iso-loss contours on the (N, D) plane, the compute-optimal frontier and iso-FLOP lines.

    ``runs``: (N, D) of the fitted runs, drawn as grey dots. References outside the plane
    shown are left out. Each contour is labelled with its loss.

    The contours are of the pointwise posterior median loss: at each grid point (N, D) the
    median over draws of L_i(N, D) = E_i + A_i/N^alpha_i + B_i/D^beta_i (Hoffmann et al.
    2022, Eq. 2), computed by :func:`chinplan.bands`. (This is not the loss of the law made of
    each constant's median.) The frontier is the posterior median of the compute-optimal plan
    (N*(C), D*(C)) across budgets C (Eq. 4); because every draw's optimum lies on the budget
    line 6ND = C, the 5-95% band is the region between (N*_5%(C), C/(6 N*_5%)) and
    (N*_95%(C), C/(6 N*_95%)). Dashed grey lines are iso-FLOP lines 6ND = C.

    Args:
      params: LawParams with a leading draw axis.
      n_range: (lo, hi) parameters shown, 0 < lo < hi.
      d_range: (lo, hi) training tokens shown, 0 < lo < hi.
      levels: loss values of the contours (increasing); None picks about eight round values
        spanning the plane.
      grid_points: grid points per axis (log-spaced), at least 8.
      flops: budgets C of the iso-FLOP lines; None draws every second decade crossing the plane.
      references: name -> (N, D) runs to mark (default :data:`REFERENCE_MODELS`).
      ax: a matplotlib Axes to draw into; a new Figure when None.

    Returns:
      The matplotlib Figure.
    """
    n_draws = _checks.law_draws(params.law if isinstance(params, ExtrapolatedLaw) else params)
    n_lo, n_hi = _figures._range("n_range", n_range)
    d_lo, d_hi = _figures._range("d_range", d_range)
    if isinstance(grid_points, bool) or not isinstance(grid_points, (int, np.integer)) or grid_points < 8:
        raise ValueError(f"grid_points must be an integer >= 8, got {grid_points!r}")
    if levels is not None:
        levels = _figures._levels("levels", levels)
    c_lo, c_hi = _figures._budget(n_lo, d_lo), _figures._budget(n_hi, d_hi)
    if flops is None:
        decades = np.arange(math.ceil(math.log10(c_lo)), math.floor(math.log10(c_hi)) + 1)
        flops = 10.0 ** decades[decades % 2 == 0] if decades.size > 4 else 10.0 ** decades
    else:
        flops = _figures._positive_grid("flops", np.atleast_1d(flops), min_points=1)
    references = _figures._references(REFERENCE_MODELS if references is None else references)
    references = {k: (n, d) for k, (n, d) in references.items() if n_lo <= n <= n_hi and d_lo <= d <= d_hi}
    fitted = _figures._runs(runs)
    fig, ax = _figures._axes_or_new(ax, (10.0, 6.5))

    n_grid = np.logspace(math.log10(n_lo), math.log10(n_hi), int(grid_points))
    d_grid = np.logspace(math.log10(d_lo), math.log10(d_hi), int(grid_points))
    median_loss = np.asarray(
        engine.bands(kernels.loss, params, n_grid[:, None], d_grid[None, :], q=(0.5,)).values[0], np.float64
    )
    if levels is None:
        levels = _figures._auto_levels(median_loss)
    contours = ax.contour(n_grid, d_grid, median_loss.T, levels=levels, cmap="viridis", linewidths=1.2)
    _figures.label_contours(ax, contours, (n_lo, n_hi), (d_lo, d_hi))

    budgets = np.logspace(math.log10(c_lo), math.log10(c_hi), 121)
    frontier = engine.bands(kernels.plan, params, budgets, q=(0.05, 0.5, 0.95)).values  # the law's or extrapolated optimum
    n_q = np.asarray(frontier["n"], np.float64)
    d_q = np.asarray(frontier["d"], np.float64)
    # The band's edges: the 5% and 95% model sizes on each budget line D = C / (6 N).
    edge_lo = (n_q[0], _figures._budget_tokens(budgets, n_q[0]))
    edge_hi = (n_q[2], _figures._budget_tokens(budgets, n_q[2]))
    ax.fill(
        np.concatenate([edge_lo[0], edge_hi[0][::-1]]),
        np.concatenate([edge_lo[1], edge_hi[1][::-1]]),
        color="tab:red",
        alpha=0.2,
        linewidth=0,
        label="compute-optimal 5–95% band",
    )
    ax.plot(n_q[1], d_q[1], color="tab:red", linewidth=2.0, label="compute-optimal frontier (median)")

    n_line = np.array([n_lo, n_hi])
    for k, c in enumerate(flops):
        ax.plot(
            n_line,
            _figures._budget_tokens(c, n_line),
            color="grey",
            linestyle="--",
            linewidth=0.8,
            label="iso-FLOP 6ND = C" if k == 0 else None,
        )
        n_text = _figures._iso_flop_label_n(c, n_lo, n_hi, d_lo, d_hi)
        if n_text is not None:
            ax.annotate(
                f"C = {short_sci(c)} FLOPs",
                (n_text, _figures._budget_tokens(c, n_text)),
                xytext=(2, 2),
                textcoords="offset points",
                fontsize=7,
                color="dimgrey",
            )

    for k, (name, (n, d)) in enumerate(references.items()):
        marker = _MARKERS[k % len(_MARKERS)]
        ax.scatter([n], [d], marker=marker, s=45, color="white", edgecolor="black", zorder=5, label=name)

    if fitted is not None:
        ax.scatter(fitted[0], fitted[1], s=8, color="0.35", alpha=0.6, linewidth=0, zorder=4, label=f"fitted runs ({fitted[0].size})")

    # A proxy so the contour colours appear in the legend.
    ax.plot([], [], color=contours.get_cmap()(0.5), linewidth=1.2, label=f"median loss L(N, D) (nats), {n_draws} draws")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(d_lo, d_hi)
    ax.set_xlabel("parameters N (count)")
    ax.set_ylabel("training tokens D (count)")
    ax.set_title(_figures.plain_title(f"Iso-loss contours of the posterior median loss (nats; {_figures.uncertainty_label(params)})", 70))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
    return fig


# --------------------------------------------------------------------------------------
# 3. Total cost of ownership against lifetime query volume.
# --------------------------------------------------------------------------------------


def tco_vs_queries(
    params: LawParams | decide.Draws,
    designs: Mapping[str, tuple[float, float]],
    deployment: Deployment | None,
    queries: ArrayLike = np.logspace(7, 11, 41),
    *,
    key: jax.Array | None = None,
    refine: int = 8,
    hardware: str | None = None,
    ax=None,
):
    """Total cost of ownership of each design against lifetime query volume.

    The title states the deployment (``hardware``'s name if given, peak, MFU, price, tokens
    per query) and each design's legend entry its median loss.

    Dollars = price * 6ND / (3600 P U_train) + inference price * 2N Q (T_in/U_prefill +
    T_out/U_decode) / (3600 P_inf) (:func:`chinplan.tco`; Sardana et al. 2024, §3). The
    deployment's uncertain fields are sampled once per posterior draw
    (:func:`chinplan.costs.with_cost_draws`, common random numbers across designs and query
    volumes); its ``queries`` field is replaced by each value of ``queries``. Each design gets
    its median line and 5-95% band (:func:`chinplan.bands`).

    With two or more designs, A and B being the first two, the figure marks where
    P(A cheaper than B) (:func:`chinplan.probability`, evaluated on a ``refine`` times finer
    log-spaced grid and interpolated in log Q) crosses 0.5 (a dotted vertical line) and the
    shaded span of query volumes where it lies between 0.05 and 0.95: below or above the span
    the cheaper design is known with at least 95% probability. If P never enters
    [0.05, 0.95] within the range, no span is drawn.

    Args:
      params: LawParams with a leading draw axis (fixes the number of draws; the dollars do
        not depend on the law), or a :class:`chinplan.decide.Draws` whose deployment is
        already sampled (then ``deployment`` and ``key`` are None).
      designs: label -> (N parameters, D training tokens); at least one.
      deployment: a :class:`chinplan.Deployment` whose fields may be distributions.
      queries: lifetime query volumes, 1-D, increasing, > 0.
      key: PRNG key, required when a field of ``deployment`` is a distribution.
      refine: grid refinement factor for locating the crossover (>= 1).
      ax: a matplotlib Axes to draw into; a new Figure when None.

    Returns:
      The matplotlib Figure.
    """
    if not isinstance(params, decide.Draws):
        _checks.law_draws(params.law if isinstance(params, ExtrapolatedLaw) else params)
    if not isinstance(designs, Mapping) or len(designs) == 0:
        raise ValueError(f"designs must be a non-empty mapping label -> (n, d), got {designs!r}")
    checked = {}
    for label, value in designs.items():
        try:
            n, d = value
        except (TypeError, ValueError):
            raise ValueError(f"designs[{label!r}] must be a pair (n, d), got {value!r}") from None
        checked[str(label)] = (
            _checks.positive_number(f"designs[{label!r}] n", n),
            _checks.positive_number(f"designs[{label!r}] d", d),
        )
    if not isinstance(params, decide.Draws) and not isinstance(deployment, Deployment):
        raise ValueError(f"deployment must be a chinplan.Deployment, got {type(deployment).__name__}")
    q_grid = _figures._positive_grid("queries", queries)
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 1:
        raise ValueError(f"refine must be an integer >= 1, got {refine!r}")
    # The deployment's queries field is replaced per scenario by the kernels (checked as 0 here).
    theta = decide.draw_pairs(params, deployment if deployment is None else deployment._replace(queries=0.0), key=key)
    fig, ax = _figures._axes_or_new(ax, (7.5, 5.0))

    labels = list(checked)
    n_arr = np.array([checked[k][0] for k in labels])
    d_arr = np.array([checked[k][1] for k in labels])
    result = engine.bands(
        kernels.dollars_at_queries, theta, n_arr[:, None], d_arr[:, None], q_grid[None, :], q=(0.05, 0.5, 0.95)
    )
    dollars = np.asarray(result.values, np.float64)  # (quantile, design, queries)
    # Each design's median loss, in the legend: a worse model must not look simply cheaper.
    losses = np.asarray(engine.bands(kernels.design_point, theta, n_arr, d_arr, q=(0.5,)).values["loss"], np.float64)[0]
    colours = [f"C{k % 10}" for k in range(len(labels))]
    for k, label in enumerate(labels):
        n, d = checked[label]
        spread = np.abs(dollars[2, k] - dollars[0, k]) > 1e-6 * np.abs(dollars[1, k])
        banded = bool(np.any(spread))  # a fixed deployment gives one cost per volume: no band
        if banded:
            ax.fill_between(q_grid, dollars[0, k], dollars[2, k], color=colours[k], alpha=0.2, linewidth=0)
        ax.plot(
            q_grid,
            dollars[1, k],
            color=colours[k],
            linewidth=2.0,
            label=f"{label} (N={short_sci(n)}, D={short_sci(d)}, loss {losses[k]:.3f})" + (": median, 5–95% band" if banded else ""),
        )

    if len(labels) >= 2:  # one computation of the crossover: chinplan.decide.crossover
        a, b = labels[0], labels[1]
        found = crossover(theta, checked[a], checked[b], q_grid, refine=int(refine))
        span, median_cross, p = found["span"], found["median"], found["p"]
        if span is not None and found["uncertain"]:  # else every draw agrees: no band
            ax.axvspan(
                *span,
                color="grey",
                alpha=0.15,
                linewidth=0,
                label=f"crossover band: 0.05 ≤ P({a} cheaper than {b}) ≤ 0.95",
            )
        if median_cross is not None:
            ax.axvline(
                median_cross,
                color="black",
                linestyle=":",
                linewidth=1.2,
                label=f"P({a} cheaper) = 0.5 at {short_sci(median_cross)} queries",
            )
        elif span is None:
            cheaper = a if p[-1] > 0.5 else b
            ax.plot([], [], linestyle="none", label=f"no crossover in range: {cheaper} cheaper (P ≥ 0.95)")

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(q_grid[0], q_grid[-1])
    ax.set_xlabel("lifetime queries Q (count)")
    ax.set_ylabel("total cost of ownership (US$)")
    ax.set_title(_figures.plain_title(
        f"Training + serving cost vs query volume ({decide.draw_count(theta)} draws, {_figures.uncertainty_label(theta)})\n"
        f"{_figures._deployment_title(theta.deployment, hardware)}"), fontsize=10,
    )  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


# --------------------------------------------------------------------------------------
# 4. Posterior pair plot.
# --------------------------------------------------------------------------------------


def pair_plot(
    posterior_or_idata: Any,
    *,
    kind: str = "kde",
    var_names: Sequence[str] = _figures.PAIR_NAMES,
    max_draws: int | None = 2000,
    marginals: bool = True,
    axes=None,
):
    """Pair plot of the posterior of the law's constants E, A, B, alpha, beta (arviz).

    L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2): E in nats; A and B in
    nats at N = 1 and D = 1; alpha and beta dimensionless. The fit samples log E, log A,
    log B, which are exponentiated here. Drawn by ``arviz.plot_pair`` into a Figure built
    without pyplot.

    Args:
      posterior_or_idata: a :class:`chinplan.Posterior` (its ``.to_arviz()`` is used) or an
        arviz ``InferenceData`` whose posterior has E, A, B (or log_E, log_A, log_B), alpha
        and beta.
      kind: ``"kde"`` or ``"scatter"``.
      var_names: which of E, A, B, alpha, beta to show (at least two).
      max_draws: thin the draws (evenly along each chain) to about this many; None keeps all.
      marginals: draw the 1-D marginals on the diagonal.
      axes: a square array of Axes for arviz (k x k with marginals, (k-1) x (k-1) without);
        a new Figure when None.

    Returns:
      The matplotlib Figure.
    """
    import arviz as az

    if kind not in ("kde", "scatter"):
        raise ValueError(f"kind must be 'kde' or 'scatter', got {kind!r}")
    names = [str(v) for v in (var_names if not isinstance(var_names, str) else [var_names])]
    if len(names) < 2 or len(set(names)) != len(names) or any(v not in _figures.PAIR_NAMES for v in names):
        raise ValueError(f"var_names must be at least two distinct names from {_figures.PAIR_NAMES}, got {var_names!r}")
    bad_max = isinstance(max_draws, bool) or not isinstance(max_draws, (int, np.integer)) or max_draws < 2
    if max_draws is not None and bad_max:
        raise ValueError(f"max_draws must be an integer >= 2 or None, got {max_draws!r}")
    ds = _figures._pair_dataset(posterior_or_idata, max_draws)[names]
    k = len(names) if marginals else len(names) - 1
    if axes is None:
        fig = _figures._new_figure((2.0 * k + 1.0, 2.0 * k + 0.6))
        axes = fig.subplots(k, k, squeeze=False)
    else:
        grid = np.asarray(axes, dtype=object)
        if grid.shape != (k, k):
            raise ValueError(
                f"axes must be a {k} x {k} array of Axes for {len(names)} variables, got shape {grid.shape}"
            )
        from matplotlib.axes import Axes

        if not all(isinstance(a, Axes) for a in grid.flat):
            raise ValueError("axes must contain only matplotlib Axes")
        axes = grid
        fig = _figures._figure_of(grid.flat[0])
    az.plot_pair(
        ds,
        var_names=names,
        kind=kind,
        marginals=marginals,
        ax=axes,
        show=False,
        scatter_kwargs={"alpha": 0.3, "s": 4} if kind == "scatter" else None,
    )
    grid = np.asarray(axes, dtype=object).reshape(k, k)
    from matplotlib.ticker import MaxNLocator

    for row in range(k):
        for col in range(k):
            ax = grid[row, col]
            ax.xaxis.set_major_locator(MaxNLocator(3))  # tick labels never run into each other
            if marginals and row == col:  # a marginal: its y axis is a density, not a constant
                ax.set_yticks([])
                ax.set_ylabel("density" if col == 0 else "")
            elif col == 0:
                ax.yaxis.set_major_locator(MaxNLocator(4))
    draws = int(ds.sizes.get("chain", 1) * ds.sizes.get("draw", 1))
    fig.suptitle(rf"Posterior of the law $L = E + A/N^{{\alpha}} + B/D^{{\beta}}$ ({draws} draws; E in nats)")
    return fig
