"""The boundary checks of chinplan._checks, and the package's lazy imports."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
from chinplan import _checks


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: _checks.positive("n", [1.0, -2.0, np.nan]), r"n must be finite and > 0 \(valid range \(0, inf\)\), got -2\.0 at 2 of 3 positions"),
        (lambda: _checks.positive("n", 0.0), r"^n must be finite and > 0 \(valid range \(0, inf\)\), got 0\.0$"),
        (lambda: _checks.nonnegative("q", -1), r"q must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0"),
        (lambda: _checks.finite("log_n", np.inf), r"log_n must be finite \(valid range \(-inf, inf\)\), got inf"),
        (lambda: _checks.in_range("mfu", 1.5, 0.0, 1.0, low_open=True), r"mfu must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 1\.5"),
        (lambda: _checks.positive("n", True), r"n must be a real number .*dtype bool"),
        (lambda: _checks.positive("n", "1e9"), r"n must be a real number .*got '1e9'"),
        (lambda: _checks.positive("n", 1 + 2j), r"n must be a real number .*complex"),
        (lambda: _checks.positive("n", [[1.0], [1.0, 2.0]]), r"n must be a number or an array of numbers"),
        (lambda: _checks.positive("n", [], allow_empty=False), r"n must not be empty"),
        (lambda: _checks.not_nan("x", [1.0, np.nan]), r"x contains NaN at 1 of 2 positions"),
        (lambda: _checks.integer("k", 2.5), r"k must be an integer >= 1, got 2\.5"),
        (lambda: _checks.integer("k", True), r"k must be an integer >= 1, got True"),
        (lambda: _checks.integer("k", None, optional=True) or _checks.integer("k", 0, optional=True), r"k must be an integer >= 1 or None, got 0"),
        (lambda: _checks.positive_number("w", "3"), r"w must be a finite number > 0, got '3'"),
        (lambda: _checks.flag("b", "no"), r"b must be True or False, got 'no'"),
        (lambda: _checks.one_of("p", "x", ("a", "b")), r"p must be one of \['a', 'b'\], got 'x'"),
        (lambda: _checks.one_of("p", ["unhashable"], ("a",)), r"p must be one of \['a'\], got \['unhashable'\]"),
        (lambda: _checks.level("p", 0.0, low_open=True), r"p must lie in \(0, 1\], got 0\.0"),
        (lambda: _checks.level("p", "high"), r"p must be a number in \[0, 1\], got 'high'"),
        (lambda: _checks.levels("q", [0.5, 2.0]), r"q must lie in \[0, 1\], got \[0\.5, 2\.0\]"),
        (lambda: _checks.key(0), r"key must be a JAX PRNG key"),
        (lambda: _checks.key(np.zeros(2, np.uint32)), r"key must be a JAX PRNG key"),
        (lambda: _checks.broadcast_shape(n=np.ones(3), d=np.ones(2)), r"do not broadcast to a common shape \(n: \(3,\), d: \(2,\)\)"),
        (lambda: _checks.draw_axis({"a": np.ones(3), "b": np.ones(2)}), r"params leaves must share a leading draw axis"),
        (lambda: _checks.draw_axis({"a": 1.0}), r"params leaf \['a'\] is a scalar"),
        (lambda: _checks.law(chinplan.HOFFMANN_2022._replace(alpha=-0.3)), r"params\.alpha must be finite and > 0 .*got -0\.3"),
        (lambda: _checks.law((1.0, 2.0, 3.0, 0.3, 0.3)), r"params must be a chinplan\.LawParams, got tuple"),
        (lambda: _checks.law_draws(chinplan.HOFFMANN_2022), r"params must have one leading draw axis"),
        (lambda: _checks.reachable("target_loss", [2.0, 1.5], 1.69), r"target_loss must exceed the irreducible loss E .*got 1\.5"),
        (lambda: _checks.reachable("target_loss", [1.0], [1.69, 1.8], every=False), r"unreachable for every draw"),
    ],
)
def test_checks_name_the_argument_value_and_range(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_checks_pass_good_values_and_return_host_copies():
    np.testing.assert_array_equal(_checks.positive("n", np.array([1, 2], np.int64)), [1.0, 2.0])
    assert _checks.positive("n", jnp.asarray([3.0])).dtype == np.float64
    assert _checks.integer("k", 4.0) == 4 and _checks.integer("k", np.int64(3)) == 3
    assert _checks.level("p", 1) == 1.0 and _checks.levels("q", 0.5) == (0.5,)
    assert _checks.draw_axis(chinplan.LawParams(*(np.ones(4),) * 5)) == 4
    assert _checks.law_draws(chinplan.LawParams(*(np.ones(4),) * 5)) == 4
    _checks.key(jax.random.key(0))
    _checks.key(jax.random.PRNGKey(0))
    _checks.reachable("target_loss", [1.75, 2.0], [1.69, 1.8], every=False)  # reachable for some draws


def test_is_traced_only_under_transformations():
    assert not _checks.is_traced(1.0, np.ones(2), jnp.ones(2), chinplan.HOFFMANN_2022)
    seen = []
    jax.jit(lambda x: seen.append(_checks.is_traced(x)) or x)(1.0)
    jax.vmap(lambda x: seen.append(_checks.is_traced((1.0, {"a": x}))) or x)(jnp.ones(2))
    jax.grad(lambda x: seen.append(_checks.is_traced(x)) or x)(1.0)
    assert seen == [True, True, True]


def test_import_loads_no_plotting_or_inference_stack():
    """`import chinplan` loads neither matplotlib nor arviz nor xarray (they load on first use)."""
    code = "import sys, chinplan; print([m for m in ('matplotlib', 'arviz', 'xarray') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_names_resolve():
    """Every public name resolves, the lazy ones on first access; chinplan.fit is the function."""
    code = (
        "import chinplan, chinplan.fit, types; "
        "missing = [n for n in chinplan.__all__ if getattr(chinplan, n, None) is None]; "
        "assert not missing, missing; "
        "assert callable(chinplan.fit) and not isinstance(chinplan.fit, types.ModuleType); "
        "assert chinplan.Posterior.__name__ == 'Posterior'; "
        "print(chinplan.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() and out.stdout.strip() != "0+unknown"
