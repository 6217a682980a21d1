"""chinplan: Bayesian Chinchilla scaling-law planning in JAX.

The pipeline, module by module: data (runs) -> model/fit (posterior over the law's
constants) -> law/optima/costs (per-point maths) -> kernels/engine (draws x scenarios,
reduced to bands) -> decide (probabilities, risk) -> sweep/cli/plots (outputs). The Huber
fit (huber) is the frequentist anchor beside the Bayesian fit; arch turns a parameter count
into a shape.

``import chinplan`` loads nothing but the standard library (so ``chinplan --help`` starts
without JAX); every public name is imported on first use. The modules that pull in pandas, xarray,
arviz, numpyro or matplotlib (data, datasets, fit, posterior, model, huber, decide,
compare_models, calibration, sweep, plots) are imported on first use of one of their names.
"""

from __future__ import annotations

import importlib
import sys
import types
from importlib import metadata as _metadata


try:
    __version__ = _metadata.version("chinplan")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: Submodules imported on first attribute access (they pull in pandas, xarray, arviz,
#: numpyro or matplotlib, or are rarely needed).
_LAZY_MODULES = (
    "arch",
    "costs",
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
    "Deployment": "costs",
    "Hardware": "costs",
    "sample_deployment": "costs",
    "tco": "costs",
    "token_seconds": "costs",
    "training_days": "costs",
    "gpus_for_days": "costs",
    "DataConstrainedParams": "law",
    "weighted_inference_tokens": "costs",
    "with_cost_draws": "costs",
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
    "cost_optimal": "optima",
    "data_constrained_optimal": "optima",
    "inference_optimal": "optima",
    "optimal_for_loss": "optima",
    "params_for_loss": "optima",
    "smallest_budget": "optima",
    "tokens_per_parameter": "optima",
    "DEFAULT_QUANTILES": "quantiles",
    "draw_quantiles": "quantiles",
    "sort_over_draws": "quantiles",
    "LogNormal": "uncertain",
    "LogUniform": "uncertain",
    "Uniform": "uncertain",
    "load_runs": "data",
    "fit": "fit",
    "Posterior": "posterior",
    "ConvergenceWarning": "posterior",
    "default_posterior": "posterior",
    "INFORMED_PRIORS": "model",
    "KaplanParams": "model",
    "HuberFit": "huber",
    "HuberBootstrap": "huber",
    "huber_fit": "huber",
    "huber_bootstrap": "huber",
    "compare": "compare_models",
    "average_plans": "compare_models",
    "prob_target": "decide",
    "expected_cost": "decide",
    "cost_bands": "decide",
    "cost_cvar": "decide",
    "prob_cheaper": "decide",
    "smallest_model": "decide",
    "chance_constrained": "decide",
    "evaluate_designs": "decide",
    "regret_compute": "regret",
    "target_cost_bands": "decide",
}


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
    "ConvergenceWarning",
    "Cost",
    "cost_bands",
    "cost_cvar",
    "cost_optimal",
    "costs",
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
