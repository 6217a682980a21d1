"""Bad scenario inputs and unreachable targets across the decision layer (issue 3).

Each bad input (a negative or zero budget, NaN, a shape mismatch, a target loss at or below
E for every draw) must raise a ValueError that names the argument before anything is traced;
a target unreachable for only some draws must be counted, never hidden as NaN in a band.
"""

import numpy as np
import pytest

from chinplan.decide import regret
from chinplan import engine, law, optima
from chinplan.decide import risk as decide
from chinplan.costs import H100_SXM, Deployment
from chinplan.uncertain import LogNormal, Uniform
from chinplan.law import LawParams

RNG = np.random.default_rng(11)
# 400 draws around Hoffmann et al. 2022 with E spread so that some targets split the draws.
PARAMS = LawParams(
    E=1.69 + 0.05 * RNG.standard_normal(400),
    A=406.4 * np.exp(0.05 * RNG.standard_normal(400)),
    B=410.7 * np.exp(0.05 * RNG.standard_normal(400)),
    alpha=0.34 + 0.01 * RNG.standard_normal(400),
    beta=0.28 + 0.01 * RNG.standard_normal(400),
)
E_MIN = float(PARAMS.E.min())
DEPLOYMENT = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0, peak_flops=H100_SXM.bf16)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: regret.regret_compute(PARAMS, -1e22), "compute must be finite and > 0"),
        (lambda: regret.regret_compute(PARAMS, 0.0), "compute must be finite and > 0"),
        (lambda: regret.regret_compute(PARAMS, np.array([1e22, np.nan])), "compute must be finite"),
        (lambda: decide.prob_target(PARAMS, [1e9, np.nan], [1e11, 1e11], 2.0), "n must be finite"),
        (lambda: decide.prob_target(PARAMS, [1e9, 1e10, 1e11], [1e11, 1e12], 2.0), "do not broadcast"),
        (lambda: decide.prob_target(PARAMS, 1e9, 1e11, -2.0), "target_loss must be finite and > 0"),
        (lambda: decide.prob_target(PARAMS, 1e9, np.inf, 2.0), "d must be finite"),
        (lambda: decide.smallest_model(PARAMS, E_MIN - 0.01, 1e12), "irreducible loss"),
        (lambda: decide.smallest_model(PARAMS, [2.0, E_MIN], 1e12), "irreducible loss"),
        (lambda: decide.target_cost_bands(PARAMS, 1.0, DEPLOYMENT), "irreducible loss"),
        (lambda: decide.expected_cost(PARAMS, [1e9], [-1e12], DEPLOYMENT), "d must be finite and > 0"),
        (lambda: decide.prob_cheaper(PARAMS, [1e9, 1e10], [1e12, np.nan], DEPLOYMENT), "must be finite"),
        (lambda: engine.bands(optima.compute_optimal, PARAMS, np.array([1e22, np.nan])), r"scenario_args\[0\]"),
    ],
)
def test_bad_scenario_inputs_raise_named_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_deployment_values_are_named():
    with pytest.raises(ValueError, match="queries"):
        decide.expected_cost(PARAMS, [1e9], [1e12], DEPLOYMENT._replace(queries=-1.0))
    with pytest.raises(ValueError, match="mfu_train"):
        decide.expected_cost(PARAMS, [1e9], [1e12], DEPLOYMENT._replace(mfu_train=1.5))


def test_unreachable_fraction_equals_explicit_counts():
    targets = np.array([E_MIN - 0.1, 1.65, 1.69, 1.75, 3.0])
    got = np.asarray(decide.unreachable_fraction(PARAMS, targets))
    counts = np.array([(t <= PARAMS.E).sum() for t in targets], np.float32)
    # the count is exact; count / n may be off by one float32 rounding (XLA multiplies by 1/n)
    np.testing.assert_allclose(got, counts / np.float32(PARAMS.E.size), rtol=2.5e-7, atol=0)
    assert got[0] == 1.0 and got[-1] == 0.0 and 0 < got[2] < 1
    # With D fixed: unreachable when l <= E_i + B_i D^-beta_i (float64 oracle).
    d = 1e11
    floor = PARAMS.E + PARAMS.B * d ** -PARAMS.beta
    got_d = np.asarray(decide.unreachable_fraction(PARAMS, targets[1:], d))
    counts_d = np.array([(t <= floor).sum() for t in targets[1:]], np.float32)
    np.testing.assert_allclose(got_d, counts_d / np.float32(PARAMS.E.size), rtol=2.5e-7, atol=0)


def test_partly_unreachable_target_is_inf_in_bands_never_nan():
    # With D = 1e15, l = 1.72 is below E_i + B_i D^-beta_i for about half the draws: their
    # required N is inf, the band's upper quantile is inf, and the share is reported.
    n_needed = np.asarray(decide.smallest_model(PARAMS, 2.0, 1e13, p=0.5))
    assert np.isfinite(n_needed)
    bands = engine.bands(decide.params_for_loss, PARAMS, 1e15, 1.72)
    values = np.asarray(bands.values)
    share = float(decide.unreachable_fraction(PARAMS, 1.72, 1e15))
    assert 0.3 < share < 0.7
    assert not np.isnan(values).any()
    assert np.isinf(values[2]) and np.isfinite(values[0])
    assert float(bands.nan_fraction) == 0.0


def test_distribution_valued_deployment_end_to_end():
    # Lognormal traffic and uniform decode MFU travel with the law's draws: a design's TCO,
    # a fixed number for a fixed deployment, gets a band; the same key gives the same band.
    import jax

    busy = DEPLOYMENT._replace(queries=1e11)  # inference-dominated: 1e11 queries x 500 tokens
    random = busy._replace(queries=LogNormal(1e11, 1.0), mfu_decode=Uniform(0.05, 0.15))
    key = jax.random.key(3)
    fixed = np.asarray(decide.cost_bands(PARAMS, [8e9], [15e12], busy))
    wide = np.asarray(decide.cost_bands(PARAMS, [8e9], [15e12], random, key=key))
    again = np.asarray(decide.cost_bands(PARAMS, [8e9], [15e12], random, key=key))
    np.testing.assert_array_equal(wide, again)
    assert fixed[0] == fixed[2]  # cost of a fixed (N, D) does not depend on the law's draws
    assert wide[0] < fixed[1] * 0.9 and wide[2] > fixed[1] * 1.5
    with pytest.raises(ValueError, match="key"):
        decide.cost_bands(PARAMS, [8e9], [15e12], random)
