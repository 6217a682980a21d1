"""Wall time of the README's commands as a user runs them: cold (an empty compilation cache)
and warm (the second call), in one run on one machine (issue 23).

    python benchmarks/bench_cli.py [--repeats 2] [--results] [--readme]

Every ``<!-- run: chinplan ... -->`` command of README.md is timed, plus the look-ups
(``hardware``, ``--help``), a missing posterior file, and ``tco`` with ``--draws 500``. Each
runs as a subprocess of the installed ``chinplan`` entry point (or ``python -m chinplan.cli``)
with its own empty cache directory (``CHINPLAN_CACHE_DIR``): the first call is "cold", the
best of ``--repeats`` later calls is "warm". ``--results`` writes the table into
benchmarks/RESULTS.md and ``--readme`` into README.md's performance section (between the
``bench_cli`` markers), so no figure there is typed by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = re.compile(r"<!-- run: (chinplan [^>]*?) -->")
START, END = "<!-- bench_cli: start -->", "<!-- bench_cli: end -->"
QUICKSTART = "chinplan tco --target-loss 2.0 --queries 1e10 --tokens-per-query 500 --hardware h100"
EXTRA = (
    "chinplan hardware",
    "chinplan --help",
    "chinplan fit --help",
    "chinplan sweep --help",
    "chinplan plan --compute 5.76e23 --posterior missing.nc",
    QUICKSTART + " --draws 500",
)
#: Goals of issue 23 (seconds): (cold, warm) for a command, None where there is none.
GOALS = {
    QUICKSTART: (10.0, 3.0),
    "chinplan plan --compute 5.76e23": (None, 2.5),
    "chinplan hardware": (0.5, 0.5),
    "chinplan --help": (0.5, 0.5),
    "chinplan fit --help": (0.5, 0.5),
    "chinplan sweep --help": (0.5, 0.5),
}


def readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        found = RUN.findall(fh.read())
    return list(dict.fromkeys([*found, *EXTRA]))


def program() -> list[str]:
    exe = shutil.which("chinplan")
    return [exe] if exe else [sys.executable, "-m", "chinplan.cli"]


def timed(command: str, cache: str, cwd: str) -> tuple[float, int]:
    env = {**os.environ, "CHINPLAN_CACHE_DIR": cache, "COLUMNS": "80"}
    start = time.perf_counter()
    done = subprocess.run([*program(), *shlex.split(command)[1:]], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done.returncode


def measure(commands: list[str], repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for i, command in enumerate(commands):
            cache = os.path.join(work, f"cache-{i}")
            cold, code = timed(command, cache, work)
            warm = min(timed(command, cache, work)[0] for _ in range(repeats))
            rows.append({"command": command, "cold": cold, "warm": warm, "exit": code})
            print(f"{cold:7.2f} s cold {warm:7.2f} s warm  exit {code}  {command}", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| command | cold (empty cache) | warm (second call) | goal (cold / warm) |", "|---|---|---|---|"]
    for row in rows:
        goal = GOALS.get(row["command"])
        goal_text = "" if goal is None else " / ".join("-" if g is None else f"<= {g:g} s" for g in goal)
        note = "" if row["exit"] == 0 else f" (exit {row['exit']})"
        lines.append(f"| `{row['command'][len('chinplan '):]}`{note} | {row['cold']:.2f} s | {row['warm']:.2f} s | {goal_text} |")
    return "\n".join(lines)


def replace_between(path: str, text: str) -> None:
    with open(path, encoding="utf-8") as fh:
        old = fh.read()
    if START in old:
        head, rest = old.split(START, 1)
        new = head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + START + "\n" + text + "\n" + END + "\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="warm calls per command; the best is reported")
    parser.add_argument("--results", action="store_true", help="write the table into benchmarks/RESULTS.md")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md's performance section")
    args = parser.parse_args()
    rows = measure(readme_commands(), args.repeats)
    body = table(rows)
    print(body)
    header = (
        f"Commands timed by `python benchmarks/bench_cli.py` ({platform.machine()}, {os.cpu_count()} cores; "
        "each command as a subprocess, cold = empty compilation cache, warm = best of the later calls):\n\n"
    )
    if args.results:
        replace_between(os.path.join(ROOT, "benchmarks", "RESULTS.md"), "## Command line: cold and warm (issue 23)\n\n" + header + body)
    if args.readme:
        replace_between(os.path.join(ROOT, "README.md"), header + body)


if __name__ == "__main__":
    main()
