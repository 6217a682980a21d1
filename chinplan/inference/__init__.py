"""Stage 2 of the pipeline: from training runs to a posterior over the law's constants.

runs (:mod:`.runs`) -> numpyro models (:mod:`.model`) -> NUTS (:mod:`.sampler`) -> fit and
its convergence gate (:mod:`.fit`) -> :class:`~chinplan.inference.posterior.Posterior` and its
file (:mod:`.posterior`, :mod:`.posterior_file`), with the extrapolation component learned
from leave-the-largest-out folds (:mod:`.extrapolation`). Checks of the fit: back-tests and
predictive checks (:mod:`.calibration`), the leave-one-ladder-out back-test of N* bands
(:mod:`.ladders`), simulation-based calibration (:mod:`.sbc`), model
comparison (:mod:`.compare_models`) and the frequentist Huber anchor (:mod:`.huber`).

Imports only the core modules (``chinplan.law``, ``chinplan.extrapolated``, ...) and
``chinplan.datasets``; never the engine, decisions, plots or the command line.
"""
