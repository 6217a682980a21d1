"""Finite in float64, infinite or zero in float32 (issue 17, class 2): refused at the boundary.

Inputs are checked on the host in float64 and computed in JAX's default float32, so a value
beyond float32's range (1e39 FLOPs: inf after the cast) or below its smallest normal number
(a denormal, flushed to 0) would give inf/NaN plans with exit code 0. ``_checks.in_range``
(every positive/nonnegative/finite check) now refuses them with the representable range in
the message; hypothesis generates values on both sides of each limit.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chinplan
from chinplan import _checks, costs
from chinplan.decide import risk as decide
from chinplan.cli import main

F32 = np.finfo(np.float32)
H = chinplan.HOFFMANN_2022
P = chinplan.default_posterior().params
MESSAGE = r"must be representable in float32, the dtype chinplan computes in \(magnitude 0 or in \[1\.17549e-38, 3\.40282e\+38\]"

too_large = st.floats(float(F32.max) * 1.0001, 1e300)
too_small = st.floats(1e-300, float(F32.tiny) * 0.9999)
outside = st.one_of(too_large, too_small)

ENTRY_POINTS = {
    "compute": lambda v: chinplan.compute_optimal(H, v),
    "n": lambda v: chinplan.loss(H, v, 1e12),
    "d": lambda v: chinplan.loss(H, 1e9, v),
    "queries": lambda v: costs.validate_deployment(costs.Deployment(queries=v, input_tokens=400, output_tokens=100)),
    "price": lambda v: costs.validate_deployment(costs.Deployment(queries=1e9, input_tokens=400, output_tokens=100, price=v)),
}


@pytest.mark.parametrize("arg", sorted(ENTRY_POINTS))
@settings(max_examples=15, deadline=None)
@given(value=outside)
def test_values_float32_cannot_hold_are_refused_naming_the_argument(arg, value):
    with pytest.raises(ValueError, match=rf"\b{arg} {MESSAGE}"):
        ENTRY_POINTS[arg](value)


@settings(max_examples=30, deadline=None)
@given(value=st.floats(1e-30, 1e38))
def test_values_float32_holds_pass_the_check(value):
    assert _checks.positive("compute", value) == value


@settings(max_examples=20, deadline=None)
@given(log10_compute=st.floats(18.0, 38.5))
def test_every_accepted_budget_gives_a_finite_plan(log10_compute):
    compute = 10.0**log10_compute
    if compute > F32.max:
        with pytest.raises(ValueError, match=MESSAGE):
            chinplan.compute_optimal(H, compute)
        return
    plan = chinplan.compute_optimal(H, compute)
    assert math.isfinite(float(plan.n)) and math.isfinite(float(plan.d)) and float(plan.n) > 0


def test_plan_compute_1e39_is_one_line_not_an_inf_plan(capsys):
    assert main(["plan", "--compute", "1e39", "--draws", "20"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "--compute must be representable in float32" in captured.err and "RuntimeWarning" not in captured.err


def test_a_subset_over_the_limit_is_refused_at_its_position():
    with pytest.raises(ValueError, match=rf"compute {MESSAGE}.*got 1e\+39"):
        decide.plan_bands(P, [1e22, 1e39])
