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
    chinplan fit RUNS.csv -o posterior.nc [--draws 1000 --warmup 500 --chains 4]

Options every command takes: ``--json`` (one JSON document on stdout; numbers as floats,
``null`` where a value is infinite, e.g. a quantile over draws that cannot reach a target loss)
and ``--seed`` (the seed of any sampling: the JAX PRNG key of cost distributions and NUTS, and
the NumPy generator that picks ``--draws``). Commands that read the posterior take
``--posterior FILE`` (default: the embedded Chinchilla fit) and ``--draws N`` (a random subset
of N draws). ``plan``, ``tco`` and ``compare`` take ``--plot FILE.png|FILE.svg``; ``sweep``
takes a TOML file whose schema ``chinplan sweep --help`` prints (:data:`SCENARIOS_SCHEMA`).

Deployment options (``tco``, ``compare``, ``plot tco``): ``--queries``, ``--tokens-per-query``
with ``--output-share`` (or ``--input-tokens`` and ``--output-tokens``), ``--hardware``
(:data:`chinplan.costs.HARDWARE`) and ``--precision``, ``--inference-hardware`` and
``--inference-precision``, ``--mfu``, ``--mfu-prefill``, ``--mfu-decode``, ``--price`` and
``--inference-price`` (dollars per GPU-hour). MFUs and prices take a number or a range
``LO:HI``, sampled uniformly once per posterior draw. Sizes take K/M/B/T/Q suffixes
(``70B``, ``1.4T``) as well as plain numbers and ``1e9`` notation.

Exit codes: 0 success; 1 bad input file or values (a missing file, a target loss below the
irreducible loss of every draw, a malformed scenario file); 2 bad usage (an unknown option, a
malformed number or design, a wrong output suffix). Errors print one line on stderr, never a
traceback (set ``CHINPLAN_DEBUG=1`` to get one for an unexpected error).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import re
import sys
import warnings

__all__ = ["main", "human_count", "human_flops", "human_dollars", "parse_human", "parse_design", "load_scenarios"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

DEFAULT_QUANTILES = [0.05, 0.5, 0.95]
PLOT_SUFFIXES = (".png", ".svg")
SWEEP_SUFFIXES = (".parquet", ".nc", ".csv")
PLOT_KINDS = ("fan", "iso-loss", "tco", "pair")
PRECISIONS = ("bf16", "fp16", "fp8", "int8")
_SUFFIX_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "Q": 1e15}
_HUMAN = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([KMBTQkmbtq])$")


class CliError(Exception):
    """A user-facing error in input files or values: one line, exit code 1."""


class UsageError(Exception):
    """A user-facing error in how options are combined: one line, exit code 2."""


# --------------------------------------------------------------------------------------
# Numbers the way people read and write them.
# --------------------------------------------------------------------------------------


def human_count(x: float) -> str:
    """70e9 -> '70B', 1.4e12 -> '1.4T', 5.2e5 -> '520K'; inf -> 'inf'."""
    if not math.isfinite(x):
        return str(x)
    for scale, suffix in ((1e15, "Q"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def human_flops(x: float) -> str:
    """5.76e23 -> '5.76e23 FLOPs', 1e24 -> '1e24 FLOPs'; inf -> 'inf FLOPs'."""
    if not math.isfinite(x) or x == 0:
        return f"{x:g} FLOPs"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)} FLOPs"


def _sci(x: float) -> str:
    """5.76e23 -> '5.76e23' (human_flops without the unit, for table cells)."""
    return human_flops(x)[: -len(" FLOPs")]


def human_dollars(x: float) -> str:
    """1.2e6 -> '$1.2M', 3400 -> '$3.4K', 512 -> '$512', 0.25 -> '$0.25'; inf -> '$inf'."""
    if not math.isfinite(x):
        return f"${x}"
    sign = "-" if x < 0 else ""
    return f"{sign}${human_count(abs(x))}"


def parse_human(text: str) -> float:
    """'70B' -> 7e10, '1.4T' -> 1.4e12, '1e9' -> 1e9, '500' -> 500.0 (K, M, B, T, Q suffixes).

    Raises:
      ValueError: ``text`` is neither a number nor a number with one of those suffixes.
    """
    text = str(text).strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _HUMAN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a number (write e.g. 70B, 1.4T, 1e9 or 500; suffixes K, M, B, T, Q)")
    return float(match.group(1)) * _SUFFIX_SCALE[match.group(2).upper()]


def parse_design(text: str) -> tuple[str, float, float]:
    """'70B:1.4T' -> ('70B:1.4T', 7e10, 1.4e12); 'chinchilla=70B:1.4T' -> ('chinchilla', ...).

    A design is N parameters and D training tokens, ``N:D``, optionally labelled ``LABEL=N:D``.

    Raises:
      ValueError: a malformed design or a size that is not finite and > 0.
    """
    label, _, body = str(text).rpartition("=")
    label = label.strip() or str(text).strip()
    parts = body.split(":")
    if len(parts) != 2:
        raise ValueError(f"design {text!r} must be N:D, parameters:tokens, e.g. 70B:1.4T")
    values = []
    for name, part in zip(("parameters", "tokens"), parts):
        try:
            value = parse_human(part)
        except ValueError as err:
            raise ValueError(f"design {text!r}: {err}") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"design {text!r}: {name} must be finite and > 0, got {part!r}")
        values.append(value)
    return label, values[0], values[1]


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
            sign = "non-negative" if allow_zero else "positive"
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite {sign} number")
        return value

    return convert


_positive_float = _number_type(allow_zero=False)
_nonnegative_float = _number_type(allow_zero=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in [0, 2**32)")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in [0, 1]")
    return value


def _uncertain_type(*, mfu: bool):
    """A number, or a range 'LO:HI' sampled uniformly once per draw (costs.Uniform)."""

    def convert(text: str):
        from chinplan.costs import Uniform

        parts = str(text).split(":")
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
        return Uniform(values[0], values[1])

    return convert


def _design_type(text: str):
    try:
        return parse_design(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _path_type(suffixes: tuple[str, ...], what: str):
    def convert(text: str) -> str:
        if os.path.splitext(text)[1].lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{what} {text!r} must end in {', '.join(suffixes)}")
        return text

    return convert


_plot_path = _path_type(PLOT_SUFFIXES, "plot file")
_sweep_path = _path_type(SWEEP_SUFFIXES, "output file")


# --------------------------------------------------------------------------------------
# The parser.
# --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"chinplan: error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


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
    if quantiles:
        options.add_argument(
            "--quantiles", type=float, nargs="+", default=DEFAULT_QUANTILES, metavar="Q",
            help="quantile levels (default 0.05 0.5 0.95)",
        )  # fmt: skip
    return options


def _deployment_options(*, queries: bool = True) -> argparse.ArgumentParser:
    from chinplan.costs import HARDWARE

    options = argparse.ArgumentParser(add_help=False)
    add = options.add_argument_group("deployment").add_argument
    if queries:
        add("--queries", type=_nonnegative_float, default=0.0, metavar="Q",
            help="lifetime queries served (default 0: training only)")  # fmt: skip
    add("--tokens-per-query", type=_nonnegative_float, metavar="T", help="tokens per query, prompt + generated")
    add("--output-share", type=_fraction, default=0.25, metavar="F",
        help="generated share of --tokens-per-query (default 0.25)")  # fmt: skip
    add("--input-tokens", type=_nonnegative_float, metavar="T", help="prompt (prefill) tokens per query")
    add("--output-tokens", type=_nonnegative_float, metavar="T", help="generated (decode) tokens per query")
    add("--hardware", choices=sorted(HARDWARE), default="h100", help="accelerator preset (default h100)")
    add("--precision", choices=PRECISIONS, default="bf16", help="training precision (default bf16)")
    add("--inference-hardware", choices=sorted(HARDWARE), help="serving accelerator (default: --hardware)")
    add("--inference-precision", choices=PRECISIONS, help="serving precision (default: --precision)")
    mfu, price = _uncertain_type(mfu=True), _uncertain_type(mfu=False)
    add("--mfu", type=mfu, default=0.4, metavar="U|LO:HI", help="training MFU (default 0.4)")
    add("--mfu-prefill", type=mfu, default=0.5, metavar="U|LO:HI", help="prefill MFU (default 0.5)")
    add("--mfu-decode", type=mfu, default=0.1, metavar="U|LO:HI", help="decode MFU (default 0.1)")
    add("--price", type=price, default=2.0, metavar="$|LO:HI", help="dollars per training GPU-hour (default 2)")
    add("--inference-price", type=price, metavar="$|LO:HI", help="dollars per serving GPU-hour (default: --price)")
    return options


def _parser() -> argparse.ArgumentParser:
    from chinplan import __version__

    parser = _Parser(prog="chinplan", description="Bayesian Chinchilla scaling-law planning.")
    parser.add_argument("--version", action="version", version=f"chinplan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common, posterior, deployment = _common_options(), _posterior_options(), _deployment_options()
    draws_only = _posterior_options(quantiles=False)
    plot_option = argparse.ArgumentParser(add_help=False)
    plot_option.add_argument("--plot", type=_plot_path, metavar="FILE", help="also draw a figure (.png or .svg)")

    plan = commands.add_parser(
        "plan", parents=[common, posterior, plot_option],
        help="compute-optimal N*, D*, tokens per parameter and loss for a FLOP budget",
    )  # fmt: skip
    plan.add_argument(
        "--compute", type=_positive_float, nargs="+", required=True, metavar="FLOPS", help="training budget(s) in FLOPs"
    )

    tco = commands.add_parser(
        "tco", parents=[common, posterior, deployment, plot_option],
        help="inference-aware optimum for a target loss beside the Chinchilla plan, in GPU-hours and dollars",
    )  # fmt: skip
    tco.add_argument("--target-loss", type=_positive_float, nargs="+", required=True, metavar="L", help="loss to reach")
    tco.add_argument("--optimum", choices=("cost", "flops"), default="cost", help="minimise dollars (default) or FLOPs")

    compare = commands.add_parser(
        "compare", parents=[common, posterior, deployment, plot_option],
        help="loss and TCO bands of designs N:D, P(row cheaper), P(row lower loss)",
    )  # fmt: skip
    compare.add_argument("designs", type=_design_type, nargs="+", metavar="DESIGN", help="N:D or LABEL=N:D (70B:1.4T)")
    compare.add_argument("--target-loss", type=_positive_float, metavar="L", help="also report P(loss <= L)")

    sweep = commands.add_parser(
        "sweep", parents=[common, draws_only], help="bands over a TOML grid of scenarios, to Parquet, NetCDF or CSV",
        epilog="scenario file:\n\n" + SCENARIOS_SCHEMA, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sweep.add_argument("scenarios", metavar="SCENARIOS.toml")
    sweep.add_argument("-o", "--output", type=_sweep_path, required=True, metavar="FILE", help="out.parquet, .nc or .csv")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")

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

    fit = commands.add_parser("fit", parents=[common], help="fit the law to a runs CSV with NUTS and save the posterior")
    fit.add_argument("runs", metavar="RUNS.csv")
    fit.add_argument("-o", "--output", required=True, metavar="FILE", help="posterior NetCDF to write")
    fit.add_argument("--draws", type=_positive_int, default=1000, help="draws kept per chain")
    fit.add_argument("--warmup", type=_positive_int, default=500)
    fit.add_argument("--chains", type=_positive_int, default=4)

    validate = commands.add_parser(
        "validate", parents=[common],
        help="back-test the fit: fit the smaller runs, check predictive intervals on the larger ones",
    )  # fmt: skip
    validate.add_argument("runs", nargs="?", metavar="RUNS.csv", help="runs CSV (default: the embedded Chinchilla runs)")
    validate.add_argument("--threshold", type=_positive_float, metavar="FLOPS", help="fit runs below this compute (default: 65%% quantile)")
    validate.add_argument("--levels", type=float, nargs="+", default=[0.5, 0.8, 0.9], metavar="P")
    validate.add_argument("--draws", type=_positive_int, default=1000, help="draws kept per chain")
    validate.add_argument("--warmup", type=_positive_int, default=500)
    validate.add_argument("--chains", type=_positive_int, default=4)
    return parser


# --------------------------------------------------------------------------------------
# Shared helpers: posterior draws, keys, deployments, bands tables, JSON, files.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Draws:
    """The law draws a command works on (possibly a random subset of the posterior)."""

    params: object  # LawParams with a leading draw axis
    num_draws: int
    source: str
    posterior: object  # the full chinplan.Posterior


def _key(args, stream: int):
    """The JAX PRNG key of one use of randomness: fold_in(PRNGKey(--seed), stream)."""
    import jax

    return jax.random.fold_in(jax.random.PRNGKey(args.seed), stream)


_THIN, _COSTS = 0, 1  # key streams


def _load_draws(args) -> _Draws:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from chinplan.fit import Posterior, default_posterior

    path = getattr(args, "posterior", None)
    posterior = default_posterior() if path is None else Posterior.load(path)
    params, total = posterior.params, posterior.num_draws
    wanted = getattr(args, "draws", None)
    if wanted is not None and wanted < total:
        # A host-side draw without replacement (no compilation), seeded by (--seed, stream).
        index = np.sort(np.random.default_rng([args.seed, _THIN]).choice(total, wanted, replace=False))
        params = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[index]), params)
        total = wanted
    source = path or f"embedded Chinchilla ({posterior.attrs.get('num_runs', 245)} runs)"
    return _Draws(params, total, source, posterior)


def _check_quantiles(q) -> list[float]:
    if not q or any(not 0.0 <= v <= 1.0 for v in q):
        raise CliError(f"--quantiles must lie in [0, 1], got {list(q)}")
    return [float(v) for v in q]


def _min_e(params) -> float:
    import numpy as np

    return float(np.min(np.asarray(params.E, np.float64)))


def _unreachable(draws: _Draws, targets):
    """Per target, the fraction of draws with target <= E (decide.unreachable_fraction), as k / n in float64."""
    import numpy as np

    from chinplan import decide

    return _fraction_of(draws, decide.unreachable_fraction(draws.params, targets))


def _fraction_of(draws: _Draws, probability):
    """A probability over draws (a float32 k / n from the engine) as k / n in float64."""
    import numpy as np

    return np.round(np.asarray(probability, np.float64) * draws.num_draws) / draws.num_draws


def _check_reachable(params, targets, name: str) -> None:
    """A target at or below E for every draw is an input error, not a result."""
    e_min = _min_e(params)
    for t in targets:
        if t <= e_min:
            raise CliError(
                f"{name} {t:g} is at or below the irreducible loss E of every posterior draw "
                f"(min E = {e_min:.4f}): no model reaches it"
            )


def _token_split(args) -> tuple[float, float]:
    explicit = args.input_tokens is not None or args.output_tokens is not None
    if args.tokens_per_query is not None and explicit:
        raise UsageError("give either --tokens-per-query or --input-tokens/--output-tokens, not both")
    if args.tokens_per_query is not None:
        out = args.tokens_per_query * args.output_share
        return args.tokens_per_query - out, out
    return args.input_tokens or 0.0, args.output_tokens or 0.0


def _build_deployment(*, hardware, precision, inference_hardware=None, inference_precision=None, **fields):
    """A validated Deployment from preset names and field values; its description for JSON."""
    from chinplan import costs

    def peak(name, precision, role):
        chip = costs.HARDWARE[name]
        if math.isnan(getattr(chip, precision)):
            supported = ", ".join(p for p in PRECISIONS if not math.isnan(getattr(chip, p)))
            raise CliError(f"{role} precision {precision} is not supported by {name} (supported: {supported})")
        return chip.peak(precision)

    training_peak = peak(hardware, precision, "training")
    inference_peak = None
    if inference_hardware is not None or inference_precision is not None:
        inference_peak = peak(inference_hardware or hardware, inference_precision or precision, "serving")
    deployment = costs.Deployment(peak_flops=training_peak, inference_peak_flops=inference_peak, **fields)
    costs.validate_deployment(deployment)
    described = {
        "hardware": hardware,
        "precision": precision,
        "inference_hardware": inference_hardware or hardware,
        "inference_precision": inference_precision or precision,
    }
    described.update({name: _describe(value) for name, value in deployment._asdict().items() if value is not None})
    return deployment, described


def _describe(value):
    """A deployment field for JSON: a float, or {'uniform': [lo, hi]} etc. for a distribution."""
    from chinplan import costs

    if costs.is_distribution(value):
        return {type(value).__name__.lower(): [float(v) for v in value]}
    return float(value)


def _deployment(args, *, queries: float | None = None):
    input_tokens, output_tokens = _token_split(args)
    queries = args.queries if queries is None else queries
    if queries > 0 and input_tokens + output_tokens == 0:
        raise UsageError("--queries > 0 needs --tokens-per-query or --input-tokens/--output-tokens")
    return _build_deployment(
        hardware=args.hardware,
        precision=args.precision,
        inference_hardware=args.inference_hardware,
        inference_precision=args.inference_precision,
        queries=queries,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        mfu_train=args.mfu,
        mfu_prefill=args.mfu_prefill,
        mfu_decode=args.mfu_decode,
        price=args.price,
        inference_price=args.inference_price,
    )


def _deployment_line(described: dict) -> str:
    """One line describing a deployment, e.g. 'H100 bf16 (989 TFLOP/s peak); MFU 40% train, ...'."""

    def show(value, fmt):
        if isinstance(value, dict):  # a distribution: uniform LO-HI, else kind(a, b)
            ((kind, (a, b)),) = value.items()
            return f"{fmt(a)}-{fmt(b)}" if kind == "uniform" else f"{kind}({a:g}, {b:g})"
        return fmt(value)

    def pct(v):
        return f"{100 * v:g}%"

    def usd(v):
        return f"${v:g}"

    x = described
    chip = f"{x['hardware'].upper()} {x['precision']} ({x['peak_flops'] / 1e12:g} TFLOP/s peak)"
    if (x["inference_hardware"], x["inference_precision"]) != (x["hardware"], x["precision"]):
        chip += f", serving on {x['inference_hardware'].upper()} {x['inference_precision']}"
    price = show(x["price"], usd)
    if "inference_price" in x:
        price += f" train / {show(x['inference_price'], usd)} serve"
    tokens = x["input_tokens"] + x["output_tokens"]
    return (
        f"{chip}; MFU {show(x['mfu_train'], pct)} train, {show(x['mfu_prefill'], pct)} prefill, "
        f"{show(x['mfu_decode'], pct)} decode; {price} per GPU-hour; "
        f"{human_count(x['queries'])} queries x {human_count(tokens)} tokens "
        f"({human_count(x['input_tokens'])} in + {human_count(x['output_tokens'])} out)"
    )


def _q_label(q) -> str:
    if len(q) == 3:
        return f"{100 * q[1]:g}% ({100 * q[0]:g}% - {100 * q[2]:g}%)"
    return "/".join(f"{100 * v:g}%" for v in q)


def _band_cell(values, fmt) -> str:
    """'median (low - high)' for three quantiles, else the values joined by ' / '."""
    texts = [fmt(float(v)) for v in values]
    if len(texts) == 3:
        return f"{texts[1]} ({texts[0]} - {texts[2]})"
    return " / ".join(texts)


_FORMATS = {
    "n": human_count,
    "d": human_count,
    "tokens_per_param": lambda v: f"{v:.1f}" if math.isfinite(v) else str(v),
    "loss": lambda v: f"{v:.3f}",
    "train_flops": _sci,
    "inference_flops": _sci,
    "flops": _sci,
    "train_gpu_hours": human_count,
    "inference_gpu_hours": human_count,
    "gpu_hours": human_count,
    "train_dollars": human_dollars,
    "inference_dollars": human_dollars,
    "dollars": human_dollars,
    "savings": lambda v: f"{100 * v:.1f}%".replace("-0.0%", "0.0%"),
}

_ROW_LABELS = {
    "n": "parameters N",
    "d": "tokens D",
    "tokens_per_param": "tokens/param",
    "loss": "loss",
    "train_flops": "training FLOPs",
    "gpu_hours": "GPU-hours",
    "train_dollars": "training cost",
    "inference_dollars": "serving cost",
    "dollars": "total cost",
}


def _console():
    from rich.console import Console

    # No markup: design labels and file names are the user's text, printed as given.
    console = Console(markup=False, highlight=False)
    if not console.is_terminal:  # a pipe or file: do not squeeze tables into 80 columns
        console = Console(markup=False, highlight=False, width=max(console.width, 160))
    return console


def _table(title: str, headers):
    from rich.table import Table

    table = Table(title=title)
    for k, header in enumerate(headers):
        table.add_column(header, justify="left" if k == 0 else "right")
    return table


def _jsonable(x):
    """Nested floats for JSON: arrays to lists, non-finite numbers to None (strict JSON)."""
    import numpy as np

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


def _bands_json(values: dict, index=()) -> dict:
    """{name: [value at each quantile]} from {name: array (len(q), *scenarios)}."""
    return {name: array[(slice(None), *index)] for name, array in values.items()}


def _check_output_dir(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"output directory {directory!r} does not exist")


def _write_atomic(path: str, write) -> None:
    """Calls ``write(tmp)`` on a temporary file beside ``path``, then renames it into place."""
    from chinplan._files import write_atomic

    write_atomic(path, write)


def _save_plot(fig, path: str) -> None:
    from chinplan import plots

    _check_output_dir(path)
    plots.save(fig, path)


def _queries_grid(queries: float):
    import numpy as np

    if queries > 0:
        return np.logspace(math.log10(queries) - 3, math.log10(queries) + 3, 49)
    return np.logspace(6, 12, 49)


def _warn(message: str) -> None:
    print(f"chinplan: warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------
# Per-draw kernels (module level, so the engine compiles each once).
# --------------------------------------------------------------------------------------


def _plan_point(theta, compute):
    from chinplan.law import compute_optimal

    plan = compute_optimal(theta, compute)
    return {"n": plan.n, "d": plan.d, "tokens_per_param": plan.d / plan.n, "loss": plan.loss}


def _priced(n, d, loss, deployment, fields) -> dict:
    """The plan (n, d, loss) and the requested quantities of its TCO; +inf where n is inf."""
    import jax.numpy as jnp

    from chinplan import costs

    ok = jnp.isfinite(n) & jnp.isfinite(d)
    n1, d1 = jnp.where(ok, n, 1.0), jnp.where(ok, d, 1.0)
    cost = costs.tco(n1, d1, deployment)
    values = {"n": n, "d": d, "tokens_per_param": jnp.where(ok, d1 / n1, jnp.inf), "loss": loss}
    return {f: values[f] if f in values else jnp.where(ok, getattr(cost, f), jnp.inf) for f in fields}


_TCO_FIELDS = ("n", "d", "tokens_per_param", "train_flops", "gpu_hours", "train_dollars", "inference_dollars", "dollars")


def _tco_point(theta, target, *, optimum):
    """This draw's inference-aware plan and Chinchilla plan for ``target``, priced; savings."""
    import jax.numpy as jnp

    from chinplan import costs, law

    law_params, deployment = theta
    if optimum == "cost":
        best = costs.cost_optimal(law_params, target, deployment)
    else:
        tokens = costs.lifetime_tokens(deployment.queries, deployment.input_tokens, deployment.output_tokens)
        best = costs.inference_optimal(law_params, target, tokens)
    chinchilla = law.optimal_for_loss(law_params, target)
    a = _priced(best.n, best.d, best.loss, deployment, _TCO_FIELDS)
    b = _priced(chinchilla.n, chinchilla.d, chinchilla.loss, deployment, _TCO_FIELDS)
    ok = jnp.isfinite(a["dollars"]) & jnp.isfinite(b["dollars"])
    savings = jnp.where(ok, 1.0 - a["dollars"] / jnp.where(ok, b["dollars"], 1.0), jnp.nan)
    return {"optimal": a, "chinchilla": b, "savings": savings}


_TCO_KERNELS = {name: functools.partial(_tco_point, optimum=name) for name in ("cost", "flops")}

_DESIGN_FIELDS = ("loss", "gpu_hours", "train_dollars", "inference_dollars", "dollars")


def _design_point(theta, n, d):
    from chinplan import law

    law_params, deployment = theta
    return _priced(n, d, law.loss(law_params, n, d), deployment, _DESIGN_FIELDS)


def _lower_loss(theta, n_a, d_a, n_b, d_b):
    from chinplan import law

    return law.loss(theta, n_a, d_a) < law.loss(theta, n_b, d_b)


# --------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------


def plan_bands(posterior, compute, q):
    """Bands of the compute-optimal plan for each budget: a dict of (len(q), len(compute)) arrays."""
    import numpy as np

    from chinplan.engine import bands

    result = bands(_plan_point, posterior.params, np.asarray(compute, dtype=np.float64), q=tuple(q))
    return {name: np.asarray(v, dtype=np.float64) for name, v in result.values.items()}


def _cmd_plan(args) -> int:
    import numpy as np

    q = _check_quantiles(args.quantiles)
    draws = _load_draws(args)
    result = plan_bands(draws, args.compute, q)
    if args.plot:
        from chinplan import plots

        lo, hi = min(1e18, min(args.compute) / 100), max(1e26, max(args.compute) * 100)
        _save_plot(plots.fan_chart(draws.params, np.logspace(math.log10(lo), math.log10(hi), 41)), args.plot)
    if args.json:
        _emit_json(
            {
                "posterior": draws.source,
                "num_draws": draws.num_draws,
                "seed": args.seed,
                "quantiles": q,
                "plans": [{"compute": c, **_bands_json(result, (i,))} for i, c in enumerate(args.compute)],
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    table = _table(
        f"Compute-optimal plan, {draws.num_draws} posterior draws: {_q_label(q)}",
        ("budget", "parameters N*", "tokens D*", "tokens/param", "loss"),
    )
    for i, c in enumerate(args.compute):
        cells = (_band_cell(result[k][:, i], _FORMATS[k]) for k in ("n", "d", "tokens_per_param", "loss"))
        table.add_row(human_flops(c), *cells)
    console = _console()
    console.print(table)
    if args.plot:
        console.print(f"wrote {args.plot}")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# tco
# --------------------------------------------------------------------------------------


def _cmd_tco(args) -> int:
    import numpy as np

    from chinplan import decide, engine

    q = _check_quantiles(args.quantiles)
    deployment, described = _deployment(args)
    draws = _load_draws(args)
    targets = np.asarray(args.target_loss, np.float64)
    _check_reachable(draws.params, targets, "--target-loss")
    theta = decide.draw_pairs(draws.params, deployment, key=_key(args, _COSTS))
    result = engine.bands(_TCO_KERNELS[args.optimum], theta, targets, q=tuple(q), nan_policy="omit")
    values = {g: {f: np.asarray(result.values[g][f], np.float64) for f in _TCO_FIELDS} for g in ("optimal", "chinchilla")}
    savings = np.asarray(result.values["savings"], np.float64)
    unreachable = _unreachable(draws, targets)
    for group in ("optimal", "chinchilla"):
        if any(np.any(np.asarray(f) > 0) for f in result.nan_fraction[group].values()):
            _warn(f"some draws gave NaN in the {group} plan; their quantiles are over the other draws")
    if args.plot:
        _plot_tco_designs(args, draws, deployment, values, targets)

    best = "inference-aware optimum" if args.optimum == "cost" else "FLOPs-optimal (inference-aware)"
    labels = {"optimal": best, "chinchilla": "Chinchilla-optimal"}
    if args.json:
        _emit_json(
            {
                "posterior": draws.source,
                "num_draws": draws.num_draws,
                "seed": args.seed,
                "quantiles": q,
                "optimum": args.optimum,
                "deployment": described,
                "targets": [
                    {
                        "target_loss": float(t),
                        "unreachable_fraction": float(unreachable[i]),
                        "inference_optimal": _bands_json(values["optimal"], (i,)),
                        "chinchilla": _bands_json(values["chinchilla"], (i,)),
                        "savings": savings[:, i],
                    }
                    for i, t in enumerate(targets)
                ],
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    console = _console()
    console.print(_deployment_line(described))
    for i, t in enumerate(targets):
        saved = _band_cell(savings[:, i], _FORMATS["savings"])
        notes = [f"savings of the inference-aware plan: {saved} (over the draws that reach the target)"]
        if unreachable[i] > 0:
            notes.append(f"target unreachable (L <= E) for {100 * unreachable[i]:.1f}% of draws: they count as inf")
        table = _table(
            f"Target loss {t:g}, {draws.num_draws} posterior draws: {_q_label(q)}",
            ("", labels["optimal"], labels["chinchilla"]),
        )
        for field in _TCO_FIELDS:
            cells = (_band_cell(values[g][field][:, i], _FORMATS[field]) for g in ("optimal", "chinchilla"))
            table.add_row(_ROW_LABELS[field], *cells)
        console.print(table)
        for note in notes:
            console.print(note)
    if args.plot:
        console.print(f"wrote {args.plot}")
    return EXIT_OK


def _plot_tco_designs(args, draws, deployment, values, targets) -> None:
    """TCO vs queries of the median inference-aware and Chinchilla plans of the first target."""
    import numpy as np

    from chinplan import plots

    levels = list(args.quantiles)
    median = levels.index(0.5) if 0.5 in levels else len(levels) // 2  # the median, or the middle level
    designs = {}
    for group, label in (("optimal", "inference-aware"), ("chinchilla", "Chinchilla")):
        n, d = values[group]["n"][median, 0], values[group]["d"][median, 0]
        if not (np.isfinite(n) and np.isfinite(d)):
            raise CliError(f"cannot plot: target loss {targets[0]:g} is unreachable for most draws")
        designs[f"{label} {human_count(n)}:{human_count(d)}"] = (float(n), float(d))
    fig = plots.tco_vs_queries(draws.params, designs, deployment, _queries_grid(args.queries), key=_key(args, _COSTS))
    _save_plot(fig, args.plot)


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------


def _cmd_compare(args) -> int:
    import numpy as np

    from chinplan import decide, engine

    q = _check_quantiles(args.quantiles)
    labels = [label for label, _, _ in args.designs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise UsageError(f"design {duplicates[0]!r} given more than once (label them LABEL=N:D)")
    n = np.array([design[1] for design in args.designs])
    d = np.array([design[2] for design in args.designs])
    deployment, described = _deployment(args)
    draws = _load_draws(args)
    if args.target_loss is not None:
        _check_reachable(draws.params, [args.target_loss], "--target-loss")
    key = _key(args, _COSTS)
    theta = decide.draw_pairs(draws.params, deployment, key=key)
    bands = engine.bands(_design_point, theta, n, d, q=tuple(q)).values
    bands = {name: np.asarray(bands[name], np.float64) for name in _DESIGN_FIELDS}
    p_cheaper = _fraction_of(draws, decide.prob_cheaper(draws.params, n, d, deployment, key=key))
    pairs = (n[:, None], d[:, None], n[None, :], d[None, :])
    p_lower = _fraction_of(draws, engine.probability(_lower_loss, draws.params, *pairs))
    p_target = None
    if args.target_loss is not None:
        p_target = _fraction_of(draws, decide.prob_target(draws.params, n, d, args.target_loss))
    if args.plot:
        from chinplan import plots

        designs = {label: (a, b) for label, a, b in args.designs}
        fig = plots.tco_vs_queries(draws.params, designs, deployment, _queries_grid(args.queries), key=key)
        _save_plot(fig, args.plot)

    if args.json:
        designs = []
        for i, label in enumerate(labels):
            entry = {"label": label, "n": n[i], "d": d[i], "tokens_per_param": d[i] / n[i]}
            entry["train_flops"] = 6.0 * n[i] * d[i]
            entry.update(_bands_json(bands, (i,)))
            if p_target is not None:
                entry["p_target"] = p_target[i]
            designs.append(entry)
        _emit_json(
            {
                "posterior": draws.source,
                "num_draws": draws.num_draws,
                "seed": args.seed,
                "quantiles": q,
                "deployment": described,
                "target_loss": args.target_loss,
                "designs": designs,
                "labels": labels,
                "p_cheaper": p_cheaper,
                "p_lower_loss": p_lower,
                **({"plot": args.plot} if args.plot else {}),
            }
        )
        return EXIT_OK
    console = _console()
    console.print(_deployment_line(described))
    headers = ["design", "parameters N", "tokens D", "tokens/param", "training FLOPs", "loss", "GPU-hours", "total cost"]
    if p_target is not None:
        headers.append(f"P(loss <= {args.target_loss:g})")
    table = _table(f"Designs, {draws.num_draws} posterior draws: {_q_label(q)}", headers)
    for i, label in enumerate(labels):
        row = [label, human_count(n[i]), human_count(d[i]), f"{d[i] / n[i]:.1f}", _sci(6.0 * n[i] * d[i])]
        row += [_band_cell(bands[k][:, i], _FORMATS[k]) for k in ("loss", "gpu_hours", "dollars")]
        if p_target is not None:
            row.append(f"{p_target[i]:.3f}")
        table.add_row(*row)
    console.print(table)
    for title, matrix in (("P(row cheaper than column)", p_cheaper), ("P(row has lower loss than column)", p_lower)):
        grid = _table(title, ["", *labels])
        for i, label in enumerate(labels):
            grid.add_row(label, *("-" if i == j else f"{matrix[i, j]:.3f}" for j in range(len(labels))))
        console.print(grid)
    if args.plot:
        console.print(f"wrote {args.plot}")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# sweep
# --------------------------------------------------------------------------------------

#: Quantities a sweep can write (per scenario, bands over draws).
SWEEP_OUTPUTS = (
    "n", "d", "tokens_per_param", "loss", "train_flops", "inference_flops", "flops",
    "train_gpu_hours", "inference_gpu_hours", "gpu_hours", "train_dollars", "inference_dollars", "dollars",
)  # fmt: skip
#: The most scenarios one sweep may have (its bands are held in memory, then written).
MAX_SCENARIOS = 10_000_000
_DEPLOYMENT_AXES = (
    "queries", "input_tokens", "output_tokens", "mfu_train", "mfu_prefill", "mfu_decode", "price", "inference_price",
)  # fmt: skip
_PLAN_AXES = ("compute", "target_loss", "n", "d")
_HARDWARE_KEYS = ("hardware", "precision", "inference_hardware", "inference_precision")
_DEFAULT_OUTPUTS = {
    "compute": ("n", "d", "tokens_per_param", "loss", "gpu_hours", "dollars"),
    "target_loss": ("n", "d", "tokens_per_param", "loss", "gpu_hours", "dollars"),
    "design": ("loss", "gpu_hours", "dollars"),
}
_DISTRIBUTIONS = {"lognormal": "LogNormal", "uniform": "Uniform", "loguniform": "LogUniform"}


@dataclasses.dataclass
class Scenarios:
    """A parsed scenario file: the grid axes, the plan, the deployment and what to report."""

    axes: dict  # name -> 1-D float array, in file order
    plan: str  # "compute", "target_loss" or "design"
    optimum: str  # with target_loss: "cost", "flops" or "chinchilla"
    outputs: tuple
    quantiles: tuple
    deployment: object
    described: dict

    @property
    def shape(self) -> tuple:
        return tuple(len(v) for v in self.axes.values())


SCENARIOS_SCHEMA = """\
[sweep]                                  # optional
quantiles = [0.05, 0.5, 0.95]
outputs = ["n", "d", "loss", "dollars"]  # default n, d, tokens_per_param, loss, gpu_hours, dollars; also
                                         # train_/inference_flops, flops, train_/inference_gpu_hours,
                                         # train_dollars, inference_dollars
optimum = "cost"                         # with target_loss: "cost", "flops" or "chinchilla"

[grid]                                   # scenario axes; every combination is one scenario
compute = {logspace = [20, 26, 61]}      # or target_loss = ..., or n = ... and d = ...
queries = {values = [0, 1e9, 1e11]}      # and any deployment field below
# an axis is a number, a list, {values = [...]}, {logspace = [lo_exp, hi_exp, num]}
# or {linspace = [lo, hi, num]}; sizes may be strings such as "70B"

[deployment]                             # fixed values or distributions sampled per draw
hardware = "h100"                        # and precision, inference_hardware, inference_precision
input_tokens = 400
output_tokens = 100
price = {lognormal = [2.0, 0.25]}        # median, sigma; or {uniform = [lo, hi]}, {loguniform = [lo, hi]}

Output: .parquet and .csv hold one row per scenario (the axis values, then <output>_q5,
<output>_q50, ... and, for target_loss, unreachable_fraction); .nc holds an xarray Dataset
over (quantile, *axes). Draws that cannot reach a target loss count as inf.
"""


def _toml_module():
    try:
        import tomllib

        return tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli

            return tomli
        except ModuleNotFoundError:
            raise CliError("reading a scenario file needs Python 3.11+ or the 'tomli' package") from None


def _table_of(document: dict, name: str, where: str) -> dict:
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise CliError(f"{where}: '{name}' must be a table [{name}]")
    return value


def _scalar(value, key: str, where: str) -> float:
    if isinstance(value, bool):
        raise CliError(f"{where}: {key} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_human(value)
        except ValueError as err:
            raise CliError(f"{where}: {key}: {err}") from None
    raise CliError(f"{where}: {key} must be a number, got {value!r}")


def _axis(value, key: str, where: str):
    import numpy as np

    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("values", "logspace", "linspace"):
            forms = "{values = [...]}, {logspace = [lo_exp, hi_exp, num]} or {linspace = [lo, hi, num]}"
            raise CliError(f"{where}: {key} must be a number, a list, {forms}; got {value!r}")
        (form, spec), = value.items()
        if form == "values":
            return _axis(spec, f"{key}.values", where)
        num = spec[2] if isinstance(spec, list) and len(spec) == 3 else None
        if not (isinstance(num, int) and not isinstance(num, bool) and num >= 1):
            raise CliError(f"{where}: {key}.{form} must be [start, stop, num] with an integer num >= 1, got {spec!r}")
        start, stop = (_scalar(v, f"{key}.{form}", where) for v in spec[:2])
        array = (np.logspace if form == "logspace" else np.linspace)(start, stop, num)
    else:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise CliError(f"{where}: {key} must not be empty")
        array = np.array([_scalar(v, key, where) for v in values], np.float64)
    if len(np.unique(array)) != len(array):
        raise CliError(f"{where}: {key} repeats a value")
    return array


def _check_axis_range(name: str, values, where: str) -> None:
    import numpy as np

    finite = np.all(np.isfinite(values))
    if name in ("compute", "target_loss", "n", "d"):
        ok, valid = finite and np.all(values > 0), "finite and > 0"
    elif name.startswith("mfu"):
        ok, valid = finite and np.all((values > 0) & (values <= 1)), "in (0, 1]"
    else:
        ok, valid = finite and np.all(values >= 0), "finite and >= 0"
    if not ok:
        raise CliError(f"{where}: grid.{name} values must be {valid}, got {values.tolist()}")


def _distribution(value: dict, key: str, where: str):
    from chinplan import costs

    if len(value) != 1 or next(iter(value)) not in _DISTRIBUTIONS:
        forms = "{lognormal = [median, sigma]}, {uniform = [lo, hi]} or {loguniform = [lo, hi]}"
        raise CliError(f"{where}: deployment.{key} must be a number or {forms}; got {value!r}")
    (kind, spec), = value.items()
    if not (isinstance(spec, list) and len(spec) == 2):
        raise CliError(f"{where}: deployment.{key}.{kind} must be a pair of numbers, got {spec!r}")
    a, b = (_scalar(v, f"deployment.{key}.{kind}", where) for v in spec)
    return getattr(costs, _DISTRIBUTIONS[kind])(a, b)


def load_scenarios(path: str) -> Scenarios:
    """Reads and validates a sweep scenario file (see :data:`SCENARIOS_SCHEMA`).

    Raises:
      CliError: a missing or malformed file, an unknown key, a bad value; the message names
        the file and the key.
    """
    from chinplan import costs

    if not os.path.exists(path):
        raise CliError(f"scenario file {path!r} does not exist")
    where = os.path.basename(path)
    toml = _toml_module()
    try:
        with open(path, "rb") as handle:
            document = toml.load(handle)
    except toml.TOMLDecodeError as err:
        raise CliError(f"{where}: malformed TOML: {err}") from None
    unknown = sorted(set(document) - {"sweep", "grid", "deployment"})
    if unknown:
        raise CliError(f"{where}: unknown key {unknown[0]!r} (expected the tables [sweep], [grid], [deployment])")
    sweep, grid, dep = (_table_of(document, name, where) for name in ("sweep", "grid", "deployment"))

    for table, name, allowed in (
        (sweep, "sweep", ("quantiles", "outputs", "optimum")),
        (grid, "grid", _PLAN_AXES + _DEPLOYMENT_AXES),
        (dep, "deployment", _HARDWARE_KEYS + _DEPLOYMENT_AXES),
    ):
        for key in table:
            if key not in allowed:
                raise CliError(f"{where}: unknown key {name}.{key} (expected one of {', '.join(allowed)})")

    axes = {key: _axis(value, f"grid.{key}", where) for key, value in grid.items()}
    for key, values in axes.items():
        _check_axis_range(key, values, where)
    size = math.prod(len(v) for v in axes.values())
    if size > MAX_SCENARIOS:
        raise CliError(f"{where}: [grid] has {size:,} scenarios, more than {MAX_SCENARIOS:,}; split the sweep")
    plans = [k for k in ("compute", "target_loss") if k in axes] + (["design"] if {"n", "d"} & set(axes) else [])
    if len(plans) != 1 or (plans == ["design"] and not {"n", "d"} <= set(axes)):
        raise CliError(f"{where}: [grid] needs exactly one plan: grid.compute, grid.target_loss, or grid.n with grid.d")
    plan = plans[0]
    both = sorted(set(axes) & set(dep))
    if both:
        key = both[0]
        raise CliError(f"{where}: {key} is both a grid axis (grid.{key}) and fixed (deployment.{key}); give it once")

    optimum = sweep.get("optimum", "cost")
    if optimum not in ("cost", "flops", "chinchilla"):
        raise CliError(f"{where}: sweep.optimum must be 'cost', 'flops' or 'chinchilla', got {optimum!r}")
    if "optimum" in sweep and plan != "target_loss":
        raise CliError(f"{where}: sweep.optimum applies only to a grid.target_loss sweep")
    outputs = sweep.get("outputs", list(_DEFAULT_OUTPUTS[plan]))
    if not isinstance(outputs, list) or not outputs:
        raise CliError(f"{where}: sweep.outputs must be a non-empty list, got {outputs!r}")
    for name in outputs:
        if name not in SWEEP_OUTPUTS:
            raise CliError(f"{where}: sweep.outputs: unknown quantity {name!r} (choose from {', '.join(SWEEP_OUTPUTS)})")
    quantiles = sweep.get("quantiles", DEFAULT_QUANTILES)
    is_level = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1  # noqa: E731
    if not isinstance(quantiles, list) or not quantiles or not all(is_level(v) for v in quantiles):
        raise CliError(f"{where}: sweep.quantiles must be a non-empty list of levels in [0, 1], got {quantiles!r}")

    names = {}
    for key in _HARDWARE_KEYS:
        if key in dep:
            value = dep[key]
            choices = sorted(costs.HARDWARE) if "hardware" in key else PRECISIONS
            if value not in choices:
                raise CliError(f"{where}: deployment.{key} must be one of {', '.join(choices)}, got {value!r}")
            names[key] = value
    fields = {}
    for key in _DEPLOYMENT_AXES:
        if key in dep:
            value = dep[key]
            if isinstance(value, dict):
                fields[key] = _distribution(value, key, where)
            else:
                fields[key] = _scalar(value, f"deployment.{key}", where)
    serving = [k for k in ("input_tokens", "output_tokens") if k in axes or k in fields]
    if ("queries" in axes or "queries" in fields) and not serving:
        raise CliError(f"{where}: queries needs deployment.input_tokens or deployment.output_tokens (or a grid of them)")
    names.setdefault("hardware", "h100")
    names.setdefault("precision", "bf16")
    try:
        deployment, described = _build_deployment(**names, **fields)
    except (ValueError, CliError) as err:
        raise CliError(f"{where}: {err}") from None
    return Scenarios(axes, plan, optimum, tuple(outputs), tuple(float(v) for v in quantiles), deployment, described)


@functools.lru_cache(maxsize=64)
def _sweep_kernel(plan: str, optimum: str, axis_names: tuple, outputs: tuple):
    """The per-draw kernel of one sweep layout, built once (so the engine compiles it once)."""

    def kernel(theta, *values):
        from chinplan import costs, law

        law_params, deployment = theta
        scenario = dict(zip(axis_names, values))
        deployment = deployment._replace(**{k: v for k, v in scenario.items() if k in _DEPLOYMENT_AXES})
        if plan == "compute":
            chosen = law.compute_optimal(law_params, scenario["compute"])
            n, d, loss = chosen.n, chosen.d, chosen.loss
        elif plan == "target_loss":
            target = scenario["target_loss"]
            if optimum == "cost":
                chosen = costs.cost_optimal(law_params, target, deployment)
            elif optimum == "flops":
                tokens = costs.lifetime_tokens(deployment.queries, deployment.input_tokens, deployment.output_tokens)
                chosen = costs.inference_optimal(law_params, target, tokens)
            else:
                chosen = law.optimal_for_loss(law_params, target)
            n, d, loss = chosen.n, chosen.d, chosen.loss
        else:
            n, d = scenario["n"], scenario["d"]
            loss = law.loss(law_params, n, d)
        return _priced(n, d, loss, deployment, outputs)

    return kernel


def _quantile_name(level: float) -> str:
    return f"q{100 * level:g}"


def run_sweep(scenarios: Scenarios, params, *, key, progress: bool = False):
    """Bands of every output for every scenario: an ``xarray.Dataset`` over (quantile, *axes)."""
    import numpy as np
    import xarray as xr

    from chinplan import decide, engine

    names = tuple(scenarios.axes)
    if scenarios.plan == "target_loss":
        _check_reachable(params, scenarios.axes["target_loss"], "grid.target_loss")
    # Axis k varies along dimension k: the engine broadcasts them to the full grid.
    grids = [v.reshape([-1 if i == k else 1 for i in range(len(names))]) for k, v in enumerate(scenarios.axes.values())]
    theta = decide.draw_pairs(params, scenarios.deployment, key=key)
    kernel = _sweep_kernel(scenarios.plan, scenarios.optimum, names, scenarios.outputs)
    result = engine.bands(kernel, theta, *grids, q=scenarios.quantiles, progress=progress)
    variables = {name: (("quantile", *names), np.asarray(result.values[name], np.float64)) for name in scenarios.outputs}
    if scenarios.plan == "target_loss":
        unreachable = _unreachable(_Draws(params, int(np.shape(params.E)[0]), "", None), scenarios.axes["target_loss"])
        index = names.index("target_loss")
        shape = [len(v) if i == index else 1 for i, v in enumerate(scenarios.axes.values())]
        variables["unreachable_fraction"] = (names, np.broadcast_to(unreachable.reshape(shape), scenarios.shape).copy())
    coords = {"quantile": np.asarray(scenarios.quantiles), **scenarios.axes}
    return xr.Dataset(variables, coords=coords)


def sweep_frame(dataset):
    """One row per scenario: the axis values, then ``<output>_q5``, ``<output>_q50``, ... columns."""
    import numpy as np
    import pandas as pd

    first = next(iter(dataset.data_vars))
    names = [dim for dim in dataset[first].dims if dim != "quantile"]  # the axes, in file order
    mesh = np.meshgrid(*(dataset[n].values for n in names), indexing="ij")
    columns = {n: m.reshape(-1) for n, m in zip(names, mesh)}
    for var in dataset.data_vars:
        array = dataset[var].transpose(*(["quantile"] if "quantile" in dataset[var].dims else []), *names).values
        if "quantile" in dataset[var].dims:
            for k, level in enumerate(dataset["quantile"].values):
                columns[f"{var}_{_quantile_name(float(level))}"] = array[k].reshape(-1)
        else:
            columns[var] = array.reshape(-1)
    return pd.DataFrame(columns)


def _cmd_sweep(args) -> int:
    import importlib.util

    suffix = os.path.splitext(args.output)[1].lower()
    _check_output_dir(args.output)
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise CliError("writing Parquet needs pyarrow (pip install pyarrow); or write .nc or .csv")
    scenarios = load_scenarios(args.scenarios)
    draws = _load_draws(args)
    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    dataset = run_sweep(scenarios, draws.params, key=_key(args, _COSTS), progress=progress)
    from chinplan import __version__

    dataset.attrs.update(
        scenarios=os.path.basename(args.scenarios),
        posterior=draws.source,
        num_draws=draws.num_draws,
        seed=args.seed,
        plan=scenarios.plan,
        optimum=scenarios.optimum,
        deployment=json.dumps(scenarios.described),
        chinplan_version=__version__,
    )
    if suffix == ".nc":
        _write_atomic(args.output, lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf"))
    else:
        frame = sweep_frame(dataset)
        if suffix == ".parquet":
            _write_atomic(args.output, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", index=False))
        else:
            _write_atomic(args.output, lambda tmp: frame.to_csv(tmp, index=False))
    rows = math.prod(scenarios.shape)
    summary = {
        "output": args.output,
        "format": suffix[1:],
        "rows": rows,
        "axes": {name: len(values) for name, values in scenarios.axes.items()},
        "plan": scenarios.plan,
        "outputs": list(scenarios.outputs),
        "quantiles": list(scenarios.quantiles),
        "num_draws": draws.num_draws,
        "seed": args.seed,
    }
    if args.json:
        _emit_json(summary)
    else:
        axes = " x ".join(f"{len(v)} {k}" for k, v in scenarios.axes.items())
        _console().print(
            f"wrote {args.output}: {rows} scenarios ({axes}), {len(scenarios.outputs)} quantities "
            f"x {len(scenarios.quantiles)} quantiles over {draws.num_draws} posterior draws"
        )
    return EXIT_OK


# --------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------


def _cmd_plot(args) -> int:
    import numpy as np

    from chinplan import plots

    _check_output_dir(args.output)
    if args.kind == "fan":
        lo, hi = args.compute_range
        if not lo < hi:
            raise UsageError(f"--compute-range needs LO < HI, got {lo:g} {hi:g}")
    elif args.kind == "tco":
        lo, hi = args.queries_range
        if not lo < hi:
            raise UsageError(f"--queries-range needs LO < HI, got {lo:g} {hi:g}")
        deployment, _ = _deployment(args, queries=0.0)
        if deployment.input_tokens + deployment.output_tokens == 0:
            raise UsageError("plot tco needs --tokens-per-query or --input-tokens/--output-tokens")
    draws = _load_draws(args)
    if args.kind == "fan":
        fig = plots.fan_chart(draws.params, np.logspace(math.log10(lo), math.log10(hi), 41))
    elif args.kind == "iso-loss":
        fig = plots.iso_loss(draws.params)
    elif args.kind == "tco":
        designs = args.designs or [("Llama-3 8B", 8e9, 15e12), ("Chinchilla 70B", 70e9, 1.4e12)]
        grid = np.logspace(math.log10(lo), math.log10(hi), 41)
        designs = {label: (n, d) for label, n, d in designs}
        fig = plots.tco_vs_queries(draws.params, designs, deployment, grid, key=_key(args, _COSTS))
    else:
        max_draws = None if args.draws is None else max(2, args.draws)  # evenly thinned by arviz
        fig = plots.pair_plot(draws.posterior, kind=args.pair_kind, max_draws=max_draws)
    _save_plot(fig, args.output)
    if args.json:
        size, n_draws = os.path.getsize(args.output), draws.num_draws
        _emit_json({"kind": args.kind, "output": args.output, "bytes": size, "num_draws": n_draws, "seed": args.seed})
    else:
        _console().print(f"wrote {args.output} ({args.kind}, {draws.num_draws} posterior draws)")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


def _cmd_fit(args) -> int:
    import jax

    from chinplan.data import load_runs
    from chinplan.fit import ConvergenceWarning, fit

    _check_output_dir(args.output)
    runs = load_runs(args.runs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, one line each
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
        _emit_json(
            {
                "output": args.output,
                "num_draws": posterior.num_draws,
                "num_divergences": posterior.num_divergences,
                "summary": {name: row.to_dict() for name, row in summary.iterrows()},
                "warnings": problems,
            }
        )
    else:
        table = _table(f"Posterior of the law, {len(runs)} runs, {posterior.num_draws} draws", ["", *summary.columns])
        for name, row in summary.iterrows():
            table.add_row(str(name), *(f"{v:.4g}" for v in row.values))
        console = _console()
        console.print(table)
        console.print(f"wrote {args.output} ({posterior.num_draws} draws, {posterior.num_divergences} divergences)")
    for problem in problems:
        _warn(problem)
    return EXIT_OK


def _cmd_validate(args) -> int:
    import jax

    from chinplan import datasets
    from chinplan.data import load_runs
    from chinplan.fit import ConvergenceWarning
    from chinplan.calibration import backtest

    runs = load_runs(args.runs) if args.runs else datasets.chinchilla()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = backtest(
            runs, key=jax.random.PRNGKey(args.seed), compute_threshold=args.threshold, levels=tuple(args.levels),
            num_draws=args.draws, num_warmup=args.warmup, num_chains=args.chains,
            progress=None if not args.json else False,
        )  # fmt: skip
    rows = [
        {"level": q, "coverage": result.coverage[q], "se": result.coverage_se[q],
         "coverage_without_outliers": result.coverage_without_outliers[q]}
        for q in result.levels
    ]  # fmt: skip
    if args.json:
        _emit_json(
            {
                "threshold_flops": result.threshold, "num_fit": result.num_fit, "num_heldout": result.num_heldout,
                "coverage": rows, "median_abs_error": result.median_abs_error,
                "median_rel_error": result.median_rel_error,
                "outliers_fit": result.num_outliers_fit, "outliers_heldout": result.num_outliers_heldout,
            }
        )  # fmt: skip
        return EXIT_OK
    title = (f"Back-test: fit {result.num_fit} runs below {human_flops(result.threshold)}, "
             f"predict {result.num_heldout} larger runs")  # fmt: skip
    table = _table(title, ["interval", "coverage", "std. error", "without outliers"])
    for row in rows:
        table.add_row(f"{row['level']:.0%}", f"{row['coverage']:.3f}", f"{row['se']:.3f}", f"{row['coverage_without_outliers']:.3f}")
    console = _console()
    console.print(table)
    console.print(f"median error of the median prediction: {result.median_abs_error:.4f} "
                  f"({result.median_rel_error:.2%} of the loss)")  # fmt: skip
    return EXIT_OK


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------

_COMMANDS = {
    "plan": _cmd_plan, "tco": _cmd_tco, "compare": _cmd_compare, "sweep": _cmd_sweep, "plot": _cmd_plot, "fit": _cmd_fit,
    "validate": _cmd_validate,
}  # fmt: skip


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv=None) -> int:
    """Entry point of the ``chinplan`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except UsageError as err:
        print(f"chinplan: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, ValueError, OSError) as err:
        print(f"chinplan: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("chinplan: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # never a traceback for the user; CHINPLAN_DEBUG=1 shows it
        if os.environ.get("CHINPLAN_DEBUG"):
            raise
        print(f"chinplan: error: unexpected {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
