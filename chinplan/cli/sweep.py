"""``chinplan sweep``: a scenario file over the posterior's draws, parse -> library -> render.

A scenario file (:func:`chinplan.decide.sweep.load_scenarios`) is run over the posterior's draws in
checkpointed chunks (:mod:`chinplan.decide.resume`: ``--resume`` continues an interrupted sweep) and
written atomically as Parquet, NetCDF or CSV with its provenance.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys

import numpy as np

from chinplan import __version__, _files
from chinplan._files import write_atomic
from chinplan.cli import inputs, render
from chinplan.cli.parser import EXIT_OK, SWEEP_SUFFIXES, CliError
from chinplan.decide import resume, sweep

# --------------------------------------------------------------------------------------
# sweep
# --------------------------------------------------------------------------------------


def _fingerprint(posterior) -> str:
    """SHA-256 of a posterior's draws (every variable, in name order): which posterior a file used."""
    digest = hashlib.sha256()
    group = posterior.to_arviz().posterior
    for name in sorted(group.data_vars):
        digest.update(name.encode() + np.ascontiguousarray(group[name].values, np.float64).tobytes())
    return digest.hexdigest()


def _sweep_manifest(args, scenarios, draws, fingerprint: str) -> dict:
    """What makes a sweep's chunks reusable by ``--resume``: its inputs (the scenario bytes that
    were parsed, not the file read again), draws, seed, version and every setting that changes
    the numbers (:func:`chinplan.decide.resume.numeric_settings`)."""
    return {
        "scenarios_sha256": scenarios.sha256,
        "posterior_sha256": fingerprint,
        "num_draws": draws.num_draws,
        "seed": args.seed,
        "uncertainty": draws.uncertainty,
        "chinplan_version": __version__,
        **resume.numeric_settings(),
    }


#: Disk bytes a band cell takes, at least: 8 in the parts folder's chunks and 8 in a binary
#: output (a CSV's text takes more). ``sweep`` checks this much free space before the work.
BYTES_PER_CELL = 16


def cmd_sweep(args) -> int:
    suffix = _files.suffix_of(args.output, SWEEP_SUFFIXES)
    inputs.check_output(args.output, "-o/--output", SWEEP_SUFFIXES, args.scenarios, args.posterior)
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise CliError("writing Parquet needs pyarrow, a dependency of chinplan missing here (pip install pyarrow); or write .nc or .csv")
    scenarios = sweep.load_scenarios(args.scenarios)
    cells = math.prod(scenarios.shape) * len(scenarios.outputs) * len(scenarios.quantiles)
    _files.check_space(args.output, BYTES_PER_CELL * cells, arg="-o/--output")  # before the work, not after it
    draws = inputs.load_draws(args)
    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    params = draws.theta if draws.uncertainty == "extrapolation" else draws.params  # closed forms for law
    fingerprint = _fingerprint(draws.posterior)
    manifest = _sweep_manifest(args, scenarios, draws, fingerprint)
    with resume.Checkpoint(resume.sidecar(args.output), manifest, chunk=args.chunk, resume=args.resume) as checkpoint:
        _run_and_write(args, suffix, scenarios, draws, params, fingerprint, progress, checkpoint)
        checkpoint.remove()  # the output is whole: its chunks are no longer needed
    return _report(args, suffix, scenarios, draws)


def _run_and_write(args, suffix, scenarios, draws, params, fingerprint, progress, checkpoint) -> None:
    dataset = sweep.run_sweep(scenarios, params, key=inputs.key_for(args, inputs.COSTS), progress=progress, domain=draws.posterior.domain,
                               smallest=draws.posterior.smallest, checkpoint=checkpoint)
    dataset.attrs.update(
        scenarios=os.path.basename(args.scenarios),
        posterior=draws.source,
        posterior_sha256=fingerprint,
        num_draws=draws.num_draws,
        seed=args.seed,
        plan=scenarios.plan,
        optimum=scenarios.optimum,
        uncertainty=draws.uncertainty,
        deployment=json.dumps(scenarios.described),
        chinplan_version=__version__,
    )
    if suffix == ".nc":
        _files.write_bytes(args.output, _files.netcdf_image(lambda buffer: dataset.to_netcdf(buffer, engine="h5netcdf")))
    else:
        frame = sweep.sweep_frame(dataset)
        if suffix == ".parquet":
            write_atomic(args.output, lambda tmp: sweep.write_parquet(frame, tmp))
        else:
            write_atomic(args.output, lambda tmp: frame.to_csv(tmp, index=False))


def _report(args, suffix, scenarios, draws) -> int:
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
        render.emit_json(summary)
    else:
        axes = " x ".join(f"{len(v)} {k}" for k, v in scenarios.axes.items())
        render.console().print(
            f"wrote {args.output}: {rows} scenarios ({axes}), {len(scenarios.outputs)} quantities "
            f"x {len(scenarios.quantiles)} quantiles over {draws.num_draws} posterior draws"
        )
    return EXIT_OK
