"""Bayesian fit of the Chinchilla law with NUTS, and the Posterior it returns.

``fit(runs, key=...)`` runs numpyro's NUTS on :func:`chinplan.model.chinchilla_model` and
returns a :class:`Posterior`: the draws (``.params``, a LawParams with a leading draw axis),
convergence diagnostics (R-hat, bulk and tail ESS, divergences; a
:class:`ConvergenceWarning` when R-hat > 1.01, bulk ESS < 400 or any divergence), an arviz
``InferenceData`` (``.to_arviz()``), a summary table, and a lossless NetCDF round trip
(``.save(path)`` / ``Posterior.load(path)``) that carries its provenance: a hash of the
data, the priors, the seed and the chinplan version.

Model choices (see docs/MODEL_CHOICES.md for a comparison on the embedded runs):
``fit(..., likelihood="student_t"|"normal"|"huber", priors="weak"|"informed"|<Priors>,
law="chinchilla"|"kaplan"|"kaplan_irreducible", log_likelihood=True)``. The choices are
recorded in the posterior's attrs (``law``, ``likelihood``, ``priors_name``, ``priors``).
With ``log_likelihood=True`` the pointwise log-likelihood of every run is stored in the
``log_likelihood`` group, so ``az.loo``, ``az.waic`` and :func:`chinplan.compare_models.compare`
work on the posterior.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import warnings
from functools import lru_cache
from importlib import resources

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from chinplan._files import write_atomic
from chinplan._sampler import CHAIN_METHODS, sample_nuts
from chinplan.data import load_runs, runs_arrays
from chinplan.law import LawParams
from chinplan.model import (
    DEFAULT_KAPLAN_PRIORS,
    DEFAULT_PRIORS,
    HUBER_K,
    INFORMED_PRIORS,
    KAPLAN_LAW_SITES,
    LAWS,
    LIKELIHOODS,
    PARAM_NAMES,
    InformedPriors,
    KaplanParams,
    KaplanPriors,
    Priors,
    chinchilla_model,
    kaplan_compute_optimal_log_n,
    kaplan_model,
    noise_sites,
)

__all__ = [
    "fit",
    "Posterior",
    "ConvergenceWarning",
    "default_posterior",
    "DEFAULT_POSTERIOR_FILE",
    "DEFAULT_FIT_SETTINGS",
    "RHAT_MAX",
    "ESS_MIN",
    "REFERENCE_COMPUTE",
    "PRIOR_PRESETS",
]

RHAT_MAX = 1.01
ESS_MIN = 400
#: Chinchilla's own budget (Hoffmann et al. 2022): the summary reports tokens per parameter here.
REFERENCE_COMPUTE = 5.76e23
#: The posterior shipped with the package, built by scripts/build_default_posterior.py.
DEFAULT_POSTERIOR_FILE = "chinchilla_posterior.nc"
#: Settings of the shipped posterior (scripts/build_default_posterior.py uses exactly these).
DEFAULT_FIT_SETTINGS = dict(seed=20240416, num_draws=1000, num_warmup=500, num_chains=4)

LAW_SITES = ("log_E", "log_A", "log_B", "alpha", "beta")

#: Named prior sets accepted by ``fit(priors=...)``, per law.
PRIOR_PRESETS = {
    "chinchilla": {"weak": DEFAULT_PRIORS, "informed": INFORMED_PRIORS},
    "kaplan": {"weak": DEFAULT_KAPLAN_PRIORS},
    "kaplan_irreducible": {"weak": DEFAULT_KAPLAN_PRIORS},
}


def _law_sites(law: str) -> tuple[str, ...]:
    if law == "chinchilla":
        return LAW_SITES
    if law == "kaplan":
        return KAPLAN_LAW_SITES
    return KAPLAN_LAW_SITES + ("log_E",)


def _resolve_priors(law: str, priors):
    """(priors object, name) for ``fit(priors=...)``; a ValueError naming what is valid."""
    presets = PRIOR_PRESETS[law]
    if priors is None:
        return presets["weak"], "weak"
    if isinstance(priors, str):
        if priors not in presets:
            raise ValueError(f"priors must be one of {sorted(presets)} for law={law!r} (or a priors object), got {priors!r}")
        return presets[priors], priors
    valid = (KaplanPriors,) if law != "chinchilla" else (Priors, InformedPriors)
    if not isinstance(priors, valid):
        names = " or ".join(c.__name__ for c in valid)
        raise ValueError(f"priors for law={law!r} must be a name in {sorted(presets)} or a {names}, got {type(priors).__name__}")
    for name, preset in presets.items():
        if priors == preset and type(priors) is type(preset):
            return priors, name
    return priors, "custom"


class ConvergenceWarning(UserWarning):
    """NUTS did not clearly converge: R-hat > 1.01, bulk ESS < 400 or divergences."""


def _data_hash(log_n, log_d, log_loss) -> str:
    digest = hashlib.sha256()
    for array in (log_n, log_d, log_loss):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _inference_data(model, model_kwargs, data, samples, diverging, log_likelihood: bool) -> az.InferenceData:
    """arviz InferenceData of a NUTS run: posterior, sample_stats (diverging), observed_data
    (``log_loss``, dim ``runs``) and, when asked, the pointwise log-likelihood of the runs."""
    import numpyro
    from numpyro.infer import log_likelihood as pointwise_log_likelihood

    groups = {
        "posterior": samples,
        "sample_stats": {"diverging": diverging},
        "observed_data": {"log_loss": np.asarray(data[2])},
    }
    if log_likelihood:
        num_chains, num_draws = diverging.shape
        flat = {name: jnp.asarray(value.reshape((num_chains * num_draws,) + value.shape[2:])) for name, value in samples.items()}
        # numpyro also counts the prior factors (log_A_prior, ...) as observed sites; keep only
        # the runs' term, so az.loo / az.waic / az.compare need no var_name.
        pointwise = pointwise_log_likelihood(model, flat, *data, **model_kwargs)["log_loss"]
        groups["log_likelihood"] = {"log_loss": np.asarray(pointwise).reshape(num_chains, num_draws, -1)}
    idata = az.from_dict(**groups, dims={"log_loss": ["runs"]})
    for group in idata.groups():
        idata[group].attrs.update(inference_library="numpyro", inference_library_version=numpyro.__version__)
    return idata


def fit(
    runs,
    *,
    key: jax.Array,
    num_draws: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 4,
    priors: Priors | InformedPriors | KaplanPriors | str | None = None,
    likelihood: str = "student_t",
    law: str = "chinchilla",
    log_likelihood: bool = False,
    target_accept_prob: float = 0.8,
    chain_method: str | None = None,
    progress: bool | None = None,
) -> "Posterior":
    """Fits the Chinchilla law (or an alternative) to training runs with NUTS.

    With no model option given this is exactly the default model (weak priors, Student-t
    likelihood on log loss, the Chinchilla law) that the shipped posterior was built with.

    Args:
      runs: a runs table (DataFrame or CSV path), validated with :func:`chinplan.load_runs`.
      key: a JAX PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``).
      num_draws: draws kept per chain.
      num_warmup: adaptation steps per chain (step size and a dense mass matrix).
      num_chains: independent chains; run in parallel when there are at least as many
        local devices, else one after another (``chain_method`` overrides:
        "parallel", "sequential" or "vectorized").
      priors: ``"weak"`` (default, :data:`chinplan.model.DEFAULT_PRIORS`; for the Kaplan laws
        :data:`chinplan.model.DEFAULT_KAPLAN_PRIORS`), ``"informed"`` (Chinchilla law only:
        :data:`chinplan.model.INFORMED_PRIORS`, centred on Hoffmann et al. 2022 / Besiroglu
        et al. 2024), or a :class:`~chinplan.model.Priors`,
        :class:`~chinplan.model.InformedPriors` or :class:`~chinplan.model.KaplanPriors`.
        None means ``"weak"``.
      likelihood: on log loss: ``"student_t"`` (default), ``"normal"`` or ``"huber"``
        (:class:`chinplan.model.HuberLike`, Huber's density with k = 1.345).
      law: ``"chinchilla"`` (default; E + A/N^alpha + B/D^beta), ``"kaplan"`` (Kaplan et al.
        2020: [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D) or ``"kaplan_irreducible"`` (the
        same plus an irreducible loss E).
      log_likelihood: store the pointwise log-likelihood (group ``log_likelihood``, variable
        ``log_loss``, dims chain x draw x run) for LOO/WAIC. Off by default (files stay small).
      target_accept_prob: NUTS's target acceptance probability.
      progress: a progress bar over the NUTS steps (tqdm); None shows it when stderr is a
        terminal.

    Returns:
      A :class:`Posterior` with ``num_chains * num_draws`` draws.
    """
    for name, value, low in (("num_draws", num_draws, 1), ("num_warmup", num_warmup, 0), ("num_chains", num_chains, 1)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not (isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.dtype == jnp.uint32 and key.shape == (2,)))):
        raise ValueError(f"key must be a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got {key!r}")
    if isinstance(target_accept_prob, (bool, np.bool_)) or not (
        isinstance(target_accept_prob, (int, float, np.integer, np.floating)) and 0.0 < float(target_accept_prob) < 1.0
    ):
        raise ValueError(f"target_accept_prob must be a number in (0, 1), got {target_accept_prob!r}")
    if chain_method is not None and chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be None, 'sequential', 'parallel' or 'vectorized', got {chain_method!r}")
    if law not in LAWS:
        raise ValueError(f"law must be one of {LAWS}, got {law!r}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    priors, priors_name = _resolve_priors(law, priors)
    runs = load_runs(runs)
    arrays = runs_arrays(runs)
    log_n, log_d, log_loss = (jnp.asarray(a, dtype=jnp.result_type(float)) for a in arrays)
    if progress is None:
        progress = sys.stderr.isatty()
    if law == "chinchilla":
        model = chinchilla_model
        model_kwargs = {"priors": priors}
        if likelihood != "student_t":  # the default call stays exactly as it always was
            model_kwargs["likelihood"] = likelihood
    else:
        model = kaplan_model
        model_kwargs = {"priors": priors, "likelihood": likelihood, "irreducible": law == "kaplan_irreducible"}
    data = (log_n, log_d, log_loss)
    samples, diverging = sample_nuts(
        model,
        data,
        model_kwargs,
        key=key,
        num_warmup=num_warmup,
        num_draws=num_draws,
        num_chains=num_chains,
        chain_method=chain_method,
        target_accept_prob=target_accept_prob,
        progress=progress,
    )
    idata = _inference_data(model, model_kwargs, data, samples, diverging, log_likelihood)
    idata.add_groups(
        constant_data=xr.Dataset({"log_n": ("run", arrays.log_n), "log_d": ("run", arrays.log_d)}),
    )
    idata.posterior.attrs.update(
        chinplan_version=_version(),
        data_sha256=_data_hash(*arrays),
        num_runs=len(runs),
        priors=json.dumps(priors._asdict()),
        priors_name=priors_name,
        priors_type=type(priors).__name__,
        law=law,
        likelihood=likelihood,
        seed=json.dumps(np.asarray(jax.random.key_data(key)).ravel().tolist()),
        num_chains=num_chains,
        num_draws=num_draws,
        num_warmup=num_warmup,
        target_accept_prob=target_accept_prob,
        sampler="numpyro NUTS, dense mass matrix, init_to_median (chinplan jitted chains)",
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    if likelihood == "huber":
        idata.posterior.attrs["huber_k"] = HUBER_K
    posterior = Posterior(idata)
    posterior.warn_if_unconverged()
    return posterior


def _version() -> str:
    from chinplan import __version__

    return __version__


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
    :class:`~chinplan.model.KaplanParams` instead.
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
        for name in self.sites:
            draws = np.asarray(idata.posterior[name].values, dtype=np.float64)
            if draws.size == 0 or not np.all(np.isfinite(draws)):
                raise ValueError(f"posterior variable {name!r} must have finite draws (found NaN, inf or none)")
            if name in ("alpha", "beta", "sigma", "nu") and not np.all(draws > 0):
                raise ValueError(f"posterior variable {name!r} must be > 0 in every draw")

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
        """The law's sites, then the noise sites (sigma; nu for the Student-t)."""
        return self.law_sites + noise_sites(self.likelihood)

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
        if self.law != "chinchilla":
            raise TypeError(
                f"Posterior.params is a Chinchilla LawParams(E, A, B, alpha, beta), but this posterior "
                f"is of the {self.law!r} law; use Posterior.kaplan_params (a KaplanParams) instead"
            )
        dtype = jnp.result_type(float)
        logs = {name: jnp.asarray(self.draws(name), dtype=dtype) for name in LAW_SITES}
        return LawParams.from_logs(logs["log_E"], logs["log_A"], logs["log_B"], logs["alpha"], logs["beta"])

    @property
    def kaplan_params(self) -> KaplanParams:
        """KaplanParams(N_c, D_c, alpha_N, alpha_D, E) with a leading draw axis (E = 0 without E).

        Raises:
          TypeError: for a Chinchilla-law posterior (use :attr:`params`).
        """
        if self.law == "chinchilla":
            raise TypeError("this posterior is of the Chinchilla law; use Posterior.params (a LawParams)")
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
        names = list(self.sites)
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
        diag = self.diagnostics()
        problems = []
        for name, row in diag.iterrows():
            if not row.r_hat <= RHAT_MAX:
                problems.append(f"{name}: R-hat {row.r_hat:.3f} > {RHAT_MAX}")
            if not row.ess_bulk >= ESS_MIN:
                problems.append(f"{name}: bulk ESS {row.ess_bulk:.0f} < {ESS_MIN}")
        if self.num_divergences:
            problems.append(f"{self.num_divergences} divergent transitions")
        return problems

    def warn_if_unconverged(self) -> None:
        """Issues a ConvergenceWarning listing every failed check."""
        problems = self.convergence_problems()
        if problems:
            warnings.warn("NUTS may not have converged: " + "; ".join(problems), ConvergenceWarning, stacklevel=3)

    # ----- summaries ---------------------------------------------------------------
    def derived(self, compute: float = REFERENCE_COMPUTE) -> dict[str, np.ndarray]:
        """Draws of the constants and of derived quantities, float64, chains flattened.

        E, A, B, alpha, beta; a = beta/(alpha+beta) (N_opt grows as C^a); the
        tokens-per-parameter ratio D_opt/N_opt at ``compute`` FLOPs; sigma and nu (nu only
        for the Student-t likelihood). For a Kaplan law: N_c, D_c, alpha_N, alpha_D (and E),
        a = 1/(1 + alpha_N/alpha_D) and the tokens per parameter of its own compute optimum
        (:func:`chinplan.model.kaplan_compute_optimal_log_n`).
        """
        if self.law != "chinchilla":
            return self._derived_kaplan(compute)
        log_E, log_A, log_B, alpha, beta = (self.draws(n).astype(np.float64) for n in LAW_SITES)
        log_g = (np.log(alpha) + log_A - np.log(beta) - log_B) / (alpha + beta)
        log_c6 = np.log(compute / 6.0)
        tpp = np.exp(-2.0 * log_g + (alpha - beta) / (alpha + beta) * log_c6)
        return {
            "E": np.exp(log_E),
            "A": np.exp(log_A),
            "B": np.exp(log_B),
            "alpha": alpha,
            "beta": beta,
            "a": beta / (alpha + beta),
            f"tokens_per_param@{compute:.3g}": tpp,
            **self._noise_draws(),
        }

    def _noise_draws(self) -> dict[str, np.ndarray]:
        return {name: self.draws(name).astype(np.float64) for name in noise_sites(self.likelihood)}

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

    def summary(self, *, compute: float = REFERENCE_COMPUTE, q=(0.05, 0.5, 0.95)) -> pd.DataFrame:
        """Table of mean, sd, quantiles, R-hat and ESS for the constants and derived values."""
        derived = self.derived(compute)
        shape = (self._idata.posterior.sizes["chain"], self._idata.posterior.sizes["draw"])
        by_chain = xr.Dataset({name: (("chain", "draw"), v.reshape(shape)) for name, v in derived.items()})
        rhat, bulk, tail = az.rhat(by_chain), az.ess(by_chain, method="bulk"), az.ess(by_chain, method="tail")
        rows = {}
        for name, values in derived.items():
            row = {"mean": values.mean(), "sd": values.std(ddof=1)}
            row.update({f"q{100 * p:g}": v for p, v in zip(q, np.quantile(values, q))})
            row.update(r_hat=float(rhat[name]), ess_bulk=float(bulk[name]), ess_tail=float(tail[name]))
            rows[name] = row
        return pd.DataFrame.from_dict(rows, orient="index")

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
        """Writes the posterior to NetCDF atomically.

        The file is written to a temporary file in the destination's directory and then
        renamed over ``path`` with :func:`os.replace`, so a reader never sees a half-written
        file and a failed save (full disk, interrupt, an unserialisable attribute) leaves any
        existing file at ``path`` untouched and no temporary file behind.
        """
        write_atomic(path, lambda tmp: self._idata.to_netcdf(tmp, engine="h5netcdf"))

    @classmethod
    def load(cls, path) -> "Posterior":
        """Reads a posterior written by :meth:`save`.

        Raises:
          ValueError: naming the path, for a missing, empty, truncated or non-NetCDF file, or
            one that lacks the posterior group or the variables its law and likelihood need
            (never a raw h5py/netCDF traceback).
        """
        name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
        if isinstance(path, (str, os.PathLike)):
            if not os.path.exists(path):
                raise ValueError(f"posterior file {name!r} does not exist")
            if os.path.isdir(path):
                raise ValueError(f"posterior file {name!r} is a directory, not a NetCDF file")
            if os.path.getsize(path) == 0:
                raise ValueError(f"posterior file {name!r} is empty (0 bytes), not a readable chinplan posterior")
        try:
            idata = az.from_netcdf(path, engine="h5netcdf")
            idata.load()  # read everything now, so the file can be closed and replaced
        except Exception as err:  # h5py/netCDF raise many types for a damaged file
            detail = f"{type(err).__name__}: {err}".splitlines()[0][:200]
            raise ValueError(
                f"posterior file {name!r} is not a readable chinplan posterior "
                f"(truncated, damaged or not NetCDF/HDF5: {detail})"
            ) from None
        if "posterior" not in idata.groups():
            raise ValueError(f"posterior file {name!r} has no 'posterior' group; not a chinplan posterior")
        try:
            return cls(idata)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"posterior file {name!r}: {err}") from None


@lru_cache(maxsize=1)
def default_posterior() -> Posterior:
    """The posterior of the embedded Chinchilla runs, shipped with the package.

    Built by ``scripts/build_default_posterior.py`` with :data:`DEFAULT_FIT_SETTINGS`
    (4 chains x 1000 draws of NUTS on all 245 runs, default priors), so nobody waits for
    NUTS to plan with the default data.
    """
    with resources.as_file(resources.files("chinplan.datasets") / DEFAULT_POSTERIOR_FILE) as path:
        return Posterior.load(path)
