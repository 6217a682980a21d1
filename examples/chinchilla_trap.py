"""The Chinchilla trap: a compute-optimal model can be the expensive one to own.

The question
    Chinchilla-optimal training (about 20 tokens per parameter) minimises the loss for a
    TRAINING budget. A model that is then served to many users pays 2N FLOPs for every
    token it reads or writes, so a smaller model trained far past 20 tokens per parameter
    can be cheaper overall (Sardana et al. 2024, "Beyond Chinchilla-Optimal"). Compare

    * 8B on 15T tokens   (Llama-3-8B-like, ~1,900 tokens per parameter),
    * 70B on 1.4T tokens (Chinchilla),
    * 280B on 5.6T tokens (Chinchilla-optimal at 280B, 20 tokens per parameter),

    served for 1e8 to 1e10 lifetime queries of 500 tokens (300 prompt + 200 generated) on
    H100s: what does each cost to own, what loss does each buy, and from what query volume
    on is the 8B model cheaper than the 70B one?

The method
    * Loss: posterior bands of L(N, D) (Hoffmann et al. 2022, Eq. 2) over the shipped
      posterior with ``chinplan.bands``.
    * Cost: ``chinplan.tco`` prices training at 6ND FLOPs and serving at 2N FLOPs per
      token, divided by the H100's dense bf16 peak (989 TFLOP/s) times an MFU, times a
      price per GPU-hour. The MFUs and prices are uncertain and given as distributions
      (``chinplan.Uniform``, ``LogUniform``, ``LogNormal``); ``chinplan.with_cost_draws``
      samples them once per posterior draw, so every design and every query volume is
      priced under the same draws (common random numbers) and P(8B cheaper) compares like
      with like.
    * ``chinplan.probability`` gives P(8B cheaper than 70B) at each volume on a fine grid;
      the crossover volume is where it passes 0.5 (interpolated in log Q), and the
      "uncertain span" is where it lies between 0.05 and 0.95.
    * ``chinplan.prob_cheaper`` gives the pairwise matrix at one volume, and
      ``chinplan.target_cost_bands`` (Sardana et al.'s dollar-optimal plan,
      ``chinplan.cost_optimal``) says what design would reach Chinchilla's median loss at
      the least total cost at each volume.

How to read the output
    Bands are ``median [5%, 95%]`` over draws of the law and of the cost inputs. The 8B
    model has the higher loss (the price of the trap): P(8B loss <= 70B loss) is printed.
    The last table shows how the dollar-optimal design for the SAME loss as Chinchilla
    shrinks and trains longer as the query volume grows. Costs are GPU rental only (no
    staff, data or failed runs) and the MFU and price assumptions are stated in the
    deployment below; change them with the options.

Run::

    python examples/chinchilla_trap.py
    python examples/chinchilla_trap.py --plot trap.png --draws 4000
    python examples/chinchilla_trap.py --small
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import chinplan as cp
from chinplan.engine import kernels
from chinplan.format import band_cell as band
from chinplan.format import human_count as count
from chinplan.format import human_dollars as usd

DESIGNS = {
    "8B x 15T": (8e9, 15e12),
    "70B x 1.4T": (70e9, 1.4e12),
    "280B x 5.6T": (280e9, 5.6e12),
}


def deployment(input_tokens: float, output_tokens: float, price: float) -> cp.Deployment:
    """H100 training and serving with uncertain utilisation and prices (assumptions).

    Training MFU 35-45% (Llama 3 reports 38-43% in bf16); prefill MFU 40-60%; decode is
    memory-bandwidth bound, MFU log-uniform 5-20%; training and serving prices log-normal
    around ``price`` dollars per GPU-hour with a 25% spread, drawn independently.
    """
    return cp.Deployment(
        queries=0.0,  # replaced per scenario below
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        peak_flops=cp.H100_SXM.bf16,
        mfu_train=cp.Uniform(0.35, 0.45),
        mfu_prefill=cp.Uniform(0.4, 0.6),
        mfu_decode=cp.LogUniform(0.05, 0.2),
        price=cp.LogNormal(price, 0.25),
        inference_price=cp.LogNormal(price, 0.25),
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=1000, help="posterior draws to use (at most 4,000 shipped)")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset of draws and the cost draws")
    p.add_argument("--queries", type=float, nargs=2, default=(1e8, 1e10), metavar=("LO", "HI"), help="query-volume range")
    p.add_argument("--points", type=int, default=9, help="query volumes in the table (log-spaced)")
    p.add_argument("--input-tokens", type=float, default=300.0, help="prompt tokens per query")
    p.add_argument("--output-tokens", type=float, default=200.0, help="generated tokens per query")
    p.add_argument("--price", type=float, default=2.0, help="median dollars per H100-hour")
    p.add_argument("--uncertainty", choices=("extrapolation", "law"), default="extrapolation",
                   help="bands with the extrapolation component (default, as chinplan plan) or the law alone")
    p.add_argument("--posterior", metavar="FILE", help="a posterior saved with Posterior.save (default: shipped)")
    p.add_argument("--plot", metavar="FILE", help="write TCO vs query volume (.png or .svg)")
    p.add_argument("--small", action="store_true", help="tiny sizes (200 draws, 5 volumes) for smoke tests")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    draws = min(args.draws, 200) if args.small else args.draws
    points = min(args.points, 5) if args.small else args.points
    posterior = cp.Posterior.load(args.posterior) if args.posterior else cp.default_posterior()
    # plan's default: the extrapolation-aware draws (the law alone with --uncertainty law)
    params = cp.decide.subset_draws(posterior.extrapolated_params(args.uncertainty), draws, seed=args.seed)
    n_draws = int(params.law.E.shape[0])
    key = jax.random.PRNGKey(args.seed)
    dep = deployment(args.input_tokens, args.output_tokens, args.price)
    theta = cp.with_cost_draws(params, dep, key=key)  # (law draws, one deployment draw each)
    q = cp.DEFAULT_QUANTILES

    labels = list(DESIGNS)
    n = np.array([DESIGNS[k][0] for k in labels])
    d = np.array([DESIGNS[k][1] for k in labels])
    lo, hi = args.queries
    volumes = np.logspace(np.log10(lo), np.log10(hi), points)

    # Loss and training cost of each design.
    loss = np.asarray(cp.bands(kernels.loss, params, n, d, q=q).values, np.float64)  # (3, designs)
    train = np.asarray(cp.bands(kernels.cost_field("train_dollars"), theta, n, d, q=q).values, np.float64)
    p_loss = float(cp.probability(kernels.loss_not_worse, params, n[0], d[0], n[1], d[1]))

    # TCO bands for every design x volume, and P(8B cheaper) on the table's volumes.
    tco = np.asarray(cp.bands(kernels.dollars_at_queries, theta, n[:, None], d[:, None], volumes[None, :], q=q).values, np.float64)
    p_vs = np.asarray(
        cp.probability(kernels.cheaper_at_queries, theta, n[0], d[0], n[1:, None], d[1:, None], volumes[None, :]), np.float64
    )  # (2, volumes): 8B vs 70B, 8B vs 280B

    # The crossover, on a fine grid (one more probability call over 8B vs 70B).
    fine = np.logspace(np.log10(lo), np.log10(hi), 21 if args.small else 161)
    p_fine = np.asarray(cp.probability(kernels.cheaper_at_queries, theta, n[0], d[0], n[1], d[1], fine), np.float64)
    cross = cp.decide.crossing(fine, p_fine, 0.5)
    span = (cp.decide.crossing(fine, p_fine, 0.05), cp.decide.crossing(fine, p_fine, 0.95))

    # Pairwise P(row cheaper than column) at the middle volume (chinplan.prob_cheaper).
    mid = float(volumes[len(volumes) // 2])
    matrix = np.asarray(cp.prob_cheaper(params, n, d, dep._replace(queries=mid), key=key), np.float64)

    # Sardana et al.'s dollar-optimal design for Chinchilla's median loss, at each volume.
    target = float(loss[1, 1])
    plans = [cp.target_cost_bands(params, target, dep._replace(queries=float(v)), key=key, q=q) for v in volumes]
    plan_n = np.stack([np.asarray(ds.n[:, 0], np.float64) for ds in plans], axis=1)  # (3, volumes)
    plan_d = np.stack([np.asarray(ds.d[:, 0], np.float64) for ds in plans], axis=1)
    plan_usd = np.stack([np.asarray(ds.dollars[:, 0], np.float64) for ds in plans], axis=1)

    # ---- report ------------------------------------------------------------------------
    print(f"The Chinchilla trap: {n_draws} posterior draws ({args.uncertainty} uncertainty)")
    print(f"x cost draws; {args.input_tokens:g}+{args.output_tokens:g} tokens per query on H100s, ~{usd(args.price)}/GPU-hour")
    print()
    print(f"{'design':<13}{'tokens/param':>13}   {'loss (nats)':<26}{'training cost'}")
    for k, label in enumerate(labels):
        print(f"{label:<13}{d[k] / n[k]:>13.0f}   {band(loss[:, k], lambda x: f'{x:.4f}'):<26}{band(train[:, k], usd)}")
    print(f"P(8B loss <= 70B loss) = {p_loss:.3f}: the 8B model buys its lower serving cost")
    print("with a higher loss")
    print()
    print("Total cost of ownership, median [5%, 95%]:")
    print(f"{'queries':>7}" + "".join(f"{label:>24}" for label in labels))
    for j, v in enumerate(volumes):
        print(f"{count(v):>7}" + "".join(f"{band(tco[:, k, j], usd):>24}" for k in range(len(labels))))
    print(f"{'queries':>7}{'P(8B cheaper than 70B)':>26}{'P(8B cheaper than 280B)':>26}")
    for j, v in enumerate(volumes):
        print(f"{count(v):>7}{p_vs[0, j]:>26.3f}{p_vs[1, j]:>26.3f}")
    print()
    if cross is not None:
        print(f"8B becomes cheaper than 70B (P = 0.5) at {count(cross)} queries "
              f"({count(cross * (args.input_tokens + args.output_tokens))} tokens served)")
    else:
        print("P(8B cheaper than 70B) does not cross 0.5 in this range")
    if span[0] is not None and span[1] is not None:
        print(f"P(8B cheaper) is between 0.05 and 0.95 for {count(span[0])} to {count(span[1])} queries")
    print()
    print(f"P(row cheaper than column) at {count(mid)} queries (chinplan.prob_cheaper):")
    print(f"{'':<13}" + "".join(f"{label:>13}" for label in labels))
    for k, label in enumerate(labels):
        print(f"{label:<13}" + "".join(f"{matrix[k, m]:>13.3f}" for m in range(len(labels))))
    print()
    print(f"Dollar-optimal design for Chinchilla's median loss {target:.4f} (Sardana et al. 2024):")
    print(f"{'queries':>7}{'N':>24}{'D':>24}{'tokens/param':>14}")
    for j, v in enumerate(volumes):
        print(f"{count(v):>7}{band(plan_n[:, j], count):>24}{band(plan_d[:, j], count):>24}{plan_d[1, j] / plan_n[1, j]:>14.0f}")
    print(f"{'queries':>7}{'TCO':>28}{'70B TCO (median)':>20}")
    for j, v in enumerate(volumes):
        print(f"{count(v):>7}{band(plan_usd[:, j], usd):>28}{usd(tco[1, 1, j]):>20}")
    print("(each draw's plan reaches the target under that draw's own law, while the fixed")
    print(" 70B design reaches it in only about half of the draws: the two cost columns")
    print(" are not like for like)")

    plot_path = None
    if args.plot:
        grid = np.logspace(np.log10(lo) - 1, np.log10(hi) + 1, 9 if args.small else 41)
        fig = cp.plots.tco_vs_queries(params, DESIGNS, dep, grid, key=key, refine=2 if args.small else 8)
        cp.plots.save(fig, args.plot)
        plot_path = args.plot
        print(f"\nwrote {plot_path}")

    return {
        "draws": n_draws,
        "designs": labels,
        "queries": volumes,
        "loss": loss,
        "train_dollars": train,
        "tco": tco,
        "p_8b_cheaper_than_70b": p_vs[0],
        "p_8b_cheaper_than_280b": p_vs[1],
        "p_8b_loss_not_worse": p_loss,
        "crossover_queries": cross,
        "crossover_span": span,
        "prob_cheaper_matrix": matrix,
        "target_loss": target,
        "optimal_n": plan_n,
        "optimal_d": plan_d,
        "optimal_dollars": plan_usd,
        "plot": plot_path,
    }


if __name__ == "__main__":
    main()
