"""``chinplan plot {fan,iso-loss,tco,pair}``: the figures of :mod:`chinplan.plots`, from the
same draws and uncertainty as ``plan`` (``--uncertainty``), written as PNG or SVG."""

from __future__ import annotations

import math
import os

import numpy as np

from chinplan.cli import inputs, render
from chinplan.cli.parser import (
    EXIT_OK,
    PLOT_SUFFIXES,
    PLOT_TOKENS_PER_QUERY,
    UsageError,
)
from chinplan.plots import charts


def _check_range(option: str, values) -> tuple[float, float]:
    lo, hi = values
    if not lo < hi:
        raise UsageError(f"{option} needs LO < HI, got {lo:g} {hi:g}")
    return lo, hi


def cmd_plot(args) -> int:
    inputs.check_output(args.output, "-o/--output", PLOT_SUFFIXES, args.posterior)
    if args.kind == "fan":
        lo, hi = _check_range("--compute-range", args.compute_range)
    elif args.kind == "tco":
        lo, hi = _check_range("--queries-range", args.queries_range)
        if args.tokens_per_query is None and args.input_tokens is None and args.output_tokens is None:
            args.tokens_per_query = PLOT_TOKENS_PER_QUERY  # documented in the option's help
        deployment, described = inputs.deployment_of(args, queries=0.0)
        if deployment.input_tokens + deployment.output_tokens == 0:
            raise UsageError("plot tco needs --tokens-per-query or --input-tokens/--output-tokens > 0")
    draws = inputs.load_draws(args)
    if args.kind == "fan":
        fig = charts.fan_chart(draws.theta, np.logspace(math.log10(lo), math.log10(hi), 41), **inputs.overlays(args, draws))
    elif args.kind == "iso-loss":
        fig = charts.iso_loss(draws.theta, **inputs.overlays(args, draws))
    elif args.kind == "tco":
        designs = args.designs or [("Llama-3 8B", 8e9, 15e12), ("Chinchilla 70B", 70e9, 1.4e12)]
        grid = np.logspace(math.log10(lo), math.log10(hi), 41)
        designs = {label: (n, d) for label, n, d in designs}
        chip = f"{described['hardware'].upper()} {described['precision']}"
        fig = charts.tco_vs_queries(draws.theta, designs, deployment, grid, key=inputs.key_for(args, inputs.COSTS), hardware=chip)
    else:
        max_draws = None if args.draws is None else max(2, args.draws)  # evenly thinned by arviz
        fig = charts.pair_plot(draws.posterior, kind=args.pair_kind, max_draws=max_draws)
    charts.save(fig, args.output)
    if args.json:
        size, n_draws = os.path.getsize(args.output), draws.num_draws
        render.emit_json({"kind": args.kind, "output": args.output, "bytes": size, "num_draws": n_draws, "seed": args.seed, "uncertainty": draws.uncertainty})
    else:
        render.console().print(f"wrote {args.output} ({args.kind}, {draws.num_draws} posterior draws, {draws.uncertainty} uncertainty)")
    return EXIT_OK
