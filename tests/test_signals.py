"""SIGTERM is handled like SIGINT (issue 17, class 7): ``chinplan fit`` and ``chinplan sweep``
signalled while they compute and while they write their temporary file exit 143 (SIGTERM) or
130 (SIGINT) with one line on stderr: no core dump, no traceback, no temporary left, the
previous output byte for byte. Subprocesses run the program entry (``cli.main()`` with argv
None) with the stand-ins of tests/test_faults.py (READY, then sleep), so each signal lands at a
known point.
"""

import signal
import time

import pytest

from test_faults import COMMANDS, listing, run_cli, wait_ready, workdir  # noqa: F401 (workdir: a fixture)


def contents(workdir, *, sweep: bool) -> dict:
    """The files of ``workdir`` by name; a sweep's finished chunks may stay in out.nc.parts/
    for --resume (issue 14): whole chunks and the manifest only, never a temporary."""
    sidecar = workdir / "out.nc.parts"
    if sidecar.exists():
        assert sweep and all(n == "manifest.json" or n.endswith(".npz") for n in listing(sidecar)), listing(sidecar)
    return {name: (workdir / name).read_bytes() for name in listing(workdir) if name != sidecar.name}


@pytest.mark.parametrize("command, stub, sig, code, word", [
    ("fit", "compute", signal.SIGTERM, 143, "terminated"),  # during NUTS
    ("sweep", "write", signal.SIGTERM, 143, "terminated"),  # while the temporary is being written
    ("sweep", "compute", signal.SIGINT, 130, "interrupted"),
    ("fit", "write", signal.SIGINT, 130, "interrupted"),
])  # fmt: skip
def test_a_signal_exits_cleanly_and_leaves_no_temporary(workdir, command, stub, sig, code, word):
    before = {name: (workdir / name).read_bytes() for name in listing(workdir)}
    process = run_cli(COMMANDS[command](workdir), stub=stub)
    wait_ready(process)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err  # not -11 (a segfault) nor -15 (killed by the signal)
    assert err == f"chinplan: {word}\n" and out == ""
    assert contents(workdir, sweep=command == "sweep") == before  # no temporary


def test_a_signal_before_the_work_exits_cleanly_too(workdir):
    """SIGTERM while the library is still being imported (no stand-in at all)."""
    before = {name: (workdir / name).read_bytes() for name in listing(workdir)}
    process = run_cli(COMMANDS["sweep"](workdir))
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode in (143, -signal.SIGTERM), err  # -15: before main() installed its handler
    assert "Traceback" not in err and err.count("\n") <= 1
    assert contents(workdir, sweep=True) == before


