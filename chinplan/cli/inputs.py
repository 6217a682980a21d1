"""What every command reads from its options: posterior draws, keys, deployments, checks.

The commands (:mod:`chinplan.cli.plan`, :mod:`.costs`, :mod:`.fit`, :mod:`.plot`,
:mod:`.next_runs`, :mod:`.sweep`) turn parsed options into library inputs here, once, so each
check has one owner: the draws a command works on (``--posterior``, ``--draws``,
``--uncertainty``), the PRNG key of each use of randomness (``--seed``), the deployment of the
deployment options, quantile levels, output paths, and how far beyond the fitted runs an
answer lies. Loads the library (JAX); imported only when a command runs.

``plan``, ``tco``, ``compare`` and ``smallest`` read the posterior's draws with
:func:`chinplan.inference.posterior_file.read_draws` (h5py, decoded once; no arviz, xarray,
pandas or numpyro: :class:`FileDraws`); the other commands, and any file the fast reader does
not decode, get the full :class:`chinplan.inference.posterior.Posterior`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from chinplan import _checks, _files
from chinplan.cli.parser import CliError, Range, UsageError
from chinplan.decide import risk as decide
from chinplan import deployment
from chinplan.format import human_flops
from chinplan.extrapolated import Domain, ExtrapolatedLaw, Smallest, decades_beyond, from_draws
from chinplan.inference import posterior_file
from chinplan.law import LawParams, log_g
from chinplan.uncertain import Uniform

#: Key streams of the commands' randomness: thinning the draws, sampling costs.
THIN, COSTS = 0, 1


@dataclasses.dataclass
class CommandDraws:
    """The law draws a command works on (possibly a random subset of the posterior)."""

    params: object  # LawParams with a leading draw axis
    num_draws: int
    source: str
    posterior: object  # the chinplan.Posterior, or its draws alone (FileDraws)
    theta: object  # the same draws as an ExtrapolatedLaw (zero discrepancy for --uncertainty law)
    uncertainty: str


def shipped_posterior_path() -> str | None:
    """The embedded posterior's file (:func:`chinplan.inference.posterior.shipped_posterior_path`),
    found without importing the inference stack."""
    from importlib import resources

    path = resources.files("chinplan") / "datasets" / "chinchilla_posterior.nc"  # chinplan.datasets imports pandas
    return os.fspath(path) if isinstance(path, os.PathLike) else None


class FileDraws:
    """What a command needs of a Chinchilla posterior, from its draws alone
    (:func:`chinplan.inference.posterior_file.read_draws`): the same values, dtypes and
    extrapolation as :class:`chinplan.inference.posterior.Posterior` (tests/test_cli_speed.py
    checks them equal), and the full Posterior (arviz) only when asked, by :meth:`to_arviz`."""

    LAW_SITES = ("log_E", "log_A", "log_B", "alpha", "beta")

    def __init__(self, path: str, data: dict):
        self._path, self._data, self._full = path, data, None
        self.attrs = data["attrs"]
        self.law = "chinchilla"
        self.likelihood = str(self.attrs.get("likelihood", "student_t"))
        self.num_draws = int(data["posterior"]["alpha"].size)

    def draws(self, name: str) -> np.ndarray:
        return np.asarray(self._data["posterior"][name]).reshape(-1)

    @property
    def has_extrapolation(self) -> bool:
        return self._data["extrapolation"] is not None

    @property
    def params(self) -> LawParams:
        dtype = jnp.result_type(float)
        logs = {name: jnp.asarray(self.draws(name), dtype=dtype) for name in self.LAW_SITES}
        return LawParams.from_logs(logs["log_E"], logs["log_A"], logs["log_B"], logs["alpha"], logs["beta"])

    @property
    def domain(self) -> Domain:
        if self.has_extrapolation:
            return Domain(*json.loads(self._data["extrapolation_attrs"]["extrapolation_domain"]))
        const = self._data["constant_data"]
        if "log_n" not in const or "log_d" not in const:
            raise ValueError("this posterior records no fitted runs (no constant_data group), so its domain is unknown")
        return Domain.of(const["log_n"], const["log_d"])

    @property
    def smallest(self) -> Smallest | None:
        """As :attr:`chinplan.inference.posterior.Posterior.smallest`."""
        const = self._data["constant_data"]
        if "log_n" not in const or "log_d" not in const:
            return None
        return Smallest.of(np.asarray(const["log_n"]).reshape(-1), np.asarray(const["log_d"]).reshape(-1))

    def extrapolated_params(self, uncertainty: str = "extrapolation") -> ExtrapolatedLaw:
        """As :meth:`chinplan.inference.posterior.Posterior.extrapolated_params` (one builder:
        :func:`chinplan.extrapolated.from_draws`)."""
        return from_draws(self.params, self.domain, None if uncertainty == "law" else self._data["extrapolation"], self.smallest)

    def extrapolation(self, n=None, d=None, *, compute=None):
        """Decades beyond the fitted runs, as :meth:`Posterior.extrapolation`."""
        if compute is not None:
            log_c = np.log(_checks.positive("compute", compute))
            med = {k: float(np.median(self.draws(k))) for k in self.LAW_SITES}
            a = med["beta"] / (med["alpha"] + med["beta"])
            log_n = float(log_g(med["log_A"], med["log_B"], med["alpha"], med["beta"])) + a * (np.asarray(log_c, np.float64) - np.log(6.0))
            log_d = log_c - np.log(6.0) - log_n
        else:
            log_n, log_d = np.log(_checks.positive("n", n)), np.log(_checks.positive("d", d))
        total, d_c, d_n, d_d = decades_beyond(self.domain, *np.broadcast_arrays(log_n, log_d))
        return _Extrapolation(total, d_c, d_n, d_d)

    @property
    def num_chains(self) -> int:
        return int(np.shape(self._data["posterior"]["alpha"])[0])

    def convergence_problems(self) -> list[str]:
        """The convergence gate recomputed from the draws, as :meth:`Posterior.convergence_problems`
        (one owner: :func:`chinplan.inference.convergence.gate_problems`; it loads arviz)."""
        from chinplan.inference.convergence import gate_problems

        diverging = self._data.get("diverging")
        draws = self._data["posterior"]
        return gate_problems(draws, np.zeros(1) if diverging is None else diverging, tuple(draws))

    def full(self):
        """The full :class:`chinplan.inference.posterior.Posterior` of the same file (arviz)."""
        if self._full is None:
            from chinplan.inference.posterior import Posterior

            self._full = Posterior.load(self._path)
        return self._full

    def to_arviz(self):
        return self.full().to_arviz()


class _Extrapolation(NamedTuple):
    decades: np.ndarray
    compute: np.ndarray
    params: np.ndarray
    tokens: np.ndarray


def read_posterior(path: str | None, *, fast: bool = False):
    """The posterior of ``--posterior`` (None: the embedded one): a :class:`FileDraws` when
    ``fast`` and the file is a Chinchilla posterior the fast reader decodes, else the full
    :class:`chinplan.inference.posterior.Posterior` (with its checks and messages)."""
    source = shipped_posterior_path() if path is None else path
    if fast and source is not None:
        data = posterior_file.read_draws(source)
        if data is not None:
            return FileDraws(source, data)
    from chinplan.inference.posterior import Posterior, default_posterior

    return default_posterior() if path is None else Posterior.load(path)


def key_for(args, stream: int):
    """The JAX PRNG key of one use of randomness: fold_in(PRNGKey(--seed), stream)."""
    return jax.random.fold_in(jax.random.PRNGKey(args.seed), stream)


def load_draws(args, *, fast: bool = False) -> CommandDraws:
    """The draws of ``--posterior``/``--draws``/``--uncertainty``; ``fast``: read with
    :class:`FileDraws` where it can (the commands that need only the draws)."""
    path = getattr(args, "posterior", None)
    posterior = read_posterior(path, fast=fast)
    check_chinchilla_law(posterior, path, getattr(args, "command", None))
    check_convergence(posterior, path)
    uncertainty = getattr(args, "uncertainty", None)
    if uncertainty is None:
        uncertainty = "extrapolation" if posterior.has_extrapolation else "law"
        if not posterior.has_extrapolation:
            warn("the posterior has no extrapolation component (refit with chinplan fit): bands beyond the fitted runs are law-only")
    elif uncertainty == "extrapolation" and not posterior.has_extrapolation:
        raise CliError("--uncertainty extrapolation needs a posterior fitted with the extrapolation component (chinplan fit)")
    theta, total = posterior.extrapolated_params(uncertainty), posterior.num_draws
    wanted = getattr(args, "draws", None)
    if wanted is not None and wanted < total:  # seeded by (--seed, stream)
        theta, total = decide.subset_draws(theta, wanted, seed=[args.seed, THIN]), wanted
    source = path or f"embedded Chinchilla ({posterior.attrs.get('num_runs', 245)} runs)"
    return CommandDraws(theta.law, total, source, posterior, theta, uncertainty)


def convergence_problems(posterior, path) -> list[str] | None:
    """The convergence gate's failures (R-hat over chains, bulk ESS, divergences) of a posterior
    file, recomputed from its draws: a file's ``converged`` attribute is not trusted (a missing
    one is not a pass); [] when it passes, None when it cannot be checked (one chain has no
    R-hat). The shipped posterior (``path`` None) is not recomputed (tests/test_issue26b.py
    checks that it passes), so its hot path loads no arviz."""
    problems = []  # what the file's fit recorded, when it says it did not converge
    if not int(posterior.attrs.get("converged", 1)):
        attempts = json.loads(posterior.attrs.get("fit_attempts", "[]"))
        problems = attempts[-1]["problems"] if attempts else ["see chinplan fit"]
    if path is not None:
        chains = posterior.num_chains if isinstance(posterior, FileDraws) else int(posterior.to_arviz().posterior.sizes.get("chain", 1))
        if chains < 2:
            return None
        problems = posterior.convergence_problems() or problems
    return problems


def check_convergence(posterior, path) -> None:
    """Warns, in one line, when :func:`convergence_problems` finds any, or cannot check (one chain)."""
    problems = convergence_problems(posterior, path)
    if problems is None:
        warn(f"--posterior {path} holds 1 chain: R-hat compares chains, so its convergence cannot be checked "
             "(fit with --chains 2 or more)")  # fmt: skip
    elif problems:
        warn(f"the posterior did not converge ({'; '.join(problems[:2])}): its bands are not to be trusted")


def fitted_runs(posterior):
    """(log N, log D) of the fitted runs recorded in the posterior file, or None."""
    data = posterior._data["constant_data"] if isinstance(posterior, FileDraws) else posterior.to_arviz().get("constant_data")
    if data is None or "log_n" not in data or "log_d" not in data:
        return None
    values = (data["log_n"], data["log_d"])
    return tuple(np.asarray(getattr(v, "values", v), np.float64).reshape(-1) for v in values)


def below_decades(draws: CommandDraws, n, d) -> tuple[np.ndarray, float]:
    """Decades below the smallest fitted run (in compute, or in parameters when that is further)
    of plans (N, D), and the smallest fitted run's FLOPs (NaN when the file records no runs)."""
    from chinplan.extrapolated import plan_decades_below

    smallest = draws.posterior.smallest  # the one the draws carry (ExtrapolatedLaw.smallest), in float64
    if smallest is None:
        return np.zeros(np.broadcast_shapes(np.shape(n), np.shape(d))), math.nan
    return plan_decades_below(smallest, n, d), 10.0**smallest.log10_compute


#: What reads a posterior of another law than Chinchilla's (``chinplan fit --law ...`` says it).
OTHER_LAW_READERS = {
    "kaplan": "Python: Posterior.load(FILE).kaplan_params and .derived(compute) (Kaplan's own compute optimum)",
    "kaplan_irreducible": "Python: Posterior.load(FILE).kaplan_params and .derived(compute) (Kaplan's own compute optimum)",
    "data_constrained": "chinplan plan --unique-tokens U --posterior FILE, and Python: chinplan.decide.data_constrained",
}


def check_chinchilla_law(posterior, path, command=None) -> None:
    """Refuses, in one line, a posterior of another law (Kaplan, data-constrained) for the
    commands that read only the Chinchilla law's draws."""
    law = getattr(posterior, "law", "chinchilla")
    if law == "chinchilla":
        return
    name = f"chinplan {command}" if command else "this command"
    raise CliError(f"--posterior {path}: a {law.replace('_', '-')} law posterior; {name} reads only Chinchilla-law posterior files "
                   f"(chinplan fit --law chinchilla); this file is read by {OTHER_LAW_READERS.get(law, 'the Python API')}")  # fmt: skip


def beyond_rows(draws: CommandDraws, ext, n, d) -> list[dict]:
    """Rows of decades beyond the fitted runs (:meth:`Posterior.extrapolation`) and below the
    smallest of them (plans (N, D) given as ``n``, ``d``), for tables and JSON."""
    largest = 10.0 ** draws.posterior.domain.log10_compute
    below, smallest = below_decades(draws, n, d)
    return [
        {"decades": float(ext.decades[i]), "compute_decades": float(ext.compute[i]), "params_decades": float(ext.params[i]),
         "tokens_decades": float(ext.tokens[i]), "largest_fitted_compute": largest,
         "below_decades": float(below[i]), "smallest_fitted_compute": smallest}
        for i in range(len(ext.decades))
    ]  # fmt: skip


def beyond_note(what: str, beyond: dict, *, warn_below: bool = True) -> str:
    """One line: how far ``what`` lies beyond (or below) the fitted runs; a plan below the
    smallest fitted run also warns on stderr (the law is not checked there)."""
    if beyond.get("below_decades", 0.0) > 0.0:
        line = (f"{what} is {beyond['below_decades']:.1f} decades below the smallest fitted run "
                f"({human_flops(beyond['smallest_fitted_compute'])}): the law is not checked there")  # fmt: skip
        if warn_below:
            warn(line)
        return line
    if beyond["decades"] <= 0.0:
        return f"{what} lies inside the fitted runs (largest {human_flops(beyond['largest_fitted_compute'])})"
    return (f"{what} is {beyond['decades']:.1f} decades beyond the largest fitted run "
            f"({human_flops(beyond['largest_fitted_compute'])})")  # fmt: skip


def check_quantiles(q) -> list[float]:
    if not q or any(not 0.0 <= v <= 1.0 for v in q):
        raise CliError(f"--quantiles must lie in [0, 1], got {list(q)}")
    return [float(v) for v in q]


def central_quantile(q) -> tuple[int, str]:
    """The index of the quantile nearest 0.5 in ``q`` and what to call it: "median" only when
    it is 0.5 (``--quantiles 0.1 0.9`` has no median, and its 10% plan is not called one)."""
    i = int(np.argmin(np.abs(np.asarray(q, np.float64) - 0.5)))
    return i, "median" if q[i] == 0.5 else f"{100 * q[i]:g}% quantile"


def check_reachable(params, targets, name: str) -> None:
    """A target at or below E for every draw is an input error, not a result."""
    e_min = float(np.min(np.asarray(params.E, np.float64)))
    for target in np.atleast_1d(np.asarray(targets, np.float64)):
        if not target > e_min:
            raise CliError(f"{name} {target:g} is at or below the irreducible loss E of every posterior draw "
                           f"(lowest E {e_min:.4g}): give a loss above {e_min:.4g}")  # fmt: skip


def token_split(args) -> tuple[float, float]:
    explicit = args.input_tokens is not None or args.output_tokens is not None
    if args.tokens_per_query is not None and explicit:
        raise UsageError("give either --tokens-per-query or --input-tokens/--output-tokens, not both")
    if args.tokens_per_query is not None:
        out = args.tokens_per_query * args.output_share
        return args.tokens_per_query - out, out
    return args.input_tokens or 0.0, args.output_tokens or 0.0


def uncertain_value(value):
    """A number, or a range LO:HI from the command line as costs' Uniform(LO, HI)."""
    return Uniform(*value) if isinstance(value, Range) else value


def deployment_of(args, *, queries: float | None = None):
    """The Deployment of the deployment options, and its description for JSON."""
    input_tokens, output_tokens = token_split(args)
    queries = args.queries if queries is None else queries
    if queries > 0 and input_tokens + output_tokens == 0:
        raise UsageError("--queries > 0 needs --tokens-per-query or --input-tokens/--output-tokens")
    roofline = {"batch": args.batch, "context": args.context, "memory_bandwidth": args.memory_bandwidth}
    stray = [f"--{k.replace('_', '-')}" for k, v in roofline.items() if v is not None]
    if stray and args.decode != "roofline":
        raise UsageError(f"{', '.join(stray)} need --decode roofline")
    return deployment.build_deployment(
        decode=args.decode,
        **{k: float(v) for k, v in roofline.items() if v is not None},
        hardware=args.hardware,
        precision=args.precision,
        inference_hardware=args.inference_hardware,
        inference_precision=args.inference_precision,
        queries=queries,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        mfu_train=uncertain_value(args.mfu),
        mfu_prefill=uncertain_value(args.mfu_prefill),
        mfu_decode=uncertain_value(args.mfu_decode),
        price=uncertain_value(args.price),
        inference_price=uncertain_value(args.inference_price),
        **{k: getattr(args, k) for k in ("peak_flops", "inference_peak_flops") if getattr(args, k) is not None},
    )


def check_output(path, arg: str, suffixes, *inputs) -> None:
    if path is not None:  # before any work: the suffix, never an input (nor the shipped posterior), writable
        _files.check_output(path, inputs=(*inputs, shipped_posterior_path()), suffixes=suffixes, arg=arg, writable=True)


def overlays(args, draws) -> dict:
    """Fan and iso-loss extras: the fitted runs; the published models only on the embedded fit
    (a user's runs are in another tokenizer's nats)."""
    data = draws.posterior.to_arviz().get("constant_data")
    runs = None if data is None or "log_n" not in data else (np.exp(data["log_n"].values), np.exp(data["log_d"].values))
    return {"runs": runs, **({"references": {}} if getattr(args, "posterior", None) else {})}


def queries_grid(queries: float):
    if queries > 0:
        return np.logspace(math.log10(queries) - 3, math.log10(queries) + 3, 49)
    return np.logspace(6, 12, 49)


#: Inside :func:`warnings_once`: the warning lines said so far (innermost scope last).
_said: list[set] = []


@contextlib.contextmanager
def warnings_once():
    """Inside, each warning line is said once: a command that runs others in-process and
    reads the posterior more than once (``report``) warns about it once, not at every read."""
    _said.append(set())
    try:
        yield
    finally:
        _said.pop()


def warn(message: str) -> None:
    line = f"chinplan: warning: {message}"
    if _said:
        if line in _said[-1]:
            return
        _said[-1].add(line)
    print(line, file=sys.stderr)
