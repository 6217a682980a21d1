"""The ``chinplan`` command line: a thin front end over the library.

Commands::

    chinplan plan --compute 5.76e23 [1e24 ...]        compute-optimal N*, D*, tokens/param and loss bands
    chinplan tco --target-loss 2.0 --queries 1e9 --tokens-per-query 500 --hardware h100
                                                      inference-aware optimum vs Chinchilla, GPU-hours, $
    chinplan compare 8B:15T 70B:1.4T 280B:5.6T --queries 1e9 --tokens-per-query 500
                                                      loss and TCO bands, P(row cheaper), P(row lower loss)
    chinplan sweep SCENARIOS.toml -o out.parquet|out.nc|out.csv
                                                      bands over a grid of scenarios, written atomically
    chinplan plot {fan,iso-loss,tco,pair} -o FILE.png|FILE.svg
    chinplan fit RUNS.csv -o posterior.nc [--samples 1000 --warmup 500 --chains 4]
    chinplan next-runs --target-compute 1e24 --budget 1e21 [-k 3]
                                                      which pilot runs to buy next
    chinplan smallest --target-loss 2.0 [--tokens 15T] [--prob 0.9]
                                                      smallest model reaching a loss with probability p
    chinplan validate [RUNS.csv] | --ladders [NAME ...]
                                                      back-tests: fit the smaller runs, check the larger
    chinplan hardware [--sources]                     the accelerator presets
    chinplan report --compute 5.76e23 1e24 -o plan.html
                                                      one self-contained HTML file to hand on

Options every command takes: ``--json`` (one JSON document on stdout; numbers as floats,
``null`` where a value is infinite, e.g. a quantile over draws that cannot reach a target loss)
and ``--seed`` (the seed of any sampling: the JAX PRNG key of cost distributions and NUTS, and
the NumPy generator that picks ``--draws``). The commands that read a posterior (``plan``,
``tco``, ``compare``, ``sweep``, ``plot``) take ``--posterior FILE`` (default: the embedded
Chinchilla fit) and ``--draws N`` (a random subset of N draws); ``fit`` and ``validate`` make
posteriors and take the NUTS settings ``--samples N`` (draws kept per chain), ``--warmup`` and
``--chains``. ``plan``, ``tco`` and ``compare`` take ``--plot FILE.png|FILE.svg``; ``sweep``
takes a TOML file whose schema ``chinplan sweep --help`` prints
(:data:`chinplan.format.SCENARIOS_SCHEMA`).

Deployment options (``tco``, ``compare``, ``plot tco``): ``--queries``, ``--tokens-per-query``
with ``--output-share`` (or ``--input-tokens`` and ``--output-tokens``), ``--hardware``
(:data:`chinplan.costs.HARDWARE`, case-insensitive; ``h100`` is ``h100-sxm``; ``chinplan hardware``
lists them) or ``--peak-flops`` for another chip, and ``--precision``, ``--inference-hardware`` and
``--inference-precision``, ``--mfu``, ``--mfu-prefill``, ``--mfu-decode``, ``--price`` and
``--inference-price`` (dollars per GPU-hour, ``2`` or ``$2``). MFUs and prices take a number
or a range ``LO:HI``, sampled uniformly once per posterior draw. ``plot tco`` takes 500 tokens per query
(``PLOT_TOKENS_PER_QUERY``) unless given ``--tokens-per-query`` or ``--input-tokens``/``--output-tokens``. Sizes take K/M/B/T/Q suffixes
(``70B``, ``1.4T``) as well as plain numbers and ``1e9`` notation.

Losses are in the nats of the fitted runs' tokenizer and evaluation set: the embedded
posterior describes Chinchilla's setup (MassiveText, its tokenizer); plan with a fit of your
own runs (``chinplan fit``). ``plan`` says how far each budget lies beyond the fitted runs, and
its bands include the extrapolation component by default (``--uncertainty law|extrapolation``).

Exit codes: 0 success; 1 bad input file or values (a missing file, a target loss below the
irreducible loss of every draw, a malformed scenario file); 2 bad usage (an unknown option,
named with the nearest known one; a malformed or out-of-range number such as ``-1e24``; a
malformed design; a wrong output suffix). Options are never abbreviated (``--draw`` is an
unknown option, not ``--draws``). Errors print one line on stderr, never a
traceback (set ``CHINPLAN_DEBUG=1`` to get one for an unexpected error).

This module is the parser only and imports nothing but the standard library,
:mod:`chinplan.format` and :mod:`chinplan._files`, so ``chinplan --help`` starts without JAX;
the commands (one module per family in :mod:`chinplan.cli`: parse -> library -> render) load
the library when one runs.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import signal
import sys

from chinplan import __version__
from chinplan._files import check_suffix
from chinplan.format import RUNS_SCHEMA, SCENARIOS_SCHEMA, parse_design, parse_human

__all__ = ["CliError", "UsageError", "build_parser"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130, 143
EXIT_HANGUP = 128 + 1  # SIGHUP (its number on every POSIX system)

DEFAULT_QUANTILES = [0.05, 0.5, 0.95]
PLOT_SUFFIXES = (".png", ".svg")
SWEEP_SUFFIXES = (".parquet", ".nc", ".csv")
FIT_SUFFIXES = (".nc",)  # fit writes NetCDF
PLOT_KINDS = ("fan", "iso-loss", "tco", "pair")
#: Names of the hardware presets and precisions (chinplan.costs.HARDWARE and
#: chinplan.decide.sweep.PRECISIONS; tests/test_cli.py checks they agree), known here without JAX.
#: Names are case-insensitive (``A100`` is ``a100``); ``h100`` is an alias of ``h100-sxm``.
HARDWARE_NAMES = (
    "a100", "a100-40gb", "a100-80gb", "h100", "h100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "gb200",
    "mi300x", "mi325x", "tpu-v5e", "tpu-v5p", "tpu-v6e",
)  # fmt: skip
HARDWARE_HELP = (
    f"{', '.join(HARDWARE_NAMES)}; any case; a100 = a100-80gb, h100 = h100-sxm = h100-80gb (H100 SXM5 80GB); "
    "`chinplan hardware` lists their peaks, memory and sources"
)
PRECISIONS = ("bf16", "fp16", "fp8", "int8")
#: Tokens per query ``plot tco`` assumes when none are given (the README's example deployment).
PLOT_TOKENS_PER_QUERY = 500.0


class CliError(Exception):
    """A user-facing error in input files or values: one line, exit code 1."""


class UsageError(Exception):
    """A user-facing error in how options are combined: one line, exit code 2."""


# --------------------------------------------------------------------------------------
# argparse value types: a bad value is a usage error (exit 2) with one line.
# --------------------------------------------------------------------------------------


def _number_type(*, allow_zero: bool):
    def convert(text: str) -> float:
        try:
            value = parse_human(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
        if not ok:
            sign, valid = ("non-negative", "[0, inf)") if allow_zero else ("positive", "(0, inf)")
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite {sign} number (valid range {valid})")
        return value

    return convert


_positive_float = _number_type(allow_zero=False)


def _max_epochs(text: str) -> float:
    """``--max-epochs``: a number >= 1, or ``inf`` (keep every run)."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    value = _positive_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of epochs >= 1, or inf (valid range [1, inf])")
    return value
_nonnegative_float = _number_type(allow_zero=True)


def _integer_type(low: int, valid: str, high: int | None = None):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"{text!r} must {valid}")
        return value

    return convert


_positive_int = _integer_type(1, "be at least 1")
_seed = _integer_type(0, "lie in [0, 2**32)", 2**32)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in [0, 1]")
    return value


def _open_fraction(text: str) -> float:
    value = _fraction(text)
    if value in (0.0, 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1)")
    return value


def _probability(text: str) -> float:
    value = _fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1]")
    return value


class Range(tuple):
    """A range 'LO:HI' given on the command line: the command samples it uniformly per draw."""


def _uncertain_type(*, mfu: bool):
    """A number, or a range 'LO:HI' (a :class:`Range`, sampled uniformly once per draw)."""

    def convert(text: str):
        parts = str(text).split(":")
        if not mfu:  # a price may be written as on a bill: $2, $1.5:$3
            parts = [p.strip().removeprefix("$") for p in parts]
        if len(parts) > 2:
            raise argparse.ArgumentTypeError(f"{text!r} must be a number or a range LO:HI")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} must be a number or a range LO:HI") from None
        lo_ok = (lambda v: 0 < v <= 1) if mfu else (lambda v: 0 <= v < math.inf)
        if not all(math.isfinite(v) and lo_ok(v) for v in values):
            valid = "in (0, 1]" if mfu else "finite and >= 0"
            raise argparse.ArgumentTypeError(f"{text!r}: every value must be {valid}")
        if len(values) == 1:
            return values[0]
        if not values[0] < values[1]:
            raise argparse.ArgumentTypeError(f"{text!r}: a range LO:HI needs LO < HI")
        return Range(values)

    return convert


def _hardware_type(text: str) -> str:
    """A hardware preset name, case-insensitive: ``A100`` -> ``a100``; an unknown name names
    the presets and the options for a chip without one."""
    name = str(text).strip().lower()
    if name not in HARDWARE_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown hardware {text!r}: choose a preset ({', '.join(HARDWARE_NAMES)}; any case; chinplan hardware lists them), "
            "or give another chip's --peak-flops / --inference-peak-flops (and --memory-bandwidth for --decode roofline)"
        )
    return name


def _design_type(text: str):
    try:
        return parse_design(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _path_type(suffixes: tuple[str, ...], what: str):
    def convert(text: str) -> str:
        try:
            return check_suffix(text, suffixes, what)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return convert


_plot_path = _path_type(PLOT_SUFFIXES, "plot file")
_sweep_path = _path_type(SWEEP_SUFFIXES, "output file")
_fit_path = _path_type(FIT_SUFFIXES, "posterior file")


# --------------------------------------------------------------------------------------
# The parser.
# --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, no abbreviations, negative numbers as values and
    unknown options reported first, with the nearest known option."""

    #: A callable giving the epilog, called only when the help page is shown.
    epilog_from = None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --draw is not silently --draws
        super().__init__(*args, **kwargs)
        # '-1e24', '-.5', '-70B' are values (then refused by their type with the valid range),
        # not options: argparse's own pattern knows only '-1' and '-1.5'.
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message):  # one line, exit 2
        print(f"chinplan: error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

    def parse_known_args(self, args=None, namespace=None):
        self._check_options(sys.argv[1:] if args is None else list(args))
        return super().parse_known_args(args, namespace)

    def _check_options(self, args) -> None:
        """An unknown option is the error to report, before any missing required one."""
        known = [option for option in self._option_string_actions if option.startswith("--")]
        commands = self._subparsers is not None
        for token in args:
            if token == "--" or (commands and not token.startswith("-")):
                return  # the rest belongs to the command (its parser checks it) or is positional
            if not token.startswith("-") or token == "-" or self._negative_number_matcher.match(token):
                continue
            name = token.split("=", 1)[0] if token.startswith("--") else token[:2]
            if name in self._option_string_actions:
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.error(f"unrecognized option {name!r}{hint}; see {self.prog} --help")

    def format_help(self):
        if self.epilog_from is not None:
            self.epilog = self.epilog_from()
        return super().format_help()


def _scenarios_schema() -> str:
    return "scenario file:\n\n" + SCENARIOS_SCHEMA


def _runs_schema() -> str:
    return "runs file:\n\n" + RUNS_SCHEMA


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="one JSON document on stdout")
    common.add_argument("--seed", type=_seed, default=0, help="seed of any sampling (default 0)")
    return common


def _posterior_options(*, quantiles: bool = True) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--posterior", metavar="FILE", help="posterior NetCDF file (default: the embedded Chinchilla fit)"
    )
    options.add_argument(
        "--draws", type=_positive_int, metavar="N", help="use a random subset of N posterior draws (chosen with --seed)"
    )
    options.add_argument(
        "--uncertainty", choices=("extrapolation", "law"),
        help="extrapolation (default when the posterior has it): bands widen beyond the fitted runs; law: the law's posterior alone",
    )  # fmt: skip
    if quantiles:
        options.add_argument(
            "--quantiles", type=float, nargs="+", default=DEFAULT_QUANTILES, metavar="Q",
            help="quantile levels (default 0.05 0.5 0.95)",
        )  # fmt: skip
    return options


def _deployment_options(*, queries: bool = True) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    add = options.add_argument_group("deployment").add_argument
    if queries:
        add("--queries", type=_nonnegative_float, default=0.0, metavar="Q",
            help="lifetime queries served (default 0: training only)")  # fmt: skip
    tokens_help = "tokens per query, prompt + generated"
    if not queries:  # plot tco: the x axis is the query volume; a query's size has a default
        tokens_help += f" (default {PLOT_TOKENS_PER_QUERY:g} unless --input-tokens/--output-tokens)"
    add("--tokens-per-query", type=_nonnegative_float, metavar="T", help=tokens_help)
    add("--output-share", type=_fraction, default=0.25, metavar="F",
        help="generated share of --tokens-per-query (default 0.25)")  # fmt: skip
    add("--input-tokens", type=_nonnegative_float, metavar="T", help="prompt (prefill) tokens per query")
    add("--output-tokens", type=_nonnegative_float, metavar="T", help="generated (decode) tokens per query")
    add("--hardware", type=_hardware_type, choices=sorted(HARDWARE_NAMES), default="h100", metavar="NAME",
        help=f"accelerator preset: {HARDWARE_HELP} (default h100)")  # fmt: skip
    add("--peak-flops", type=_positive_float, metavar="FLOPS",
        help="peak FLOP/s of a training chip without a preset (replaces --hardware's peak)")  # fmt: skip
    add("--inference-peak-flops", type=_positive_float, metavar="FLOPS",
        help="peak FLOP/s of a serving chip without a preset (replaces --inference-hardware's)")  # fmt: skip
    add("--precision", choices=PRECISIONS, default="bf16", help="training precision (default bf16)")
    add("--inference-hardware", type=_hardware_type, choices=sorted(HARDWARE_NAMES), metavar="NAME",
        help="serving accelerator preset (default: --hardware)")  # fmt: skip
    add("--inference-precision", choices=PRECISIONS, help="serving precision (default: --precision)")
    mfu, price = _uncertain_type(mfu=True), _uncertain_type(mfu=False)
    add("--mfu", type=mfu, default=0.4, metavar="U|LO:HI", help="training MFU (default 0.4)")
    add("--mfu-prefill", type=mfu, default=0.5, metavar="U|LO:HI", help="prefill MFU (default 0.5)")
    add("--mfu-decode", type=mfu, default=0.1, metavar="U|LO:HI", help="decode MFU (default 0.1)")
    add("--decode", choices=("mfu", "roofline"), default="mfu",
        help="decode cost: at --mfu-decode (default), or by the roofline: each step reads the "
        "weights and the KV cache at --memory-bandwidth, or computes at --mfu-prefill")  # fmt: skip
    add("--batch", type=_positive_int, metavar="B",
        help="roofline: sequences decoded together (default 1)")  # fmt: skip
    add("--context", type=_nonnegative_float, metavar="T",
        help="roofline: mean KV-cache tokens per sequence (default input + output/2)")  # fmt: skip
    add("--memory-bandwidth", type=_positive_float, metavar="B/S",
        help="roofline: HBM bytes/s of a serving chip (default: its preset's)")  # fmt: skip
    add("--price", type=price, default=2.0, metavar="$|LO:HI", help="dollars per training GPU-hour (default 2)")
    add("--inference-price", type=price, metavar="$|LO:HI", help="dollars per serving GPU-hour (default: --price)")
    return options


def _cluster_options(*, hardware: bool) -> argparse.ArgumentParser:
    """--gpus and --days (wall-clock and cluster sizing); with ``hardware`` (plan, which has no
    deployment options) the training chip, precision and MFU they are computed at."""
    options = argparse.ArgumentParser(add_help=False)
    add = options.add_argument_group("training time").add_argument
    add("--gpus", type=_positive_int, metavar="K", help="also report the days to train on K GPUs (chips, for a TPU)")
    add("--days", type=_positive_float, metavar="T", help="also report the GPUs needed to train in T days")
    if hardware:
        add("--hardware", type=_hardware_type, choices=sorted(HARDWARE_NAMES), metavar="NAME",
            help=f"training accelerator preset: {HARDWARE_HELP} (default h100)")  # fmt: skip
        add("--peak-flops", type=_positive_float, metavar="FLOPS", help="peak FLOP/s of a chip without a preset")
        add("--precision", choices=PRECISIONS, help="training precision (default bf16)")
        add("--mfu", type=_uncertain_type(mfu=True), metavar="U|LO:HI", help="training MFU (default 0.4)")
    return options


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new option's dest and says so on stderr."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"chinplan: warning: {option_string} is deprecated here; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _nuts_options(parser: argparse.ArgumentParser) -> None:
    """NUTS settings of fit and validate. ``--samples`` (not ``--draws``, which elsewhere picks a
    random subset of a posterior's draws) is the number of draws NUTS keeps per chain."""
    nuts = parser.add_argument_group("NUTS")
    nuts.add_argument("--samples", type=_positive_int, default=1000, metavar="N",
                      help="NUTS draws kept per chain (default 1000)")  # fmt: skip
    nuts.add_argument("--draws", dest="samples", type=_positive_int, action=_DeprecatedAlias, new="--samples",
                      help=argparse.SUPPRESS)  # fmt: skip
    nuts.add_argument("--warmup", type=_positive_int, default=500, metavar="N", help="NUTS warm-up steps per chain (default 500)")
    nuts.add_argument("--chains", type=_positive_int, default=4, metavar="N", help="NUTS chains (default 4)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chinplan",
        description="Bayesian Chinchilla scaling-law planning. Losses are in the nats of the fitted runs' "
        "tokenizer and evaluation set (the embedded default: Chinchilla's); plan with a fit of your own runs.",
    )
    parser.add_argument("--version", action="version", version=f"chinplan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common, posterior, deployment = _common_options(), _posterior_options(), _deployment_options()
    draws_only = _posterior_options(quantiles=False)
    plot_option = argparse.ArgumentParser(add_help=False)
    plot_option.add_argument("--plot", type=_plot_path, metavar="FILE", help="also draw a figure (.png or .svg)")

    cluster = _cluster_options(hardware=False)
    plan = commands.add_parser(
        "plan", parents=[common, posterior, plot_option, _cluster_options(hardware=True)],
        help="compute-optimal N*, D*, tokens per parameter and loss for a FLOP budget",
    )  # fmt: skip
    plan.add_argument(
        "--compute", type=_positive_float, nargs="+", required=True, metavar="FLOPS", help="training budget(s) in FLOPs"
    )
    plan.add_argument(
        "--unique-tokens", type=_positive_float, nargs="+", metavar="U",
        help="unique tokens available, e.g. 500B (no default): the data-constrained optimum (epochs, N, D, loss) under the "
        "data-constrained posterior (default: the embedded datablations fit)",
    )  # fmt: skip

    report = commands.add_parser(
        "report", parents=[common, posterior, deployment],
        help="write one self-contained HTML file: the plan with bands, distance from the data, fan chart, assumptions; "
        "with a deployment (--queries, --hardware, ...) also the cost table and crossover of chinplan tco",
    )  # fmt: skip
    report.add_argument("--compute", type=_positive_float, nargs="+", required=True, metavar="FLOPS", help="training budget(s) in FLOPs")
    report.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.html to write (no network needed to open it)")

    tco = commands.add_parser(
        "tco", parents=[common, posterior, deployment, plot_option, cluster],
        help="inference-aware optimum for a target loss beside the compute-optimal plan (the Chinchilla rule under the default uncertainty), in GPU-hours and dollars",
    )  # fmt: skip
    tco.add_argument("--target-loss", type=_positive_float, nargs="+", required=True, metavar="L", help="loss to reach")
    tco.add_argument("--optimum", choices=("cost", "flops"), default="cost", help="minimise dollars (default) or FLOPs")

    compare = commands.add_parser(
        "compare", parents=[common, posterior, deployment, plot_option, cluster],
        help="loss and TCO bands of designs N:D, P(row cheaper), P(row lower loss)",
    )  # fmt: skip
    compare.add_argument("designs", type=_design_type, nargs="+", metavar="DESIGN", help="N:D or LABEL=N:D (70B:1.4T)")
    compare.add_argument("--target-loss", type=_positive_float, metavar="L", help="also report P(loss <= L)")

    smallest = commands.add_parser(
        "smallest", parents=[common, posterior, deployment],
        help="the smallest model reaching a target loss with probability p (on D tokens, or cheapest on an N x D grid)",
    )  # fmt: skip
    smallest.add_argument("--target-loss", type=_positive_float, required=True, metavar="L", help="loss to reach")
    smallest.add_argument("--tokens", type=_positive_float, metavar="D", help="training tokens (default: search an N x D grid)")
    smallest.add_argument("--prob", type=_probability, default=0.9, metavar="P", help="probability of reaching it, in (0, 1] (default 0.9)")

    next_runs = commands.add_parser(
        "next-runs", parents=[common, plot_option],
        help="which pilot runs to buy next: the candidates that most narrow a decision at a larger budget",
    )  # fmt: skip
    next_runs.add_argument("--target-compute", type=_positive_float, required=True, metavar="C", help="FLOPs of the run to plan")
    next_runs.add_argument("--budget", type=_positive_float, required=True, metavar="C", help="FLOPs for the pilot runs")
    next_runs.add_argument(
        "--objective", choices=("nstar", "loss", "prob-target", "prob-lower-loss"), default="nstar",
        help="the 90%% band of N* (default), the loss band of the median plan, P(its loss <= --target-loss), "
        "or P(design A has a lower loss than B) for --designs A B",
    )  # fmt: skip
    next_runs.add_argument("--target-loss", type=_positive_float, metavar="L", help="for --objective prob-target")
    next_runs.add_argument("--designs", type=_design_type, nargs=2, metavar="N:D", help="for --objective prob-lower-loss: A B")
    next_runs.add_argument("-k", type=_positive_int, default=1, metavar="K", help="runs to buy (default 1)")
    next_runs.add_argument("--outcomes", type=_positive_int, default=64, metavar="N", help="simulated outcomes per candidate (default 64)")
    next_runs.add_argument("--posterior", metavar="FILE", help="posterior NetCDF file (default: the embedded Chinchilla fit)")
    next_runs.add_argument("--uncertainty", choices=("extrapolation", "law"), help="as for plan (default extrapolation when the posterior has it)")

    sweep = commands.add_parser(
        "sweep", parents=[common, draws_only], help="bands over a TOML grid of scenarios, to Parquet, NetCDF or CSV",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sweep.epilog_from = _scenarios_schema
    sweep.add_argument("scenarios", metavar="SCENARIOS.toml")
    sweep.add_argument("-o", "--output", type=_sweep_path, required=True, metavar="FILE", help="out.parquet, .nc or .csv")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--resume", action="store_true",
                       help="continue an interrupted sweep from the chunks kept in FILE.parts/ (removed when done)")  # fmt: skip
    sweep.add_argument("--chunk", type=_positive_int, default=65536, metavar="N",
                       help="scenarios per checkpointed chunk (default 65536; keep it when resuming)")  # fmt: skip

    plot = commands.add_parser(
        "plot", parents=[common, draws_only, _deployment_options(queries=False)],
        help="draw a figure: fan, iso-loss, tco or pair",
    )  # fmt: skip
    plot.add_argument("kind", choices=PLOT_KINDS, metavar="KIND", help="one of " + ", ".join(PLOT_KINDS))
    plot.add_argument("-o", "--output", type=_plot_path, required=True, metavar="FILE", help="FILE.png or FILE.svg")
    plot.add_argument(
        "--compute-range", type=_positive_float, nargs=2, default=[1e18, 1e26], metavar=("LO", "HI"),
        help="fan: budgets in FLOPs",
    )  # fmt: skip
    plot.add_argument(
        "--designs", type=_design_type, nargs="+", metavar="DESIGN",
        help="tco: designs N:D (default: Llama-3 8B and Chinchilla 70B)",
    )  # fmt: skip
    plot.add_argument(
        "--queries-range", type=_positive_float, nargs=2, default=[1e7, 1e12], metavar=("LO", "HI"),
        help="tco: lifetime queries",
    )  # fmt: skip
    plot.add_argument("--pair-kind", choices=("kde", "scatter"), default="kde", help="pair: kde or scatter")

    fit = commands.add_parser(
        "fit", parents=[common], help="fit the law to a runs CSV with NUTS and save the posterior",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    fit.epilog_from = _runs_schema
    fit.add_argument("runs", metavar="RUNS.csv")
    fit.add_argument("-o", "--output", type=_fit_path, required=True, metavar="FILE", help="posterior NetCDF (.nc) to write")
    fit.add_argument("--target-accept", type=_fraction, default=0.8, metavar="P", help="NUTS target acceptance (default 0.8)")
    fit.add_argument(
        "--allow-unconverged", action="store_true",
        help="exit 0 even when R-hat, ESS or divergences fail after the automatic retries",
    )  # fmt: skip
    fit.add_argument("--no-extrapolation", action="store_true", help="skip the leave-the-largest-out refits (law-only bands)")
    fit.add_argument("--law", choices=("chinchilla", "kaplan", "kaplan-irreducible", "data-constrained"), default="chinchilla",
                     help="law to fit (default chinchilla); data-constrained needs a unique_tokens column")  # fmt: skip
    fit.add_argument("--max-epochs", type=_max_epochs, metavar="E",
                     help="data-constrained law: leave out runs repeating their data more than E epochs (default 8; inf keeps every run)")  # fmt: skip
    fit.add_argument("--max-retries", type=_integer_type(0, "be an integer >= 0"), default=3, metavar="K",
                     help="convergence gate: more chains, refits with longer warm-up, higher acceptance, fresh longer chains (default 3)")  # fmt: skip
    _nuts_options(fit)

    hardware = commands.add_parser(
        "hardware", parents=[common], help="list the accelerator presets: dense peaks, memory, bandwidth, sources"
    )
    hardware.add_argument("--sources", action="store_true", help="also print where each preset's figures come from")

    validate = commands.add_parser(
        "validate", parents=[common],
        help="back-test the fit: fit the smaller runs, check predictive intervals on the larger ones",
    )  # fmt: skip
    validate.add_argument("runs", nargs="?", metavar="RUNS.csv", help="runs CSV (default: the embedded Chinchilla runs)")
    validate.add_argument("--threshold", type=_positive_float, metavar="FLOPS", help="compute split: fit runs below this compute (default: 65%% quantile)")
    validate.add_argument("--splits", nargs="+", choices=("compute", "size"), default=["compute", "size"], help="back-test splits (default both)")
    validate.add_argument("--levels", type=_open_fraction, nargs="+", default=[0.5, 0.8, 0.9], metavar="P",
                          help="central predictive intervals to check, as levels in (0, 1) (default 0.5 0.8 0.9: does the 80%% interval hold 80%% of the held-out runs?)")  # fmt: skip
    validate.add_argument("--ladders", nargs="*", metavar="NAME",
                          help="instead, the leave-one-ladder-out back-test of N* bands on the shipped isoFLOP ladders (8 of Porian et al. 2024, "
                          "and chinchilla): fit each one's lower budgets, check its minima above; NAMEs as its table writes them "
                          "(RW/short-wu+cosine, chinchilla, ...; none: all 9, about 7 minutes on 2 CPU cores)")  # fmt: skip
    validate.add_argument("--cache", metavar="DIR", help="--ladders: keep each ladder's fitted posterior in DIR and reuse it")
    _nuts_options(validate)
    return parser
