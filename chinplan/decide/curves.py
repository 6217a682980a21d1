"""Curves on a grid of x (query volumes): where a probability p(x) crosses a level, and the
span of x where it lies within a band; p is interpolated linearly in log x between points.
NumPy only (no engine): :mod:`.risk` and :mod:`.crossover` share it."""

from __future__ import annotations

import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks

__all__ = ["crossing", "uncertain_span"]


def crossing(x: ArrayLike, p: ArrayLike, level: float) -> float | None:
    """The first x at which the curve p(x) crosses ``level``; None if it never does.

    ``x`` is an increasing grid > 0 (e.g. query volumes) and ``p`` a probability on it (e.g.
    P(design A cheaper) from :func:`chinplan.decide.prob_cheaper`); between grid points p is interpolated
    linearly in log x.
    """
    x = _checks.positive("x", x, allow_empty=False)
    p = _checks.in_range("p", p, 0.0, 1.0, allow_empty=False)
    if x.ndim != 1 or p.shape != x.shape:
        raise ValueError(f"x and p must be 1-D of one length, got shapes {x.shape} and {p.shape}")
    s = p - _checks.level("level", level)
    log_x = np.log(x)
    for i in range(len(s) - 1):
        if s[i] == 0:
            return float(x[i])
        if s[i] * s[i + 1] < 0:
            t = s[i] / (s[i] - s[i + 1])
            return float(np.exp(log_x[i] + t * (log_x[i + 1] - log_x[i])))
    return float(x[-1]) if s[-1] == 0 else None


def uncertain_span(log_x: np.ndarray, p: np.ndarray, lo: float, hi: float) -> tuple[float, float] | None:
    """The smallest interval of x holding every x where lo <= p(x) <= hi.

    p is interpolated linearly in log x between grid points, so a jump across the whole band
    between two neighbours (e.g. when every draw agrees) still gives a thin span there.
    None when p never enters [lo, hi].
    """
    pieces = []
    for i in range(len(p) - 1):
        p0, dp = p[i], p[i + 1] - p[i]
        if dp == 0:
            t0, t1 = (0.0, 1.0) if lo <= p0 <= hi else (1.0, 0.0)
        else:
            t0, t1 = sorted(((lo - p0) / dp, (hi - p0) / dp))
            t0, t1 = max(t0, 0.0), min(t1, 1.0)
        if t0 <= t1:
            step = log_x[i + 1] - log_x[i]
            pieces.append((log_x[i] + t0 * step, log_x[i] + t1 * step))
    if not pieces:
        return None
    return float(np.exp(min(x for x, _ in pieces))), float(np.exp(max(x for _, x in pieces)))
