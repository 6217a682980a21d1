"""Scenario sweeps: a TOML grid of scenarios in, bands of every quantity out.

The library side of ``chinplan sweep``: a Python user runs the same sweep as the command line::

    scenarios = chinplan.decide.sweep.load_scenarios("scenarios.toml")
    dataset = chinplan.decide.sweep.run_sweep(scenarios, posterior.params, key=jax.random.key(0))
    frame = chinplan.decide.sweep.sweep_frame(dataset)  # one row per scenario

The schema is :data:`SCENARIOS_SCHEMA`. Per draw, each scenario is planned (the Chinchilla
optimum of a budget, Hoffmann et al. 2022 Eq. 4; an optimum for a target loss, Sardana et al.
2024; or a given design) and priced (:func:`chinplan.costs.tco`) by one kernel,
:func:`chinplan.engine.kernels.sweep_kernel`; the engine reduces over draws. Errors are
``ValueError`` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os

import numpy as np

from chinplan import _checks, costs, engine
from chinplan.decide import risk as decide
from chinplan.engine import kernels
from chinplan.extrapolated import ExtrapolatedLaw, carried_smallest, plan_decades_below, plan_decades_beyond
from chinplan.deployment import DECODE_MODES, PRECISIONS, build_deployment, describe  # noqa: F401  (re-exported)
from chinplan.format import SCENARIOS_SCHEMA, parse_human, quantile_name  # noqa: F401  (re-exported)
from chinplan.optima import sensible_budget
from chinplan.uncertain import LogNormal, LogUniform, Uniform

__all__ = [
    "SWEEP_OUTPUTS",
    "MAX_SCENARIOS",
    "PRECISIONS",
    "SCENARIOS_SCHEMA",
    "Scenarios",
    "build_deployment",
    "describe",
    "load_scenarios",
    "run_sweep",
    "sweep_frame",
    "write_parquet",
    "PARQUET_METADATA_KEY",
]

#: Quantities a sweep can write (per scenario, bands over draws).
SWEEP_OUTPUTS = (
    "n", "d", "tokens_per_param", "loss", "train_flops", "inference_flops", "flops",
    "train_gpu_hours", "inference_gpu_hours", "gpu_hours", "train_dollars", "inference_dollars", "dollars",
)  # fmt: skip
#: The most scenarios one sweep may have (its bands are held in memory, then written).
MAX_SCENARIOS = 10_000_000
#: The most band cells (scenarios x outputs x quantiles, 8 bytes each, held in memory and in the
#: parts folder) one sweep may have: MAX_SCENARIOS with the default 6 outputs and 3 quantiles.
MAX_CELLS = MAX_SCENARIOS * 6 * 3
#: Precisions a hardware preset may be used at (the peak-throughput fields of a Hardware).

DEFAULT_QUANTILES = (0.05, 0.5, 0.95)
_PLAN_AXES = ("compute", "target_loss", "n", "d")
#: Serving models of the decode: fixed MFU, or the roofline (:mod:`chinplan.costs`).

_HARDWARE_KEYS = ("hardware", "precision", "inference_hardware", "inference_precision")
#: Deployment fields a scenario file may fix (not vary on the grid): the accelerators' peaks,
#: for hardware that has no preset.
_PEAK_KEYS = ("peak_flops", "inference_peak_flops")
#: Fixed numbers of the roofline decode (not grid axes): see :class:`chinplan.costs.Deployment`.
_ROOFLINE_KEYS = ("bytes_per_weight", "kv_bytes_per_token")
#: Grid axes that exist only under the roofline decode.
_ROOFLINE_AXES = ("batch", "context", "memory_bandwidth")
_DEFAULT_OUTPUTS = {
    "compute": ("n", "d", "tokens_per_param", "loss", "gpu_hours", "dollars"),
    "target_loss": ("n", "d", "tokens_per_param", "gpu_hours", "dollars"),  # the loss is the target
    "design": ("loss", "gpu_hours", "dollars"),
}
_DISTRIBUTIONS = {"lognormal": LogNormal, "uniform": Uniform, "loguniform": LogUniform}


@dataclasses.dataclass
class Scenarios:
    """A parsed scenario file: the grid axes, the plan, the deployment and what to report."""

    axes: dict  # name -> 1-D float array, in file order
    plan: str  # "compute", "target_loss" or "design"
    optimum: str  # with target_loss: "cost", "flops" or "chinchilla"
    outputs: tuple
    quantiles: tuple
    deployment: costs.Deployment
    described: dict
    p_target: float | None = None  # [sweep] p_target: also report P(plan's loss <= it)
    sha256: str | None = None  # of the file's bytes that were parsed (a resumed sweep's identity)

    @property
    def shape(self) -> tuple:
        return tuple(len(v) for v in self.axes.values())




# --------------------------------------------------------------------------------------
# Deployments from preset names.
# --------------------------------------------------------------------------------------


def _toml_module():
    try:
        import tomllib

        return tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli

            return tomli
        except ModuleNotFoundError:
            raise ValueError("reading a scenario file needs Python 3.11+ or the 'tomli' package") from None


def _table_of(document: dict, name: str, where: str) -> dict:
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: '{name}' must be a table [{name}]")
    return value


def _scalar(value, key: str, where: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: {key} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_human(value)
        except ValueError as err:
            raise ValueError(f"{where}: {key}: {err}") from None
    raise ValueError(f"{where}: {key} must be a number, got {value!r}")


def _axis(value, key: str, where: str) -> np.ndarray:
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("values", "logspace", "linspace"):
            forms = "{values = [...]}, {logspace = [lo_exp, hi_exp, num]} or {linspace = [lo, hi, num]}"
            raise ValueError(f"{where}: {key} must be a number, a list, {forms}; got {value!r}")
        ((form, spec),) = value.items()
        if form == "values":
            return _axis(spec, f"{key}.values", where)
        num = spec[2] if isinstance(spec, list) and len(spec) == 3 else None
        if not (isinstance(num, int) and not isinstance(num, bool) and num >= 1):
            raise ValueError(f"{where}: {key}.{form} must be [start, stop, num] with an integer num >= 1, got {spec!r}")
        if num > MAX_SCENARIOS:  # refused before the array (8 bytes a point) is built
            raise ValueError(f"{where}: {key}.{form} has {num:,} points, more than {MAX_SCENARIOS:,} scenarios; split the sweep")
        start, stop = (_scalar(v, f"{key}.{form}", where) for v in spec[:2])
        array = (np.logspace if form == "logspace" else np.linspace)(start, stop, num)
    else:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError(f"{where}: {key} must not be empty")
        array = np.array([_scalar(v, key, where) for v in values], np.float64)
    if np.isnan(array).any():  # before the repeat check: NaN is not a value repeated
        raise ValueError(f"{where}: {key} gives NaN (values must be numbers), got {value!r}")
    if len(np.unique(array)) != len(array):
        raise ValueError(f"{where}: {key} repeats a value")
    return array


def _axis_length(value) -> int:
    """The number of points an axis declares, read from the TOML without building it (a
    malformed axis counts 1 here and is refused by :func:`_axis`)."""
    if isinstance(value, dict) and len(value) == 1:
        ((form, spec),) = value.items()
        if form == "values":
            return _axis_length(spec)
        num = spec[2] if isinstance(spec, list) and len(spec) == 3 else None
        return num if isinstance(num, int) and not isinstance(num, bool) and num >= 1 else 1
    return max(1, len(value)) if isinstance(value, list) else 1


def _check_axis_range(name: str, values: np.ndarray, where: str) -> None:
    finite = np.all(np.isfinite(values))
    if name in _PLAN_AXES:
        ok, valid = finite and np.all(values > 0), "finite and > 0"
    elif name.startswith("mfu"):
        ok, valid = finite and np.all((values > 0) & (values <= 1)), "in (0, 1]"
    elif name == "batch":
        ok, valid = finite and np.all(values >= 1), "finite and >= 1"
    elif name == "memory_bandwidth":
        ok, valid = finite and np.all(values > 0), "finite and > 0"
    else:
        ok, valid = finite and np.all(values >= 0), "finite and >= 0"
    if not ok:
        raise ValueError(f"{where}: grid.{name} values must be {valid}, got {values.tolist()}")


def _distribution(value: dict, key: str, where: str):
    if len(value) != 1 or next(iter(value)) not in _DISTRIBUTIONS:
        forms = "{lognormal = [median, sigma]}, {uniform = [lo, hi]} or {loguniform = [lo, hi]}"
        raise ValueError(f"{where}: deployment.{key} must be a number or {forms}; got {value!r}")
    ((kind, spec),) = value.items()
    if not (isinstance(spec, list) and len(spec) == 2):
        raise ValueError(f"{where}: deployment.{key}.{kind} must be a pair of numbers, got {spec!r}")
    a, b = (_scalar(v, f"deployment.{key}.{kind}", where) for v in spec)
    try:
        return _DISTRIBUTIONS[kind](a, b)
    except ValueError as err:  # a distribution checks its parameters when it is built
        raise ValueError(f"{where}: deployment.{key}: {err}") from None


def _check_keys(where: str, sweep: dict, grid: dict, dep: dict) -> None:
    for table, name, allowed in (
        (sweep, "sweep", ("quantiles", "outputs", "optimum", "p_target")),
        (grid, "grid", _PLAN_AXES + kernels.DEPLOYMENT_FIELDS),
        (dep, "deployment", _HARDWARE_KEYS + ("decode",) + _PEAK_KEYS + _ROOFLINE_KEYS + kernels.DEPLOYMENT_FIELDS),
    ):
        for key in table:
            if key not in allowed:
                raise ValueError(f"{where}: unknown key {name}.{key} (expected one of {', '.join(allowed)})")


def _settings(where: str, sweep: dict, plan: str):
    """sweep.optimum, sweep.outputs and sweep.quantiles, checked."""
    optimum = sweep.get("optimum", "cost")
    if optimum not in kernels.OPTIMA:
        raise ValueError(f"{where}: sweep.optimum must be 'cost', 'flops' or 'chinchilla', got {optimum!r}")
    if "optimum" in sweep and plan != "target_loss":
        raise ValueError(f"{where}: sweep.optimum applies only to a grid.target_loss sweep")
    outputs = sweep.get("outputs", list(_DEFAULT_OUTPUTS[plan]))
    if not isinstance(outputs, list) or not outputs:
        raise ValueError(f"{where}: sweep.outputs must be a non-empty list, got {outputs!r}")
    for i, name in enumerate(outputs):
        if name not in SWEEP_OUTPUTS:
            raise ValueError(f"{where}: sweep.outputs: unknown quantity {name!r} (choose from {', '.join(SWEEP_OUTPUTS)})")
        if name in outputs[:i]:
            raise ValueError(f"{where}: sweep.outputs names {name!r} twice, got {outputs!r}; give each quantity once")
    quantiles = sweep.get("quantiles", list(DEFAULT_QUANTILES))
    is_level = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1  # noqa: E731
    if not isinstance(quantiles, list) or not quantiles or not all(is_level(v) for v in quantiles):
        raise ValueError(f"{where}: sweep.quantiles must be a non-empty list of levels in [0, 1], got {quantiles!r}")
    names = [quantile_name(v) for v in quantiles]
    twice = next((i for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:  # one column per level: two levels of one name would be written once
        first = quantiles[names.index(names[twice])]
        raise ValueError(f"{where}: sweep.quantiles gives {first!r} and {quantiles[twice]!r}, both the column {names[twice]!r}; "
                         f"give distinct levels (at most 6 significant digits apart), got {quantiles!r}")  # fmt: skip
    p_target = sweep.get("p_target")
    if p_target is not None:
        if plan == "target_loss":
            raise ValueError(f"{where}: sweep.p_target applies to grid.compute and grid.n/grid.d sweeps "
                             "(with grid.target_loss, 1 - unreachable_fraction is the chance of reaching it)")  # fmt: skip
        p_target = _scalar(p_target, "sweep.p_target", where)
        if not (math.isfinite(p_target) and p_target > 0):
            raise ValueError(f"{where}: sweep.p_target must be a finite loss > 0, got {p_target!r}")
    return optimum, tuple(outputs), tuple(float(v) for v in quantiles), p_target


def _deployment_of(where: str, dep: dict, axes: dict):
    names = {}
    for key in _HARDWARE_KEYS:
        if key in dep:
            value = dep[key]
            choices = sorted(costs.HARDWARE) if "hardware" in key else PRECISIONS
            canonical = value.strip().lower() if isinstance(value, str) else value  # A100 is a100, BF16 bf16
            if canonical not in choices:
                raise ValueError(f"{where}: deployment.{key} must be one of {', '.join(choices)} (any case), got {value!r}")
            names[key] = canonical
    for key, preset in (("peak_flops", "hardware"), ("inference_peak_flops", "inference_hardware")):
        if key in dep and preset in dep:
            raise ValueError(f"{where}: give deployment.{preset} or deployment.{key}, not both")
    decode = dep.get("decode", "mfu")
    if decode not in DECODE_MODES:
        raise ValueError(f"{where}: deployment.decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    names["decode"] = decode
    on_grid = [k for k in _ROOFLINE_AXES if k in axes]
    if on_grid and decode != "roofline":
        raise ValueError(f"{where}: grid.{on_grid[0]} needs deployment.decode = \"roofline\"")
    fields = {}
    for key in _PEAK_KEYS + _ROOFLINE_KEYS + kernels.DEPLOYMENT_FIELDS:
        if key in dep:
            value = dep[key]
            fields[key] = _distribution(value, key, where) if isinstance(value, dict) else _scalar(value, f"deployment.{key}", where)
    serving = [k for k in ("input_tokens", "output_tokens") if k in axes or k in fields]
    if ("queries" in axes or "queries" in fields) and not serving:
        raise ValueError(f"{where}: queries needs deployment.input_tokens or deployment.output_tokens (or a grid of them)")
    names.setdefault("hardware", "h100")
    names.setdefault("precision", "bf16")
    try:
        deployment, described = build_deployment(**names, **fields)
        costs.validate_deployment(deployment)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return deployment, described


def load_scenarios(path: str | os.PathLike) -> Scenarios:
    """Reads and validates a sweep scenario file (see :data:`SCENARIOS_SCHEMA`).

    Raises:
      ValueError: a missing or malformed file, an unknown key, a bad value; the message names
        the file and the key.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"scenario file {path!r} does not exist")
    where = os.path.basename(path)
    toml = _toml_module()
    with open(path, "rb") as handle:  # read once: the bytes parsed are the bytes hashed (a pipe reads once)
        data = handle.read()
    document = _parse_toml(toml, data, where)
    unknown = sorted(set(document) - {"sweep", "grid", "deployment"})
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (expected the tables [sweep], [grid], [deployment])")
    sweep, grid, dep = (_table_of(document, name, where) for name in ("sweep", "grid", "deployment"))
    _check_keys(where, sweep, grid, dep)

    size = math.prod(_axis_length(value) for value in grid.values())  # before any axis is built
    if size > MAX_SCENARIOS:
        raise ValueError(f"{where}: [grid] has {size:,} scenarios, more than {MAX_SCENARIOS:,}; split the sweep")
    axes = {key: _axis(value, f"grid.{key}", where) for key, value in grid.items()}
    for key, values in axes.items():
        _check_axis_range(key, values, where)
    plans = [k for k in ("compute", "target_loss") if k in axes] + (["design"] if {"n", "d"} & set(axes) else [])
    if len(plans) != 1 or (plans == ["design"] and not {"n", "d"} <= set(axes)):
        raise ValueError(f"{where}: [grid] needs exactly one plan: grid.compute, grid.target_loss, or grid.n with grid.d")
    plan = plans[0]
    both = sorted(set(axes) & set(dep))
    if both:
        key = both[0]
        raise ValueError(f"{where}: {key} is both a grid axis (grid.{key}) and fixed (deployment.{key}); give it once")
    optimum, outputs, quantiles, p_target = _settings(where, sweep, plan)
    cells = size * len(outputs) * len(quantiles)  # what memory and the parts folder hold, not only scenarios
    _checks.affordable(f"{where}: the sweep's {size:,} scenarios x {len(outputs)} outputs x {len(quantiles)} quantiles",
                       cells, MAX_CELLS, "band cells", "give fewer quantiles, outputs or scenarios, or split the sweep")  # fmt: skip
    deployment, described = _deployment_of(where, dep, axes)
    return Scenarios(axes, plan, optimum, outputs, quantiles, deployment, described, p_target, hashlib.sha256(data).hexdigest())


def _parse_toml(toml, data: bytes, where: str) -> dict:
    """The TOML document in ``data`` (UTF-8, a leading byte-order mark allowed)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{where}: not UTF-8 text (TOML files are UTF-8): byte {err.start} is {data[err.start:err.start + 1]!r}") from None
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as err:
        raise ValueError(f"{where}: malformed TOML: {err}") from None
    except RecursionError:
        raise ValueError(f"{where}: malformed TOML: arrays or tables nested too deeply to be a scenario file") from None


# --------------------------------------------------------------------------------------
# Running it.
# --------------------------------------------------------------------------------------


def run_sweep(scenarios: Scenarios, params, *, key=None, progress: bool = False, domain=None, smallest=None, checkpoint=None):
    """Bands of every output for every scenario: an ``xarray.Dataset`` over (quantile, *axes).

    Args:
      scenarios: from :func:`load_scenarios`.
      params: posterior draws of the law: LawParams with a leading draw axis, or the
        extrapolation-aware draws of :meth:`chinplan.Posterior.extrapolated_params` (the
        default of ``chinplan sweep``; target-loss plans are then solved numerically per
        draw, :mod:`chinplan.extrapolated_optima`, about a thousand times the work of the
        law's closed forms).
      key: PRNG key of the deployment's distributions (required if it has any).
      progress: show a progress bar.
      domain: the fitted runs' largest log10 (compute, params, tokens)
        (:attr:`chinplan.Posterior.domain`); taken from extrapolation-aware draws when omitted.
      smallest: the fitted runs' smallest log10 (compute, params)
        (:meth:`chinplan.extrapolated.Smallest.of` of their log N, log D); taken from
        extrapolation-aware draws when omitted (:attr:`~chinplan.extrapolated.ExtrapolatedLaw.smallest`);
        not reported when neither knows it.
      checkpoint: a :class:`chinplan.decide.resume.Checkpoint`: evaluate the scenarios (flattened
        in C order) in its chunks, saving each and skipping those it holds already (resume).

    With ``p_target`` (compute and design sweeps) it holds ``p_target`` per scenario: the
    share of draws whose plan has loss <= the scenario file's ``sweep.p_target``.
    With a ``target_loss`` grid the dataset also holds ``unreachable_fraction`` per scenario
    (draws that cannot reach the target, whose plan counts as inf). With a domain it holds
    ``decades_beyond``: how far beyond the fitted runs each scenario's (median) plan lies;
    with ``smallest`` it holds ``decades_below``: how far below the smallest fitted run.
    """
    import xarray as xr

    names = tuple(scenarios.axes)
    theta = decide.draw_pairs(params, scenarios.deployment, key=key)
    if scenarios.plan == "target_loss":
        _checks.reachable("grid.target_loss", scenarios.axes["target_loss"], decide._constants(theta.law).E, every=False)
    if scenarios.plan == "design":  # a fixed design's costs scale with its training FLOPs 6 N D
        costs.check_design(scenarios.axes["n"][:, None], scenarios.axes["d"][None, :], "grid.n x grid.d")
    if scenarios.plan == "compute":
        sensible_budget("grid.compute", scenarios.axes["compute"], decide.median_params(decide._constants(theta.law)))
    # Axis k varies along dimension k: the engine broadcasts them to the full grid.
    grids = [v.reshape([-1 if i == k else 1 for i in range(len(names))]) for k, v in enumerate(scenarios.axes.values())]
    kernel = kernels.sweep_kernel(scenarios.plan, scenarios.optimum, names, scenarios.outputs)
    reach = None
    if scenarios.p_target is not None:
        reach = kernels.sweep_reach_kernel(scenarios.plan, names, float(scenarios.p_target))
    if checkpoint is None:
        values = _bands_of(kernel, reach, theta, scenarios, grids, progress)
    else:
        values = _chunked_bands(kernel, reach, theta, scenarios, grids, checkpoint, progress)
    variables = {name: (("quantile", *names), values[name]) for name in scenarios.outputs}
    if reach is not None:
        variables["p_target"] = (names, decide.draw_fraction(theta, values["p_target"]))
    if scenarios.plan == "target_loss":
        unreachable = decide.draw_fraction(theta, decide.unreachable_fraction(theta, scenarios.axes["target_loss"]))
        index = names.index("target_loss")
        shape = [len(v) if i == index else 1 for i, v in enumerate(scenarios.axes.values())]
        variables["unreachable_fraction"] = (names, np.broadcast_to(unreachable.reshape(shape), scenarios.shape).copy())
    if domain is None and isinstance(theta.law, ExtrapolatedLaw):
        domain = np.asarray(theta.law.domain)[0]
    if domain is not None:
        beyond = _decades_beyond(scenarios, variables, np.asarray(domain, np.float64))
        if beyond is not None:
            variables["decades_beyond"] = (names, beyond)
    if smallest is None:
        smallest = carried_smallest(theta.law)
    if smallest is not None:
        below = _plan_distance(scenarios, variables, lambda n, d: plan_decades_below(smallest, n, d),
                               lambda c: np.maximum(0.0, smallest[0] - np.log10(c)))  # fmt: skip
        if below is not None:
            variables["decades_below"] = (names, below)
    coords = {"quantile": np.asarray(scenarios.quantiles), **scenarios.axes}
    return xr.Dataset(variables, coords=coords)


def _bands_of(kernel, reach, theta, scenarios: Scenarios, grids, progress: bool) -> dict:
    """The bands of every output over ``grids`` (and ``p_target``, the mean of ``reach``)."""
    result = engine.bands(kernel, theta, *grids, q=scenarios.quantiles, progress=progress)
    values = {name: np.asarray(result.values[name], np.float64) for name in scenarios.outputs}
    if reach is not None:
        shape = np.broadcast_shapes(*(np.shape(g) for g in grids))
        values["p_target"] = np.broadcast_to(np.asarray(engine.probability(reach, theta, *grids), np.float64), shape)
    return values


def _chunked_bands(kernel, reach, theta, scenarios: Scenarios, grids, checkpoint, progress: bool) -> dict:
    """:func:`_bands_of`, scenario chunk by scenario chunk, through ``checkpoint``."""
    shape, chunk = scenarios.shape, checkpoint.chunk
    total = math.prod(shape)
    flat = [np.broadcast_to(g, shape).reshape(-1) for g in grids]
    count = -(-total // chunk)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count, unit="chunk", desc="chinplan sweep", leave=False, initial=len(checkpoint.done()))
    parts = []
    for i in range(count):
        size = min(chunk, total - i * chunk)
        shapes = {name: (len(scenarios.quantiles), size) for name in scenarios.outputs}
        if reach is not None:
            shapes["p_target"] = (size,)
        part = checkpoint.load(i, shapes)
        if part is None:
            rows = slice(i * chunk, (i + 1) * chunk)
            part = _bands_of(kernel, reach, theta, scenarios, [f[rows] for f in flat], False)
            checkpoint.save(i, part)
            if bar is not None:
                bar.update(1)
        parts.append(part)
    if bar is not None:
        bar.close()
    values = {name: np.concatenate([p[name] for p in parts], axis=1).reshape(-1, *shape) for name in scenarios.outputs}
    if reach is not None:
        values["p_target"] = np.concatenate([p["p_target"] for p in parts]).reshape(shape)
    return values


def _decades_beyond(scenarios: Scenarios, variables: dict, domain: np.ndarray) -> np.ndarray | None:
    """Decades beyond the fitted runs (:func:`chinplan.extrapolation.decades_beyond`) of each
    scenario's plan (:func:`_plan_distance`)."""
    return _plan_distance(scenarios, variables, lambda n, d: plan_decades_beyond(domain, n, d),
                          lambda c: np.maximum(0.0, np.log10(c) - domain[0]))  # fmt: skip


def _plan_distance(scenarios: Scenarios, variables: dict, of_plan, of_compute) -> np.ndarray | None:
    """A distance from the fitted runs of each scenario's plan: ``of_plan(n, d)`` of the design
    itself, or of the median plan (n, d) when those are outputs, or (for compute plans)
    ``of_compute(budget)``; None when the plan is not known."""
    axes = scenarios.axes
    grid = dict(zip(axes, np.meshgrid(*axes.values(), indexing="ij")))
    if scenarios.plan == "design":
        return of_plan(grid["n"], grid["d"])
    if "n" in variables and "d" in variables:
        mid = int(np.argmin(np.abs(np.asarray(scenarios.quantiles) - 0.5)))
        return of_plan(variables["n"][1][mid], variables["d"][1][mid])
    if scenarios.plan == "compute":
        return of_compute(grid["compute"])
    return None


def sweep_frame(dataset):
    """One row per scenario: the axis values, then ``<output>_q5``, ``<output>_q50``, ... columns."""
    import pandas as pd

    first = next(iter(dataset.data_vars))
    names = [dim for dim in dataset[first].dims if dim != "quantile"]  # the axes, in file order
    mesh = np.meshgrid(*(dataset[n].values for n in names), indexing="ij")
    columns = {n: m.reshape(-1) for n, m in zip(names, mesh)}
    for var in dataset.data_vars:
        array = dataset[var].transpose(*(["quantile"] if "quantile" in dataset[var].dims else []), *names).values
        if "quantile" in dataset[var].dims:
            for k, level in enumerate(dataset["quantile"].values):
                columns[f"{var}_{quantile_name(float(level))}"] = array[k].reshape(-1)
        else:
            columns[var] = array.reshape(-1)
    frame = pd.DataFrame(columns)
    frame.attrs.update(dataset.attrs)  # the provenance travels with the table
    return frame


#: The key of the Parquet schema metadata that holds a sweep's provenance (JSON).
PARQUET_METADATA_KEY = b"chinplan"


def write_parquet(frame, path) -> None:
    """Writes a :func:`sweep_frame` table to Parquet with its provenance (``frame.attrs``: the
    posterior and its hash, seed, deployment, chinplan version, ...) as JSON under the schema
    metadata key :data:`PARQUET_METADATA_KEY` (``pyarrow.parquet.read_schema(path).metadata``)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    provenance = json.dumps({str(k): v if isinstance(v, (str, int, float)) else str(v) for k, v in frame.attrs.items()})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), PARQUET_METADATA_KEY: provenance.encode()})
    pq.write_table(table, path)
