"""chinplan: Bayesian Chinchilla scaling-law planning in JAX.

The pipeline, folder by folder (docs/ARCHITECTURE.md): the core maths at the top (law,
optima, costs, hardware, arch, uncertain, extrapolated, format and the boundary checks) ->
``inference/`` (runs -> posterior over the law's constants) -> ``engine/`` (draws x scenarios,
reduced to bands) -> ``decide/`` (probabilities, risk, sweeps) -> ``plots/`` and ``cli/``
(outputs). Imports point down that list only.

``import chinplan`` loads nothing but the standard library (so ``chinplan --help`` starts
without JAX); every public name is imported on first use. The modules that pull in pandas, xarray,
arviz, numpyro or matplotlib (data, datasets, fit, posterior, model, huber, decide,
compare_models, calibration, sweep, plots) are imported on first use of one of their names.

The module paths of earlier releases (``chinplan.posterior``, ``chinplan.extrapolation``,
``chinplan.calibration``, ...: :data:`MOVED_MODULES`) still import, as the same module
objects as their new homes.
"""

from __future__ import annotations

from chinplan import _program

if _program.is_program():  # the chinplan program: its signal handlers before anything else loads
    _program.end_at_once_on_signals()

import importlib  # noqa: E402
import importlib.abc  # noqa: E402
import importlib.machinery  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from importlib import metadata as _metadata  # noqa: E402


try:
    __version__ = _metadata.version("chinplan")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: Submodules imported on first attribute access (they pull in pandas, xarray, arviz,
#: numpyro or matplotlib, or are rarely needed).
_LAZY_MODULES = (
    "arch",
    "cli",
    "extrapolated",
    "hardware",
    "inference",
    "costs",
    "deployment",
    "engine",
    "law",
    "optima",
    "quantiles",
    "uncertain",
    "calibration",
    "compare_models",
    "data",
    "datasets",
    "decide",
    "data_constrained",
    "design",
    "extrapolated_optima",
    "extrapolation",
    "fit",
    "format",
    "huber",
    "kernels",
    "model",
    "plots",
    "posterior",
    "regret",
    "sbc",
    "sweep",
)

#: Public names imported on first access: name -> the submodule that defines it.
_LAZY_NAMES = {
    "TransformerShape": "arch",
    "lora_params": "arch",
    "pytree_params": "arch",
    "shape_for_params": "arch",
    "training_memory_bytes": "arch",
    "transformer_params": "arch",
    "A100": "costs",
    "H100_SXM": "costs",
    "H200": "costs",
    "HARDWARE": "costs",
    "PFLOPS_DAY": "costs",
    "Cost": "costs",
    "Deployment": "deployment",
    "Hardware": "costs",
    "sample_deployment": "deployment",
    "tco": "costs",
    "token_seconds": "costs",
    "training_days": "costs",
    "gpus_for_days": "costs",
    "DataConstrainedParams": "law",
    "weighted_inference_tokens": "costs",
    "with_cost_draws": "deployment",
    "Bands": "engine",
    "bands": "engine",
    "bands_dataset": "engine",
    "cvar": "engine",
    "expectation": "engine",
    "probability": "engine",
    "to_dataset": "engine",
    "BESIROGLU_2024": "law",
    "HOFFMANN_2022": "law",
    "HOFFMANN_2022_PRINTED": "law",
    "MUENNIGHOFF_2023": "law",
    "PRESETS": "law",
    "Allocation": "law",
    "LawParams": "law",
    "effective_data": "law",
    "effective_params": "law",
    "log_loss": "law",
    "loss": "law",
    "training_flops": "law",
    "compute_optimal": "optima",
    "cost_optimal": "costs",
    "data_constrained_optimal": "optima",
    "inference_optimal": "optima",
    "optimal_for_loss": "optima",
    "params_for_loss": "optima",
    "smallest_budget": "optima",
    "tokens_per_parameter": "optima",
    "DEFAULT_QUANTILES": "engine.quantile_network",
    "draw_quantiles": "engine.quantile_network",
    "sort_over_draws": "engine.quantile_network",
    "LogNormal": "uncertain",
    "LogUniform": "uncertain",
    "Uniform": "uncertain",
    "load_runs": "inference.runs",
    "fit": "inference.fit",
    "Posterior": "inference.posterior",
    "ConvergenceError": "inference.posterior",
    "ConvergenceWarning": "inference.posterior",
    "default_posterior": "inference.posterior",
    "INFORMED_PRIORS": "inference.model",
    "KaplanParams": "inference.model",
    "HuberFit": "inference.huber",
    "HuberBootstrap": "inference.huber",
    "huber_fit": "inference.huber",
    "huber_bootstrap": "inference.huber",
    "compare": "inference.compare_models",
    "average_plans": "inference.compare_models",
    "prob_target": "decide",
    "expected_cost": "decide",
    "cost_bands": "decide",
    "cost_cvar": "decide",
    "prob_cheaper": "decide",
    "smallest_model": "decide",
    "chance_constrained": "decide",
    "evaluate_designs": "decide",
    "regret_compute": "decide.regret",
    "target_cost_bands": "decide",
}


#: Documented module paths of earlier releases -> where the module lives now. ``import
#: chinplan.posterior`` (or ``from chinplan.fit import DEFAULT_FIT_SETTINGS``) imports the new
#: module and registers it under the old name too: one module object, two names.
MOVED_MODULES = {
    "calibration": "inference.calibration",
    "compare_models": "inference.compare_models",
    "data": "inference.runs",
    "data_constrained": "decide.data_constrained",
    "design": "decide.design",
    "extrapolation": "inference.extrapolation",
    "fit": "inference.fit",
    "huber": "inference.huber",
    "kernels": "engine.kernels",
    "model": "inference.model",
    "posterior": "inference.posterior",
    "quantiles": "engine.quantile_network",
    "regret": "decide.regret",
    "sbc": "inference.sbc",
    "sweep": "decide.sweep",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``chinplan.<old>`` as the module of :data:`MOVED_MODULES` (PEP 451 finder)."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix == __name__ and old in MOVED_MODULES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{MOVED_MODULES[spec.name.partition('.')[2]]}")

    def exec_module(self, module):
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"chinplan.{_LAZY_NAMES[name]}"), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"chinplan.{name}")
    else:
        raise AttributeError(f"module 'chinplan' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


class _Package(types.ModuleType):
    """Keeps ``chinplan.fit`` the function when the submodule of that name is imported.

    Importing ``chinplan.fit`` (the module) sets the package attribute ``fit`` to it; the
    public name is the function ``chinplan.fit.fit``, as it was when the package imported it
    eagerly.
    """

    def __setattr__(self, name, value):
        if name == "fit" and isinstance(value, types.ModuleType):
            value = value.fit
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = (
    "__version__",
    "A100",
    "Allocation",
    "arch",
    "average_plans",
    "Bands",
    "bands",
    "bands_dataset",
    "BESIROGLU_2024",
    "calibration",
    "chance_constrained",
    "compare",
    "compare_models",
    "compute_optimal",
    "ConvergenceError",
    "ConvergenceWarning",
    "Cost",
    "cost_bands",
    "cost_cvar",
    "cost_optimal",
    "costs",
    "deployment",
    "cvar",
    "data_constrained_optimal",
    "datasets",
    "decide",
    "default_posterior",
    "DEFAULT_QUANTILES",
    "Deployment",
    "draw_quantiles",
    "effective_data",
    "effective_params",
    "evaluate_designs",
    "expectation",
    "expected_cost",
    "fit",
    "H100_SXM",
    "H200",
    "HARDWARE",
    "Hardware",
    "HOFFMANN_2022",
    "HOFFMANN_2022_PRINTED",
    "huber",
    "huber_bootstrap",
    "huber_fit",
    "HuberBootstrap",
    "HuberFit",
    "inference_optimal",
    "INFORMED_PRIORS",
    "KaplanParams",
    "kernels",
    "LawParams",
    "load_runs",
    "log_loss",
    "LogNormal",
    "LogUniform",
    "lora_params",
    "loss",
    "MUENNIGHOFF_2023",
    "optimal_for_loss",
    "params_for_loss",
    "PFLOPS_DAY",
    "plots",
    "Posterior",
    "PRESETS",
    "prob_cheaper",
    "prob_target",
    "probability",
    "pytree_params",
    "regret_compute",
    "sample_deployment",
    "shape_for_params",
    "smallest_budget",
    "smallest_model",
    "sort_over_draws",
    "sweep",
    "target_cost_bands",
    "tco",
    "token_seconds",
    "training_days",
    "gpus_for_days",
    "DataConstrainedParams",
    "to_dataset",
    "tokens_per_parameter",
    "training_flops",
    "training_memory_bytes",
    "transformer_params",
    "TransformerShape",
    "Uniform",
    "weighted_inference_tokens",
    "with_cost_draws",
)
