"""No raw exceptions (issue 17, class 9): every bad argument gets a ValueError naming it.

Property-style: hypothesis feeds every argument of a set of public functions values of the
wrong kind (None, containers, strings, bytes, iterators, ragged lists, unhashables, Python
ints too large for a float64, NaN, complex, bools) and asserts each call either succeeds or
raises a ValueError whose message names the argument: never StopIteration, IndexError,
OverflowError, TypeError or "unhashable type". Python ints of any size that a float64 holds
(10**24) are numbers like any other; control characters in design labels are escaped.
"""

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chinplan
from chinplan.decide import regret
from chinplan import arch, costs
from chinplan.decide import risk as decide
from chinplan.decide import sweep
from chinplan.cli import main
from chinplan.format import parse_design, printable

P = jax.tree.map(lambda x: x[:8], chinplan.default_posterior().params)
SHAPE = arch.TransformerShape(2, 512, 8, 1000)

WEIRD = [None, {}, [], set(), {1: 2}, "x", b"x", object(), [[1], [1, 2]], -(10**400), 10**400, [10**400, 1.0],
         float("nan"), 1 + 2j, True, (), [[]], slice(1), iter([1, 2]), [{}], {"a"}, [None], [[1, 2]]]  # fmt: skip

#: name -> (call with keyword overrides, the arguments to replace)
CALLS = {
    "chance_constrained": (
        lambda **k: decide.chance_constrained(**{"params": P, "n_grid": [1e9, 7e10], "d_grid": [1e11], "target_loss": 2.0, **k}),
        ["n_grid", "d_grid", "target_loss", "p", "objective", "chunk_size"],
    ),
    "regret_compute": (
        lambda **k: regret.regret_compute(**{"params": P, "compute": [1e21], "grid_points": 11, **k}),
        ["compute", "grid_points", "span", "chunk_size"],
    ),
    "smallest_model": (
        lambda **k: decide.smallest_model(**{"params": P, "target_loss": 2.0, "tokens": 1e12, **k}),
        ["target_loss", "tokens", "p", "chunk_size"],
    ),
    "prob_target": (
        lambda **k: decide.prob_target(**{"params": P, "n": 7e10, "d": 1.4e12, "target_loss": 2.0, **k}),
        ["n", "d", "target_loss", "unique_tokens", "chunk_size"],
    ),
    "crossing": (lambda **k: decide.crossing(**{"x": [1, 2, 3], "p": [0.1, 0.5, 0.9], "level": 0.5, **k}), ["x", "p", "level"]),
    "subset_draws": (lambda **k: decide.subset_draws(**{"params": P, "num_draws": 4, "seed": 0, **k}), ["num_draws", "seed"]),
    "plan_bands": (lambda **k: decide.plan_bands(**{"params": P, "compute": 1e22, **k}), ["compute", "q"]),
    "lora_params": (lambda **k: arch.lora_params(**{"shape_or_matrices": SHAPE, "rank": 8, **k}), ["shape_or_matrices", "rank", "targets"]),
    "Deployment": (
        lambda **k: costs.validate_deployment(costs.Deployment(**{"queries": 1e9, "input_tokens": 400, "output_tokens": 100, **k})),
        ["queries", "input_tokens", "output_tokens", "mfu_train", "price"],
    ),
    "build_deployment": (
        lambda **k: sweep.build_deployment(**{"hardware": "h100", "precision": "bf16", **k}),
        ["hardware", "precision", "inference_hardware", "inference_precision"],
    ),
    "shape_for_params": (lambda **k: arch.shape_for_params(**{"n_params": 7e9, **k}), ["embeddings", "tied_embeddings", "head_dim"]),
    "load_runs": (
        lambda **k: chinplan.load_runs(pd.DataFrame({"n": [1e9 * (i + 1) for i in range(8)], "d": [1e11] * 8, "loss": [2.5] * 8, **k})),
        ["n", "d", "loss"],
    ),
}
CASES = [(name, arg) for name, (_, args) in CALLS.items() for arg in args]


@pytest.mark.parametrize("name, arg", CASES, ids=[f"{n}-{a}" for n, a in CASES])
@settings(max_examples=len(WEIRD), deadline=None)  # sampled_from: every value once
@given(value=st.sampled_from(WEIRD))
def test_a_bad_argument_is_a_value_error_naming_it(name, arg, value):
    call, _ = CALLS[name]
    if name == "load_runs":  # one cell of the column
        value = [value] + [1e9] * 7 if arg != "n" else [value] + [1e9 * (i + 2) for i in range(7)]
    try:
        call(**{arg: value})
    except ValueError as err:
        column = f"column {'params' if arg == 'n' else 'tokens' if arg == 'd' else arg!r}"
        assert arg in str(err) or column in str(err), str(err)
    # anything else (TypeError, IndexError, OverflowError, StopIteration) fails the test


@settings(max_examples=40, deadline=None)
@given(exponent=st.integers(19, 300), mantissa=st.integers(1, 9))
def test_python_ints_of_any_size_are_numbers(exponent, mantissa):
    """Ints beyond int64 (10**24 budgets) are converted on the host like floats."""
    big = mantissa * 10**exponent
    h = chinplan.HOFFMANN_2022
    if exponent <= 30:  # budgets the law plans in float32
        np.testing.assert_array_equal(chinplan.compute_optimal(h, big).n, chinplan.compute_optimal(h, float(big)).n)
        np.testing.assert_array_equal(decide.plan_bands(P, big)["n"], decide.plan_bands(P, float(big))["n"])
    if big <= np.finfo(np.float32).max:
        assert chinplan._checks.positive("compute", big) == float(big)
    else:  # a number, but beyond the float32 chinplan computes in (class 2): refused as such
        with pytest.raises(ValueError, match=r"^compute must be representable in float32"):
            chinplan._checks.positive("compute", big)


@settings(max_examples=20, deadline=None)
@given(exponent=st.integers(309, 1000), sign=st.sampled_from([1, -1]))
def test_ints_beyond_float64_are_refused_naming_the_argument(exponent, sign):
    with pytest.raises(ValueError, match=r"^compute must be finite .*too large for a float64"):
        decide.plan_bands(P, sign * 10**exponent)
    with pytest.raises(ValueError, match=r"column 'params', row 0: value .*inf.* is not finite"):
        chinplan.load_runs(pd.DataFrame({"n": [sign * 10**exponent] + [1e9] * 7, "d": [1e11] * 8, "loss": [2.5] * 8}))
    with pytest.raises(ValueError, match=r"^chunk_size must be an integer in \[1, 9223372036854775807\]"):
        chinplan._checks.integer("chunk_size", 10**exponent)


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_printable_escapes_every_control_character(text):
    shown = printable(text)
    assert all(ch.isprintable() or ch == " " for ch in shown)
    if all(ch.isprintable() or ch == " " for ch in text):
        assert shown == text  # printable text (Unicode included) is unchanged
    assert len(shown) >= len(text)


@settings(max_examples=50, deadline=None)
@given(label=st.text(st.characters(exclude_characters="="), min_size=1, max_size=20).filter(lambda t: t.strip()))
def test_design_labels_reach_the_terminal_escaped(label):
    parsed, n, d = parse_design(f"{label}=8B:1T")
    assert parsed == printable(label.strip()) and (n, d) == (8e9, 1e12)
    assert all(ch.isprintable() or ch == " " for ch in parsed)


def test_compare_prints_no_control_character(capsys):
    code = main(["compare", "a\x1b[31mred\x07=8B:1T", "b\r\nX=70B:1.4T", "--draws", "20"])
    out = capsys.readouterr().out
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "a\\x1b[31mred\\x07" in out and "b\\x0d\\x0aX" in out


@pytest.mark.parametrize("value", ["no", "False", "", 0, 1, 1.0, None, [True], np.array([True])])
@pytest.mark.parametrize("call", [
    lambda v: arch.shape_for_params(7e9, embeddings=v),
    lambda v: arch.shape_for_params(7e9, tied_embeddings=v),
    lambda v: arch.transformer_params(SHAPE, embeddings=v),
])  # fmt: skip
def test_flags_are_true_or_false_only(call, value):
    """A string flag is not a boolean: ``embeddings="no"`` used to count the embeddings."""
    with pytest.raises(ValueError, match=r"embeddings must be True or False, got "):
        call(value)
