"""The ``chinplan`` command line (stage 5, outputs): parser, commands, rendering.

:mod:`.parser` builds the argument parser with the standard library alone (``chinplan
--help`` loads no JAX); :func:`main` dispatches to one module per command family, imported
only when a command runs: :mod:`.plan`, :mod:`.costs` (``tco``, ``compare``, ``smallest``,
``hardware``), :mod:`.fit` (``fit``, ``validate``), :mod:`.plot`, :mod:`.next_runs`,
:mod:`.sweep`. They share :mod:`.inputs` (options -> library inputs) and :mod:`.render`
(80-column tables, JSON) and :mod:`.cluster` (GPU counts and days). The commands import the
decisions, plots, engine, inference and core; nothing imports the command line.

Before a command runs, :func:`main` refuses a missing or unreadable input file (``--posterior``,
a runs CSV) without importing JAX, and points JAX's persistent compilation cache at
:func:`cache_dir` (``$CHINPLAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/chinplan/jax``, else
``~/.cache/chinplan/jax``; ``CHINPLAN_CACHE=0`` turns it off), so a second call of a command
loads its compiled programs instead of compiling them again. ``chinplan hardware`` (a static
table, :mod:`.render`) and every ``--help`` load no JAX.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import sys
import warnings

from chinplan._files import POSTERIOR_DIRECTORY, POSTERIOR_EMPTY, HangUp, OutputPathError, Terminated, check_input_file, signals_deferred, signals_unwind, signals_watched
from chinplan._program import end_at_once_on_signals, signal_exit, signal_said
from chinplan.cli.parser import (
    EXIT_ERROR,
    EXIT_HANGUP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    UsageError,
    build_parser,
)

__all__ = ["main", "cache_dir", "enable_compilation_cache", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_HANGUP"]

# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _command(name: str, module: str):
    """The command ``name`` of ``chinplan.cli.<module>``, imported when it runs (not for --help)."""

    def run(args) -> int:
        return load_command(name, module)(args)

    return run


def load_command(name: str, module: str):
    """``cmd_<name>`` of ``chinplan.cli.<module>``; importing it loads the library (JAX), with
    SIGINT/SIGTERM deferred to the end of the import (:func:`chinplan._files.signals_deferred`)."""
    import importlib  # the one lazy import: the library loads only to run a command

    with signals_deferred():
        return getattr(importlib.import_module(f"chinplan.cli.{module}"), f"cmd_{name.replace('-', '_')}")


#: The module of each command's cmd_<name>(args), in chinplan.cli.
COMMAND_MODULES = {
    "plan": "plan",
    **{name: "costs" for name in ("tco", "compare", "smallest")},
    "hardware": "render",  # a static table: no JAX
    **{name: "fit" for name in ("fit", "validate")},
    "plot": "plot",
    "sweep": "sweep",
    "next-runs": "next_runs",
    "report": "report",
}
_COMMANDS = {name: _command(name, module) for name, module in COMMAND_MODULES.items()}
#: The folder (in the cache directory) of the engine's saved programs
#: (:func:`chinplan.engine.programs.set_program_cache`).
PROGRAMS = "chinplan-programs"
#: Commands that compute nothing with JAX: they run without the compilation cache.
JAX_FREE_COMMANDS = frozenset({"hardware"})


def cache_dir(environ=None) -> str | None:
    """Where the command line keeps JAX's compiled programs; None when ``CHINPLAN_CACHE=0``.

    ``$CHINPLAN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/chinplan/jax`` (XDG base
    directories), else ``~/.cache/chinplan/jax``.
    """
    environ = os.environ if environ is None else environ
    if environ.get("CHINPLAN_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if environ.get("CHINPLAN_CACHE_DIR"):
        return os.path.abspath(os.path.expanduser(environ["CHINPLAN_CACHE_DIR"]))
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "chinplan", "jax")


def enable_compilation_cache(environ=None) -> str | None:
    """Points JAX's persistent compilation cache at :func:`cache_dir` (the command line only:
    the library never changes its caller's JAX configuration). Every program is cached, however
    quick its compilation or small its executable. Returns the directory (None: turned off, or
    the caller already configured a cache)."""
    path = cache_dir(environ)
    if path is None:
        return None
    import jax  # the command runs now: JAX is needed anyway

    if jax.config.jax_compilation_cache_dir:  # configured by the caller (JAX_COMPILATION_CACHE_DIR): theirs
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # no cache where none can be written (a read-only home): compile as before
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    from chinplan.engine import programs  # the engine's kernels, compiled once per machine

    programs.set_program_cache(os.path.join(path, PROGRAMS))
    return path


#: Commands whose work is NUTS chains (``fit``, and ``validate``'s back-test fits).
CHAIN_COMMANDS = frozenset({"fit", "validate"})


def use_cpu_cores(chains: int, environ=None) -> int | None:
    """Gives JAX one CPU device per NUTS chain, up to the cores this process may use, so
    that ``fit``'s chains run in parallel (:func:`chinplan.inference.sampler.sample_nuts`:
    one chain per device). The command line only: the library leaves its caller's JAX
    configuration alone (``chinplan.fit``'s docstring says how to do the same). Left as it
    is when the caller chose (``JAX_NUM_CPU_DEVICES``, ``--xla_force_host_platform_device_count``
    in ``XLA_FLAGS``), when ``CHINPLAN_CPU_DEVICES`` says otherwise (a count; 1 turns it
    off), and once JAX has computed anything in this process. Returns the count set, or None."""
    environ = os.environ if environ is None else environ
    if environ.get("JAX_NUM_CPU_DEVICES") or "xla_force_host_platform_device_count" in environ.get("XLA_FLAGS", ""):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS)
        cores = os.cpu_count() or 1
    wanted = environ.get("CHINPLAN_CPU_DEVICES", "")
    count = int(wanted) if wanted.strip().isdigit() and int(wanted) > 0 else min(cores, max(int(chains), 1))
    if count < 2:
        return None
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX's backends already started (a caller in the same process): theirs
        return None
    return count


def check_inputs(args) -> None:
    """Refuses a missing, unreadable or empty input file before any import of JAX, with the
    messages the readers give (:func:`chinplan._files.check_input_file`)."""
    posterior = getattr(args, "posterior", None)
    if posterior is not None:
        check_input_file(posterior, "posterior file", directory=POSTERIOR_DIRECTORY, empty=POSTERIOR_EMPTY)
    runs = getattr(args, "runs", None) if args.command in ("fit", "validate") else None
    if runs is not None:
        check_input_file(runs, "runs file", empty="is empty")


def _exit_now(code: int) -> None:
    """Ends the process at once after a failure or a signal: interpreter teardown with XLA's
    threads mid-work, or with HDF5 handles a failed write left open, can crash (a segfault
    after the one-line message); everything chinplan writes is final or removed by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning (a NumPy RuntimeWarning, a library's UserWarning) as one stderr line
    like chinplan's own warnings, never the multi-line source excerpt Python prints."""
    text = " ".join(str(message).split())
    print(f"chinplan: warning: {category.__name__}: {text}", file=sys.stderr)


#: Fewer --draws than this warn (after a command's output): the outer quantiles rest on a few draws.
FEW_DRAWS = 100


def few_draws_warning(args) -> None:
    wanted = getattr(args, "draws", None)
    if isinstance(wanted, int) and wanted < FEW_DRAWS:
        low = min([q for q in getattr(args, "quantiles", None) or [0.05] if q > 0] or [0.05])
        print(f"chinplan: warning: --draws {wanted}: the {100 * low:g}% and {100 * (1 - low):g}% quantiles of {wanted} draws rest on "
              f"the {max(1, math.ceil(low * wanted))} most extreme draw(s) each side; use at least {FEW_DRAWS} draws for bands",
              file=sys.stderr)  # fmt: skip


def check_backend() -> None:
    """CliError, in one line, when JAX cannot start a backend (``JAX_PLATFORMS=cuda`` on a
    machine without a GPU: JAX skips the platform, then fails an internal ``assert``, whose
    message is empty), naming the setting and what to do. With ``XLA_FLAGS`` set, the backend
    is first started in a child process of the same environment: XLA aborts the process on a
    flag it does not know (``F... Unknown flag in XLA_FLAGS``, from C++), and the child's
    failure becomes one line here (only then; it costs one more start of JAX)."""
    if os.environ.get("XLA_FLAGS", "").strip():
        _check_xla_flags(os.environ["XLA_FLAGS"])
    import jax

    try:
        jax.devices()
    except Exception as err:  # AssertionError (nothing started) or RuntimeError (a backend failed)
        platforms = os.environ.get("JAX_PLATFORMS", "")
        detail = "no device of that platform is visible" if isinstance(err, AssertionError) else _one_line(err)
        setting = f"JAX_PLATFORMS={platforms!r}: " if platforms else ""
        raise CliError(f"{setting}JAX could not start a backend ({detail}); unset JAX_PLATFORMS or set "
                       "JAX_PLATFORMS=cpu to run on the CPU") from None  # fmt: skip


def _check_xla_flags(flags: str) -> None:
    import subprocess

    probe = "import jax; jax.devices()"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, errors="replace", timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired):  # no probe: the command itself will tell
        return
    said = [line.split("] ", 1)[-1].strip() for line in done.stderr.splitlines() if "XLA_FLAGS" in line]
    if done.returncode != 0 and (said or done.returncode < 0):  # XLA's fatal log: exit 1, or an abort
        detail = said[0] if said else f"the process was killed by signal {-done.returncode}"
        raise CliError(f"XLA_FLAGS={flags!r}: XLA cannot start with it ({detail}); remove that flag or unset XLA_FLAGS")


@contextlib.contextmanager
def tolerant_output():
    """stdout and stderr replace what their encoding cannot write (a non-ASCII label under
    ``PYTHONIOENCODING=ascii`` or a C locale prints as ``?``) instead of failing mid-output;
    their error handlers come back afterwards."""
    before = []
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="replace")
                before.append(stream)
            except (ValueError, OSError, io.UnsupportedOperation):
                pass
    try:
        yield
    finally:
        for stream in before:
            try:
                stream.reconfigure(errors="strict")
            except (ValueError, OSError, io.UnsupportedOperation):
                pass


#: What main says when standard output is closed (``chinplan hardware >&-``): nothing could be written.
STDOUT_CLOSED = "standard output is closed (>&-), so nothing can be written; run with stdout open, or redirect it to a file"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv=None) -> int:
    """Entry point of the ``chinplan`` command; returns the exit code.

    SIGINT exits 130, SIGTERM 143 and SIGHUP 129, with one line on stderr and no temporary file left; run
    as the program (``argv`` None), a non-zero exit then ends the process at once
    (:func:`_exit_now`).
    """
    if argv is None:  # the program (chinplan/__init__.py set these already when it could tell)
        end_at_once_on_signals()
    if sys.stdout is None:  # fd 1 closed at start-up: print() would drop every line and exit 0
        print(f"chinplan: error: {STDOUT_CLOSED}", file=sys.stderr)
        return EXIT_ERROR
    args = build_parser().parse_args(argv)
    try:
        watched = signals_watched(signal_exit) if argv is None else contextlib.nullcontext()  # the program: it may end the process
        with signals_unwind(), watched, warnings.catch_warnings(), tolerant_output():
            warnings.showwarning = _warning_line  # restored on leaving
            check_inputs(args)
            if args.command not in JAX_FREE_COMMANDS:
                with signals_deferred():  # JAX is imported and its backend started here
                    if args.command in CHAIN_COMMANDS:  # before the backend starts
                        use_cpu_cores(getattr(args, "chains", 4))
                    enable_compilation_cache()
                    check_backend()
            code = _COMMANDS[args.command](args)
            few_draws_warning(args)
            return code
    except (UsageError, OutputPathError) as err:
        code, line = EXIT_USAGE, f"error: {_one_line(err)}"
    except (CliError, ValueError, OSError) as err:
        code, line = EXIT_ERROR, f"error: {_one_line(err)}"
    except KeyboardInterrupt:
        code, line = EXIT_INTERRUPTED, signal_said(signal.SIGINT)
    except HangUp:  # the terminal closed (SIGHUP): 128 + 1
        code, line = EXIT_HANGUP, signal_said(signal.SIGHUP)
    except Terminated:
        code, line = EXIT_TERMINATED, signal_said(signal.SIGTERM)
    except Exception as err:  # never a traceback for the user; CHINPLAN_DEBUG=1 shows it
        if os.environ.get("CHINPLAN_DEBUG"):
            raise
        code, line = EXIT_ERROR, f"error: unexpected {type(err).__name__}: {_one_line(err)}"
    print(f"chinplan: {line}", file=sys.stderr)
    if argv is None:  # the program: end now, before a failed write's handles or XLA's threads are torn down
        _exit_now(code)
    return code

