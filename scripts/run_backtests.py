"""Back-tests of loss and allocation on both embedded datasets (docs/CALIBRATION.md).

    python scripts/run_backtests.py [--out docs/backtests.json] [--docs]

For the Chinchilla runs and for the data-constrained paper's runs with at most 2 epochs
(where repetition costs under 0.2% of loss, so the Chinchilla law applies), it runs
:func:`chinplan.inference.calibration.report`: the ``compute`` and ``size`` splits, each scored with
the extrapolation-aware and the law-only intervals, and the allocation back-test.
With ``--docs`` it rewrites the generated tables in docs/CALIBRATION.md and README.md (between
``<!-- backtests:start -->`` and ``<!-- backtests:end -->``), so no figure there is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time

import jax

from chinplan import datasets
from chinplan.inference import calibration


def datablations_few_epochs(max_epochs: float = 2.0):
    """The data-constrained paper's C4 runs with at most ``max_epochs`` epochs."""
    runs = datasets.datablations()
    runs = runs[(runs["epochs"] <= max_epochs) & (runs["dataset"] == "c4")]
    return runs[["params", "tokens", "loss"]].reset_index(drop=True)


def share(value: float, se: float, count: int) -> str:
    """'0.81 ± 0.04'; at 0 or 1 the binomial SE is 0, so the count is shown instead ('1.00 (9/9)')."""
    return f"{value:.2f} ± {se:.2f}" if se > 0 else f"{value:.2f} ({round(value * count)}/{count})"


def render(results: dict) -> str:
    """Markdown tables of the back-tests (the generated block of docs/CALIBRATION.md)."""
    lines = [
        "| data | split | interval | fitted | predicted (outliers) | median error | cov 50% | cov 80% | cov 90% | cov 90% w/o outliers | 90% width | score |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for row in result["splits"]:
            cov = " | ".join(share(c["coverage"], c["se"], row["num_predicted"]) for c in row["coverage"])
            lines.append(
                f"| {name} | {row['split']} | {row['interval']} | {row['num_fit']} | {row['num_predicted']} ({row['num_outliers_predicted']}) | "
                f"{100 * row['median_rel_error']:.2f}% | {cov} | {row['coverage'][-1]['without_outliers']:.2f} | {row['width90']:.3f} | {row['interval_score90']:.3f} |"
            )
    lines += [
        "",
        "What a calibrated predictive expects of one split (`calibration.replicate_coverage`: the coverage of the same",
        "intervals on 1,000 replicates of the held-out losses drawn from the predictive itself, the shared discrepancy",
        "included): the 5-95% range of that coverage, the share of replicates inside the issue's band (0.40-0.60 for",
        "50%, 0.85-0.95 for 90%), and the observed coverage's predictive p-value (share of replicates at or below it).",
        "",
        "| data | split | interval | cov 50% | expected 5-95% | in 0.40-0.60 | p | cov 90% | expected 5-95% | in 0.85-0.95 | p |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for row in result["splits"]:
            cells = []
            for c in row["coverage"]:
                if c["level"] in (0.5, 0.9) and "replicate_q05" in c:
                    cells.append(f"{c['coverage']:.2f} | {c['replicate_q05']:.2f}-{c['replicate_q95']:.2f} | {c['replicate_in_band']:.2f} | {c['p_value']:.2f}")
            if cells:
                lines.append(f"| {name} | {row['split']} | {row['interval']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "What the fit's leave-the-largest-out folds saw (median log residual of the runs each fold dropped, against",
        "that fold's law, and their median decades beyond it) beside what the held-out runs of the split did:",
        "",
        "| data | split | held out: decades | held out: residual | folds (dropped runs, decades, residual) |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for row in result["splits"]:
            if row["interval"] != "extrapolation" or "folds" not in row:
                continue
            folds = "; ".join(
                f"{f['fold']}: {f['num_dropped']}, {f['median_decades']:.2f}, {f['median_residual']:+.4f}" for f in row["folds"] if "median_residual" in f
            )
            lines.append(f"| {name} | {row['split']} | {row['heldout_median_decades']:.2f} | {row['heldout_median_residual']:+.4f} | {folds} |")
    lines += ["", "| data | interval | isoFLOP minima beyond the fit | inside the 90% N* band | median band width (95%/5%) |", "|---|---|---|---|---|"]
    for name, result in results.items():
        for row in result["allocation"]:
            lines.append(f"| {name} | {row['interval']} | {row['num_minima']} | {share(row['coverage'], row['se'], row['num_minima'])} | {row['median_width']:.2f}x |")
    lines += ["", "Minima of the allocation back-test (log10 N; the empirical minimum with its bootstrap 5-95%, the band predicted):", ""]
    lines += ["| data | interval | log10 C | decades beyond | empirical | bootstrap | predicted 5% | 50% | 95% | inside |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        for row in result["allocation"]:
            for m in row["minima"]:
                lines.append(
                    f"| {name} | {row['interval']} | {m['log10_compute']:.2f} | {m['decades_beyond']:.2f} | {m['log10_params']:.3f} | "
                    f"{m['lower']:.2f}-{m['upper']:.2f} | {math.log10(m['n05']):.3f} | {math.log10(m['n50']):.3f} | "
                    f"{math.log10(m['n95']):.3f} | {'yes' if m['inside'] else 'no'} |"
                )
    seconds = ", ".join(f"{name} {result['seconds']:.0f} s" for name, result in results.items())
    lines += ["", f"Wall time of the whole run (fits with their leave-out refits, 2-core CPU): {seconds}."]
    return "\n".join(lines)


def replace_block(path: str, block: str, marker: str = "backtests") -> None:
    """Rewrites the text between the ``<!-- {marker}:start -->`` and ``:end`` markers of ``path``."""
    with open(path) as f:
        text = f.read()
    pattern = re.compile(rf"(<!-- {marker}:start -->\n)(?:.*?\n)?(<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no <!-- {marker}:start --> ... <!-- {marker}:end --> block")
    with open(path, "w") as f:
        f.write(pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text))


def study_main(doc: str, default_out: str, marker: str, run, render_block, path: str = "docs/CALIBRATION.md") -> None:
    """The command line every study script shares: run (or ``--from-json``), save the JSON,
    print the rendered block and, with ``--docs``, write it between ``marker``'s comments of
    docs/CALIBRATION.md. ``run(seed) -> results``; ``render_block(results) -> markdown``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", action="store_true", help="rewrite the generated block of docs/CALIBRATION.md")
    parser.add_argument("--from-json", metavar="FILE", help="render a saved run instead of running it")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
    else:
        results = run(args.seed)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    block = render_block(results)
    print(block)
    if args.docs:
        replace_block(path, block, marker=marker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/backtests.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", action="store_true", help="rewrite the generated tables in docs/CALIBRATION.md and README.md")
    parser.add_argument("--from-json", metavar="FILE", help="render a saved run instead of running the back-tests")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        block = render(results)
        print(block)
        if args.docs:
            replace_block("docs/CALIBRATION.md", block)
        return
    results = {}
    for name, runs in (("chinchilla", datasets.chinchilla()), ("datablations_2_epochs", datablations_few_epochs())):
        start = time.perf_counter()
        results[name] = calibration.report(runs, key=jax.random.key(args.seed), progress=False)
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        for row in results[name]["splits"]:
            cov = " ".join(f"{c['coverage']:.2f}" for c in row["coverage"])
            print(f"{name:22s} {row['split']:8s} {row['interval']:13s} fit {row['num_fit']:3d} pred {row['num_predicted']:3d} "
                  f"err {100 * row['median_rel_error']:.2f}% cov50/80/90 {cov} width90 {row['width90']:.3f} IS90 {row['interval_score90']:.3f}", flush=True)
        for row in results[name]["allocation"]:
            print(f"{name:22s} allocation {row['interval']:13s} {row['num_minima']} minima: coverage {row['coverage']:.2f} median width {row['median_width']:.1f}x", flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    if args.docs:
        replace_block("docs/CALIBRATION.md", render(results))


if __name__ == "__main__":
    main()
