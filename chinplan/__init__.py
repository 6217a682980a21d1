"""chinplan: Bayesian Chinchilla scaling-law planning in JAX.

The pipeline, module by module: data (runs) -> model/fit (posterior over the law's
constants) -> law/costs (per-point maths) -> engine (draws x scenarios, reduced to bands)
-> decide (probabilities, risk) -> cli/plots (outputs). The Huber fit (huber) is the
frequentist anchor beside the Bayesian fit; arch turns a parameter count into a shape.
"""

from chinplan import arch, compare_models, costs, datasets, decide, huber, plots
from chinplan.arch import (
    TransformerShape,
    lora_params,
    pytree_params,
    shape_for_params,
    training_memory_bytes,
    transformer_params,
)
from chinplan.costs import (
    A100,
    H100_SXM,
    H200,
    HARDWARE,
    PFLOPS_DAY,
    Cost,
    Deployment,
    Hardware,
    LogNormal,
    LogUniform,
    Uniform,
    cost_optimal,
    data_constrained_optimal,
    inference_optimal,
    sample_deployment,
    tco,
    weighted_inference_tokens,
    with_cost_draws,
)
from chinplan.engine import (
    DEFAULT_QUANTILES,
    Bands,
    bands,
    bands_dataset,
    cvar,
    draw_quantiles,
    expectation,
    probability,
    sort_over_draws,
    to_dataset,
)
from chinplan.decide import (
    chance_constrained,
    cost_bands,
    cost_cvar,
    evaluate_designs,
    expected_cost,
    prob_cheaper,
    prob_target,
    regret_compute,
    smallest_model,
    target_cost_bands,
)
from chinplan.data import load_runs
from chinplan.huber import HuberBootstrap, HuberFit, huber_bootstrap, huber_fit
from chinplan.compare_models import average_plans, compare
from chinplan.model import INFORMED_PRIORS, KaplanParams
from chinplan.fit import ConvergenceWarning, Posterior, default_posterior, fit
from chinplan.law import (
    BESIROGLU_2024,
    HOFFMANN_2022,
    HOFFMANN_2022_PRINTED,
    MUENNIGHOFF_2023,
    PRESETS,
    Allocation,
    LawParams,
    compute_optimal,
    effective_data,
    effective_params,
    log_loss,
    loss,
    optimal_for_loss,
    params_for_loss,
    tokens_per_parameter,
    training_flops,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "datasets",
    "load_runs",
    "fit",
    "Posterior",
    "ConvergenceWarning",
    "default_posterior",
    "LawParams",
    "Allocation",
    "HOFFMANN_2022",
    "HOFFMANN_2022_PRINTED",
    "BESIROGLU_2024",
    "MUENNIGHOFF_2023",
    "PRESETS",
    "loss",
    "log_loss",
    "compute_optimal",
    "optimal_for_loss",
    "tokens_per_parameter",
    "effective_data",
    "effective_params",
    "training_flops",
    "params_for_loss",
    # engine
    "Bands",
    "bands",
    "expectation",
    "probability",
    "cvar",
    "draw_quantiles",
    "sort_over_draws",
    "to_dataset",
    "bands_dataset",
    "DEFAULT_QUANTILES",
    # costs
    "costs",
    "Hardware",
    "A100",
    "H100_SXM",
    "H200",
    "HARDWARE",
    "PFLOPS_DAY",
    "Deployment",
    "Cost",
    "LogNormal",
    "Uniform",
    "LogUniform",
    "sample_deployment",
    "with_cost_draws",
    "tco",
    "inference_optimal",
    "cost_optimal",
    "weighted_inference_tokens",
    "data_constrained_optimal",
    # decisions
    "decide",
    "prob_target",
    "expected_cost",
    "cost_bands",
    "cost_cvar",
    "prob_cheaper",
    "smallest_model",
    "chance_constrained",
    "evaluate_designs",
    "regret_compute",
    "target_cost_bands",
    # model choices
    "compare_models",
    "compare",
    "average_plans",
    "INFORMED_PRIORS",
    "KaplanParams",
    # frequentist anchors
    "huber",
    "huber_fit",
    "huber_bootstrap",
    "HuberFit",
    "HuberBootstrap",
    # architecture
    "arch",
    "TransformerShape",
    "transformer_params",
    "pytree_params",
    "training_memory_bytes",
    "lora_params",
    "shape_for_params",
    # outputs
    "plots",
]
