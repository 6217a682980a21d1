"""The compute-optimal allocation from all the evidence: the law's own optimum and the fitted
runs' isoFLOP minima.

The law's implied optimum ``N*(C) = G (C/6)^a`` (Hoffmann et al. 2022, Eq. 4) is indirect
evidence; where the runs contain isoFLOP slices, their minima are direct evidence (Hoffmann
et al.'s approach 2; Porian et al. 2024). On the shipped ladders the law's slope ``a`` was
the weak part: its exponent sat 0.1-0.3 below the slope of the held-out minima, so N* beyond
the data came out too small (docs/CALIBRATION.md). In log10 units, ``x = log10 C``,
``y = log10 N*``, ``x0`` the largest fitted run's compute, ``d = max(0, x - x0)``:

    line        y = b0 + b1 (x - x0)
    prior       b0 ~ N(mu_L0, V_L00 + sigma0^2),  b1 flat
    minima      y_i ~ N(b0 + b1 (x_i - x0), s_i^2 + sigma^2)
    posterior   (b0, b1) ~ N(m, S)                              (conjugate)
    predictive  y* ~ N(h'm, h'S h + tau^2 d^2 + sigma^2),   h = (1, x - x0)

``(mu_L, V_L)`` are the mean and covariance of the law's posterior draws of its level
``log10 N*_law(x0)`` (the slope is left to the minima: anchoring it too failed the
leave-one-condition-out test), ``s_i`` a minimum's bootstrap sd, ``sigma`` the scatter of a
slice's minimum about the line, ``tau`` a drift of the slope that grows with the decades
beyond. The scales (:data:`DEFAULT_HYPER`) were chosen by nested leave-one-ladder-out CRPS on
the 15 shipped ladders' 9 validation ladders (``scripts/validate_ladders.py``); with fewer
than :data:`MIN_MINIMA` minima there is no line and the fit keeps the valley drift of
:mod:`chinplan.inference.extrapolation`.

Each posterior draw carries the predictive as its own valley offset ``c`` and drift ``v``
(:func:`chinplan.extrapolated.valley_shift`): with the line ``b ~ N(m, S)``, ``t ~ N(0,
tau^2)``, ``e ~ N(0, sigma^2)`` drawn per draw and the draw's own law line ``(y_L(x0), a)``,

    c = b0 + e - y_L(x0),   v = b1 + t - a

so beyond the data that draw's optimum is ``b0 + e + (b1 + t) d`` and the draws' spread is the
predictive's; inside the data the law is the answer, unchanged.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import jax
import numpy as np

from chinplan.law import log_g

__all__ = ["AllocationHyper", "AllocationLine", "DEFAULT_HYPER", "MIN_MINIMA", "fit_line", "law_line_draws", "sample_valley"]

LN10 = math.log(10.0)
LOG10_6 = math.log10(6.0)

#: The fewest isoFLOP minima of the fitted runs that make a line.
MIN_MINIMA = 2


class AllocationHyper(NamedTuple):
    """Scales of the allocation predictive, in decades of N (tau: per decade of C).

    Attributes:
      sigma0: how far the line's level at the data's edge may sit from the law's.
      sigma: scatter of one slice's minimum about the line.
      tau: drift of the line's slope per decade beyond the data.
    """

    sigma0: float
    sigma: float
    tau: float


#: Learned across the shipped ladders (scripts/validate_ladders.py: the best mean CRPS of
#: the grids, each ladder weighted equally; chosen in 8 of 9 leave-one-out folds for sigma0,
#: 9 of 9 for sigma, 5 of 9 for tau).
DEFAULT_HYPER = AllocationHyper(sigma0=0.05, sigma=0.05, tau=0.05)


class AllocationLine(NamedTuple):
    """The posterior of the compute-optimal line ``y = b0 + b1 (x - x0)``: mean (2,), cov (2, 2)."""

    mean: np.ndarray
    cov: np.ndarray
    x0: float
    num_minima: int
    hyper: AllocationHyper

    def predictive(self, log10_compute) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) of log10 N* at ``log10_compute`` beyond the data (float64)."""
        x = np.asarray(log10_compute, np.float64)
        h = np.stack([np.ones_like(x), x - self.x0], axis=-1)
        d = np.maximum(0.0, x - self.x0)
        var = np.einsum("...i,ij,...j->...", h, self.cov, h) + (self.hyper.tau * d) ** 2 + self.hyper.sigma**2
        return h @ self.mean, np.sqrt(var)

    def to_attrs(self) -> dict:
        """JSON attributes for the posterior file."""
        return {
            "allocation_line": json.dumps({
                "mean": [float(v) for v in self.mean], "cov": [[float(v) for v in row] for row in self.cov],
                "x0": float(self.x0), "num_minima": int(self.num_minima), "hyper": self.hyper._asdict(),
            })
        }  # fmt: skip

    @classmethod
    def from_attrs(cls, attrs) -> "AllocationLine | None":
        text = attrs.get("allocation_line")
        if text is None:
            return None
        raw = json.loads(text)
        line = cls(np.asarray(raw["mean"], np.float64), np.asarray(raw["cov"], np.float64), float(raw["x0"]), int(raw["num_minima"]), AllocationHyper(**raw["hyper"]))
        if line.mean.shape != (2,) or line.cov.shape != (2, 2) or not (np.all(np.isfinite(line.mean)) and np.all(np.isfinite(line.cov)) and math.isfinite(line.x0)):
            raise ValueError(f"the extrapolation group's 'allocation_line' must hold a finite mean (2,), cov (2, 2) and x0, got {text[:200]!r}")
        return line


def law_line_draws(draws: dict, x0: float) -> np.ndarray:
    """(draws, 2): each draw's law line at the data's edge: ``(log10 N*_law(x0), a)``,
    ``a = beta / (alpha + beta)``; float64. ``draws`` holds log_A, log_B, alpha, beta."""
    alpha, beta = (np.asarray(draws[k], np.float64).reshape(-1) for k in ("alpha", "beta"))
    log_a, log_b = (np.asarray(draws[k], np.float64).reshape(-1) for k in ("log_A", "log_B"))
    a = beta / (alpha + beta)
    lg = np.asarray(log_g(log_a, log_b, alpha, beta), np.float64)
    return np.stack([lg / LN10 + a * (x0 - LOG10_6), a], axis=1)


def fit_line(law_line: np.ndarray, minima, x0: float, hyper: AllocationHyper = DEFAULT_HYPER) -> AllocationLine | None:
    """The line's conjugate posterior from the law's level (prior) and the fitted runs'
    minima (a DataFrame of :func:`chinplan.inference.extrapolation.isoflop_minima`); None with
    fewer than :data:`MIN_MINIMA` minima."""
    if minima is None or len(minima) < MIN_MINIMA:
        return None
    x = minima["log10_compute"].to_numpy(np.float64)
    y = minima["log10_params"].to_numpy(np.float64)
    s = (minima["upper"] - minima["lower"]).to_numpy(np.float64) / 3.29  # 5-95% -> sd
    if np.ptp(x) <= 0:
        return None
    level = law_line[:, 0]
    prior_var = float(np.var(level, ddof=1)) + hyper.sigma0**2
    prior_precision = np.diag([1.0 / prior_var, 0.0])  # the slope's prior is flat
    h = np.stack([np.ones_like(x), x - x0], axis=1)
    w = 1.0 / (s**2 + hyper.sigma**2)
    precision = prior_precision + h.T @ (w[:, None] * h)
    cov = np.linalg.inv(precision)
    mean = cov @ (prior_precision @ np.array([float(np.mean(level)), 0.0]) + h.T @ (w * y))
    return AllocationLine(mean, cov, float(x0), int(len(x)), hyper)


def sample_valley(line: AllocationLine, law_line: np.ndarray, *, key: jax.Array) -> dict[str, np.ndarray]:
    """Per-draw valley offset ``c`` and drift ``v`` (float64, one per row of ``law_line``)
    whose extrapolated optima follow the line's predictive (module docstring)."""
    num = law_line.shape[0]
    z = np.asarray(jax.random.normal(key, (4, num)), np.float64)
    b = line.mean[:, None] + np.linalg.cholesky(line.cov + 1e-15 * np.eye(2)) @ z[:2]
    c = b[0] + line.hyper.sigma * z[2] - law_line[:, 0]
    v = b[1] + line.hyper.tau * z[3] - law_line[:, 1]
    return {"c": c, "v": v}
