"""The convergence gate of a NUTS fit: R-hat, bulk ESS and divergences (Vehtari et al. 2021),
and what a fit that fails it raises or warns.

A fit passes when every sampled site has rank-normalised split R-hat <= :data:`RHAT_MAX` and
bulk ESS >= :data:`ESS_MIN`, and no transition diverged. ``chinplan.fit`` retries a failing
fit (longer warm-up, then target acceptance 0.95, then fresh starts with chains twice as
long, which the last retry always is), answers a low ESS alone with more draws (as many
chains again, each time), and then raises
:class:`ConvergenceError` unless asked to return the draws with a :class:`ConvergenceWarning`.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

__all__ = ["RHAT_MAX", "ESS_MIN", "ONE_CHAIN", "ConvergenceError", "ConvergenceWarning", "gate_problems", "retry_may_help", "more_draws_may_help", "unconverged_error"]

RHAT_MAX = 1.01
ESS_MIN = 400
#: The gate's finding for a single chain: R-hat compares chains, so there is none to check.
ONE_CHAIN = "1 chain: R-hat compares chains and cannot be checked (run 2 or more)"


class ConvergenceWarning(UserWarning):
    """NUTS did not clearly converge: R-hat > 1.01, bulk ESS < 400 or divergences."""


class ConvergenceError(RuntimeError):
    """A fit failed the convergence gate (R-hat > 1.01, bulk ESS < 400 or divergences) after
    its retries; ``.posterior`` holds its draws for inspection, ``.problems`` the failed checks."""

    def __init__(self, message: str, posterior, problems: list[str]):
        super().__init__(message)
        self.posterior = posterior
        self.problems = problems


def gate_problems(samples: dict, diverging: np.ndarray, sites) -> list[str]:
    """The gate's failed checks: R-hat > RHAT_MAX, bulk ESS < ESS_MIN, divergences; ``samples``
    maps each site to a (chain, draw) array. One chain has no R-hat: :data:`ONE_CHAIN`, once."""
    post = xr.Dataset({name: (("chain", "draw"), np.asarray(samples[name], np.float64)) for name in sites})
    chains = post.sizes.get("chain", 1)
    rhat, bulk = (az.rhat(post) if chains > 1 else None), az.ess(post, method="bulk")
    problems = [] if chains > 1 else [ONE_CHAIN]
    for name in sites:
        if rhat is not None and not float(rhat[name]) <= RHAT_MAX:
            problems.append(f"{name}: R-hat {float(rhat[name]):.3f} > {RHAT_MAX}")
        if not float(bulk[name]) >= ESS_MIN:
            problems.append(f"{name}: bulk ESS {float(bulk[name]):.0f} < {ESS_MIN}")
    if int(diverging.sum()):
        problems.append(f"{int(diverging.sum())} divergent transitions")
    return problems


def retry_may_help(problems: list[str]) -> bool:
    """Whether the gate's retry (longer warm-up, smaller steps, fresh starts) can cure what
    failed: stuck chains (R-hat above the limit) and divergences. A low ESS needs more draws
    and a single chain has no R-hat to mend, so neither is retried."""
    return any(("R-hat" in p and p != ONE_CHAIN) or "divergent" in p for p in problems)


def more_draws_may_help(problems: list[str]) -> bool:
    """Whether only the bulk ESS fell short: more draws (more chains) raise it."""
    return bool(problems) and all(" bulk ESS " in p for p in problems)


def unconverged_error(posterior, problems: list[str], attempts: int) -> ConvergenceError:
    """The error a fit that failed the gate after ``attempts`` attempts raises."""
    return ConvergenceError(
        f"NUTS did not converge ({attempts} attempt(s): longer warm-up, then target acceptance 0.95, then fresh "
        f"starts with longer chains): {'; '.join(problems)}. No band of this fit is a result: add runs, more draws (num_draws) or "
        "retries (max_retries); the draws are on this error's .posterior, and allow_unconverged=True returns "
        "them with a ConvergenceWarning",
        posterior,
        problems,
    )
