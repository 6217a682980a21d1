"""The noise scale's prior and the two modes of OWT2/tuned+const-lr (issue 22, item 7;
docs/CALIBRATION.md).

    python scripts/study_noise_prior.py [--docs]   (from the repository root)

Fits the ladder's runs up to 2.1e17 FLOPs (what the ladder back-test fits) with
``chinplan.fit``'s defaults, one device, key ``jax.random.key(SEED + i)`` as in the back-test,
under the noise prior HalfNormal(0.05) (the default until issue 22) and HalfNormal(0.02) (the
default now), both with the chains started near a Huber point fit (as ``chinplan.fit`` does). For each
it reports the gate's attempts and verdict and where the draws sit:
the size term A / N^alpha at the smallest fitted model, the share of draws where it is below
0.05 (the mode without a size term), that share per chain, and sigma and nu in each mode.
With ``--docs`` it rewrites the block between ``<!-- noise_prior: start -->`` and
``<!-- noise_prior: end -->`` of docs/CALIBRATION.md.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import jax
import numpy as np

import chinplan
from chinplan.inference import ladders
from chinplan.inference.model import Priors

DOC = Path(__file__).resolve().parents[1] / "docs" / "CALIBRATION.md"
START, END = "<!-- noise_prior: start -->", "<!-- noise_prior: end -->"
LADDER = "porian:OWT2|tuned-hparams+const-lr"
SCALES = (0.05, 0.02)
NO_SIZE_TERM = 0.05  # A / N^alpha at the smallest model below this: the mode without a size term


def _q(x) -> str:
    lo, med, hi = np.quantile(x, (0.05, 0.5, 0.95))
    return f"{med:.3g} ({lo:.2g}-{hi:.2g})"


def study() -> str:
    every = ladders.ladders()
    index = [name for name, _, _ in every].index(LADDER)
    _, runs, fitted = every[index]
    runs = runs[fitted].reset_index(drop=True)
    log_n_min = float(np.log(runs["params"].min()))
    lines = [
        f"Command: `python scripts/study_noise_prior.py --docs`. Ladder {ladders.short(LADDER)}: its {len(runs)} runs up to "
        f"{ladders.PORIAN_FIT_MAX_BUDGET:.2g} FLOPs, `chinplan.fit` defaults on one device, key `jax.random.key({ladders.SEED} + {index})`.",
        "",
        "| sigma prior | attempts | converged | size term at the smallest model, median (5-95%) | draws without a size term | per chain | sigma / nu with it | sigma / nu without it | fit (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scale in SCALES:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = chinplan.fit(runs, key=jax.random.key(ladders.SEED + index), priors=Priors(sigma_scale=scale),
                                progress=False, allow_unconverged=True)  # fmt: skip
        seconds = time.perf_counter() - start
        p = post.to_arviz().posterior
        size = np.exp(p["log_A"].values - p["alpha"].values * log_n_min)  # (chain, draw)
        flat = size.reshape(-1)
        without = flat < NO_SIZE_TERM
        sigma, nu = (p[k].values.reshape(-1) for k in ("sigma", "nu"))

        def modes(mask) -> str:
            return f"{np.median(sigma[mask]):.3f} / {np.median(nu[mask]):.1f}" if mask.any() else "-"

        attempts = json.loads(post.attrs["fit_attempts"])
        per_chain = ", ".join(f"{s:.0%}" for s in (size < NO_SIZE_TERM).mean(axis=1))
        lines.append(
            f"| HalfNormal({scale:g}) | {len(attempts)} | {'yes' if post.converged else '**no**: ' + '; '.join(attempts[-1]['problems'][:2])} | "
            f"{_q(flat)} | {without.mean():.0%} | {per_chain} | {modes(~without)} | {modes(without)} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    from validate_ladders import docs_main  # this folder's scripts: the one block rewriter

    docs_main(__doc__, study, DOC, START, END)


if __name__ == "__main__":
    main()
