"""The Posterior a fit returns: draws, diagnostics, provenance, files, and predictions.

``Posterior`` wraps an arviz ``InferenceData``. Besides the law's draws (``.params``) it
answers the questions users plan with, under either kind of uncertainty:

* ``uncertainty="law"``: the law's posterior and the fit's noise, as fitted;
* ``uncertainty="extrapolation"`` (the default): plus the extrapolation component of
  :mod:`chinplan.extrapolation`, zero inside the fitted runs and growing beyond them.

``predict_loss(n, d, q=..., key=...)`` gives quantiles of an observed final loss,
``compute_optimal(compute, q=..., key=...)`` bands of the compute-optimal plan, and
``extrapolation(n, d)`` the decades beyond the fitted data.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from chinplan import _checks
from chinplan.extrapolated import (
    Domain,
    Smallest,
    ExtrapolatedLaw,
    compute_optimal_draws,
    decades_beyond,
    from_draws,
    level_distance,
    log_loss_draws,
)
from chinplan.inference import posterior_file
from chinplan.inference.allocation import AllocationLine
from chinplan.inference.convergence import (  # noqa: F401  (RHAT_MAX, ESS_MIN: documented here too)
    ESS_MIN,
    RHAT_MAX,
    ConvergenceError,
    ConvergenceWarning,
    gate_problems,
    unconverged_error,
)
from chinplan.inference.model import (
    DECAY_SITES,
    KAPLAN_LAW_SITES,
    LAWS,
    LIKELIHOODS,
    KaplanParams,
    kaplan_compute_optimal_log_n,
    kaplan_log_loss,
    noise_distribution,
    noise_sites,
)
from chinplan.inference.posterior_file import check_site as _check_site
from chinplan.inference.runs import (  # noqa: F401  (re-exported)
    EpochRangeWarning,
    draws_of,
    fitted_epochs,
    warn_beyond,
)
from chinplan.law import (
    Allocation,
    DataConstrainedParams,
    LawParams,
    log_effective_sizes,
    log_g,
    log_loss,
)

__all__ = [
    "Posterior",
    "ConvergenceError",
    "ConvergenceWarning",
    "Extrapolation",
    "default_posterior",
    "UNCERTAINTIES",
    "RHAT_MAX",
    "ESS_MIN",
    "REFERENCE_COMPUTE",
    "DEFAULT_POSTERIOR_FILE",
    "LAW_SITES",
]

#: Chinchilla's own budget (Hoffmann et al. 2022): the summary reports tokens per parameter here.
REFERENCE_COMPUTE = 5.76e23
#: The posterior shipped with the package, built by scripts/build_default_posterior.py.
DEFAULT_POSTERIOR_FILE = "chinchilla_posterior.nc"
LAW_SITES = ("log_E", "log_A", "log_B", "alpha", "beta")


#: The kinds of predictive uncertainty (see the module docstring).
UNCERTAINTIES = ("extrapolation", "law")


def _law_sites(law: str) -> tuple[str, ...]:
    if law == "chinchilla":
        return LAW_SITES
    if law == "kaplan":
        return KAPLAN_LAW_SITES
    if law == "data_constrained":
        return LAW_SITES + DECAY_SITES
    return KAPLAN_LAW_SITES + ("log_E",)




class Extrapolation(NamedTuple):
    """Decades beyond the fitted runs (float64 arrays): the largest of the three, and each."""

    decades: np.ndarray
    compute: np.ndarray
    params: np.ndarray
    tokens: np.ndarray


def _check_uncertainty(uncertainty: str) -> None:
    if uncertainty not in UNCERTAINTIES:
        raise ValueError(f"uncertainty must be one of {UNCERTAINTIES}, got {uncertainty!r}")


def _replicate(posterior, mean, kappa, domain, log_n, log_d, key):
    """``(mean, mean + kappa d z + eps)`` as float64 NumPy, eps from the fitted likelihood."""
    k_z, k_eps = jax.random.split(key)
    shape = mean.shape[1:]
    dist = level_distance((domain[0], domain[1], domain[2]), log_n, log_d)
    kappa = kappa.reshape((-1,) + (1,) * len(shape))
    scatter = kappa * dist * jax.random.normal(k_z, mean.shape, mean.dtype)
    sigma = jnp.asarray(posterior.draws("sigma"), mean.dtype).reshape(kappa.shape)
    nu = jnp.asarray(posterior.draws("nu"), mean.dtype).reshape(kappa.shape) if posterior.likelihood == "student_t" else None
    eps = noise_distribution(posterior.likelihood, jnp.zeros_like(mean), sigma, nu).sample(k_eps)
    if "sigma_seed" in posterior.sites:  # a data-constrained fit: a new run's own seed noise
        seed = jnp.asarray(posterior.draws("sigma_seed"), mean.dtype).reshape(kappa.shape)
        eps = eps + seed * jax.random.normal(jax.random.fold_in(k_eps, 1), mean.shape, mean.dtype)
    return np.asarray(mean, np.float64), np.asarray(mean + scatter + eps, np.float64)



def exp_quantiles(log_draws, q) -> np.ndarray:
    """Quantiles over draws (axis 0) of ``exp(log_draws)``, taken in float64 log space: exp is
    monotone, so no draw is exponentiated (a heavy-tailed draw of log loss past float's range
    overflows nothing); a quantile itself beyond float64's range is an honest ``inf``."""
    with np.errstate(over="ignore"):
        return np.exp(np.quantile(np.asarray(log_draws, np.float64), q, axis=0))

class Posterior:
    """Posterior draws of the law's constants, with diagnostics and provenance.

    Wraps an arviz ``InferenceData`` whose ``posterior`` group holds, with dims (chain, draw),
    the law's sites (Chinchilla: log_E, log_A, log_B, alpha, beta; Kaplan: log_Nc, log_Dc,
    alpha_N, alpha_D, plus log_E for ``kaplan_irreducible``) and the noise sites (sigma;
    nu for the Student-t likelihood), and whose attributes carry the provenance, including
    ``law``, ``likelihood`` and ``priors_name`` (files written before these options existed
    lack them and are read as the default: chinchilla, student_t, weak).

    ``.params`` is a :class:`~chinplan.law.LawParams` and exists only for the Chinchilla law;
    for a Kaplan fit it raises a TypeError and ``.kaplan_params`` gives a
    :class:`~chinplan.inference.model.KaplanParams` instead.
    """

    def __init__(self, idata: az.InferenceData):
        if "posterior" not in idata.groups():
            raise ValueError("InferenceData has no 'posterior' group")
        self._idata = idata
        law, likelihood = self.law, self.likelihood
        if law not in LAWS:
            raise ValueError(f"posterior records an unknown law {law!r} (valid: {LAWS})")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"posterior records an unknown likelihood {likelihood!r} (valid: {LIKELIHOODS})")
        missing = [name for name in self.sites if name not in idata.posterior]
        if missing:
            raise ValueError(f"posterior lacks the variables {missing}")
        shape = None
        for name in self.sites:
            shape = _check_site(idata.posterior, "posterior", name, shape)
        if "extrapolation" in idata.groups():
            group = idata.extrapolation
            missing = [name for name in ("u", "v", "kappa") if name not in group]
            if missing:
                raise ValueError(f"the extrapolation group lacks the variables {missing}")
            for name in ("u", "v", "kappa", *(("c",) if "c" in group else ())):
                _check_site(group, "extrapolation", name, shape)
            AllocationLine.from_attrs(group.attrs)  # a malformed line is refused on load
            if "extrapolation_domain" not in group.attrs:
                raise ValueError("the extrapolation group lacks its 'extrapolation_domain' attribute")
            try:
                domain = json.loads(group.attrs["extrapolation_domain"])
                ok = len(domain) == 3 and all(np.isfinite(float(x)) for x in domain)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"the extrapolation group's 'extrapolation_domain' must be 3 finite numbers, got {_checks.show(group.attrs['extrapolation_domain'])}")
        const = idata.get("constant_data")
        posterior_file.check_values(domain if "extrapolation" in idata.groups() else None, {} if const is None else {k: const[k].values for k in const.data_vars},
                                    idata.posterior.attrs, law, idata.posterior, idata.get("observed_data", {}).get("log_loss"))  # fmt: skip

    # ----- model choices -----------------------------------------------------------
    @property
    def law(self) -> str:
        """``"chinchilla"``, ``"kaplan"`` or ``"kaplan_irreducible"`` (attrs; default chinchilla)."""
        return str(self._idata.posterior.attrs.get("law", "chinchilla"))

    @property
    def likelihood(self) -> str:
        """``"student_t"``, ``"normal"`` or ``"huber"`` (attrs; default student_t)."""
        return str(self._idata.posterior.attrs.get("likelihood", "student_t"))

    @property
    def law_sites(self) -> tuple[str, ...]:
        """The posterior variables of the law's constants."""
        return _law_sites(self.law)

    @property
    def sites(self) -> tuple[str, ...]:
        """The law's sites, then the noise sites (sigma; nu for the Student-t; sigma_seed for a
        data-constrained fit of seed repeats)."""
        seed = ("sigma_seed",) if "sigma_seed" in self._idata.posterior else ()
        return self.law_sites + noise_sites(self.likelihood) + seed

    @property
    def sampled_sites(self) -> tuple[str, ...]:
        """The sites NUTS sampled (a data-constrained fit may hold the base law fixed)."""
        fixed = set(filter(None, str(self.attrs.get("fixed_sites", "")).split(",")))
        return tuple(name for name in self.sites if name not in fixed)

    @property
    def has_log_likelihood(self) -> bool:
        """Whether the pointwise log-likelihood is stored (``fit(..., log_likelihood=True)``)."""
        return "log_likelihood" in self._idata.groups()

    # ----- draws -----------------------------------------------------------------
    @property
    def num_draws(self) -> int:
        """Total number of draws (chains x draws per chain)."""
        post = self._idata.posterior
        return int(post.sizes["chain"] * post.sizes["draw"])

    def draws(self, name: str) -> np.ndarray:
        """The flattened draws (chain-major) of one site, as NumPy."""
        return np.asarray(self._idata.posterior[name].values).reshape(-1)

    @property
    def params(self) -> LawParams:
        """LawParams with a leading draw axis (float32 unless x64 is on), chains flattened.

        Raises:
          TypeError: for a Kaplan-law posterior, which has no (E, A, B, alpha, beta); use
            :attr:`kaplan_params`.
        """
        if self.law not in ("chinchilla", "data_constrained"):
            raise TypeError(
                f"Posterior.params is a Chinchilla LawParams(E, A, B, alpha, beta), but this posterior "
                f"is of the {self.law!r} law; use Posterior.kaplan_params (a KaplanParams) instead"
            )
        dtype = jnp.result_type(float)
        logs = {name: jnp.asarray(self.draws(name), dtype=dtype) for name in self.law_sites}
        law = LawParams.from_logs(logs["log_E"], logs["log_A"], logs["log_B"], logs["alpha"], logs["beta"])
        if self.law == "data_constrained":  # a DataConstrainedParams: .r_d_star, .r_n_star beside the five
            return DataConstrainedParams(*law, jnp.exp(logs["log_R_D"]), jnp.exp(logs["log_R_N"]))
        return law

    @property
    def kaplan_params(self) -> KaplanParams:
        """KaplanParams(N_c, D_c, alpha_N, alpha_D, E) with a leading draw axis (E = 0 without E).

        Raises:
          TypeError: for a Chinchilla-law posterior (use :attr:`params`).
        """
        if self.law in ("chinchilla", "data_constrained"):
            raise TypeError(f"this posterior is of the {self.law!r} law; use Posterior.params")
        dtype = jnp.result_type(float)
        get = lambda name: jnp.asarray(self.draws(name), dtype=dtype)  # noqa: E731
        E = jnp.exp(get("log_E")) if self.law == "kaplan_irreducible" else jnp.zeros(self.num_draws, dtype)
        return KaplanParams(jnp.exp(get("log_Nc")), jnp.exp(get("log_Dc")), get("alpha_N"), get("alpha_D"), E)

    @property
    def attrs(self) -> dict:
        """Provenance: chinplan version, data hash, priors, model choices, seed, sampler settings."""
        return dict(self._idata.posterior.attrs)

    def to_arviz(self) -> az.InferenceData:
        """The arviz InferenceData (posterior, sample_stats, observed_data, constant_data, and
        log_likelihood when the fit stored it)."""
        return self._idata

    # ----- diagnostics -----------------------------------------------------------
    @property
    def num_divergences(self) -> int:
        """Number of divergent transitions after warm-up."""
        stats = self._idata.get("sample_stats")
        if stats is None or "diverging" not in stats:
            return 0
        return int(np.asarray(stats["diverging"]).sum())

    def diagnostics(self) -> pd.DataFrame:
        """R-hat, bulk ESS and tail ESS of every sampled site (arviz, rank-normalised)."""
        names = list(self.sampled_sites)
        post = self._idata.posterior[names]
        rhat, bulk, tail = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
        return pd.DataFrame(
            {
                "r_hat": [float(rhat[n]) for n in names],
                "ess_bulk": [float(bulk[n]) for n in names],
                "ess_tail": [float(tail[n]) for n in names],
            },
            index=names,
        )

    def convergence_problems(self) -> list[str]:
        """Human-readable list of failed checks (empty when R-hat, ESS and divergences pass)."""
        post = self._idata.posterior
        samples = {name: np.asarray(post[name].values) for name in self.sampled_sites}
        stats = self._idata.get("sample_stats")
        diverging = np.asarray(stats["diverging"]) if stats is not None and "diverging" in stats else np.zeros(1)
        return gate_problems(samples, diverging, self.sampled_sites)

    @property
    def converged(self) -> bool:
        """Whether the fit passed the convergence gate (recomputed from the draws)."""
        return not self.convergence_problems()

    def raise_if_unconverged(self) -> None:
        """Raises :class:`ConvergenceError` listing every failed check and what was tried."""
        problems = self.convergence_problems()
        if problems:
            raise unconverged_error(self, problems, len(json.loads(self.attrs.get("fit_attempts", "[]"))))

    def warn_if_unconverged(self) -> None:
        """Issues a ConvergenceWarning listing every failed check."""
        problems = self.convergence_problems()
        if problems:
            warnings.warn("NUTS may not have converged: " + "; ".join(problems), ConvergenceWarning, stacklevel=3)

    # ----- beyond the data ----------------------------------------------------------
    @property
    def has_extrapolation(self) -> bool:
        """Whether the fit learned the extrapolation component (``fit(extrapolation=True)``)."""
        return "extrapolation" in self._idata.groups()

    @property
    def domain(self) -> Domain:
        """The fitted runs' largest log10 compute, parameters and tokens."""
        if self.has_extrapolation:
            return Domain(*json.loads(self._idata.extrapolation.attrs["extrapolation_domain"]))
        const = self._idata.get("constant_data")
        if const is None or "log_n" not in const:
            raise ValueError("this posterior records no fitted runs (no constant_data group), so its domain is unknown")
        return Domain.of(np.asarray(const["log_n"]), np.asarray(const["log_d"]))

    @property
    def smallest(self) -> Smallest | None:
        """The fitted runs' smallest log10 compute and parameters, or None if it records no runs."""
        const = self._idata.get("constant_data") or {}
        return Smallest.of(const["log_n"].values, const["log_d"].values) if "log_n" in const and "log_d" in const else None

    def extrapolation(self, n=None, d=None, *, compute=None) -> "Extrapolation":
        """Decades beyond the fitted runs: ``max(0, log10 x - log10 x_max)`` for compute, N, D.

        Give ``n`` and ``d`` (a plan) or ``compute`` (then N and D are those of the law's
        median compute-optimal plan). Arrays broadcast; the result holds float64 arrays.
        """
        if compute is not None:
            if n is not None or d is not None:
                raise ValueError("give n and d, or compute, not both")
            log_c = np.log(_checks.positive("compute", compute))
            log_n = self.median_law_log_n_opt(log_c)
            log_d = log_c - np.log(6.0) - log_n
        else:
            if n is None or d is None:
                raise ValueError("give n and d (a plan), or compute")
            log_n, log_d = np.log(_checks.positive("n", n)), np.log(_checks.positive("d", d))
        total, d_c, d_n, d_d = decades_beyond(self.domain, *np.broadcast_arrays(log_n, log_d))
        return Extrapolation(total, d_c, d_n, d_d)

    def median_law_log_n_opt(self, log_compute) -> np.ndarray:
        """log N* of the law with the posterior's median constants at natural-log budgets
        (Hoffmann et al. 2022, Eq. 4: ``log G + a log(C/6)``, ``a = beta/(alpha+beta)``); float64."""
        med = {k: float(np.median(self.draws(k))) for k in LAW_SITES}
        a = med["beta"] / (med["alpha"] + med["beta"])
        return float(log_g(med["log_A"], med["log_B"], med["alpha"], med["beta"])) + a * (np.asarray(log_compute, np.float64) - np.log(6.0))

    def extrapolated_params(self, uncertainty: str = "extrapolation") -> ExtrapolatedLaw:
        """The draws as an :class:`~chinplan.extrapolation.ExtrapolatedLaw` (leading draw axis),
        for kernels ``fn(theta, *scenario)``; with ``uncertainty="law"`` u = v = kappa = c = 0."""
        _check_uncertainty(uncertainty)
        law = self.params
        if self.law == "data_constrained":  # its law of fresh data (no extrapolation component)
            law = law.base
        if uncertainty == "extrapolation" and not self.has_extrapolation:
            raise ValueError(
                "uncertainty='extrapolation' needs a posterior fitted with extrapolation=True "
                "(this one has no extrapolation group); refit or pass uncertainty='law'"
            )
        terms = None
        if uncertainty == "extrapolation":  # c: the allocation predictive's valley offset (fits since issue 22)
            group = self._idata.extrapolation
            terms = {k: group[k].values for k in ("u", "v", "kappa", "c") if k in group}
        return from_draws(law, self.domain, terms, self.smallest)

    @property
    def allocation_line(self) -> "AllocationLine | None":
        """The compute-optimal line from the law and the fitted runs' isoFLOP minima
        (:mod:`chinplan.inference.allocation`), or None (too few minima, or an older file)."""
        if not self.has_extrapolation:
            return None
        return AllocationLine.from_attrs(self._idata.extrapolation.attrs)

    def sample_log_loss(self, log_n, log_d, *, key, uncertainty: str = "extrapolation", log_u=None):
        """Per-draw ``(mean, replicate)`` log losses at natural-log sizes; each (draws, *shape) float64.

        ``mean`` is the law (with the draw's discrepancy for ``uncertainty="extrapolation"``),
        ``replicate`` adds ``kappa d z`` and the fitted likelihood's noise (the model's own
        density, :func:`chinplan.inference.model.noise_distribution`). Either law: a Kaplan posterior
        has only ``uncertainty="law"``. ``log_u`` (log unique tokens) applies the
        data-constrained law of a ``law="data_constrained"`` posterior (None: fresh data).
        No input checks (callers check at their boundary).
        """
        _check_uncertainty(uncertainty)
        dtype = jnp.result_type(float)
        if self.law == "data_constrained":
            if uncertainty != "law":
                raise ValueError("a data-constrained posterior carries no extrapolation component; use uncertainty='law'")
            arrays = np.broadcast_arrays(log_n, log_d, log_d if log_u is None else log_u)
            log_n, log_d, lu = (jnp.asarray(x, dtype) for x in arrays)
            p = jax.tree.map(lambda x: jnp.reshape(x, (-1,) + (1,) * log_n.ndim), self.params)
            mean = log_loss(p.base, *log_effective_sizes(p, log_n, log_d, lu))
            kappa, domain = jnp.zeros(self.num_draws, dtype), jnp.full(3, jnp.inf, dtype)
            return _replicate(self, mean, kappa, domain, log_n, log_d, key)
        if log_u is not None:
            raise ValueError(f"unique tokens need a posterior fitted with law='data_constrained'; this one is {self.law!r}")
        log_n, log_d = (jnp.asarray(x, dtype) for x in np.broadcast_arrays(log_n, log_d))
        if self.law == "chinchilla":
            theta = self.extrapolated_params(uncertainty)
            mean = log_loss_draws(theta, log_n, log_d)
            kappa, domain = theta.kappa, theta.domain[0]
        else:
            if uncertainty != "law":
                raise ValueError(f"uncertainty={uncertainty!r} needs a Chinchilla-law posterior; this one is {self.law!r} (use uncertainty='law')")
            k = self.kaplan_params
            expand = lambda x: jnp.reshape(x, (-1,) + (1,) * log_n.ndim)  # noqa: E731
            log_e = jnp.log(expand(k.E)) if self.law == "kaplan_irreducible" else None
            mean = kaplan_log_loss(jnp.log(expand(k.N_c)), jnp.log(expand(k.D_c)), expand(k.alpha_N), expand(k.alpha_D), log_n, log_d, log_e)
            kappa, domain = jnp.zeros(self.num_draws, dtype), jnp.full(3, jnp.inf, dtype)
        return _replicate(self, mean, kappa, domain, log_n, log_d, key)

    def predict_loss(self, n, d, *, q=(0.05, 0.5, 0.95), key, uncertainty: str | None = None, unique_tokens=None) -> np.ndarray:
        """Quantiles of the observed final loss of a run of ``n`` parameters on ``d`` tokens.

        For each draw: ``log L = log L_theta(N 10^-v dC, D 10^v dC) + u d + kappa d z + eps``
        (:mod:`chinplan.extrapolation`; ``u = v = kappa = 0`` for ``uncertainty="law"``),
        ``eps`` the fitted likelihood's noise; quantiles over draws of ``L``. ``uncertainty``
        None means "law" for a data-constrained posterior, else "extrapolation".
        ``unique_tokens`` (a data-constrained posterior only): the run draws its ``d``
        tokens from that many unique ones (Muennighoff et al. 2023).

        Returns:
          float64 array of shape ``(len(q), *broadcast(n, d).shape)``.
        """
        q = _checks.levels("q", q)
        key = _checks.key(key)
        log_n, log_d = np.log(_checks.positive("n", n)), np.log(_checks.positive("d", d))
        log_u = None if unique_tokens is None else np.log(_checks.positive("unique_tokens", unique_tokens))
        if uncertainty is None:
            uncertainty = "law" if self.law == "data_constrained" else "extrapolation"
        if log_u is not None and self.law == "data_constrained":  # an EpochRangeWarning beyond the fitted epochs

            warn_beyond(self, np.exp(log_d - log_u), "the run")
        _, rep = self.sample_log_loss(log_n, log_d, key=key, uncertainty=uncertainty, log_u=log_u)
        return exp_quantiles(rep, q)

    def compute_optimal(self, compute, *, q=(0.05, 0.5, 0.95), key, uncertainty: str = "extrapolation") -> Allocation:
        """Bands of the compute-optimal plan at ``compute`` FLOPs (``6 N D = C``).

        For each draw the plan is the law's closed form (Hoffmann et al. 2022, Eq. 4) moved
        by the draw's allocation drift (:func:`chinplan.extrapolation.extrapolated_optimum_log`;
        no drift when ``uncertainty="law"``). ``loss`` is the observed
        loss of that plan (noise included, as :meth:`predict_loss`).

        Returns:
          Allocation(n, d, loss), each leaf float64 of shape ``(len(q), *compute.shape)``.
        """
        q = _checks.levels("q", q)
        key = _checks.key(key)
        log_c = np.log(_checks.positive("compute", compute))
        theta = self.extrapolated_params(uncertainty)
        dtype = theta.law.alpha.dtype
        log_n, log_d, mean = compute_optimal_draws(theta, jnp.asarray(log_c, dtype))
        _, rep = _replicate(self, mean, theta.kappa, theta.domain[0], log_n, log_d, key)
        n, d = (exp_quantiles(x, q) for x in (log_n, log_d))
        return Allocation(n, d, exp_quantiles(rep, q))

    # ----- summaries ---------------------------------------------------------------
    def default_uncertainty(self) -> str:
        """The uncertainty every surface answers with by default: ``"extrapolation"`` when the
        posterior has the component (as ``plan``), else ``"law"``."""
        return "extrapolation" if self.has_extrapolation and self.law == "chinchilla" else "law"

    def derived(self, compute: float = REFERENCE_COMPUTE, *, uncertainty: str | None = None) -> dict[str, np.ndarray]:
        """Draws of the constants and of derived quantities, float64, chains flattened.

        E, A, B, alpha, beta; a = beta/(alpha+beta) (N_opt grows as C^a); the
        tokens-per-parameter ratio D_opt/N_opt of the compute optimum at ``compute`` FLOPs
        under ``uncertainty`` (None: :meth:`default_uncertainty`, the same answer as ``plan``);
        sigma and nu (nu only for the Student-t likelihood). For a Kaplan law: N_c, D_c,
        alpha_N, alpha_D (and E), a = 1/(1 + alpha_N/alpha_D) and the tokens per parameter of
        its own compute optimum (:func:`chinplan.inference.model.kaplan_compute_optimal_log_n`).
        """
        if self.law not in ("chinchilla", "data_constrained"):
            return self._derived_kaplan(compute)
        log_E, log_A, log_B, alpha, beta = (self.draws(n).astype(np.float64) for n in LAW_SITES)
        uncertainty = self.default_uncertainty() if uncertainty is None else uncertainty
        _check_uncertainty(uncertainty)
        if uncertainty == "extrapolation" and self.law == "chinchilla":
            log_n, log_d, _ = compute_optimal_draws(self.extrapolated_params("extrapolation"), jnp.log(jnp.asarray([compute], jnp.result_type(float))))
            tpp = np.exp(np.asarray(log_d, np.float64) - np.asarray(log_n, np.float64))[:, 0]
        else:  # the law's closed form (Hoffmann et al. 2022, Eq. 4)
            log_c6 = np.log(compute / 6.0)
            tpp = np.exp(-2.0 * np.asarray(log_g(log_A, log_B, alpha, beta)) + (alpha - beta) / (alpha + beta) * log_c6)
        return {
            "E": np.exp(log_E),
            "A": np.exp(log_A),
            "B": np.exp(log_B),
            "alpha": alpha,
            "beta": beta,
            "a": beta / (alpha + beta),
            f"tokens_per_param@{compute:.3g}": tpp,
            **{name: np.exp(self.draws(site).astype(np.float64)) for name, site in (("R_D*", "log_R_D"), ("R_N*", "log_R_N")) if site in self.law_sites},
            **self._noise_draws(),
        }

    def _noise_draws(self) -> dict[str, np.ndarray]:
        return {name: self.draws(name).astype(np.float64) for name in self.sites if name not in self.law_sites}

    def _derived_kaplan(self, compute: float) -> dict[str, np.ndarray]:
        get = lambda name: self.draws(name).astype(np.float64)  # noqa: E731
        log_Nc, log_Dc, alpha_N, alpha_D = (get(n) for n in KAPLAN_LAW_SITES)
        log_n = np.asarray(kaplan_compute_optimal_log_n(log_Nc, log_Dc, alpha_N, alpha_D, np.log(compute)))
        out = {"N_c": np.exp(log_Nc), "D_c": np.exp(log_Dc), "alpha_N": alpha_N, "alpha_D": alpha_D}
        if self.law == "kaplan_irreducible":
            out["E"] = np.exp(get("log_E"))
        out["a"] = 1.0 / (1.0 + alpha_N / alpha_D)
        out[f"tokens_per_param@{compute:.3g}"] = np.exp(np.log(compute / 6.0) - 2.0 * log_n)
        out.update(self._noise_draws())
        return out

    def summary(self, *, compute: float = REFERENCE_COMPUTE, q=(0.05, 0.5, 0.95), uncertainty: str | None = None) -> pd.DataFrame:
        """Table of mean, sd, quantiles, R-hat and ESS for the constants and derived values;
        its ``attrs["uncertainty"]`` says which uncertainty the tokens per parameter carry."""
        uncertainty = self.default_uncertainty() if uncertainty is None else uncertainty
        derived = self.derived(compute, uncertainty=uncertainty)
        shape = (self._idata.posterior.sizes["chain"], self._idata.posterior.sizes["draw"])
        by_chain = xr.Dataset({name: (("chain", "draw"), v.reshape(shape)) for name, v in derived.items()})
        rhat, bulk, tail = az.rhat(by_chain), az.ess(by_chain, method="bulk"), az.ess(by_chain, method="tail")
        rows = {}
        for name, values in derived.items():
            row = {"mean": values.mean(), "sd": values.std(ddof=1)}
            row.update({f"q{100 * p:g}": v for p, v in zip(q, np.quantile(values, q))})
            row.update(r_hat=float(rhat[name]), ess_bulk=float(bulk[name]), ess_tail=float(tail[name]))
            rows[name] = row
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.attrs["uncertainty"] = uncertainty
        return table

    def __repr__(self) -> str:
        attrs = self.attrs
        choices = ""
        if self.law != "chinchilla" or self.likelihood != "student_t" or attrs.get("priors_name", "weak") != "weak":
            choices = f"{self.law}, {self.likelihood}, {attrs.get('priors_name', '?')} priors, "
        return (
            f"Posterior({choices}{self.num_draws} draws, {attrs.get('num_runs', '?')} runs, "
            f"{self.num_divergences} divergences, data {str(attrs.get('data_sha256', '?'))[:12]})"
        )

    # ----- files -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Writes the posterior to NetCDF atomically (:func:`chinplan.inference.posterior_file.write`):
        a reader never sees a half-written file, and a failed save leaves any file at ``path``
        untouched and no temporary file behind."""
        posterior_file.write(self._idata, path)

    @classmethod
    def load(cls, path) -> "Posterior":
        """Reads a posterior written by :meth:`save`, treating the file as untrusted
        (:func:`chinplan.inference.posterior_file.read` checks its structure before reading);
        then every variable the law and likelihood need must have dims exactly ``(chain,
        draw)`` and draws that are finite and in range in float32.

        Raises:
          ValueError: naming the path (and the variable), for a missing, empty, truncated or
            non-NetCDF file, or one that fails any of those checks (never a raw h5py/netCDF
            traceback).
        """
        idata = posterior_file.read(path)
        try:
            return cls(idata)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"posterior file {posterior_file.display_name(path)!r}: {err}") from None


def shipped_posterior_path() -> str | None:
    """The file of the posterior shipped with the package (None inside a zip): an input no
    command may write over."""
    path = resources.files("chinplan.datasets") / DEFAULT_POSTERIOR_FILE
    return os.fspath(path) if isinstance(path, os.PathLike) else None


@lru_cache(maxsize=1)
def default_posterior() -> Posterior:
    """The posterior of the embedded Chinchilla runs, shipped with the package.

    Built by ``scripts/build_default_posterior.py`` with :data:`DEFAULT_FIT_SETTINGS`
    (4 chains x 1000 draws of NUTS on all 245 runs, default priors), so nobody waits for
    NUTS to plan with the default data.
    """
    with resources.as_file(resources.files("chinplan.datasets") / DEFAULT_POSTERIOR_FILE) as path:
        return Posterior.load(path)
