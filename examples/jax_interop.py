"""Calling chinplan from your own JAX program: jit, grad, vmap over draws, and optax.

The question
    chinplan's formulas are plain JAX functions of one point (``chinplan.loss``,
    ``compute_optimal``, ``tco``, ``inference_optimal`` ...). Can a JAX user differentiate
    through them, batch them over posterior draws, and hand them to an optimiser, for
    design questions the library does not answer directly?

The method (five short demonstrations, all at Chinchilla's budget C = 5.76e23 FLOPs)
    A. ``jax.jit(jax.grad(...))`` of the loss along the budget line D = C / (6N) with respect
       to log N: negative for a model that is too small, zero at ``compute_optimal``,
       positive for one too big; the second derivative says how flat the optimum is. A
       trace counter shows the jitted function is compiled once for any new budget.
    B. ``jax.vmap`` over the posterior draws: the per-draw slope at N = 70B gives
       P(70B is larger than the optimum), cross-checked against ``chinplan.probability``;
       and the gradient of ``inference_optimal`` (a fixed-count Newton solve with an
       implicit-function gradient) gives d log N*/d log D_inf, how fast the right model
       shrinks as lifetime inference grows (Sardana et al. 2024).
    C. The engine with a user function that itself calls ``jax.grad``: ``chinplan.bands``
       of the slope at several sizes.
    D. ``optax.adam`` (cosine-decayed step size, a jitted ``lax.scan``) minimising the loss
       at the fixed budget over log N, for the posterior-median law (it must land on
       ``compute_optimal``) and for the posterior expected loss (it must land on the
       Bayes plan of ``chinplan.regret_compute``).
    E. ``optax.adam`` over the design (log N, log D) minimising training + serving dollars
       (``chinplan.costs.log_dollars``) subject to a loss target by a quadratic penalty
       with continuation (mu = 1e2 ... 1e6): for the median law it must land on
       ``chinplan.cost_optimal``; under the posterior, with a chance constraint
       P(L <= target) >= p written as "the p-quantile of the per-draw losses <= target"
       (``jnp.quantile`` is differentiable), the result is checked with
       ``chinplan.prob_target``.

How to read the output
    Each block prints the quantity, the optimiser's answer and the library's closed-form
    or engine answer side by side with their relative difference; they should agree to
    well under 1%.

Run::

    python examples/jax_interop.py
    python examples/jax_interop.py --draws 4000 --target-loss 1.98
    python examples/jax_interop.py --small
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import chinplan as cp
from chinplan.format import human_count as count
from chinplan.format import say

LOG6 = math.log(6.0)
TRACES = {"plan": 0}


# ----------------------------------------------------------------------------------------
# The user's JAX functions: written for one law, differentiable in log N (and log D).
# ----------------------------------------------------------------------------------------


def loss_on_budget(theta: cp.LawParams, log_n, log_c):
    """L(N, D) with D = C / (6N): the loss along the iso-FLOP line, as a function of log N."""
    return cp.law.loss_log(theta, log_n, log_c - LOG6 - log_n)


slope = jax.grad(loss_on_budget, argnums=1)  # dL / dlog N at fixed compute
curvature = jax.grad(slope, argnums=1)  # d2L / dlog N2


def slope_kernel(theta, n, compute):
    """Per-draw kernel for the engine: dL/dlog N at (N, C), through jax.grad."""
    return slope(theta, jnp.log(n), jnp.log(compute))


def too_big(theta, n, compute):
    """Whether N exceeds this draw's compute-optimal size at budget C."""
    return cp.compute_optimal(theta, compute).n < n


@jax.jit
def jitted_plan(theta, compute):
    """A user's jitted function calling chinplan; counts its traces."""
    TRACES["plan"] += 1  # runs only while tracing
    alloc = cp.compute_optimal(theta, compute)
    return alloc.n, alloc.d, slope(theta, jnp.log(alloc.n), jnp.log(compute))


def log_n_inference(theta, target, log_tokens):
    """log N* of the inference-aware optimum (Sardana et al. 2024) for lifetime tokens e^x."""
    return jnp.log(cp.inference_optimal(theta, target, jnp.exp(log_tokens)).n)


# ----------------------------------------------------------------------------------------
# optax: a jitted Adam loop, compiled once per objective and reused for new arguments.
# ----------------------------------------------------------------------------------------


def make_solver(objective, steps: int, lr: float):
    """``solve(x0, *args) -> x`` minimising ``objective(x, *args)`` with Adam + cosine decay."""
    optimiser = optax.adam(optax.cosine_decay_schedule(lr, steps))

    @jax.jit
    def solve(x0, *args):
        def step(carry, _):
            x, state = carry
            grad = jax.grad(objective)(x, *args)
            updates, state = optimiser.update(grad, state, x)
            return (optax.apply_updates(x, updates), state), None

        (x, _), _ = jax.lax.scan(step, (x0, optimiser.init(x0)), None, length=steps)
        return x

    return solve


def point_objective(x, theta, log_c):
    return loss_on_budget(theta, x, log_c)


def expected_objective(x, params, log_c):
    return jnp.mean(jax.vmap(loss_on_budget, in_axes=(0, None, None))(params, x, log_c))


def dollars_objective(z, theta, deployment, target, mu):
    """log dollars + mu * (violation of log L <= log target)^2, for one law and deployment."""
    log_n, log_d = z[0], z[1]
    dollars = cp.costs.log_dollars(jnp.exp(log_n), jnp.exp(log_d), deployment)
    excess = jnp.maximum(jnp.log(cp.law.loss_log(theta, log_n, log_d)) - jnp.log(target), 0.0)
    return dollars + mu * excess**2


def chance_objective(z, theta_draws, target, level, mu):
    """log E[dollars] over cost draws + mu * (violation of q_level(L_i) <= target)^2."""
    log_n, log_d = z[0], z[1]
    params, deployment = theta_draws
    n, d = jnp.exp(log_n), jnp.exp(log_d)
    dollars = jax.vmap(lambda dep: cp.tco(n, d, dep).dollars)(deployment)
    losses = jax.vmap(lambda th: cp.law.loss_log(th, log_n, log_d))(params)
    excess = jnp.maximum(jnp.log(jnp.quantile(losses, level)) - jnp.log(target), 0.0)
    return jnp.log(jnp.mean(dollars)) + mu * excess**2


MUS = (1e2, 1e3, 1e4, 1e5, 1e6)


def continuation(solve, z, *args):
    """Re-solve with a growing penalty weight, warm-starting each stage (one compilation)."""
    for mu in MUS:
        z = solve(z, *args, jnp.asarray(mu))
    return z


# ----------------------------------------------------------------------------------------
# Helpers.
# ----------------------------------------------------------------------------------------


def rel(a, b) -> float:
    return float(abs(float(a) / float(b) - 1.0))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=1000, help="posterior draws to use (at most 4,000 shipped)")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset of draws and cost draws")
    p.add_argument("--compute", type=float, default=5.76e23, help="FLOP budget C")
    p.add_argument("--target-loss", type=float, default=2.0, help="loss target of the dollar problem (E)")
    p.add_argument("--level", type=float, default=0.9, help="required P(L <= target) in the chance constraint")
    p.add_argument("--queries", type=float, default=1e9, help="lifetime queries (300 + 200 tokens each)")
    p.add_argument("--steps", type=int, default=400, help="Adam steps per solve")
    p.add_argument("--posterior", metavar="FILE", help="a posterior saved with Posterior.save (default: shipped)")
    p.add_argument("--small", action="store_true", help="tiny sizes (200 draws, fewer steps) for smoke tests")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    draws = min(args.draws, 200) if args.small else args.draws
    steps = min(args.steps, 300) if args.small else args.steps
    posterior = cp.Posterior.load(args.posterior) if args.posterior else cp.default_posterior()
    params = cp.decide.subset_draws(posterior.params, draws, seed=args.seed)  # a seeded subset
    n_draws = int(params.E.shape[0])
    law = cp.decide.median_params(params)  # one law: each constant's posterior median
    compute = float(args.compute)
    log_c = jnp.log(compute)
    plan = cp.compute_optimal(law, compute)
    say(f"chinplan from JAX: {n_draws} posterior draws (law uncertainty: the closed forms jit and grad go through); C = {compute:.3g} FLOPs; "
          f"median-law optimum N* = {count(plan.n)}, D* = {count(plan.d)}")

    # A. jit + grad along the budget line.
    g = jax.jit(slope)
    say("\nA. dL/dlog N along 6ND = C (median law), jitted jax.grad:")
    sizes = {"8B": 8e9, "70B": 70e9, "N* (compute_optimal)": float(plan.n), "280B": 280e9}
    grads = {}
    for label, n in sizes.items():
        grads[label] = float(g(law, jnp.log(n), log_c))
        slope_text = f"{grads[label]:+.2e}" + (" (zero at the optimum)" if abs(grads[label]) < 1e-5 else "")
        say(f"   {label:<21} N = {count(n):>6}  dL/dlog N = {slope_text}")
    x_star = jnp.log(plan.n)
    curv = float(jax.jit(curvature)(law, x_star, log_c))
    exact = float(loss_on_budget(law, x_star + math.log(2.0), log_c) - loss_on_budget(law, x_star, log_c))
    say(f"   d2L/dlog N2 at N* = {curv:.5f}: a model 2x too big loses {0.5 * curv * math.log(2) ** 2:.5f} nats "
          f"(quadratic), {exact:.5f} (exact)")
    for budget in (1e22, 1e23, 1e24):
        jitted_plan(law, jnp.asarray(budget, jnp.result_type(float)))
    say(f"   jitted_plan called for 3 budgets, traced {TRACES['plan']} time(s)")

    # B. vmap over draws.
    per_draw = jax.jit(jax.vmap(slope, in_axes=(0, None, None)))(params, jnp.log(70e9), log_c)
    p_vmap = float(jnp.mean(per_draw > 0))
    p_engine = float(cp.probability(too_big, params, 70e9, compute))
    say("\nB. jax.vmap over draws:")
    say(f"   P(70B is larger than the optimum): vmap of the slope {p_vmap:.3f}, chinplan.probability {p_engine:.3f}")
    target = float(plan.loss)
    elasticity = jax.jit(jax.vmap(jax.grad(log_n_inference, argnums=2), in_axes=(0, None, None)))
    e_draws = np.asarray(elasticity(params, target, jnp.log(1e13)), np.float64)
    e_q = np.quantile(e_draws[np.isfinite(e_draws)], [0.05, 0.5, 0.95])
    say(f"   d log N*/d log D_inf of inference_optimal at loss {target:.4f}, 10T inference tokens: "
          f"{e_q[1]:+.3f} [{e_q[0]:+.3f}, {e_q[2]:+.3f}] (median [5%, 95%])")

    # C. The engine with a user function that calls jax.grad.
    n_grid = np.array([8e9, 30e9, 70e9, 150e9, 280e9])
    slope_bands = np.asarray(cp.bands(slope_kernel, params, n_grid, compute).values, np.float64)
    say("\nC. chinplan.bands of a user kernel using jax.grad (dL/dlog N per draw):")
    for k, n in enumerate(n_grid):
        say(f"   N = {count(n):>5}: {slope_bands[1, k]:+.5f} [{slope_bands[0, k]:+.5f}, {slope_bands[2, k]:+.5f}]")

    # D. optax at a fixed budget.
    x0 = jnp.log(jnp.asarray(1e10, jnp.result_type(float)))
    solve_point = make_solver(point_objective, steps, 0.1)
    solve_expected = make_solver(expected_objective, steps, 0.1)
    n_point = float(jnp.exp(solve_point(x0, law, log_c)))
    n_bayes = float(jnp.exp(solve_expected(x0, params, log_c)))
    regret = cp.regret_compute(params, compute, as_frame=False)
    n_regret = float(regret.bayes_n[0])
    say("\nD. optax.adam over log N at fixed compute:")
    say(f"   median law:          optax N = {count(n_point)}, compute_optimal N = {count(plan.n)} "
          f"(rel. diff {rel(n_point, plan.n):.2e})")
    say(f"   posterior E[loss]:   optax N = {count(n_bayes)}, regret_compute Bayes N = {count(n_regret)} "
          f"(rel. diff {rel(n_bayes, n_regret):.2e})")
    say(f"   the posterior-aware plan differs from the median law's by {rel(n_bayes, plan.n):.2%}; the median"
          f" plan's expected-loss regret is {float(regret.regret[0]):.1e} nats (regret_compute)")

    # E. optax over (log N, log D): dollars subject to a loss target.
    dep = cp.Deployment(queries=args.queries, input_tokens=300.0, output_tokens=200.0, peak_flops=cp.H100_SXM.bf16)
    target = float(args.target_loss)
    z0 = jnp.log(jnp.asarray([1e10, 1e12], jnp.result_type(float)))
    solve_dollars = make_solver(dollars_objective, steps, 0.05)
    z = continuation(solve_dollars, z0, law, dep, jnp.asarray(target))
    n_pen, d_pen = (float(v) for v in jnp.exp(z))
    best = cp.cost_optimal(law, target, dep)
    usd_pen = float(cp.tco(n_pen, d_pen, dep).dollars)
    usd_best = float(cp.tco(best.n, best.d, dep).dollars)
    say(f"\nE. optax.adam over (log N, log D): least dollars with L <= {target} at {count(args.queries)} queries")
    say(f"   median law, penalty:  N = {count(n_pen)}, D = {count(d_pen)}, ${usd_pen / 1e6:.3f}M")
    say(f"   chinplan.cost_optimal: N = {count(best.n)}, D = {count(best.d)}, ${usd_best / 1e6:.3f}M "
          f"(rel. diff N {rel(n_pen, best.n):.2e}, D {rel(d_pen, best.d):.2e})")

    # ... and under the posterior with uncertain costs: a chance constraint.
    uncertain = dep._replace(mfu_train=cp.Uniform(0.35, 0.45), mfu_decode=cp.LogUniform(0.05, 0.2),
                             price=cp.LogNormal(2.0, 0.25))
    theta_draws = cp.with_cost_draws(params, uncertain, key=jax.random.PRNGKey(args.seed))
    solve_chance = make_solver(chance_objective, steps, 0.05)
    zc = continuation(solve_chance, z0, theta_draws, jnp.asarray(target), jnp.asarray(args.level))
    n_ch, d_ch = (float(v) for v in jnp.exp(zc))
    p_ch = float(cp.prob_target(params, n_ch, d_ch, target))
    usd_ch = float(cp.expected_cost(params, n_ch, d_ch, uncertain, key=jax.random.PRNGKey(args.seed)))
    say(f"   posterior, P(L <= {target}) >= {args.level}: N = {count(n_ch)}, D = {count(d_ch)}, "
          f"E[$] = ${usd_ch / 1e6:.3f}M; chinplan.prob_target there = {p_ch:.3f}")

    return {
        "draws": n_draws,
        "compute": compute,
        "slopes": grads,
        "curvature": curv,
        "traces": TRACES["plan"],
        "p_70b_too_big_vmap": p_vmap,
        "p_70b_too_big_engine": p_engine,
        "inference_elasticity": e_q,
        "slope_bands": slope_bands,
        "optax_n": n_point,
        "compute_optimal_n": float(plan.n),
        "optax_bayes_n": n_bayes,
        "regret_bayes_n": n_regret,
        "penalty_n": n_pen,
        "penalty_d": d_pen,
        "cost_optimal_n": float(best.n),
        "cost_optimal_d": float(best.d),
        "chance_n": n_ch,
        "chance_d": d_ch,
        "chance_probability": p_ch,
        "chance_expected_dollars": usd_ch,
    }


if __name__ == "__main__":
    main()
