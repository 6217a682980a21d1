"""``python -m chinplan.cli``: the same as the ``chinplan`` command.

Python imports the packages first; ``chinplan/__init__.py``'s first lines set the program's
signal handlers (:mod:`chinplan._program`: a signal while the rest loads is one line)."""

import sys

from chinplan.cli import main

sys.exit(main())
