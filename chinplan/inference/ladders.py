"""Leave-one-ladder-out back-test of compute-optimal N* bands on the shipped ladders (issue 22).

A *ladder* is one experimental setting's runs, split by compute into the part a fit sees and
the part above it:

* the 8 validation-loss ladders of Porian et al. 2024 (:func:`chinplan.datasets.porian`),
  each fitted on its budgets up to 2.1e17 FLOPs and judged at its budgets above (0.3-2.1
  decades beyond);
* the 245 embedded Chinchilla runs, fitted below their 65% compute quantile (the compute
  split of ``chinplan validate``) and judged above.

Each ladder is fitted once with :func:`chinplan.fit`'s defaults (4 chains x 1,000 draws, the
extrapolation component and the allocation line on) unless ``fit_options`` say otherwise. The
answers are the empirical isoFLOP minima of all the ladder's runs
(:func:`chinplan.inference.extrapolation.isoflop_minima`) whose slice lies more than 0.1
decade beyond the largest fitted compute. Every prediction is of the *measured* minimum: the
predictive is convolved with that minimum's own bootstrap noise N(0, s^2), s = (95% - 5%) /
3.29 of its bootstrap.

Predictives of log10 N* (:data:`PREDICTIVES`):

* ``law``: ``Posterior.compute_optimal(..., uncertainty="law")``: the law's draws alone;
* ``previous default``: the valley drift of the fit's leave-the-largest-out folds only, as
  chinplan shipped before issue 22: the extrapolation draws with the allocation line's valley
  offset ``c = 0`` and the drift ``v`` drawn afresh from the fit's learned
  :class:`~chinplan.inference.extrapolation.Hyper` (the extrapolation group's attributes) by
  :func:`~chinplan.inference.extrapolation.sample_discrepancy`;
* ``new default``: ``uncertainty="extrapolation"`` as the package answers now (the allocation
  line of :mod:`chinplan.inference.allocation`, with ``DEFAULT_HYPER``);
* ``new default, nested``: the same line, its scales chosen without the held-out ladder (the
  ``DEFAULT_HYPER`` of the row above was chosen on every ladder, the held-out one too).

Scores: coverage of the central 50/80/90% intervals (pooled, with 5-95% brackets of a
bootstrap over ladders; per ladder; by decades beyond the fitted compute); the median 90%
band ratio 10^(q95 - q5) within 1 decade and at 1-2.1 decades; the 90% interval score and the
CRPS (decades; Gneiting & Raftery 2007); the median |log10 error| of the median. Loss: the
coverage of 50/90% intervals of the observed loss at every held-out run.

The scales of the allocation line (sigma0, sigma, tau) are selected as in the prototype:
every point of a grid is scored by the mean CRPS of its Normal predictive
(``AllocationLine.predictive`` plus the minimum's noise) per ladder; the held-out ladder
takes the grid point with the least sum over the other ladders; the grid point with the least
sum over all ladders is what ``DEFAULT_HYPER`` should be. The loss level's prior scales
(tau_u, kappa) are selected the same way (:func:`select_level_scales`).

:func:`backtest` runs it all and returns the results dict; ``chinplan validate --ladders``
prints its pooled table and ``scripts/validate_ladders.py`` renders all of it as the markdown
of docs/CALIBRATION.md. The full back-test (9 ladders, 54 NUTS fits of 4 chains) takes about
7 minutes on 2 CPU cores.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import time
import warnings
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from chinplan import __version__, datasets
from chinplan.extrapolated import Domain, compute_optimal_draws, log_loss_draws
from chinplan.inference import extrapolation as ex
from chinplan.inference.allocation import DEFAULT_HYPER, AllocationHyper, fit_line, law_line_draws
from chinplan.inference.extrapolation import Hyper, isoflop_minima, sample_discrepancy
from chinplan.inference.fit import fit
from chinplan.inference.model import Priors
from chinplan.inference.posterior import Posterior, _replicate
from chinplan.inference.runs import load_runs

__all__ = [
    "backtest", "LadderBacktest", "ladders", "ladder_names", "short", "ladder_evidence", "select_hyper", "select_level_scales",
    "score_all", "loss_scores", "results", "SEED", "LEVELS", "BINS", "PREDICTIVES", "LIKELIHOODS",
]  # fmt: skip

SEED = 20240416  # ladder i is fitted with jax.random.key(SEED + i) (as the prototype)
PORIAN_FIT_MAX_BUDGET = 2.1e17
CHINCHILLA_TRAIN_FRACTION = 0.65
HELDOUT_MARGIN = 0.1  # a held-out slice lies more than this many decades beyond the fit
LEVELS = (0.5, 0.8, 0.9)
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
BINS = ((0.0, 0.5, "0-0.5"), (0.5, 1.0, "0.5-1"), (1.0, math.inf, "1-2.1"))
NUM_BOOTSTRAP = 2000
LN10 = math.log(10.0)
INF = 1e3  # "no anchor": a prior sd of a thousand decades
#: The prototype's grids (decades of N; tau per decade of C).
GRIDS = {
    "sigma0": (0.0, 0.05, 0.1, 0.2, 0.4, INF),
    "sigma": (0.0, 0.02, 0.05, 0.1),
    "tau": (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4),
}
PREDICTIVES = ("law", "previous default", "new default", "new default, nested")
#: Candidate half-normal prior scales of the loss level's tau_u and kappa (log loss per
#: decade^(1/2)); the package's PRIOR_SCALE_TAU_U and PRIOR_SCALE_KAPPA are chosen from it.
#: It starts at the step of the package's TAU_U_GRID and KAPPA_GRID (0.005): a smaller
#: scale puts all the prior's mass on the grid's first point.
LEVEL_GRID = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05)


# ----------------------------------------------------------------------------------------
# Scores of one predictive at one observation (log10 decades)
# ----------------------------------------------------------------------------------------
def crps_samples(samples, y) -> float:
    """CRPS of the empirical distribution of ``samples`` at ``y``: E|X - y| - E|X - X'| / 2."""
    x = np.sort(np.asarray(samples, np.float64))
    n = len(x)
    spread = 2.0 * np.sum((2.0 * np.arange(1, n + 1) - n - 1) * x) / n**2  # E|X - X'|
    return float(np.mean(np.abs(x - y)) - 0.5 * spread)


def crps_normal(mu, sd, y):
    """CRPS of N(mu, sd^2) at y (Gneiting & Raftery 2007, Eq. 5)."""
    z = (np.asarray(y) - mu) / sd
    return sd * (z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z) - 1.0 / math.sqrt(math.pi))


def with_noise(samples, s, rng) -> np.ndarray:
    """The draws of the minimum as it would be measured: each draw plus N(0, s^2)."""
    samples = np.asarray(samples, np.float64)
    return samples + s * rng.standard_normal(samples.shape)


def interval_score(lo, hi, y, alpha):
    """Interval score of the central (1 - alpha) interval [lo, hi] at y (Gneiting & Raftery
    2007, Eq. 43): (hi - lo) + (2/alpha)(lo - y)+ + (2/alpha)(y - hi)+."""
    return (hi - lo) + 2 / alpha * np.maximum(lo - y, 0.0) + 2 / alpha * np.maximum(y - hi, 0.0)


def interval_scores(q: dict, y: float) -> dict:
    """Hits of the central intervals, IS90, 90% band ratio and error of the median from the
    quantiles ``q`` ({level: value} at :data:`QUANTILES`) of one predictive."""
    out = {}
    for lev in LEVELS:
        lo, hi = q[round((1 - lev) / 2, 3)], q[round((1 + lev) / 2, 3)]
        out[f"in{lev:g}"] = bool(lo <= y <= hi)
    lo, hi, alpha = q[0.05], q[0.95], 0.1
    out["is90"] = float(interval_score(lo, hi, y, alpha))
    out["band90"] = 10 ** (hi - lo)
    out["err"] = y - q[0.5]
    return out


def score_samples(samples, y: float, s: float, rng) -> dict:
    """Scores of a draw-based predictive of a measured minimum (``s``: its bootstrap sd)."""
    x = with_noise(samples, s, rng)
    q = dict(zip(QUANTILES, np.quantile(x, QUANTILES)))
    return {**interval_scores(q, y), "crps": crps_samples(x, y)}


def score_normal(mu: float, sd: float, y: float) -> dict:
    """Scores of N(mu, sd^2) (``sd`` already holds the minimum's own noise)."""
    q = dict(zip(QUANTILES, stats.norm.ppf(QUANTILES, mu, sd)))
    return {**interval_scores(q, y), "crps": float(crps_normal(mu, sd, y))}


# ----------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------
def summarize(df: pd.DataFrame) -> dict:
    out = {"n": len(df)}
    for lev in LEVELS:
        out[f"cov{lev:g}"] = float(df[f"in{lev:g}"].mean())
    within, beyond = df[df["d"] < 1.0], df[df["d"] >= 1.0]
    out["band90_within1"] = float(within["band90"].median()) if len(within) else math.nan
    out["band90_beyond1"] = float(beyond["band90"].median()) if len(beyond) else math.nan
    out["band90"] = float(df["band90"].median())
    out["is90"] = float(df["is90"].mean())
    out["crps"] = float(df["crps"].mean())
    out["med_abs_err"] = float(df["err"].abs().median())
    out["mean_err"] = float(df["err"].mean())
    return out


def ladder_bootstrap(df: pd.DataFrame, num: int = NUM_BOOTSTRAP, seed: int = 0) -> dict:
    """5-95% of the pooled coverages over a bootstrap of whole ladders (hits within one
    ladder share one fit and are correlated)."""
    rng = np.random.default_rng(seed)
    groups = [g for _, g in df.groupby("ladder", sort=False)]
    hits = [{lev: g[f"in{lev:g}"].to_numpy() for lev in LEVELS} for g in groups]
    draws = {lev: [] for lev in LEVELS}
    for _ in range(num):
        pick = rng.integers(0, len(groups), len(groups))
        for lev in LEVELS:
            draws[lev].append(np.concatenate([hits[i][lev] for i in pick]).mean())
    return {f"cov{lev:g}": [float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95))] for lev, v in draws.items()}


def distance_bin(d) -> np.ndarray:
    d = np.asarray(d)
    out = np.full(d.shape, "", dtype=object)
    for lo, hi, name in BINS:
        out[(d >= lo) & (d < hi)] = name
    return out


def nested_choice(table: np.ndarray) -> tuple[list[int], int]:
    """``table``: (grid points, ladders) of mean scores (lower is better; NaN: the ladder has
    no line). The grid index chosen for each held-out ladder (best summed over the others) and
    the best summed over all."""
    t = np.nan_to_num(table, nan=0.0)
    total = t.sum(axis=1)
    per = [int(np.argmin(total - t[:, k])) for k in range(t.shape[1])]
    return per, int(np.argmin(total))


# ----------------------------------------------------------------------------------------
# Ladders and fits
# ----------------------------------------------------------------------------------------
def ladders(porian=None) -> list[tuple[str, pd.DataFrame, np.ndarray]]:
    """(name, runs, fitted mask) of every ladder: the Porian validation ladders (``porian``: a
    CSV path or a frame of :func:`chinplan.datasets.porian`'s columns; None: the shipped one),
    sorted by name, then Chinchilla. Ladder i is fitted with the key ``seed + i``."""
    out = []
    df = datasets.porian() if porian is None else porian if isinstance(porian, pd.DataFrame) else pd.read_csv(porian)
    df = df[df["loss_kind"] == "validation"]
    for name, g in df.groupby("ladder", sort=True):
        runs = g[["params", "tokens", "loss"]].reset_index(drop=True).astype(np.float64)
        out.append((f"porian:{name}", runs, g["budget"].to_numpy() <= PORIAN_FIT_MAX_BUDGET))
    runs = datasets.chinchilla()[["params", "tokens", "loss"]].astype(np.float64).reset_index(drop=True)
    flops = 6.0 * runs["params"].to_numpy() * runs["tokens"].to_numpy()
    out.append(("chinchilla", runs, flops < np.quantile(flops, CHINCHILLA_TRAIN_FRACTION)))
    return out


def short(name: str) -> str:
    """The ladder's short name (``porian:RefinedWeb|short-warmup+cosine`` -> ``RW/short-wu+cosine``),
    as the tables and ``chinplan validate --ladders NAME`` write it."""
    return (name.replace("porian:", "").replace("|", "/").replace("RefinedWeb", "RW")
            .replace("warmup", "wu").replace("tuned-hparams+const-lr", "tuned+const-lr"))  # fmt: skip


#: The noise models judged by the ladders (issue 22 item 4): ``chinplan.fit`` options of each.
LIKELIHOODS = ("student_t", "normal", "huber", "student_t_nu3", "student_t_sigma05", "student_t_sigma01")


def likelihood_options(likelihood: str) -> dict:
    """``chinplan.fit`` keywords of a noise model of :data:`LIKELIHOODS`: the default Student-t
    (nu free; sigma ~ HalfNormal(0.02)), the Normal, Huber's density, the Student-t with a
    floor nu >= 3, and the Student-t with another noise prior: sigma ~ HalfNormal(0.05) (the
    default until issue 22) or HalfNormal(0.01) (docs/CALIBRATION.md: the noise scale's prior)."""
    priors = {"student_t_nu3": Priors(nu_min=3.0), "student_t_sigma05": Priors(sigma_scale=0.05),
              "student_t_sigma01": Priors(sigma_scale=0.01)}.get(likelihood)  # fmt: skip
    return {"likelihood": likelihood} if priors is None else {"likelihood": "student_t", "priors": priors}


def fitted_posterior(name: str, runs: pd.DataFrame, seed: int, cache: str | None, likelihood: str = "student_t",
                     fit_options: dict | None = None, progress: bool = False):  # fmt: skip
    """The ladder's posterior (cached under ``cache`` when given, keyed by ladder, seed, data,
    chinplan version, the level's prior scales, the likelihood and ``fit_options``) and its fit
    record. ``fit_options``: more :func:`chinplan.fit` keywords (``num_draws``, ...)."""
    scales = [ex.PRIOR_SCALE_TAU_U, ex.PRIOR_SCALE_KAPPA, ex.PRIOR_SCALE_TAU_V]
    spec = {"seed": seed, "version": __version__, "scales": scales}
    if likelihood != "student_t":  # the default's tag as before
        spec["likelihood"] = likelihood
    if fit_options:  # likewise: fit's defaults keep the tag they always had
        spec["fit"] = {k: fit_options[k] for k in sorted(fit_options)}
    tag = hashlib.sha1(json.dumps({**spec, "data": pd.util.hash_pandas_object(runs, index=False).tolist()}).encode()).hexdigest()[:10]
    stem = os.path.join(cache, f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}-{tag}") if cache else None
    if stem and os.path.exists(stem + ".nc") and os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            return Posterior.load(stem + ".nc"), {**json.load(f), "from_cache": True}
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = fit(runs, key=jax.random.key(seed), progress=progress, allow_unconverged=True, **likelihood_options(likelihood), **(fit_options or {}))  # scored and reported either way
    record = {"fit_wall_s": time.perf_counter() - t0, "warnings": [f"{w.category.__name__}: {str(w.message)[:300]}" for w in caught]}
    if stem:
        os.makedirs(cache, exist_ok=True)
        post.save(stem + ".nc")
        with open(stem + ".json", "w") as f:
            json.dump(record, f)
    return post, {**record, "from_cache": False}


def previous_default(post, theta, seed: int):
    """``theta`` (the extrapolation draws) with the folds' valley drift only: c = 0 and v
    drawn from the fit's learned Hyper; ``theta`` itself for a fit without an allocation line."""
    if post.allocation_line is None:
        return theta
    attrs = post.to_arviz().extrapolation.attrs
    hyper = Hyper(
        p_tau_u_kappa=np.asarray(json.loads(attrs["extrapolation_p_tau_u_kappa"]), np.float64),
        p_tau_v=np.asarray(json.loads(attrs["extrapolation_p_tau_v"]), np.float64),
        v_mean=np.asarray(json.loads(attrs["extrapolation_v_mean"]), np.float64),
        v_sd=np.asarray(json.loads(attrs["extrapolation_v_sd"]), np.float64),
        domain=Domain(*json.loads(attrs["extrapolation_domain"])),
        folds=json.loads(attrs["extrapolation_folds"]),
    )
    v = sample_discrepancy(hyper, post.num_draws, key=jax.random.key(seed + 2000))["v"]
    dtype = theta.v.dtype
    return theta._replace(v=jnp.asarray(v, dtype), c=jnp.zeros_like(theta.v))


def log10_nopt(theta, x) -> np.ndarray:
    """(draws, len(x)) log10 N* at log10 budgets ``x`` (chinplan's own kernel)."""
    log_n, _, _ = compute_optimal_draws(theta, jnp.asarray(np.asarray(x) * LN10, theta.law.alpha.dtype))
    return np.asarray(log_n, np.float64) / LN10


def ladder_evidence(name, runs, fitted, seed, cache, log: Callable[[str], None] | None = None, likelihood: str = "student_t",
                    fit_options: dict | None = None, progress: bool = False) -> dict:  # fmt: skip
    """Everything the scores need from one ladder's fit (``log``: told each warning of the fit)."""
    post, record = fitted_posterior(name, runs[fitted].reset_index(drop=True), seed, cache, likelihood, fit_options, progress)
    for w in record["warnings"] if log is not None else ():
        log(f"  [{short(name)}] {w[:200]}")
    x0 = float(post.domain[0])
    fitted_minima = isoflop_minima(load_runs(runs[fitted].reset_index(drop=True)))
    every = isoflop_minima(load_runs(runs))
    held = every[every["log10_compute"] - HELDOUT_MARGIN > x0].reset_index(drop=True)
    x = held["log10_compute"].to_numpy(np.float64)
    theta_law = post.extrapolated_params("law")
    theta_new = post.extrapolated_params("extrapolation")
    theta_prev = previous_default(post, theta_new, seed)
    draws = {"law": log10_nopt(theta_law, x), "previous default": log10_nopt(theta_prev, x), "new default": log10_nopt(theta_new, x)}
    # the draws are the package's answer: the same quantiles as Posterior.compute_optimal
    for unc, key in (("law", "law"), ("extrapolation", "new default")):
        n = post.compute_optimal(10.0**x, q=(0.05, 0.5, 0.95), key=jax.random.key(0), uncertainty=unc).n
        np.testing.assert_allclose(np.log10(n), np.quantile(draws[key], (0.05, 0.5, 0.95), axis=0), atol=1e-4)
    # loss at every held-out run: the previous default's replicate is the new default's with
    # the mean swapped (the scatter and noise do not depend on the valley)
    test = runs[~fitted].reset_index(drop=True)
    log_n, log_d = np.log(test["params"].to_numpy()), np.log(test["tokens"].to_numpy())
    _, rep_law = post.sample_log_loss(log_n, log_d, key=jax.random.key(seed + 1000), uncertainty="law")
    mean_new, rep_new = post.sample_log_loss(log_n, log_d, key=jax.random.key(seed + 1001), uncertainty="extrapolation")
    dtype = theta_prev.law.alpha.dtype
    mean_prev = np.asarray(log_loss_draws(theta_prev, jnp.asarray(log_n, dtype), jnp.asarray(log_d, dtype)), np.float64)
    reps = {"law": rep_law, "previous default": rep_new - mean_new + mean_prev, "new default": rep_new}
    with np.errstate(over="ignore"):  # heavy-tailed draws past exp's range: an infinite upper quantile is still a bound
        loss_q = {k: np.quantile(np.exp(r), (0.05, 0.25, 0.75, 0.95), axis=0) for k, r in reps.items()}
    level = level_scale_scores(post, log_n, log_d, np.log(test["loss"].to_numpy(np.float64)), seed)
    attrs = post.attrs
    line = post.allocation_line
    return {
        "name": name,
        "x0": x0,
        "held": held,
        "fitted_minima": fitted_minima,
        "draws": draws,
        "law_line": law_line_draws({k: post.draws(k) for k in ("log_A", "log_B", "alpha", "beta")}, x0),
        "line": line,
        "loss": test.assign(d=np.asarray(post.extrapolation(test["params"].to_numpy(), test["tokens"].to_numpy()).decades, np.float64)),
        "loss_q": loss_q,
        "level": level,
        "fit": {
            "fitted_runs": int(fitted.sum()), "heldout_runs": int((~fitted).sum()),
            "fitted_minima": len(fitted_minima), "heldout_minima": len(held),
            "converged": bool(post.converged), "problems": post.convergence_problems(),
            "attempts": len(json.loads(attrs.get("fit_attempts", "[]"))), "fit_wall_s": float(record["fit_wall_s"]), "from_cache": record["from_cache"],
            "line": None if line is None else {"intercept": float(line.mean[0]), "slope": float(line.mean[1]), "num_minima": line.num_minima},
        },
    }  # fmt: skip


# ----------------------------------------------------------------------------------------
# The loss level's prior scales, nested leave-one-ladder-out
# ----------------------------------------------------------------------------------------
def weighted_interval_score(q, y) -> np.ndarray:
    """Per point: the interval scores of the 50% and 90% intervals weighted by alpha/2 (the
    weighted interval score of Bracher et al. 2021, a quantile approximation of the CRPS);
    ``q`` the 5/25/75/95% quantiles, in log loss."""
    out = 0.0
    for (lo, hi), alpha in (((q[1], q[2]), 0.5), ((q[0], q[3]), 0.1)):
        out = out + alpha / 2 * interval_score(lo, hi, y, alpha)
    return out


def level_scale_scores(post, log_n, log_d, y, seed: int) -> dict:
    """For each pair of prior scales in :data:`LEVEL_GRID`: the ladder's held-out loss
    predictive with the folds' evidence of this fit under that prior (its grid posterior
    moved by the prior ratio, :func:`chinplan.inference.extrapolation.level_scale_log_prior`),
    u and kappa redrawn with one key for every pair. Returns {(a, b): (mean weighted interval
    score, hits of the 50% interval, hits of the 90% interval)}."""
    attrs = post._idata.extrapolation.attrs
    with np.errstate(divide="ignore"):  # grid cells the folds rule out (rounded to 0 on save)
        base = np.log(np.asarray(json.loads(attrs["extrapolation_p_tau_u_kappa"]), np.float64)) - ex.level_scale_log_prior()
    keep = {k: np.asarray(json.loads(attrs[f"extrapolation_{k}"]), np.float64) for k in ("p_tau_v", "v_mean", "v_sd")}
    theta = post.extrapolated_params("extrapolation")
    dtype = theta.law.alpha.dtype
    out = {}
    for a, b in itertools.product(LEVEL_GRID, LEVEL_GRID):
        lp = base + ex.level_scale_log_prior(a, b)
        w = np.exp(lp - lp.max())
        hyper = ex.Hyper(w / w.sum(), keep["p_tau_v"], keep["v_mean"], keep["v_sd"], post.domain, [])
        drawn = ex.sample_discrepancy(hyper, post.num_draws, key=jax.random.key(seed + 2000))
        th = theta._replace(u=jnp.asarray(drawn["u"], dtype), kappa=jnp.asarray(drawn["kappa"], dtype))
        mean = log_loss_draws(th, jnp.asarray(log_n, dtype), jnp.asarray(log_d, dtype))
        _, rep = _replicate(post, mean, th.kappa, th.domain[0], log_n, log_d, jax.random.key(seed + 1001))
        q = np.quantile(rep, (0.05, 0.25, 0.75, 0.95), axis=0)
        out[(a, b)] = (float(np.mean(weighted_interval_score(q, y))), (q[1] <= y) & (y <= q[2]), (q[0] <= y) & (y <= q[3]))
    return out


def select_level_scales(evs: list[dict]) -> dict:
    """The pair of level prior scales with the best mean score over the ladders (each ladder
    weighted equally), and the pair chosen without each ladder with that ladder's hits."""
    pairs = list(evs[0]["level"])
    table = np.array([[ev["level"][pr][0] for ev in evs] for pr in pairs])
    per, best = nested_choice(table)
    hit = lambda pr, ev, j: ev["level"][pr][j]  # noqa: E731
    nested = {f"cov{lev}": float(np.concatenate([hit(pairs[i], ev, j) for i, ev in zip(per, evs)]).mean()) for lev, j in ((0.5, 1), (0.9, 2))}
    pooled = {f"cov{lev}": float(np.concatenate([hit(pairs[best], ev, j) for ev in evs]).mean()) for lev, j in ((0.5, 1), (0.9, 2))}
    shipped = (ex.PRIOR_SCALE_TAU_U, ex.PRIOR_SCALE_KAPPA)
    return {
        "best_all": list(pairs[best]), "shipped": list(shipped), "pooled_best": pooled, "nested": nested,
        "per_ladder": {ev["name"]: {"chosen": list(pairs[i]), "cov0.5": float(ev["level"][pairs[i]][1].mean()), "cov0.9": float(ev["level"][pairs[i]][2].mean()),
                                    "score_chosen": float(table[i, k]), "score_shipped": float(table[pairs.index(shipped), k]) if shipped in pairs else math.nan}
                       for k, (ev, i) in enumerate(zip(evs, per))},
    }  # fmt: skip


# ----------------------------------------------------------------------------------------
# The allocation line's scales, nested leave-one-ladder-out
# ----------------------------------------------------------------------------------------
def hyper_grid() -> list[AllocationHyper]:
    """Every point of :data:`GRIDS` (sigma0 x sigma x tau)."""
    return [AllocationHyper(*v) for v in itertools.product(GRIDS["sigma0"], GRIDS["sigma"], GRIDS["tau"])]


def line_normal(ev: dict, hyper):
    """(mean, sd) of the measured minima of ``ev`` under the package's line with ``hyper``;
    None without a line."""
    line = fit_line(ev["law_line"], ev["fitted_minima"], ev["x0"], hyper)
    if line is None:
        return None
    mu, sd = line.predictive(ev["held"]["log10_compute"].to_numpy(np.float64))
    s = (ev["held"]["upper"] - ev["held"]["lower"]).to_numpy(np.float64) / 3.29
    return mu, np.sqrt(sd**2 + s**2)


def select_hyper(evs: list[dict]) -> dict:
    """The grid of the allocation line's scales, its (grid, ladders) table of mean CRPS, the
    point chosen for each held-out ladder and the best on all (:func:`nested_choice`)."""
    grid = hyper_grid()
    table = np.full((len(grid), len(evs)), np.nan)
    for k, ev in enumerate(evs):
        y = ev["held"]["log10_params"].to_numpy(np.float64)
        for i, h in enumerate(grid):
            p = line_normal(ev, h)
            if p is not None and len(y):
                table[i, k] = float(np.mean(crps_normal(p[0], p[1], y)))
    per, best = nested_choice(table)
    return {"grid": grid, "table": table, "per_ladder": [grid[i] for i in per], "best": grid[best]}


# ----------------------------------------------------------------------------------------
# The back-test
# ----------------------------------------------------------------------------------------
def score_all(evs: list[dict], selection: dict, seed: int = SEED) -> pd.DataFrame:
    """One row per held-out minimum and predictive: its scores (the draws' noise from ``seed``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, ev in enumerate(evs):
        held = ev["held"]
        s = ((held["upper"] - held["lower"]) / 3.29).to_numpy(np.float64)
        nested = line_normal(ev, selection["per_ladder"][k])
        for j, r in enumerate(held.itertuples()):
            base = {"ladder": ev["name"], "x": r.log10_compute, "y": r.log10_params, "s": s[j], "d": r.log10_compute - ev["x0"]}
            for which, d in ev["draws"].items():
                rows.append({**base, "predictive": which, **score_samples(d[:, j], r.log10_params, s[j], rng)})
            if nested is None:  # no line: the package keeps the folds' drift
                rows.append({**base, "predictive": "new default, nested", **score_samples(ev["draws"]["new default"][:, j], r.log10_params, s[j], rng)})
            else:
                rows.append({**base, "predictive": "new default, nested", **score_normal(nested[0][j], nested[1][j], r.log10_params)})
    return pd.DataFrame(rows)


def loss_scores(evs: list[dict]) -> pd.DataFrame:
    """One row per held-out run and predictive: whether its 50% and 90% loss intervals hold it."""
    rows = []
    for ev in evs:
        t = ev["loss"]
        for which, q in ev["loss_q"].items():
            loss = t["loss"].to_numpy()
            rows.append(pd.DataFrame({
                "ladder": ev["name"], "predictive": which, "d": t["d"].to_numpy(),
                "in0.5": (q[1] <= loss) & (loss <= q[2]), "in0.9": (q[0] <= loss) & (loss <= q[3]),
            }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def results(evs, selection, points, loss) -> dict:
    """The results dict: ``allocation`` (per predictive: pooled, by distance, per ladder),
    ``loss``, ``hyper`` (the line's scales), ``level`` (the level's prior scales), ``fits``."""
    out = {"allocation": {}, "loss": {}}
    for which in PREDICTIVES:
        df = points[points["predictive"] == which]
        out["allocation"][which] = {
            "pooled": {**summarize(df), "bootstrap": ladder_bootstrap(df)},
            "by_distance": {name: summarize(g) for name, g in df.groupby(distance_bin(df["d"]), sort=False)},
            "per_ladder": {name: summarize(g) for name, g in df.groupby("ladder", sort=False)},
        }
    for which in ("law", "previous default", "new default"):
        df = loss[loss["predictive"] == which]
        cov = lambda g: {"n": len(g), "cov0.5": float(g["in0.5"].mean()), "cov0.9": float(g["in0.9"].mean())}
        out["loss"][which] = {
            "pooled": cov(df),
            "by_distance": {name: cov(g) for name, g in df.groupby(distance_bin(df["d"]), sort=False)},
            "per_ladder": {name: cov(g) for name, g in df.groupby("ladder", sort=False)},
        }
    grid, table = selection["grid"], selection["table"]
    index = {h: i for i, h in enumerate(grid)}
    crps_of = lambda h, cols: float(np.nansum(table[index[h], cols])) / max(1, int(np.isfinite(table[index[h], cols]).sum()))
    out["hyper"] = {
        "default": DEFAULT_HYPER._asdict(),
        "best_all": selection["best"]._asdict(),
        "per_ladder": {
            ev["name"]: {"chosen": h._asdict(), "crps_chosen": crps_of(h, [k]), "crps_default": crps_of(DEFAULT_HYPER, [k]) if DEFAULT_HYPER in index else math.nan}
            for k, (ev, h) in enumerate(zip(evs, selection["per_ladder"]))
        },
    }  # fmt: skip
    out["level"] = select_level_scales(evs)
    out["fits"] = {ev["name"]: ev["fit"] for ev in evs}
    return out




# ----------------------------------------------------------------------------------------
# Everything at once
# ----------------------------------------------------------------------------------------
class LadderBacktest(NamedTuple):
    """What :func:`backtest` returns: the results dict (:func:`results`, with ``meta``: wall
    times in seconds and counts) and every scored point (:func:`score_all`)."""

    results: dict
    points: pd.DataFrame


def ladder_names(porian=None) -> list[str]:
    """The ladders' names in the order :func:`backtest` runs them (``porian:DATASET|CONDITION``,
    then ``chinchilla``); :func:`short` gives the names the tables print."""
    return [name for name, _, _ in ladders(porian)]


def backtest(
    names: Sequence[str] | None = None,
    *,
    porian=None,
    cache: str | None = None,
    likelihood: str = "student_t",
    seed: int = SEED,
    fit_options: dict | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    on_ladder: Callable[[int, int, str, dict, float], None] | None = None,
) -> LadderBacktest:
    """The leave-one-ladder-out back-test: fit each ladder's lower budgets, score its
    predictives at the isoFLOP minima above, choose the allocation line's and the loss level's
    scales nested over ladders.

    Args:
      names: the ladders to run (full names of :func:`ladder_names` or the :func:`short` ones);
        None runs all 9. The scales' selection leaves out one of the ladders run at a time.
      porian: Porian et al.'s runs (a CSV path or frame); None: :func:`chinplan.datasets.porian`.
      cache: a folder that keeps each ladder's posterior (``Posterior.save``) and reuses it.
      likelihood: the fits' noise model, one of :data:`LIKELIHOODS`.
      seed: ladder i of :func:`ladder_names` is fitted with ``jax.random.key(seed + i)``; the
        scores' noise draws use ``numpy.random.default_rng(seed)``.
      fit_options: more :func:`chinplan.fit` keywords (``num_draws``, ``num_warmup``,
        ``num_chains``, ``max_retries``); None: fit's defaults (4 chains x 1,000 draws).
      progress: NUTS progress bars (tqdm, on stderr).
      log: told every warning of a fit, one line each.
      on_ladder: called after each ladder with (its index among those run, how many run, its
        name, its fit record, seconds since the start).

    Returns:
      A :class:`LadderBacktest`: ``results`` (:func:`results`, plus ``meta``) and ``points``.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
    every = ladders(porian)
    chosen = None
    if names is not None:
        known = {n: n for n, _, _ in every} | {short(n): n for n, _, _ in every}
        unknown = [n for n in names if n not in known]
        if unknown or not len(names):
            what = f"unknown ladder {unknown[0]!r}" if unknown else "no ladder given"
            raise ValueError(f"names: {what}; choose from {', '.join(short(n) for n, _, _ in every)}")
        chosen = {known[n] for n in names}
    todo = [(i, ladder) for i, ladder in enumerate(every) if chosen is None or ladder[0] in chosen]
    t0 = time.perf_counter()
    evs = []
    for k, (i, (name, runs, fitted)) in enumerate(todo):
        evs.append(ladder_evidence(name, runs, fitted, seed + i, cache, log, likelihood, fit_options, progress))
        if on_ladder is not None:
            on_ladder(k, len(todo), name, evs[-1]["fit"], time.perf_counter() - t0)
    t1 = time.perf_counter()
    selection = select_hyper(evs)
    points = score_all(evs, selection, seed)
    res = results(evs, selection, points, loss_scores(evs))
    t2 = time.perf_counter()
    res["meta"] = {
        "wall_s": t2 - t0, "fits_s": t1 - t0, "scores_s": t2 - t1,
        "fit_wall_s": sum(ev["fit"]["fit_wall_s"] for ev in evs if not ev["fit"]["from_cache"]),
        "ladders": len(evs), "cached": sum(ev["fit"]["from_cache"] for ev in evs),
    }  # fmt: skip
    return LadderBacktest(res, points)
