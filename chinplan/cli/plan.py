"""``chinplan plan``: the compute-optimal N*, D*, tokens per parameter and loss, with bands.

Fresh data (:meth:`chinplan.inference.posterior.Posterior`'s extrapolation-aware draws, or the
law alone with ``--uncertainty law``) or, with ``--unique-tokens``, repeated data under the
data-constrained posterior (:func:`chinplan.decide.data_constrained.plan`); optional cluster
sizing (:mod:`.cluster`) and a fan chart (``--plot``).
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np

from chinplan.cli import cluster, inputs, render
from chinplan.cli.parser import EXIT_OK, PLOT_SUFFIXES, CliError, UsageError
from chinplan.decide import risk as decide
from chinplan.extrapolated import compute_optimal_draws
from chinplan.format import FORMATS, band_cell, human_count, human_flops, quantile_label, sci
from chinplan.optima import sensible_budget
from chinplan.plots import charts


def _law_median_n(draws, log_c, log_n) -> list:
    """Per budget, the law-alone median N* where it differs from the default's median by more
    than half the default's 50% band (in log N), else None: the two answers side by side."""
    if draws.uncertainty == "law":
        return [None] * log_n.shape[1]
    zeros = np.zeros(draws.num_draws, np.float32)
    law_only = draws.theta._replace(u=zeros, v=zeros, kappa=zeros, c=zeros)
    law_log_n = np.median(np.asarray(compute_optimal_draws(law_only, log_c)[0], np.float64), axis=0)
    q25, q50, q75 = np.quantile(log_n, (0.25, 0.5, 0.75), axis=0)
    far = np.abs(law_log_n - q50) > 0.5 * (q75 - q25)
    return [float(np.exp(m)) if f else None for m, f in zip(law_log_n, far)]


def cmd_plan(args) -> int:
    if args.unique_tokens is not None:  # the data-constrained optimum (below)
        return cmd_plan_data_constrained(args)
    inputs.check_output(args.plot, "--plot", PLOT_SUFFIXES, args.posterior)
    q = inputs.check_quantiles(args.quantiles)
    training, trained_on = cluster.plan_hardware(args)
    with render.working(f"plan: {render.COMPILING_NOTE}"):
        draws = inputs.load_draws(args, fast=True)
        log_c = jnp.log(jnp.asarray(sensible_budget("--compute", args.compute, decide.median_params(draws.params))))
        log_n, log_d, log_loss = (np.asarray(x, np.float64) for x in compute_optimal_draws(draws.theta, log_c))
        law_n = _law_median_n(draws, log_c, log_n)
        draws_of = {"n": np.exp(log_n), "d": np.exp(log_d), "tokens_per_param": np.exp(log_d - log_n), "loss": np.exp(log_loss)}
        result = {k: np.quantile(v, q, axis=0) for k, v in draws_of.items()}
        median_n, median_d = (np.median(np.exp(x), axis=0) for x in (log_n, log_d))
        beyond = inputs.beyond_rows(draws, draws.posterior.extrapolation(compute=np.asarray(args.compute, np.float64)), median_n, median_d)
        timing = [{} for _ in args.compute]
        if training is not None:
            hours = cluster.plan_gpu_hours(training, np.asarray(args.compute, np.float64), draws.num_draws, inputs.key_for(args, inputs.COSTS), q)
            sized = cluster.sizing(args, hours)
            timing = [{"training": {"gpu_hours": hours[:, i], **cluster.json_entry(args, sized, (i,))}} for i in range(len(args.compute))]
        if args.plot:
            lo, hi = min(1e18, min(args.compute) / 100), max(1e26, max(args.compute) * 100)
            budgets = np.logspace(math.log10(lo), math.log10(hi), 41)
            charts.save(charts.fan_chart(draws.theta, budgets, mark=args.compute, **inputs.overlays(args, draws)), args.plot)
    if args.json:
        render.emit_json(
            {
                **render.bands_header(draws, args, q),
                "uncertainty": draws.uncertainty,
                **({"training_hardware": trained_on} if training is not None else {}),
                "plans": [{"compute": c, **render.bands_json(result, (i,)), "extrapolation": beyond[i], **timing[i],
                           **({"law_median_n": law_n[i]} if law_n[i] is not None else {})} for i, c in enumerate(args.compute)],
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    table = render.table(
        f"Compute-optimal plan, {draws.num_draws} posterior draws: {quantile_label(q)}",
        ("FLOPs", "parameters N*", "tokens D*", "tokens/param", "loss"), stacked=True,
    )  # fmt: skip
    for i, c in enumerate(args.compute):
        cells = (band_cell(result[k][:, i], FORMATS[k], stacked=True) for k in ("n", "d", "tokens_per_param", "loss"))
        table.add_row(sci(c), *cells)
    notes = [inputs.beyond_note(human_flops(c), beyond[i]) for i, c in enumerate(args.compute)]
    notes += [f"{sci(c)} FLOPs: the law alone says N* {human_count(n)} (median), outside this 50% band's half-width"
              for c, n in zip(args.compute, law_n) if n is not None]  # fmt: skip
    notes.append(f"bands: {draws.uncertainty} uncertainty (--uncertainty law|extrapolation); losses in the nats of the fitted runs' tokenizer and evaluation set")
    tables = [table]
    if training is not None:
        tables.append(cluster.plan_table(args, render.table, args.compute, hours, sized, trained_on, quantile_label(q)))
    render.print_tables(tables, notes=notes, plot=args.plot)
    return EXIT_OK


_FIELDS = ("n", "d", "epochs", "loss")
#: What the data-constrained losses are measured on, and why they differ from plain plan's.
LOSS_SCALE = ("in the nats of the data-constrained runs' evaluation set (C4 for the embedded fit): "
              "not comparable with plain plan's losses (another tokenizer and evaluation set)")


def _decades(value: float) -> str:
    return f"{value:.1f}" if value >= 0.095 else f"{value:.2f}"


def cmd_plan_data_constrained(args) -> int:
    from chinplan.decide import data_constrained  # arviz and numpyro: only for this question
    from chinplan.inference.posterior import Posterior

    if args.plot:
        raise CliError("--plot is not available with --unique-tokens (examples/data_constrained.py --plot draws loss against epochs)")
    sizing = [f"--{k.replace('_', '-')}" for k in ("gpus", "days", *cluster.PLAN_HARDWARE) if getattr(args, k, None) is not None]
    if sizing:
        raise UsageError(f"{sizing[0]} is not available with --unique-tokens: size the cluster with plan --compute C --gpus K (fresh data)")
    if args.uncertainty == "extrapolation":
        raise CliError("--uncertainty extrapolation: a data-constrained posterior has only the law's uncertainty (use --uncertainty law or leave it out)")
    q = inputs.check_quantiles(args.quantiles)
    if args.posterior is None:
        posterior = data_constrained.default_posterior()
    else:
        posterior = Posterior.load(args.posterior)
        if posterior.law != "data_constrained":
            raise CliError(f"--unique-tokens needs a data-constrained posterior (chinplan fit --law data-constrained); {args.posterior} is of the {posterior.law!r} law")
    fitted = data_constrained.fitted_epochs(posterior)
    source = args.posterior or f"embedded datablations ({posterior.attrs.get('num_runs', '?')} C4 runs, at most {fitted:g} epochs)"
    total = posterior.num_draws if args.draws is None else min(args.draws, posterior.num_draws)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", data_constrained.EpochRangeWarning)
        ds = data_constrained.plan(posterior, args.compute, args.unique_tokens, q=q, num_draws=args.draws, seed=[args.seed, inputs.THIN])
    for warning in caught:  # the rows beyond the fitted epochs: one warning naming each (below)
        if not issubclass(warning.category, data_constrained.EpochRangeWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    values = {k: np.asarray(ds[k].values, np.float64) for k in _FIELDS}  # (q, compute, unique)
    cells = [(i, j) for i in range(len(args.compute)) for j in range(len(args.unique_tokens))]
    median, central = inputs.central_quantile(q)
    row = {(i, j): f"{sci(args.compute[i])} FLOPs on {human_count(args.unique_tokens[j])} unique" for i, j in cells}
    over = [f"{row[c]} ({values['epochs'][(median, *c)]:.3g} epochs)" for c in cells if values["epochs"][(median, *c)] > fitted * (1 + 1e-6)]
    if over:
        inputs.warn(f"{len(over)} of {len(cells)} {central} plans repeat the data for more epochs, beyond the {fitted:g} epochs of the fitted runs, where the law's "
                    f"errors grow several-fold (docs/DATA_CONSTRAINED.md): {'; '.join(over)}")  # fmt: skip
    runs = inputs.fitted_runs(posterior)
    largest = float(np.max(runs[0] + runs[1]) / math.log(10) + math.log10(6.0)) if runs is not None else math.nan
    beyond = {c: max(0.0, math.log10(args.compute[c[0]]) - largest) for c in cells}
    if args.json:
        render.emit_json({
            "posterior": source, "num_draws": total, "seed": args.seed, "quantiles": q, "uncertainty": "law",
            "fitted_max_epochs": fitted, "largest_fitted_compute": 10.0**largest, "loss_scale": LOSS_SCALE,
            "plans": [{"compute": args.compute[i], "unique_tokens": args.unique_tokens[j], **render.bands_json(values, (i, j)),
                       "compute_decades_beyond": beyond[(i, j)]} for i, j in cells],
        })  # fmt: skip
        return EXIT_OK
    table = render.table(
        f"Data-constrained optimum (Muennighoff et al. 2023), {total} draws: {quantile_label(q)}",
        ("FLOPs", "unique U", "parameters N", "tokens D", "epochs", "loss"), stacked=True,
    )  # fmt: skip
    for i, j in cells:
        row = [band_cell(values[k][:, i, j], FORMATS[k], stacked=True) for k in _FIELDS]
        table.add_row(sci(args.compute[i]), human_count(args.unique_tokens[j]), *row)
    far = sorted({args.compute[i] for (i, _), b in beyond.items() if b > 0})
    notes = [f"{human_flops(c)} is {_decades(math.log10(c) - largest)} decades beyond the largest data-constrained run ({human_flops(10.0**largest)})" for c in far]
    notes += [
        f"fitted on runs of at most {fitted:g} epochs; the law is not trusted beyond (docs/DATA_CONSTRAINED.md)",
        f"posterior: {source}; law-only bands",
        f"losses: {LOSS_SCALE}",
    ]
    render.print_tables([table], notes=notes, plot=None)
    return EXIT_OK
