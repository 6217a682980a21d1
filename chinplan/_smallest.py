"""``chinplan smallest``: the chance-constrained answer, parse -> library -> render.

One command, kept out of :mod:`chinplan._commands` (which holds the others): the smallest model
that reaches a target loss with probability p on D tokens (:func:`chinplan.decide.smallest_model`),
or, without ``--tokens``, the cheapest design on an N x D grid that does
(:func:`chinplan.decide.chance_constrained`). Both carry the extrapolation component by
default, like the other commands (``--uncertainty law`` for the law's posterior alone), and
say how far beyond the fitted runs the answer lies.
"""

from __future__ import annotations

import numpy as np

from chinplan import _commands as base
from chinplan import _render, decide, engine, kernels
from chinplan.cli import EXIT_OK, CliError
from chinplan.format import FORMATS, ROW_LABELS, band_cell, deployment_line, human_count, human_dollars, quantile_label, sci

#: The N x D grid searched without --tokens: 10M to 10T parameters, 100M to 1Q tokens.
N_GRID = np.logspace(7, 13, 97)
D_GRID = np.logspace(8, 15, 113)


def cmd_smallest(args) -> int:
    q = base._check_quantiles(args.quantiles)
    deployment, described = base._deployment(args)
    draws = base._load_draws(args)
    base._reachable(draws.params, [args.target_loss], "--target-loss")
    law_draws = draws.theta if draws.uncertainty == "extrapolation" else draws.params  # closed forms for law
    theta = decide.draw_pairs(law_draws, deployment, key=base._key(args, base._COSTS))
    if args.tokens is not None:
        n = float(np.asarray(decide.smallest_model(theta, args.target_loss, args.tokens, p=args.prob), np.float64))
        if not np.isfinite(n):
            raise CliError(f"no model reaches loss {args.target_loss:g} with probability {args.prob:g} on {human_count(args.tokens)} tokens")
        n *= 1.0 + 1e-5  # the order statistic itself can read one draw short of p in float32
        d, found = float(args.tokens), {"found": True}
    else:
        choice, _ = decide.chance_constrained(theta, N_GRID, D_GRID, args.target_loss, args.prob)
        if not bool(choice["found"]):
            raise CliError(f"no design on the grid reaches loss {args.target_loss:g} with probability {args.prob:g}")
        n, d, found = float(choice["n"]), float(choice["d"]), {"found": True, "grid": {"n": [N_GRID[0], N_GRID[-1], len(N_GRID)], "d": [D_GRID[0], D_GRID[-1], len(D_GRID)]}}
    reached = float(decide.draw_fraction(theta, decide.prob_target(theta, n, d, args.target_loss)))
    bands = engine.bands(kernels.design_point, theta, np.array([n]), np.array([d]), q=tuple(q)).values
    bands = {name: np.asarray(bands[name], np.float64)[:, 0] for name in kernels.DESIGN_FIELDS}
    beyond = base._beyond(draws, draws.posterior.extrapolation(np.array([n]), np.array([d])))[0]
    if args.json:
        base._emit_json({
            **base._header(draws, args, q), "uncertainty": draws.uncertainty, "target_loss": args.target_loss, "prob": args.prob,
            "tokens": args.tokens, "deployment": described, "n": n, "d": d, "tokens_per_param": d / n,
            "train_flops": 6.0 * n * d, "p_target": reached, **found, **bands, "extrapolation": beyond,
        })  # fmt: skip
        return EXIT_OK
    how = f"on {human_count(d)} tokens" if args.tokens is not None else "cheapest on the N x D grid"
    title = f"Smallest model with P(loss <= {args.target_loss:g}) >= {args.prob:g}, {how}; bands {quantile_label(q)}"
    table = _render.table(title, ["", "value"], stacked=True)
    table.add_row("parameters N", human_count(n))
    table.add_row("tokens D", human_count(d))
    table.add_row("tokens/param", f"{d / n:.1f}")
    table.add_row("training FLOPs", sci(6.0 * n * d))
    table.add_row(f"P(loss <= {args.target_loss:g})", f"{reached:.3f}")
    for name in ("loss", "gpu_hours", "dollars"):
        table.add_row(ROW_LABELS[name], band_cell(bands[name], FORMATS[name], stacked=True))
    notes = [deployment_line(described), f"{draws.num_draws} posterior draws, {draws.uncertainty} uncertainty (--uncertainty law|extrapolation); "
             f"total cost {human_dollars(bands['dollars'][len(q) // 2])} at the median"]  # fmt: skip
    where = f"{human_count(n)} params on {human_count(d)} tokens"
    notes.append(f"{where} is {beyond['decades']:.1f} decades beyond the fitted runs" if beyond["decades"] > 0 else f"{where} lies inside the fitted runs")
    _render.print_tables([table], notes)
    return EXIT_OK
