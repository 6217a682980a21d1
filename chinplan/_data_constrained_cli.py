"""``chinplan plan --unique-tokens``: the data-constrained optimum, parse -> library -> render.

Kept out of :mod:`chinplan._commands`: with ``--unique-tokens`` the plan for each budget is the
data-constrained optimum (:func:`chinplan.data_constrained.plan`) under a data-constrained
posterior (``--posterior`` fitted with ``chinplan fit --law data-constrained``, or the embedded
datablations fit), with epochs, and a one-line warning when a plan lies beyond the epochs the
law was fitted on.
"""

from __future__ import annotations

import warnings

import numpy as np

from chinplan import _commands as base
from chinplan import data_constrained
from chinplan.cli import EXIT_OK, CliError
from chinplan.format import FORMATS, band_cell, human_count, quantile_label, sci
from chinplan.posterior import Posterior

_FIELDS = ("n", "d", "epochs", "loss")


def cmd_plan_data_constrained(args) -> int:
    if args.plot:
        raise CliError("--plot is not available with --unique-tokens (examples/data_constrained.py --plot draws loss against epochs)")
    if args.uncertainty == "extrapolation":
        raise CliError("--uncertainty extrapolation: a data-constrained posterior has only the law's uncertainty (use --uncertainty law or leave it out)")
    q = base._check_quantiles(args.quantiles)
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
        ds = data_constrained.plan(posterior, args.compute, args.unique_tokens, q=q, num_draws=args.draws, seed=[args.seed, base._THIN])
    for warning in caught:
        if issubclass(warning.category, data_constrained.EpochRangeWarning):
            base._warn(str(warning.message))
    values = {k: np.asarray(ds[k].values, np.float64) for k in _FIELDS}  # (q, compute, unique)
    cells = [(i, j) for i in range(len(args.compute)) for j in range(len(args.unique_tokens))]
    if args.json:
        base._emit_json({
            "posterior": source, "num_draws": total, "seed": args.seed, "quantiles": q, "uncertainty": "law",
            "fitted_max_epochs": fitted,
            "plans": [{"compute": args.compute[i], "unique_tokens": args.unique_tokens[j], **base._bands_json(values, (i, j))} for i, j in cells],
        })  # fmt: skip
        return EXIT_OK
    table = base._table(
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
    base._print_tables([table], notes=notes, plot=None)
    return EXIT_OK
