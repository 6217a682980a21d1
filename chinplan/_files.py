"""Files chinplan writes: where they may go, and writing them so that nothing is ever half-lost.

Every command that writes checks its output here, once, before any computing
(:func:`check_output`: the suffix it writes, never an input file, not a directory;
:func:`check_writable`: the directory exists and a file can be created in it), and writes with
:func:`write_atomic`: a reader sees the old file or the whole new one, never half, and a
failure or a signal leaves the old file and no temporary behind. NetCDF files are built in
memory first (:func:`netcdf_image`), so HDF5 never meets a full disk. SIGINT and SIGTERM
unwind the command (:func:`signals_unwind`), so every clean-up runs; the program also ends
within a second when native code (an XLA computation) holds the main thread
(:func:`signals_watched`).

Standard library only (the parser imports it without the numerical stack).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import signal
import stat
import sys
import tempfile
from typing import Callable, Iterable

__all__ = [
    "OutputPathError",
    "suffix_of",
    "check_suffix",
    "check_output",
    "check_writable",
    "check_space",
    "same_file",
    "write_atomic",
    "write_bytes",
    "netcdf_image",
    "Terminated",
    "HangUp",
    "signals_unwind",
    "signals_deferred",
    "signals_watched",
    "track_temporary",
    "untrack_temporary",
    "raise_if_signalled",
    "TEMP_PREFIX",
]

#: Temporaries start with ".<name>." and end with ".tmp" (hidden, beside their output).
TEMP_PREFIX = "."


class OutputPathError(ValueError):
    """An output path that is wrong in itself (its suffix, an input file, a directory): bad
    usage, exit code 2 on the command line. An unwritable directory is a plain ValueError."""


def suffix_of(path: str | os.PathLike, suffixes: Iterable[str]) -> str | None:
    """Which of ``suffixes`` (lower case) the file name of ``path`` ends in, any case, or None.

    The name's ending, not :func:`os.path.splitext`'s extension: a dot-file such as ``.csv``
    or ``.runs.csv`` ends in ``.csv`` too (splitext gives ``.csv`` no extension)."""
    name = os.path.basename(os.fspath(path)).lower()
    return next((suffix for suffix in suffixes if name.endswith(suffix)), None)


def check_suffix(path: str | os.PathLike, suffixes: Iterable[str], arg: str) -> str:
    """``path`` as a string if it ends in one of ``suffixes`` (any case, :func:`suffix_of`);
    ValueError naming ``arg``."""
    text = os.fspath(path)
    suffixes = tuple(suffixes)
    if suffix_of(text, suffixes) is None:
        raise OutputPathError(f"{arg} {text!r} must end in {', '.join(suffixes)}")
    return text


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal resolved paths (symlinks, ``..``, relative paths)
    or, when both exist, one inode (:func:`os.path.samefile`: hard links, bind mounts)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_output(
    path: str | os.PathLike, *, inputs: Iterable, suffixes: Iterable[str], arg: str = "output", writable: bool = False
) -> str:
    """Checks an output path before anything is computed; returns it as a string.

    Refuses (:class:`OutputPathError`, a ValueError naming ``arg`` and the path) an output
    that does not end in one of ``suffixes`` (the format the command writes), that is a
    directory, or that is the same file as any of ``inputs`` (``None`` entries are skipped),
    compared through symlinks, relative paths and hard links (:func:`same_file`). With
    ``writable``, also :func:`check_writable`.
    """
    text = check_suffix(path, suffixes, arg)
    if os.path.isdir(text):
        raise OutputPathError(f"{arg} {text!r} is a directory; give a file name ending in {', '.join(tuple(suffixes))}")
    for source in inputs:
        if source is not None and same_file(text, source):
            raise OutputPathError(
                f"{arg} {text!r} is the same file as the input {os.fspath(source)!r}; "
                "writing it would destroy the input (choose another output file)"
            )
    _check_target(text, arg)
    if writable:
        check_writable(text, arg=arg)
    return text


#: The package's own directory: no output may land in it (the shipped posteriors, the embedded runs).
_PACKAGE = os.path.dirname(os.path.realpath(__file__))
#: What write_atomic adds to an output's name for its temporary: "." + name + ".XXXXXXXX.tmp".
_TEMP_EXTRA = len(TEMP_PREFIX) + len(".XXXXXXXX.tmp")


def _check_target(text: str, arg: str) -> None:
    """Where writing ``text`` would land (through symlinks) must be a new or a writable regular
    file, outside chinplan's package, whose temporary name fits the file system: refused
    before any work (OutputPathError naming ``arg``, the path and what is allowed)."""
    target = os.path.realpath(text)
    if os.path.commonpath([target, _PACKAGE]) == _PACKAGE:
        raise OutputPathError(f"{arg} {text!r} is inside the chinplan package ({_PACKAGE!r}), whose files (the shipped "
                              "posteriors, the embedded runs) are never overwritten; choose an output elsewhere")  # fmt: skip
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise OutputPathError(f"{arg} {text!r} cannot be examined ({err.strerror or err})") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file"
        raise OutputPathError(f"{arg} {text!r} is {kind} ({target!r}); chinplan writes regular files only (it would replace that node)")
    if info is not None and not info.st_mode & 0o222:
        raise OutputPathError(f"{arg} {text!r} is read-only (mode {stat.S_IMODE(info.st_mode):04o}); make it writable "
                              "(chmod u+w) or choose another output")  # fmt: skip
    name = os.path.basename(target)
    try:
        limit = os.pathconf(os.path.dirname(target) or ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    if len(os.fsencode(name)) + _TEMP_EXTRA > limit:
        raise OutputPathError(f"{arg} {text!r}: its name is {len(os.fsencode(name))} bytes; with its temporary's "
                              f"{_TEMP_EXTRA} more, names of at most {limit - _TEMP_EXTRA} bytes fit this file system")  # fmt: skip


def _target(path: str) -> str:
    """Where writing ``path`` lands: a symlink's final target (the link itself is kept)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def check_writable(path: str | os.PathLike, *, arg: str = "output") -> None:
    """ValueError naming ``arg`` unless a file can be created beside ``path``'s target.

    Creates and removes an empty probe file in the directory, so a read-only file system, a
    directory without write permission or a missing directory is found before the work, not
    after it (a permission check alone would pass for root on a read-only mount).
    """
    directory = os.path.dirname(os.path.abspath(_target(os.fspath(path))))
    if not os.path.isdir(directory):
        raise ValueError(f"{arg}: output directory {directory!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX + "chinplan-probe.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise ValueError(f"{arg}: cannot write in output directory {directory!r} ({err.strerror or err})") from None
    os.close(fd)
    os.remove(probe)


#: How a posterior file that is a directory or empty is refused (its reader and the command line).
POSTERIOR_DIRECTORY = "is a directory, not a NetCDF file"
POSTERIOR_EMPTY = "is empty (0 bytes), not a readable chinplan posterior"


def check_input_file(path: str | os.PathLike, what: str, *, directory: str | None = None, empty: str | None = None) -> None:
    """ValueError ``"<what> '<path>' does not exist"`` (or ``cannot be read: <reason>``) unless
    ``path`` is a file that can be opened for reading; with ``directory`` / ``empty`` a
    directory or an empty file gets ``"<what> '<path>' <directory|empty>"``.

    The readers (:func:`chinplan.inference.posterior_file.read`, :func:`chinplan.inference.runs.load_runs`)
    and the command line (before it imports JAX) give the same messages. No JAX, no NumPy.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise ValueError(f"{what} {name!r} does not exist")
    if directory is not None and os.path.isdir(name):
        raise ValueError(f"{what} {name!r} {directory}")
    try:
        with open(name, "rb") as handle:
            first = handle.read(1)
    except OSError as err:  # a directory, no permission, ...
        raise ValueError(f"{what} {name!r} cannot be read: {err}") from None
    if empty is not None and not first:
        raise ValueError(f"{what} {name!r} {empty}")


class Terminated(BaseException):
    """SIGTERM (``timeout``, schedulers, container runtimes) inside :func:`signals_unwind`:
    unwinds like KeyboardInterrupt, so every ``finally`` runs (:func:`write_atomic` removes
    its temporary)."""


class HangUp(Terminated):
    """SIGHUP (the terminal closed) inside :func:`signals_unwind`: unwinds as :class:`Terminated`
    does (no temporary left); its exit status is 128 + 1 (129)."""


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Handled only where the process does not ignore it (``nohup`` sets SIGHUP to SIG_IGN: kept).
_OPTIONAL_SIGNALS = tuple(getattr(signal, name) for name in ("SIGHUP",) if hasattr(signal, name))
_pending: list[int] = []  # signals received inside signals_unwind, in order
_deferring: list[bool] = []  # non-empty inside signals_deferred: record a signal, raise it later


def _exception(signum: int) -> BaseException:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return HangUp() if signum in _OPTIONAL_SIGNALS else Terminated()


#: Calls of the Python-level handler so far (never reset): :func:`signals_watched` reads it.
_handled = [0]
#: Files to remove when the process must end without unwinding (:func:`signals_watched`):
#: :func:`write_atomic`'s temporaries and a sweep's lock, while they exist.
_tracked: dict[str, None] = {}


def track_temporary(path: str) -> None:
    """Removes ``path`` should a signal end the process without unwinding (:func:`signals_watched`)."""
    _tracked[os.fspath(path)] = None


def untrack_temporary(path: str) -> None:
    _tracked.pop(os.fspath(path), None)


def _on_signal(signum, frame):
    _handled[0] += 1
    first = not _pending
    _pending.append(signum)
    if first and not _deferring:  # later signals are only recorded: they must not interrupt the clean-up
        raise _exception(signum)


def raise_if_signalled() -> None:
    """Raises the first signal's exception again if one arrived inside :func:`signals_unwind`.

    Python drops an exception raised where it cannot propagate (a garbage-collection or
    weakref callback, a ``__del__``); :func:`write_atomic` calls this before its rename and
    :func:`signals_unwind` on leaving, so a dropped SIGTERM still ends the work unwritten."""
    if _pending:
        raise _exception(_pending[0])


@contextlib.contextmanager
def signals_unwind():
    """SIGINT raises KeyboardInterrupt, SIGTERM :class:`Terminated` and SIGHUP (unless ignored)
    :class:`HangUp` inside the block (main thread only), once; the previous handlers return
    afterwards."""
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}
        for sig in _OPTIONAL_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    _pending.clear()
    hook = sys.unraisablehook

    def quiet(unraisable):  # our own dropped signal exception: raised again later, not printed
        if not (_pending and isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated))):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        yield
        raise_if_signalled()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = hook
        _pending.clear()


#: Seconds a signal waits for the main thread to run its Python handler before
#: :func:`signals_watched` ends the process without it.
SIGNAL_GRACE = 0.5


@contextlib.contextmanager
def signals_watched(exit_line: Callable[[int], tuple[int, str]], grace: float = SIGNAL_GRACE):
    """Inside :func:`signals_unwind`, for the program only (it may end the process): a signal
    is answered within ``grace`` seconds even while native code holds the main thread.

    Python runs a signal handler only when the main thread returns to the interpreter; inside
    one XLA computation (a NUTS chain, a compilation) that can take seconds or minutes. A
    thread hears each signal at once through Python's wakeup fd (written by the C-level
    handler); if the main thread has not run its handler ``grace`` seconds later, the thread
    removes the tracked files (:func:`track_temporary`: a temporary being written, a sweep's
    lock), writes the line of ``exit_line(signum) -> (exit status, line)`` to stderr and ends
    the process with that status (``os._exit``; nothing chinplan writes is left half-done:
    outputs are renamed into place whole, or not at all). A main thread that runs its handler
    unwinds as before, and the thread does nothing."""
    import threading

    try:
        read, write = os.pipe()
    except OSError:  # no pipe to spare: signals are handled as before
        yield
        return
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(read)
        os.close(write)
        yield
        return
    before = _handled[0]
    threading.Thread(target=_watch, args=(read, grace, before, exit_line), name="chinplan-signals", daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write)  # the thread reads the end of the pipe and stops


def _watch(read: int, grace: float, before: int, exit_line) -> None:
    """The thread of :func:`signals_watched`: reads the wakeup pipe to its end (a pipe with no
    reader would make each later signal's write fail, and Python report it); at the first
    watched signal it gives the main thread ``grace`` seconds, then ends the process if it must."""
    import time

    watched = {int(s) for s in (*_SIGNALS, *_OPTIONAL_SIGNALS)}
    waited = False
    try:
        while data := os.read(read, 64):
            heard = [s for s in data if s in watched]
            if heard and not waited:
                waited = True
                time.sleep(grace)
                if _handled[0] == before:  # the main thread never got back to Python to run its handler
                    _end_now(*exit_line(heard[0]))
    except OSError:
        pass
    finally:
        os.close(read)


def _end_now(code: int, line: str) -> None:
    """Removes the tracked files, writes ``line`` to stderr and ends the process with ``code``."""
    for path in list(_tracked):
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        os.write(2, line.encode("utf-8", "replace"))
    finally:
        os._exit(code)


@contextlib.contextmanager
def signals_deferred():
    """Inside :func:`signals_unwind`: a signal that arrives in the block is recorded, and its
    exception raised when the block ends (in place of any other), never in the middle of it.

    For importing JAX: a KeyboardInterrupt raised inside a native extension's import aborts
    the process (a C++ exception through nanobind: SIGABRT) or leaves a module half-imported
    (a later "ImportError"); after the block, the command unwinds with its one line."""
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.pop()
        if not _deferring:
            raise_if_signalled()


def netcdf_image(write: Callable[[io.BytesIO], None]) -> bytes:
    """The bytes of a NetCDF/HDF5 file that ``write(buffer)`` builds in memory.

    HDF5 cannot fail cleanly on a full disk (handles it cannot close print a traceback each,
    a temporary stays, the interpreter may crash), so chinplan never lets it write to disk:
    the file is built here, then :func:`write_atomic` writes the bytes with plain writes,
    which fail with one OSError and leave nothing behind.
    """
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """:func:`write_atomic` of ``data``, after :func:`check_space` for its size."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    write_atomic(path, write, size_hint=len(data))


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform or file system without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename still happened
        pass
    finally:
        os.close(fd)


def check_space(path: str | os.PathLike, need: int, *, arg: str = "output") -> None:
    """OSError (ENOSPC) naming ``arg`` unless ``path``'s directory has ``need`` bytes free and
    1 MiB more: a write that cannot fit is refused before it starts."""
    directory = os.path.dirname(os.path.abspath(_target(os.fspath(path))))
    free = shutil.disk_usage(directory).free
    if free < need + (1 << 20):
        raise OSError(errno.ENOSPC, f"{arg}: not enough space in {directory!r} to write {os.fspath(path)!r} "
                      f"(needs about {need + (1 << 20)} bytes, {free} free)")  # fmt: skip


def write_atomic(
    path: str | os.PathLike, write: Callable[[str], None], *, suffix: str = ".tmp", size_hint: int | None = None
) -> None:
    """Calls ``write(tmp)`` on a temporary file beside ``path``, then renames it onto ``path``.

    * ``os.replace`` is atomic within a directory (POSIX rename): a failed or interrupted
      write (a full disk, an exception, SIGINT or SIGTERM) leaves any existing file at
      ``path`` untouched, and the temporary is removed on every error path.
    * The temporary is fsynced before the rename and the directory after it, so a crash
      after ``write_atomic`` returns cannot leave an empty or partial file.
    * An existing file keeps its mode (a private 0600 file stays 0600); a new file gets the
      usual permissions (0666 less the umask), not mkstemp's 0600.
    * A symlinked ``path`` is written through: its target is replaced, the link stays.
    * With ``size_hint`` (bytes, an upper bound), :func:`check_space` runs first.
    """
    target = _target(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(target))
    if size_hint is not None:
        check_space(target, int(size_hint))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = made = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + os.path.basename(target) + ".", suffix=suffix, dir=directory)
        track_temporary(made := tmp)
        os.close(fd)
        try:
            write(tmp)
        except OSError as err:  # a full disk, an I/O error: name the file the user asked for
            if err.filename is not None or err.errno is None:
                raise
            raise OSError(err.errno, f"cannot write {os.fspath(path)!r}: {err.strerror or err}") from None
        os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        raise_if_signalled()  # a signal whose exception Python dropped: no new file after it
        os.replace(tmp, target)
        tmp = None
        _fsync_directory(directory)
    finally:
        if tmp is not None:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
        if made is not None:
            untrack_temporary(made)
