"""Issue 26, found again by the audit of session 29: findings whose library side was still open.

Class 6, "fixed-design costs overflow to inf and print as results": the command line refused
such a design (``compare 1e30:1e30``) and a sweep's grid did, but the library's own decision
tables did not: ``evaluate_designs(P, [1e30], [1e30], DEP)`` returned ``dollars_mean = inf``
as a result, and ``tco``/``cost_bands`` blamed "the deployment's price, query volume or MFU"
for an overflow that the design's size caused. One check now, :func:`chinplan.costs.check_design`,
before any work.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
from chinplan import costs
from chinplan.costs import Deployment
from chinplan.decide import risk

#: 8 draws of the published law: what is checked is the designs, before any draw is used.
P = chinplan.LawParams(*(jnp.full(8, v, jnp.float32) for v in chinplan.HOFFMANN_2022))
DEP = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0)
FLOPS = r"the training FLOPs 6 N D of the largest design must be representable in float32.*got about 1e60\.8$"


@pytest.mark.parametrize("call, name", [
    (lambda: risk.evaluate_designs(P, [7e10, 1e30], [1.4e12, 1e30], DEP), "n x d"),
    (lambda: risk.prob_cheaper(P, [7e10, 1e30], [1.4e12, 1e30], DEP), "n x d"),
    (lambda: risk.cost_bands(P, 1e30, 1e30, DEP), "n x d"),
    (lambda: risk.expected_cost(P, 1e30, 1e30, DEP), "n x d"),
    (lambda: risk.cost_cvar(P, 1e30, 1e30, DEP), "n x d"),
    (lambda: risk.chance_constrained(P, [1e9, 1e30], [1e11, 1e30], 2.5, 0.5, DEP), "n_grid x d_grid"),
    (lambda: costs.tco(1e30, 1e30, DEP), "n x d"),
], ids=["evaluate_designs", "prob_cheaper", "cost_bands", "expected_cost", "cost_cvar", "chance_constrained", "tco"])  # fmt: skip
def test_a_design_whose_training_flops_overflow_is_refused_not_priced_at_inf(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: {FLOPS}") as caught:
        call()
    assert "price, query volume or MFU" not in str(caught.value)  # the design's size, not the deployment


def test_designs_that_fit_the_dtype_are_priced_as_before():
    frame = risk.evaluate_designs(P, [7e10, 1e15], [1.4e12, 1e15], DEP)  # 6e30 FLOPs: far, but representable
    assert np.isfinite(frame["dollars_mean"]).all() and frame["dollars_mean"].iloc[1] > frame["dollars_mean"].iloc[0]
    paired = risk.evaluate_designs(P, [1e30, 1.0], [1.0, 1e30], DEP)  # paired designs: 6e30 each, not 1e30 x 1e30
    assert np.isfinite(paired["dollars_mean"]).all()
