"""Leave-one-ladder-out back-test of compute-optimal N* bands on the shipped ladders (issue 22):
the markdown of docs/CALIBRATION.md.

The back-test itself (the ladders, their fits, the predictives, the scores and the nested
selection of the allocation line's and the loss level's scales) is
:mod:`chinplan.inference.ladders`, whose docstring says what is fitted and how it is scored;
``chinplan validate --ladders`` runs it from the command line and prints the pooled table.
This script runs the same :func:`chinplan.inference.ladders.backtest` and renders every table
of it (pooled, by distance, per ladder, loss, the scales' selection, the fits) as markdown.

Usage:
    python scripts/validate_ladders.py [--cache DIR] [--docs] [--out results.json]
    python scripts/validate_ladders.py --from-json results.json [--docs]
    python scripts/validate_ladders.py --likelihoods A.json B.json ... [--docs]

``--cache DIR`` keeps the fitted posteriors (``Posterior.save``) keyed by ladder, seed, data
and chinplan version; delete it when the fit itself changes. ``--docs`` rewrites the block
between ``<!-- validate_ladders: start -->`` and ``<!-- validate_ladders: end -->`` of
docs/CALIBRATION.md.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from chinplan.inference.ladders import BINS, GRIDS, INF, LEVEL_GRID, LEVELS, LIKELIHOODS, SEED, backtest, ladder_names, short

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "CALIBRATION.md"
MARKER_START = "<!-- validate_ladders: start -->"
MARKER_END = "<!-- validate_ladders: end -->"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ladder_done(k: int, total: int, name: str, fit: dict, elapsed: float) -> None:
    _log(f"[{elapsed:6.0f} s] {short(name)}: {fit['heldout_minima']} held-out minima, converged {fit['converged']}")


# ----------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------
def _f(x, nd=2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _band(x) -> str:
    return "-" if x is None or math.isnan(x) else (f"{x:.1f}x" if x < 100 else f"{x:.3g}x")


def _hyper(h: dict) -> str:
    return ", ".join(f"{k} {('inf' if v >= INF else f'{v:g}')}" for k, v in h.items())


def markdown(res: dict, meta: dict) -> str:
    a = res["allocation"]
    L = [(f"Command: `{meta['command']}`; wall time {meta['wall_s']:.0f} s ({meta['fits_s']:.0f} s fits and evidence, of which "
          f"{meta['fit_wall_s']:.0f} s NUTS fits run now, {meta['cached']} of {meta['ladders']} fits from the cache; {meta['scores_s']:.0f} s scores; "
          f"{meta.get('cpu_devices', 1)} CPU device(s), the chains run that many at a time)."), ""]
    L += ["**Pooled N\\*** at the held-out isoFLOP minima (in brackets the 5-95% of a bootstrap over ladders):", "",
          "| predictive | n | cov 50% | cov 80% | cov 90% | median 90% band < 1 dec | median 90% band 1-2.1 dec | IS90 (dec) | CRPS (dec) | median abs log10 error | mean signed error |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for which, r in a.items():
        p, b = r["pooled"], r["pooled"]["bootstrap"]
        cov = " | ".join(f"{_f(p[f'cov{lev:g}'])} ({_f(b[f'cov{lev:g}'][0])}-{_f(b[f'cov{lev:g}'][1])})" for lev in LEVELS)
        L.append(f"| {which} | {p['n']} | {cov} | {_band(p['band90_within1'])} | {_band(p['band90_beyond1'])} | {_f(p['is90'], 3)} | {_f(p['crps'], 3)} | {_f(p['med_abs_err'], 3)} | {p['mean_err']:+.3f} |")
    L += ["", "**By decades beyond the fitted compute** (cov 50% / 80% / 90%, median 90% band, n):", "",
          "| predictive | " + " | ".join(name for _, _, name in BINS) + " |", "|---|" + "---|" * len(BINS)]
    for which, r in a.items():
        cells = []
        for _, _, name in BINS:
            g = r["by_distance"].get(name)
            cells.append("-" if g is None else f"{_f(g['cov0.5'])} / {_f(g['cov0.8'])} / {_f(g['cov0.9'])}, {_band(g['band90'])} ({g['n']})")
        L.append(f"| {which} | " + " | ".join(cells) + " |")
    L += ["", "**Per ladder** (cov 50% / 90%, mean signed error in decades, median 90% band; error = measured - predicted median):", "",
          "| ladder | n | " + " | ".join(a) + " |", "|---|---|" + "---|" * len(a)]
    for name, fit in res["fits"].items():
        cells = []
        for r in a.values():
            g = r["per_ladder"].get(name)
            cells.append("-" if g is None else f"{_f(g['cov0.5'])} / {_f(g['cov0.9'])}, {g['mean_err']:+.2f}, {_band(g['band90'])}")
        L.append(f"| {short(name)} | {fit['heldout_minima']} | " + " | ".join(cells) + " |")
    L += ["", "**Loss** at every held-out run (cov 50% / 90%):", "",
          "| predictive | n | cov 50% | cov 90% | " + " | ".join(name for _, _, name in BINS) + " |", "|---|---|---|---|" + "---|" * len(BINS)]
    for which, r in res["loss"].items():
        cells = [f"{_f(r['by_distance'][n]['cov0.5'])} / {_f(r['by_distance'][n]['cov0.9'])} ({r['by_distance'][n]['n']})" if n in r["by_distance"] else "-" for _, _, n in BINS]
        L.append(f"| {which} | {r['pooled']['n']} | {_f(r['pooled']['cov0.5'])} | {_f(r['pooled']['cov0.9'])} | " + " | ".join(cells) + " |")
    L += ["", "Loss per ladder (cov 50% / 90%; law, previous default, new default): " + "; ".join(
        f"{short(n)} " + ", ".join(f"{_f(res['loss'][w]['per_ladder'][n]['cov0.5'])}/{_f(res['loss'][w]['per_ladder'][n]['cov0.9'])}" for w in res["loss"])
        for n in res["fits"] if n in res["loss"]["law"]["per_ladder"])]  # fmt: skip
    h = res["hyper"]
    L += ["", (f"**The allocation line's scales** (nested leave-one-ladder-out, mean CRPS per ladder, each ladder weighted equally; "
               f"grids sigma0 {list(GRIDS['sigma0'][:-1])} + inf, sigma {list(GRIDS['sigma'])}, tau {list(GRIDS['tau'])}): "
               f"best on all ladders {_hyper(h['best_all'])}; shipped `DEFAULT_HYPER` {_hyper(h['default'])}."), "",
          "| held-out ladder | chosen without it | moved from DEFAULT_HYPER | its CRPS, chosen | its CRPS, DEFAULT_HYPER |", "|---|---|---|---|---|"]  # fmt: skip
    for name, r in h["per_ladder"].items():
        moved = ", ".join(f"{k} {_hyper({k: h['default'][k]}).split(' ', 1)[1]} -> {_hyper({k: v}).split(' ', 1)[1]}" for k, v in r["chosen"].items() if v != h["default"][k]) or "no"
        L.append(f"| {short(name)} | {_hyper(r['chosen'])} | {moved} | {_f(r['crps_chosen'], 3)} | {_f(r['crps_default'], 3)} |")
    lv = res["level"]
    L += ["", (f"**The loss level's prior scales** (half-normal scales of tau_u and kappa; nested leave-one-ladder-out, mean weighted "
               f"interval score of the 50% and 90% log-loss intervals at the held-out runs per ladder, each ladder weighted equally; grid "
               f"{list(LEVEL_GRID)} for each): best on all ladders tau_u {lv['best_all'][0]:g}, kappa {lv['best_all'][1]:g} (cov 50% / 90% "
               f"{_f(lv['pooled_best']['cov0.5'])} / {_f(lv['pooled_best']['cov0.9'])}); shipped `PRIOR_SCALE_TAU_U`, `PRIOR_SCALE_KAPPA` "
               f"{lv['shipped'][0]:g}, {lv['shipped'][1]:g}; each ladder predicted with the pair chosen without it: "
               f"cov 50% / 90% {_f(lv['nested']['cov0.5'])} / {_f(lv['nested']['cov0.9'])}."), "",
          "| held-out ladder | chosen without it (tau_u, kappa) | its cov 50% / 90% | its score, chosen | its score, shipped |", "|---|---|---|---|---|"]  # fmt: skip
    for name, r in lv["per_ladder"].items():
        L.append(f"| {short(name)} | {r['chosen'][0]:g}, {r['chosen'][1]:g} | {_f(r['cov0.5'])} / {_f(r['cov0.9'])} | {_f(r['score_chosen'], 4)} | {_f(r['score_shipped'], 4)} |")
    L += ["", "**Fits** (`chinplan.fit` defaults; key `jax.random.key(" + str(SEED) + " + i)`):", "",
          "| ladder | fitted runs | held-out runs | fitted minima | held-out minima | converged | attempts | fit (s) | line slope | problems |",
          "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, fit in res["fits"].items():
        slope = "-" if fit["line"] is None else f"{fit['line']['slope']:.2f}"
        L.append(f"| {short(name)} | {fit['fitted_runs']} | {fit['heldout_runs']} | {fit['fitted_minima']} | {fit['heldout_minima']} | {'yes' if fit['converged'] else '**no**'} | {fit['attempts']} | {fit['fit_wall_s']:.0f} | {slope} | {'; '.join(fit['problems']) or '-'} |")
    return "\n".join(L)


def likelihoods_markdown(files: list[str]) -> str:
    """The noise models side by side (issue 22 item 4): pooled N* and loss coverage of the
    default predictive of fits with each likelihood, from the JSON that ``--out`` wrote."""
    L = ["Commands: " + "; ".join(f"`{json.load(open(f))['meta']['command']}`" for f in files) + f"; then `python scripts/validate_ladders.py --likelihoods {' '.join(files)} --docs`.", "",
         "| likelihood | N* cov 50% | N* cov 80% | N* cov 90% | N* CRPS (dec) | loss cov 50% | loss cov 90% | fits converged |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for f in files:
        res = json.load(open(f))
        cmd = res["meta"]["command"]
        name = re.search(r"--likelihood (\S+)", cmd).group(1) if "--likelihood " in cmd else "student_t"
        a, lo = res["allocation"]["new default"]["pooled"], res["loss"]["new default"]["pooled"]
        conv = sum(bool(fit["converged"]) for fit in res["fits"].values())
        L.append(f"| {name} | {_f(a['cov0.5'])} | {_f(a['cov0.8'])} | {_f(a['cov0.9'])} | {_f(a['crps'], 3)} | {_f(lo['cov0.5'])} | {_f(lo['cov0.9'])} | {conv} of {len(res['fits'])} |")
    return "\n".join(L)


def replace_block(path, block: str, start: str = MARKER_START, end: str = MARKER_END) -> None:
    text = Path(path).read_text()
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {start} ... {end} block")
    Path(path).write_text(pattern.sub(lambda m: start + "\n" + block + "\n" + end, text))


def docs_main(doc: str, build, path, start: str, end: str, argv=None) -> str:
    """The command line of a script that renders one block: ``build() -> markdown``, printed,
    and with ``--docs`` written between ``start`` and ``end`` of ``path``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help=f"rewrite the block of {Path(path).parent.name}/{Path(path).name}")
    args = parser.parse_args(argv)
    block = build()
    print(block)
    if args.docs:
        replace_block(path, block, start, end)
    return block


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", metavar="DIR", help="keep the fitted posteriors here (and reuse them)")
    parser.add_argument("--docs", action="store_true", help=f"rewrite the generated block of {DOC.relative_to(ROOT)}")
    parser.add_argument("--out", metavar="FILE", help="also write the results (and every scored point) as JSON")
    parser.add_argument("--porian", help="Porian et al.'s isoFLOP runs as a CSV (default: the copy shipped in chinplan/datasets)")
    parser.add_argument("--only", metavar="SUBSTRING", help="only the ladders whose name contains this (a quick check; not for --docs)")
    parser.add_argument("--from-json", metavar="FILE", help="render the results saved by --out instead of running the back-test")
    parser.add_argument("--likelihood", default="student_t", choices=LIKELIHOODS,
                        help="the fits' noise model (issue 22 item 4: judged by these back-tests; --docs only with the default)")
    parser.add_argument("--likelihoods", nargs="+", metavar="JSON", help="render the noise models' table from the files --out wrote (one per --likelihood)")
    args = parser.parse_args(argv)
    if args.likelihoods:
        md = likelihoods_markdown(args.likelihoods)
        print(md)
        if args.docs:
            replace_block(DOC, md, "<!-- validate_ladders likelihoods: start -->", "<!-- validate_ladders likelihoods: end -->")
        return {}
    if args.docs and args.only:
        parser.error("--docs needs every ladder")
    if args.docs and args.likelihood != "student_t":
        parser.error("--docs documents the package's default likelihood (student_t)")
    if args.from_json:
        with open(args.from_json) as f:
            res = json.load(f)
        md = markdown(res, res["meta"])
        print(md)
        if args.docs:
            replace_block(DOC, md)
        return res
    names = None
    if args.only:
        names = [name for name in ladder_names(args.porian) if args.only in name]
        if not names:
            parser.error(f"--only {args.only!r} matches no ladder")
    from chinplan.cli import use_cpu_cores

    devices = use_cpu_cores(4)  # the fits' 4 chains run one per core, as `chinplan fit` runs them
    done = backtest(names, porian=args.porian, cache=args.cache, likelihood=args.likelihood, log=_log, on_ladder=_ladder_done)
    res, points = done.results, done.points
    res["meta"] = {"command": "python scripts/validate_ladders.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                   **res["meta"], "cpu_devices": devices or 1}  # fmt: skip
    md = markdown(res, res["meta"])
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**res, "points": points.round(6).to_dict(orient="records")}, f, indent=1, default=float)
    if args.docs:
        replace_block(DOC, md)
    return res


if __name__ == "__main__":
    main()
