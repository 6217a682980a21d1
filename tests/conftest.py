"""Shared fixtures: float32 and float64 runs of the same test, without global flag changes."""

import jax
import numpy as np
import pytest


@pytest.fixture(params=["float32", "float64"])
def precision(request):
    """Runs the test in JAX's default float32, then inside ``jax.enable_x64(True)``.

    Yields ``(dtype, rtol)``: the float dtype JAX arrays get, and a relative tolerance that
    suits it against a float64 NumPy oracle.
    """
    if request.param == "float64":
        with jax.enable_x64(True):
            yield np.float64, 1e-12
    else:
        yield np.float32, 2e-6
