"""Files chinplan writes: where they may go, and writing them so that nothing is ever half-lost.

Every command that writes checks its output here, once, before any computing
(:func:`check_output`: the suffix it writes, never an input file, not a directory;
:func:`check_writable`: the directory exists and a file can be created in it), and writes with
:func:`write_atomic`: a reader sees the old file or the whole new one, never half, and a
failure or a signal leaves the old file and no temporary behind.

Standard library only (the parser imports it without the numerical stack).
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, Iterable

__all__ = ["OutputPathError", "check_suffix", "check_output", "check_writable", "same_file", "write_atomic", "TEMP_PREFIX"]

#: Temporaries start with ".<name>." and end with ".tmp" (hidden, beside their output).
TEMP_PREFIX = "."


class OutputPathError(ValueError):
    """An output path that is wrong in itself (its suffix, an input file, a directory): bad
    usage, exit code 2 on the command line. An unwritable directory is a plain ValueError."""


def check_suffix(path: str | os.PathLike, suffixes: Iterable[str], arg: str) -> str:
    """``path`` as a string if it ends in one of ``suffixes`` (any case); ValueError naming ``arg``."""
    text = os.fspath(path)
    suffixes = tuple(suffixes)
    if os.path.splitext(text)[1].lower() not in suffixes:
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
    if writable:
        check_writable(text, arg=arg)
    return text


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


def write_atomic(path: str | os.PathLike, write: Callable[[str], None], *, suffix: str = ".tmp") -> None:
    """Calls ``write(tmp)`` on a temporary file beside ``path``, then renames it onto ``path``.

    * ``os.replace`` is atomic within a directory (POSIX rename): a failed or interrupted
      write (a full disk, an exception, SIGINT or SIGTERM) leaves any existing file at
      ``path`` untouched, and the temporary is removed on every error path.
    * The temporary is fsynced before the rename and the directory after it, so a crash
      after ``write_atomic`` returns cannot leave an empty or partial file.
    * An existing file keeps its mode (a private 0600 file stays 0600); a new file gets the
      usual permissions (0666 less the umask), not mkstemp's 0600.
    * A symlinked ``path`` is written through: its target is replaced, the link stays.
    """
    target = _target(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(target))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + os.path.basename(target) + ".", suffix=suffix, dir=directory)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        _fsync_directory(directory)
    finally:
        if tmp is not None:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
