"""Private helpers of :mod:`chinplan.plots`: figures and axes without pyplot, checked grids
and ranges, legend labels, reference runs, contour levels and crossover spans.

Boundary checks happen here on the host, with errors that name the argument.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks

#: The law's constants drawn by the pair plot.
PAIR_NAMES = ("E", "A", "B", "alpha", "beta")


def _new_figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _figure_of(ax) -> Any:
    """The top-level Figure an Axes belongs to (not a SubFigure)."""
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10
        fig = ax.figure
        while hasattr(fig, "figure") and fig.figure is not fig and fig.figure is not None:
            fig = fig.figure
        return fig


def _axes_or_new(ax, figsize: tuple[float, float]):
    from matplotlib.axes import Axes

    if ax is None:
        fig = _new_figure(figsize)
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return _figure_of(ax), ax


def _budget(n, d):
    """Training FLOPs C = 6ND (:func:`chinplan.law.training_flops`) on the host, in float64, for drawing."""
    return 6.0 * np.asarray(n, np.float64) * np.asarray(d, np.float64)


def _budget_tokens(c, n):
    """The other factor on the budget line: D = C / (6N) (or N = C / (6D)), on the host."""
    return np.asarray(c, np.float64) / _budget(n, 1.0)


def _positive_grid(name: str, x: ArrayLike, *, min_points: int = 2) -> np.ndarray:
    """A 1-D, strictly increasing host array of finite values > 0 (a grid, or contour levels)."""
    arr = _checks.positive(name, x)
    if arr.ndim != 1 or arr.size < min_points:
        raise ValueError(f"{name} must be 1-D with at least {min_points} values, got shape {arr.shape}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing, got {arr.tolist()}")
    return arr


def _range(name: str, value: Any) -> tuple[float, float]:
    """A (lo, hi) pair with 0 < lo < hi < inf."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"{name} must satisfy 0 < lo < hi < inf, got {value!r}")
    return lo, hi


def _nested_levels(q: Sequence[float]) -> tuple[tuple[float, ...], list[tuple[float, float]]]:
    """Validated levels and the (lower, upper) pairs of nested bands, outermost first.

    ``q`` must be strictly increasing in [0, 1], contain 0.5 (the median line) and have as
    many levels below 0.5 as above; the i-th lowest pairs with the i-th highest.
    """
    try:
        levels = tuple(float(v) for v in q)
    except (TypeError, ValueError):
        raise ValueError(f"q must be a sequence of quantile levels, got {q!r}") from None
    if not levels or any(not 0.0 <= v <= 1.0 for v in levels) or any(b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"q must be strictly increasing levels in [0, 1], got {q!r}")
    if 0.5 not in levels:
        raise ValueError(f"q must contain 0.5 (the median line), got {q!r}")
    lower = [v for v in levels if v < 0.5]
    upper = [v for v in levels if v > 0.5]
    if len(lower) != len(upper):
        raise ValueError(f"q must have as many levels below 0.5 as above (nested bands), got {q!r}")
    return levels, list(zip(lower, reversed(upper)))


def _band_label(lo: float, hi: float) -> str:
    return f"{100 * lo:g}–{100 * hi:g}%"


def _references(references: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    if not isinstance(references, Mapping):
        raise ValueError(f"references must be a mapping name -> (N, D), got {type(references).__name__}")
    out = {}
    for name, value in references.items():
        try:
            n, d = value
        except (TypeError, ValueError):
            raise ValueError(f"references[{name!r}] must be a pair (N, D), got {value!r}") from None
        out[str(name)] = (
            _checks.positive_number(f"references[{name!r}] N", n),
            _checks.positive_number(f"references[{name!r}] D", d),
        )
    return out


def _iso_flop_label_n(c: float, n_lo: float, n_hi: float, d_lo: float, d_hi: float) -> float | None:
    """An N inside the plot where the line 6ND = C is visible, near its upper-left end."""
    lo = max(n_lo, _budget_tokens(c, d_hi))
    hi = min(n_hi, _budget_tokens(c, d_lo))
    if math.log10(hi / lo) < 1.5:  # too short a visible piece to carry a label
        return None
    return math.exp(math.log(lo) + 0.12 * (math.log(hi) - math.log(lo)))


def _levels(name: str, levels: ArrayLike) -> np.ndarray:
    return _positive_grid(name, levels if np.ndim(levels) else [levels], min_points=1)


def _auto_levels(values: np.ndarray) -> np.ndarray:
    """About eight round loss values spread (in quantiles) over the plotted plane."""
    finite = values[np.isfinite(values)]
    raw = np.quantile(finite, np.linspace(0.03, 0.97, 8))
    for decimals in (1, 2, 3):
        out = np.unique(np.round(raw, decimals))
        if out.size >= 6:
            return out
    return np.unique(raw)


def _pair_dataset(data: Any, max_draws: int | None):
    """An xarray Dataset with E, A, B, alpha, beta over (chain, draw), thinned to max_draws."""
    import arviz as az
    import xarray as xr

    from chinplan.inference.posterior import Posterior

    if isinstance(data, Posterior):
        data = data.to_arviz()
    if not isinstance(data, az.InferenceData):
        raise ValueError(
            f"posterior_or_idata must be a chinplan Posterior or an arviz InferenceData, got {type(data).__name__}"
        )
    if "posterior" not in data.groups():
        raise ValueError("posterior_or_idata has no 'posterior' group")
    post = data.posterior
    variables = {}
    for name in PAIR_NAMES:
        if name in post:
            variables[name] = post[name]
        elif name in ("E", "A", "B") and f"log_{name}" in post:
            variables[name] = np.exp(post[f"log_{name}"])
        else:
            raise ValueError(
                f"posterior_or_idata's posterior lacks {name!r} (or log_{name}); has {list(post.data_vars)}"
            )
    ds = xr.Dataset(variables)
    if max_draws is not None:
        total = int(ds.sizes.get("chain", 1) * ds.sizes.get("draw", 1))
        step = max(1, math.ceil(total / max_draws))
        if step > 1 and "draw" in ds.dims:
            ds = ds.isel(draw=slice(None, None, step))
    total = int(ds.sizes.get("chain", 1) * ds.sizes.get("draw", 1))
    if total < 2:
        raise ValueError(f"a pair plot needs at least 2 posterior draws; the posterior has {total}")
    return ds


def _runs(runs):
    """(N, D, C = 6ND) of fitted runs as float64 arrays, or None; ValueError naming ``runs``."""
    if runs is None:
        return None
    try:
        n, d = runs
    except (TypeError, ValueError):
        raise ValueError(f"runs must be a pair (N array, D array), got {type(runs).__name__}") from None
    n = _checks.positive("runs N", n, allow_empty=False).reshape(-1)
    d = _checks.positive("runs D", d, allow_empty=False).reshape(-1)
    if n.shape != d.shape:
        raise ValueError(f"runs N and D must have the same length, got {n.size} and {d.size}")
    return n, d, 6.0 * n * d


def plain_title(text: str, width: int = 90) -> str:
    """A figure title as plain text: ``$`` escaped (never read as mathtext) and each line
    wrapped at ``width`` characters, so the constrained layout never cuts it at an edge."""
    import textwrap

    lines = []
    for line in text.split("\n"):
        lines += textwrap.wrap(line, width, break_on_hyphens=False) or [""]
    return "\n".join(lines).replace("$", r"\$")


def _deployment_title(deployment, hardware: str | None = None) -> str:
    """'989 TFLOP/s peak, MFU 40% train, $2/GPU-hour, 500 tokens/query (375 in + 125 out)': a
    fixed value as it is; a sampled one (a range LO:HI) as 'LO-HI (median M)', for a figure's
    title (pass it through :func:`plain_title`)."""

    def median(x):
        return float(np.median(np.asarray(x, np.float64)))

    def value(x, fmt, unit, scale=1.0, prefix=""):
        array = np.asarray(x, np.float64) * scale
        if array.size > 1 and np.ptp(array) > 1e-9 * abs(float(np.max(array))):
            lo, hi, mid = (format(v, fmt) for v in (float(np.min(array)), float(np.max(array)), float(np.median(array))))
            return f"{prefix}{lo}-{hi}{unit} (sampled, median {prefix}{mid})"
        return f"{prefix}{format(float(np.median(array)), fmt)}{unit}"

    tokens_in, tokens_out = median(deployment.input_tokens), median(deployment.output_tokens)
    serve = deployment.inference_price
    train = value(deployment.price, ".3g", "/GPU-hour", prefix="$")
    prices = train if serve is None else f"{train} train, {value(serve, '.3g', '/GPU-hour', prefix='$')} serve"
    chip = f"{hardware}, " if hardware else ""
    return (f"{chip}{median(deployment.peak_flops) / 1e12:.4g} TFLOP/s peak, MFU {value(deployment.mfu_train, '.3g', '%', 100)} train, "
            f"{prices}, {tokens_in + tokens_out:.4g} tokens/query ({tokens_in:.4g} in + {tokens_out:.4g} out)")  # fmt: skip


def uncertainty_label(params) -> str:
    """Which uncertainty a figure's draws carry, for its title: the extrapolation component
    (an ExtrapolatedLaw with any drift, offset or level term) or the law alone."""
    theta = params.law if hasattr(params, "deployment") else params  # a decide.Draws holds the law draws
    terms = [getattr(theta, name, None) for name in ("u", "v", "kappa", "c")]
    if any(t is not None and np.any(np.asarray(t) != 0) for t in terms):
        return "extrapolation uncertainty"
    return "law uncertainty"


def label_contours(ax, contours, n_range, d_range, margin: float = 0.08) -> None:
    """One label per contour level that shows in the axes, at the middle of its visible part
    (at least ``margin`` of each log axis from the edges where it can be): every line is
    labelled, none is cut at an edge (``clabel`` skips short lines and cuts labels on log axes)."""
    spans = [(math.log10(lo), math.log10(hi)) for lo, hi in (n_range, d_range)]
    for level, segments in zip(contours.levels, contours.allsegs):
        segments = [np.asarray(seg) for seg in segments if len(seg)]
        if not segments:
            continue
        points = np.concatenate(segments, axis=0)
        logs = np.log10(points)
        inside = np.ones(len(points), bool)
        for axis, (lo, hi) in enumerate(spans):
            pad = margin * (hi - lo)
            inside &= (logs[:, axis] > lo + pad) & (logs[:, axis] < hi - pad)
        if not inside.any():
            visible = np.all([(logs[:, a] >= lo) & (logs[:, a] <= hi) for a, (lo, hi) in enumerate(spans)], axis=0)
            if not visible.any():
                continue
            inside = visible
        n, d = points[np.flatnonzero(inside)[int(inside.sum()) // 2]]
        ax.text(n, d, f"{level:.2f}", fontsize=8, ha="center", va="center", color=contours.cmap(contours.norm(level)), zorder=6,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8), gid="iso-loss-label")  # fmt: skip
