"""``python -m chinplan.cli``: the same as the ``chinplan`` command."""

import os
import signal
import sys


def _early(signum, frame):  # before main() takes over: nothing to clean up yet, one line, 128 + N
    os.write(2, b"chinplan: interrupted\n" if signum == signal.SIGINT else b"chinplan: terminated\n")
    os._exit(128 + signum)


for _signal in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signal, _early)

from chinplan.cli import main  # noqa: E402  (after the handlers: a signal while importing is one line)

sys.exit(main())
