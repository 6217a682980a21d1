"""The numpyro models of the scaling laws: priors and likelihoods, nothing else.

The default (``chinchilla_model`` with ``likelihood="student_t"`` and :data:`DEFAULT_PRIORS`):

    log L_i ~ StudentT(nu, logsumexp(log E, log A - alpha log N_i, log B - beta log D_i), sigma)

The Student-t likelihood on log loss is the Bayesian analogue of the Huber objective of
Hoffmann et al. 2022 (Eq. 11): a few runs far off the law (the 5 digitised runs at 1e19
FLOPs with under 0.41 tokens per parameter) fall in its heavy tails instead of dragging the
fit, so they need not be dropped by hand.

Weak priors (the default; each covers every published fit by a wide margin):

=========  ================================  ==============================================
name       prior                             why
=========  ================================  ==============================================
log_E      Normal(0.5, 0.5)                  E in about [0.6, 4.4] nats (95%)
log_A      Normal(6, 3)                      A in about [1, 1e5]; published 6.0 to 6.3
log_B      Normal(7, 3)                      B in about [3, 4e5]; published 6.0 to 7.6
alpha      Uniform(0.05, 2)                  the grid range of Hoffmann et al.'s starts
beta       Uniform(0.05, 2)                  same
sigma      HalfNormal(0.02)                  log-loss noise: seed repeats measure 0.007 (largest
                                             0.024), digitising adds ~0.006 (see below)
nu         Gamma(2, 0.1)                     Juarez & Steel 2010: mean 20, allows heavy tails
=========  ================================  ==============================================

The noise scale's prior was HalfNormal(0.05) until issue 22. Its tail let a fit explain a
ladder's misfit as broad noise instead of by the law's size term: a second mode that NUTS
did not mix between, so OWT2/tuned+const-lr failed the gate after every retry.
HalfNormal(0.02) still puts 95% of its mass below 0.039, above the largest seed-repeat
spread measured (docs/DATA_CONSTRAINED.md); 0.01 scores alike in the leave-one-ladder-out
back-test (docs/CALIBRATION.md), and 0.02 is kept because it leaves room for the measured
seed noise. The chains start near a Huber point fit, not at the prior median
(:func:`chinplan.inference.fit.fit`): from the median's law, hundreds of sigma from the runs,
a heavy-tailed likelihood can pull nu to 0 before the law moves, and under the narrower
prior one chain of the splits study stayed there.

Model choices (all optional; the default above is unchanged bit for bit):

* **Likelihood** on the log-loss residual ``r = log L_i - mu_i`` (:data:`LIKELIHOODS`):
  ``"student_t"`` (above), ``"normal"`` (``Normal(mu, sigma)``, no ``nu``) and ``"huber"``
  (:class:`HuberLike`: density ``exp(-H_delta(r) / sigma^2) / Z`` with a Gaussian core of
  scale sigma and exponential tails beyond ``|r| = delta = k sigma``; ``k`` =
  :data:`HUBER_K` = 1.345, Huber's 95%-efficiency constant; no ``nu``). The normaliser is in
  closed form: ``Z = sigma (sqrt(2 pi) erf(k / sqrt 2) + 2 exp(-k^2/2) / k)``.
* **Priors**: :data:`DEFAULT_PRIORS` (weak, above) or :data:`INFORMED_PRIORS`
  (:class:`InformedPriors`, centred between the published fits of Hoffmann et al. 2022 and
  Besiroglu et al. 2024; table in :class:`InformedPriors`).
* **Law**: :func:`kaplan_model` fits the Kaplan et al. 2020 form (Eq. 1.5)
  ``L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``, optionally plus an irreducible
  ``E`` (``irreducible=True``), with :data:`DEFAULT_KAPLAN_PRIORS`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import erf

from chinplan.law import LawParams, log_loss

__all__ = [
    "Priors",
    "InformedPriors",
    "KaplanPriors",
    "DataConstrainedPriors",
    "DEFAULT_PRIORS",
    "DEFAULT_DATA_CONSTRAINED_PRIORS",
    "INFORMED_PRIORS",
    "DEFAULT_KAPLAN_PRIORS",
    "LIKELIHOODS",
    "LAWS",
    "HUBER_K",
    "HuberLike",
    "huber_log_normaliser",
    "KaplanParams",
    "kaplan_log_loss",
    "kaplan_compute_optimal_log_n",
    "chinchilla_model",
    "chinchilla_start",
    "kaplan_model",
    "data_constrained_model",
    "PARAM_NAMES",
    "DECAY_SITES",
    "KAPLAN_LAW_SITES",
    "noise_sites",
    "noise_distribution",
    "padded_runs",
    "pad_runs",
]

#: The sampled sites of the default model, in a fixed order.
PARAM_NAMES = ("log_E", "log_A", "log_B", "alpha", "beta", "sigma", "nu")
#: The law's sites of a Kaplan fit (``log_E`` is added for the irreducible variant).
KAPLAN_LAW_SITES = ("log_Nc", "log_Dc", "alpha_N", "alpha_D")
#: Likelihoods on log loss that :func:`chinplan.fit` accepts.
LIKELIHOODS = ("student_t", "normal", "huber")
#: Laws that :func:`chinplan.fit` accepts.
LAWS = ("chinchilla", "kaplan", "kaplan_irreducible", "data_constrained")
#: The decay constants' sites of a data-constrained fit (after the Chinchilla law's five).
DECAY_SITES = ("log_R_D", "log_R_N")
#: Huber's tuning constant k (95% asymptotic efficiency under a Normal; Huber 1964/1981):
#: the Huber-like likelihood is Gaussian within k sigma of the law and exponential beyond.
HUBER_K = 1.345


class Priors(NamedTuple):
    """Hyper-parameters of the weak priors (see the module docstring for the table)."""

    log_E_loc: float = 0.5
    log_E_scale: float = 0.5
    log_A_loc: float = 6.0
    log_A_scale: float = 3.0
    log_B_loc: float = 7.0
    log_B_scale: float = 3.0
    exponent_low: float = 0.05
    exponent_high: float = 2.0
    sigma_scale: float = 0.02
    nu_concentration: float = 2.0
    nu_rate: float = 0.1
    nu_min: float = 0.0


DEFAULT_PRIORS = Priors()


class InformedPriors(NamedTuple):
    """Priors centred on the published fits of the Chinchilla law.

    The centre is the midpoint of Hoffmann et al. 2022 (unrounded: log E 0.527, log A 6.007,
    log B 6.018, alpha 0.339, beta 0.285) and Besiroglu et al. 2024 (log E 0.597, log A 6.178,
    log B 7.643, alpha 0.348, beta 0.366), rounded. Each scale exceeds the half-gap between
    the two fits (the widest gap is log B, 6.02 vs 7.64), so both lie within one standard
    deviation of the centre; widths are rounded up because published constants move with
    tokenizer, data and fitting procedure:

    =========  ==================================  ===================================
    name       prior                               95% range
    =========  ==================================  ===================================
    log_E      Normal(0.56, 0.1)                   E in [1.44, 2.13]
    log_A      Normal(6.09, 0.5)                   A in [165, 1200]
    log_B      Normal(6.83, 1.0)                   B in [130, 6500]
    alpha      TruncatedNormal(0.34, 0.05)         [0.24, 0.44]
    beta       TruncatedNormal(0.33, 0.08)         [0.17, 0.49]
    sigma      HalfNormal(0.02)                    as the weak priors
    nu         Gamma(2, 0.1)                       as the weak priors
    =========  ==================================  ===================================

    The exponents are truncated to ``[exponent_low, exponent_high]``. Caution: both published
    fits come from the same Chinchilla experiments as the embedded runs, so on that data these
    priors use the data twice; they are meant for a user's own runs on a similar setup.
    """

    log_E_loc: float = 0.56
    log_E_scale: float = 0.1
    log_A_loc: float = 6.09
    log_A_scale: float = 0.5
    log_B_loc: float = 6.83
    log_B_scale: float = 1.0
    alpha_loc: float = 0.34
    alpha_scale: float = 0.05
    beta_loc: float = 0.33
    beta_scale: float = 0.08
    exponent_low: float = 0.05
    exponent_high: float = 2.0
    sigma_scale: float = 0.02
    nu_concentration: float = 2.0
    nu_rate: float = 0.1
    nu_min: float = 0.0


INFORMED_PRIORS = InformedPriors()


class KaplanPriors(NamedTuple):
    """Weak priors of the Kaplan et al. 2020 law ``L = [(N_c/N)^(a_N/a_D) + D_c/D]^a_D``.

    =========  ==================================  ============================================
    name       prior                               why
    =========  ==================================  ============================================
    log_Nc     Normal(31.8, 6)                     centred on Kaplan's N_c = 6.4e13; +-5 decades
    log_Dc     Normal(30.5, 6)                     centred on Kaplan's D_c = 1.8e13; +-5 decades
    alpha_N    Uniform(0.01, 1)                    Kaplan 0.076
    alpha_D    Uniform(0.01, 1)                    Kaplan 0.103
    log_E      Normal(0.5, 0.5)                    irreducible variant only; as the weak priors
    sigma      HalfNormal(0.05)                    wider than the Chinchilla law's (not judged on ladders)
    nu         Gamma(2, 0.1)                       as the weak priors
    =========  ==================================  ============================================

    N_c and D_c are wide because Kaplan's constants belong to their tokenizer, data set and
    non-embedding parameter count, not to the Chinchilla runs.
    """

    log_Nc_loc: float = 31.8
    log_Nc_scale: float = 6.0
    log_Dc_loc: float = 30.5
    log_Dc_scale: float = 6.0
    exponent_low: float = 0.01
    exponent_high: float = 1.0
    log_E_loc: float = 0.5
    log_E_scale: float = 0.5
    sigma_scale: float = 0.05
    nu_concentration: float = 2.0
    nu_rate: float = 0.1


DEFAULT_KAPLAN_PRIORS = KaplanPriors()


class DataConstrainedPriors(NamedTuple):
    """Priors of the data-constrained law (Muennighoff et al. 2023, Eq. 5-6).

    E, A, B, alpha, beta and nu as :class:`Priors` (weak); sigma ~ HalfNormal(0.05), the weak
    priors' until issue 22, kept here: this law is not judged on the isoFLOP ladders, and
    docs/DATA_CONSTRAINED.md was measured with it. The decay constants, on
    the log scale, are centred on neither published value (R_D* 15.4, R_N* 5.3, fitted to
    the embedded runs, so centring there would use the data twice):

    =========  ==================================  ============================================
    name       prior                               95% range
    =========  ==================================  ============================================
    log_R_D    Normal(log 10, 1.5)                 R_D* in [0.5, 190] epochs
    log_R_N    Normal(log 10, 1.5)                 R_N* in [0.5, 190]
    sigma_seed HalfNormal(0.05)                    run-to-run noise of log loss (seed repeats)
    =========  ==================================  ============================================

    ``base``: None samples E, A, B, alpha, beta; a :class:`~chinplan.law.LawParams` holds
    them at those values and samples only the decay constants and the noise: the procedure
    of Muennighoff et al. 2023, who fitted R_D* and R_N* with the other five fixed.
    """

    base: object = None
    log_E_loc: float = 0.5
    log_E_scale: float = 0.5
    log_A_loc: float = 6.0
    log_A_scale: float = 3.0
    log_B_loc: float = 7.0
    log_B_scale: float = 3.0
    exponent_low: float = 0.05
    exponent_high: float = 2.0
    log_R_D_loc: float = math.log(10.0)
    log_R_D_scale: float = 1.5
    log_R_N_loc: float = math.log(10.0)
    log_R_N_scale: float = 1.5
    sigma_scale: float = 0.05
    sigma_seed_scale: float = 0.05
    nu_concentration: float = 2.0
    nu_rate: float = 0.1
    nu_min: float = 0.0


DEFAULT_DATA_CONSTRAINED_PRIORS = DataConstrainedPriors()


class KaplanParams(NamedTuple):
    """Constants of the Kaplan et al. 2020 law, ``L = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``.

    ``E`` is 0 for the pure Kaplan form. A leading axis holds posterior draws.
    """

    N_c: jax.Array
    D_c: jax.Array
    alpha_N: jax.Array
    alpha_D: jax.Array
    E: jax.Array


def kaplan_log_loss(log_Nc, log_Dc, alpha_N, alpha_D, log_n, log_d, log_E=None):
    """``log L`` of the Kaplan law: ``alpha_D * logsumexp((alpha_N/alpha_D)(log N_c - log N), log D_c - log D)``.

    With ``log_E``, the irreducible variant ``log(E + [...]^alpha_D)`` (a logsumexp again).
    """
    ratio = alpha_N / alpha_D
    inner = jnp.logaddexp(ratio * (log_Nc - log_n), log_Dc - log_d)
    out = alpha_D * inner
    if log_E is not None:
        out = jnp.logaddexp(log_E, out)
    return out


def kaplan_compute_optimal_log_n(log_Nc, log_Dc, alpha_N, alpha_D, log_compute):
    """``log N_opt`` of the Kaplan L(N, D) form at ``C = 6 N D`` (E does not move it).

    Setting the derivative of ``logsumexp(r (log N_c - x), log D_c - log(C/6) + x)`` in
    ``x = log N`` to zero (``r = alpha_N / alpha_D``) gives
    ``log N_opt = (log r + r log N_c - log D_c + log(C/6)) / (1 + r)``, so N_opt grows as
    ``C^(1/(1+r))`` (Kaplan's 0.076/0.103 gives 0.58; their C^0.73 comes from the L(N, S) law).
    """
    r = alpha_N / alpha_D
    return (jnp.log(r) + r * log_Nc - log_Dc + (log_compute - math.log(6.0))) / (1.0 + r)


def noise_sites(likelihood: str) -> tuple[str, ...]:
    """The noise sites a likelihood samples: sigma, and nu for the Student-t."""
    return ("sigma", "nu") if likelihood == "student_t" else ("sigma",)


def _improper_real():
    return dist.ImproperUniform(dist.constraints.real, (), ())


def huber_log_normaliser(k):
    """``log Z(k)`` with ``Z(k) = int exp(-rho_k(u)) du = sqrt(2 pi) erf(k/sqrt 2) + 2 exp(-k^2/2)/k``.

    ``rho_k(u) = u^2/2`` for ``|u| <= k`` and ``k|u| - k^2/2`` beyond: the Gaussian core
    contributes ``int_{-k}^{k} exp(-u^2/2) du = sqrt(2 pi)(2 Phi(k) - 1)``, each exponential
    tail ``int_k^inf exp(-k u + k^2/2) du = exp(-k^2/2)/k``.
    """
    k = jnp.asarray(k, dtype=jnp.result_type(float))
    return jnp.log(math.sqrt(2.0 * math.pi) * erf(k / math.sqrt(2.0)) + 2.0 * jnp.exp(-0.5 * k * k) / k)


class HuberLike(dist.Distribution):
    """Huber's least-favourable density (Huber 1964): ``p(x) = exp(-rho_k((x - loc)/scale)) / (scale Z(k))``.

    Equivalently ``exp(-H_delta(x - loc) / scale^2) / Z`` with the Huber loss ``H_delta`` of
    Hoffmann et al. 2022 (Eq. 11) at ``delta = k * scale``: a Normal(loc, scale) core within
    ``k`` scales of ``loc`` and Laplace-like tails of rate ``k / scale`` beyond. The
    normaliser :func:`huber_log_normaliser` is exact, so this is a proper likelihood whose
    maximum (for fixed scale) is Huber's M-estimate.
    """

    arg_constraints = {"loc": dist.constraints.real, "scale": dist.constraints.positive}
    support = dist.constraints.real
    reparametrized_params = ["loc", "scale"]

    def __init__(self, loc=0.0, scale=1.0, k=HUBER_K, *, validate_args=None):
        self.loc, self.scale = dist.util.promote_shapes(loc, scale)
        self.k = float(k)
        if not self.k > 0:
            raise ValueError(f"k must be > 0, got {k!r}")
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(loc), jnp.shape(scale))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def log_prob(self, value):
        u = jnp.abs((value - self.loc) / self.scale)
        k = self.k
        rho = jnp.where(u <= k, 0.5 * u * u, k * u - 0.5 * k * k)
        return -rho - jnp.log(self.scale) - huber_log_normaliser(k)

    def sample(self, key, sample_shape=()):
        """Exact draws: the core (a truncated Normal) or a tail (k + Exponential(k)), by their masses."""
        shape = sample_shape + self.batch_shape
        k = self.k
        k_core, k_tail, k_sign, k_pick = jax.random.split(key, 4)
        core_mass = math.sqrt(2.0 * math.pi) * math.erf(k / math.sqrt(2.0))
        p_core = core_mass / (core_mass + 2.0 * math.exp(-0.5 * k * k) / k)
        core = jax.random.truncated_normal(k_core, -k, k, shape)
        tail = (k + jax.random.exponential(k_tail, shape) / k) * jnp.where(jax.random.bernoulli(k_sign, 0.5, shape), 1.0, -1.0)
        u = jnp.where(jax.random.uniform(k_pick, shape) < p_core, core, tail)
        return self.loc + self.scale * u

    @property
    def mean(self):
        return jnp.broadcast_to(self.loc, self.batch_shape)


def _check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def _noise(likelihood: str, p):
    """Samples the noise sites (sigma; nu for the Student-t), in the default model's order."""
    sigma = numpyro.sample("sigma", dist.HalfNormal(p.sigma_scale))
    if likelihood != "student_t":
        return sigma, None
    nu_prior = dist.Gamma(p.nu_concentration, p.nu_rate)
    nu_min = getattr(p, "nu_min", 0.0)
    if nu_min > 0:  # a floor on the degrees of freedom: nu = nu_min + Gamma (docs/CALIBRATION.md)
        nu_prior = dist.TransformedDistribution(nu_prior, dist.transforms.AffineTransform(nu_min, 1.0))
    return sigma, numpyro.sample("nu", nu_prior)


def noise_distribution(likelihood: str, loc, sigma, nu=None) -> dist.Distribution:
    """The likelihood's density of log loss around ``loc``: StudentT(nu), Normal or HuberLike."""
    if likelihood == "student_t":
        return dist.StudentT(nu, loc, sigma)
    if likelihood == "normal":
        return dist.Normal(loc, sigma)
    return HuberLike(loc, sigma, HUBER_K)


#: The fewest runs a padded data set holds (:func:`padded_runs`).
MIN_PADDED_RUNS = 16


def padded_runs(num_runs: int) -> int:
    """How many runs the sampler sees for ``num_runs`` real ones: the next power of two, at
    least :data:`MIN_PADDED_RUNS`. NUTS compiles one program per data shape (seconds per
    shape), so data sets of nearby sizes, and the leave-out refits, share one."""
    if num_runs < 1:
        raise ValueError(f"num_runs must be at least 1, got {num_runs}")
    return max(MIN_PADDED_RUNS, 1 << (num_runs - 1).bit_length())


def pad_runs(log_n, log_d, log_loss_obs, weight=None, extra: tuple = (), extra_fill: tuple = ()) -> tuple:
    """The models' data ``(log_n, log_d, log_loss_obs, weight, *extra)`` padded to
    :func:`padded_runs` runs: the padding repeats run 0 (finite values: a masked NaN would
    still poison the gradient) with weight 0, so it enters neither the likelihood nor the
    reference sizes, and the log density equals the unpadded one. ``weight`` None means all
    ones; ``extra_fill`` gives each extra column's padding value (None: repeat run 0)."""
    n = jnp.shape(log_n)[0]
    spare = padded_runs(n) - n
    weight = jnp.ones_like(log_n) if weight is None else jnp.asarray(weight, jnp.result_type(log_n))

    def pad(x, fill=None):
        x = jnp.asarray(x)
        tail = jnp.repeat(x[:1], spare) if fill is None else jnp.full((spare,), fill, x.dtype)
        return jnp.concatenate([x, tail])

    fills = tuple(extra_fill) + (None,) * (len(extra) - len(extra_fill))
    return (pad(log_n), pad(log_d), pad(log_loss_obs), pad(weight, 0.0)) + tuple(pad(x, f) for x, f in zip(extra, fills))


def _observe(likelihood: str, mean, sigma, nu, log_loss_obs, num_runs: int, weight=None) -> None:
    density = noise_distribution(likelihood, mean, sigma, nu)
    if weight is not None:  # leave-out folds: runs with weight 0 do not enter the likelihood
        density = density.mask(weight > 0)
    with numpyro.plate("runs", num_runs):
        numpyro.sample("log_loss", density, obs=log_loss_obs)


def _references(log_n, log_d, weight):
    """The runs' mean log N and log D (over the runs with weight > 0), outside the gradient."""
    if weight is None:
        return jax.lax.stop_gradient(jnp.mean(log_n)), jax.lax.stop_gradient(jnp.mean(log_d))
    w = (weight > 0).astype(log_n.dtype)
    mean = lambda x: jax.lax.stop_gradient(jnp.sum(w * x) / jnp.sum(w))  # noqa: E731
    return mean(log_n), mean(log_d)


def _chinchilla_constants(p, log_n, log_d, weight):
    """Samples ``(log E, log A, log B, alpha, beta)`` under priors ``p`` in the reference
    coordinates of :func:`chinchilla_model` (the one place they are written)."""
    log_n_ref, log_d_ref = _references(log_n, log_d, weight)
    log_E = numpyro.sample("log_E", dist.Normal(p.log_E_loc, p.log_E_scale))
    if isinstance(p, InformedPriors):
        alpha = numpyro.sample("alpha", dist.TruncatedNormal(p.alpha_loc, p.alpha_scale, low=p.exponent_low, high=p.exponent_high))
        beta = numpyro.sample("beta", dist.TruncatedNormal(p.beta_loc, p.beta_scale, low=p.exponent_low, high=p.exponent_high))
    else:
        alpha = numpyro.sample("alpha", dist.Uniform(p.exponent_low, p.exponent_high))
        beta = numpyro.sample("beta", dist.Uniform(p.exponent_low, p.exponent_high))
    log_A_ref = numpyro.sample("log_A_ref", _improper_real())
    log_B_ref = numpyro.sample("log_B_ref", _improper_real())
    log_A = numpyro.deterministic("log_A", log_A_ref + alpha * log_n_ref)
    log_B = numpyro.deterministic("log_B", log_B_ref + beta * log_d_ref)
    numpyro.factor("log_A_prior", dist.Normal(p.log_A_loc, p.log_A_scale).log_prob(log_A))
    numpyro.factor("log_B_prior", dist.Normal(p.log_B_loc, p.log_B_scale).log_prob(log_B))
    return log_E, log_A, log_B, alpha, beta


def chinchilla_start(log_E, log_A, log_B, alpha, beta, log_n, log_d, weight=None) -> dict:
    """The law sites of :func:`chinchilla_model` (its sampler's coordinates) at the constants
    ``(log E, log A, log B, alpha, beta)``: ``log_A_ref = log A - alpha log N_ref`` and
    ``log_B_ref = log B - beta log D_ref`` at the runs' references (a chain's start)."""
    log_n_ref, log_d_ref = _references(log_n, log_d, weight)
    return {"log_E": log_E, "alpha": alpha, "beta": beta, "log_A_ref": log_A - alpha * log_n_ref, "log_B_ref": log_B - beta * log_d_ref}


def chinchilla_model(
    log_n: jax.Array,
    log_d: jax.Array,
    log_loss_obs: jax.Array | None = None,
    weight: jax.Array | None = None,
    priors: Priors | InformedPriors = DEFAULT_PRIORS,
    likelihood: str = "student_t",
):
    """numpyro model: priors on (log E, log A, log B, alpha, beta) and a likelihood on log loss.

    The sampler moves in ``log_A_ref = log A - alpha log N_ref`` and ``log_B_ref = log B -
    beta log D_ref`` (the law's two terms at the runs' geometric-mean size and data), which
    removes the strong linear ridge between log A and alpha. The shift has unit Jacobian, so
    adding the Normal log-density of ``log A`` (and ``log B``) as a factor keeps exactly the
    priors of the table above; ``log_A`` and ``log_B`` are recorded as deterministic sites.

    Args:
      log_n, log_d: log parameters and log tokens of each run.
      log_loss_obs: observed log final loss of each run, or None to sample predictions.
      weight: None (every run counts) or one number per run; runs with weight 0 are left
        out of the likelihood and the reference sizes (leave-out folds share the compiled
        sampler of the full fit this way).
      priors: :class:`Priors` (weak, uniform exponents) or :class:`InformedPriors`.
      likelihood: ``"student_t"`` (default), ``"normal"`` or ``"huber"`` (:class:`HuberLike`).
    """
    _check_likelihood(likelihood)
    p = priors
    log_E, log_A, log_B, alpha, beta = _chinchilla_constants(p, log_n, log_d, weight)
    sigma, nu = _noise(likelihood, p)
    law = LawParams(jnp.exp(log_E), jnp.exp(log_A), jnp.exp(log_B), alpha, beta)
    mean = log_loss(law, log_n, log_d)
    _observe(likelihood, mean, sigma, nu, log_loss_obs, jnp.shape(log_n)[0], weight)


def kaplan_model(
    log_n: jax.Array,
    log_d: jax.Array,
    log_loss_obs: jax.Array | None = None,
    weight: jax.Array | None = None,
    priors: KaplanPriors = DEFAULT_KAPLAN_PRIORS,
    likelihood: str = "student_t",
    irreducible: bool = False,
):
    """numpyro model of the Kaplan et al. 2020 law (Eq. 1.5), optionally with an irreducible E.

        log L_i ~ lik(alpha_D logsumexp(r (log N_c - log N_i), log D_c - log D_i), sigma),  r = alpha_N / alpha_D

    As in :func:`chinchilla_model`, the sampler moves in the two terms at the runs' mean
    ``log N_ref``, ``log D_ref``: ``u = r (log N_c - log N_ref)`` and ``v = log D_c - log D_ref``
    (both improper flat), and the priors on ``log N_c`` and ``log D_c`` enter as factors. The
    map ``u -> log N_c = log N_ref + u / r`` has Jacobian ``1/r``, so the factor
    ``-log r`` keeps the prior exactly as stated in :class:`KaplanPriors`.

    Args:
      log_n, log_d, log_loss_obs, weight: as :func:`chinchilla_model`.
      priors: :class:`KaplanPriors`.
      likelihood: ``"student_t"``, ``"normal"`` or ``"huber"``.
      irreducible: add an irreducible loss E (``log_E`` site): ``L = E + [...]^alpha_D``.
    """
    _check_likelihood(likelihood)
    p = priors
    log_n_ref, log_d_ref = _references(log_n, log_d, weight)
    log_E = numpyro.sample("log_E", dist.Normal(p.log_E_loc, p.log_E_scale)) if irreducible else None
    alpha_N = numpyro.sample("alpha_N", dist.Uniform(p.exponent_low, p.exponent_high))
    alpha_D = numpyro.sample("alpha_D", dist.Uniform(p.exponent_low, p.exponent_high))
    ratio = alpha_N / alpha_D
    u_ref = numpyro.sample("u_ref", _improper_real())
    v_ref = numpyro.sample("v_ref", _improper_real())
    log_Nc = numpyro.deterministic("log_Nc", log_n_ref + u_ref / ratio)
    log_Dc = numpyro.deterministic("log_Dc", log_d_ref + v_ref)
    numpyro.factor("log_Nc_prior", dist.Normal(p.log_Nc_loc, p.log_Nc_scale).log_prob(log_Nc) - jnp.log(ratio))
    numpyro.factor("log_Dc_prior", dist.Normal(p.log_Dc_loc, p.log_Dc_scale).log_prob(log_Dc))
    sigma, nu = _noise(likelihood, p)
    inner = jnp.logaddexp(u_ref - ratio * (log_n - log_n_ref), v_ref - (log_d - log_d_ref))
    mean = alpha_D * inner
    if irreducible:
        mean = jnp.logaddexp(log_E, mean)
    _observe(likelihood, mean, sigma, nu, log_loss_obs, jnp.shape(log_n)[0], weight)


def data_constrained_model(
    log_n: jax.Array,
    log_d: jax.Array,
    log_loss_obs: jax.Array | None = None,
    weight: jax.Array | None = None,
    log_u: jax.Array | None = None,
    repeats: jax.Array | None = None,
    within_ss: jax.Array | None = None,
    priors: DataConstrainedPriors = DEFAULT_DATA_CONSTRAINED_PRIORS,
    likelihood: str = "student_t",
    seed_noise: bool = True,
):
    """numpyro model of the data-constrained law, fitted to configurations of repeated runs.

        log L_c ~ lik(log L(N'_c, D'_c), sqrt(sigma^2 + sigma_seed^2 / m_c))

    with N', D' the effective sizes of Muennighoff et al. 2023 (Eq. 5-6,
    :func:`chinplan.law.log_effective_sizes`) under the sampled ``R_D* = exp(log_R_D)`` and
    ``R_N* = exp(log_R_N)``. Each observation is a configuration (N, D, U): the mean log loss
    of its ``m_c`` runs (seed repeats), so repeats do not count as independent evidence about
    the law. ``sigma`` is the law's misfit, ``sigma_seed`` the run-to-run noise; the repeats'
    within-configuration sum of squares ``S_c`` enters with its exact Normal likelihood,
    ``-(m_c - 1) log sigma_seed - S_c / (2 sigma_seed^2)`` (a factor). With no repeats
    (``seed_noise=False``) sigma_seed is not sampled. The law's sites move in the same
    reference coordinates as :func:`chinchilla_model`.

    Args:
      log_n, log_d, log_u: log parameters, log tokens and log unique tokens per configuration.
      log_loss_obs: mean observed log loss per configuration (None to sample predictions).
      weight: as :func:`chinchilla_model`.
      repeats: runs per configuration m_c; within_ss: S_c (0 for a single run).
      priors: :class:`DataConstrainedPriors`.
      likelihood: ``"student_t"``, ``"normal"`` or ``"huber"``.
      seed_noise: sample sigma_seed (needs at least one configuration with m_c > 1).
    """
    from chinplan.law import DataConstrainedParams, log_effective_sizes

    _check_likelihood(likelihood)
    p = priors
    if p.base is None:
        log_E, log_A, log_B, alpha, beta = _chinchilla_constants(p, log_n, log_d, weight)
    else:  # the base law held fixed (recorded as deterministic sites)
        fixed = [jnp.asarray(x, dtype=log_n.dtype) for x in p.base]
        log_E = numpyro.deterministic("log_E", jnp.log(fixed[0]))
        log_A = numpyro.deterministic("log_A", jnp.log(fixed[1]))
        log_B = numpyro.deterministic("log_B", jnp.log(fixed[2]))
        alpha = numpyro.deterministic("alpha", fixed[3])
        beta = numpyro.deterministic("beta", fixed[4])
    log_R_D = numpyro.sample("log_R_D", dist.Normal(p.log_R_D_loc, p.log_R_D_scale))
    log_R_N = numpyro.sample("log_R_N", dist.Normal(p.log_R_N_loc, p.log_R_N_scale))
    sigma, nu = _noise(likelihood, p)
    law = DataConstrainedParams(jnp.exp(log_E), jnp.exp(log_A), jnp.exp(log_B), alpha, beta, jnp.exp(log_R_D), jnp.exp(log_R_N))
    log_n_eff, log_d_eff = log_effective_sizes(law, log_n, log_d, log_u)
    mean = log_loss(law.base, log_n_eff, log_d_eff)
    scale = sigma
    if seed_noise:
        sigma_seed = numpyro.sample("sigma_seed", dist.HalfNormal(p.sigma_seed_scale))
        scale = jnp.sqrt(sigma**2 + sigma_seed**2 / repeats)
        counted = jnp.ones_like(repeats) if weight is None else (weight > 0).astype(repeats.dtype)
        numpyro.factor("seed_repeats", jnp.sum(counted * (-(repeats - 1.0) * jnp.log(sigma_seed) - within_ss / (2.0 * sigma_seed**2))))
    _observe(likelihood, mean, scale, nu, log_loss_obs, jnp.shape(log_n)[0], weight)
