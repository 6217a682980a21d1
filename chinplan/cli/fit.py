"""``chinplan fit`` and ``chinplan validate``: make a posterior from runs, and back-test it.

``fit`` runs :func:`chinplan.inference.fit.fit` (NUTS, the convergence gate, the extrapolation
folds) and writes the posterior file; ``validate`` runs the back-tests of
:func:`chinplan.inference.calibration.report` on the embedded runs or a CSV of one's own, and
``validate --ladders`` the leave-one-ladder-out back-test of :mod:`chinplan.cli.ladders`.
"""

from __future__ import annotations

import json
import warnings

import jax
import numpy as np

from chinplan import _files, datasets
from chinplan.cli import inputs, render
from chinplan.cli.ladders import cmd_validate_ladders
from chinplan.cli.parser import EXIT_OK, FIT_SUFFIXES, CliError, UsageError
from chinplan.inference.calibration import report as calibration_report
from chinplan.inference.fit import fit
from chinplan.inference.posterior import ConvergenceWarning
from chinplan.inference.runs import load_runs


#: Bytes a fit's file takes per kept draw (chains x --samples), at least: the sampled sites'
#: draws, compressed (the shipped 4 x 1,000-draw file takes 84 per draw). ``fit`` checks this
#: much free space beside its output before NUTS, not after the whole fit.
FIT_BYTES_PER_DRAW = 40


def cmd_fit(args) -> int:
    inputs.check_output(args.output, "-o/--output", FIT_SUFFIXES, args.runs)
    _files.check_space(args.output, FIT_BYTES_PER_DRAW * args.chains * args.samples, arg="-o/--output")
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
            allow_unconverged=True,  # saved, then reported and refused below with exit 1
            **options,
        )
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):  # in the command line's terms
            inputs.warn(str(warning.message).replace("max_epochs=math.inf", "--max-epochs inf").replace("max_epochs", "--max-epochs"))
    posterior.save(args.output)
    summary = posterior.summary()
    problems = posterior.convergence_problems()
    attempts = json.loads(posterior.attrs.get("fit_attempts", "[]"))
    if args.json:
        render.emit_json(
            {
                "output": args.output,
                "num_draws": posterior.num_draws,
                "num_divergences": posterior.num_divergences,
                "summary": {name: row.to_dict() for name, row in summary.iterrows()},
                "warnings": problems,
                "converged": not problems,
                "attempts": attempts,
                "extrapolation": posterior.has_extrapolation,
                "uncertainty": summary.attrs["uncertainty"],
                "allocation_not_identified": unidentified_allocation(summary, len(runs)),
            }
        )
    else:
        table = render.fit_table(summary, f"Posterior of the law, {len(runs)} runs, {posterior.num_draws} draws")
        console = render.console()
        console.print(table)
        console.print(f"tokens/param: {summary.attrs['uncertainty']} uncertainty, as chinplan plan answers with this file")
        for line in unidentified_allocation(summary, len(runs)):
            console.print(line)
        console.print(f"wrote {args.output} ({posterior.num_draws} draws, {posterior.num_divergences} divergences)")
        if law != "chinchilla":
            console.print(f"a {args.law} posterior: plan, tco, compare, smallest, next-runs, sweep and plot read only Chinchilla-law files; "
                          f"this one is read by {inputs.OTHER_LAW_READERS[law].replace('FILE', args.output)}")  # fmt: skip
        if len(attempts) > 1:
            console.print(f"convergence gate: {len(attempts)} attempts (more chains, longer warm-up, target acceptance, fresh longer chains)")
    if problems and not args.allow_unconverged:
        raise CliError(
            f"NUTS did not converge after {len(attempts)} attempt(s): {'; '.join(problems[:3])} "
            f"(the file records the diagnostics; more --samples/--warmup, or --allow-unconverged)"
        )
    for problem in problems:
        inputs.warn(problem)
    return EXIT_OK


#: A tokens-per-parameter 90% band wider than this factor: the runs do not pin down the allocation.
UNIDENTIFIED_SPREAD = 30.0


def unidentified_allocation(summary, num_runs: int) -> list[str]:
    """A line per tokens/param row whose 90% band spans more than :data:`UNIDENTIFIED_SPREAD`x:
    the fit cannot tell how to split compute (too few runs, or runs of too few shapes)."""
    lines = []
    for name, row in summary.iterrows():
        lo, hi = float(row["q5"]), float(row["q95"])
        if str(name).startswith("tokens_per_param") and lo > 0 and hi / lo > UNIDENTIFIED_SPREAD:
            lines.append(f"{render._site_label(name)}: the {num_runs} runs do not identify the allocation (90% band "
                         f"{render.compact_number(lo)} - {render.compact_number(hi)}, {hi / lo:.0f}x wide): add runs of more sizes per budget")  # fmt: skip
    return lines


def cmd_validate(args) -> int:
    if args.ladders is not None:
        return cmd_validate_ladders(args)
    if args.cache is not None:
        raise UsageError(f"--cache {args.cache!r} applies to --ladders only (the back-tests of RUNS.csv keep no fits)")
    runs = load_runs(args.runs) if args.runs else datasets.chinchilla()
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="ignore"):
        # quantiles of exp(replicates) overflow to inf in draws far out; their ranks, and so the
        # quantiles, are those of the logs (inference.calibration should take them in logs)
        warnings.simplefilter("always", ConvergenceWarning)
        result = calibration_report(
            runs, key=jax.random.PRNGKey(args.seed), splits=tuple(args.splits), levels=tuple(args.levels),
            compute_threshold=args.threshold, num_draws=args.samples, num_warmup=args.warmup, num_chains=args.chains,
            progress=None if not args.json else False,
        )  # fmt: skip
    result["convergence_problems"] = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, ConvergenceWarning)]
    result["converged"] = not result["convergence_problems"]
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            inputs.warn(" ".join(str(warning.message).split()))
    if args.json:
        render.emit_json(result)
        return EXIT_OK
    render.print_tables(render.validate_lines(result, args.levels))
    return EXIT_OK
