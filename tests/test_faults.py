"""Work is never lost to faults (issue 17, class 7): ``write_atomic`` and the CLI's signals.

* ``write_atomic`` keeps an existing file's mode, writes through a symlink to its target,
  fsyncs the file and its directory, and on every failure (an exception, a full disk, a
  signal) leaves the previous file byte for byte and no temporary behind.
* A read-only target is refused before the work; a full disk fails with one line, exit 1,
  no crash, no temporary, the previous file intact (checked in subprocesses).
* Signals: tests/test_signals.py, with the stand-ins and helpers defined here.

The subprocesses replace the long computation (NUTS, the sweep) by a stand-in, so the tests
stay fast. Mounting a small or read-only tmpfs needs root; those tests skip elsewhere.
"""

import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chinplan import _files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "JAX_PLATFORMS": "cpu"}
SWEEP_TOML = """
[sweep]
quantiles = [0.05, 0.5, 0.95]
outputs = ["n", "loss"]

[grid]
compute = {logspace = [20, 26, 3]}
"""


def listing(directory):
    return sorted(os.listdir(directory))


# --------------------------------------------------------------------------------------
# write_atomic
# --------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from([0o600, 0o640, 0o644, 0o660, 0o444, 0o400, 0o755, 0o700]), data=st.binary(max_size=64))
def test_an_existing_file_keeps_its_mode(tmp_path_factory, mode, data):
    directory = tmp_path_factory.mktemp("mode")
    path = directory / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    _files.write_atomic(path, lambda tmp: open(tmp, "wb").write(data))
    assert path.read_bytes() == data and stat.S_IMODE(os.stat(path).st_mode) == mode
    assert listing(directory) == ["out.bin"]


def test_a_new_file_gets_the_usual_mode(tmp_path):
    umask = os.umask(0o027)
    try:
        _files.write_atomic(tmp_path / "new.bin", lambda tmp: open(tmp, "wb").write(b"x"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o640


@pytest.mark.parametrize("relative", [False, True])
def test_a_symlinked_output_is_written_through(tmp_path, relative):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "data.csv"
    target.write_text("old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.csv"
    os.symlink(os.path.relpath(target, tmp_path) if relative else target, link)
    _files.write_atomic(link, lambda tmp: open(tmp, "w").write("new"))
    assert os.path.islink(link) and target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert listing(tmp_path) == ["link.csv", "real"] and listing(tmp_path / "real") == ["data.csv"]


def test_the_file_and_its_directory_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", None)), real_replace(a, b)))
    _files.write_atomic(tmp_path / "out.txt", lambda tmp: open(tmp, "w").write("x"))
    assert events == [("fsync", False), ("replace", None), ("fsync", True)]


class Boom(Exception):
    pass


@pytest.mark.parametrize("failure", [Boom, KeyboardInterrupt, SystemExit, OSError(errno.ENOSPC, "No space left on device")])
@pytest.mark.parametrize("when", ["in-write", "fsync", "chmod", "replace"])
def test_every_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failure, when):
    path = tmp_path / "out.nc"
    path.write_bytes(b"previous contents")

    def fail(*args, **kwargs):
        raise failure

    def write(tmp):
        open(tmp, "wb").write(b"half")
        if when == "in-write":
            fail()

    if when != "in-write":
        monkeypatch.setattr(os, when, fail)
    with pytest.raises(BaseException) as info:
        _files.write_atomic(path, write)
    assert isinstance(info.value, failure if isinstance(failure, type) else type(failure))
    monkeypatch.undo()
    assert path.read_bytes() == b"previous contents" and listing(tmp_path) == ["out.nc"]


def test_check_writable_finds_unwritable_directories(tmp_path):
    _files.check_writable(tmp_path / "x.nc")
    assert listing(tmp_path) == []  # the probe is removed
    with pytest.raises(ValueError, match=r"^-o: output directory '.*missing' does not exist"):
        _files.check_writable(tmp_path / "missing" / "x.nc", arg="-o")
    with pytest.raises(ValueError, match=r"^-o: cannot write in output directory '/proc'"):
        _files.check_writable("/proc/x.nc", arg="-o")


# --------------------------------------------------------------------------------------
# Mounted targets: a full disk, a read-only file system (root only)
# --------------------------------------------------------------------------------------


@pytest.fixture
def mount(tmp_path):
    """mount(options) -> a fresh tmpfs directory mounted with ``options``; unmounted afterwards."""
    mounted = []

    def make(options):
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_leaves_the_old_file_and_no_temporary(mount):
    disk = mount("size=64k")
    path = disk / "out.bin"
    path.write_bytes(b"previous")
    with pytest.raises(OSError) as info:
        _files.write_atomic(path, lambda tmp: open(tmp, "wb").write(os.urandom(1 << 20)))
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"previous" and listing(disk) == ["out.bin"]


def run_cli(argv, *, stub="none", timeout=240):
    """``chinplan ARGV`` in a subprocess (the program entry, argv None) with a stand-in."""
    return subprocess.Popen([sys.executable, "-c", RUNNER, stub, *argv], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


#: Stand-ins: "compute" replaces fit and the sweep by READY + sleep; "write" lets the real
#: writer fill the temporary, then says READY and sleeps (the signal lands mid-write);
#: "fit-default" makes fit return the shipped posterior at once (a real NetCDF write follows).
RUNNER = r"""
import sys, time
stub, sys.argv = sys.argv[1], ["chinplan", *sys.argv[2:]]
import chinplan.cli as cli
from chinplan.cli import parser

def ready(*args, **kwargs):
    print("READY", file=sys.stderr, flush=True)
    time.sleep(120)

if stub == "fit-default-no-space-check":  # reach HDF5's own failure on a full disk
    from chinplan import _files
    _files.check_space = lambda *args, **kwargs: None
    stub = "fit-default"
if stub != "none":
    from chinplan.cli import fit as fit_command
    from chinplan.decide import sweep
    import arviz, xarray
    if stub == "compute":
        fit_command.fit = ready
        sweep.run_sweep = ready
    if stub in ("write", "fit-default"):
        import chinplan
        fit_command.fit = lambda *a, **k: chinplan.default_posterior()
    if stub == "write":
        for cls in (arviz.InferenceData, xarray.Dataset):
            def patched(self, *args, _real=cls.to_netcdf, **kwargs):
                _real(self, *args, **kwargs)
                ready()
            cls.to_netcdf = patched
sys.exit(cli.main())
"""


def as_from_a_shell(argv: list[str]) -> list[str]:
    """``argv`` (``[sys.executable, ...]``) started as an interactive shell starts it, SIGINT at
    its default: a child inherits SIG_IGN from a suite run in the background of a shell without job
    control (bash ignores SIGINT for ``cmd &``), and then neither Python nor the program (rightly)
    takes SIGINT. The launcher resets it and execs the command, which keeps the reset."""
    launcher = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    return [argv[0], "-c", launcher, *argv[1:]]


def wait_ready(process, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if line.strip() == "READY":
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"the command never got READY: {process.communicate()}")


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "runs.csv").write_text("n,d,loss\n" + "".join(f"{10**k},{20 * 10**k},{3 - k / 10}\n" for k in range(6, 16)))
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    (tmp_path / "out.nc").write_bytes(b"the previous output")
    return tmp_path


COMMANDS = {
    "fit": lambda d: ["fit", str(d / "runs.csv"), "-o", str(d / "out.nc"), "--json"],
    "sweep": lambda d: ["sweep", str(d / "s.toml"), "-o", str(d / "out.nc"), "--draws", "50", "--json"],
}


@pytest.mark.parametrize("stub, message", [
    ("fit-default", "not enough space"),  # the NetCDF writers check the space first
    ("fit-default-no-space-check", "No space left on device"),  # HDF5 fails mid-write: no crash
])  # fmt: skip
def test_fit_to_a_full_disk_fails_cleanly(workdir, mount, stub, message):
    disk = mount("size=96k")
    (disk / "post.nc").write_bytes(b"the previous posterior")
    process = run_cli(["fit", str(workdir / "runs.csv"), "-o", str(disk / "post.nc")], stub=stub)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 1, err  # not a segfault
    assert err.count("\n") == 1 and err.startswith("chinplan: error:") and message in err and "Traceback" not in err
    assert listing(disk) == ["post.nc"] and (disk / "post.nc").read_bytes() == b"the previous posterior"


@pytest.mark.parametrize("command", ["fit"])  # sweep and plot run the same check (tests/test_outputs.py)
def test_a_read_only_target_is_refused_before_the_work(workdir, mount, command):
    target = mount("size=64k")
    (target / "out.nc").write_bytes(b"the previous output")
    subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    argv = [part.replace(str(workdir / "out.nc"), str(target / "out.nc")) for part in COMMANDS[command](workdir)]
    process = run_cli(argv, stub="compute")
    out, err = process.communicate(timeout=240)
    assert process.returncode == 1 and "READY" not in err, err  # refused before the computation
    assert err.count("\n") == 1 and "cannot write in output directory" in err and "Read-only" in err
    assert (target / "out.nc").read_bytes() == b"the previous output"
