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
from chinplan.cli.parser import EXIT_OK, PLOT_SUFFIXES, CliError
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


def cmd_plan_data_constrained(args) -> int:
    from chinplan.decide import data_constrained  # arviz and numpyro: only for this question
    from chinplan.inference.posterior import Posterior

    if args.plot:
        raise CliError("--plot is not available with --unique-tokens (examples/data_constrained.py --plot draws loss against epochs)")
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
    for warning in caught:
        if issubclass(warning.category, data_constrained.EpochRangeWarning):
            inputs.warn(str(warning.message))
    values = {k: np.asarray(ds[k].values, np.float64) for k in _FIELDS}  # (q, compute, unique)
    cells = [(i, j) for i in range(len(args.compute)) for j in range(len(args.unique_tokens))]
    if args.json:
        render.emit_json({
            "posterior": source, "num_draws": total, "seed": args.seed, "quantiles": q, "uncertainty": "law",
            "fitted_max_epochs": fitted,
            "plans": [{"compute": args.compute[i], "unique_tokens": args.unique_tokens[j], **render.bands_json(values, (i, j))} for i, j in cells],
        })  # fmt: skip
        return EXIT_OK
    table = render.table(
        f"Data-constrained optimum (Muennighoff et al. 2023), {total} draws: {quantile_label(q)}",
        ("FLOPs", "unique U", "parameters N", "tokens D", "epochs", "loss"), stacked=True,
    )  # fmt: skip
    for i, j in cells:
        row = [band_cell(values[k][:, i, j], FORMATS[k], stacked=True) for k in _FIELDS]
        table.add_row(sci(args.compute[i]), human_count(args.unique_tokens[j]), *row)
    notes = [
        f"fitted on runs of at most {fitted:g} epochs; the law is not trusted beyond (docs/DATA_CONSTRAINED.md)",
        f"posterior: {source}; law-only bands; losses in the nats of the fitted runs' evaluation set",
    ]
    render.print_tables([table], notes=notes, plot=None)
    return EXIT_OK
