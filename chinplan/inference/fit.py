"""Bayesian fit of the Chinchilla law with NUTS, and the Posterior it returns.

``fit(runs, key=...)`` runs numpyro's NUTS on :func:`chinplan.inference.model.chinchilla_model` and
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
``log_likelihood`` group, so ``az.loo``, ``az.waic`` and :func:`chinplan.inference.compare_models.compare`
work on the posterior.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from chinplan import _checks
from chinplan.extrapolated import Domain
from chinplan.inference import posterior_file
from chinplan.inference.allocation import fit_line, law_line_draws, sample_valley
from chinplan.inference.extrapolation import (
    fold_masks,
    isoflop_minima,
    learn,
    sample_discrepancy,
)
from chinplan.inference.model import (
    DECAY_SITES,
    DEFAULT_DATA_CONSTRAINED_PRIORS,
    DEFAULT_KAPLAN_PRIORS,
    DEFAULT_PRIORS,
    HUBER_K,
    INFORMED_PRIORS,
    LAWS,
    LIKELIHOODS,
    DataConstrainedPriors,
    InformedPriors,
    KaplanPriors,
    Priors,
    chinchilla_model,
    chinchilla_start,
    data_constrained_model,
    kaplan_model,
    noise_sites,
    pad_runs,
)
from chinplan.inference.huber import hoffmann_grid, huber_fit
from chinplan.inference.convergence import gate_problems, more_draws_may_help, retry_may_help
from chinplan.inference.posterior import LAW_SITES, Posterior, _law_sites
from chinplan.inference.runs import MIN_RUNS, check_identifiable, config_arrays, load_runs, runs_arrays
from chinplan.inference.sampler import CHAIN_METHODS, check_size, sample_nuts
from chinplan.law import LawParams
from chinplan.law import log_loss as log_loss_of

__all__ = ["fit", "DEFAULT_FIT_SETTINGS", "PRIOR_PRESETS", "DEFAULT_MAX_EPOCHS"]

#: The data-constrained law's fitted range: runs repeating their data more often are left
#: out by default (docs/DATA_CONSTRAINED.md; scripts/study_data_constrained.py chooses it).
DEFAULT_MAX_EPOCHS = 8.0

#: Settings of the shipped posterior (scripts/build_default_posterior.py uses exactly these).
DEFAULT_FIT_SETTINGS = dict(seed=20240416, num_draws=1000, num_warmup=500, num_chains=4)

#: Named prior sets accepted by ``fit(priors=...)``, per law.
PRIOR_PRESETS = {
    "chinchilla": {"weak": DEFAULT_PRIORS, "informed": INFORMED_PRIORS},
    "kaplan": {"weak": DEFAULT_KAPLAN_PRIORS},
    "kaplan_irreducible": {"weak": DEFAULT_KAPLAN_PRIORS},
    "data_constrained": {"weak": DEFAULT_DATA_CONSTRAINED_PRIORS},
}
_PRIOR_TYPES = {"chinchilla": (Priors, InformedPriors), "kaplan": (KaplanPriors,), "kaplan_irreducible": (KaplanPriors,), "data_constrained": (DataConstrainedPriors,)}


#: Chains per leave-out refit. The folds' draws are summarised by medians and variances of
#: predicted log loss and N* (:func:`chinplan.inference.extrapolation.fold_evidence`): two
#: chains of ``num_draws`` (2,000 draws at the defaults) put their Monte Carlo error at a
#: few percent of a posterior sd, and a sequential fit reuses its one compiled chain, so the
#: five refits cost 10 chains instead of 20.
FOLD_CHAINS = 2


def _resolve_priors(law: str, priors):
    """(priors object, name) for ``fit(priors=...)``; a ValueError naming what is valid."""
    presets = PRIOR_PRESETS[law]
    if priors is None:
        return presets["weak"], "weak"
    if isinstance(priors, str):
        if priors not in presets:
            raise ValueError(f"priors must be one of {sorted(presets)} for law={law!r} (or a priors object), got {priors!r}")
        return presets[priors], priors
    valid = _PRIOR_TYPES[law]
    if not isinstance(priors, valid):
        names = " or ".join(c.__name__ for c in valid)
        raise ValueError(f"priors for law={law!r} must be a name in {sorted(presets)} or a {names}, got {type(priors).__name__}")
    for name, preset in presets.items():
        if priors == preset and type(priors) is type(preset):
            return priors, name
    return priors, "custom"


#: The Huber point fit's starts for the chains' start (:func:`_point_start`): every 16th point
#: of Hoffmann et al. 2022's 4,500-point grid (282 starts; the fit compiles once per padded
#: size, about 2 s, and then takes about 0.05 s).
_START_GRID_STEP = 16
#: The chains' start for the Student-t's nu: a moderate tail, away from the nu -> 0 trap.
_START_NU = 10.0


def _point_start(log_n, log_d, log_loss, weight, priors, likelihood: str) -> dict | None:
    """Where the Chinchilla law's chains start: the law sites at a Huber point fit of the runs
    with weight > 0 (Hoffmann et al. 2022's approach 3, :func:`~chinplan.inference.huber.huber_fit`),
    sigma at the fit's robust residual scale (1.4826 x MAD, within [1e-3, 3 x the prior's
    scale]) and nu at 10. Not at the prior median: its law sits hundreds of sigma from the
    runs, where a heavy-tailed likelihood drives nu to 0 before the law moves, and a chain
    can stay there (docs/CALIBRATION.md: where the chains start). None when the point fit
    fails (the chains then start at the prior median)."""
    log_n, log_d, log_loss = (np.asarray(x, np.float64) for x in (log_n, log_d, log_loss))
    kept = np.asarray(weight) > 0
    included = kept.astype(np.float64)  # 1 for the runs fitted, 0 for left-out and padding runs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            point = huber_fit(np.exp(log_n), np.exp(log_d), np.exp(log_loss), weights=included,
                              grid=hoffmann_grid()[::_START_GRID_STEP], num_lanes=64)  # fmt: skip
    except ValueError:
        return None
    log_e, log_a, log_b, alpha, beta = np.asarray(point.theta, np.float64)
    if not np.all(np.isfinite([log_e, log_a, log_b, alpha, beta])):
        return None
    margin = 1e-3 * (priors.exponent_high - priors.exponent_low)  # inside the exponents' support
    alpha, beta = (float(np.clip(x, priors.exponent_low + margin, priors.exponent_high - margin)) for x in (alpha, beta))
    residual = (log_loss - np.asarray(log_loss_of(LawParams(np.exp(log_e), np.exp(log_a), np.exp(log_b), alpha, beta), log_n, log_d)))[kept]
    scale = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    values = chinchilla_start(log_e, log_a, log_b, alpha, beta, log_n, log_d, included)
    values = {k: float(v) for k, v in values.items()}
    values["sigma"] = float(np.clip(scale, 1e-3, 3.0 * priors.sigma_scale)) if np.isfinite(scale) else float(priors.sigma_scale)
    if likelihood == "student_t":
        values["nu"] = _START_NU + float(getattr(priors, "nu_min", 0.0))
    return values


def _within_epochs(runs, max_epochs):
    """(the runs repeating their data at most ``max_epochs`` times, how many were left out);
    warns when any are left out."""
    if isinstance(max_epochs, (bool, np.bool_)) or not isinstance(max_epochs, (int, float, np.integer, np.floating)) or not float(max_epochs) >= 1.0:
        raise ValueError(f"max_epochs must be a number >= 1 (epochs = tokens / unique_tokens; math.inf keeps every run), got {max_epochs!r}")
    if "unique_tokens" not in runs:
        raise ValueError(f"law='data_constrained' needs a 'unique_tokens' column in the runs (columns: {list(runs.columns)})")
    epochs = runs["tokens"].to_numpy(np.float64) / runs["unique_tokens"].to_numpy(np.float64)
    keep = epochs <= float(max_epochs) * (1.0 + 1e-9)
    if keep.sum() < MIN_RUNS:
        raise ValueError(f"only {int(keep.sum())} runs repeat their data at most max_epochs={max_epochs!r} times; the model needs at least {MIN_RUNS}")
    if not keep.all():
        warnings.warn(
            f"left out {int((~keep).sum())} of {len(runs)} runs that repeat their data more than {float(max_epochs):g} epochs "
            f"(up to {epochs.max():.4g}): the data-constrained law does not describe them (docs/DATA_CONSTRAINED.md); "
            "max_epochs=math.inf keeps them",
            UserWarning,
            stacklevel=3,
        )
    return runs[keep].reset_index(drop=True), int((~keep).sum())


def sampled_sites(law: str, likelihood: str, *, fixed_base: bool = False, seed_noise: bool = False) -> tuple[str, ...]:
    """The sites NUTS samples (the convergence gate's): the law's (less a fixed base law),
    the noise sites, and sigma_seed when seed repeats are modelled."""
    law_sites = DECAY_SITES if fixed_base else _law_sites(law)
    return law_sites + noise_sites(likelihood) + (("sigma_seed",) if seed_noise else ())


def _data_hash(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
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
    extrapolation: bool | None = None,
    max_retries: int = 3,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
    allow_unconverged: bool = False,
) -> "Posterior":
    """Fits the Chinchilla law (or an alternative) to training runs with NUTS.

    With no model option given this is exactly the default model (weak priors, Student-t
    likelihood on log loss, the Chinchilla law) that the shipped posterior was built with.

    Args:
      runs: a runs table (DataFrame or CSV path), validated with :func:`chinplan.load_runs`.
      key: a JAX PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``).
      num_draws: draws kept per chain.
      num_warmup: adaptation steps per chain (step size and a dense mass matrix).
      num_chains: independent chains; run in parallel, one per device, when JAX has two
        local devices or more (in groups when there are more chains than devices), else one
        after another (``chain_method`` overrides: "parallel", "sequential" or
        "vectorized"). On a multi-core CPU, ``jax.config.update("jax_num_cpu_devices", k)``
        before JAX's first computation gives k devices (``chinplan fit`` does that itself).
      priors: ``"weak"`` (default, :data:`chinplan.inference.model.DEFAULT_PRIORS`; for the Kaplan laws
        :data:`chinplan.inference.model.DEFAULT_KAPLAN_PRIORS`), ``"informed"`` (Chinchilla law only:
        :data:`chinplan.inference.model.INFORMED_PRIORS`, centred on Hoffmann et al. 2022 / Besiroglu
        et al. 2024), or a :class:`~chinplan.inference.model.Priors`,
        :class:`~chinplan.inference.model.InformedPriors`, :class:`~chinplan.inference.model.KaplanPriors` or
        :class:`~chinplan.inference.model.DataConstrainedPriors`. None means ``"weak"``.
      likelihood: on log loss: ``"student_t"`` (default), ``"normal"`` or ``"huber"``
        (:class:`chinplan.inference.model.HuberLike`, Huber's density with k = 1.345).
      law: ``"chinchilla"`` (default; E + A/N^alpha + B/D^beta), ``"kaplan"`` (Kaplan et al.
        2020: [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D) or ``"kaplan_irreducible"`` (the
        same plus an irreducible loss E) or ``"data_constrained"`` (Muennighoff et al. 2023:
        the Chinchilla law of effective N' and D' with decay constants R_D*, R_N*; the runs
        need a ``unique_tokens`` column; seed repeats of one configuration are pooled,
        :func:`chinplan.inference.model.data_constrained_model`).
      log_likelihood: store the pointwise log-likelihood (group ``log_likelihood``, variable
        ``log_loss``, dims chain x draw x run) for LOO/WAIC. Off by default (files stay small).
      target_accept_prob: NUTS's target acceptance probability. The Chinchilla law's chains
        start near a Huber point fit of the runs (each site moved by up to
        :data:`~chinplan.inference.sampler.START_RADIUS` in unconstrained coordinates, per
        chain), the other laws' at the prior median (docs/CALIBRATION.md: where the chains
        start).
      progress: a progress bar over the NUTS steps (tqdm); None shows it when stderr is a
        terminal.
      extrapolation: learn the extrapolation component of the uncertainty
        (:mod:`chinplan.extrapolation`) from leave-the-largest-out refits (5 more NUTS runs
        of :data:`FOLD_CHAINS` chains with the same compiled sampler). None means on for
        the Chinchilla law.
      max_retries: the convergence gate: when R-hat > 1.01 or any divergence, refit with
        twice the warm-up, then also target acceptance 0.95, then also fresh chain starts
        (new keys) and twice ``num_draws`` per chain, at most this many times. A bulk ESS < 400 alone is answered by more
        draws: ``num_chains`` more chains (new keys, the same compiled chain), while retries
        are left, so the posterior may hold a multiple of ``num_chains`` chains; an R-hat
        above the limit that the added chains show gets the next refit. One chain has
        no R-hat, which no retry mends
        (:func:`~chinplan.inference.convergence.retry_may_help`). What was done is recorded in the attrs
        (``fit_attempts``, ``converged``).
      max_epochs: data-constrained law only: runs repeating their data more than this many
        epochs (tokens / unique_tokens) are left out, with a warning, because the law does
        not describe them (docs/DATA_CONSTRAINED.md: beyond about 8 epochs its errors grow
        several-fold in both directions, and far beyond it some runs overfit).
        ``math.inf`` keeps every run. Recorded in the attrs (``max_epochs``, ``runs_left_out``).

      allow_unconverged: what to do when the gate still fails after ``max_retries``: False
        (default) raises :class:`~chinplan.inference.posterior.ConvergenceError`, whose
        ``.posterior`` holds the draws for inspection, so no band of an unconverged fit is
        ever taken for a result; True returns the posterior with a ConvergenceWarning.

    Returns:
      A :class:`Posterior` with ``num_chains * num_draws`` draws (a multiple of that when a
      low ESS asked for more chains; see ``max_retries``).

    Raises:
      ConvergenceError: the fit did not pass the convergence gate (``allow_unconverged=False``).
    """
    for name, value, low in (("num_draws", num_draws, 1), ("num_warmup", num_warmup, 0), ("num_chains", num_chains, 1), ("max_retries", max_retries, 0)):
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
    log_likelihood = _checks.flag("log_likelihood", log_likelihood)
    allow_unconverged = _checks.flag("allow_unconverged", allow_unconverged)
    progress = None if progress is None else _checks.flag("progress", progress)
    if extrapolation is None:
        extrapolation = law == "chinchilla"
    if extrapolation not in (True, False):
        raise ValueError(f"extrapolation must be None, True or False, got {extrapolation!r}")
    if extrapolation and law != "chinchilla":
        raise ValueError(f"extrapolation=True needs law='chinchilla' (the component moves the Chinchilla law's valley), got law={law!r}")
    priors, priors_name = _resolve_priors(law, priors)
    runs = load_runs(runs)
    values_per_draw = 16 + (len(runs) if log_likelihood else 0)  # what check_size counts a kept draw as
    check_size(num_chains, num_warmup, num_draws, len(runs), values_per_draw, posterior_file.MAX_BYTES)
    extra, left_out, dtype = (), 0, jnp.result_type(float)
    if law == "data_constrained":
        runs, left_out = _within_epochs(runs, max_epochs)
        if priors.base is not None:  # hashable floats (the compiled sampler is cached by its options)
            _checks.law(LawParams(*priors.base), "priors.base")
            priors = priors._replace(base=tuple(float(x) for x in priors.base))
    check_identifiable(runs)
    arrays = runs_arrays(runs)
    # what the likelihood sees, on the host in float64: the runs, or their configurations
    # (seed repeats pooled) for the data-constrained law
    fitted = config_arrays(runs) if law == "data_constrained" else arrays
    log_n, log_d, log_loss = (jnp.asarray(a, dtype=dtype) for a in (fitted.log_n, fitted.log_d, fitted.log_loss))
    if law == "data_constrained":
        extra = tuple(jnp.asarray(a, dtype=dtype) for a in (fitted.log_u, fitted.repeats, fitted.within_ss))
    if progress is None:
        progress = sys.stderr.isatty()
    if law == "chinchilla":
        model = chinchilla_model
        model_kwargs = {"priors": priors}
        if likelihood != "student_t":  # the default call stays exactly as it always was
            model_kwargs["likelihood"] = likelihood
    elif law == "data_constrained":
        model = data_constrained_model
        model_kwargs = {"priors": priors, "likelihood": likelihood, "seed_noise": bool(np.any(fitted.repeats > 1))}
    else:
        model = kaplan_model
        model_kwargs = {"priors": priors, "likelihood": likelihood, "irreducible": law == "kaplan_irreducible"}
    sampled = sampled_sites(law, likelihood, fixed_base=law == "data_constrained" and priors.base is not None,
                            seed_noise=model_kwargs.get("seed_noise", False))
    weight = jnp.ones_like(log_n)
    data = (log_n, log_d, log_loss, weight) + extra
    settings = dict(num_warmup=num_warmup, target_accept_prob=float(target_accept_prob))
    # the sampler sees the runs padded (weight 0) to a bucket size: nearby data sets share
    # one compiled chain; a seed-pooled configuration's padding has one run and no spread
    fill = (None, 1.0, 0.0) if law == "data_constrained" else ()

    def prepare(weight):
        """(the sampler's data for the runs with this weight, all ones or a leave-out fold;
        where its chains start: the Chinchilla law's near a point fit of those runs), once
        per weight: the gate's refits reuse it."""
        padded = pad_runs(log_n, log_d, log_loss, weight, extra, fill)
        return padded, (_point_start(*padded[:4], priors, likelihood) if law == "chinchilla" else None)

    def run(prepared, run_key, chains=num_chains, draws=num_draws):
        """NUTS on ``prepare(weight)``: one compiled sampler for the fit and its folds."""
        padded, start = prepared
        return sample_nuts(
            model,
            padded,
            model_kwargs,
            init_values=start,
            key=run_key,
            num_draws=draws,
            num_chains=chains,
            chain_method=chain_method,
            progress=progress,
            **settings,
        )

    # the gate: each failed check gets what can mend it, while retries are left. Stuck chains
    # (R-hat) and divergences get a fresh run with the next escalation: longer warm-up, then
    # smaller steps, then fresh starts with chains twice as long (an R-hat just above the
    # limit after all that is slow mixing, which longer chains mend; the last refit is always
    # such a one, even where more chains took a retry before it). A low ESS alone gets
    # more draws: as many chains again from new keys (the same compiled chain; independent
    # chains' ESS adds up), within the file's limits. An R-hat that more chains reveal is a
    # stuck chain like any other.
    everything = prepare(weight)
    samples, diverging = run(everything, key)
    problems = gate_problems(samples, diverging, sampled)
    attempts, run_key, escalation, draws = [{**settings, "problems": problems}], key, 0, num_draws
    while problems and len(attempts) <= max_retries:
        if retry_may_help(problems):
            escalation += 1
            settings["num_warmup"] = 2 * num_warmup
            if escalation >= 2:
                settings["target_accept_prob"] = max(0.95, float(target_accept_prob))
            if escalation >= 3 or len(attempts) == max_retries:  # the third refit, or the last one
                run_key = jax.random.fold_in(key, escalation - 1)
                draws = 2 * num_draws
            try:
                check_size(num_chains, settings["num_warmup"], draws, len(runs), values_per_draw, posterior_file.MAX_BYTES)
            except ValueError:  # chains twice as long would pass a limit: keep their length
                draws = num_draws
            samples, diverging = run(everything, run_key, draws=draws)
            problems = gate_problems(samples, diverging, sampled)
            attempts.append({**settings, "problems": problems, **({"num_draws": draws} if draws != num_draws else {})})
        elif more_draws_may_help(problems):
            chains = samples[sampled[0]].shape[0] + num_chains
            try:
                check_size(chains, settings["num_warmup"], draws, len(runs), values_per_draw, posterior_file.MAX_BYTES)
            except ValueError:  # as many more chains would pass a limit: report the ESS instead
                break
            more, more_diverging = run(everything, jax.random.fold_in(jax.random.fold_in(key, 11), len(attempts)), draws=draws)
            samples = {k: np.concatenate([samples[k], more[k]]) for k in samples}
            diverging = np.concatenate([diverging, more_diverging])
            problems = gate_problems(samples, diverging, sampled)
            attempts.append({**settings, "num_chains": chains, "problems": problems, **({"num_draws": draws} if draws != num_draws else {})})
        else:  # one chain: no R-hat to mend
            break
    num_chains, num_draws = samples[sampled[0]].shape[:2]
    idata = _inference_data(model, model_kwargs, data, samples, diverging, log_likelihood)
    constant = {"log_n": ("run", fitted.log_n), "log_d": ("run", fitted.log_d)}
    if law == "data_constrained":  # one entry per configuration (seed repeats pooled)
        constant.update(log_u=("run", fitted.log_u), repeats=("run", fitted.repeats))
    idata.add_groups(constant_data=xr.Dataset(constant))
    idata.posterior.attrs.update(
        chinplan_version=_version(),
        data_sha256=_data_hash(*arrays, *([np.log(runs["unique_tokens"].to_numpy(np.float64))] if law == "data_constrained" else [])),
        num_runs=len(runs),
        priors=json.dumps(priors._asdict()),
        priors_name=priors_name,
        priors_type=type(priors).__name__,
        law=law,
        likelihood=likelihood,
        seed=json.dumps(np.asarray(jax.random.key_data(key)).ravel().tolist()),
        num_chains=num_chains,
        num_draws=num_draws,
        num_warmup=settings["num_warmup"],
        target_accept_prob=settings["target_accept_prob"],
        fit_attempts=json.dumps(attempts),
        converged=int(not attempts[-1]["problems"]),
        sampler=("numpyro NUTS, dense mass matrix, chains started near a Huber point fit (chinplan jitted chains)" if law == "chinchilla"
                 else "numpyro NUTS, dense mass matrix, init_to_median (chinplan jitted chains)"),  # fmt: skip
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    if likelihood == "huber":
        idata.posterior.attrs["huber_k"] = HUBER_K
    if law == "data_constrained":
        idata.posterior.attrs.update(
            max_epochs=float(max_epochs), runs_left_out=int(left_out),
            fixed_sites=",".join(LAW_SITES) if priors.base is not None else "",
        )
    if extrapolation:
        fold_key, draw_key = jax.random.split(jax.random.fold_in(key, 7))
        folds = {}
        for i, (name, kept) in enumerate(fold_masks(arrays.log_n, arrays.log_d).items()):
            fold_samples, _ = run(prepare(jnp.asarray(kept, log_n.dtype)), jax.random.fold_in(fold_key, i), min(num_chains, FOLD_CHAINS))
            folds[name] = ({k: np.asarray(fold_samples[k], np.float64).reshape(-1) for k in LAW_SITES}, kept)
        minima = isoflop_minima(runs)
        hyper = learn(arrays.log_n, arrays.log_d, arrays.log_loss, folds, minima)
        drawn = sample_discrepancy(hyper, num_chains * num_draws, key=draw_key)
        line = _allocation(samples, minima, arrays, drawn, key=jax.random.fold_in(key, 8))
        shape = (num_chains, num_draws)
        group = xr.Dataset({k: (("chain", "draw"), np.asarray(v, np.float64).reshape(shape)) for k, v in drawn.items()})
        group.attrs.update(hyper.to_attrs())
        if line is not None:
            group.attrs.update(line.to_attrs())
        idata.add_groups(extrapolation=group)
    posterior = Posterior(idata)
    if allow_unconverged:
        posterior.warn_if_unconverged()
    else:
        posterior.raise_if_unconverged()
    return posterior


def _allocation(samples: dict, minima, arrays, drawn: dict, *, key):
    """The allocation predictive from the law and the fitted runs' isoFLOP minima
    (:mod:`chinplan.inference.allocation`): with a line, each draw's valley offset ``c`` and
    drift ``v`` (replacing the folds' shared drift in ``drawn``); None without one."""
    x0 = Domain.of(arrays.log_n, arrays.log_d).log10_compute
    law_line = law_line_draws(samples, x0)
    line = fit_line(law_line, minima, x0)
    if line is not None:
        drawn.update(sample_valley(line, law_line, key=key))
    return line


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chinplan")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


