"""Wall-clock and cluster sizing in ``plan``, ``tco`` and ``compare`` (``--gpus K``, ``--days T``).

Training takes H = 6 N D / (3600 P U) GPU-hours (:func:`chinplan.costs.gpu_hours`); on K
accelerators that is H / (24 K) days (:func:`chinplan.costs.training_days`), and training
within T days needs ceil(H / (24 T)) of them (:func:`chinplan.costs.gpus_for_days`). Both are
monotone in H, so their quantiles are the maps of the GPU-hours' quantiles. Parse -> library
-> render only: the formulas live in :mod:`chinplan.costs`.
"""

from __future__ import annotations

import math

import numpy as np

from chinplan import costs
from chinplan.cli.parser import Range, UsageError
from chinplan import deployment
from chinplan.format import band_cell, chip_words, human_count, sci
from chinplan.uncertain import Uniform

#: Options of ``plan`` that only the training-time table reads.
PLAN_HARDWARE = ("hardware", "precision", "peak_flops", "mfu")
PLAN_DEFAULTS = {"hardware": "h100", "precision": "bf16", "mfu": 0.4}
FIELDS = ("days_on_gpus", "gpus_for_days")


def requested(args) -> bool:
    return args.gpus is not None or args.days is not None


def _days(v: float) -> str:
    """Three significant digits, trailing zeros kept ('7.80' beside '5.97'); whole from 100."""
    if not math.isfinite(v):
        return str(v)
    return f"{v:,.0f}" if v >= 100 else f"{v:#.3g}"


def _gpus(v: float) -> str:
    return f"{v:,.0f}" if math.isfinite(v) else str(v)


FORMATS = {"days_on_gpus": _days, "gpus_for_days": _gpus}


def labels(args) -> dict:
    """Column names of the sizing, in the training chip's words ('chips' for a TPU)."""
    names = {}
    if args.gpus is not None:
        names["days_on_gpus"] = f"days on {args.gpus:,} GPUs"
    if args.days is not None:
        names["gpus_for_days"] = f"GPUs for {args.days:g} days"
    return {k: chip_words(v, getattr(args, "hardware", None)) for k, v in names.items()}


def sizing(args, train_gpu_hours) -> dict:
    """``{field: array}`` of the requested sizing, shaped like ``train_gpu_hours``."""
    out = {}
    if args.gpus is not None:
        out["days_on_gpus"] = costs.training_days(train_gpu_hours, args.gpus)
    if args.days is not None:
        out["gpus_for_days"] = costs.gpus_for_days(train_gpu_hours, args.days)
    return out


def json_entry(args, sized: dict, index=()) -> dict:
    """The JSON of one plan's sizing: the options and each quantity's quantiles."""
    entry = {"gpus": args.gpus, "days": args.days}
    entry.update({k: np.asarray(v, np.float64)[(slice(None), *index)] for k, v in sized.items()})
    return entry


def cells(sized: dict, index=(), *, stacked: bool = False) -> list[str]:
    """Band cells of each requested quantity at ``index`` (after the quantile axis)."""
    return [band_cell(np.asarray(v, np.float64)[(slice(None), *index)], FORMATS[k], stacked=stacked) for k, v in sized.items()]


# --------------------------------------------------------------------------------------
# plan: the budget is the training FLOPs; the hardware options give the GPU-hours.
# --------------------------------------------------------------------------------------


def plan_hardware(args):
    """The plan's training Deployment and its description, or ``(None, None)`` without
    ``--gpus``/``--days`` (then no hardware option may be given)."""
    given = [f"--{k.replace('_', '-')}" for k in PLAN_HARDWARE if getattr(args, k) is not None]
    if not requested(args):
        if given:
            raise UsageError(f"{given[0]} sizes the training cluster in plan: give --gpus K or --days T too")
        return None, None
    mfu = PLAN_DEFAULTS["mfu"] if args.mfu is None else args.mfu
    fields = {"mfu_train": Uniform(*mfu) if isinstance(mfu, Range) else mfu}
    if args.peak_flops is not None:
        fields["peak_flops"] = args.peak_flops
    return deployment.build_deployment(
        hardware=args.hardware or PLAN_DEFAULTS["hardware"], precision=args.precision or PLAN_DEFAULTS["precision"], **fields
    )


def plan_gpu_hours(deployment, compute: np.ndarray, num_draws: int, key, q) -> np.ndarray:
    """Quantiles (len(q), len(compute)) of C / (3600 P U) over ``num_draws`` draws of the MFU."""
    sampled = costs.sample_deployment(deployment, num_draws, key=key)
    peak = np.asarray(sampled.peak_flops, np.float64)[:, None]
    mfu = np.asarray(sampled.mfu_train, np.float64)[:, None]
    hours = np.asarray(costs.gpu_hours(compute[None, :], peak, mfu), np.float64)
    return np.quantile(hours, q, axis=0)


def plan_table(args, table_factory, compute, hours, sized, described, q_label: str):
    """The training-time table of ``plan``: one row per budget."""
    chip = f"{described['hardware'].upper()} {described['precision']}"
    mfu = described["mfu_train"]
    mfu_text = f"{100 * mfu:g}%" if isinstance(mfu, float) else "-".join(f"{100 * v:g}%" for v in next(iter(mfu.values())))
    names = labels(args)
    table = table_factory(f"Training time on {chip}, MFU {mfu_text}: {q_label}", ("FLOPs", chip_words("GPU-hours", described["hardware"]), *(names[k] for k in sized)), stacked=True)
    for i, c in enumerate(compute):
        table.add_row(sci(c), band_cell(hours[:, i], human_count, stacked=True), *cells(sized, (i,), stacked=True))
    return table
