"""Chinchilla against Gopher at (about) the same training compute, with honest uncertainty.

The question
    Hoffmann et al. 2022 trained Chinchilla (70B parameters on 1.4T tokens) with about the
    compute of Gopher (280B parameters on 300B tokens), C ~ 5.76e23 FLOPs, and found the
    smaller model trained on more data better. Given only the 245 digitised Chinchilla
    runs (all far smaller than either model), how sure can we be that Chinchilla's
    allocation wins, and what allocation would the data recommend for that budget?

The method
    The posterior over the law L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022,
    Eq. 2) shipped with chinplan (NUTS on the digitised runs) is pushed through three
    per-draw functions with the Monte Carlo engine:

    * ``chinplan.bands(loss, ...)``: the 5/50/95% posterior quantiles of each model's
      predicted final loss, and of the gap L(Gopher) - L(Chinchilla) draw by draw;
    * ``chinplan.probability(...)``: the fraction of draws in which Chinchilla's loss is
      the lower one (both evaluated under the SAME draw, so shared uncertainty in E
      cancels);
    * ``chinplan.bands(compute_optimal, ...)``: the compute-optimal plan N*(C), D*(C) =
      G (C/6)^a, G^-1 (C/6)^b (Eq. 4) for C = 5.76e23, with its bands, next to the plans of
      the published point estimates (Hoffmann et al. 2022; Besiroglu et al. 2024).

How to read the output
    Each band is printed as ``median [5%, 95%]`` over posterior draws. ``P(Chinchilla lower)``
    is a posterior probability, exact up to the Monte Carlo error of the draws used
    (about sqrt(p(1-p)/draws)). The plan table says how many parameters and tokens the
    budget should buy and how uncertain that advice is; a 90% band on N* that contains 70B
    but not 280B means the data favour Chinchilla's allocation over Gopher's. These are
    extrapolations over two orders of magnitude in compute beyond the fitted runs, under
    the assumption that the law keeps its form.

Run::

    python examples/chinchilla_vs_gopher.py                  # 1,000 posterior draws
    python examples/chinchilla_vs_gopher.py --draws 4000 --plot fan.png
    python examples/chinchilla_vs_gopher.py --small          # a few seconds, for tests
"""

from __future__ import annotations

import argparse

import numpy as np

import chinplan as cp
from chinplan.engine import kernels
from chinplan.format import band_cell as band
from chinplan.format import human_count as count

#: Hoffmann et al. 2022 (Table 1 and Section 4): Chinchilla's budget and the two models.
CHINCHILLA_BUDGET = 5.76e23
CHINCHILLA = (70e9, 1.4e12)
GOPHER = (280e9, 300e9)


# ----------------------------------------------------------------------------------------
# Helpers.
# ----------------------------------------------------------------------------------------


def nats(x) -> str:
    return f"{float(x):.4f}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=1000, help="posterior draws to use (at most 4,000 shipped)")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset of draws")
    p.add_argument("--compute", type=float, default=CHINCHILLA_BUDGET, help="FLOP budget for the plan")
    p.add_argument("--posterior", metavar="FILE", help="a posterior saved with Posterior.save (default: shipped)")
    p.add_argument("--uncertainty", choices=("extrapolation", "law"), default="extrapolation",
                   help="bands with the extrapolation component (default, as chinplan plan) or the law alone")
    p.add_argument("--plot", metavar="FILE", help="write a fan chart of N*(C), D*(C) (.png or .svg)")
    p.add_argument("--small", action="store_true", help="tiny sizes (200 draws, coarse plot) for smoke tests")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    draws = min(args.draws, 200) if args.small else args.draws
    posterior = cp.Posterior.load(args.posterior) if args.posterior else cp.default_posterior()
    # plan's default: the extrapolation-aware draws (the law alone with --uncertainty law)
    params = cp.decide.subset_draws(posterior.extrapolated_params(args.uncertainty), draws, seed=args.seed)
    n_draws = int(params.law.E.shape[0])
    compute = float(args.compute)
    q = cp.DEFAULT_QUANTILES

    # 1. Loss bands of both models (one bands call, two scenarios).
    designs = {"Chinchilla": CHINCHILLA, "Gopher": GOPHER}
    n = np.array([v[0] for v in designs.values()])
    d = np.array([v[1] for v in designs.values()])
    losses = np.asarray(cp.bands(kernels.loss, params, n, d, q=q).values, np.float64)  # (3, 2)

    # 2. The gap and the probability, draw by draw (common random numbers).
    gap = np.asarray(cp.bands(kernels.loss_gap, params, *CHINCHILLA, *GOPHER, q=q).values, np.float64)
    p_lower = float(cp.probability(kernels.lower_loss, params, *CHINCHILLA, *GOPHER))

    # 3. The compute-optimal plan for the budget, with bands, and the published point plans.
    plan = cp.bands(kernels.plan, params, compute, q=q).values  # the same kernel as `chinplan plan`
    plan_n, plan_d, tpp, plan_loss = (np.asarray(plan[k], np.float64) for k in ("n", "d", "tokens_per_param", "loss"))
    published = {name: cp.compute_optimal(law, compute) for name, law in
                 (("Hoffmann et al. 2022", cp.HOFFMANN_2022), ("Besiroglu et al. 2024", cp.BESIROGLU_2024))}

    print(f"Chinchilla vs Gopher: {n_draws} posterior draws of L(N, D) = E + A/N^alpha + B/D^beta")
    print(f"({args.uncertainty} uncertainty)")
    print()
    print(f"{'model':<11}{'params':>7}{'tokens':>7}{'6ND FLOPs':>10}{'tokens/param':>13}  loss (nats), median [5%, 95%]")
    for k, (name, (nk, dk)) in enumerate(designs.items()):
        print(f"{name:<11}{count(nk):>7}{count(dk):>7}{6 * nk * dk:>10.3g}{dk / nk:>13.1f}  {band(losses[:, k], nats)}")
    print()
    print(f"L(Gopher) - L(Chinchilla), same draw: {band(gap, nats)} nats")
    agree = int(round(p_lower * n_draws))
    print(f"P(Chinchilla has the lower loss) = {p_lower:.3f}  ({agree} of {n_draws} draws)")
    print()
    print(f"Compute-optimal plan for C = {compute:.3g} FLOPs, median [5%, 95%]:")
    print(f"  parameters N*      {band(plan_n, count)}")
    print(f"  tokens D*          {band(plan_d, count)}")
    print(f"  tokens/param       {band(tpp, lambda x: f'{x:.1f}')}")
    print(f"  loss at the plan   {band(plan_loss, nats)} nats")
    for name, alloc in published.items():
        print(f"  {name + ' point plan':<34} N = {count(alloc.n)}, D = {count(alloc.d)}, loss {float(alloc.loss):.4f}")
    inside = {name: bool(plan_n[0] <= nk <= plan_n[2]) for name, (nk, _) in designs.items()}
    for name, ok in inside.items():
        print(f"  {name}'s {count(designs[name][0])} is {'inside' if ok else 'outside'} the 90% band of N*")

    plot_path = None
    if args.plot:
        budgets = np.logspace(18, 26, 9 if args.small else 41)
        fig = cp.plots.fan_chart(params, budgets)
        cp.plots.save(fig, args.plot)
        plot_path = args.plot
        print(f"\nwrote {plot_path}")

    return {
        "draws": n_draws,
        "compute": compute,
        "chinchilla_loss": losses[:, 0],
        "gopher_loss": losses[:, 1],
        "loss_gap": gap,
        "p_chinchilla_lower": p_lower,
        "optimal_n": plan_n,
        "optimal_d": plan_d,
        "optimal_loss": plan_loss,
        "tokens_per_param": tpp,
        "chinchilla_in_band": inside["Chinchilla"],
        "gopher_in_band": inside["Gopher"],
        "plot": plot_path,
    }


if __name__ == "__main__":
    main()
