"""Numbers the way people read and write them: 70B, 1.4T, $1.2M, 5.8e23 FLOPs, band cells.

Pure standard library (no JAX, no NumPy), so the command-line parser can use it without
loading the numerical stack. The CLI, the plots and the examples format through here.
"""

from __future__ import annotations

import html
import math
import re
import sys
import textwrap
from typing import Callable, Iterable, NamedTuple

__all__ = [
    "human_count",
    "human_flops",
    "human_dollars",
    "sci",
    "short_sci",
    "percent",
    "parse_human",
    "parse_design",
    "band_cell",
    "quantile_label",
    "quantile_name",
    "wrap_lines",
    "say",
    "Cell",
    "html_table",
    "band_html",
    "records_html",
    "format_of",
    "FORMATS",
    "ROW_LABELS",
    "deployment_line",
    "COLUMN_ALIASES",
    "MIN_RUNS",
    "RUNS_SCHEMA",
    "SCENARIOS_SCHEMA",
]

_SUFFIX_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "Q": 1e15}
_HUMAN = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([KMBTQkmbtq])$")


def human_count(x: float) -> str:
    """70e9 -> '70B', 1.4e12 -> '1.4T', 5.2e5 -> '520K', 999.9e12 -> '1Q'; from 1000Q on powers
    of ten (2.21e18 -> '2.21e18', never '2.21e+03Q'); inf -> 'inf'."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    rounded = abs(float(f"{x:.3g}"))  # 999.9e12 rounds to 1e15: '1Q', not '1e+03T'
    if rounded >= 1e18:
        return sci(x)
    for scale, suffix in ((1e15, "Q"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if rounded >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def human_flops(x: float) -> str:
    """5.76e23 -> '5.76e23 FLOPs', 1e24 -> '1e24 FLOPs'; inf -> 'inf FLOPs'."""
    return f"{sci(x)} FLOPs"


def sci(x: float) -> str:
    """5.76e23 -> '5.76e23', 1e24 -> '1e24' (three significant digits, trailing zeros dropped)."""
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return f"{x:g}"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def short_sci(x: float) -> str:
    """Two significant digits for figure labels: 1.4e12 -> '1.4e12', 7e10 -> '7e10'."""
    mantissa, exponent = f"{float(x):.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def human_dollars(x: float) -> str:
    """1.2e6 -> '$1.2M', 3400 -> '$3.4K', 512 -> '$512', 0.25 -> '$0.25'; inf -> '$inf'."""
    x = float(x)
    if not math.isfinite(x):
        return f"${x}"
    sign = "-" if x < 0 else ""
    return f"{sign}${human_count(abs(x))}"


def percent(x: float) -> str:
    """0.123 -> '12.3%' (never '-0.0%')."""
    return f"{100 * float(x):.1f}%".replace("-0.0%", "0.0%")


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


#: The width of every line chinplan and its examples print to a pipe or a file.
WIDTH = 80


def wrap_lines(text: str, width: int = WIDTH) -> str:
    """``text`` with each line longer than ``width`` wrapped at words, its continuations
    indented two spaces under the line's own indent; shorter lines (tables) are unchanged.

    Raises:
      ValueError: ``width`` is not an integer >= 10.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 10:
        raise ValueError(f"width must be an integer >= 10, got {width!r}")
    lines = []
    for line in str(text).split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        lines.append(textwrap.fill(line, width, subsequent_indent=indent, break_on_hyphens=False))
    return "\n".join(lines)


def say(*parts, width: int = WIDTH, **kwargs) -> None:
    """``print`` with each line wrapped at ``width`` (80) columns (:func:`wrap_lines`): the
    examples' printer, so their output fits a terminal and a pipe alike."""
    sep = kwargs.pop("sep", " ")
    file = kwargs.pop("file", None) or sys.stdout
    print(wrap_lines(sep.join(str(p) for p in parts), width), file=file, **kwargs)


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1: escape sequences, newlines, bells)
    written as a visible escape such as ``\\x1b``, so user text cannot drive the terminal or
    break a table's rows; printable text, Unicode included, is unchanged."""
    return "".join(
        ch if ch.isprintable() or ch == " " else (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        for ch in str(text)
    )


def parse_design(text: str) -> tuple[str, float, float]:
    """'70B:1.4T' -> ('70B:1.4T', 7e10, 1.4e12); 'chinchilla=70B:1.4T' -> ('chinchilla', ...).

    A design is N parameters and D training tokens, ``N:D``, optionally labelled ``LABEL=N:D``;
    the label's control characters are escaped (:func:`printable`).

    Raises:
      ValueError: a malformed design or a size that is not finite and > 0.
    """
    label, _, body = str(text).rpartition("=")
    label = printable(label.strip() or str(text).strip())
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


def band_cell(values: Iterable[float], fmt: Callable[[float], str], *, stacked: bool = False) -> str:
    """'median (low - high)' for three quantiles, else the values joined by ' / '.

    A band whose values all print the same (a fixed cost, no uncertainty) is that one value.
    ``stacked`` puts the range on a second line: 'median\nlow - high' (narrow tables).
    """
    texts = [fmt(float(v)) for v in values]
    if len(set(texts)) == 1:
        return texts[0]
    if len(texts) == 3:
        return f"{texts[1]}\n{texts[0]} - {texts[2]}" if stacked else f"{texts[1]} ({texts[0]} - {texts[2]})"
    return " / ".join(texts)


def quantile_label(q) -> str:
    """[0.05, 0.5, 0.95] -> '50% (5% - 95%)'; other level lists joined by '/'."""
    if len(q) == 3:
        return f"{100 * q[1]:g}% ({100 * q[0]:g}% - {100 * q[2]:g}%)"
    return "/".join(f"{100 * v:g}%" for v in q)


def quantile_name(level: float) -> str:
    """0.05 -> 'q5', 0.5 -> 'q50': the column suffix of a quantile level."""
    return f"q{100 * float(level):g}"


def ratio(value: float) -> str:
    """Tokens per parameter: one decimal from 10 up ('18.6', '1875.0'), three significant
    digits below ('8.3', '0.0339'), so a small ratio never reads as '0.0'."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


#: How each planned or priced quantity is shown in a table cell.
FORMATS = {
    "n": human_count,
    "d": human_count,
    "tokens_per_param": lambda v: ratio(v),
    "epochs": lambda v: f"{v:.3g}" if math.isfinite(v) else str(v),
    "loss": lambda v: f"{v:.3f}",
    "train_flops": sci,
    "inference_flops": sci,
    "flops": sci,
    "train_gpu_hours": human_count,
    "inference_gpu_hours": human_count,
    "gpu_hours": human_count,
    "train_dollars": human_dollars,
    "inference_dollars": human_dollars,
    "dollars": human_dollars,
    "savings": percent,
    "compute": sci,
}

#: Row labels of the planned and priced quantities in tables.
ROW_LABELS = {
    "n": "parameters N",
    "d": "tokens D",
    "tokens_per_param": "tokens/param",
    "loss": "loss",
    "train_flops": "training FLOPs",
    "train_gpu_hours": "training GPU-hours",
    "inference_gpu_hours": "serving GPU-hours",
    "gpu_hours": "total GPU-hours",
    "train_dollars": "training cost",
    "inference_dollars": "serving cost",
    "dollars": "total cost",
}


def deployment_line(described: dict) -> str:
    """One line describing a deployment, e.g. 'H100 bf16 (989 TFLOP/s peak); MFU 40% train, ...'.

    ``described`` is :func:`chinplan.decide.sweep.build_deployment`'s description: preset names and
    each field as a number or ``{"uniform": [lo, hi]}`` (etc.) for a distribution.
    """

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
    def chip_name(name):
        return name if name == "custom" else name.upper()

    chip = f"{chip_name(x['hardware'])} {x['precision']} ({x['peak_flops'] / 1e12:g} TFLOP/s peak)"
    if (x["inference_hardware"], x["inference_precision"]) != (x["hardware"], x["precision"]):
        chip += f", serving on {chip_name(x['inference_hardware'])} {x['inference_precision']}"
    price = show(x["price"], usd)
    if "inference_price" in x:
        price += f" train / {show(x['inference_price'], usd)} serve"
    tokens = x["input_tokens"] + x["output_tokens"]
    if x.get("decode") == "roofline":
        context = f", context {show(x['context'], human_count)}" if "context" in x else ""
        bandwidth = show(x["memory_bandwidth"], lambda v: f"{v / 1e12:.3g} TB/s")
        decode = f"roofline decode (batch {show(x['batch'], human_count)}{context}, {bandwidth})"
    else:
        decode = f"{show(x['mfu_decode'], pct)} decode"
    if not x["queries"]:  # no serving: the inference fields do not enter any cost
        return f"{chip}; MFU {show(x['mfu_train'], pct)} train; {show(x['price'], usd)} per {hours_unit(x['hardware'])}; training only (no --queries)"
    return (
        f"{chip}; MFU {show(x['mfu_train'], pct)} train, {show(x['mfu_prefill'], pct)} prefill, "
        f"{decode}; {price} per {hours_unit(x['hardware'])}; "
        f"{human_count(x['queries'])} queries x {human_count(tokens)} tokens "
        f"({human_count(x['input_tokens'])} in + {human_count(x['output_tokens'])} out)"
    )


def accelerator(hardware: str | None) -> str:
    """What one unit of ``hardware`` is called: 'GPU', or 'chip' for a TPU preset."""
    return "chip" if str(hardware or "").lower().startswith("tpu") else "GPU"


def hours_unit(hardware: str | None) -> str:
    """'GPU-hour', or 'chip-hour' for a TPU preset."""
    return f"{accelerator(hardware)}-hour"


def chip_words(label: str, *hardware) -> str:
    """``label`` with 'GPU' in the words of ``hardware`` (the chips a quantity runs on): 'chip'
    when all are TPUs, 'accelerator' when GPUs and TPUs mix, else unchanged."""
    units = {accelerator(h) for h in hardware if h is not None} or {"GPU"}
    word = units.pop() if len(units) == 1 else "accelerator"
    return label.replace("GPUs", f"{word}s").replace("GPU", word)


# --------------------------------------------------------------------------------------
# HTML tables: notebooks (``_repr_html_`` of the result types) and ``chinplan report``
# --------------------------------------------------------------------------------------


class Cell(NamedTuple):
    """A table cell: ``text`` shown (a ``band`` line below it), ``values`` the exact numbers
    behind it, written in full into ``data-values`` (so a reader or a test gets every digit)."""

    text: str
    values: tuple = ()
    band: str = ""
    field: str = ""


#: The most rows an HTML table of a result shows (the rest are counted in its caption).
HTML_ROWS = 50


def _exact(value) -> str:
    value = float(value)
    return repr(value) if math.isfinite(value) else str(value)  # 'inf', '-inf', 'nan'


def _td(cell) -> str:
    if not isinstance(cell, Cell):
        cell = Cell(str(cell))
    attrs = f' data-field="{html.escape(cell.field)}"' if cell.field else ""
    if cell.values:
        attrs += f' data-values="{" ".join(_exact(v) for v in cell.values)}"'
    band = f'<br><span class="band">{html.escape(cell.band)}</span>' if cell.band else ""
    return f"<td{attrs}>{html.escape(cell.text)}{band}</td>"


def html_table(headers, rows, *, caption: str = "", table_id: str = "", row_data=None) -> str:
    """One HTML table (no styles, scripts or links): ``headers`` the column titles, ``rows`` lists
    of cells (:class:`Cell`, or text), ``row_data`` per row a dict of ``data-*`` attributes."""
    out = [f'<table{f" id={chr(34)}{html.escape(table_id)}{chr(34)}" if table_id else ""}>']
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>")
    for k, row in enumerate(rows):
        data = (row_data[k] if row_data is not None else None) or {}
        attrs = "".join(f' data-{html.escape(key)}="{html.escape(str(value))}"' for key, value in data.items())
        out.append(f"<tr{attrs}>" + "".join(_td(cell) for cell in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def band_html(values, fmt: Callable[[float], str], *, field: str = "", centre: int | None = None) -> Cell:
    """A band cell: the central value shown (``centre``, default the middle level), the lowest to
    highest below it, every value exact in ``data-values``."""
    values = tuple(float(v) for v in values)
    shown = [fmt(v) if math.isfinite(v) else str(v) for v in values]
    centre = len(values) // 2 if centre is None else centre
    band = f"{shown[0]} - {shown[-1]}" if len(set(shown)) > 1 else ""
    return Cell(shown[centre], values, band, field)


def _flatten(nested, index=()):
    """(index, number) pairs of a number or nested lists (``array.tolist()``), in C order."""
    if isinstance(nested, (list, tuple)):
        for k, item in enumerate(nested):
            yield from _flatten(item, (*index, k))
    else:
        yield index, nested


def records_html(title: str, columns: dict, *, formats: dict | None = None, limit: int = HTML_ROWS) -> str:
    """A result's fields as an HTML table: ``columns`` maps each field to a number or to arrays
    (anything with ``tolist``) or nested lists of one shape, one row per element; a number is shown
    by ``formats[field]`` (default :data:`FORMATS`, else three significant digits) and kept
    exact in ``data-values``. At most ``limit`` rows; the caption counts the others."""
    formats = FORMATS if formats is None else formats
    flat = {name: list(_flatten(values.tolist() if hasattr(values, "tolist") else values)) for name, values in columns.items()}
    shaped = [v for v in flat.values() if not (len(v) == 1 and v[0][0] == ())]  # a number goes with every row
    first = shaped[0] if shaped else next(iter(flat.values()))
    if any([i for i, _ in v] != [i for i, _ in first] for v in shaped):
        raise ValueError(f"columns must share one shape (or be numbers), got {list(columns)} of different shapes")
    flat = {name: v if len(v) == len(first) else v * len(first) for name, v in flat.items()}
    indexed = bool(first and first[0][0])
    rows = []
    for k in range(min(len(first), limit)):
        index = [Cell(str(list(first[k][0])))] if indexed else []
        rows.append(index + [Cell(_shown(formats, name, flat[name][k][1]), (flat[name][k][1],), field=name) for name in flat])
    caption = title if len(first) <= limit else f"{title} (first {limit} of {len(first)} rows)"
    return html_table((["index"] if indexed else []) + [ROW_LABELS.get(n, n) for n in flat], rows, caption=caption)


def format_of(field: str, formats: dict | None = None) -> Callable[[float], str]:
    """How a field is shown: ``formats[field]`` (default :data:`FORMATS`), else that of the
    longest known field it ends with ('optimal_train_dollars', 'point_n'), else 4 digits."""
    formats = FORMATS if formats is None else formats
    for known in sorted(formats, key=len, reverse=True):
        if field == known or field.endswith(f"_{known}"):
            return formats[known]
    return lambda v: f"{v:.4g}"


def _shown(formats: dict, field: str, value) -> str:
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return format_of(field, formats)(value)


# --------------------------------------------------------------------------------------
# Input files: what a runs CSV and a scenario TOML hold (``fit --help``, ``sweep --help``)
# --------------------------------------------------------------------------------------


#: The Bayesian model has 7 parameters (E, A, B, alpha, beta, the noise scale and the
#: Student-t degrees of freedom); a table with fewer runs cannot identify them.
MIN_RUNS = 7

#: Accepted spellings of each column (case and surrounding spaces ignored).
COLUMN_ALIASES = {
    "params": ("params", "n", "parameters", "model size", "model_size", "num_params"),
    "tokens": ("tokens", "d", "data", "training tokens", "training_tokens", "num_tokens"),
    "flops": ("flops", "c", "compute", "training flop", "training flops", "training_flops"),
    "loss": ("loss", "final loss", "final_loss", "l"),
    "unique_tokens": ("unique_tokens", "unique tokens", "unique", "u_d"),
}


#: What a runs CSV holds (``chinplan fit --help`` prints it).
RUNS_SCHEMA = (
    "One row per training run, with a header row. Columns (case and surrounding spaces ignored):\n"
    + "".join(f"  {name:<7} {', '.join(repr(a) for a in aliases)}\n" for name, aliases in COLUMN_ALIASES.items())
    + "params and loss are required, and tokens or flops (the other follows from C = 6 N D;\n"
    "given both, they must agree within a factor of 2).\n"
    "unique_tokens (optional; needed by fit --law data-constrained): the distinct tokens the\n"
    "run's data were drawn from, at most tokens (epochs = tokens / unique_tokens).\n"
    "Sizes may be written 70M, 1.4B, 2e10 (suffixes K, M, B, T, Q); every value finite and > 0;\n"
    f"at least {MIN_RUNS} runs. Losses in nats, on one tokenizer and evaluation set. Example:\n\n"
    "  params,tokens,loss\n  70M,1.4B,3.51\n  400M,8B,2.94\n"
)


#: What a scenario file holds (``chinplan sweep --help`` prints it; :func:`chinplan.decide.sweep.load_scenarios` reads it).
SCENARIOS_SCHEMA = """\
# A scenario file; this one runs as it stands: chinplan sweep scenarios.toml -o out.csv

[sweep]                                  # optional
quantiles = [0.05, 0.5, 0.95]
outputs = ["n", "d", "loss", "dollars"]  # default n, d, tokens_per_param, loss, gpu_hours, dollars
                                         # (no loss with target_loss: it is the target); also
                                         # train_/inference_flops, flops, train_/inference_gpu_hours,
                                         # train_dollars, inference_dollars
# optimum = "cost"                       # only with grid.target_loss: "cost", "flops" or "chinchilla"
# p_target = 2.0                         # with grid.compute or grid.n/d: a p_target column,
                                         # the share of draws whose plan has loss <= 2.0

[grid]                                   # scenario axes; every combination is one scenario
compute = {logspace = [20, 26, 61]}      # or target_loss = ..., or n = ... and d = ...
queries = {values = [0, 1e9, 1e11]}      # and any of queries, input_tokens, output_tokens,
                                         # mfu_train, mfu_prefill, mfu_decode, price, inference_price
# an axis is a number, a list, {values = [...]}, {logspace = [lo_exp, hi_exp, num]}
# or {linspace = [lo, hi, num]}; sizes may be strings such as "70B"

[deployment]                             # fixed values or distributions sampled per draw
hardware = "h100"                        # a100, h100 (= h100-sxm), h200, any case; and precision,
                                         # inference_hardware, inference_precision; or, for other
                                         # chips, peak_flops = 989e12 and inference_peak_flops
# decode = "roofline"                    # decode by the roofline, not at mfu_decode: batch = 64,
                                         # context = 4096, memory_bandwidth (default: the
                                         # serving chip's), bytes_per_weight, kv_bytes_per_token
                                         # (batch, context, memory_bandwidth may be grid axes)
input_tokens = 400
output_tokens = 100
price = {lognormal = [2.0, 0.25]}        # median, sigma; or {uniform = [lo, hi]}, {loguniform = [lo, hi]}

# Output: .parquet and .csv hold one row per scenario (the axis values, then <output>_q5,
# <output>_q50, ... and, for target_loss, unreachable_fraction); .nc holds an xarray Dataset
# over (quantile, *axes). Draws that cannot reach a target loss count as inf.
"""
