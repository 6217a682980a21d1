"""Saved programs: the engine's per-chunk kernels traced and lowered once per machine (opt-in).

JAX's persistent compilation cache keeps compiled executables, but every new process still
traces and lowers each kernel (Python running the law, the optimisers and the sorting network)
before it can look one up: seconds for ``chinplan tco``. With :func:`set_program_cache` the
engine saves each stable kernel's compiled executable once into a folder
(``jax.experimental.serialize_executable``), and later processes load it instead of tracing,
lowering and compiling. The command line turns it on beside JAX's cache
(:func:`chinplan.cli.enable_compilation_cache`); the library leaves it off.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
from typing import Callable

import jax
import numpy as np

from chinplan._files import write_bytes

__all__ = ["set_program_cache", "saved_program"]

#: Where traced-and-lowered kernels are kept between processes (None: off, the default).
_PROGRAM_DIR: list = [None]
#: Kernels loaded or exported in this process, by key.
_PROGRAMS: dict = {}
#: Types a stable kernel's partial arguments may hold (their repr is their identity).
_PLAIN = (str, int, float, bool, type(None))


def set_program_cache(path: str | os.PathLike | None) -> None:
    """Keeps every per-chunk kernel of :func:`bands`, :func:`expectation`, :func:`probability`
    and :func:`cvar` traced and lowered once per machine, in ``path`` (None: off, the default).

    Tracing a kernel (Python running the law, the optimisers, the sorting network) costs
    seconds that JAX's persistent compilation cache does not save: it caches the compiled
    executable of a program, not the tracing that produces it. With this cache a kernel's
    executable is saved the first time and loaded on later calls, so a second process skips
    tracing, lowering and compiling. Only kernels with a stable identity are kept: a module-level function
    (or a ``functools.partial`` of one with plain arguments) of a module whose source is
    unchanged; the key also holds the input shapes and dtypes, the reduction, JAX's version,
    x64, the backend and the host's instruction set. One device, one process only. ``chinplan`` (the command line) turns
    it on beside JAX's compilation cache; results are the same either way.
    """
    _PROGRAM_DIR[0] = None if path is None else os.fspath(path)
    _PROGRAMS.clear()


def _stable_name(fn: Callable) -> str | None:
    """``module:qualname`` (with a partial's plain arguments) of a kernel whose program depends
    only on its source and its inputs; None for closures, lambdas and anything else."""
    if isinstance(fn, functools.partial):
        inner = _stable_name(fn.func)
        plain = all(isinstance(v, _PLAIN) for v in (*fn.args, *fn.keywords.values()))
        return None if inner is None or not plain else f"{inner}{fn.args!r}{sorted(fn.keywords.items())!r}"
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname or getattr(fn, "__closure__", None):
        return None
    owner = sys.modules.get(module)
    for part in qualname.split("."):
        owner = getattr(owner, part, None)
    return f"{module}:{qualname}" if owner is fn else None


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """A digest of chinplan's source files: a changed kernel never reads an old program."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            with open(os.path.join(folder, name), "rb") as fh:
                digest.update(name.encode() + b"\0" + fh.read())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _host() -> str:
    """The backend and, on a CPU, the host's instruction set: an executable compiled for one
    machine is never loaded on another that shares the cache directory."""
    device = jax.devices()[0]
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    import jaxlib
    from jax.extend import backend

    version = getattr(backend.get_backend(), "platform_version", "")
    return repr((jax.__version__, jaxlib.__version__, device.platform, device.device_kind, version, platform.machine(), flags))


def _program_key(identity: tuple, args: tuple) -> str | None:
    fn, kind, options = identity
    name = _stable_name(fn)
    if name is None:
        return None
    leaves, treedef = jax.tree.flatten(args)
    avals = [(tuple(np.shape(x)), np.dtype(x.dtype).str, bool(getattr(x, "weak_type", False))) for x in leaves]
    material = (name, kind, options, str(treedef), avals, bool(jax.config.jax_enable_x64), _host(), _source_digest())
    return hashlib.sha256(repr(material).encode()).hexdigest()


def saved_program(kernel: Callable, identity: tuple, args: tuple) -> Callable:
    """``kernel`` (jitted), or its compiled executable saved once and loaded back
    (:func:`set_program_cache`). ``identity``: ``(fn, reduction, static options)`` of the
    engine's kernel; ``args``: its first arguments (their shapes and dtypes key the program).

    The file holds the executable (``jax.experimental.serialize_executable``) and its pytree
    structures (pickled, like JAX's own cache holds native code): a cache directory is the
    user's own, never an input from elsewhere. Any failure falls back to ``kernel``.
    """
    directory = _PROGRAM_DIR[0]
    key = None if directory is None else _program_key(identity, args)
    if key is None:
        return kernel
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    import pickle

    from jax.experimental import serialize_executable

    path = os.path.join(directory, f"{key}.program")
    compiled = None
    try:
        with open(path, "rb") as fh:
            payload, in_tree, out_tree = pickle.loads(fh.read())
        compiled = serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
    except Exception:  # none yet, or unreadable: compile and save it (below)
        compiled = None
    if compiled is not None:
        compiled = _first_call_checked(compiled, kernel, path, key)
    if compiled is None:
        try:
            compiled = _compile_for_saving(kernel, args)
            os.makedirs(directory, exist_ok=True)
            write_bytes(path, pickle.dumps(serialize_executable.serialize(compiled)))
        except Exception:  # an executable the backend cannot serialise: run the kernel as it is
            compiled = kernel
    _PROGRAMS[key] = compiled
    return compiled


def _compile_for_saving(kernel: Callable, args: tuple):
    """``kernel`` compiled afresh for ``args``, past JAX's persistent compilation cache: an
    executable that cache served serialises, but the copy loaded back from the file fails on
    its first call ("NOT_FOUND: Function ...fusion...", CPU, jax 0.10), so every later process
    would trace and compile again (tests/test_cli_speed.py, with the suite's cache on)."""
    from jax._src import config as jax_config  # the State's context manager: restored on exit

    with jax_config.enable_compilation_cache(False):
        return kernel.lower(*args).compile()


def _first_call_checked(loaded: Callable, kernel: Callable, path: str, key: str) -> Callable:
    """``loaded`` (an executable read from ``path``), whose first call falls back to ``kernel``
    when XLA cannot run it (seen on CPU as "NOT_FOUND: Function ...fusion..." for a file that
    deserialises but no longer matches the runtime): the file is removed, the answer computed
    afresh, and later calls use ``kernel``."""

    def first(*args):
        try:
            out = jax.block_until_ready(loaded(*args))
            _PROGRAMS[key] = loaded
            return out
        except jax.errors.JaxRuntimeError:
            try:
                os.remove(path)
            except OSError:
                pass
            _PROGRAMS[key] = kernel
            return kernel(*args)

    return first
