"""Where one design becomes cheaper than another as the query volume grows: the crossover.

Two designs (N, D) trade training cost against serving cost: the smaller one, trained on more
tokens, costs more to train and less per query, so past some lifetime query volume it is the
cheaper of the two (Sardana et al. 2024). Under the posterior the crossover is a band:
:func:`crossover` gives P(A cheaper than B) on a fine grid of volumes, where it crosses 0.5
and the span of volumes where it lies between 0.05 and 0.95. ``chinplan tco --plot``
(:func:`chinplan.plots.charts.tco_vs_queries`) draws it and ``chinplan report`` tabulates it:
one computation, here.
"""

from __future__ import annotations

import math

import numpy as np

from chinplan import _checks, engine
from chinplan.decide.curves import crossing, uncertain_span
from chinplan.engine import kernels

__all__ = ["crossover", "CROSSOVER_BAND"]

#: The probabilities between which the cheaper design is called uncertain.
CROSSOVER_BAND = (0.05, 0.95)


def crossover(theta, design_a, design_b, queries, *, refine: int = 8) -> dict:
    """P(design A cheaper than design B) against lifetime queries, and where it crosses.

    Args:
      theta: a :class:`chinplan.decide.Draws` (law draws with their sampled deployment; its
        ``queries`` are replaced by each volume).
      design_a, design_b: (N parameters, D training tokens).
      queries: the volumes, 1-D, increasing, > 0; P is evaluated on a ``refine`` times finer
        log-spaced grid over the same range and interpolated in log Q.

    Returns:
      dict with ``queries`` (the fine grid), ``p`` (P(A cheaper) on it), ``median`` (the volume
      where P crosses 0.5, or None), ``span`` (the volumes where 0.05 <= P <= 0.95, or None)
      and ``uncertain`` (whether P lies strictly inside (0.05, 0.95) anywhere: else every
      draw agrees and the span, if any, is a step).
    """
    grid = _checks.positive("queries", queries, allow_empty=False)
    if grid.ndim != 1 or np.any(np.diff(grid) <= 0):
        raise ValueError(f"queries must be 1-D and increasing, got {grid!r}")
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 1:
        raise ValueError(f"refine must be an integer >= 1, got {refine!r}")
    (n_a, d_a), (n_b, d_b) = design_a, design_b
    fine = np.logspace(math.log10(grid[0]), math.log10(grid[-1]), (len(grid) - 1) * int(refine) + 1)
    p = np.asarray(engine.probability(kernels.cheaper_at_queries, theta, n_a, d_a, n_b, d_b, fine), np.float64)
    lo, hi = CROSSOVER_BAND
    return {
        "queries": fine,
        "p": p,
        "median": crossing(fine, p, 0.5),
        "span": uncertain_span(np.log(fine), p, lo, hi),
        "uncertain": bool(np.any((p > lo) & (p < hi))),
    }
