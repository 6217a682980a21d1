"""The shipped posterior's compute-optimal N* at Chinchilla's budget and at 1e26 FLOPs, before
and after the allocation predictive of issue 22, from the file itself.

    python scripts/shipped_allocation.py [--docs]

Three answers from the same 4,000 draws: the law alone (``--uncertainty law``), the previous
default (the valley drift of the leave-the-largest-out folds only, redrawn from the learned
scales stored in the file: ``validate_ladders.previous_default``) and the default
(``chinplan plan``). ``--docs`` writes the table into docs/CALIBRATION.md between the
``shipped_allocation`` markers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "CALIBRATION.md"
START, END = "<!-- shipped_allocation: start -->", "<!-- shipped_allocation: end -->"
BUDGETS = (5.76e23, 1e26)


def table() -> str:
    import chinplan
    from chinplan.format import human_count

    from chinplan.inference import ladders as vl

    post = chinplan.default_posterior()
    new = post.extrapolated_params("extrapolation")
    thetas = {"law alone": post.extrapolated_params("law"), "previous default": vl.previous_default(post, new, 0), "default": new}
    x = np.log10(np.asarray(BUDGETS))
    lines = ["| draws | " + " | ".join(f"N* at {c:.3g} FLOPs, median (5%-95%)" for c in BUDGETS) + " | tokens/param at 5.76e23 |", "|---|---|---|---|"]
    for name, theta in thetas.items():
        log10_n = vl.log10_nopt(theta, x)  # (draws, budgets)
        cells = []
        for k in range(len(BUDGETS)):
            lo, med, hi = 10.0 ** np.quantile(log10_n[:, k], (0.05, 0.5, 0.95))
            cells.append(f"{human_count(med)} ({human_count(lo)}-{human_count(hi)})")
        tpp = np.median(BUDGETS[0] / 6.0 / 10.0 ** (2 * log10_n[:, 0]))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {tpp:.1f} |")
    line = post.allocation_line
    note = (
        f"\nThe default's line (`Posterior.allocation_line`) rests on {line.num_minima} isoFLOP minima of the embedded runs; "
        f"its slope {line.mean[1]:.3f} +- {math.sqrt(line.cov[1, 1]):.3f} decades of N per decade of C, against the law's "
        f"a = beta/(alpha+beta) {float(np.median(vl_law_slope(post))):.3f}. "
        "For reference, Hoffmann et al. 2022 trained Chinchilla at 70B and their training-curve envelope (approach 1) gave 67B at this budget."
    )
    return "Command: `python scripts/shipped_allocation.py --docs`\n\n" + "\n".join(lines) + "\n" + note


def vl_law_slope(post) -> np.ndarray:
    alpha, beta = (post.draws(k).astype(np.float64).reshape(-1) for k in ("alpha", "beta"))
    return beta / (alpha + beta)


def main() -> None:
    from validate_ladders import docs_main  # this folder's scripts: the one block rewriter

    docs_main(__doc__, table, DOC, START, END)


if __name__ == "__main__":
    main()
