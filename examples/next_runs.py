"""Which three pilot runs to buy with 1e21 FLOPs, to decide the plan at 1e24.

The question
    A team has trained the embedded Chinchilla runs below 1e20 FLOPs and must choose the
    model size for a 1e24-FLOP run. Before that, it can afford 1e21 FLOPs of pilot runs. Which
    (N, D) runs narrow the 90% band of the compute-optimal N at 1e24 the most?

The method
    1. Fit the runs below 1e20 FLOPs (``chinplan.fit``; with its extrapolation component).
    2. ``chinplan.decide.design.next_runs``: every candidate of isoFLOP slices up to 1e21 FLOPs,
       64 simulated outcomes each, the posterior reweighted by each outcome's likelihood
       (no refit), the expected band after the run; three runs chosen greedily within 1e21.
    3. The band today beside the expected band after the three runs, and the top candidates.

How to read the output
    ``now`` and ``expected_after`` are widths of the 90% band of log10 N* (decades; 0.3 is a
    factor of 2). ``ESS`` is the effective sample size of the reweighted draws: a few
    percent of the draws or less means the run would teach more than reweighting can show
    (refit with its real outcome). The runs this example picks are where the embedded
    posterior is least sure about the exponents, which is usually the edges of the
    cheaper isoFLOP slices rather than the valley.

Run::

    python examples/next_runs.py            # 4 chains x 1,000 draws: about a minute on 2 CPU cores
    python examples/next_runs.py --small    # tiny sizes, for tests
"""

from __future__ import annotations

import argparse

import jax

import chinplan
from chinplan.decide import design
from chinplan.format import human_count, sci


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=float, default=1e24, help="compute of the run to plan (default 1e24)")
    p.add_argument("--budget", type=float, default=1e21, help="FLOPs for the pilot runs (default 1e21)")
    p.add_argument("-k", type=int, default=3, help="runs to buy (default 3)")
    p.add_argument("--small", action="store_true", help="tiny sizes (1 chain x 200 draws, no refits, 16 outcomes)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    runs = chinplan.datasets.chinchilla()
    runs = runs[runs["flops"] < 1e20].reset_index(drop=True)
    key = jax.random.key(args.seed)
    settings = dict(num_chains=1, num_draws=200, num_warmup=200, extrapolation=False) if args.small else {}
    # --small is a smoke test (one short chain cannot pass the convergence gate): its bands are
    # not results, so it takes the fit with a ConvergenceWarning; the full size must converge
    post = chinplan.fit(runs, key=key, progress=False, allow_unconverged=args.small, **settings)
    uncertainty = "extrapolation" if post.has_extrapolation else "law"
    result = design.next_runs(post, target=args.target, budget=args.budget, k=args.k, key=key,
                              num_outcomes=16 if args.small else 64, uncertainty=uncertainty)  # fmt: skip
    now = float(result.table["now"].iloc[0])
    print(f"fitted {len(runs)} runs below 1e20 FLOPs; {post.num_draws} draws ({uncertainty} uncertainty)")
    print(f"90% band of log10 N* at {sci(args.target)} FLOPs today: {now:.3f} decades ({10 ** now:.2f}x)")
    print(f"runs to buy with {sci(args.budget)} FLOPs, in order (expected band after each):")
    for row in result.chosen.itertuples():
        print(f"  {human_count(row.params):>6} params on {human_count(row.tokens):>6} tokens ({sci(row.flops)} FLOPs): "
              f"{row.expected_after:.3f} decades, ESS {row.ess_mean:.0f}")  # fmt: skip
    print("best single runs:")
    for row in result.table.head(5).itertuples():
        print(f"  {human_count(row.params):>6} x {human_count(row.tokens):>6}: {row.expected_after:.3f} decades, "
              f"gain {row.gain:.3f} ({row.gain_per_flop:.2e} per FLOP)")  # fmt: skip
    return {"now": now, "chosen": result.chosen, "table": result.table, "num_runs": len(runs)}


if __name__ == "__main__":
    main()
