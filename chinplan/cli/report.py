"""``chinplan report``: one self-contained HTML file to hand to the people who decide.

The plan table with its bands, how far beyond (or below) the fitted runs each answer lies,
the fan chart inline as SVG, the assumptions (posterior, its runs, diagnostics, data hash,
uncertainty, draws, seed) and the command that reproduces every number. The numbers are those
of ``chinplan plan --json`` for the same arguments: the report runs that command in-process
and renders its document, so the two cannot disagree (tests/test_issue25.py checks each cell).
No network: no scripts, stylesheets or images are fetched; the figure is inline SVG.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import shlex

import numpy as np

from chinplan import _files
from chinplan.cli import inputs, render
from chinplan.cli.parser import EXIT_OK, build_parser
from chinplan.format import FORMATS, human_flops, quantile_label, sci
from chinplan.plots import charts

REPORT_SUFFIXES = (".html",)
#: The plan fields of the table, their headers.
COLUMNS = (("n", "parameters N*"), ("d", "tokens D*"), ("tokens_per_param", "tokens/param"), ("loss", "loss (nats)"))
STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}.band{color:#666;font-size:.9em}code{background:#f4f4f4}"
)


def plan_argv(args) -> list[str]:
    """The ``chinplan plan`` command whose JSON the report renders (and which reproduces it)."""
    argv = ["plan", "--compute", *(f"{c:g}" for c in args.compute), "--seed", str(args.seed), "--quantiles", *(f"{q:g}" for q in args.quantiles)]
    for option in ("posterior", "draws", "uncertainty"):
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--{option}", str(value)]
    return argv


def _plan_document(argv: list[str]) -> dict:
    from chinplan.cli.plan import cmd_plan

    plan_args = build_parser().parse_args([*argv, "--json"])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        cmd_plan(plan_args)
    return json.loads(buffer.getvalue())


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or DOCTYPE (they fetch nothing, but are not HTML)


def _cell(field: str, values: list, median: int) -> str:
    """A band cell: the median, then its range; every number also in a data attribute, exact."""
    fmt = FORMATS[field]
    shown = [fmt(v) if v is not None and math.isfinite(v) else "inf" for v in values]
    data = " ".join(repr(float(v)) if v is not None else "inf" for v in values)
    band = f"{shown[0]} - {shown[-1]}"
    return f'<td data-field="{field}" data-values="{data}">{html.escape(shown[median])}<br><span class="band">{html.escape(band)}</span></td>'


def _where(compute: float, beyond: dict) -> str:
    return html.escape(inputs.beyond_note(human_flops(compute), beyond, warn_below=False))


def cmd_report(args) -> int:
    inputs.check_output(args.output, "-o/--output", REPORT_SUFFIXES, args.posterior)
    q = inputs.check_quantiles(args.quantiles)
    argv = plan_argv(args)
    with render.working(f"report: {render.COMPILING_NOTE}"):
        doc = _plan_document(argv)
        draws = inputs.load_draws(args, fast=True)
        lo, hi = min(1e18, min(args.compute) / 100), max(1e26, max(args.compute) * 100)
        budgets = np.logspace(math.log10(lo), math.log10(hi), 41)
        figure = _svg(charts.fan_chart(draws.theta, budgets, mark=args.compute, **inputs.overlays(args, draws)))
    median = int(np.argmin(np.abs(np.asarray(q) - 0.5)))
    attrs = draws.posterior.attrs
    rows = []
    for plan in doc["plans"]:
        cells = "".join(_cell(field, plan[field], median) for field, _ in COLUMNS)
        rows.append(f'<tr data-compute="{plan["compute"]!r}"><td>{sci(plan["compute"])}</td>{cells}</tr>')
    headers = "".join(f"<th>{html.escape(h)}</th>" for _, h in COLUMNS)
    where = "".join(f"<li>{_where(plan['compute'], plan['extrapolation'])}</li>" for plan in doc["plans"])
    assumptions = {
        "posterior": doc["posterior"], "fitted runs": attrs.get("num_runs", "?"), "data sha256": str(attrs.get("data_sha256", "?")),
        "converged (R-hat, ESS, divergences)": "yes" if int(attrs.get("converged", 1)) else "NO: bands not to be trusted",
        "posterior draws used": doc["num_draws"], "seed": doc["seed"], "uncertainty": doc["uncertainty"],
        "bands": quantile_label(q), "losses": "nats of the fitted runs' tokenizer and evaluation set",
    }  # fmt: skip
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in assumptions.items())
    command = html.escape(" ".join(shlex.quote(a) for a in ["chinplan", *argv]))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chinplan report</title><style>{STYLE}</style></head>
<body>
<h1>Compute-optimal plan</h1>
<p>{html.escape(f"{doc['num_draws']} posterior draws, {doc['uncertainty']} uncertainty; each cell: the median, then the {quantile_label(q)} band")}</p>
<table id="plan"><tr><th>FLOPs</th>{headers}</tr>
{chr(10).join(rows)}
</table>
<h2>How far beyond the data</h2>
<ul>{where}</ul>
<p>{"The bands include the extrapolation component: they widen with the distance beyond the fitted runs." if doc["uncertainty"] == "extrapolation"
    else "The bands carry the law's posterior alone (no extrapolation component)."}</p>
<h2>Fan chart</h2>
<figure>{figure}</figure>
<h2>Assumptions</h2>
<table id="assumptions">{facts}</table>
<h2>Reproduce</h2>
<p><code>{command}</code> prints these numbers (add <code>--json</code> for all digits).</p>
</body></html>
"""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(page)

    _files.write_atomic(args.output, write, suffix=".html.tmp")
    if args.json:
        render.emit_json({"output": args.output, "plan": doc, "command": ["chinplan", *argv]})
    else:
        render.console().print(f"wrote {args.output} (plan for {', '.join(sci(c) for c in args.compute)} FLOPs; reproduce: chinplan {' '.join(argv)})")
    return EXIT_OK
