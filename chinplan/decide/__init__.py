"""Stage 4: decisions under the posterior, from the engine's bands.

:mod:`.risk` (probabilities, expected and tail costs, the smallest model, chance-constrained
plans: the questions a budget decision asks), :mod:`.regret` (the cost of planning with a
point estimate), :mod:`.design` (which runs to train next), :mod:`.data_constrained`
(plans with repeated data), :mod:`.sweep` and :mod:`.resume` (scenario sweeps from TOML and
their resumable checkpoints).

Imports the engine, the inference stage and the core; never plots or the command line.
``chinplan.decide.prob_target`` and its siblings are the public names of :mod:`.risk`.
"""

from chinplan.decide.risk import (
    chance_constrained,
    cheaper,
    cost_bands,
    cost_cvar,
    crossing,
    design_cost,
    draw_count,
    draw_fraction,
    draw_pairs,
    Draws,
    evaluate_designs,
    expected_cost,
    loss_at_most,
    median_params,
    params_for_loss,
    plan_bands,
    PlanCost,
    prob_cheaper,
    prob_lower_loss,
    prob_target,
    smallest_model,
    subset_draws,
    target_cost_bands,
    target_plan_cost,
    tco_bands,
    unreachable_fraction,
)

__all__ = [
    "chance_constrained",
    "cheaper",
    "cost_bands",
    "cost_cvar",
    "crossing",
    "design_cost",
    "draw_count",
    "draw_fraction",
    "draw_pairs",
    "Draws",
    "evaluate_designs",
    "expected_cost",
    "loss_at_most",
    "median_params",
    "params_for_loss",
    "plan_bands",
    "PlanCost",
    "prob_cheaper",
    "prob_lower_loss",
    "prob_target",
    "smallest_model",
    "subset_draws",
    "target_cost_bands",
    "target_plan_cost",
    "tco_bands",
    "unreachable_fraction",
]
