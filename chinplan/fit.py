"""Bayesian fit of the Chinchilla law with NUTS, and the Posterior it returns.

``fit(runs, key=...)`` runs numpyro's NUTS on :func:`chinplan.model.chinchilla_model` and
returns a :class:`Posterior`: the draws (``.params``, a LawParams with a leading draw axis),
convergence diagnostics (R-hat, bulk and tail ESS, divergences; a
:class:`ConvergenceWarning` when R-hat > 1.01, bulk ESS < 400 or any divergence), an arviz
``InferenceData`` (``.to_arviz()``), a summary table, and a lossless NetCDF round trip
(``.save(path)`` / ``Posterior.load(path)``) that carries its provenance: a hash of the
data, the priors, the seed and the chinplan version.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import tempfile
import warnings
from functools import lru_cache
from importlib import resources

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from chinplan.data import load_runs, runs_arrays
from chinplan.law import LawParams
from chinplan.model import DEFAULT_PRIORS, PARAM_NAMES, Priors, chinchilla_model

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


class ConvergenceWarning(UserWarning):
    """NUTS did not clearly converge: R-hat > 1.01, bulk ESS < 400 or divergences."""


def _data_hash(log_n, log_d, log_loss) -> str:
    digest = hashlib.sha256()
    for array in (log_n, log_d, log_loss):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _chain_method(num_chains: int, chain_method: str | None) -> str:
    if chain_method is not None:
        return chain_method
    return "parallel" if jax.local_device_count() >= num_chains > 1 else "sequential"


def fit(
    runs,
    *,
    key: jax.Array,
    num_draws: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 4,
    priors: Priors = DEFAULT_PRIORS,
    target_accept_prob: float = 0.8,
    chain_method: str | None = None,
    progress: bool | None = None,
) -> "Posterior":
    """Fits the Chinchilla law to training runs with NUTS.

    Args:
      runs: a runs table (DataFrame or CSV path), validated with :func:`chinplan.load_runs`.
      key: a JAX PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``).
      num_draws: draws kept per chain.
      num_warmup: adaptation steps per chain (step size and a dense mass matrix).
      num_chains: independent chains; run in parallel when there are at least as many
        local devices, else one after another (``chain_method`` overrides:
        "parallel", "sequential" or "vectorized").
      priors: prior hyper-parameters (:class:`chinplan.model.Priors`).
      target_accept_prob: NUTS's target acceptance probability.
      progress: numpyro's progress bar; None shows it when stderr is a terminal.

    Returns:
      A :class:`Posterior` with ``num_chains * num_draws`` draws.
    """
    from numpyro.infer import MCMC, NUTS, init_to_median

    for name, value, low in (("num_draws", num_draws, 1), ("num_warmup", num_warmup, 0), ("num_chains", num_chains, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    runs = load_runs(runs)
    arrays = runs_arrays(runs)
    log_n, log_d, log_loss = (jnp.asarray(a, dtype=jnp.result_type(float)) for a in arrays)
    if progress is None:
        progress = sys.stderr.isatty()
    kernel = NUTS(chinchilla_model, dense_mass=True, target_accept_prob=target_accept_prob, init_strategy=init_to_median)
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_draws,
        num_chains=num_chains,
        chain_method=_chain_method(num_chains, chain_method),
        progress_bar=progress,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There are not enough devices to run parallel chains")
        mcmc.run(key, log_n, log_d, log_loss, priors=priors)
    idata = az.from_numpyro(mcmc, log_likelihood=False)
    idata.add_groups(
        constant_data=xr.Dataset({"log_n": ("run", arrays.log_n), "log_d": ("run", arrays.log_d)}),
    )
    idata.posterior.attrs.update(
        chinplan_version=_version(),
        data_sha256=_data_hash(*arrays),
        num_runs=len(runs),
        priors=json.dumps(priors._asdict()),
        seed=json.dumps(np.asarray(jax.random.key_data(key)).ravel().tolist()),
        num_chains=num_chains,
        num_draws=num_draws,
        num_warmup=num_warmup,
        target_accept_prob=target_accept_prob,
        sampler="numpyro NUTS, dense mass matrix",
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    posterior = Posterior(idata)
    posterior.warn_if_unconverged()
    return posterior


def _version() -> str:
    from chinplan import __version__

    return __version__


class Posterior:
    """Posterior draws of the law's constants, with diagnostics and provenance.

    Wraps an arviz ``InferenceData`` whose ``posterior`` group holds the sites log_E,
    log_A, log_B, alpha, beta, sigma, nu with dims (chain, draw), and whose attributes
    carry the provenance.
    """

    def __init__(self, idata: az.InferenceData):
        missing = [name for name in PARAM_NAMES if name not in idata.posterior]
        if missing:
            raise ValueError(f"posterior lacks the variables {missing}")
        self._idata = idata

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
        """LawParams with a leading draw axis (float32 unless x64 is on), chains flattened."""
        dtype = jnp.result_type(float)
        logs = {name: jnp.asarray(self.draws(name), dtype=dtype) for name in LAW_SITES}
        return LawParams.from_logs(logs["log_E"], logs["log_A"], logs["log_B"], logs["alpha"], logs["beta"])

    @property
    def attrs(self) -> dict:
        """Provenance: chinplan version, data hash, priors, seed, sampler settings."""
        return dict(self._idata.posterior.attrs)

    def to_arviz(self) -> az.InferenceData:
        """The arviz InferenceData (posterior, sample_stats, observed_data, constant_data)."""
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
        post = self._idata.posterior[list(PARAM_NAMES)]
        rhat, bulk, tail = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
        return pd.DataFrame(
            {
                "r_hat": [float(rhat[n]) for n in PARAM_NAMES],
                "ess_bulk": [float(bulk[n]) for n in PARAM_NAMES],
                "ess_tail": [float(tail[n]) for n in PARAM_NAMES],
            },
            index=list(PARAM_NAMES),
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
        tokens-per-parameter ratio D_opt/N_opt at ``compute`` FLOPs; sigma and nu.
        """
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
            "sigma": self.draws("sigma").astype(np.float64),
            "nu": self.draws("nu").astype(np.float64),
        }

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
        return (
            f"Posterior({self.num_draws} draws, {attrs.get('num_runs', '?')} runs, "
            f"{self.num_divergences} divergences, data {str(attrs.get('data_sha256', '?'))[:12]})"
        )

    # ----- files -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Writes the posterior to NetCDF atomically (a temporary file renamed into place)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(suffix=".nc.tmp", dir=directory)
        os.close(fd)
        try:
            self._idata.to_netcdf(tmp, engine="h5netcdf")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path) -> "Posterior":
        """Reads a posterior written by :meth:`save`; a clear ValueError if it cannot."""
        name = os.fspath(path) if not hasattr(path, "open") else str(path)
        if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
            raise ValueError(f"posterior file {name!r} does not exist")
        try:
            idata = az.from_netcdf(path, engine="h5netcdf")
            idata.load()  # read everything now, so the file can be closed and replaced
        except Exception as err:  # h5py/netCDF raise many types for a damaged file
            raise ValueError(f"posterior file {name!r} is not a readable chinplan posterior: {err}") from None
        if "posterior" not in idata.groups():
            raise ValueError(f"posterior file {name!r} has no 'posterior' group")
        try:
            return cls(idata)
        except ValueError as err:
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
