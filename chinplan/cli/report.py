"""``chinplan report``: one self-contained HTML file to hand to the people who decide.

The plan table with its bands, how far beyond (or below) the fitted runs each answer lies,
the fan chart inline as SVG, the assumptions (posterior, its runs, diagnostics, data hash,
uncertainty, draws, seed) and the commands that reproduce every number. The numbers are those
of ``chinplan plan --json`` for the same arguments: the report runs that command in-process
and renders its document, so the two cannot disagree (tests/test_issue25.py checks each cell).
With a deployment (``--queries``, ``--tokens-per-query``, ``--hardware``, ...) it adds the
cost table of ``chinplan tco --json`` at each plan's median loss, run in-process the same way,
and the crossover that ``chinplan tco --plot`` draws (:func:`chinplan.decide.crossover.crossover`:
the query volume past which the inference-aware plan is the cheaper one). Tables are rendered
by :func:`chinplan.format.html_table`, the renderer of the notebook views too.
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
from chinplan.cli.parser import EXIT_OK, Range, _deployment_options, build_parser
from chinplan.format import FORMATS, Cell, band_html, deployment_line, human_count, html_table, percent, quantile_label, sci
from chinplan.plots import charts

REPORT_SUFFIXES = (".html",)
#: The plan fields of the table, their headers.
COLUMNS = (("n", "parameters N*"), ("d", "tokens D*"), ("tokens_per_param", "tokens/param"), ("loss", "loss (nats)"))
#: The two plans of the cost table (the keys of ``chinplan tco --json``), their headers.
GROUPS = (("inference_optimal", "inference-aware optimum"), ("chinchilla", "compute-optimal"))
STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}.band{color:#666;font-size:.9em}code{background:#f4f4f4}"
    "caption{text-align:left;font-weight:bold;padding:.3em 0}"
)


def _number(value) -> str:
    """A number as typed on a command line: the short form when it is exact, else every digit."""
    value = float(value)
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


def _shared_argv(args) -> list[str]:
    """The options every reproducing command shares: seed, quantiles, posterior, draws, uncertainty."""
    argv = ["--seed", str(args.seed), "--quantiles", *(f"{q:g}" for q in args.quantiles)]
    for option in ("posterior", "draws", "uncertainty"):
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--{option}", str(value)]
    return argv


def plan_argv(args) -> list[str]:
    """The ``chinplan plan`` command whose JSON the report renders (and which reproduces it)."""
    return ["plan", "--compute", *(f"{c:g}" for c in args.compute), *_shared_argv(args)]


def deployment_argv(args) -> list[str]:
    """The deployment options given (those that differ from their defaults), as typed: empty
    when none was given (the report is then the plan alone)."""
    argv = []
    for action in _deployment_options()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        text = ":".join(_number(v) for v in value) if isinstance(value, Range) else value if isinstance(value, str) else _number(value)
        argv += [action.option_strings[0], text]
    return argv


def tco_argv(args, targets) -> list[str]:
    """The ``chinplan tco`` command whose JSON the cost table renders."""
    return ["tco", "--target-loss", *(_number(t) for t in targets), *_shared_argv(args), *deployment_argv(args)]


def _document(argv: list[str]) -> dict:
    """The ``--json`` document of ``chinplan ARGV``, run in-process."""
    from chinplan.cli import costs, plan

    command = {"plan": plan.cmd_plan, "tco": costs.cmd_tco}[argv[0]]
    parsed = build_parser().parse_args([*argv, "--json"])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        command(parsed)
    return json.loads(buffer.getvalue())


def _converged(posterior, path) -> str:
    """The assumptions' convergence line: the gate recomputed from a file's draws, as the
    command line's warning says it (:func:`chinplan.cli.inputs.convergence_problems`)."""
    problems = inputs.convergence_problems(posterior, path)
    if problems is None:
        return "cannot be checked: 1 chain (R-hat compares chains)"
    return "yes" if not problems else f"NO ({'; '.join(problems[:2])}): bands not to be trusted"


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or DOCTYPE (they fetch nothing, but are not HTML)


def _values(values) -> list[float]:
    return [math.inf if v is None else float(v) for v in values]  # JSON writes a non-finite number as null


def _where(compute: float, beyond: dict) -> str:
    return html.escape(inputs.beyond_note(f"{sci(compute)} FLOPs", beyond, warn_below=False))


def _targets(doc: dict, median: int) -> list[float]:
    """The target loss of each budget's cost table: its plan's central (median) loss, to 4
    digits (the number the reproducing ``tco`` command is given)."""
    return [float(f"{_values(plan['loss'])[median]:.4g}") for plan in doc["plans"]]


def _cost_tables(doc: dict, tco: dict, median: int, central: str) -> list[str]:
    """One table per budget: every field of ``tco --json`` for both plans, and the savings."""
    from chinplan.cli.costs import _row_label

    out = []
    described = tco["deployment"]
    for plan, target in zip(doc["plans"], tco["targets"]):
        rows = []
        for field in target["inference_optimal"]:  # every field of the JSON, in its order
            rows.append([Cell(_row_label(field, described))] + [
                band_html(_values(target[g][field]), FORMATS[field], field=f"{g}.{field}", centre=median) for g, _ in GROUPS])  # fmt: skip
        rows.append([Cell("savings of the inference-aware plan"), band_html(_values(target["savings"]), percent, field="savings", centre=median), Cell("")])
        unreachable = f"; unreachable for {percent(target['unreachable_fraction'])} of draws (counted as inf)" if target["unreachable_fraction"] else ""
        caption = f"{sci(plan['compute'])} FLOPs: target loss {target['target_loss']:g}, the plan's {central} loss{unreachable}"
        out.append(html_table(["", *(h for _, h in GROUPS)], rows, caption=caption, table_id=f"costs-{len(out)}"))
    return out


def _crossovers(args, tco: dict, median: int) -> list[dict]:
    """Per budget, the crossover of its two plans (their medians), as ``chinplan tco --plot``
    draws it: :func:`chinplan.decide.crossover.crossover` on the same draws, deployment,
    seed and query range."""
    from chinplan.decide import risk as decide
    from chinplan.decide.crossover import crossover

    deployment, _ = inputs.deployment_of(args)
    draws = inputs.load_draws(args, fast=True)
    law_draws = draws.theta if draws.uncertainty == "extrapolation" else draws.params
    theta = decide.draw_pairs(law_draws, deployment, key=inputs.key_for(args, inputs.COSTS))
    grid = inputs.queries_grid(args.queries)
    out = []
    for target in tco["targets"]:
        a = tuple(_values(target["inference_optimal"][k])[median] for k in ("n", "d"))
        b = tuple(_values(target["chinchilla"][k])[median] for k in ("n", "d"))
        entry = {"target_loss": target["target_loss"], "inference_optimal": a, "chinchilla": b, "range": [grid[0], grid[-1]]}
        if not all(map(math.isfinite, (*a, *b))):
            out.append({**entry, "median": None, "span": None, "uncertain": False, "cheaper_beyond": None})
            continue
        found = crossover(theta, a, b, grid)
        cheaper = "inference_optimal" if found["p"][-1] > 0.5 else "chinchilla"
        out.append({**entry, "median": found["median"], "span": found["span"] if found["uncertain"] else None,
                    "uncertain": found["uncertain"], "cheaper_beyond": cheaper})  # fmt: skip
    return out


def _crossover_table(doc: dict, crossings: list[dict]) -> str:
    rows = []
    for plan, c in zip(doc["plans"], crossings):
        a, b = c["inference_optimal"], c["chinchilla"]
        median = Cell(sci(c["median"]), (c["median"],), field="median") if c["median"] is not None else Cell("none in range")
        span = Cell(f"{sci(c['span'][0])} - {sci(c['span'][1])}", tuple(c["span"]), field="span") if c["span"] else Cell("-")
        rows.append([Cell(sci(plan["compute"])), Cell(f"{human_count(a[0])}:{human_count(a[1])}", a, field="inference_optimal"),
                     Cell(f"{human_count(b[0])}:{human_count(b[1])}", b, field="chinchilla"), median, span,
                     Cell(f"{sci(c['range'][0])} - {sci(c['range'][1])}", tuple(c["range"]), field="range")])  # fmt: skip
    return html_table(["FLOPs", "inference-aware N:D", "compute-optimal N:D", "P(inference-aware cheaper) = 0.5 at", "0.05 < P < 0.95",
                       "queries searched"], rows, caption="Crossover: lifetime queries past which the inference-aware plan is cheaper",
                      table_id="crossover")  # fmt: skip


def cmd_report(args) -> int:
    with inputs.warnings_once():  # the posterior is read by each command the report runs: one warning each
        return _report(args)


def _report(args) -> int:
    inputs.check_output(args.output, "-o/--output", REPORT_SUFFIXES, args.posterior)
    q = inputs.check_quantiles(args.quantiles)
    median, central = inputs.central_quantile(q)
    argv = plan_argv(args)
    commands = [argv]
    served = bool(deployment_argv(args))
    if served:
        inputs.deployment_of(args)  # a bad deployment is refused before any work
    with render.working(f"report: {render.COMPILING_NOTE}"):
        doc = _document(argv)
        draws = inputs.load_draws(args, fast=True)
        lo, hi = min(1e18, min(args.compute) / 100), max(1e26, max(args.compute) * 100)
        budgets = np.logspace(math.log10(lo), math.log10(hi), 41)
        figure = _svg(charts.fan_chart(draws.theta, budgets, mark=args.compute, **inputs.overlays(args, draws)))
        tco, crossings = None, None
        if served:
            commands.append(tco_argv(args, _targets(doc, median)))
            tco = _document(commands[-1])
            crossings = _crossovers(args, tco, median) if args.queries > 0 else None
    attrs = draws.posterior.attrs
    rows = [[Cell(sci(plan["compute"]))] + [band_html(_values(plan[field]), FORMATS[field], field=field, centre=median) for field, _ in COLUMNS]
            for plan in doc["plans"]]  # fmt: skip
    plan_table = html_table(["FLOPs", *(h for _, h in COLUMNS)], rows, table_id="plan",
                            row_data=[{"compute": repr(float(plan["compute"]))} for plan in doc["plans"]])  # fmt: skip
    where = "".join(f"<li>{_where(plan['compute'], plan['extrapolation'])}</li>" for plan in doc["plans"])
    assumptions = {
        "posterior": doc["posterior"], "fitted runs": attrs.get("num_runs", "?"), "data sha256": str(attrs.get("data_sha256", "?")),
        "converged (R-hat, ESS, divergences)": _converged(draws.posterior, args.posterior),
        "posterior draws used": doc["num_draws"], "seed": doc["seed"], "uncertainty": doc["uncertainty"],
        "bands": quantile_label(q), "losses": "nats of the fitted runs' tokenizer and evaluation set",
    }  # fmt: skip
    if tco is not None:
        assumptions["deployment"] = deployment_line(tco["deployment"])
    facts = html_table(["assumption", "value"], [[Cell(k), Cell(str(v))] for k, v in assumptions.items()], table_id="assumptions")
    costs = ""
    if tco is not None:
        costs = "<h2>Costs</h2>\n<p>" + html.escape(
            f"Each budget's plan beside the inference-aware optimum for the same loss (chinplan tco), {tco['num_draws']} posterior draws, "
            f"{tco['uncertainty']} uncertainty; each cell: the {quantile_label(q)} band."
        ) + "</p>\n" + "\n".join(_cost_tables(doc, tco, median, central))  # fmt: skip
        if crossings is not None:
            costs += "\n<h3>Crossover</h3>\n" + _crossover_table(doc, crossings)
        else:
            costs += "\n<p>Training only (no --queries): nothing is served, so the two plans cost the same and there is no crossover.</p>"
    shown = "".join(f"<li><code>{html.escape(' '.join(shlex.quote(a) for a in ['chinplan', *c]))}</code></li>" for c in commands)
    plot_hint = " Add <code>--plot tco.svg</code> to the <code>tco</code> command to draw the crossover." if crossings is not None else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chinplan report</title><style>{STYLE}</style></head>
<body>
<h1>Compute-optimal plan</h1>
<p>{html.escape(f"{doc['num_draws']} posterior draws, {doc['uncertainty']} uncertainty; each cell: the median, then the {quantile_label(q)} band")}</p>
{plan_table}
<h2>How far beyond the data</h2>
<ul>{where}</ul>
<p>{"The bands include the extrapolation component: they widen with the distance beyond the fitted runs." if doc["uncertainty"] == "extrapolation"
    else "The bands carry the law's posterior alone (no extrapolation component)."}</p>
<h2>Fan chart</h2>
<figure>{figure}</figure>
{costs}
<h2>Assumptions</h2>
{facts}
<h2>Reproduce</h2>
<p>These commands print these numbers (add <code>--json</code> for all digits).{plot_hint}</p>
<ul>{shown}</ul>
</body></html>
"""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(page)

    _files.write_atomic(args.output, write, suffix=".html.tmp")
    if args.json:
        extra = {"costs": tco, "crossover": crossings} if tco is not None else {}
        render.emit_json({"output": args.output, "plan": doc, "command": ["chinplan", *argv], "commands": [["chinplan", *c] for c in commands], **extra})
    else:
        again = "; ".join("chinplan " + " ".join(c) for c in commands)
        render.console().print(f"wrote {args.output} (plan for {', '.join(sci(c) for c in args.compute)} FLOPs; reproduce: {again})")
    return EXIT_OK
