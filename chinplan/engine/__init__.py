"""Stage 3: every posterior draw x every scenario, chunked and sharded, reduced to bands.

:mod:`.reductions` maps a per-point function over draws x scenarios and reduces over draws
as it goes (:func:`bands`, :func:`expectation`, :func:`probability`, :func:`cvar`);
:mod:`.quantile_network` is the exact sorting network behind the quantiles;
:mod:`.outputs` labels bands as xarray Datasets; :mod:`.kernels` holds every per-draw kernel the decisions and the command line evaluate;
:mod:`.programs` keeps those kernels compiled once per machine (opt-in: the command line).

Imports only the core modules. ``chinplan.engine.bands`` and its siblings are the public
names (also ``chinplan.bands``).
"""

from chinplan.engine.outputs import bands_dataset, to_dataset
from chinplan.engine.quantile_network import (
    DEFAULT_QUANTILES,
    draw_quantiles,
    sort_over_draws,
)
from chinplan.engine.reductions import (
    Bands,
    bands,
    cvar,
    expectation,
    probability,
    quantiles,
)

__all__ = [
    "Bands",
    "DEFAULT_QUANTILES",
    "bands",
    "bands_dataset",
    "cvar",
    "draw_quantiles",
    "expectation",
    "probability",
    "quantiles",
    "sort_over_draws",
    "to_dataset",
]
