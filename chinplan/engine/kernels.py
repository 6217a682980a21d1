"""Every per-draw kernel ``fn(theta, *scenario)`` the library, CLI, plots and examples use.

A kernel is written for ONE posterior draw and ONE scenario; :mod:`chinplan.engine` maps it
over every draw x scenario and reduces over draws. ``theta`` is a
:class:`~chinplan.law.LawParams` of scalars for loss questions, or the pair
``(LawParams, Deployment)`` for cost questions (see :func:`chinplan.decide.draw_pairs`). Kernels
are module-level functions (or built once and cached) so the engine compiles each once.

Formulas: the loss L(N, D) = E + A N^-alpha + B D^-beta (Hoffmann et al. 2022, Eq. 2) and
its data-constrained form (Muennighoff et al. 2023) from :mod:`chinplan.law`; the TCO from
:func:`chinplan.costs.tco`; the optima from the library (Hoffmann Eq. 4; Sardana et al. 2024).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from chinplan import _checks, costs, extrapolated_optima, law, optima
from chinplan.costs import Cost, Deployment, cost_optimal
from chinplan.extrapolated import (
    ExtrapolatedLaw,
    extrapolated_log_loss,
    extrapolated_optimum_log,
)
from chinplan.format import records_html
from chinplan.law import LawParams, as_float, is_law
from chinplan.optima import compute_optimal, inference_optimal, optimal_for_loss

__all__ = [
    "law_of",
    "loss",
    "loss_repeated",
    "fresh_and_repeated",
    "data_constrained_plan",
    "epoch_value",
    "epochs_until",
    "loss_gap",
    "lower_loss",
    "loss_not_worse",
    "loss_at_most",
    "loss_at_most_repeated",
    "params_for_loss",
    "unreachable",
    "below_floor",
    "plan",
    "design_cost",
    "cost_field",
    "cheaper",
    "cheaper_at_queries",
    "dollars_at_queries",
    "optimum",
    "OPTIMA",
    "priced",
    "PlanCost",
    "target_plan_cost",
    "TCO_FIELDS",
    "DESIGN_FIELDS",
    "tco_point",
    "tco_kernel",
    "design_point",
    "DEPLOYMENT_FIELDS",
    "sweep_kernel",
    "sweep_reach_kernel",
]

PyTree = Any

#: Deployment fields a sweep may vary per scenario.
DEPLOYMENT_FIELDS = (
    "queries", "input_tokens", "output_tokens", "mfu_train", "mfu_prefill", "mfu_decode", "price", "inference_price",
    "batch", "context", "memory_bandwidth",
)  # fmt: skip


def extrapolated_of(theta: PyTree) -> ExtrapolatedLaw | None:
    """The :class:`~chinplan.extrapolation.ExtrapolatedLaw` of ``theta`` (itself, or the first of
    a ``(law, Deployment)`` pair), or None for law-only draws."""
    if isinstance(theta, ExtrapolatedLaw):
        return theta
    if isinstance(theta, tuple) and not is_law(theta) and isinstance(theta[0], ExtrapolatedLaw):
        return theta[0]
    return None


def law_of(theta: PyTree) -> LawParams:
    """The law of ``theta``: a LawParams itself, or the first of a ``(LawParams, Deployment)`` pair.

    Raises:
      TypeError: for extrapolation-aware draws, in kernels that have no extrapolation-aware
        form (the data-constrained loss): a law-only answer must not pass for an
        extrapolation-aware one.
    """
    if extrapolated_of(theta) is not None:
        raise TypeError(
            "this question is answered with the law's posterior only (the data-constrained law "
            "does not carry the extrapolation component): pass LawParams draws "
            "(Posterior.params, or --uncertainty law)"
        )
    return theta if is_law(theta) else theta[0]


# --------------------------------------------------------------------------------------
# Loss.
# --------------------------------------------------------------------------------------


def loss(theta: PyTree, n: ArrayLike, d: ArrayLike) -> jax.Array:
    """L(N, D) under this draw (Hoffmann et al. 2022, Eq. 2); for extrapolation-aware draws the
    law with the draw's discrepancy (:func:`chinplan.extrapolation.extrapolated_log_loss`)."""
    ext = extrapolated_of(theta)
    if ext is not None:
        return jnp.exp(extrapolated_log_loss(ext, jnp.log(as_float(n)), jnp.log(as_float(d))))
    return law.loss(law_of(theta), n, d)


def loss_repeated(theta: PyTree, n: ArrayLike, d: ArrayLike, unique_tokens: ArrayLike) -> jax.Array:
    """L(N, D) with D tokens drawn from ``unique_tokens`` unique ones (Muennighoff et al. 2023)."""
    return law.loss(law_of(theta), n, d, unique_tokens=unique_tokens)


def fresh_and_repeated(theta: PyTree, n: ArrayLike, d: ArrayLike, unique_tokens: ArrayLike) -> dict:
    """Fresh-data loss, repeated-data loss and their difference (the cost of repetition)."""
    fresh, repeated = loss(theta, n, d), loss_repeated(theta, n, d, unique_tokens)
    return {"fresh": fresh, "repeated": repeated, "cost": repeated - fresh}


def data_constrained_plan(theta: PyTree, compute: ArrayLike, unique_tokens: ArrayLike) -> dict:
    """The data-constrained compute-optimal plan under this draw (Muennighoff et al. 2023):
    N, D = C/(6N), epochs D/U and the loss (:func:`chinplan.optima.data_constrained_optimal`)."""
    plan = optima.data_constrained_optimal(law_of(theta), compute, unique_tokens)
    return {"n": plan.n, "d": plan.d, "epochs": plan.d / as_float(unique_tokens), "loss": plan.loss}


def epoch_value(theta: PyTree, n: ArrayLike, d: ArrayLike, unique_tokens: ArrayLike) -> dict:
    """What ``d = e U`` tokens over ``U`` unique ones cost and buy at ``n`` parameters, this draw.

    ``repeated`` L(N, D | U) and ``fresh`` L(N, D | D) (every token unique), ``cost`` their
    gap (0 at one epoch); ``gain`` L(N, D | U) - L(N, D + U | U) (one more epoch) and
    ``fresh_gain`` L(N, D | D) - L(N, D + U | D + U) (U more fresh tokens instead); ``token_value`` dD'/dD = exp(-(D/U - 1)/R_D*),
    a token's worth on its e-th pass relative to a fresh one (Muennighoff et al. 2023, Eq. 5).
    """
    u = as_float(unique_tokens)
    d = as_float(d)
    repeated, more = loss_repeated(theta, n, d, u), loss_repeated(theta, n, d + u, u)
    fresh, fresh_more = loss_repeated(theta, n, d, d), loss_repeated(theta, n, d + u, d + u)
    r_d, _ = law.decay_constants(law_of(theta))
    return {"repeated": repeated, "fresh": fresh, "cost": repeated - fresh, "gain": repeated - more,
            "fresh_gain": fresh - fresh_more, "token_value": jnp.exp(-(d / u - 1.0) / r_d)}


def epochs_until(theta: PyTree, fraction: ArrayLike) -> dict:
    """Epochs after which a further pass's tokens are worth less than ``fraction`` of fresh
    ones under this draw: exp(-(e - 1)/R_D*) = fraction, e = 1 + R_D* log(1/fraction)."""
    r_d, _ = law.decay_constants(law_of(theta))
    return {"epochs": 1.0 - r_d * jnp.log(as_float(fraction))}


def loss_gap(theta: PyTree, n_a, d_a, n_b, d_b) -> jax.Array:
    """L(B) - L(A) under this draw: positive when design A has the lower loss."""
    return loss(theta, n_b, d_b) - loss(theta, n_a, d_a)


def lower_loss(theta: PyTree, n_a, d_a, n_b, d_b) -> jax.Array:
    """Whether design A has strictly lower loss than design B under this draw."""
    return loss(theta, n_a, d_a) < loss(theta, n_b, d_b)


def loss_not_worse(theta: PyTree, n_a, d_a, n_b, d_b) -> jax.Array:
    """Whether design A's loss is at most design B's under this draw."""
    return loss(theta, n_a, d_a) <= loss(theta, n_b, d_b)


def loss_at_most(theta: PyTree, n: ArrayLike, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """Whether L(N, D) <= target for this draw (Hoffmann et al. 2022, Eq. 2)."""
    return loss(theta, n, d) <= as_float(target_loss)


def loss_at_most_repeated(theta: PyTree, n, d, target_loss, unique_tokens) -> jax.Array:
    """Whether the data-constrained loss (Muennighoff et al. 2023) is <= target."""
    return loss_repeated(theta, n, d, unique_tokens) <= as_float(target_loss)


def params_for_loss(theta: PyTree, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """The fewest parameters reaching ``target_loss`` with ``d`` tokens under this draw.

    N = [A / (l - E - B D^-beta)]^(1/alpha), ``inf`` when l <= E + B D^-beta; for
    extrapolation-aware draws :func:`chinplan.extrapolated_optima.params_for_loss`.
    """
    ext = extrapolated_of(theta)
    if ext is not None:
        return jnp.exp(extrapolated_optima.params_for_loss(ext, jnp.log(as_float(d)), jnp.log(as_float(target_loss))))
    return optima.params_for_loss(law_of(theta), d, target_loss)


def unreachable(theta: PyTree, d: ArrayLike, target_loss: ArrayLike) -> jax.Array:
    """Whether no N reaches ``target_loss`` with D tokens under this draw (N_i = inf)."""
    return jnp.isinf(params_for_loss(theta, d, target_loss))


def below_floor(theta: PyTree, target_loss: ArrayLike) -> jax.Array:
    """Whether no (N, D) at all reaches ``target_loss`` under this draw: l <= E for the law
    (L > E); for extrapolation-aware draws, no Chinchilla plan within the search range."""
    ext = extrapolated_of(theta)
    if ext is not None:
        return jnp.isinf(extrapolated_optima.optimal_for_loss(ext, target_loss, -jnp.inf).n)
    return target_loss <= law_of(theta).E


def plan(theta: PyTree, compute: ArrayLike) -> dict:
    """This draw's compute-optimal plan (Hoffmann et al. 2022, Eq. 4) with D/N; for an
    :class:`~chinplan.extrapolation.ExtrapolatedLaw` the plan moved by its valley drift and
    its loss with the level drift (:func:`chinplan.extrapolation.extrapolated_optimum_log`)."""
    ext = extrapolated_of(theta)
    if ext is not None:
        log_n, log_d, log_l = extrapolated_optimum_log(ext, jnp.log(as_float(compute)))
        return {"n": jnp.exp(log_n), "d": jnp.exp(log_d), "tokens_per_param": jnp.exp(log_d - log_n), "loss": jnp.exp(log_l)}
    best = compute_optimal(law_of(theta), compute)
    return {"n": best.n, "d": best.d, "tokens_per_param": best.d / best.n, "loss": best.loss}


# --------------------------------------------------------------------------------------
# Cost: theta = (LawParams, Deployment) of one draw.
# --------------------------------------------------------------------------------------


def design_cost(theta: tuple[LawParams, Deployment], n: ArrayLike, d: ArrayLike) -> Cost:
    """:func:`chinplan.costs.tco` of design (N, D) under this draw's deployment."""
    return costs.tco(n, d, theta[1])


def cost_field(field: str):
    """The kernel ``(theta, n, d) -> design_cost(theta, n, d).<field>``, built once per field."""
    return _cost_field(_checks.one_of("field", field, Cost._fields))


@functools.lru_cache(maxsize=None)
def _cost_field(field: str):
    def kernel(theta, n, d):
        return getattr(design_cost(theta, n, d), field)

    kernel.__name__ = f"cost_{field}"
    return kernel


def cheaper(theta: tuple[LawParams, Deployment], n_a, d_a, n_b, d_b) -> jax.Array:
    """Whether design A costs strictly fewer dollars than design B under this draw."""
    dep = theta[1]
    return costs.log_dollars(n_a, d_a, dep) < costs.log_dollars(n_b, d_b, dep)


def _at_queries(theta, queries):
    return theta[0], theta[1]._replace(queries=queries)


def cheaper_at_queries(theta, n_a, d_a, n_b, d_b, queries) -> jax.Array:
    """:func:`cheaper` with the deployment serving ``queries`` lifetime queries."""
    return cheaper(_at_queries(theta, queries), n_a, d_a, n_b, d_b)


def dollars_at_queries(theta, n, d, queries) -> jax.Array:
    """TCO in dollars of design (N, D) under this draw's deployment, served for ``queries``."""
    return design_cost(_at_queries(theta, queries), n, d).dollars


def _flops_optimal(law_params, target, deployment):
    tokens = costs.lifetime_tokens(deployment.queries, deployment.input_tokens, deployment.output_tokens)
    return inference_optimal(law_params, target, tokens)


#: The plan for a target loss under one draw: ``"cost"`` least dollars (Sardana et al. 2024
#: with prices), ``"flops"`` least training + lifetime inference FLOPs (Sardana et al. 2024),
#: ``"chinchilla"`` the training-only optimum (Hoffmann et al. 2022).
OPTIMA = {
    "cost": cost_optimal,
    "flops": _flops_optimal,
    "chinchilla": lambda law_params, target, deployment: optimal_for_loss(law_params, target),
}


def _log_weighted_tokens(kind: str, deployment: Deployment) -> jax.Array:
    """log of the inference tokens each ``kind`` of optimum weighs against training (-inf: none)."""
    if kind == "cost":
        return costs.log_weighted_inference_tokens(deployment)
    if kind == "flops":
        return jnp.log(costs.lifetime_tokens(deployment.queries, deployment.input_tokens, deployment.output_tokens))
    return jnp.asarray(-jnp.inf)


def optimum(theta: tuple[LawParams, Deployment], target_loss: ArrayLike, kind: str = "cost"):
    """This draw's ``kind`` optimum (one of :data:`OPTIMA`) for ``target_loss``: an Allocation.

    For extrapolation-aware draws, :func:`chinplan.extrapolated_optima.optimal_for_loss` with
    the same weighting of inference tokens (exactly the closed form where the law's plan lies
    inside the fitted runs or the draw has no discrepancy).
    """
    ext = extrapolated_of(theta)
    if ext is None:
        return OPTIMA[kind](theta[0], target_loss, theta[1])
    deployment = theta[1]
    law_plan = OPTIMA[kind](ext.law, target_loss, deployment)
    if kind == "cost" and deployment.batch is not None:  # roofline decode: dollars are not linear in N
        log_cost = functools.partial(costs._log_dollars, deployment=deployment)
        return extrapolated_optima.optimal_for_loss(ext, target_loss, None, law_plan, log_cost=log_cost)
    return extrapolated_optima.optimal_for_loss(ext, target_loss, _log_weighted_tokens(kind, deployment), law_plan)


def priced(n, d, loss_value, deployment: Deployment, fields) -> dict:
    """The plan (n, d, loss) and the requested quantities of its TCO; +inf where n or d is inf.

    An unreachable target gives n = d = inf; the TCO is evaluated at (1, 1) there (so no NaN
    enters a gradient) and replaced by inf: an honest order statistic over draws.
    """
    ok = jnp.isfinite(n) & jnp.isfinite(d)
    n1, d1 = jnp.where(ok, n, 1.0), jnp.where(ok, d, 1.0)
    cost = costs.tco(n1, d1, deployment)
    values = {"n": n, "d": d, "tokens_per_param": jnp.where(ok, d1 / n1, jnp.inf), "loss": loss_value}
    return {f: values[f] if f in values else jnp.where(ok, getattr(cost, f), jnp.inf) for f in fields}


class PlanCost(NamedTuple):
    """A plan (n, d) for a target loss and its total cost of ownership in dollars."""

    n: jax.Array
    d: jax.Array
    dollars: jax.Array

    def _repr_html_(self) -> str:
        """A notebook's view: one row per element, every number exact in ``data-values``."""
        return records_html("PlanCost: parameters N, tokens D, total cost", self._asdict())


def target_plan_cost(theta: tuple[LawParams, Deployment], target_loss: ArrayLike) -> PlanCost:
    """This draw's dollar-optimal plan for ``target_loss`` and its TCO.

    :func:`chinplan.costs.cost_optimal` under this draw's law and deployment (Sardana et al.
    2024), priced by :func:`priced`; ``inf`` everywhere if the target is at or below E.
    """
    best = optimum(theta, target_loss, "cost")
    return PlanCost(best.n, best.d, priced(best.n, best.d, best.loss, theta[1], ("dollars",))["dollars"])


TCO_FIELDS = (
    "n", "d", "tokens_per_param", "train_flops", "train_gpu_hours", "inference_gpu_hours", "gpu_hours",
    "train_dollars", "inference_dollars", "dollars",
)  # fmt: skip
DESIGN_FIELDS = ("loss", "train_gpu_hours", "gpu_hours", "train_dollars", "inference_dollars", "dollars")


def tco_point(theta, target, *, kind: str = "cost") -> dict:
    """This draw's inference-aware plan and Chinchilla plan for ``target``, priced; savings."""
    deployment = theta[1]
    best, chinchilla = optimum(theta, target, kind), optimum(theta, target, "chinchilla")
    a = priced(best.n, best.d, best.loss, deployment, TCO_FIELDS)
    b = priced(chinchilla.n, chinchilla.d, chinchilla.loss, deployment, TCO_FIELDS)
    ok = jnp.isfinite(a["dollars"]) & jnp.isfinite(b["dollars"])
    savings = jnp.where(ok, 1.0 - a["dollars"] / jnp.where(ok, b["dollars"], 1.0), jnp.nan)
    return {"optimal": a, "chinchilla": b, "savings": savings}


@functools.lru_cache(maxsize=None)
def tco_kernel(kind: str):
    """:func:`tco_point` for one ``kind`` of optimum, built once (the engine compiles it once)."""
    return functools.partial(tco_point, kind=kind)


def design_point(theta, n, d) -> dict:
    """Loss and TCO quantities (:data:`DESIGN_FIELDS`) of design (N, D) under this draw."""
    return priced(n, d, loss(theta, n, d), theta[1], DESIGN_FIELDS)


def _sweep_plan(plan_kind: str, kind: str, axis_names: tuple, theta, values):
    """One scenario's plan (n, d, loss) and deployment under one draw (see :func:`sweep_kernel`)."""
    law_params, deployment = theta
    scenario = dict(zip(axis_names, values))
    deployment = deployment._replace(**{k: v for k, v in scenario.items() if k in DEPLOYMENT_FIELDS})
    if plan_kind == "compute":
        chosen = plan(law_params, scenario["compute"])
        return chosen["n"], chosen["d"], chosen["loss"], deployment
    if plan_kind == "target_loss":
        chosen = optimum((law_params, deployment), scenario["target_loss"], kind)
        return chosen.n, chosen.d, chosen.loss, deployment
    n, d = scenario["n"], scenario["d"]
    return n, d, loss(law_params, n, d), deployment


@functools.lru_cache(maxsize=64)
def sweep_reach_kernel(plan_kind: str, axis_names: tuple, target: float):
    """Whether this draw's plan of a ``"compute"`` or ``"design"`` sweep scenario has loss
    <= ``target`` (its mean over draws is the sweep's ``p_target``), built once per layout."""

    def kernel(theta, *values):
        return _sweep_plan(plan_kind, "cost", axis_names, theta, values)[2] <= target

    return kernel


@functools.lru_cache(maxsize=64)
def sweep_kernel(plan_kind: str, kind: str, axis_names: tuple, outputs: tuple):
    """The per-draw kernel of one sweep layout, built once (so the engine compiles it once).

    ``plan_kind`` is ``"compute"`` (the Chinchilla optimum of each budget), ``"target_loss"``
    (the ``kind`` optimum, see :data:`OPTIMA`) or ``"design"`` (given n, d); axes named like
    a deployment field replace that field per scenario.
    """

    def kernel(theta, *values):
        n, d, loss_value, deployment = _sweep_plan(plan_kind, kind, axis_names, theta, values)
        return priced(n, d, loss_value, deployment, outputs)

    return kernel
