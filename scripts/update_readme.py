"""Regenerates the command outputs shown in README.md, so none of its figures is typed by hand.

    python scripts/update_readme.py [--check] [--readme FILE ...] [--chinplan EXE]

In README.md and docs/HARDWARE.md, every fenced block that follows a line ``<!-- run: chinplan ... -->`` is replaced by ``$``
and the command, then its output with the tables' border lines dropped (rich draws them; the
rows and notes are what a reader needs); every ``<!-- rows: docs/X.md -->N<!-- /rows -->`` gets
the number of numbered table rows of docs/X.md. ``--check`` exits 1 when a file is out of date.
``--chinplan EXE`` runs the commands with that executable (an installed entry point, as a
user runs them) instead of ``python -m chinplan.cli``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys

BLOCK = re.compile(r"(<!-- run: (?P<cmd>[^>]*?) -->\n```\n)(?P<body>(?:(?!```)[\s\S])*?)(\n```)")
BORDER = re.compile(r"^\W*$")  # rich's border lines: no letter or digit
#: A count of another doc's table rows, kept current: ``<!-- rows: docs/X.md -->569<!-- /rows -->``.
COUNT = re.compile(r"(<!-- rows: (?P<path>[^ ]+) -->)(?P<count>[\d,]*)(<!-- /rows -->)")
#: A numbered table row (``| 12 | ...``).
TABLE_ROW = re.compile(r"^\| *\d+ *\|", re.M)


def count_rows(path: str) -> str:
    """How many numbered table rows the doc at ``path`` (relative to the repository) has."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, path)) as f:
        return f"{len(TABLE_ROW.findall(f.read())):,}"


def update_counts(text: str) -> str:
    return COUNT.sub(lambda m: m.group(1) + count_rows(m.group("path")) + m.group(4), text)
#: The files whose command outputs this script keeps current.
FILES = ("README.md", "docs/HARDWARE.md")


def run(command: str, executable: str | None = None) -> str:
    argv = shlex.split(command)
    if argv[0] != "chinplan":
        raise SystemExit(f"only chinplan commands may run, got {command!r}")
    env = {**os.environ, "COLUMNS": "80", "CHINPLAN_DEBUG": ""}
    program = [sys.executable, "-m", "chinplan.cli"] if executable is None else [executable]
    done = subprocess.run([*program, *argv[1:]], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command!r} failed: {done.stderr.strip()}")
    lines = [line.rstrip() for line in done.stdout.splitlines() if line.strip() and not BORDER.match(line.rstrip())]
    return "\n".join([f"$ {command}", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs from a fresh run")
    parser.add_argument("--readme", action="append", help=f"file to update (default: {', '.join(FILES)})")
    parser.add_argument("--chinplan", metavar="EXE", help="the chinplan executable to run (default: python -m chinplan.cli)")
    args = parser.parse_args()
    stale = []
    for path in args.readme or FILES:
        with open(path) as f:
            text = f.read()
        new = update_counts(BLOCK.sub(lambda m: m.group(1) + run(m.group("cmd"), args.chinplan) + m.group(4), text))
        if new != text:
            stale.append(path)
            if not args.check:
                with open(path, "w") as f:
                    f.write(new)
    if args.check and stale:
        sys.exit(f"out of date: {', '.join(stale)} (run python scripts/update_readme.py)")


if __name__ == "__main__":
    main()
