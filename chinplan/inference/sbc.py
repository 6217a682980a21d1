"""Simulation-based calibration of the fit (Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

*Is the inference machinery (model + NUTS) calibrated?* Draw theta* ~ p(theta), simulate
y ~ p(y | theta*), fit p(theta | y), and record the rank of theta* among L posterior draws.
When the sampler is correct the ranks are uniform on {0, ..., L} and every central interval
of level q covers theta* in a fraction q of repeats ("Validating Bayesian Inference
Algorithms with Simulation-Based Calibration", arXiv:1804.06788). The back-tests and
predictive checks are in :mod:`chinplan.calibration`.

The prior draw is written out here rather than taken from the model's trace: the model
samples ``log_A_ref``/``log_B_ref`` from an improper flat density (the reparameterisation of
:func:`chinplan.inference.model.chinchilla_model`) and puts the prior on ``log A``/``log B`` as a
factor, so ``Predictive`` cannot draw from it; the likelihood is the model's own
(:func:`chinplan.inference.model.noise_distribution`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from chinplan.inference.calibration import binomial_se
from chinplan.inference.model import Priors, chinchilla_model, noise_distribution, pad_runs
from chinplan.inference.runs import MIN_RUNS, load_runs
from chinplan.inference.sampler import CHAIN_METHODS, sample_nuts
from chinplan.law import LawParams, log_loss

__all__ = ["SBC", "sbc", "SBC_PRIORS", "SBC_PARAMS", "sbc_design", "sample_prior", "simulate_log_loss", "rank_uniformity"]

#: The SBC prior: the model's own families (:class:`chinplan.inference.model.Priors`) narrowed to a
#: realistic box around the published fits (Hoffmann et al. 2022, Besiroglu et al. 2024,
#: Muennighoff et al. 2023: log E 0.53-0.63, log A 6.0-6.3, log B 6.0-7.6, alpha
#: 0.34-0.35, beta 0.28-0.37). The default priors are too wide to simulate sensible runs
#: from (see docs/CALIBRATION.md); SBC proper needs the truths to come from the prior the
#: fit uses, so :func:`sbc` fits with this prior too. sigma ~ HalfNormal(0.01) covers the
#: embedded fit's 0.004 and digitising noise of +-0.015 in loss; nu keeps the model's
#: Gamma(2, 0.1).
SBC_PRIORS = Priors(
    log_E_loc=0.55,
    log_E_scale=0.1,
    log_A_loc=6.1,
    log_A_scale=0.3,
    log_B_loc=7.0,
    log_B_scale=0.6,
    exponent_low=0.25,
    exponent_high=0.45,
    sigma_scale=0.01,
    nu_concentration=2.0,
    nu_rate=0.1,
)

#: Quantities :func:`sbc` ranks: the law's constants and the noise parameters. E, A, B are
#: ranked through their logs (the same ranks: the map is monotone).
SBC_PARAMS = ("E", "A", "B", "alpha", "beta", "sigma", "nu")
_SITE_OF = {"E": "log_E", "A": "log_A", "B": "log_B", "alpha": "alpha", "beta": "beta", "sigma": "sigma", "nu": "nu"}


def sbc_design(num_runs: int) -> pd.DataFrame:
    """A realistic (N, D) design: ``num_runs`` embedded Chinchilla runs spread over compute.

    The 240 embedded runs that are not outliers, sorted by FLOPs, are sampled at
    ``num_runs`` evenly spaced ranks (deterministic), so the design spans the same
    N (7e7 to 1.6e10), D and C (1e18 to 1e22) as Hoffmann et al.'s Figure 4 grid.
    """
    from chinplan import datasets

    if not isinstance(num_runs, (int, np.integer)) or num_runs < MIN_RUNS:
        raise ValueError(f"num_runs must be an integer >= {MIN_RUNS}, got {num_runs!r}")
    runs = datasets.chinchilla(drop_outliers=True).sort_values("flops").reset_index(drop=True)
    if num_runs > len(runs):
        raise ValueError(f"num_runs must be at most {len(runs)} (the embedded runs), got {num_runs!r}")
    index = np.round(np.linspace(0, len(runs) - 1, num_runs)).astype(int)
    return runs.loc[index, ["params", "tokens", "flops"]].reset_index(drop=True)


def sample_prior(priors: Priors, *, key: jax.Array) -> dict[str, jax.Array]:
    """One draw of every site of :func:`chinplan.inference.model.chinchilla_model` from its prior.

    log E ~ N(m_E, s_E), log A ~ N(m_A, s_A), log B ~ N(m_B, s_B), alpha, beta ~ U(lo, hi),
    sigma ~ HalfNormal(s_sigma), nu ~ Gamma(k, rate) -- exactly the model's joint prior
    (its log A / log B reparameterisation has unit Jacobian).
    """
    p = priors
    k = jax.random.split(key, 7)
    dtype = jnp.result_type(float)
    normal = lambda kk: jax.random.normal(kk, (), dtype)  # noqa: E731
    uniform = lambda kk: jax.random.uniform(kk, (), dtype, p.exponent_low, p.exponent_high)  # noqa: E731
    return {
        "log_E": p.log_E_loc + p.log_E_scale * normal(k[0]),
        "log_A": p.log_A_loc + p.log_A_scale * normal(k[1]),
        "log_B": p.log_B_loc + p.log_B_scale * normal(k[2]),
        "alpha": uniform(k[3]),
        "beta": uniform(k[4]),
        "sigma": p.sigma_scale * jnp.abs(normal(k[5])),
        "nu": jax.random.gamma(k[6], p.nu_concentration, (), dtype) / p.nu_rate,
    }


def simulate_log_loss(sample: Mapping[str, jax.Array], log_n, log_d, *, key: jax.Array) -> jax.Array:
    """log L_i = log L(N_i, D_i; theta) + sigma t_nu: the model's likelihood, one draw per run."""
    law = LawParams.from_logs(sample["log_E"], sample["log_A"], sample["log_B"], sample["alpha"], sample["beta"])
    return noise_distribution("student_t", log_loss(law, log_n, log_d), sample["sigma"], sample["nu"]).sample(key)


def rank_uniformity(ranks, num_ranks: int, *, key: jax.Array, bins: int | None = None) -> tuple[float, float]:
    """p-values of the hypothesis that SBC ranks are uniform on {0, ..., L}.

    Chi-square: the ranks are grouped into ``bins`` bins of consecutive values, with
    expected counts n * (values in bin) / (L + 1); default: the largest divisor of L + 1
    that leaves at least 5 expected ranks per bin (at least 2 bins). Kolmogorov-Smirnov:
    the randomised ranks u = (r + U) / (L + 1), U ~ U(0, 1) drawn from a NumPy generator seeded by
    ``key``, are exactly
    U(0, 1) under the null (Talts et al. 2018, Section 4).

    Returns:
      (chi-square p-value, KS p-value).
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    n, values = ranks.size, num_ranks + 1
    if bins is None:
        divisors = [b for b in range(2, values + 1) if values % b == 0 and n / b >= 5]
        bins = max(divisors) if divisors else 2
    edges = np.floor(np.arange(values) * bins / values).astype(int)  # bin of each rank value
    observed = np.bincount(edges[ranks], minlength=bins)
    expected = n * np.bincount(edges, minlength=bins) / values
    chi2 = stats.chisquare(observed, expected).pvalue
    seed = np.asarray(jax.random.key_data(key), dtype=np.uint32).ravel()
    jitter = np.random.default_rng(seed).uniform(size=n)  # host-side: no compile per size
    ks = stats.kstest((ranks + jitter) / values, "uniform").pvalue
    return float(chi2), float(ks)


@dataclasses.dataclass(frozen=True)
class SBC:
    """Result of :func:`sbc`.

    Attributes:
      ranks: DataFrame (repeat x parameter) of ranks in {0, ..., num_ranks}: the number of
        thinned posterior draws below the truth.
      num_ranks: L, the number of thinned draws ranked against.
      level: the central-interval level of ``covered``.
      covered: DataFrame (repeat x parameter), True when the central ``level`` interval of
        all (unthinned) posterior draws contains the truth.
      truths: DataFrame (repeat x parameter) of the drawn truths (E, A, B natural units).
      coverage: Series per parameter, fraction of repeats covered.
      coverage_se: binomial standard error sqrt(p (1-p) / repeats) of ``coverage``.
      chi2_pvalue, ks_pvalue: Series per parameter, rank-uniformity p-values
        (:func:`rank_uniformity`).
      divergences: divergent transitions per repeat.
      seconds: wall time of each repeat's fit (the first includes compilation).
      settings: the arguments of the run.
    """

    ranks: pd.DataFrame
    num_ranks: int
    level: float
    covered: pd.DataFrame
    truths: pd.DataFrame
    coverage: pd.Series
    coverage_se: pd.Series
    chi2_pvalue: pd.Series
    ks_pvalue: pd.Series
    divergences: np.ndarray
    seconds: np.ndarray
    settings: dict

    @property
    def num_repeats(self) -> int:
        """Number of simulate-and-fit repeats."""
        return len(self.ranks)

    def summary(self) -> pd.DataFrame:
        """Per parameter: coverage, its SE, chi-square and KS p-values, mean normalised rank."""
        return pd.DataFrame(
            {
                "coverage": self.coverage,
                "se": self.coverage_se,
                "chi2_p": self.chi2_pvalue,
                "ks_p": self.ks_pvalue,
                "mean_rank": self.ranks.mean() / self.num_ranks,
            }
        )


def sbc(
    *,
    key: jax.Array,
    num_repeats: int = 100,
    num_runs: int = 100,
    noise: float | None = None,
    num_draws: int = 400,
    num_warmup: int = 300,
    num_chains: int = 1,
    num_ranks: int = 99,
    level: float = 0.9,
    priors: Priors = SBC_PRIORS,
    chain_method: str = "sequential",
    target_accept_prob: float = 0.8,
    design: pd.DataFrame | None = None,
    max_seconds: float | None = None,
    first_repeat: int = 0,
    progress: bool = False,
) -> SBC:
    """Simulation-based calibration of the NUTS fit (Talts et al. 2018, Algorithm 1).

    For repeat i with key k_i = fold_in(split(key)[0], i):

        theta* ~ p(theta)                         (:func:`sample_prior`, ``priors``)
        log L_j ~ StudentT(nu*, log L(N_j, D_j; theta*), sigma*)   on the ``design``
        theta_1..theta_S ~ p(theta | L)           (NUTS with the same ``priors``)
        r_i = #{l : theta_l < theta*}             over L draws thinned evenly from S

    If the posterior draws are exact, r_i is uniform on {0, ..., L} and the central
    ``level`` interval covers theta* with probability ``level``. This is SBC proper: the
    truths come from the prior the fit uses. The default prior :data:`SBC_PRIORS` is the
    model's families narrowed to a realistic box around the published fits (the default
    wide prior makes many synthetic runs degenerate; see docs/CALIBRATION.md). One numpyro
    compiled NUTS function (:mod:`chinplan.inference.sampler`, numpyro's NUTS kernel with the settings
    of :func:`chinplan.fit`) serves every repeat: only the first repeat compiles. Repeat i
    depends only on ``key`` and i, so a shorter run with the same key reproduces the first
    repeats of a longer one.

    Args:
      key: JAX PRNG key.
      num_repeats: number of simulate-and-fit repeats.
      num_runs: runs per synthetic data set (:func:`sbc_design`); ignored with ``design``.
      noise: if given, replaces ``priors.sigma_scale``: the HalfNormal scale of the
        log-loss noise sigma (the typical noise of the synthetic runs).
      num_draws, num_warmup, num_chains, chain_method, target_accept_prob: NUTS settings.
      num_ranks: L, the thinned draws a truth is ranked among (<= num_chains * num_draws).
      level: central-interval level for coverage, in (0, 1).
      priors: the prior truths are drawn from and the fit uses.
      design: optional DataFrame with ``params`` and ``tokens`` (or ``flops``).
      max_seconds: optional wall-time budget: no new repeat starts once it is spent, and
        the result holds the repeats done (``settings["num_repeats"]``); they are the same
        as the first repeats of an unbudgeted run with the same key.
      first_repeat: index of the first repeat (repeats first_repeat, first_repeat + 1, ...):
        extends an earlier run with the same key, or splits one across processes.
      progress: print one line per repeat.

    Returns:
      An :class:`SBC` with ranks, coverage per parameter and uniformity p-values.
    """
    for name, value, low in (
        ("num_repeats", num_repeats, 1),
        ("num_draws", num_draws, 1),
        ("num_warmup", num_warmup, 0),
        ("num_chains", num_chains, 1),
        ("num_ranks", num_ranks, 1),
        ("first_repeat", first_repeat, 0),
    ):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}")
    total = num_chains * num_draws
    if num_ranks > total:
        raise ValueError(f"num_ranks must be at most num_chains * num_draws = {total}, got {num_ranks}")
    if not (isinstance(level, (int, float, np.floating)) and 0.0 < level < 1.0):
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    level = float(level)
    if noise is not None:
        if not (isinstance(noise, (int, float, np.floating)) and noise > 0 and math.isfinite(noise)):
            raise ValueError(f"noise must be a positive number, got {noise!r}")
        priors = priors._replace(sigma_scale=float(noise))
    if design is None:
        design = sbc_design(num_runs)
    else:
        design = load_runs(design.assign(loss=1.0) if "loss" not in design else design)
    dtype = jnp.result_type(float)
    log_n = jnp.asarray(np.log(design["params"].to_numpy(np.float64)), dtype)
    log_d = jnp.asarray(np.log(design["tokens"].to_numpy(np.float64)), dtype)

    thin = np.arange(num_ranks) * (total // num_ranks)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    ranks, covered, truths, divergences, seconds = [], [], [], [], []
    repeat_key, stats_key = jax.random.split(key)
    started = time.perf_counter()
    for i in range(first_repeat, first_repeat + num_repeats):
        if max_seconds is not None and i > first_repeat and time.perf_counter() - started > max_seconds:
            break
        k_truth, k_data, k_fit = jax.random.split(jax.random.fold_in(repeat_key, i), 3)
        truth = sample_prior(priors, key=k_truth)
        y = simulate_log_loss(truth, log_n, log_d, key=k_data)
        start = time.perf_counter()
        samples, diverging = sample_nuts(
            chinchilla_model,
            pad_runs(log_n, log_d, y),  # the fit's padded shape: one compiled chain for both
            {"priors": priors},
            key=k_fit,
            num_warmup=num_warmup,
            num_draws=num_draws,
            num_chains=num_chains,
            chain_method=chain_method,
            target_accept_prob=target_accept_prob,
        )
        seconds.append(time.perf_counter() - start)
        divergences.append(int(diverging.sum()))
        row_rank, row_cov, row_truth = {}, {}, {}
        for name in SBC_PARAMS:
            site = _SITE_OF[name]
            draws = np.asarray(samples[site]).reshape(-1)
            value = np.asarray(truth[site]).astype(draws.dtype)
            row_rank[name] = int(np.sum(draws[thin] < value))
            lo, hi = np.quantile(draws, [lo_q, hi_q])
            row_cov[name] = bool(lo <= value <= hi)
            v = float(value)
            row_truth[name] = math.exp(v) if site.startswith("log_") else v
        ranks.append(row_rank)
        covered.append(row_cov)
        truths.append(row_truth)
        if progress:
            print(f"sbc repeat {i + 1}/{first_repeat + num_repeats}: {seconds[-1]:.1f} s, {divergences[-1]} divergences", flush=True)

    num_repeats = len(ranks)
    index = pd.RangeIndex(first_repeat, first_repeat + num_repeats, name="repeat")
    ranks = pd.DataFrame(ranks, columns=list(SBC_PARAMS), index=index)
    covered = pd.DataFrame(covered, columns=list(SBC_PARAMS), index=index)
    coverage = covered.mean()
    p_keys = jax.random.split(stats_key, len(SBC_PARAMS))
    pvalues = {name: rank_uniformity(ranks[name], num_ranks, key=k) for name, k in zip(SBC_PARAMS, p_keys)}
    return SBC(
        ranks=ranks,
        num_ranks=num_ranks,
        level=level,
        covered=covered,
        truths=pd.DataFrame(truths, columns=list(SBC_PARAMS), index=index),
        coverage=coverage,
        coverage_se=pd.Series(binomial_se(coverage.to_numpy(), num_repeats), index=coverage.index),
        chi2_pvalue=pd.Series({n: p[0] for n, p in pvalues.items()}),
        ks_pvalue=pd.Series({n: p[1] for n, p in pvalues.items()}),
        divergences=np.asarray(divergences),
        seconds=np.asarray(seconds),
        settings=dict(
            num_repeats=num_repeats,
            first_repeat=first_repeat,
            num_runs=len(design),
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=num_chains,
            num_ranks=num_ranks,
            level=level,
            priors=priors._asdict(),
            chain_method=chain_method,
            target_accept_prob=target_accept_prob,
        ),
    )
