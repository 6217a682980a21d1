"""Tables of the ``chinplan`` commands: rich tables that fit 80 columns and never cut a cell.

One job (and ``chinplan hardware``, a static table that needs no JAX): turn results the commands computed (the command modules of :mod:`chinplan.cli`) into rich tables and
lines. Every column folds a cell too wide for it onto a second line instead of cutting it with
"…", so a design label or a number is always shown whole; band cells are stacked (the median,
then the 5% - 95% range below it) so the wide tables stay within 80 columns. A terminal's width
is respected; a pipe or a file gets ``COLUMNS`` when it is set, else 80 (:data:`WIDTH`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

__all__ = ["console", "working", "table", "print_tables", "fit_table", "validate_lines", "compact_number", "WIDTH"]

#: The width every table is designed to fit (tests/test_issue14.py checks each command's).
WIDTH = 80


def console() -> Console:
    """The console commands print to. No markup: labels and file names are the user's text."""
    out = Console(markup=False, highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out = Console(markup=False, highlight=False, width=WIDTH)  # a pipe or a file: 80 columns, notes wrapped at words
    return out


#: What the spinner of a command that computes says.
COMPILING_NOTE = "computing (the first call on a machine also compiles, about 10 s)"


@contextlib.contextmanager
def working(message: str):
    """A spinner with ``message`` on stderr while the block runs, only when stderr is a
    terminal (a pipe, a file or ``--json`` consumers see nothing); it leaves no line behind."""
    stream = sys.stderr
    if stream is None or not stream.isatty():
        yield
        return
    with Console(file=stream, force_terminal=True, markup=False, highlight=False).status(f"chinplan: {message}", spinner="dots"):
        yield


def table(title: str, headers, *, stacked: bool = False) -> Table:
    """A table whose first column is left-aligned and the others right-aligned; cells fold,
    never truncate. ``stacked`` adds a line between rows (for two-line band cells)."""
    out = Table(title=title, show_lines=stacked, min_width=min(len(title) + 4, WIDTH))  # a title never wraps mid-phrase when it fits
    for k, header in enumerate(headers):
        out.add_column(header, justify="left" if k == 0 else "right", overflow="fold")
    return out


def print_tables(tables, notes=(), plot=None) -> None:
    out = console()
    for item in tables:
        out.print(item)
    for note in notes:
        out.print(note)
    if plot:
        out.print(f"wrote {plot}")


def compact_number(value: float) -> str:
    """Three significant digits without an exponent where it reads well: 1979.04 -> '1979',
    0.0036821 -> '0.00368', 0.3424 -> '0.342', 2669.4 -> '2669'; else '1.23e+07'."""
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    if value != 0 and not 1e-4 <= abs(value) < 1e5:
        return f"{value:.3g}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return np.format_float_positional(value, precision=3, fractional=False, trim="-")


def _site_label(name: str) -> str:
    """'tokens_per_param@5.76e+23' -> 'tokens/param @5.76e23' (a derived quantity's row)."""
    name = str(name).replace("tokens_per_param", "tokens/param")
    if "@" in name:
        head, _, at = name.partition("@")
        try:
            mantissa, exponent = f"{float(at):.2e}".split("e")
            at = f"{float(mantissa):g}e{int(exponent)}"
        except ValueError:
            pass
        name = f"{head} @{at}"
    return name


def fit_table(summary, title: str) -> Table:
    """The posterior summary of ``chinplan fit``: median and 90% interval, R-hat, bulk/tail ESS."""
    out = table(title, ["", "median", "5%", "95%", "R-hat", "ESS bulk/tail"])
    for name, row in summary.iterrows():
        ess = f"{row['ess_bulk']:.0f}/{row['ess_tail']:.0f}"
        out.add_row(_site_label(name), *(compact_number(row[k]) for k in ("q50", "q5", "q95")), f"{row['r_hat']:.3f}", ess)
    return out


def _share(value: float, se: float, count: int) -> str:
    """'7 of 9 (0.78 ± 0.14)'; at 0 or 1 the binomial SE is 0: '9 of 9 (1.00; no SE at 0 or 1)'."""
    held = f"{round(value * count)} of {count}"
    if se > 0:
        return f"{held} ({value:.2f} ± {se:.2f})"
    return f"{held} ({value:.2f}; no SE at 0 or 1)"


def validate_lines(result: dict, levels) -> list:
    """The back-test table of ``chinplan validate`` and its notes."""
    coverage = "coverage " + "/".join(f"{100 * q:g}" for q in levels)
    out = table("Back-tests: fit the smaller runs, predict the larger", ["split", "interval", "fit/pred", "error", coverage, "width90", "score90"])
    for row in result["splits"]:
        cover = "/".join(f"{c['coverage']:.2f}" for c in row["coverage"])
        out.add_row(row["split"], row["interval"][:6], f"{row['num_fit']}/{row['num_predicted']}", f"{row['median_rel_error']:.2%}",
                    cover, f"{row['width90']:.3f}", f"{row['interval_score90']:.3f}")  # fmt: skip
    lines = [out]
    for row in result["allocation"]:
        held = _share(row["coverage"], row["se"], row["num_minima"])
        lines.append(f"allocation ({row['interval']}): 90% N* bands hold {held} isoFLOP minima "
                     f"beyond the fit; median width {row['median_width']:.1f}x")  # fmt: skip
    lines.append("fit/pred: runs fitted / predicted; error: median |relative error| of the median prediction")
    lines.append("coverage SE = sqrt(p(1-p)/pred); width90: median 90% width / median; score90: mean interval score / loss (lower is better)")
    problems = result.get("convergence_problems")
    if problems is not None:
        lines.append("back-test fits: every fit converged (R-hat, ESS, no divergences)" if not problems else
                     f"back-test fits: {len(problems)} did not converge, their rows are not to be trusted: {'; '.join(problems)}")
    return lines


def cmd_hardware(args) -> int:
    """``chinplan hardware``: the accelerator presets (:mod:`chinplan.hardware`, JAX-free), so
    the look-up loads no JAX."""
    from chinplan.cli.parser import EXIT_OK
    from chinplan.hardware import HARDWARE, HARDWARE_ALIASES, HARDWARE_SOURCES

    if args.json:
        emit_json({name: {**HARDWARE[name]._asdict(), "alias_of": HARDWARE_ALIASES.get(name), "source": HARDWARE_SOURCES.get(name)}
                   for name in sorted(HARDWARE)})  # fmt: skip
        return EXIT_OK
    print_tables(hardware_lines(HARDWARE, HARDWARE_ALIASES, HARDWARE_SOURCES, with_sources=args.sources))
    return EXIT_OK


def hardware_lines(presets: dict, aliases: dict, sources: dict, *, with_sources: bool) -> list:
    """The table of ``chinplan hardware``: dense peaks (TFLOP/s, int8 TOP/s), HBM, bandwidth."""
    out = table("Accelerator presets (dense peaks)", ["name", "bf16", "fp16", "fp8", "int8", "HBM GB", "HBM TB/s"])
    for name in sorted(sources):
        chip = presets[name]
        peaks = ("-" if np.isnan(v) else f"{v / 1e12:g}" for v in (chip.bf16, chip.fp16, chip.fp8, chip.int8))
        out.add_row(name, *peaks, f"{chip.memory_bytes / 1e9:g}", f"{chip.memory_bandwidth / 1e12:g}")
    lines = [out, "bf16, fp16, fp8: TFLOP/s; int8: TOP/s; '-': not supported. Names are case-insensitive."]
    lines.append("aliases: " + ", ".join(f"{alias} = {name}" for alias, name in sorted(aliases.items())))
    if with_sources:
        lines += [f"{name}: {sources[name]}" for name in sorted(sources)]
    return lines


# --------------------------------------------------------------------------------------
# JSON: one document on stdout (--json)
# --------------------------------------------------------------------------------------


def jsonable(x):
    """Nested floats for JSON: arrays to lists, non-finite numbers to None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (str, bool)) or x is None:
        return x
    if isinstance(x, (int, np.integer)):
        return int(x)
    array = np.asarray(x, dtype=np.float64)
    if array.ndim:
        return [jsonable(v) for v in array]
    value = float(array)
    return value if math.isfinite(value) else None


def emit_json(document: dict) -> None:
    print(json.dumps(jsonable(document), indent=2, allow_nan=False))


def bands_header(draws, args, q) -> dict:
    """The first entries of every bands document: where the draws came from, seed, levels."""
    return {"posterior": draws.source, "num_draws": draws.num_draws, "seed": args.seed, "quantiles": q}


def bands_json(values: dict, index=()) -> dict:
    """{name: [value at each quantile]} from {name: array (len(q), *scenarios)}."""
    return {name: array[(slice(None), *index)] for name, array in values.items()}
