"""``chinplan next-runs``: which pilot runs to buy next, parse -> library -> render.

One command: :func:`chinplan.decide.design.next_runs` on the
posterior (extrapolation-aware by default), a ranked table of candidates and the ``-k`` runs
chosen greedily within ``--budget``, JSON, and a plot of the expected gain over the (N, D)
plane with the fitted runs overlaid.
"""

from __future__ import annotations

import numpy as np

from chinplan import engine
from chinplan.cli import inputs, render
from chinplan.cli.parser import EXIT_OK, PLOT_SUFFIXES, CliError, UsageError
from chinplan.decide import design
from chinplan.engine import kernels
from chinplan.format import human_count, sci
from chinplan.plots import charts

_NEXT_RUNS = 7  # key stream of the simulated outcomes
SHOWN = 10


def _target(args, draws):
    """The decision's scenario: the budget for nstar; the median compute-optimal plan there
    (and the target loss) for the loss and prob-target objectives."""
    if args.objective == "nstar":
        return args.target_compute
    if args.objective == "prob-lower-loss":
        if not args.designs or len(args.designs) != 2:
            raise UsageError("--objective prob-lower-loss needs --designs A B (two N:D designs)")
        (_, n_a, d_a), (_, n_b, d_b) = args.designs
        return (n_a, d_a, n_b, d_b)
    plan = engine.bands(kernels.plan, draws.theta, np.array([args.target_compute]), q=(0.5,)).values
    n, d = float(plan["n"][0, 0]), float(plan["d"][0, 0])
    if args.objective == "loss":
        return (n, d)
    if args.target_loss is None:
        raise UsageError("--objective prob-target needs --target-loss")
    return (n, d, args.target_loss)


def _figure(table, chosen, runs, args, units: str):
    """Expected gain per FLOP of every candidate over the (N, D) plane, the fitted runs and
    the chosen batch; the title names the decision (objective, target) and the budget. Built
    like the library's figures (:mod:`chinplan.plots`: no pyplot, constrained layout)."""
    from chinplan.plots import axes as figures

    fig = figures._new_figure((7.5, 5.0))
    ax = fig.add_subplot()
    points = ax.scatter(table["params"], table["tokens"], c=table["gain_per_flop"], cmap="viridis", s=28, label="candidates", zorder=3)
    fig.colorbar(points, ax=ax, label=f"expected gain per FLOP ({units} per FLOP)")
    if runs is not None:
        ax.scatter(*runs, marker="x", color="0.5", s=14, label="fitted runs", zorder=2)
    ax.scatter(chosen["params"], chosen["tokens"], marker="o", facecolors="none", edgecolors="tab:red", s=120, linewidths=1.5,
               label=f"chosen ({len(chosen)})", zorder=4)  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="parameters N (count)", ylabel="training tokens D (count)")
    ax.set_title(figures.plain_title(f"Which runs to buy next: {args.objective} at {sci(args.target_compute)} FLOPs, "
                                     f"pilot budget {sci(args.budget)} FLOPs, {len(chosen)} run(s)", 80), fontsize=10)  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def cmd_next_runs(args) -> int:
    inputs.check_output(args.plot, "--plot", PLOT_SUFFIXES, getattr(args, "posterior", None))
    args.draws = None
    draws = inputs.load_draws(args)
    if draws.num_draws < 2:
        raise CliError(f"next-runs needs a posterior of at least 2 draws to simulate outcomes; {draws.source} has {draws.num_draws}")
    if args.outcomes > draws.num_draws:
        raise UsageError(f"--outcomes {args.outcomes} must be at most the posterior's {draws.num_draws} draws "
                         "(each simulated outcome is a distinct draw's replicate)")  # fmt: skip
    if args.objective == "prob-target" and args.target_loss is not None:
        inputs.check_reachable(draws.params, [args.target_loss], "--target-loss")
    target = _target(args, draws)
    result = design.next_runs(draws.posterior, target=target, budget=args.budget, objective=args.objective, k=args.k,
                              key=inputs.key_for(args, _NEXT_RUNS), num_outcomes=args.outcomes, uncertainty=draws.uncertainty)  # fmt: skip
    table, chosen = result.table, result.chosen
    candidates = [
        {"params": r.params, "tokens": r.tokens, "flops": r.flops, "width_now": r.now, "expected_width_after": r.expected_after,
         "gain": r.gain, "gain_per_flop": r.gain_per_flop, "ess_mean": r.ess_mean, "decades_beyond": r.decades_beyond,
         "supported": bool(r.supported)}
        for r in table.itertuples()
    ]  # fmt: skip
    if args.plot:
        data = draws.posterior.to_arviz().get("constant_data")
        runs = None if data is None else (np.exp(data["log_n"].values), np.exp(data["log_d"].values))
        charts.save(_figure(table, chosen, runs, args, result.units), args.plot)
    if args.json:
        render.emit_json({
            "posterior": draws.source, "num_draws": draws.num_draws, "seed": args.seed, "uncertainty": draws.uncertainty,
            "objective": result.objective, "units": result.units, "target": target, "target_compute": args.target_compute,
            "budget": args.budget, "outcomes": args.outcomes, "candidates": candidates,
            "spent": result.spent, "budget_share": result.spent / args.budget, "stop": result.stop, "supported_shapes": result.shapes,
            "chosen": chosen.to_dict("records"), **({"plot": args.plot} if args.plot else {}),
        })  # fmt: skip
        return EXIT_OK
    units = result.units
    short = {"decades": "dec", "nats": "nats", "nats of entropy": "nats"}.get(units, units)
    what = {"nstar": "N* band", "loss": "loss band", "prob-target": "entropy", "prob-lower-loss": "entropy"}.get(result.objective, "value")
    title = f"Pilot runs for {sci(args.budget)} FLOPs: {result.objective} at {sci(args.target_compute)} FLOPs, best {SHOWN} of {len(table)}"
    ranked = render.table(title, ["N", "D", "FLOPs", f"{what} now, {short}", f"after, {short}", f"gain/FLOP, {short}"])
    for r in table.head(SHOWN).itertuples():
        mark = "" if r.supported else " *"
        ranked.add_row(human_count(r.params) + mark, human_count(r.tokens), sci(r.flops), f"{r.now:.3f}", f"{r.expected_after:.3f}", f"{r.gain_per_flop:.2e}")
    picks = render.table(f"The {len(chosen)} run(s) to buy, in order ({what} after each, {units})", ["N", "D", "FLOPs", f"after, {short}", "ESS"])
    for r in chosen.itertuples():
        picks.add_row(human_count(r.params), human_count(r.tokens), sci(r.flops), f"{r.expected_after:.3f}", f"{r.ess_mean:.0f}")
    share = result.spent / args.budget
    notes = [
        f"the batch spends {sci(result.spent)} FLOPs, {share:.1%} of the budget; it stops because: {result.stop}"
        + ("" if share >= 0.5 else " (larger runs are expected to narrow the band no more, within the simulation's error)"),
        f"candidates keep to the supported shapes: {design.describe_shapes(result.shapes)}"
        + ("; * marks a run outside them" if not table["supported"].all() else ""),
        f"{draws.num_draws} posterior draws ({draws.uncertainty} uncertainty), {args.outcomes} simulated outcomes per candidate; "
        "the posterior is reweighted by each outcome's likelihood, not refitted",
        "dec: decades (log10 of N*)" if short == "dec" else "",
        "ESS: effective sample size of the reweighted draws (1 / sum of squared weights), mean over outcomes: "
        "how many draws still carry the answer",
    ]
    notes = [note for note in notes if note]
    if (chosen["ess_mean"] < design.MIN_ESS_SHARE * draws.num_draws).any():
        notes.append("a chosen run's weights keep few draws: its expected effect is uncertain (refit with it)")
    render.print_tables([ranked, picks], notes, plot=args.plot)
    return EXIT_OK
