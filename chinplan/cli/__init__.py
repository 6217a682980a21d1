"""The ``chinplan`` command line (stage 5, outputs): parser, commands, rendering.

:mod:`.parser` builds the argument parser with the standard library alone (``chinplan
--help`` loads no JAX); :func:`main` dispatches to one module per command family, imported
only when a command runs: :mod:`.plan`, :mod:`.costs` (``tco``, ``compare``, ``smallest``,
``hardware``), :mod:`.fit` (``fit``, ``validate``), :mod:`.plot`, :mod:`.next_runs`,
:mod:`.sweep`. They share :mod:`.inputs` (options -> library inputs) and :mod:`.render`
(80-column tables, JSON) and :mod:`.cluster` (GPU counts and days). The commands import the
decisions, plots, engine, inference and core; nothing imports the command line.
"""

from __future__ import annotations

import os
import sys
import warnings

from chinplan._files import OutputPathError, Terminated, signals_unwind
from chinplan.cli.parser import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    UsageError,
    build_parser,
)

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _command(name: str, module: str):
    """The command ``name`` of ``chinplan.cli.<module>``, imported when it runs (not for --help)."""

    def run(args) -> int:
        import importlib  # the one lazy import: the library loads only to run a command

        return getattr(importlib.import_module(f"chinplan.cli.{module}"), f"cmd_{name.replace('-', '_')}")(args)

    return run


#: The module of each command's cmd_<name>(args), in chinplan.cli.
COMMAND_MODULES = {
    "plan": "plan",
    **{name: "costs" for name in ("tco", "compare", "smallest", "hardware")},
    **{name: "fit" for name in ("fit", "validate")},
    "plot": "plot",
    "sweep": "sweep",
    "next-runs": "next_runs",
}
_COMMANDS = {name: _command(name, module) for name, module in COMMAND_MODULES.items()}


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


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv=None) -> int:
    """Entry point of the ``chinplan`` command; returns the exit code.

    SIGINT exits 130 and SIGTERM 143, with one line on stderr and no temporary file left; run
    as the program (``argv`` None), a non-zero exit then ends the process at once
    (:func:`_exit_now`).
    """
    args = build_parser().parse_args(argv)
    try:
        with signals_unwind(), warnings.catch_warnings():
            warnings.showwarning = _warning_line  # restored on leaving
            return _COMMANDS[args.command](args)
    except (UsageError, OutputPathError) as err:
        code, line = EXIT_USAGE, f"error: {_one_line(err)}"
    except (CliError, ValueError, OSError) as err:
        code, line = EXIT_ERROR, f"error: {_one_line(err)}"
    except KeyboardInterrupt:
        code, line = EXIT_INTERRUPTED, "interrupted"
    except Terminated:
        code, line = EXIT_TERMINATED, "terminated"
    except Exception as err:  # never a traceback for the user; CHINPLAN_DEBUG=1 shows it
        if os.environ.get("CHINPLAN_DEBUG"):
            raise
        code, line = EXIT_ERROR, f"error: unexpected {type(err).__name__}: {_one_line(err)}"
    print(f"chinplan: {line}", file=sys.stderr)
    if argv is None:  # the program: end now, before a failed write's handles or XLA's threads are torn down
        _exit_now(code)
    return code

