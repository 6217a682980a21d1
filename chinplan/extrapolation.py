"""Extrapolation-aware uncertainty: how far beyond the fitted runs a question lies, and how
much less sure the law is there.

The law's posterior alone is too sure of itself beyond the data (docs/CALIBRATION.md: its
90% intervals held 0.73 of the larger runs of a back-test and 0.46 of the larger models of
another). The errors are not noise: they are shared by all points of a split and grow with
the distance from the fitted runs. So the predictive of an observed log loss is

    log L(N, D) = log L_theta(N 10^(-v dC), D 10^(v dC)) + u d + kappa d z + eps,

where ``d = max(dC, dN, dD)`` counts the decades beyond the fitted runs' largest compute,
parameters and tokens (0 inside, so fitted runs are untouched), ``eps`` is the fit's own
noise (Student-t), ``z ~ N(0, 1)`` per point, and for each posterior draw:

* ``u ~ N(0, tau_u^2)``: a level drift in log loss per decade (shared by every point);
* ``v ~ N(0, tau_v^2)``: an allocation drift: the isoFLOP valley slides by ``v dC`` decades
  of N at fixed compute (``N D`` unchanged; ``dC`` the decades beyond in compute), so the
  compute-optimal N moves by exactly that;
* ``kappa``: extra per-point scatter per decade.

The scales are learned from the runs being fitted only, by leaving their largest out
(:func:`fold_masks`: the top 20% and 40% by compute, the top 20% and 40% by parameters),
refitting, and scoring the dropped runs: ``p(tau_u, kappa | folds)`` from their log-loss
residuals (a Gaussian with shared ``u``, mixed with a 5% broad outlier component, with ``u``
integrated on a grid) and ``p(tau_v | folds)`` from the empirical isoFLOP minima
(:func:`isoflop_minima`) the compute folds left out. Each posterior draw takes its own scales from
these grid posteriors (half-normal priors, :data:`PRIOR_SCALE_TAU_U` and siblings).
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from chinplan.law import LawParams, log_g, log_loss

__all__ = [
    "Domain",
    "ExtrapolatedLaw",
    "Hyper",
    "decades_beyond",
    "extrapolated_log_loss",
    "extrapolated_optimum_log",
    "fold_masks",
    "isoflop_minima",
    "learn",
    "sample_discrepancy",
]

LN10 = math.log(10.0)
LOG10_6 = math.log10(6.0)
#: Grids of the hyperparameters (flat priors on them).
TAU_U_GRID = np.linspace(0.0, 0.2, 41)
KAPPA_GRID = np.linspace(0.0, 0.2, 41)
TAU_V_GRID = np.linspace(0.0, 0.5, 51)
#: Half-normal prior scales of tau_u, kappa (log loss per decade) and tau_v (decades of N
#: per decade of compute). tau_v's 0.15 is the spread of published compute-optimal
#: exponents a = beta/(alpha+beta): 0.46-0.73 (Hoffmann et al. 2022; Kaplan et al. 2020;
#: Besiroglu et al. 2024); the level scales allow a few percent of loss per decade. With the
#: two or three realisations a ladder's folds give, flat priors leave heavy tails (N* bands
#: of 70x at 1.6 decades; docs/CALIBRATION.md).
PRIOR_SCALE_TAU_U, PRIOR_SCALE_KAPPA, PRIOR_SCALE_TAU_V = 0.05, 0.05, 0.15
#: Outlier component of the fold likelihood: weight and sd (log loss).
OUTLIER_WEIGHT, OUTLIER_SD = 0.05, 0.3
_U_GRID = np.linspace(-0.6, 0.6, 2401)
#: Half-width (decades of N) of the search for the extrapolated compute optimum.
SEARCH_DECADES = 3.0


class Domain(NamedTuple):
    """The fitted runs' largest log10 compute, parameters and tokens."""

    log10_compute: float
    log10_params: float
    log10_tokens: float

    @classmethod
    def of(cls, log_n: np.ndarray, log_d: np.ndarray) -> "Domain":
        l10n, l10d = np.asarray(log_n) / LN10, np.asarray(log_d) / LN10
        return cls(float(np.max(l10n + l10d) + LOG10_6), float(np.max(l10n)), float(np.max(l10d)))


def decades_beyond(domain, log_n, log_d):
    """``(d, dC, dN, dD)``: decades beyond the fitted runs in compute, N and D; ``d`` is the largest.

    Works on NumPy or JAX arrays of natural logs; each part is ``max(0, log10 x - log10 x_max)``.
    """
    xp = jnp if isinstance(log_n, jax.Array) or isinstance(log_d, jax.Array) else np
    l10n, l10d = log_n / LN10, log_d / LN10
    d_c = xp.maximum(0.0, l10n + l10d + LOG10_6 - domain[0])
    d_n = xp.maximum(0.0, l10n - domain[1])
    d_d = xp.maximum(0.0, l10d - domain[2])
    return xp.maximum(d_c, xp.maximum(d_n, d_d)), d_c, d_n, d_d


class ExtrapolatedLaw(NamedTuple):
    """One draw (or a leading draw axis) of the law with its discrepancy; a pytree.

    Attributes:
      law: the law's constants.
      u: level drift (log loss per decade beyond the data).
      v: allocation drift (decades of N per decade beyond, at fixed compute).
      kappa: per-point scatter (log loss per decade beyond).
      domain: the fitted data's largest log10 (compute, params, tokens), shape (..., 3).
    """

    law: LawParams
    u: jax.Array
    v: jax.Array
    kappa: jax.Array
    domain: jax.Array


def extrapolated_log_loss(theta: ExtrapolatedLaw, log_n, log_d):
    """Mean log loss of one draw with its discrepancy: ``log L(N 10^-v dC, D 10^v dC) + u d``.

    The valley slides with the compute distance ``dC`` only, so on an isoFLOP line it is a
    pure translation and the compute-optimal N moves by exactly ``v dC`` decades.
    """
    dom = theta.domain
    d, d_c, _, _ = decades_beyond((dom[..., 0], dom[..., 1], dom[..., 2]), log_n, log_d)
    shift = LN10 * theta.v * d_c
    return log_loss(theta.law, log_n - shift, log_d + shift) + theta.u * d


def extrapolated_optimum_log(theta: ExtrapolatedLaw, log_compute, *, num_grid: int = 241, num_refine: int = 24):
    """``(log N, log D, log L)`` minimising :func:`extrapolated_log_loss` on ``6 N D = C``.

    A grid of ``num_grid`` points over +-3 decades of N around the law's own optimum
    (``log N = log G + a log(C/6)``, Hoffmann et al. 2022 Eq. 4), then ``num_refine``
    golden-section steps between the grid neighbours of the best point. One draw, one budget.
    """
    law = theta.law
    log_c6 = log_compute - math.log(6.0)
    a = law.beta / (law.alpha + law.beta)
    x0 = log_g(jnp.log(law.A), jnp.log(law.B), law.alpha, law.beta) + a * log_c6
    step = 2.0 * SEARCH_DECADES * LN10 / (num_grid - 1)
    grid = x0 + (jnp.arange(num_grid) - (num_grid - 1) / 2) * step
    f = lambda x: extrapolated_log_loss(theta, x, log_c6 - x)  # noqa: E731
    best = grid[jnp.argmin(jax.vmap(f)(grid))]
    lo, hi = best - step, best + step
    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def golden(_, bounds):
        lo, hi = bounds
        x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        left = f(x1) <= f(x2)
        return jnp.where(left, lo, x1), jnp.where(left, x2, hi)

    lo, hi = jax.lax.fori_loop(0, num_refine, golden, (lo, hi))
    x = 0.5 * (lo + hi)
    return x, log_c6 - x, f(x)


# ----------------------------------------------------------------------------------------
# Learning the scales from the fitted runs (host side, float64)
# ----------------------------------------------------------------------------------------
def fold_masks(log_n: np.ndarray, log_d: np.ndarray, fractions=(0.2, 0.4)) -> dict[str, np.ndarray]:
    """Leave-the-largest-out folds: the runs kept when the top 20%/40% by compute (``c20``,
    ``c40``) or by parameters (``n20``, ``n40``) are dropped."""
    log_c = np.asarray(log_n) + np.asarray(log_d)
    out = {}
    for tag, x in (("c", log_c), ("n", np.asarray(log_n))):
        for frac in fractions:
            out[f"{tag}{round(100 * frac)}"] = x < np.quantile(x, 1.0 - frac)
    return out


def isoflop_minima(runs, *, width: float = 0.1, min_runs: int = 5, num_bootstrap: int = 400, seed: int = 0) -> pd.DataFrame:
    """Empirical compute-optimal N of every isoFLOP slice of a runs table.

    Slices are found greedily: the densest window of +-``width`` decades of compute with at
    least ``min_runs`` runs of at least 4 distinct sizes, then the next among the rest. In
    each, a parabola of loss in log10 N is fitted (Hoffmann et al. 2022, Approach 2); its
    vertex is kept when the curvature is positive and the vertex lies inside the slice. The
    uncertainty of each minimum is a bootstrap over the slice's runs (5%-95%).

    Returns:
      DataFrame with columns log10_compute (slice median), log10_params (the minimum),
      lower, upper (bootstrap 5% and 95%), num_runs; sorted by compute.
    """
    params = np.asarray(runs["params"], dtype=np.float64)
    tokens = np.asarray(runs["tokens"], dtype=np.float64)
    loss = np.asarray(runs["loss"], dtype=np.float64)
    lc, ln = np.log10(6.0 * params) + np.log10(tokens), np.log10(params)
    left = np.ones(len(lc), bool)
    rng = np.random.default_rng(seed)
    rows = []
    while True:
        counts = [(int((left & (np.abs(lc - c) <= width)).sum()), c) for c in np.unique(lc[left])]
        counts = [(k, c) for k, c in counts if k >= min_runs]
        if not counts:
            break
        _, c = max(counts)
        c = float(np.median(lc[left & (np.abs(lc - c) <= width)]))
        m = left & (np.abs(lc - c) <= width)
        left &= ~m
        x, y = ln[m], loss[m]
        if len(np.unique(x)) < 4:
            continue
        curv, slope, _ = np.polyfit(x, y, 2)
        vertex = -slope / (2.0 * curv) if curv > 0 else np.nan
        if not (x.min() < vertex < x.max()):
            continue
        boot = []
        for _ in range(num_bootstrap):
            i = rng.integers(0, len(x), len(x))
            if len(np.unique(x[i])) >= 3:
                cb, sb, _ = np.polyfit(x[i], y[i], 2)
                if cb > 0:
                    boot.append(-sb / (2.0 * cb))
        boot = np.clip(boot, x.min(), x.max())
        rows.append(dict(log10_compute=c, log10_params=vertex, lower=np.quantile(boot, 0.05), upper=np.quantile(boot, 0.95), num_runs=int(m.sum())))
    cols = ["log10_compute", "log10_params", "lower", "upper", "num_runs"]
    return pd.DataFrame(rows, columns=cols).sort_values("log10_compute").reset_index(drop=True)


def _law_log_loss(draws: dict, log_n, log_d):
    """(draws, runs) float64 log loss of a dict of posterior draws."""
    a = draws["log_E"][:, None] + 0.0 * log_n
    b = draws["log_A"][:, None] - draws["alpha"][:, None] * log_n
    c = draws["log_B"][:, None] - draws["beta"][:, None] * log_d
    return np.logaddexp(np.logaddexp(a, b), c)


def _law_log_n_opt(draws: dict, log10_compute: float) -> np.ndarray:
    alpha, beta = draws["alpha"], draws["beta"]
    lg = np.asarray(log_g(draws["log_A"], draws["log_B"], alpha, beta), dtype=np.float64)
    return (lg + beta / (alpha + beta) * (log10_compute - LOG10_6) * LN10) / LN10


def _loss_evidence(residual, var, d) -> np.ndarray:
    """log p(residuals | tau_u, kappa) on the grids: shared u integrated on a grid."""
    out = np.empty((len(TAU_U_GRID), len(KAPPA_GRID)))
    du = _U_GRID[1] - _U_GRID[0]
    outlier = math.log(OUTLIER_WEIGHT) + stats.norm.logpdf(residual, 0.0, OUTLIER_SD)
    for j, kappa in enumerate(KAPPA_GRID):
        sd = np.sqrt(var + (kappa * d) ** 2)
        core = math.log1p(-OUTLIER_WEIGHT) + stats.norm.logpdf(residual[None, :] - _U_GRID[:, None] * d[None, :], 0.0, sd[None, :])
        ll = np.logaddexp(core, outlier[None, :]).sum(axis=1)
        for i, tau in enumerate(TAU_U_GRID):
            if tau == 0.0:
                out[i, j] = ll[np.argmin(np.abs(_U_GRID))]
            else:
                out[i, j] = np.logaddexp.reduce(ll + stats.norm.logpdf(_U_GRID, 0.0, tau) + math.log(du))
    return out


def _allocation_evidence(miss, var, d) -> np.ndarray:
    """log p(isoFLOP-minimum misses | tau_v): N(0, tau_v^2 d d^T + diag(var))."""
    return np.array(
        [stats.multivariate_normal.logpdf(miss, np.zeros(len(miss)), tau**2 * np.outer(d, d) + np.diag(var), allow_singular=True) for tau in TAU_V_GRID]
    )


class Hyper(NamedTuple):
    """Grid posteriors of the discrepancy scales and what they were learned from."""

    p_tau_u_kappa: np.ndarray  # (len(TAU_U_GRID), len(KAPPA_GRID))
    p_tau_v: np.ndarray  # (len(TAU_V_GRID),)
    domain: Domain
    folds: list  # [{name, num_dropped, num_minima}]

    def to_attrs(self) -> dict:
        return {
            "extrapolation_domain": json.dumps(list(self.domain)),
            "extrapolation_folds": json.dumps(self.folds),
            "extrapolation_p_tau_u_kappa": json.dumps(np.round(self.p_tau_u_kappa, 12).tolist()),
            "extrapolation_p_tau_v": json.dumps(np.round(self.p_tau_v, 12).tolist()),
        }


def learn(log_n, log_d, log_loss_obs, fold_draws: dict, minima: pd.DataFrame) -> Hyper:
    """Grid posteriors of (tau_u, kappa) and tau_v from leave-the-largest-out refits.

    Args:
      log_n, log_d, log_loss_obs: the fitted runs (natural logs).
      fold_draws: {fold name: (draws dict with log_E, log_A, log_B, alpha, beta as flat
        float64 arrays, kept-runs mask)}.
      minima: :func:`isoflop_minima` of the fitted runs.
    """
    log_n, log_d, y = (np.asarray(a, np.float64) for a in (log_n, log_d, log_loss_obs))
    lc = (log_n + log_d) / LN10 + LOG10_6
    loss_lp = np.zeros((len(TAU_U_GRID), len(KAPPA_GRID)))
    alloc_lp = np.zeros(len(TAU_V_GRID))
    inside = minima[minima["log10_compute"] + 0.1 < lc.max()]
    folds = []
    for name, (draws, kept) in fold_draws.items():
        dropped = ~kept
        domain = Domain.of(log_n[kept], log_d[kept])
        info = {"fold": name, "num_dropped": int(dropped.sum()), "num_minima": 0}
        if dropped.sum() >= 3:
            mu_in = np.median(_law_log_loss(draws, log_n[kept], log_d[kept]), axis=0)
            noise = 1.4826 * np.median(np.abs(y[kept] - mu_in))
            mu = _law_log_loss(draws, log_n[dropped], log_d[dropped])
            d = decades_beyond(domain, log_n[dropped], log_d[dropped])[0]
            loss_lp += _loss_evidence(y[dropped] - np.median(mu, axis=0), noise**2 + np.var(mu, axis=0), d)
        beyond = inside[inside["log10_compute"] - 0.1 > domain.log10_compute]
        if len(beyond) and name.startswith("c"):  # allocation drift: per decade of compute
            miss, var, dist = [], [], []
            for row in beyond.itertuples():
                law_n = _law_log_n_opt(draws, row.log10_compute)
                miss.append(row.log10_params - np.median(law_n))
                var.append(((row.upper - row.lower) / 3.29) ** 2 + np.var(law_n))
                dist.append(row.log10_compute - domain.log10_compute)
            alloc_lp += _allocation_evidence(np.array(miss), np.array(var), np.array(dist))
            info["num_minima"] = len(beyond)
        folds.append(info)
    loss_lp += stats.halfnorm.logpdf(TAU_U_GRID, scale=PRIOR_SCALE_TAU_U)[:, None]
    loss_lp += stats.halfnorm.logpdf(KAPPA_GRID, scale=PRIOR_SCALE_KAPPA)[None, :]
    alloc_lp += stats.halfnorm.logpdf(TAU_V_GRID, scale=PRIOR_SCALE_TAU_V)
    p_uk = np.exp(loss_lp - loss_lp.max())
    p_v = np.exp(alloc_lp - alloc_lp.max())
    return Hyper(p_uk / p_uk.sum(), p_v / p_v.sum(), Domain.of(log_n, log_d), folds)


def sample_discrepancy(hyper: Hyper, num_draws: int, *, key: jax.Array) -> dict[str, np.ndarray]:
    """Per-draw scales from the grid posteriors, then ``u ~ N(0, tau_u^2)``, ``v ~ N(0, tau_v^2)``."""
    k_uk, k_v, k_z = jax.random.split(key, 3)
    p_uk = np.asarray(hyper.p_tau_u_kappa, np.float64).ravel()
    p_v = np.asarray(hyper.p_tau_v, np.float64)
    i = np.asarray(jax.random.choice(k_uk, p_uk.size, (num_draws,), p=jnp.asarray(p_uk / p_uk.sum())))
    j = np.asarray(jax.random.choice(k_v, p_v.size, (num_draws,), p=jnp.asarray(p_v / p_v.sum())))
    tau_u = TAU_U_GRID[i // len(KAPPA_GRID)]
    kappa = KAPPA_GRID[i % len(KAPPA_GRID)]
    tau_v = TAU_V_GRID[j]
    z = np.asarray(jax.random.normal(k_z, (2, num_draws)), np.float64)
    return {"u": tau_u * z[0], "v": tau_v * z[1], "kappa": kappa, "tau_u": tau_u, "tau_v": tau_v}
