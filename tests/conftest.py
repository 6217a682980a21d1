"""Shared fixtures: float32 and float64 runs of the same test, without global flag changes."""

import contextlib
import os

import jax
import numpy as np
import pytest

# The command line keeps compiled programs in the user's cache directory (chinplan.cli.main):
# tests that call main() leave the machine's cache and this process's JAX configuration alone
# unless a run asks for it (tests/test_cli_speed.py turns it on in subprocesses).
os.environ.setdefault("CHINPLAN_CACHE", "0")


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


#: The event jax.monitoring reports once per XLA backend compilation.
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def count_compiles():
    """A context manager factory: ``with count_compiles() as seen:`` lists every XLA backend
    compilation (jitted functions and eager ops alike) made inside the block."""

    @contextlib.contextmanager
    def counting():
        seen = []

        def listener(event, duration_secs, **kwargs):
            if event == BACKEND_COMPILE:
                seen.append(event)

        jax.monitoring.register_event_duration_secs_listener(listener)
        try:
            yield seen
        finally:
            jax.monitoring.unregister_event_duration_listener(listener)

    return counting


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drops JAX's compiled executables after a test module once they hold many mappings.

    The suite compiles thousands of functions; each CPU executable holds several memory
    mappings, and a process past the kernel's ``vm.max_map_count`` (65,530 here) dies in
    XLA's compiler with a segfault. One module adds at most about 5,000 mappings, so the
    caches are cleared when the process holds more than :data:`_MAX_MAPS` (or always, where
    ``/proc/self/maps`` cannot be read); below that, later modules reuse what was compiled."""
    yield
    import gc

    count = _map_count()
    if count < 0 or count > _MAX_MAPS:
        jax.clear_caches()
        gc.collect()


#: Clear JAX's caches above this many memory mappings (half of vm.max_map_count's default).
_MAX_MAPS = 30_000


def _map_count() -> int:
    try:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return -1
