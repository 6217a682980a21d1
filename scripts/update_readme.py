"""Regenerates the command outputs shown in README.md, so none of its figures is typed by hand.

    python scripts/update_readme.py [--check]

Every fenced block that follows a line ``<!-- run: chinplan ... -->`` is replaced by ``$``
and the command, then its output with the tables' border lines dropped (rich draws them; the
rows and notes are what a reader needs). ``--check`` exits 1 when README.md is out of date.
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


def run(command: str) -> str:
    argv = shlex.split(command)
    if argv[0] != "chinplan":
        raise SystemExit(f"only chinplan commands may run, got {command!r}")
    env = {**os.environ, "COLUMNS": "80", "CHINPLAN_DEBUG": ""}
    done = subprocess.run([sys.executable, "-m", "chinplan.cli", *argv[1:]], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command!r} failed: {done.stderr.strip()}")
    lines = [line.rstrip() for line in done.stdout.splitlines() if line.strip() and not BORDER.match(line.rstrip())]
    return "\n".join([f"$ {command}", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs from a fresh run")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args()
    with open(args.readme) as f:
        text = f.read()
    new = BLOCK.sub(lambda m: m.group(1) + run(m.group("cmd")) + m.group(4), text)
    if args.check:
        sys.exit(0 if new == text else 1)
    with open(args.readme, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
