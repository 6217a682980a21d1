"""The ``chinplan`` command line: a thin front end over the library.

    chinplan plan --compute 5.76e23 [--posterior FILE] [--json]
    chinplan fit RUNS.csv -o posterior.nc [--draws 1000 --chains 4 --seed 0]

Errors print one line on stderr and exit non-zero (2 for bad arguments, 1 for bad input
files or values), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

__all__ = ["main", "human_count", "human_flops"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def human_count(x: float) -> str:
    """70e9 -> '70B', 1.4e12 -> '1.4T', 5.2e5 -> '520K'; inf -> 'inf'."""
    if not math.isfinite(x):
        return str(x)
    for scale, suffix in ((1e15, "Q"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def human_flops(x: float) -> str:
    """5.76e23 -> '5.76e23 FLOPs', 1e24 -> '1e24 FLOPs'."""
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)} FLOPs"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite positive number")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"chinplan: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chinplan", description="Bayesian Chinchilla scaling-law planning.")
    from chinplan import __version__

    parser.add_argument("--version", action="version", version=f"chinplan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = commands.add_parser("plan", help="compute-optimal N, D, tokens per parameter and loss bands for a FLOP budget")
    plan.add_argument("--compute", type=_positive_float, nargs="+", required=True, metavar="FLOPS", help="training budget(s) C in FLOPs")
    plan.add_argument("--posterior", metavar="FILE", help="posterior NetCDF file (default: the embedded Chinchilla fit)")
    plan.add_argument("--quantiles", type=float, nargs="+", default=[0.05, 0.5, 0.95], metavar="Q")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("--seed", type=int, default=0, help="PRNG seed (unused by plan: it reads draws, it samples nothing)")

    fit = commands.add_parser("fit", help="fit the law to a runs CSV with NUTS and save the posterior")
    fit.add_argument("runs", metavar="RUNS.csv")
    fit.add_argument("-o", "--output", required=True, metavar="FILE", help="posterior NetCDF to write")
    fit.add_argument("--draws", type=_positive_int, default=1000)
    fit.add_argument("--warmup", type=_positive_int, default=500)
    fit.add_argument("--chains", type=_positive_int, default=4)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _load_posterior(path):
    from chinplan.fit import Posterior, default_posterior

    return default_posterior() if path is None else Posterior.load(path)


def _plan_point(theta, compute):
    from chinplan.law import compute_optimal

    plan = compute_optimal(theta, compute)
    return {"n": plan.n, "d": plan.d, "tokens_per_param": plan.d / plan.n, "loss": plan.loss}


def plan_bands(posterior, compute, q):
    """Bands of the compute-optimal plan for each budget: a dict of (len(q), len(compute)) arrays."""
    import numpy as np

    from chinplan.engine import bands

    result = bands(_plan_point, posterior.params, np.asarray(compute, dtype=np.float64), q=tuple(q))
    return {name: np.asarray(v, dtype=np.float64) for name, v in result.values.items()}


def _cmd_plan(args) -> int:
    if any(not 0.0 <= q <= 1.0 for q in args.quantiles):
        raise CliError(f"--quantiles must lie in [0, 1], got {args.quantiles}")
    posterior = _load_posterior(args.posterior)
    result = plan_bands(posterior, args.compute, args.quantiles)
    if args.json:
        out = {
            "posterior": args.posterior or "embedded Chinchilla (245 runs)",
            "num_draws": posterior.num_draws,
            "quantiles": args.quantiles,
            "plans": [
                {"compute": c, **{name: result[name][:, i].tolist() for name in result}} for i, c in enumerate(args.compute)
            ],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    labels = "/".join(f"{100 * q:g}%" for q in args.quantiles)
    if len(args.quantiles) == 3:
        labels = f"{100 * args.quantiles[1]:g}% ({100 * args.quantiles[0]:g}% - {100 * args.quantiles[2]:g}%)"
    table = Table(title=f"Compute-optimal plan, {posterior.num_draws} posterior draws: {labels}")
    for header in ("budget", "parameters N*", "tokens D*", "tokens/param", "loss"):
        table.add_column(header, justify="right")
    def fmt(name, f, i):
        values = [f(v) for v in result[name][:, i]]
        if len(values) == 3:  # median (low - high)
            return f"{values[1]} ({values[0]} - {values[2]})"
        return " / ".join(values)

    for i, c in enumerate(args.compute):
        table.add_row(
            human_flops(c),
            fmt("n", human_count, i),
            fmt("d", human_count, i),
            fmt("tokens_per_param", lambda v: f"{v:.1f}", i),
            fmt("loss", lambda v: f"{v:.3f}", i),
        )
    Console().print(table)
    return EXIT_OK


def _cmd_fit(args) -> int:
    import jax

    from chinplan.data import load_runs
    from chinplan.fit import ConvergenceWarning, fit

    runs = load_runs(args.runs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        posterior = fit(
            runs,
            key=jax.random.PRNGKey(args.seed),
            num_draws=args.draws,
            num_warmup=args.warmup,
            num_chains=args.chains,
            progress=None if not args.json else False,
        )
    posterior.save(args.output)
    summary = posterior.summary()
    problems = posterior.convergence_problems()
    if args.json:
        print(json.dumps({"output": args.output, "summary": json.loads(summary.to_json(orient="index")), "warnings": problems}, indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(summary.round(4).to_string())
        console.print(f"wrote {args.output} ({posterior.num_draws} draws, {posterior.num_divergences} divergences)")
    for problem in problems:
        print(f"chinplan: warning: {problem}", file=sys.stderr)
    del caught
    return EXIT_OK


def main(argv=None) -> int:
    """Entry point of the ``chinplan`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return {"plan": _cmd_plan, "fit": _cmd_fit}[args.command](args)
    except (CliError, ValueError, OSError) as err:
        print(f"chinplan: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("chinplan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
