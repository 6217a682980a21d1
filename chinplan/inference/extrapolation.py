"""Extrapolation-aware uncertainty: how far beyond the fitted runs a question lies, and how
much less sure the law is there.

The law's posterior alone is too sure of itself beyond the data (docs/CALIBRATION.md): its
errors there are not noise, they are shared by the points of a back-test and grow with the
distance from the fitted runs. So the predictive of an observed log loss is

    log L(N, D) = log L_theta(N 10^(-v dC), D 10^(v dC)) + u s + kappa s z + eps,   s = d^(1/2)

where ``d = max(dC, dN, dD)`` counts the decades beyond the fitted runs' largest compute,
parameters and tokens (0 inside, so fitted runs are untouched), ``eps`` is the fit's own
noise (Student-t), ``z ~ N(0, 1)`` per point, and for each posterior draw:

* ``u ~ N(0, tau_u^2)``: a level drift in log loss, shared by every point, growing as a random
  walk in the decades beyond (``s = d^(1/2)``, :data:`LEVEL_POWER`);
* ``v``: an allocation drift: the isoFLOP valley slides by ``v dC`` decades of N at fixed
  compute (``N D`` unchanged; ``dC`` the decades beyond in compute), so the compute-optimal N
  moves by exactly that;
* ``kappa``: extra per-point scatter, also growing as ``s``.

Everything is learned from the runs being fitted only, by leaving their largest out
(:func:`fold_masks`: the top 20, 40 and 60% by compute, the top 20 and 40% by parameters),
refitting (the same compiled sampler, runs masked out), and scoring what each fold did not
see (:func:`fold_evidence`):

* ``p(tau_u, kappa | folds)`` from the dropped runs' log-loss residuals: each fold's drift is
  its own draw of ``u`` (a Gaussian in ``u s`` plus ``kappa s`` scatter and the fit's noise,
  mixed with a 5% broad outlier component; ``u`` integrated on a grid). The folds inform the
  scale of the level drift, not its sign: in the design study the sign did not carry over.
* ``p(tau_v, v | folds)`` from the empirical isoFLOP minima (:func:`isoflop_minima`) the
  compute folds left out: ``v ~ N(0, tau_v^2)`` is one value shared by the folds and the full
  fit, because the valley's drift is a property of the law's form on these runs (on the
  embedded runs every fold's law put N* too high at the budgets it did not see).

Each posterior draw takes its own scales from these grid posteriors (half-normal priors,
:data:`PRIOR_SCALE_TAU_U` and siblings), then its ``u`` and ``v``.
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

from chinplan.extrapolated import (  # noqa: F401  (re-exported: the documented path chinplan.extrapolation)
    LEVEL_POWER,
    LN10,
    LOG10_6,
    Domain,
    ExtrapolatedLaw,
    compute_optimal_draws,
    decades_beyond,
    extrapolated_log_loss,
    extrapolated_optimum_log,
    level_distance,
    log_loss_draws,
    plan_decades_beyond,
)
from chinplan.law import LawParams, log_g, log_loss

__all__ = [
    "Domain",
    "ExtrapolatedLaw",
    "Hyper",
    "compute_optimal_draws",
    "decades_beyond",
    "plan_decades_beyond",
    "extrapolated_log_loss",
    "extrapolated_optimum_log",
    "FoldEvidence",
    "fold_evidence",
    "fold_masks",
    "isoflop_minima",
    "learn",
    "level_distance",
    "level_scale_log_prior",
    "log_loss_draws",
    "scale_posterior",
    "sample_discrepancy",
]

#: Grids of the hyperparameters.
TAU_U_GRID = np.linspace(0.0, 0.2, 41)
KAPPA_GRID = np.linspace(0.0, 0.2, 41)
TAU_V_GRID = np.linspace(0.0, 0.5, 51)
#: Half-normal prior scales of tau_u, kappa (log loss per decade^(1/2)) and tau_v (decades
#: of N per decade of compute). tau_v's 0.15 is the spread of published compute-optimal
#: exponents a = beta/(alpha+beta): 0.46-0.73 (Hoffmann et al. 2022; Kaplan et al. 2020;
#: Besiroglu et al. 2024). The level scales are learned across the shipped ladders (the 8
#: validation-loss ladders of Porian et al. 2024 and the Chinchilla runs): the pair with the
#: best mean weighted interval score of the held-out runs' loss (``scripts/validate_ladders.py``,
#: docs/CALIBRATION.md); they were 0.05 and 0.05 before, whose 50% loss intervals held 0.73
#: of the held-out runs. The folds alone ask for larger scales (their fits see less data and
#: drift more than the full fit does), so these priors shrink what the folds saw. With the two or three
#: realisations a ladder's folds give, flat priors leave heavy tails (N* bands of 70x at 1.6
#: decades; docs/CALIBRATION.md).
PRIOR_SCALE_TAU_U, PRIOR_SCALE_KAPPA, PRIOR_SCALE_TAU_V = 0.015, 0.005, 0.15
#: Outlier component of the fold likelihood: weight and sd (log loss).
OUTLIER_WEIGHT, OUTLIER_SD = 0.05, 0.3
_U_GRID = np.linspace(-0.6, 0.6, 2401)


# ----------------------------------------------------------------------------------------
# Learning the scales from the fitted runs (host side, float64)
# ----------------------------------------------------------------------------------------
#: The leave-the-largest-out folds: shares of runs dropped by compute and by parameters.
COMPUTE_FOLDS, SIZE_FOLDS = (0.2, 0.4, 0.6), (0.2, 0.4)


def fold_masks(log_n: np.ndarray, log_d: np.ndarray) -> dict[str, np.ndarray]:
    """Leave-the-largest-out folds: the runs kept when the top 20/40/60% by compute (``c20``,
    ``c40``, ``c60``) or the top 20/40% by parameters (``n20``, ``n40``) are dropped."""
    log_c = np.asarray(log_n) + np.asarray(log_d)
    out = {}
    for tag, x, fractions in (("c", log_c, COMPUTE_FOLDS), ("n", np.asarray(log_n), SIZE_FOLDS)):
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


@jax.jit
def _draws_log_loss(theta: tuple, log_n, log_d) -> jax.Array:
    return log_loss(LawParams.from_logs(*(t[:, None] for t in theta)), log_n, log_d)


def _law_log_loss(draws: dict, log_n, log_d) -> np.ndarray:
    """(draws, runs) log loss of a dict of posterior draws, by :func:`chinplan.law.log_loss`
    (in JAX's float32: 1e-7 relative, far below the noise the folds are scored against), as
    one compiled program per shape (the folds score every run, then pick theirs: one shape)."""
    theta = tuple(np.asarray(draws[k]) for k in ("log_E", "log_A", "log_B", "alpha", "beta"))
    return np.asarray(_draws_log_loss(theta, np.asarray(log_n), np.asarray(log_d)), np.float64)


def _law_log_n_opt(draws: dict, log10_compute: float) -> np.ndarray:
    alpha, beta = draws["alpha"], draws["beta"]
    lg = np.asarray(log_g(draws["log_A"], draws["log_B"], alpha, beta), dtype=np.float64)
    return (lg + beta / (alpha + beta) * (log10_compute - LOG10_6) * LN10) / LN10


def _normal_logpdf(x, sd):
    return -0.5 * (x / sd) ** 2 - np.log(sd) - 0.5 * math.log(2.0 * math.pi)


def _loss_likelihood(residual, var, d) -> np.ndarray:
    """log p(residuals | u, kappa) of one fold on the (kappa, u) grids:
    ``r_i = u d_i + e_i``, ``e_i ~ (1 - w) N(0, var_i + kappa^2 d_i^2) + w N(0, OUTLIER_SD^2)``.

    Each run's mixture as ``b_i + log1p(exp(c_ki - b_i) exp(-(r_i - u d_i)^2 / 2 tv_ki))``
    (b the outlier's log density, c the core's log normaliser): one exp and one log1p per
    (kappa, u, run), a quarter of the time of ``logaddexp``, the same sums to 1e-13. One
    kappa at a time, in place on a (u grid, runs) array. Where ``exp(c - b)`` would overflow
    (a residual beyond about 11 in log loss), ``logaddexp`` itself."""
    outlier = math.log(OUTLIER_WEIGHT) + _normal_logpdf(residual, OUTLIER_SD)  # (runs,)
    shifted2 = np.square(residual[None, :] - _U_GRID[:, None] * d[None, :])  # (u grid, runs)
    total_var = var[None, :] + np.square(KAPPA_GRID[:, None] * d[None, :])  # (kappa, runs)
    const = math.log1p(-OUTLIER_WEIGHT) - 0.5 * math.log(2.0 * math.pi) - 0.5 * np.log(total_var)
    ratio_log = const - outlier[None, :]  # (kappa, runs): log of the core's weight over the outlier's
    safe = bool(np.all(ratio_log < 700.0))
    ratio = np.exp(ratio_log) if safe else None
    ll = np.empty((len(KAPPA_GRID), len(_U_GRID)))
    core = np.empty_like(shifted2)
    for k in range(len(KAPPA_GRID)):
        np.multiply(shifted2, -0.5 / total_var[k], out=core)
        if safe:  # core = log1p(exp(c - b) N-kernel); the outliers' sum added below
            np.exp(core, out=core)
            core *= ratio[k]
            np.log1p(core, out=core)
        else:  # core = logaddexp(log(1 - w) + log N(r - u d; 0, total_var[k]), outlier)
            core += const[k]
            np.logaddexp(core, outlier, out=core)
        core.sum(axis=1, out=ll[k])
    return ll + outlier.sum() if safe else ll  # (kappa, u grid)


def _u_prior() -> np.ndarray:
    """N(u; 0, tau^2) du on the u grid, one row per tau (a point mass at 0 for tau = 0)."""
    tau = np.where(TAU_U_GRID > 0, TAU_U_GRID, 1.0)
    prior = np.exp(_normal_logpdf(_U_GRID[None, :], tau[:, None])) * (_U_GRID[1] - _U_GRID[0])
    prior[TAU_U_GRID == 0] = 0.0
    prior[TAU_U_GRID == 0, np.argmin(np.abs(_U_GRID))] = 1.0
    return prior


def _integrate_u(ll: np.ndarray) -> np.ndarray:
    """log of int N(u; 0, tau^2) exp(ll(kappa, u)) du, shape (tau, kappa)."""
    top = ll.max(axis=1)
    with np.errstate(divide="ignore"):  # a prior that misses every likely u gives log 0 = -inf
        return np.log(_u_prior() @ np.exp(ll - top[:, None]).T) + top[None, :]


def _allocation_posterior(miss, var, d):
    """For each tau_v on the grid: log p(misses | tau_v) and the conditional mean and sd of v.

    The misses of the folds' compute-optimal N at the isoFLOP minima they left out are
    ``m = v d + e``, ``e ~ N(0, var)``, with one ``v ~ N(0, tau_v^2)`` shared by the folds
    and by the plans asked of the full fit: the valley's drift is a property of the law's
    form on these runs, so what the folds saw is evidence about it, not only about its scale.
    """
    if len(miss) == 0:  # no isoFLOP slice beyond any fold: the prior alone
        return np.zeros(len(TAU_V_GRID)), np.zeros(len(TAU_V_GRID)), TAU_V_GRID.copy()
    log_ev, mean, sd = [], [], []
    for tau in TAU_V_GRID:
        log_ev.append(stats.multivariate_normal.logpdf(miss, np.zeros(len(miss)), tau**2 * np.outer(d, d) + np.diag(var), allow_singular=True))
        precision = (1.0 / tau**2 if tau > 0 else np.inf) + np.sum(d * d / var)
        mean.append(np.sum(d * miss / var) / precision if np.isfinite(precision) else 0.0)
        sd.append(math.sqrt(1.0 / precision) if np.isfinite(precision) else 0.0)
    return np.array(log_ev), np.array(mean), np.array(sd)


def _significant(x, digits: int = 9) -> list:
    """``x`` as nested lists of floats rounded to ``digits`` significant digits (JSON-safe)."""
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[float])(np.asarray(x, np.float64)).tolist()


class Hyper(NamedTuple):
    """Grid posteriors of the discrepancy scales and what they were learned from."""

    p_tau_u_kappa: np.ndarray  # (len(TAU_U_GRID), len(KAPPA_GRID))
    p_tau_v: np.ndarray  # (len(TAU_V_GRID),)
    v_mean: np.ndarray  # (len(TAU_V_GRID),): E[v | tau_v, fold misses]
    v_sd: np.ndarray  # (len(TAU_V_GRID),): sd[v | tau_v, fold misses]
    domain: Domain
    folds: list  # [{name, num_dropped, num_minima}]

    def to_attrs(self) -> dict:
        return {
            "extrapolation_domain": json.dumps(list(self.domain)),
            "extrapolation_folds": json.dumps(self.folds),
            # grid posteriors to 9 significant digits, not decimals: their tails (far below
            # 1e-12 under a tight prior) let a reader move them to another prior exactly
            "extrapolation_p_tau_u_kappa": json.dumps(_significant(self.p_tau_u_kappa)),
            "extrapolation_p_tau_v": json.dumps(_significant(self.p_tau_v)),
            "extrapolation_v_mean": json.dumps(np.round(self.v_mean, 12).tolist()),
            "extrapolation_v_sd": json.dumps(np.round(self.v_sd, 12).tolist()),
        }


class FoldEvidence(NamedTuple):
    """What the leave-out folds saw: per fold, the dropped runs' log-loss residuals, their
    variances and decades beyond the fold; and the isoFLOP-minimum misses of the compute folds."""

    loss: list  # [(residual, variance, decades), ...] one per fold
    misses: np.ndarray  # decades of N: empirical minimum - fold's law optimum
    miss_var: np.ndarray
    miss_decades: np.ndarray
    folds: list  # [{fold, num_dropped, num_minima}]


def fold_evidence(log_n, log_d, log_loss_obs, fold_draws: dict, minima: pd.DataFrame) -> FoldEvidence:
    """Scores each leave-out fold's law on the runs (and isoFLOP minima) it did not see.

    Args:
      log_n, log_d, log_loss_obs: the fitted runs (natural logs).
      fold_draws: {fold name: (draws dict with log_E, log_A, log_B, alpha, beta as flat
        float64 arrays, kept-runs mask)}.
      minima: :func:`isoflop_minima` of the fitted runs.
    """
    log_n, log_d, y = (np.asarray(a, np.float64) for a in (log_n, log_d, log_loss_obs))
    lc = (log_n + log_d) / LN10 + LOG10_6
    inside = minima[minima["log10_compute"] + 0.1 < lc.max()]
    loss, misses, miss_var, miss_dist, folds, seen = [], [], [], [], [], []
    # how well a fold's law places a minimum at all: its in-sample misses beyond the minima's
    # own bootstrap error add to the noise of every out-of-fold miss
    nugget = 0.0
    for name, (draws, kept) in fold_draws.items():
        dropped = ~kept
        domain = Domain.of(log_n[kept], log_d[kept])
        info = {"fold": name, "num_dropped": int(dropped.sum()), "num_minima": 0}
        if dropped.sum() >= 3:
            every_run = _law_log_loss(draws, log_n, log_d)  # (draws, runs): one shape for every fold
            mu_in = np.median(every_run[:, kept], axis=0)
            noise = 1.4826 * np.median(np.abs(y[kept] - mu_in))
            mu = every_run[:, dropped]
            d = level_distance(domain, log_n[dropped], log_d[dropped])
            residual = y[dropped] - np.median(mu, axis=0)
            loss.append((residual, noise**2 + np.var(mu, axis=0), d))
            info["median_residual"] = float(np.median(residual))  # what this fold saw: a drift, and how far out
            info["median_decades"] = float(np.median(d) ** (1.0 / LEVEL_POWER))
        if name.startswith("c"):  # allocation drift: per decade of compute
            within = inside[inside["log10_compute"] + 0.1 < domain.log10_compute]
            if len(within) >= 3:
                law_n = np.array([np.median(_law_log_n_opt(draws, c)) for c in within["log10_compute"]])
                excess = (within["log10_params"].to_numpy() - law_n) ** 2 - ((within["upper"] - within["lower"]).to_numpy() / 3.29) ** 2
                nugget = max(nugget, float(np.mean(excess)))
            beyond = inside[inside["log10_compute"] - 0.1 > domain.log10_compute]
            for row in beyond.itertuples():
                law_n = _law_log_n_opt(draws, row.log10_compute)
                misses.append(row.log10_params - np.median(law_n))
                miss_var.append(((row.upper - row.lower) / 3.29) ** 2 + np.var(law_n))
                miss_dist.append(row.log10_compute - domain.log10_compute)
                seen.append(row.Index)
            info["num_minima"] = len(beyond)
        folds.append(info)
    # the nested compute folds score the same minimum up to three times: count each once
    # overall by dividing its precision by the number of folds that scored it
    seen = np.asarray(seen)
    multiplicity = np.array([np.sum(seen == i) for i in seen], dtype=np.float64)
    miss_var = (np.asarray(miss_var) + nugget) * multiplicity
    return FoldEvidence(loss, np.array(misses), miss_var, np.array(miss_dist), folds)


def level_scale_log_prior(scale_u: float = PRIOR_SCALE_TAU_U, scale_kappa: float = PRIOR_SCALE_KAPPA) -> np.ndarray:
    """log of the half-normal priors of ``(tau_u, kappa)`` on their grids, shape
    ``(len(TAU_U_GRID), len(KAPPA_GRID))``; a grid posterior learned under the defaults moves
    to other scales by adding ``level_scale_log_prior(a, b) - level_scale_log_prior()``."""
    return stats.halfnorm.logpdf(TAU_U_GRID, scale=scale_u)[:, None] + stats.halfnorm.logpdf(KAPPA_GRID, scale=scale_kappa)[None, :]


def scale_posterior(evidence: FoldEvidence, domain: Domain) -> Hyper:
    """Grid posteriors of (tau_u, kappa) and tau_v (with v | tau_v) from the folds' evidence,
    under half-normal priors (:data:`PRIOR_SCALE_TAU_U`, ...)."""
    # each fold's level drift is its own draw of u: the folds inform its scale, not its sign
    loss_lp = sum((_integrate_u(_loss_likelihood(*fold)) for fold in evidence.loss), np.zeros((len(TAU_U_GRID), len(KAPPA_GRID))))
    loss_lp = loss_lp + level_scale_log_prior()
    alloc_lp, v_mean, v_sd = _allocation_posterior(evidence.misses, evidence.miss_var, evidence.miss_decades)
    alloc_lp = alloc_lp + stats.halfnorm.logpdf(TAU_V_GRID, scale=PRIOR_SCALE_TAU_V)
    p_uk = np.exp(loss_lp - loss_lp.max())
    p_v = np.exp(alloc_lp - alloc_lp.max())
    return Hyper(p_uk / p_uk.sum(), p_v / p_v.sum(), v_mean, v_sd, domain, evidence.folds)


def learn(log_n, log_d, log_loss_obs, fold_draws: dict, minima: pd.DataFrame) -> Hyper:
    """:func:`fold_evidence` then :func:`scale_posterior`: the discrepancy's grid posteriors."""
    evidence = fold_evidence(log_n, log_d, log_loss_obs, fold_draws, minima)
    return scale_posterior(evidence, Domain.of(np.asarray(log_n, np.float64), np.asarray(log_d, np.float64)))


def sample_discrepancy(hyper: Hyper, num_draws: int, *, key: jax.Array) -> dict[str, np.ndarray]:
    """Per-draw scales from the grid posteriors, then ``u ~ N(0, tau_u^2)`` and ``v`` from its
    posterior given ``tau_v`` and the folds' isoFLOP misses (``N(0, tau_v^2)`` without any)."""
    k_uk, k_v, k_z = jax.random.split(key, 3)
    p_uk = np.asarray(hyper.p_tau_u_kappa, np.float64).ravel()
    p_v = np.asarray(hyper.p_tau_v, np.float64)
    i = np.asarray(jax.random.choice(k_uk, p_uk.size, (num_draws,), p=jnp.asarray(p_uk / p_uk.sum())))
    j = np.asarray(jax.random.choice(k_v, p_v.size, (num_draws,), p=jnp.asarray(p_v / p_v.sum())))
    tau_u = TAU_U_GRID[i // len(KAPPA_GRID)]
    kappa = KAPPA_GRID[i % len(KAPPA_GRID)]
    tau_v = TAU_V_GRID[j]
    z = np.asarray(jax.random.normal(k_z, (2, num_draws)), np.float64)
    v = np.asarray(hyper.v_mean)[j] + np.asarray(hyper.v_sd)[j] * z[1]
    u = tau_u * z[0]
    return {"u": u, "v": v, "kappa": kappa, "tau_u": tau_u, "tau_v": tau_v}
