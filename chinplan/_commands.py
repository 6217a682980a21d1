"""The ``chinplan`` commands: parse (:mod:`chinplan.cli`) -> library -> render.

Each ``cmd_<name>(args)`` turns parsed options into library calls (:mod:`chinplan.decide`,
:mod:`chinplan.sweep`, :mod:`chinplan.plots`, :mod:`chinplan.fit`,
:mod:`chinplan.calibration`) and renders the result as a rich table or one JSON document.
Imported by :mod:`chinplan.cli` only when a command runs, so ``chinplan --help`` needs no JAX.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from chinplan import _checks, _cluster, _render, datasets, decide, engine, kernels, plots, sweep
from chinplan import _files
from chinplan.calibration import report as calibration_report
from chinplan.cli import EXIT_OK, FIT_SUFFIXES, PLOT_SUFFIXES, PLOT_TOKENS_PER_QUERY, CliError, Range, UsageError
from chinplan.data import load_runs
from chinplan.fit import fit
from chinplan.extrapolation import compute_optimal_draws
from chinplan.optima import sensible_budget
from chinplan.posterior import ConvergenceWarning, Posterior, default_posterior, shipped_posterior_path
from chinplan.format import FORMATS, ROW_LABELS, band_cell, deployment_line, human_count, human_flops, quantile_label, sci
from chinplan.uncertain import Uniform

_console, _table, _print_tables = _render.console, _render.table, _render.print_tables

_THIN, _COSTS = 0, 1  # key streams


# --------------------------------------------------------------------------------------
# Shared helpers: posterior draws, keys, deployments, tables, JSON, files.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Draws:
    """The law draws a command works on (possibly a random subset of the posterior)."""

    params: object  # LawParams with a leading draw axis
    num_draws: int
    source: str
    posterior: object  # the full chinplan.Posterior
    theta: object  # the same draws as an ExtrapolatedLaw (zero discrepancy for --uncertainty law)
    uncertainty: str


def _key(args, stream: int):
    """The JAX PRNG key of one use of randomness: fold_in(PRNGKey(--seed), stream)."""
    return jax.random.fold_in(jax.random.PRNGKey(args.seed), stream)


def _load_draws(args) -> _Draws:
    path = getattr(args, "posterior", None)
    posterior = default_posterior() if path is None else Posterior.load(path)
    if not int(posterior.attrs.get("converged", 1)):
        attempts = json.loads(posterior.attrs.get("fit_attempts", "[]"))
        problems = attempts[-1]["problems"] if attempts else ["see chinplan fit"]
        _warn(f"the posterior did not converge ({'; '.join(problems[:2])}): its bands are not to be trusted")
    uncertainty = getattr(args, "uncertainty", None)
    if uncertainty is None:
        uncertainty = "extrapolation" if posterior.has_extrapolation else "law"
        if not posterior.has_extrapolation:
            _warn("the posterior has no extrapolation component (refit with chinplan fit): bands beyond the fitted runs are law-only")
    elif uncertainty == "extrapolation" and not posterior.has_extrapolation:
        raise CliError("--uncertainty extrapolation needs a posterior fitted with the extrapolation component (chinplan fit)")
    theta, total = posterior.extrapolated_params(uncertainty), posterior.num_draws
    wanted = getattr(args, "draws", None)
    if wanted is not None and wanted < total:  # seeded by (--seed, stream)
        theta, total = decide.subset_draws(theta, wanted, seed=[args.seed, _THIN]), wanted
    source = path or f"embedded Chinchilla ({posterior.attrs.get('num_runs', 245)} runs)"
    return _Draws(theta.law, total, source, posterior, theta, uncertainty)


def _beyond(draws: _Draws, ext) -> list[dict]:
    """Rows of decades beyond the fitted runs (:meth:`Posterior.extrapolation`), for tables and JSON."""
    largest = 10.0 ** draws.posterior.domain.log10_compute
    return [
        {"decades": float(ext.decades[i]), "compute_decades": float(ext.compute[i]), "params_decades": float(ext.params[i]),
         "tokens_decades": float(ext.tokens[i]), "largest_fitted_compute": largest}
        for i in range(len(ext.decades))
    ]  # fmt: skip


def _beyond_note(compute: float, beyond: dict) -> str:
    if beyond["decades"] <= 0.0:
        return f"{human_flops(compute)} lies inside the fitted runs (largest {human_flops(beyond['largest_fitted_compute'])})"
    return (f"{human_flops(compute)} is {beyond['decades']:.1f} decades beyond the largest fitted run "
            f"({human_flops(beyond['largest_fitted_compute'])})")  # fmt: skip


def _check_quantiles(q) -> list[float]:
    if not q or any(not 0.0 <= v <= 1.0 for v in q):
        raise CliError(f"--quantiles must lie in [0, 1], got {list(q)}")
    return [float(v) for v in q]


def _reachable(params, targets, name: str) -> None:
    """A target at or below E for every draw is an input error, not a result."""
    try:
        _checks.reachable(name, targets, params.E, every=False)
    except ValueError as err:
        raise CliError(f"{err}: it is at or below the irreducible loss E of every posterior draw") from None


def _token_split(args) -> tuple[float, float]:
    explicit = args.input_tokens is not None or args.output_tokens is not None
    if args.tokens_per_query is not None and explicit:
        raise UsageError("give either --tokens-per-query or --input-tokens/--output-tokens, not both")
    if args.tokens_per_query is not None:
        out = args.tokens_per_query * args.output_share
        return args.tokens_per_query - out, out
    return args.input_tokens or 0.0, args.output_tokens or 0.0


def _uncertain(value):
    """A number, or a range LO:HI from the command line as costs' Uniform(LO, HI)."""
    return Uniform(*value) if isinstance(value, Range) else value


def _deployment(args, *, queries: float | None = None):
    """The Deployment of the deployment options, and its description for JSON."""
    input_tokens, output_tokens = _token_split(args)
    queries = args.queries if queries is None else queries
    if queries > 0 and input_tokens + output_tokens == 0:
        raise UsageError("--queries > 0 needs --tokens-per-query or --input-tokens/--output-tokens")
    roofline = {"batch": args.batch, "context": args.context, "memory_bandwidth": args.memory_bandwidth}
    stray = [f"--{k.replace('_', '-')}" for k, v in roofline.items() if v is not None]
    if stray and args.decode != "roofline":
        raise UsageError(f"{', '.join(stray)} need --decode roofline")
    return sweep.build_deployment(
        decode=args.decode,
        **{k: float(v) for k, v in roofline.items() if v is not None},
        hardware=args.hardware,
        precision=args.precision,
        inference_hardware=args.inference_hardware,
        inference_precision=args.inference_precision,
        queries=queries,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        mfu_train=_uncertain(args.mfu),
        mfu_prefill=_uncertain(args.mfu_prefill),
        mfu_decode=_uncertain(args.mfu_decode),
        price=_uncertain(args.price),
        inference_price=_uncertain(args.inference_price),
        **{k: getattr(args, k) for k in ("peak_flops", "inference_peak_flops") if getattr(args, k) is not None},
    )


def _jsonable(x):
    """Nested floats for JSON: arrays to lists, non-finite numbers to None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool)) or x is None:
        return x
    if isinstance(x, (int, np.integer)):
        return int(x)
    array = np.asarray(x, dtype=np.float64)
    if array.ndim:
        return [_jsonable(v) for v in array]
    value = float(array)
    return value if math.isfinite(value) else None


def _emit_json(document: dict) -> None:
    print(json.dumps(_jsonable(document), indent=2, allow_nan=False))


def _header(draws: _Draws, args, q) -> dict:
    """The first entries of every bands document: where the draws came from, seed, levels."""
    return {"posterior": draws.source, "num_draws": draws.num_draws, "seed": args.seed, "quantiles": q}


def _bands_json(values: dict, index=()) -> dict:
    """{name: [value at each quantile]} from {name: array (len(q), *scenarios)}."""
    return {name: array[(slice(None), *index)] for name, array in values.items()}


def _check_output(path, arg: str, suffixes, *inputs) -> None:
    if path is not None:  # before any work: the suffix, never an input (nor the shipped posterior), writable
        _files.check_output(path, inputs=(*inputs, shipped_posterior_path()), suffixes=suffixes, arg=arg, writable=True)


def _overlays(args, draws) -> dict:
    """Fan and iso-loss extras: the fitted runs; the published models only on the embedded fit
    (a user's runs are in another tokenizer's nats)."""
    data = draws.posterior.to_arviz().get("constant_data")
    runs = None if data is None or "log_n" not in data else (np.exp(data["log_n"].values), np.exp(data["log_d"].values))
    return {"runs": runs, **({"references": {}} if getattr(args, "posterior", None) else {})}


def _queries_grid(queries: float):
    if queries > 0:
        return np.logspace(math.log10(queries) - 3, math.log10(queries) + 3, 49)
    return np.logspace(6, 12, 49)


def _warn(message: str) -> None:
    print(f"chinplan: warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------


def cmd_plan(args) -> int:
    if args.unique_tokens is not None:  # the data-constrained optimum (chinplan/_data_constrained_cli.py)
        from chinplan._data_constrained_cli import cmd_plan_data_constrained

        return cmd_plan_data_constrained(args)
    _check_output(args.plot, "--plot", PLOT_SUFFIXES, args.posterior)
    q = _check_quantiles(args.quantiles)
    training, trained_on = _cluster.plan_hardware(args)
    draws = _load_draws(args)
    log_n, log_d, log_loss = (np.asarray(x, np.float64) for x in compute_optimal_draws(draws.theta, jnp.log(jnp.asarray(sensible_budget("--compute", args.compute, decide.median_params(draws.params))))))
    draws_of = {"n": np.exp(log_n), "d": np.exp(log_d), "tokens_per_param": np.exp(log_d - log_n), "loss": np.exp(log_loss)}
    result = {k: np.quantile(v, q, axis=0) for k, v in draws_of.items()}
    beyond = _beyond(draws, draws.posterior.extrapolation(compute=np.asarray(args.compute, np.float64)))
    timing = [{} for _ in args.compute]
    if training is not None:
        hours = _cluster.plan_gpu_hours(training, np.asarray(args.compute, np.float64), draws.num_draws, _key(args, _COSTS), q)
        sized = _cluster.sizing(args, hours)
        timing = [{"training": {"gpu_hours": hours[:, i], **_cluster.json_entry(args, sized, (i,))}} for i in range(len(args.compute))]
    if args.plot:
        lo, hi = min(1e18, min(args.compute) / 100), max(1e26, max(args.compute) * 100)
        budgets = np.logspace(math.log10(lo), math.log10(hi), 41)
        plots.save(plots.fan_chart(draws.theta, budgets, mark=args.compute, **_overlays(args, draws)), args.plot)
    if args.json:
        _emit_json(
            {
                **_header(draws, args, q),
                "uncertainty": draws.uncertainty,
                **({"training_hardware": trained_on} if training is not None else {}),
                "plans": [{"compute": c, **_bands_json(result, (i,)), "extrapolation": beyond[i], **timing[i]} for i, c in enumerate(args.compute)],
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    table = _table(
        f"Compute-optimal plan, {draws.num_draws} posterior draws: {quantile_label(q)}",
        ("FLOPs", "parameters N*", "tokens D*", "tokens/param", "loss"), stacked=True,
    )  # fmt: skip
    for i, c in enumerate(args.compute):
        cells = (band_cell(result[k][:, i], FORMATS[k], stacked=True) for k in ("n", "d", "tokens_per_param", "loss"))
        table.add_row(sci(c), *cells)
    notes = [_beyond_note(c, beyond[i]) for i, c in enumerate(args.compute)]
    notes.append(f"bands: {draws.uncertainty} uncertainty (--uncertainty law|extrapolation); losses in the nats of the fitted runs' tokenizer and evaluation set")
    tables = [table]
    if training is not None:
        tables.append(_cluster.plan_table(args, _table, args.compute, hours, sized, trained_on, quantile_label(q)))
    _print_tables(tables, notes=notes, plot=args.plot)
    return EXIT_OK


# --------------------------------------------------------------------------------------
# tco
# --------------------------------------------------------------------------------------


def cmd_tco(args) -> int:
    _check_output(args.plot, "--plot", PLOT_SUFFIXES, args.posterior)
    q = _check_quantiles(args.quantiles)
    deployment, described = _deployment(args)
    draws = _load_draws(args)
    targets = np.asarray(args.target_loss, np.float64)
    _reachable(draws.params, targets, "--target-loss")
    law_draws = draws.theta if draws.uncertainty == "extrapolation" else draws.params  # closed forms for law
    theta = decide.draw_pairs(law_draws, deployment, key=_key(args, _COSTS))
    result = decide.tco_bands(theta, targets, optimum=args.optimum, q=q)
    groups = ("optimal", "chinchilla")
    values = {g: {f: np.asarray(result.values[g][f], np.float64) for f in kernels.TCO_FIELDS} for g in groups}
    savings = np.asarray(result.values["savings"], np.float64)
    unreachable = decide.draw_fraction(theta, decide.unreachable_fraction(theta, targets))
    median = int(np.argmin(np.abs(np.asarray(q) - 0.5)))
    plan_n, plan_d = values["optimal"]["n"][median], values["optimal"]["d"][median]
    reached = np.isfinite(plan_n) & np.isfinite(plan_d)
    beyond = _beyond(draws, draws.posterior.extrapolation(np.where(reached, plan_n, 1.0), np.where(reached, plan_d, 1.0)))
    sized = {g: _cluster.sizing(args, values[g]["train_gpu_hours"]) for g in groups} if _cluster.requested(args) else {}
    for group in groups:
        if any(np.any(np.asarray(f) > 0) for f in result.nan_fraction[group].values()):
            _warn(f"some draws gave NaN in the {group} plan; their quantiles are over the other draws")
    if args.plot:
        _plot_tco_designs(args, theta, values, targets, f"{described['hardware'].upper()} {described['precision']}")

    best = "inference-aware optimum" if args.optimum == "cost" else "FLOPs-optimal (inference-aware)"
    if args.json:
        _emit_json(
            {
                **_header(draws, args, q),
                "optimum": args.optimum,
                "uncertainty": draws.uncertainty,
                "deployment": described,
                "targets": [
                    {
                        "target_loss": float(t),
                        "unreachable_fraction": float(unreachable[i]),
                        "inference_optimal": _bands_json(values["optimal"], (i,)),
                        "chinchilla": _bands_json(values["chinchilla"], (i,)),
                        "savings": savings[:, i],
                        **({"training": {g: _cluster.json_entry(args, sized[g], (i,)) for g in groups}} if sized else {}),
                        "extrapolation": beyond[i] if reached[i] else None,
                    }
                    for i, t in enumerate(targets)
                ],
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    console = _console()
    console.print(deployment_line(described))
    for i, t in enumerate(targets):
        saved = band_cell(savings[:, i], FORMATS["savings"])
        notes = [f"savings of the inference-aware plan: {saved} (over the draws that reach the target)"]
        if unreachable[i] > 0:
            notes.append(f"target unreachable for {100 * unreachable[i]:.1f}% of draws: they count as inf")
        if reached[i]:
            where = f"the median plan ({human_count(plan_n[i])} params, {human_count(plan_d[i])} tokens)"
            if beyond[i]["decades"] > 0:
                notes.append(f"{where} is {beyond[i]['decades']:.1f} decades beyond the fitted runs")
            else:
                notes.append(f"{where} lies inside the fitted runs")
        notes.append(f"bands: {draws.uncertainty} uncertainty (--uncertainty law|extrapolation)")
        table = _table(
            f"Target loss {t:g}, {draws.num_draws} posterior draws: {quantile_label(q)}",
            ("", best, "Chinchilla-optimal"), stacked=True,
        )  # fmt: skip
        for field in kernels.TCO_FIELDS:
            table.add_row(ROW_LABELS[field], *(band_cell(values[g][field][:, i], FORMATS[field], stacked=True) for g in groups))
            if field == "train_gpu_hours" and sized:  # training time beside its GPU-hours
                by_group = [_cluster.cells(sized[g], (i,), stacked=True) for g in groups]
                for k, f in enumerate(sized["optimal"]):
                    table.add_row(_cluster.labels(args)[f], *(group_cells[k] for group_cells in by_group))
        _print_tables([table], notes)
    if args.plot:
        console.print(f"wrote {args.plot}")
    return EXIT_OK


def _plot_tco_designs(args, theta, values, targets, chip: str) -> None:
    """TCO vs queries of the median inference-aware and Chinchilla plans of the first target."""
    levels = list(args.quantiles)
    median = levels.index(0.5) if 0.5 in levels else len(levels) // 2  # the median, or the middle level
    designs = {}
    for group, label in (("optimal", "inference-aware"), ("chinchilla", "Chinchilla")):
        n, d = values[group]["n"][median, 0], values[group]["d"][median, 0]
        if not (np.isfinite(n) and np.isfinite(d)):
            raise CliError(f"cannot plot: target loss {targets[0]:g} is unreachable for most draws")
        designs[f"{label} {human_count(n)}:{human_count(d)}"] = (float(n), float(d))
    plots.save(plots.tco_vs_queries(theta, designs, None, _queries_grid(args.queries), hardware=chip), args.plot)


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------


def cmd_compare(args) -> int:
    _check_output(args.plot, "--plot", PLOT_SUFFIXES, args.posterior)
    q = _check_quantiles(args.quantiles)
    labels = [label for label, _, _ in args.designs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise UsageError(f"design {repeated[0]!r} given more than once (label them LABEL=N:D)")
    n = np.array([design[1] for design in args.designs])
    d = np.array([design[2] for design in args.designs])
    deployment, described = _deployment(args)
    draws = _load_draws(args)
    # a target at or below E of every draw is reached by no design: probability 0, not an error
    below_e = args.target_loss is not None and args.target_loss <= float(np.min(draws.params.E))
    # checked and sampled once; the loss questions carry the extrapolation component (costs of
    # a fixed design do not depend on the law)
    theta = decide.draw_pairs(draws.theta, deployment, key=_key(args, _COSTS))
    bands = engine.bands(kernels.design_point, theta, n, d, q=tuple(q)).values
    bands = {name: np.asarray(bands[name], np.float64) for name in kernels.DESIGN_FIELDS}
    p_cheaper = decide.draw_fraction(theta, decide.prob_cheaper(theta, n, d))
    p_lower = decide.draw_fraction(theta, decide.prob_lower_loss(theta, n, d))
    p_target = None
    if below_e:
        p_target = np.zeros(len(labels))
    elif args.target_loss is not None:
        p_target = decide.draw_fraction(theta, decide.prob_target(theta, n, d, args.target_loss))
    beyond = _beyond(draws, draws.posterior.extrapolation(n, d))
    sized = _cluster.sizing(args, bands["train_gpu_hours"]) if _cluster.requested(args) else {}
    if args.plot:
        designs = {label: (a, b) for label, a, b in args.designs}
        chip = f"{described['hardware'].upper()} {described['precision']}"
        plots.save(plots.tco_vs_queries(theta, designs, None, _queries_grid(args.queries), hardware=chip), args.plot)

    if args.json:
        designs = []
        for i, label in enumerate(labels):
            entry = {"label": label, "n": n[i], "d": d[i], "tokens_per_param": d[i] / n[i]}
            entry["train_flops"] = 6.0 * n[i] * d[i]
            entry.update(_bands_json(bands, (i,)))
            if p_target is not None:
                entry["p_target"] = p_target[i]
            if sized:
                entry["training"] = _cluster.json_entry(args, sized, (i,))
            entry["extrapolation"] = beyond[i]
            designs.append(entry)
        _emit_json(
            {
                **_header(draws, args, q),
                "deployment": described,
                "uncertainty": draws.uncertainty,
                "target_loss": args.target_loss,
                "designs": designs,
                "labels": labels,
                "p_cheaper": p_cheaper,
                "p_lower_loss": p_lower,
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    shapes = _table("Designs", ["design", "parameters N", "tokens D", "tokens/param", "training FLOPs"])
    headers = ["design", "loss", "GPU-hours", "total cost"] + ([f"P(loss <= {args.target_loss:g})"] if p_target is not None else [])
    table = _table(f"{draws.num_draws} posterior draws: {quantile_label(q)}", headers, stacked=True)
    for i, label in enumerate(labels):
        shapes.add_row(label, human_count(n[i]), human_count(d[i]), f"{d[i] / n[i]:.1f}", sci(6.0 * n[i] * d[i]))
        row = [label] + [band_cell(bands[k][:, i], FORMATS[k], stacked=True) for k in ("loss", "gpu_hours", "dollars")]
        table.add_row(*row, *([f"{p_target[i]:.3f}"] if p_target is not None else []))
    tables = [deployment_line(described), shapes, table]
    if sized:
        names = _cluster.labels(args)
        timing = _table(f"Training time: {quantile_label(q)}", ["design", "training GPU-hours", *(names[k] for k in sized)], stacked=True)
        for i, label in enumerate(labels):
            timing.add_row(label, band_cell(bands["train_gpu_hours"][:, i], FORMATS["train_gpu_hours"], stacked=True), *_cluster.cells(sized, (i,), stacked=True))
        tables.append(timing)
    for title, matrix in (("P(row cheaper than column)", p_cheaper), ("P(row has lower loss than column)", p_lower)):
        grid = _table(title, ["", *labels])
        for i, label in enumerate(labels):
            grid.add_row(label, *("-" if i == j else f"{matrix[i, j]:.3f}" for j in range(len(labels))))
        tables.append(grid)
    notes = [f"{label}: {b['decades']:.1f} decades beyond the fitted runs" for label, b in zip(labels, beyond) if b["decades"] > 0]
    if below_e:
        notes.append(f"no posterior draw reaches loss {args.target_loss:g}: it is at or below every draw's irreducible loss E")
    notes.append(f"loss bands and probabilities: {draws.uncertainty} uncertainty (--uncertainty law|extrapolation)")
    _print_tables(tables, notes=notes, plot=args.plot)
    return EXIT_OK


# --------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------


def _check_range(option: str, values) -> tuple[float, float]:
    lo, hi = values
    if not lo < hi:
        raise UsageError(f"{option} needs LO < HI, got {lo:g} {hi:g}")
    return lo, hi


def cmd_plot(args) -> int:
    _check_output(args.output, "-o/--output", PLOT_SUFFIXES, args.posterior)
    if args.kind == "fan":
        lo, hi = _check_range("--compute-range", args.compute_range)
    elif args.kind == "tco":
        lo, hi = _check_range("--queries-range", args.queries_range)
        if args.tokens_per_query is None and args.input_tokens is None and args.output_tokens is None:
            args.tokens_per_query = PLOT_TOKENS_PER_QUERY  # documented in the option's help
        deployment, described = _deployment(args, queries=0.0)
        if deployment.input_tokens + deployment.output_tokens == 0:
            raise UsageError("plot tco needs --tokens-per-query or --input-tokens/--output-tokens > 0")
    draws = _load_draws(args)
    if args.kind == "fan":
        fig = plots.fan_chart(draws.params, np.logspace(math.log10(lo), math.log10(hi), 41), **_overlays(args, draws))
    elif args.kind == "iso-loss":
        fig = plots.iso_loss(draws.params, **_overlays(args, draws))
    elif args.kind == "tco":
        designs = args.designs or [("Llama-3 8B", 8e9, 15e12), ("Chinchilla 70B", 70e9, 1.4e12)]
        grid = np.logspace(math.log10(lo), math.log10(hi), 41)
        designs = {label: (n, d) for label, n, d in designs}
        chip = f"{described['hardware'].upper()} {described['precision']}"
        fig = plots.tco_vs_queries(draws.params, designs, deployment, grid, key=_key(args, _COSTS), hardware=chip)
    else:
        max_draws = None if args.draws is None else max(2, args.draws)  # evenly thinned by arviz
        fig = plots.pair_plot(draws.posterior, kind=args.pair_kind, max_draws=max_draws)
    plots.save(fig, args.output)
    if args.json:
        size, n_draws = os.path.getsize(args.output), draws.num_draws
        _emit_json({"kind": args.kind, "output": args.output, "bytes": size, "num_draws": n_draws, "seed": args.seed})
    else:
        _console().print(f"wrote {args.output} ({args.kind}, {draws.num_draws} posterior draws)")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# fit and validate
# --------------------------------------------------------------------------------------


def cmd_fit(args) -> int:
    _check_output(args.output, "-o/--output", FIT_SUFFIXES, args.runs)
    runs = load_runs(args.runs)
    law = args.law.replace("-", "_")
    options = {"max_epochs": args.max_epochs} if law == "data_constrained" and args.max_epochs is not None else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, one line each
        warnings.simplefilter("always", UserWarning)
        posterior = fit(
            runs,
            key=jax.random.PRNGKey(args.seed),
            num_draws=args.samples,
            num_warmup=args.warmup,
            num_chains=args.chains,
            target_accept_prob=args.target_accept,
            extrapolation=law == "chinchilla" and not args.no_extrapolation,
            max_retries=args.max_retries,
            progress=None if not args.json else False,
            law=law,
            **options,
        )
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            _warn(str(warning.message))
    posterior.save(args.output)
    summary = posterior.summary()
    problems = posterior.convergence_problems()
    attempts = json.loads(posterior.attrs.get("fit_attempts", "[]"))
    if args.json:
        _emit_json(
            {
                "output": args.output,
                "num_draws": posterior.num_draws,
                "num_divergences": posterior.num_divergences,
                "summary": {name: row.to_dict() for name, row in summary.iterrows()},
                "warnings": problems,
                "converged": not problems,
                "attempts": attempts,
                "extrapolation": posterior.has_extrapolation,
            }
        )
    else:
        table = _render.fit_table(summary, f"Posterior of the law, {len(runs)} runs, {posterior.num_draws} draws")
        console = _console()
        console.print(table)
        console.print(f"wrote {args.output} ({posterior.num_draws} draws, {posterior.num_divergences} divergences)")
        if len(attempts) > 1:
            console.print(f"convergence gate: {len(attempts)} attempts (longer warm-up, target acceptance, fresh starts)")
    if problems and not args.allow_unconverged:
        raise CliError(
            f"NUTS did not converge after {len(attempts)} attempt(s): {'; '.join(problems[:3])} "
            f"(the file records the diagnostics; more --samples/--warmup, or --allow-unconverged)"
        )
    for problem in problems:
        _warn(problem)
    return EXIT_OK


def cmd_hardware(args) -> int:
    from chinplan.costs import HARDWARE, HARDWARE_ALIASES, HARDWARE_SOURCES

    if args.json:
        _emit_json({name: {**HARDWARE[name]._asdict(), "alias_of": HARDWARE_ALIASES.get(name), "source": HARDWARE_SOURCES.get(name)}
                    for name in sorted(HARDWARE)})  # fmt: skip
        return EXIT_OK
    _print_tables(_render.hardware_lines(HARDWARE, HARDWARE_ALIASES, HARDWARE_SOURCES, with_sources=args.sources))
    return EXIT_OK


def cmd_validate(args) -> int:
    runs = load_runs(args.runs) if args.runs else datasets.chinchilla()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = calibration_report(
            runs, key=jax.random.PRNGKey(args.seed), splits=tuple(args.splits), levels=tuple(args.levels),
            compute_threshold=args.threshold, num_draws=args.samples, num_warmup=args.warmup, num_chains=args.chains,
            progress=None if not args.json else False,
        )  # fmt: skip
    if args.json:
        _emit_json(result)
        return EXIT_OK
    _print_tables(_render.validate_lines(result, args.levels))
    return EXIT_OK
