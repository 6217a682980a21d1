"""Regret of planning with a point estimate instead of the posterior, per FLOP budget.

:func:`regret_compute` compares the Chinchilla optimum of one law (the posterior median by
default) with the plan that minimises the posterior expected loss on the same budget line,
and reports the expected-loss gap (Hoffmann et al. 2022, Eq. 4; a Bayes decision).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jax.typing import ArrayLike

from chinplan import _checks, engine
from chinplan.engine import kernels
from chinplan.decide.risk import _constants, _law_draws, median_params
from chinplan.format import records_html
from chinplan.law import LawParams
from chinplan.optima import compute_optimal, sensible_budget

__all__ = ["Regret", "regret_compute"]


class Regret(NamedTuple):
    """Point-estimate plan vs posterior-aware plan at each compute budget (arrays)."""

    compute: np.ndarray
    point_n: np.ndarray
    point_d: np.ndarray
    point_expected_loss: np.ndarray
    bayes_n: np.ndarray
    bayes_d: np.ndarray
    bayes_expected_loss: np.ndarray
    regret: np.ndarray

    def _repr_html_(self) -> str:
        """A notebook's view: one row per budget, every number exact in ``data-values``."""
        return records_html("Regret: the point-estimate plan against the posterior-aware plan", self._asdict())


def regret_compute(
    params: LawParams,
    compute: ArrayLike,
    *,
    point: LawParams | None = None,
    grid_points: int = 241,
    span: float = 3.0,
    chunk_size: int | None = None,
    as_frame: bool = True,
):
    """Regret of planning with a point estimate instead of the posterior, per FLOP budget.

    Point plan: the Chinchilla optimum (Hoffmann et al. 2022, Eq. 4) at budget C under
    ``point`` (default: :func:`median_params`). Posterior-aware plan: the N on the budget line
    D = C / (6N) minimising the posterior expected loss E_theta[L_theta(N, D)], found on a
    grid of ``grid_points`` values of log N within ``span`` of the point plan (the point plan
    is the centre, so regret >= 0 exactly) and refined by the vertex of the parabola through
    the best grid point and its neighbours (the expected loss is convex in log N along the
    line: a sum of exponentials). Regret = E[L(point plan)] - E[L(posterior plan)].

    Returns:
      A ``pandas.DataFrame`` indexed by ``compute`` (or a :class:`Regret` of NumPy arrays
      with ``as_frame=False``).

    Raises:
      ValueError: a budget below :func:`smallest_budget` of the point law (about 6-30 FLOPs:
        the optimum would have N* < 1 parameter or D* < 1 token, almost surely a units
        mistake), besides the usual bad ``compute``, ``grid_points`` or ``span``.
    """
    law_params, _ = _law_draws(params)
    point = median_params(_constants(law_params)) if point is None else point
    c = sensible_budget("compute", compute, point)
    if c.ndim != 1:
        raise ValueError(f"compute must be a scalar or 1-D, got shape {c.shape}")
    grid_points = _checks.integer("grid_points", grid_points, 3, high=10**7)
    if grid_points % 2 == 0:
        raise ValueError(f"grid_points must be an odd integer >= 3, got {grid_points!r}")
    span = _checks.positive_number("span", span)
    as_frame = _checks.flag("as_frame", as_frame)
    plan = compute_optimal(point, c)
    x0 = np.log(np.asarray(plan.n, np.float64))
    offsets = np.linspace(-span, span, int(grid_points))
    x = x0[:, None] + offsets[None, :]
    log_c6 = np.log(c / 6.0)[:, None]
    grid_loss = np.asarray(
        engine.expectation(kernels.loss, law_params, np.exp(x), np.exp(log_c6 - x), chunk_size=chunk_size), np.float64
    )
    centre = grid_points // 2
    point_loss = grid_loss[:, centre]
    j = np.clip(np.argmin(grid_loss, axis=1), 1, grid_points - 2)
    rows = np.arange(len(c))
    f0, f1, f2 = grid_loss[rows, j - 1], grid_loss[rows, j], grid_loss[rows, j + 1]
    h = offsets[1] - offsets[0]
    denom = f0 - 2 * f1 + f2
    shift = np.where(denom > 0, 0.5 * h * (f0 - f2) / np.where(denom > 0, denom, 1.0), 0.0)
    x_ref = x[rows, j] + np.clip(shift, -h, h)
    ref_loss = np.asarray(
        engine.expectation(kernels.loss, law_params, np.exp(x_ref), np.exp(log_c6[:, 0] - x_ref), chunk_size=chunk_size), np.float64
    )
    j_best = np.argmin(grid_loss, axis=1)
    use_ref = ref_loss < grid_loss[rows, j_best]
    xb = np.where(use_ref, x_ref, x[rows, j_best])
    lb = np.where(use_ref, ref_loss, grid_loss[rows, j_best])
    result = Regret(
        compute=c,
        point_n=np.exp(x0),
        point_d=np.exp(log_c6[:, 0] - x0),
        point_expected_loss=point_loss,
        bayes_n=np.exp(xb),
        bayes_d=np.exp(log_c6[:, 0] - xb),
        bayes_expected_loss=lb,
        regret=point_loss - lb,
    )
    if not as_frame:
        return result
    import pandas as pd

    return pd.DataFrame(result._asdict()).set_index("compute")
