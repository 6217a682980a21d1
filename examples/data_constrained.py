"""A domain model short of unique data: what repeating the corpus costs, and what more epochs buy.

The question
    BloombergGPT (Wu et al. 2023, arXiv 2303.17564) trained 50.6B parameters on 569B
    tokens drawn from a ~708B-token corpus: 363B tokens of financial text (FinPile) and 345B
    of public data. Suppose a team with the same budget, C = 6 x 50.6B x 569B ~ 1.7e23 FLOPs,
    had only U = 345B unique domain tokens (the default; change it with
    ``--unique-tokens``). Training on 569B tokens then means 1.65 epochs. How much loss does
    the repetition cost, what would the best plan for that budget and corpus be, and what
    do further epochs (or more compute with no new data) buy?

The method
    The data-constrained law of Muennighoff et al. 2023 ("Scaling Data-Constrained Language
    Models", Eq. 5-6) replaces D and N by effective values,

        D' = U + U R_D* (1 - exp(-R_D / R_D*)),  R_D = D/U - 1,  R_D* ~ 15.4,
        N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  U_N = min(N, N_opt(U)),  R_N* ~ 5.3,

    inside L = E + A/N'^alpha + B/D'^beta: a repeated token is worth less than a fresh one,
    and parameters beyond the compute-optimal size for U are worth less too. All seven
    constants, R_D* and R_N* included, are drawn from the data-constrained posterior
    (``chinplan.decide.data_constrained.default_posterior()``: NUTS on the C4 runs of that paper
    up to 8 epochs, docs/DATA_CONSTRAINED.md), so the bands carry the uncertainty of the
    decay constants too. ``chinplan.decide.data_constrained.plan`` gives the best plan for a
    budget and a corpus, ``epoch_table`` what each epoch costs and buys, ``epochs_until``
    how many epochs before a pass is worth less than a fraction of fresh data. The law was
    fitted to web text (C4), not finance, and its losses are C4's: treat the numbers as a
    planning aid, not a forecast; answers beyond 8 epochs come with a warning.

How to read the output
    Bands are ``median [5%, 95%]`` over posterior draws. "D'/D" is the fraction of the
    tokens' value that survives repetition (median over draws). In the epochs table,
    "repeated" is the loss with U unique tokens seen ``epochs`` times and "all unique" the
    loss had those D tokens all been distinct; their gap is the price of repetition, small
    up to about 4 epochs and growing after. In the budget table, the optimal plan under
    the data limit is compared with the unconstrained Chinchilla plan for the same budget.

Run::

    python examples/data_constrained.py
    python examples/data_constrained.py --unique-tokens 100e9 --plot epochs.png
    python examples/data_constrained.py --small
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import chinplan as cp
from chinplan.decide import data_constrained as dc
from chinplan.engine import kernels
from chinplan.format import band_cell as band
from chinplan.format import human_count as count
from chinplan.format import say

#: BloombergGPT (Wu et al. 2023): 50.6B parameters trained on 569B tokens.
BLOOMBERG_N = 50.6e9
BLOOMBERG_D = 569e9
#: Default unique domain tokens (the public half of BloombergGPT's corpus was 345B tokens).
UNIQUE_TOKENS = 345e9


# ----------------------------------------------------------------------------------------
# Helpers.
# ----------------------------------------------------------------------------------------


def nats(x) -> str:
    return f"{float(x):.4f}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=1000, help="posterior draws to use (at most 4,000 shipped)")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset of draws")
    p.add_argument("--params", type=float, default=BLOOMBERG_N, help="model parameters N")
    p.add_argument("--tokens", type=float, default=BLOOMBERG_D, help="training tokens D")
    p.add_argument("--unique-tokens", type=float, default=UNIQUE_TOKENS, help="unique tokens U available")
    p.add_argument("--posterior", metavar="FILE", help="a data-constrained posterior (chinplan fit --law data-constrained; default: shipped)")
    p.add_argument("--plot", metavar="FILE", help="write loss vs epochs, repeated vs unique (.png or .svg)")
    p.add_argument("--small", action="store_true", help="tiny sizes (200 draws, fewer rows) for smoke tests")
    return p


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    draws = min(args.draws, 200) if args.small else args.draws
    posterior = cp.Posterior.load(args.posterior) if args.posterior else dc.default_posterior()
    params = cp.decide.subset_draws(dc.draws_of(posterior), draws, seed=args.seed)  # a seeded subset
    n_draws = int(params.E.shape[0])
    n, d, u = float(args.params), float(args.tokens), float(args.unique_tokens)
    compute = 6.0 * n * d
    q = cp.DEFAULT_QUANTILES

    # 1. The design as trained: fresh data vs the data-constrained law.
    design = cp.bands(kernels.fresh_and_repeated, params, n, d, u, q=q).values  # one pass, three outputs
    fresh, repeated, gap = (np.asarray(design[k], np.float64) for k in ("fresh", "repeated", "cost"))
    effective = float(np.median(np.asarray(cp.effective_data(d, u, params), np.float64)))
    worth = {f: np.asarray(cp.bands(kernels.epochs_until, params, f, q=q).values["epochs"], np.float64) for f in (0.5, 0.1)}

    # 2. The best plan for this budget and for multiples of it (more compute, no more data):
    #    unconstrained (Chinchilla, Eq. 4) vs data-constrained (Muennighoff et al. 2023).
    multiples = np.array([1, 4, 16] if args.small else [1, 2, 4, 8, 16, 32, 64], np.float64)
    budgets = compute * multiples
    more = cp.bands(cp.data_constrained_optimal, params, budgets, u, q=q).values
    more_free = cp.bands(cp.compute_optimal, params, budgets, q=q).values
    more_n, more_d, more_loss = (np.asarray(x, np.float64) for x in more)
    free_loss = np.asarray(more_free.loss, np.float64)
    free = {k: np.asarray(v, np.float64)[:, 0] for k, v in more_free._asdict().items()}  # the 1x budget
    tied = {k: np.asarray(v, np.float64)[:, 0] for k, v in more._asdict().items()}

    # 3. What more epochs buy at this N: D = epochs x U, repeated vs all-unique tokens.
    epochs = 2.0 ** np.arange(0, 7, 2 if args.small else 1)  # 1, 2, 4, ... 64 epochs
    tokens = epochs * u
    ep_repeated = np.asarray(cp.bands(kernels.loss_repeated, params, n, tokens, u, q=q).values, np.float64)
    ep_unique = np.asarray(cp.bands(kernels.loss_repeated, params, n, tokens, tokens, q=q).values, np.float64)
    ep_value = np.median(np.asarray(cp.effective_data(tokens[None, :], u, jax.tree.map(lambda x: x[:, None], params)), np.float64), axis=0) / tokens

    # 4. More compute, no more data: computed with the plans above (budgets x 1, 2, 4, ...).

    # ---- report ------------------------------------------------------------------------
    print(f"Data-constrained planning: {n_draws} posterior draws, U = {count(u)} unique tokens")
    print("(law uncertainty: the data-constrained posterior has no extrapolation component)")
    print()
    print(f"Design: N = {count(n)}, D = {count(d)} ({d / u:.2f} epochs of U), C = 6ND = {compute:.3g} FLOPs")
    print(f"  effective data D' = {count(effective)} (D'/D = {effective / d:.3f})")
    print(f"  loss with all-fresh data      {band(fresh, nats)}")
    print(f"  loss repeating U              {band(repeated, nats)}")
    print(f"  cost of the data limit        {band(gap, nats)} nats (per draw)")
    print()
    print(f"Best plan for C = {compute:.3g} FLOPs, median [5%, 95%]:")
    print(f"{'':<16}{'N':>22}{'D':>24}{'epochs of U':>13}")
    for label, plan in (("unlimited data", free), ("U unique tokens", tied)):
        print(f"{label:<16}{band(plan['n'], count):>22}{band(plan['d'], count):>24}{plan['d'][1] / u:>13.2f}")
    for label, plan in (("unlimited data", free), ("U unique tokens", tied)):
        print(f"{label:<16}  loss {band(plan['loss'], nats)}")
    print()
    print(f"What more epochs buy at N = {count(n)} (loss, median [5%, 95%]):")
    value_col = "D'/D"
    print(f"{'epochs':>6}{'tokens':>8}{value_col:>7}{'repeated':>26}{'all unique':>26}{'gap':>7}")
    gains = np.concatenate([[np.nan], -np.diff(ep_repeated[1])])
    for k, e in enumerate(epochs):
        print(f"{e:>6g}{count(tokens[k]):>8}{ep_value[k]:>7.3f}{band(ep_repeated[:, k], nats):>26}"
              f"{band(ep_unique[:, k], nats):>26}{ep_repeated[1, k] - ep_unique[1, k]:>7.4f}")
    gain_text = ", ".join(f"{gains[k]:.4f} at {e:g} epochs" for k, e in enumerate(epochs) if not np.isnan(gains[k]))
    say(f"gain, the median loss drop from the row above: {gain_text}")
    say("(D'/D: value of the tokens relative to fresh ones; gap: median repeated minus all unique; "
        f"rows beyond {dc.fitted_epochs(posterior):g} epochs lie outside the runs the law was fitted to)")
    for f, e in worth.items():
        print(f"a further epoch is worth less than {f:.0%} of fresh data after {band(e, lambda v: f'{v:.1f}')}")
    print()
    print("More compute with the same U: data-constrained optimum vs unlimited data")
    print(f"{'budget':>9}{'N':>22}{'epochs':>7}{'loss, U unique':>26}{'unlimited':>11}")
    for k, c in enumerate(budgets):
        print(f"{c:>9.3g}{band(more_n[:, k], count):>22}{more_d[1, k] / u:>7.1f}"
              f"{band(more_loss[:, k], nats):>26}{free_loss[1, k]:>11.4f}")
    print("(unlimited: the median loss with as many fresh tokens)")

    plot_path = None
    if args.plot:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.5, 5.0))
        ax = fig.subplots()
        fitted = dc.fitted_epochs(posterior)
        if epochs[-1] > fitted:  # the law was fitted on runs of at most `fitted` epochs
            ax.axvspan(fitted, epochs[-1], color="0.9", zorder=0, label=f"beyond the {fitted:g} epochs of the fitted runs")
        for values, colour, label in ((ep_repeated, "tab:red", f"repeating U = {count(u)} unique tokens"),
                                      (ep_unique, "tab:blue", "as many training tokens, all unique (epochs x U fresh)")):
            ax.fill_between(epochs, values[0], values[2], color=colour, alpha=0.2, linewidth=0)
            ax.plot(epochs, values[1], color=colour, marker="o", label=f"{label}: median, 5-95% band")
        ax.axvline(d / u, color="grey", linestyle=":", label=f"the design: {d / u:.2f} epochs")
        ax.set_xscale("log")
        ax.set_xticks(epochs, [f"{e:g}" for e in epochs])
        ax.set_xlabel(f"epochs over U (training tokens / {count(u)})")
        ax.set_ylabel("predicted final loss (nats)")
        ax.set_title(f"N = {count(n)}: loss vs epochs (Muennighoff et al. 2023), {n_draws} draws", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        cp.plots.save(fig, args.plot)
        plot_path = args.plot
        print(f"\nwrote {plot_path}")

    return {
        "draws": n_draws,
        "compute": compute,
        "epochs_trained": d / u,
        "effective_data": effective,
        "loss_fresh": fresh,
        "loss_repeated": repeated,
        "repetition_cost": gap,
        "plan_unconstrained": free,
        "plan_constrained": tied,
        "epochs": epochs,
        "epochs_loss_repeated": ep_repeated,
        "epochs_loss_unique": ep_unique,
        "epochs_token_value": ep_value,
        "epochs_until": worth,
        "budgets": budgets,
        "budgets_loss_constrained": more_loss,
        "budgets_loss_unlimited": free_loss,
        "budgets_n": more_n,
        "budgets_d": more_d,
        "plot": plot_path,
    }


if __name__ == "__main__":
    main()
