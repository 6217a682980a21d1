"""The cost questions: ``chinplan tco``, ``compare`` and ``smallest``.

``tco``: the inference-aware optimum against the compute optimum, GPU-hours and dollars
(:func:`chinplan.decide.risk.tco_bands`); ``compare``: loss and cost bands of fixed designs
and the probability that each is cheaper or better than another; ``smallest``: the smallest
model (or, without ``--tokens``, the cheapest design) reaching a target loss with probability
p (:func:`chinplan.decide.risk.smallest_model`, :func:`~chinplan.decide.risk.chance_constrained`).
(``hardware``, a static table, lives in :mod:`.render`: it loads no JAX.) Every band carries the extrapolation component unless
``--uncertainty law``.
"""

from __future__ import annotations

import numpy as np

from chinplan import engine
from chinplan.cli import cluster, inputs, render
from chinplan.cli.parser import EXIT_OK, PLOT_SUFFIXES, CliError, UsageError
from chinplan.decide import risk as decide
from chinplan.engine import kernels
from chinplan.format import (
    FORMATS,
    ROW_LABELS,
    band_cell,
    chip_words,
    deployment_line,
    human_count,
    human_dollars,
    quantile_label,
    ratio,
    sci,
)
from chinplan.plots import charts


def _serving(described: dict):
    """The serving chip when anything is served (else None: only training counts)."""
    return described.get("inference_hardware", described["hardware"]) if described.get("queries") else None


def _row_label(field: str, described: dict) -> str:
    """ROW_LABELS[field] in the words of the chips it runs on ('chip-hours' on a TPU)."""
    chips = {"train_gpu_hours": (described["hardware"],), "inference_gpu_hours": (_serving(described) or described["hardware"],)}
    return chip_words(ROW_LABELS[field], *chips.get(field, (described["hardware"], _serving(described))))


def cmd_tco(args) -> int:
    inputs.check_output(args.plot, "--plot", PLOT_SUFFIXES, args.posterior)
    q = inputs.check_quantiles(args.quantiles)
    deployment, described = inputs.deployment_of(args)
    with render.working(f"tco: {render.COMPILING_NOTE}"):
        draws = inputs.load_draws(args, fast=True)
        targets = np.asarray(args.target_loss, np.float64)
        inputs.check_reachable(draws.params, targets, "--target-loss")
        law_draws = draws.theta if draws.uncertainty == "extrapolation" else draws.params  # closed forms for law
        theta = decide.draw_pairs(law_draws, deployment, key=inputs.key_for(args, inputs.COSTS))
        result = decide.tco_bands(theta, targets, optimum=args.optimum, q=q)
        groups = ("optimal", "chinchilla")
        values = {g: {f: np.asarray(result.values[g][f], np.float64) for f in kernels.TCO_FIELDS} for g in groups}
        savings = np.asarray(result.values["savings"], np.float64)
        unreachable = decide.draw_fraction(theta, decide.unreachable_fraction(theta, targets))
        median, central = inputs.central_quantile(q)
        plan_n, plan_d = values["optimal"]["n"][median], values["optimal"]["d"][median]
        reached = np.isfinite(plan_n) & np.isfinite(plan_d)
        safe_n, safe_d = np.where(reached, plan_n, 1.0), np.where(reached, plan_d, 1.0)
        beyond = inputs.beyond_rows(draws, draws.posterior.extrapolation(safe_n, safe_d), np.where(reached, plan_n, np.nan), np.where(reached, plan_d, np.nan))
        sized = {g: cluster.sizing(args, values[g]["train_gpu_hours"]) for g in groups} if cluster.requested(args) else {}
        for group in groups:
            if any(np.any(np.asarray(f) > 0) for f in result.nan_fraction[group].values()):
                inputs.warn(f"some draws gave NaN in the {group} plan; their quantiles are over the other draws")
        if args.plot:
            _plot_tco_designs(args, theta, values, targets, f"{described['hardware'].upper()} {described['precision']}")

        best = "inference-aware optimum" if args.optimum == "cost" else "FLOPs-optimal (inference-aware)"
    if args.json:
        render.emit_json(
            {
                **render.bands_header(draws, args, q),
                "optimum": args.optimum,
                "uncertainty": draws.uncertainty,
                "deployment": described,
                "targets": [
                    {
                        "target_loss": float(t),
                        "unreachable_fraction": float(unreachable[i]),
                        "inference_optimal": render.bands_json(values["optimal"], (i,)),
                        "chinchilla": render.bands_json(values["chinchilla"], (i,)),
                        "savings": savings[:, i],
                        **({"training": {g: cluster.json_entry(args, sized[g], (i,)) for g in groups}} if sized else {}),
                        "extrapolation": beyond[i] if reached[i] else None,
                    }
                    for i, t in enumerate(targets)
                ],
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    console = render.console()
    console.print(deployment_line(described))
    for i, t in enumerate(targets):
        saved = band_cell(savings[:, i], FORMATS["savings"])
        notes = [f"savings of the inference-aware plan: {saved} (over the draws that reach the target)"]
        if unreachable[i] > 0:
            notes.append(f"target unreachable for {100 * unreachable[i]:.1f}% of draws: they count as inf")
        if reached[i]:
            notes.append(inputs.beyond_note(f"the {central} plan ({human_count(plan_n[i])} params, {human_count(plan_d[i])} tokens)", beyond[i]))
        notes.append(f"bands: {draws.uncertainty} uncertainty (--uncertainty law|extrapolation)")
        table = render.table(
            f"Target loss {t:g}, {draws.num_draws} posterior draws: {quantile_label(q)}",
            ("", best, "compute-optimal"), stacked=True,
        )  # fmt: skip
        for field in kernels.TCO_FIELDS:
            table.add_row(_row_label(field, described), *(band_cell(values[g][field][:, i], FORMATS[field], stacked=True) for g in groups))
            if field == "train_gpu_hours" and sized:  # training time beside its GPU-hours
                by_group = [cluster.cells(sized[g], (i,), stacked=True) for g in groups]
                for k, f in enumerate(sized["optimal"]):
                    table.add_row(cluster.labels(args)[f], *(group_cells[k] for group_cells in by_group))
        render.print_tables([table], notes)
    if args.plot:
        console.print(f"wrote {args.plot}")
    return EXIT_OK


def _plot_tco_designs(args, theta, values, targets, chip: str) -> None:
    """TCO vs queries of the median inference-aware and compute-optimal plans of the first target."""
    levels = list(args.quantiles)
    median = levels.index(0.5) if 0.5 in levels else len(levels) // 2  # the median, or the middle level
    designs = {}
    for group, label in (("optimal", "inference-aware"), ("chinchilla", "compute-optimal")):
        n, d = values[group]["n"][median, 0], values[group]["d"][median, 0]
        if not (np.isfinite(n) and np.isfinite(d)):
            raise CliError(f"cannot plot: target loss {targets[0]:g} is unreachable for most draws")
        designs[f"{label} {human_count(n)}:{human_count(d)}"] = (float(n), float(d))
    charts.save(charts.tco_vs_queries(theta, designs, None, inputs.queries_grid(args.queries), hardware=chip), args.plot)


def cmd_compare(args) -> int:
    inputs.check_output(args.plot, "--plot", PLOT_SUFFIXES, args.posterior)
    q = inputs.check_quantiles(args.quantiles)
    labels = [label for label, _, _ in args.designs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise UsageError(f"design {repeated[0]!r} given more than once (label them LABEL=N:D)")
    n = np.array([design[1] for design in args.designs])
    d = np.array([design[2] for design in args.designs])
    from chinplan import _checks  # JAX's dtype decides the range; compare loads JAX anyway

    for label, n_i, d_i in args.designs:  # a cost of inf is not a result
        try:
            _checks.log_representable(f"design {label}: its training FLOPs 6 N D", np.log(6.0) + np.log(n_i) + np.log(d_i))
        except ValueError as err:
            raise CliError(str(err).replace("enable JAX's x64 mode", "JAX_ENABLE_X64=1")) from None
    deployment, described = inputs.deployment_of(args)
    with render.working(f"compare: {render.COMPILING_NOTE}"):
        draws = inputs.load_draws(args, fast=True)
        # a target at or below E of every draw is reached by no design: probability 0, not an error
        below_e = args.target_loss is not None and args.target_loss <= float(np.min(draws.params.E))
        # checked and sampled once; the loss questions carry the extrapolation component (costs of
        # a fixed design do not depend on the law)
        theta = decide.draw_pairs(draws.theta, deployment, key=inputs.key_for(args, inputs.COSTS))
        bands = engine.bands(kernels.design_point, theta, n, d, q=tuple(q)).values
        bands = {name: np.asarray(bands[name], np.float64) for name in kernels.DESIGN_FIELDS}
        p_cheaper = decide.draw_fraction(theta, decide.prob_cheaper(theta, n, d))
        p_lower = decide.draw_fraction(theta, decide.prob_lower_loss(theta, n, d))
        p_target = None
        if below_e:
            p_target = np.zeros(len(labels))
        elif args.target_loss is not None:
            p_target = decide.draw_fraction(theta, decide.prob_target(theta, n, d, args.target_loss))
        beyond = inputs.beyond_rows(draws, draws.posterior.extrapolation(n, d), n, d)
        sized = cluster.sizing(args, bands["train_gpu_hours"]) if cluster.requested(args) else {}
        if args.plot:
            designs = {label: (a, b) for label, a, b in args.designs}
            chip = f"{described['hardware'].upper()} {described['precision']}"
            charts.save(charts.tco_vs_queries(theta, designs, None, inputs.queries_grid(args.queries), hardware=chip), args.plot)

    if args.json:
        designs = []
        for i, label in enumerate(labels):
            entry = {"label": label, "n": n[i], "d": d[i], "tokens_per_param": d[i] / n[i]}
            entry["train_flops"] = 6.0 * n[i] * d[i]
            entry.update(render.bands_json(bands, (i,)))
            if p_target is not None:
                entry["p_target"] = p_target[i]
            if sized:
                entry["training"] = cluster.json_entry(args, sized, (i,))
            entry["extrapolation"] = beyond[i]
            designs.append(entry)
        render.emit_json(
            {
                **render.bands_header(draws, args, q),
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
    shapes = render.table("Designs", ["design", "parameters N", "tokens D", "tokens/param", "training FLOPs"])
    headers = ["design", "loss", chip_words("GPU-hours", described["hardware"], _serving(described)), "total cost"] + ([f"P(loss <= {args.target_loss:g})"] if p_target is not None else [])
    table = render.table(f"{draws.num_draws} posterior draws: {quantile_label(q)}", headers, stacked=True)
    for i, label in enumerate(labels):
        shapes.add_row(label, human_count(n[i]), human_count(d[i]), ratio(d[i] / n[i]), sci(6.0 * n[i] * d[i]))
        row = [label] + [band_cell(bands[k][:, i], FORMATS[k], stacked=True) for k in ("loss", "gpu_hours", "dollars")]
        table.add_row(*row, *([f"{p_target[i]:.3f}"] if p_target is not None else []))
    tables = [deployment_line(described), shapes, table]
    if sized:
        names = cluster.labels(args)
        timing = render.table(f"Training time: {quantile_label(q)}", ["design", chip_words("training GPU-hours", described["hardware"]), *(names[k] for k in sized)], stacked=True)
        for i, label in enumerate(labels):
            timing.add_row(label, band_cell(bands["train_gpu_hours"][:, i], FORMATS["train_gpu_hours"], stacked=True), *cluster.cells(sized, (i,), stacked=True))
        tables.append(timing)
    for title, matrix in (("P(row cheaper than column)", p_cheaper), ("P(row has lower loss than column)", p_lower)) if len(labels) > 1 else ():
        grid = render.table(title, ["", *labels])
        for i, label in enumerate(labels):
            grid.add_row(label, *("-" if i == j else f"{matrix[i, j]:.3f}" for j in range(len(labels))))
        tables.append(grid)
    notes = [inputs.beyond_note(label, b) for label, b in zip(labels, beyond) if b["decades"] > 0 or b["below_decades"] > 0]
    if below_e:
        notes.append(f"no posterior draw reaches loss {args.target_loss:g}: it is at or below every draw's irreducible loss E")
    notes.append(f"loss bands and probabilities: {draws.uncertainty} uncertainty (--uncertainty law|extrapolation)")
    render.print_tables(tables, notes=notes, plot=args.plot)
    return EXIT_OK


#: The N x D grid searched without --tokens: 10M to 10T parameters, 100M to 1Q tokens.
N_GRID = np.logspace(7, 13, 97)
D_GRID = np.logspace(8, 15, 113)


def cmd_smallest(args) -> int:
    q = inputs.check_quantiles(args.quantiles)
    deployment, described = inputs.deployment_of(args)
    with render.working(f"smallest: {render.COMPILING_NOTE}"):
        draws = inputs.load_draws(args, fast=True)
        inputs.check_reachable(draws.params, [args.target_loss], "--target-loss")
        law_draws = draws.theta if draws.uncertainty == "extrapolation" else draws.params  # closed forms for law
        theta = decide.draw_pairs(law_draws, deployment, key=inputs.key_for(args, inputs.COSTS))
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
        beyond = inputs.beyond_rows(draws, draws.posterior.extrapolation(np.array([n]), np.array([d])), np.array([n]), np.array([d]))[0]
    if args.json:
        render.emit_json({
            **render.bands_header(draws, args, q), "uncertainty": draws.uncertainty, "target_loss": args.target_loss, "prob": args.prob,
            "tokens": args.tokens, "deployment": described, "n": n, "d": d, "tokens_per_param": d / n,
            "train_flops": 6.0 * n * d, "p_target": reached, **found, **bands, "extrapolation": beyond,
        })  # fmt: skip
        return EXIT_OK
    if args.tokens is not None:
        title = f"Smallest model with P(loss <= {args.target_loss:g}) >= {args.prob:g} on {human_count(d)} tokens; bands {quantile_label(q)}"
    else:  # no --tokens: the cheapest design (total cost) on the grid, which need not be the smallest model
        title = f"Cheapest design (total cost) with P(loss <= {args.target_loss:g}) >= {args.prob:g}, N x D grid; bands {quantile_label(q)}"
    table = render.table(title, ["", "value"], stacked=True)
    table.add_row("parameters N", human_count(n))
    table.add_row("tokens D", human_count(d))
    table.add_row("tokens/param", ratio(d / n))
    table.add_row("training FLOPs", sci(6.0 * n * d))
    table.add_row(f"P(loss <= {args.target_loss:g})", f"{reached:.3f}")
    for name in ("loss", "gpu_hours", "dollars"):
        table.add_row(_row_label(name, described), band_cell(bands[name], FORMATS[name], stacked=True))
    centre, central = inputs.central_quantile(q)
    notes = [deployment_line(described), f"{draws.num_draws} posterior draws, {draws.uncertainty} uncertainty (--uncertainty law|extrapolation); "
             f"total cost {human_dollars(bands['dollars'][centre])} at the {central}"]  # fmt: skip
    notes.append(inputs.beyond_note(f"{human_count(n)} params on {human_count(d)} tokens", beyond))
    render.print_tables([table], notes)
    return EXIT_OK
