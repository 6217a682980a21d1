"""The numpyro model of the Chinchilla law: priors and a robust likelihood, nothing else.

    log L_i ~ StudentT(nu, logsumexp(log E, log A - alpha log N_i, log B - beta log D_i), sigma)

The Student-t likelihood on log loss is the Bayesian analogue of the Huber objective of
Hoffmann et al. 2022 (Eq. 11): a few runs far off the law (the 5 digitised runs at 1e19
FLOPs with under 0.41 tokens per parameter) fall in its heavy tails instead of dragging the
fit, so they need not be dropped by hand.

Priors (weakly informative; each covers every published fit by a wide margin):

=========  ================================  ==============================================
name       prior                             why
=========  ================================  ==============================================
log_E      Normal(0.5, 0.5)                  E in about [0.6, 4.4] nats (95%)
log_A      Normal(6, 3)                      A in about [1, 1e5]; published 6.0 to 6.3
log_B      Normal(7, 3)                      B in about [3, 4e5]; published 6.0 to 7.6
alpha      Uniform(0.05, 2)                  the grid range of Hoffmann et al.'s starts
beta       Uniform(0.05, 2)                  same
sigma      HalfNormal(0.05)                  log-loss noise; digitising alone adds ~0.006
nu         Gamma(2, 0.1)                     Juarez & Steel 2010: mean 20, allows heavy tails
=========  ================================  ==============================================
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from chinplan.law import LawParams, log_loss

__all__ = ["Priors", "DEFAULT_PRIORS", "chinchilla_model", "PARAM_NAMES", "law_from_sample"]

#: The sampled sites, in a fixed order.
PARAM_NAMES = ("log_E", "log_A", "log_B", "alpha", "beta", "sigma", "nu")


class Priors(NamedTuple):
    """Hyper-parameters of the priors (see the module docstring for the table)."""

    log_E_loc: float = 0.5
    log_E_scale: float = 0.5
    log_A_loc: float = 6.0
    log_A_scale: float = 3.0
    log_B_loc: float = 7.0
    log_B_scale: float = 3.0
    exponent_low: float = 0.05
    exponent_high: float = 2.0
    sigma_scale: float = 0.05
    nu_concentration: float = 2.0
    nu_rate: float = 0.1


DEFAULT_PRIORS = Priors()


def law_from_sample(sample: dict) -> LawParams:
    """The LawParams of a sample dict with sites log_E, log_A, log_B, alpha, beta."""
    return LawParams.from_logs(sample["log_E"], sample["log_A"], sample["log_B"], sample["alpha"], sample["beta"])


def _improper_real():
    return dist.ImproperUniform(dist.constraints.real, (), ())


def chinchilla_model(log_n: jax.Array, log_d: jax.Array, log_loss_obs: jax.Array | None = None, priors: Priors = DEFAULT_PRIORS):
    """numpyro model: priors on (log E, log A, log B, alpha, beta) and a Student-t on log loss.

    The sampler moves in ``log_A_ref = log A - alpha log N_ref`` and ``log_B_ref = log B -
    beta log D_ref`` (the law's two terms at the runs' geometric-mean size and data), which
    removes the strong linear ridge between log A and alpha. The shift has unit Jacobian, so
    adding the Normal log-density of ``log A`` (and ``log B``) as a factor keeps exactly the
    priors of the table above; ``log_A`` and ``log_B`` are recorded as deterministic sites.

    Args:
      log_n, log_d: log parameters and log tokens of each run.
      log_loss_obs: observed log final loss of each run, or None to sample predictions.
      priors: prior hyper-parameters.
    """
    p = priors
    log_n_ref = jax.lax.stop_gradient(jnp.mean(log_n))
    log_d_ref = jax.lax.stop_gradient(jnp.mean(log_d))
    log_E = numpyro.sample("log_E", dist.Normal(p.log_E_loc, p.log_E_scale))
    alpha = numpyro.sample("alpha", dist.Uniform(p.exponent_low, p.exponent_high))
    beta = numpyro.sample("beta", dist.Uniform(p.exponent_low, p.exponent_high))
    log_A_ref = numpyro.sample("log_A_ref", _improper_real())
    log_B_ref = numpyro.sample("log_B_ref", _improper_real())
    log_A = numpyro.deterministic("log_A", log_A_ref + alpha * log_n_ref)
    log_B = numpyro.deterministic("log_B", log_B_ref + beta * log_d_ref)
    numpyro.factor("log_A_prior", dist.Normal(p.log_A_loc, p.log_A_scale).log_prob(log_A))
    numpyro.factor("log_B_prior", dist.Normal(p.log_B_loc, p.log_B_scale).log_prob(log_B))
    sigma = numpyro.sample("sigma", dist.HalfNormal(p.sigma_scale))
    nu = numpyro.sample("nu", dist.Gamma(p.nu_concentration, p.nu_rate))
    law = LawParams(jnp.exp(log_E), jnp.exp(log_A), jnp.exp(log_B), alpha, beta)
    mean = log_loss(law, log_n, log_d)
    with numpyro.plate("runs", jnp.shape(log_n)[0]):
        numpyro.sample("log_loss", dist.StudentT(nu, mean, sigma), obs=log_loss_obs)
