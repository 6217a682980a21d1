"""Where the test suite's time goes: XLA compilation against everything else, by test and by
compiled function (issue 23, item 5).

A pytest plugin and its summary, in one file:

    PYTHONPATH=benchmarks python -m pytest -q -p suite_compile_profile [tests ...]
    python benchmarks/suite_compile_profile.py [--dir DIR] [--top 10]

The plugin records, per test, the wall and CPU time and the seconds JAX reported for tracing,
lowering and XLA backend compilation (``jax.monitoring`` duration events), and every
compilation's function name (JAX's ``jax_log_compiles`` lines), into ``DIR`` (default
``$SUITE_PROFILE_DIR`` or /tmp/suite-compile-profile), one file per xdist worker. The summary
adds them up. Turning on ``jax_log_compiles`` writes those lines to the logging system only
(the plugin's own handler); nothing else in the tests changes.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import logging
import os
import re
import time

import pytest

DIR = os.environ.get("SUITE_PROFILE_DIR", "/tmp/suite-compile-profile")
_totals: collections.Counter = collections.Counter()
_listening = [False]
_COMPILED = re.compile(r"Finished XLA compilation of (\S+) in ([\d.e+-]+) sec")


def _listen() -> None:
    if _listening[0]:
        return
    import jax.monitoring

    def listener(event, duration_secs, **kwargs):
        _totals[event.rsplit("/", 1)[-1]] += duration_secs

    jax.monitoring.register_event_duration_secs_listener(listener)
    _listening[0] = True


#: The test running now (its node id), for the compilations' rows.
_current = [""]


def _caller() -> str:
    """The innermost frame of chinplan or of the tests that led to this compilation
    (``path:line``): which code compiles, where the function name is only ``jit(add)``."""
    import traceback

    for frame in reversed(traceback.extract_stack()):
        if ("/chinplan/" in frame.filename or "/tests/" in frame.filename) and "suite_compile_profile" not in frame.filename:
            return f"{frame.filename.rsplit('/', 2)[-2]}/{os.path.basename(frame.filename)}:{frame.lineno}"
    return "-"


class _CompileLines(logging.Handler):
    def emit(self, record):
        match = _COMPILED.match(record.getMessage())
        if match:
            with open(os.path.join(DIR, f"compiles.{os.getpid()}.tsv"), "a") as fh:
                fh.write(f"{match.group(1)}\t{match.group(2)}\t{_current[0]}\t{_caller()}\n")


def pytest_configure(config):
    import jax

    os.makedirs(DIR, exist_ok=True)
    jax.config.update("jax_log_compiles", True)
    logger = logging.getLogger("jax")
    logger.addHandler(_CompileLines())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the lines go to the profile, not to the tests' output


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _listen()
    _current[0] = item.nodeid
    before = dict(_totals)
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    row = {"test": item.nodeid, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    row.update({k: v - before.get(k, 0.0) for k, v in _totals.items() if v - before.get(k, 0.0) > 1e-4})
    with open(os.path.join(DIR, f"tests.{os.getpid()}.jsonl"), "a") as fh:
        fh.write(json.dumps(row) + "\n")


def summary(folder: str, top: int = 10) -> str:
    rows = [json.loads(line) for path in glob.glob(os.path.join(folder, "tests.*.jsonl")) for line in open(path)]
    total = collections.Counter()
    for row in rows:
        total.update({k: v for k, v in row.items() if k != "test"})
    compiled = collections.Counter()
    count = collections.Counter()
    for path in glob.glob(os.path.join(folder, "compiles.*.tsv")):
        for line in open(path):
            name, seconds = line.rstrip("\n").split("\t")[:2]
            compiled[name] += float(seconds)
            count[name] += 1
    wall = total["wall"] or 1.0
    out = [
        f"{len(rows)} tests: {total['wall']:.0f} s of test wall time, {total['cpu']:.0f} s of CPU in the workers",
        f"XLA backend compilation {total['backend_compile_duration']:.0f} s ({total['backend_compile_duration'] / wall:.0%} of the wall time), "
        f"tracing {total['jaxpr_trace_duration']:.0f} s, lowering {total['jaxpr_to_mlir_module_duration']:.0f} s",
        f"{sum(count.values())} compilations; the most expensive functions:",
    ]
    out += [f"  {seconds:7.1f} s {count[name]:5d} x {name}" for name, seconds in compiled.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=DIR)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    print(summary(args.dir, args.top))
