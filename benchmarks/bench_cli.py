"""Wall time of the README's commands as a user runs them: cold (an empty compilation cache)
and warm (the second call), in one run on one machine (issue 23).

    python benchmarks/bench_cli.py [--repeats 2] [--results] [--readme] [--baseline REV]

Every ``<!-- run: chinplan ... -->`` command of README.md is timed, plus the look-ups
(``hardware``, ``--help``), a missing posterior file, and ``tco`` with ``--draws 500``. Each
runs as a subprocess, ``python -m chinplan.cli`` of this checkout (``PYTHONPATH``; not whatever
``chinplan`` is installed), with its own empty cache directory (``CHINPLAN_CACHE_DIR``): the
first call is "cold", the best of ``--repeats`` later calls is "warm". Python may write its
bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped), as an installed package has it.
``--baseline REV`` times the same commands on a ``git worktree`` of REV too, interleaved
command by command in the same run, so a busy machine weighs on both alike. ``--results`` writes the table into
benchmarks/RESULTS.md and ``--readme`` into README.md's performance section (between the
``bench_cli`` markers), so no figure there is typed by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = re.compile(r"<!-- run: (chinplan [^>]*?) -->")
START, END = "<!-- bench_cli: start -->", "<!-- bench_cli: end -->"
QUICKSTART = "chinplan tco --target-loss 2.0 --queries 1e10 --tokens-per-query 500 --hardware h100"
EXTRA = (
    "chinplan plan --compute 5.76e23",
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
    return [sys.executable, "-m", "chinplan.cli"]


def timed(command: str, cache: str, cwd: str, tree: str = ROOT) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"CHINPLAN_CACHE_DIR": cache, "COLUMNS": "80", "PYTHONPATH": tree})
    start = time.perf_counter()
    done = subprocess.run([*program(), *shlex.split(command)[1:]], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done.returncode


def cold_and_warm(command: str, cache: str, cwd: str, repeats: int, tree: str = ROOT) -> dict:
    cold, code = timed(command, cache, cwd, tree)
    warm = min(timed(command, cache, cwd, tree)[0] for _ in range(repeats))
    return {"cold": cold, "warm": warm, "exit": code}


def measure(commands: list[str], repeats: int, baseline: str | None = None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        old_tree = None
        if baseline:
            old_tree = os.path.join(work, "baseline")
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", old_tree, baseline], check=True, capture_output=True)
        try:
            for i, command in enumerate(commands):
                row = {"command": command}
                if old_tree:
                    before = cold_and_warm(command, os.path.join(work, f"before-{i}"), work, repeats, old_tree)
                    row.update({f"before_{k}": v for k, v in before.items()})
                row.update(cold_and_warm(command, os.path.join(work, f"cache-{i}"), work, repeats))
                rows.append(row)
                was = f"(before {row['before_cold']:6.2f} / {row['before_warm']:6.2f})  " if old_tree else ""
                print(f"{row['cold']:7.2f} s cold {row['warm']:7.2f} s warm  {was}exit {row['exit']}  {command}", file=sys.stderr, flush=True)
        finally:
            if old_tree:
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", old_tree], check=False, capture_output=True)
    return rows


def table(rows: list[dict], baseline: str | None = None) -> str:
    before = ["before: cold / warm"] if baseline else []
    lines = ["| command | cold (empty cache) | warm (second call) | " + " | ".join(before + ["goal (cold / warm)"]) + " |",
             "|---|---|---|" + "---|" * (len(before) + 1)]  # fmt: skip
    for row in rows:
        goal = GOALS.get(row["command"])
        goal_text = "" if goal is None else " / ".join("-" if g is None else f"<= {g:g} s" for g in goal)
        note = "" if row["exit"] == 0 else f" (exit {row['exit']})"
        was = [f"{row['before_cold']:.2f} s / {row['before_warm']:.2f} s" + ("" if row["before_exit"] == 0 else f" (exit {row['before_exit']})")] if baseline else []
        cells = [f"`{row['command'][len('chinplan '):]}`{note}", f"{row['cold']:.2f} s", f"{row['warm']:.2f} s", *was, goal_text]
        lines.append("| " + " | ".join(cells) + " |")
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
    parser.add_argument("--baseline", metavar="REV", help="also time a git revision (a temporary worktree), interleaved")
    args = parser.parse_args()
    rows = measure(readme_commands(), args.repeats, args.baseline)
    body = table(rows, args.baseline)
    print(body)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    revision = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    against = f"; before = `{args.baseline}` timed in the same run" if args.baseline else ""
    header = (
        f"Commands timed by `python benchmarks/bench_cli.py{' --baseline ' + args.baseline if args.baseline else ''}` at {revision} "
        f"({platform.machine()}, {os.cpu_count()} cores, load average {load} at the end; each command as a subprocess, "
        f"cold = empty compilation cache, warm = best of {args.repeats} later calls{against}):\n\n"
    )
    if args.results:
        replace_between(os.path.join(ROOT, "benchmarks", "RESULTS.md"), "## Command line: cold and warm (issue 23)\n\n" + header + body)
    if args.readme:
        replace_between(os.path.join(ROOT, "README.md"), header + body)


if __name__ == "__main__":
    main()
