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

#: The suite's own compilation cache: one temporary folder per test run, shared by the xdist
#: workers (the controller makes it and hands it down through this variable), removed at the
#: end. Modules and workers compile many of the same programs (NUTS chains of one model and
#: shape, the engine's kernels); JAX's persistent cache serves a program compiled anywhere in
#: the run to every later compilation of it. Only this process's JAX configuration is set,
#: not the environment of subprocesses (tests of cold starts run those); the README commands'
#: test hands it to its commands itself.
#: ``CHINPLAN_TEST_COMPILE_CACHE=0`` runs the suite without it.
_SUITE_CACHE = "CHINPLAN_TEST_COMPILE_CACHE_DIR"


def pytest_configure(config):
    _configure_compile_cache(config)
    # JAX's backend starts now, so an in-process `chinplan fit` (chinplan.cli.use_cpu_cores)
    # never changes the device count under the tests that run after it in this process
    jax.devices()


def _configure_compile_cache(config):
    import shutil
    import tempfile

    if os.environ.get("CHINPLAN_TEST_COMPILE_CACHE", "1") == "0":
        return
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller (or a run without workers)
        folder = tempfile.mkdtemp(prefix="chinplan-test-xla-")
        os.environ[_SUITE_CACHE] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    folder = os.environ.get(_SUITE_CACHE)
    if folder:
        jax.config.update("jax_compilation_cache_dir", folder)
        # programs that take a while to compile (NUTS chains, engine kernels), not every op
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture
def run_script(tmp_path):
    """``run_script(source, timeout=300)``: runs the Python ``source`` in a fresh process (this
    repository first on its path, without this process's ``XLA_FLAGS``, so the script sets its
    own device count) with one argument, the path of the ``.npz`` it saves; returns that file
    loaded. Used by the tests that compare several devices with one."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]

    def run(source: str, timeout: float = 300):
        script, out = tmp_path / "script.py", tmp_path / "out.npz"
        script.write_text(source)
        env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("XLA_FLAGS", None)
        subprocess.run([sys.executable, str(script), str(out)], check=True, env=env, timeout=timeout)
        return np.load(out)

    return run


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


#: The event jax.monitoring reports once per XLA backend compilation, and the one it reports
#: when the persistent compilation cache (the suite's, pytest_configure) serves a program
#: instead: both mean that a program was not found among the compiled ones in memory.
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
CACHE_HIT = "/jax/compilation_cache/cache_hits"


@pytest.fixture
def count_compiles():
    """A context manager factory: ``with count_compiles() as seen:`` lists every XLA backend
    compilation (jitted functions and eager ops alike) made inside the block, and every
    program the suite's compilation cache served (a compilation it saved, not a reuse)."""

    class Seen(list):
        """The events, and ``names``: the compiled functions' names (``jit(chain)``, ...)."""

        names: list

    @contextlib.contextmanager
    def counting():
        seen = Seen()
        seen.names = []

        def listener(event, duration_secs, **kwargs):
            if event == BACKEND_COMPILE:
                seen.append(event)
                seen.names.append(kwargs.get("fun_name"))

        def cached(event, **kwargs):  # a program the suite's cache served: a compilation all the same
            if event == CACHE_HIT:
                seen.append(event)

        jax.monitoring.register_event_duration_secs_listener(listener)
        jax.monitoring.register_event_listener(cached)
        try:
            yield seen
        finally:
            jax.monitoring.unregister_event_duration_listener(listener)
            jax.monitoring.unregister_event_listener(cached)

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
