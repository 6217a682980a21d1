"""``chinplan validate --ladders``: the leave-one-ladder-out back-test of N* bands.

Runs :func:`chinplan.inference.ladders.backtest` on the shipped ladders (the 8 validation-loss
isoFLOP ladders of Porian et al. 2024 and the embedded Chinchilla runs) and prints its pooled
tables: N* coverage of the central 50/80/90% intervals at the held-out isoFLOP minima, the
median 90% band ratio within 1 decade and at 1-2.1 decades beyond the fitted compute, the
loss coverage at the held-out runs, and how many fits converged. ``scripts/validate_ladders.py``
renders the same results in full (per ladder, by distance, the scales' selection) for
docs/CALIBRATION.md.
"""

from __future__ import annotations

import os
import sys

from chinplan.cli import render
from chinplan.cli.parser import EXIT_OK, UsageError
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS
from chinplan.inference.ladders import CHINCHILLA_TRAIN_FRACTION, LEVELS, PORIAN_FIT_MAX_BUDGET, PREDICTIVES, SEED, backtest, ladder_names, short

#: Seconds one ladder takes at the default NUTS settings (4 chains x 1,000 draws) on 2 CPU
#: cores, fits and scores (docs/CALIBRATION.md: 384 s for all 9).
SECONDS_PER_LADDER = 45
#: What each predictive of the table is, in a line.
PREDICTIVE_NOTES = (
    "law: the law's posterior alone (--uncertainty law)",
    "previous default: the folds' valley drift only (chinplan before issue 22)",
    "new default: --uncertainty extrapolation, what chinplan plan answers",
    "new default, nested: its allocation line's scales chosen without the held-out ladder",
)


def check_options(args, names: list[str]) -> list[str] | None:
    """The ladders ``--ladders`` chose (full names; None: all), or UsageError naming the
    option that does not apply, or the unknown name with the valid ones, in one line."""
    if args.runs is not None:
        raise UsageError(f"RUNS.csv {args.runs!r} and --ladders exclude each other: --ladders back-tests the shipped ladders")
    split = (f"each ladder has its own split: Porian's budgets up to {PORIAN_FIT_MAX_BUDGET:.2g} FLOPs, "
             f"Chinchilla's {100 * CHINCHILLA_TRAIN_FRACTION:g}% compute quantile").replace("e+", "e")
    given = [("--threshold", args.threshold is not None, split), ("--splits", args.splits != ["compute", "size"], split),
             ("--levels", args.levels != list(LEVELS), f"it scores the {'/'.join(f'{100 * q:g}' for q in LEVELS)}% intervals")]  # fmt: skip
    for option, used, why in given:
        if used:
            raise UsageError(f"{option} does not apply to --ladders ({why})")
    if args.cache is not None and os.path.exists(args.cache) and not os.path.isdir(args.cache):
        raise UsageError(f"--cache {args.cache!r} is not a directory (give a folder to keep the fitted posteriors in)")
    if not args.ladders:
        return None
    by_short = {short(name): name for name in names}
    for value in args.ladders:
        if value not in by_short and value not in names:
            raise UsageError(f"--ladders {value!r}: no such ladder; choose from {', '.join(by_short)} (none: all {len(names)})")
    chosen = {by_short.get(value, value) for value in args.ladders}
    return [name for name in names if name in chosen]


def fit_options(args) -> dict | None:
    """The NUTS settings that differ from :func:`chinplan.fit`'s defaults (None: none do, so
    the fits and their ``--cache`` files are those of scripts/validate_ladders.py)."""
    given = {"num_draws": args.samples, "num_warmup": args.warmup, "num_chains": args.chains}
    changed = {k: v for k, v in given.items() if v != DEFAULT_FIT_SETTINGS[k]}
    return changed or None


def cmd_validate_ladders(args) -> int:
    import jax

    names = ladder_names()
    chosen = check_options(args, names)
    count = len(chosen) if chosen is not None else len(names)
    say = (lambda line: print(f"chinplan: {line}", file=sys.stderr, flush=True)) if not args.json else (lambda line: None)
    devices = jax.local_device_count()
    say(f"validate --ladders: {count} ladder(s), NUTS {args.chains} chain(s) x {args.samples} draws each; at the default "
        f"settings about {SECONDS_PER_LADDER} s a ladder on 2 CPU cores (all {len(names)}: about "
        f"{round(SECONDS_PER_LADDER * len(names) / 60)} minutes); {devices} JAX device(s) here")  # fmt: skip

    def done(k, total, name, fit, elapsed):
        state = "converged" if fit["converged"] else "NOT converged"
        cached = ", from --cache" if fit["from_cache"] else ""
        say(f"[{elapsed:4.0f} s] {k + 1} of {total} {short(name)}: {fit['heldout_minima']} held-out minima, {state}{cached}")

    seed = SEED + args.seed
    result = backtest(chosen, cache=args.cache, seed=seed, fit_options=fit_options(args), on_ladder=done).results
    result["meta"] = {**result["meta"], "cpu_devices": devices, "seed": seed,
                      "nuts": {"chains": args.chains, "samples": args.samples, "warmup": args.warmup}}  # fmt: skip
    if args.json:
        render.emit_json({"ladders": [short(name) for name in result["fits"]], **result})
        return EXIT_OK
    render.print_tables(ladder_lines(result))
    return EXIT_OK


def _cell(x, digits: int = 2) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def _band(x) -> str:
    return "-" if x is None or x != x else (f"{x:.1f}x" if x < 100 else f"{x:.3g}x")


def ladder_lines(result: dict) -> list:
    """The pooled tables of ``chinplan validate --ladders`` and their notes (80 columns)."""
    meta = result["meta"]
    fits = result["fits"]
    nstar = render.table(f"N* at held-out isoFLOP minima: {len(fits)} ladder(s), each left out in turn",
                         ["predictive", "n", "cov 50/80/90", "band <1 dec", "band 1-2.1 dec"])  # fmt: skip
    for which in PREDICTIVES:
        p = result["allocation"][which]["pooled"]
        cover = "/".join(_cell(p[f"cov{lev:g}"]) for lev in LEVELS)
        nstar.add_row(which, str(p["n"]), cover, _band(p["band90_within1"]), _band(p["band90_beyond1"]))
    loss = render.table("Loss at the held-out runs", ["predictive", "n", "cov 50/90"])
    for which, r in result["loss"].items():
        p = r["pooled"]
        loss.add_row(which, str(p["n"]), f"{_cell(p['cov0.5'])}/{_cell(p['cov0.9'])}")
    converged = [name for name, fit in fits.items() if fit["converged"]]
    lines = [nstar, loss]
    lines.append(f"fits converged: {len(converged)} of {len(fits)}" + ("" if len(converged) == len(fits) else
                 " (not: " + "; ".join(f"{short(n)}: {', '.join(f['problems'][:2])}" for n, f in fits.items() if not f["converged"]) + ")"))  # fmt: skip
    lines += list(PREDICTIVE_NOTES)
    lines.append("cov: coverage of the central 50/80/90% intervals; band: median ratio of the 90% N* band's ends (95% / 5% "
                 "quantile) within 1 decade, and 1-2.1 decades, beyond the fitted compute")  # fmt: skip
    nuts = meta.get("nuts", {"chains": DEFAULT_FIT_SETTINGS["num_chains"], "samples": DEFAULT_FIT_SETTINGS["num_draws"]})  # the script's runs
    lines.append(f"took {meta['wall_s']:.0f} s ({meta['cached']} of {meta['ladders']} fits from --cache; NUTS {nuts['chains']} chain(s) x "
                 f"{nuts['samples']} draws, {meta.get('cpu_devices', 1)} JAX device(s)); per ladder and the scales' selection: "
                 "docs/CALIBRATION.md")  # fmt: skip
    return lines
