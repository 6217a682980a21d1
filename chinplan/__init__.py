"""chinplan: Bayesian Chinchilla scaling-law planning in JAX.

The pipeline, module by module: data (runs) -> model/fit (posterior over the law's
constants) -> law/costs (per-point maths) -> engine (draws x scenarios, reduced to bands)
-> decide (probabilities, risk) -> cli/plots (outputs).
"""

from chinplan import datasets
from chinplan.data import load_runs
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
]
