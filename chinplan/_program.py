"""The chinplan program's first lines: its signal handlers, before anything else loads.

No chinplan code runs before ``import chinplan`` starts. From its first line (here) until the
command's own handlers take over (:func:`chinplan._files.signals_unwind`, once the parser is
built and the command chosen), SIGINT, SIGTERM and SIGHUP end the program at once with one
line and 128 + N: nothing is written yet, so there is nothing to clean up. Only in the program
(the ``chinplan`` script, or ``python -m chinplan.cli``): a Python user who imports chinplan
keeps their own handlers. Standard library only, and cheap: it runs on every start.

What comes before the first line is Python's own start-up (``site``, about 0.05 s): a signal
there gets Python's defaults. Only a launcher that is not Python (one that blocks these
signals before it starts the interpreter, the mask surviving ``exec``, for chinplan to unblock
once its handlers are in) could answer those too.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["is_program", "signal_said", "signal_exit", "end_at_once_on_signals"]

#: The names the ``chinplan`` script has (its console-script wrapper, on POSIX and Windows).
SCRIPT_NAMES = ("chinplan", "chinplan.exe", "chinplan-script.py")


def is_program() -> bool:
    """Whether this process is the ``chinplan`` program: its script, or ``python -m chinplan.cli``."""
    argv = list(getattr(sys, "orig_argv", ()))
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "chinplan.cli":
        return True
    return os.path.basename(sys.argv[0] if sys.argv else "") in SCRIPT_NAMES


def signal_said(signum: int) -> str:
    """What the program says when signal ``signum`` ends it ("interrupted", ...)."""
    return {signal.SIGINT: "interrupted", getattr(signal, "SIGHUP", None): "hung up (terminal closed)"}.get(signum, "terminated")


def signal_exit(signum: int) -> tuple[int, str]:
    """The exit status (128 + N) and the one line of the program ended by signal ``signum``."""
    return 128 + int(signum), f"chinplan: {signal_said(signum)}\n"


def _end(signum, frame):
    code, line = signal_exit(signum)
    os.write(2, line.encode())
    os._exit(code)


def end_at_once_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP end the process at once with their one line (a signal the
    process ignores, as under ``nohup``, stays ignored)."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _end)
