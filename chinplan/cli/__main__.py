"""``python -m chinplan.cli``: the same as the ``chinplan`` command."""

import sys

from chinplan.cli import main

sys.exit(main())
