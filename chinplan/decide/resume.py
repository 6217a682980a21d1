"""Sweeps that survive interruption: chunks of scenarios kept beside the output, for ``--resume``.

``chinplan sweep`` evaluates its scenarios (flattened in C order) in chunks of a fixed number
(:func:`chinplan.decide.sweep.run_sweep` with a :class:`Checkpoint`), and writes each finished
chunk's bands, atomically, to ``<output>.parts/chunk-<i>.npz``. The output itself is written
atomically at the end, and the directory is removed after it: a run killed at any moment
leaves the previous output (or none) and the chunks done so far. ``--resume`` reads them back
and evaluates only the missing chunks; every chunk is the same function of the same inputs,
so the result is identical to an uninterrupted run.

The parts folder belongs to its sweep alone:

* a lock (``<output>.parts.lock``, ``flock``) held for the whole run: a second sweep on the
  same output is refused, never mixed with the first;
* a folder holding anything but a manifest, chunks and their temporaries is refused, never
  deleted (it is not ours); a fresh run deletes only those files of a previous run;
* the manifest identifies the sweep (the SHA-256 of the scenario bytes that were parsed, the
  posterior's, draws, seed, uncertainty, chunk size, chinplan's and JAX's versions, x64, the
  backend and matmul precision: every setting that changes the numbers) and holds each
  finished chunk's SHA-256; only chunks listed there are reused, each verified, and a chunk
  whose bytes, names or shapes differ is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re

import numpy as np

from chinplan._files import track_temporary, untrack_temporary, write_atomic

try:
    import fcntl
except ImportError:  # Windows: an O_EXCL lock file instead
    fcntl = None

#: The sidecar directory of an output: ``<output>.parts``.
SIDECAR_SUFFIX = ".parts"
#: The lock file beside it, held while a sweep runs: ``<output>.parts.lock``.
LOCK_SUFFIX = ".lock"
_MANIFEST = "manifest.json"
_CHUNK = re.compile(r"chunk-(\d{6})\.npz")
_OURS = re.compile(r"(manifest\.json|chunk-\d{6}\.npz|\.(manifest\.json|chunk-\d{6}\.npz)\..+\.tmp)")


def sidecar(output: str | os.PathLike) -> str:
    return os.fspath(output) + SIDECAR_SUFFIX


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def numeric_settings() -> dict:
    """The settings of this process that change a sweep's numbers (not only its speed): JAX's
    and jaxlib's versions, x64, the default backend and the default matmul precision."""
    import jax
    import jaxlib

    return {
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "x64": bool(jax.config.jax_enable_x64),
        "backend": jax.default_backend(),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
    }


def _lock(path: str, directory: str):
    """An exclusive lock on ``path`` (made if missing), or ValueError if another sweep holds it."""
    busy = ValueError(
        f"-o/--output: another chinplan sweep is writing {directory[: -len(SIDECAR_SUFFIX)]!r} (it holds {path!r}); "
        "wait for it to finish, or write another output"
    )
    if fcntl is None:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise busy from None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise busy from None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its previous holder unlinked while we opened it
            return fd
        os.close(fd)


class Checkpoint:
    """The chunks of one sweep in ``directory``; ``manifest`` identifies the sweep.

    Takes the sweep's lock (ValueError while another sweep holds it) and refuses a
    ``directory`` holding anything but a manifest, chunks and their temporaries. Without
    ``resume`` those files of a previous run are deleted; the directory and its manifest are
    made with the first chunk. With ``resume``, the directory's manifest must equal
    ``manifest`` (ValueError naming the first difference); a missing directory starts afresh.
    :meth:`close` (or :meth:`remove`, or leaving a ``with`` block) releases the lock.
    """

    def __init__(self, directory: str, manifest: dict, *, chunk: int, resume: bool):
        self.directory, self.chunk = os.fspath(directory), int(chunk)
        self.manifest = {**manifest, "chunk": self.chunk}
        self.chunks: dict[str, str] = {}  # index -> SHA-256 of the chunk's bytes
        self._lock_path = self.directory + LOCK_SUFFIX
        self._fd = _lock(self._lock_path, self.directory)
        track_temporary(self._lock_path)  # removed should a signal end the process mid-computation
        try:
            self._start(resume)
        except BaseException:
            self.close()
            raise

    def _start(self, resume: bool) -> None:
        found = self._contents()
        path = os.path.join(self.directory, _MANIFEST)
        if resume and _MANIFEST in found:
            try:
                with open(path) as handle:
                    saved = json.load(handle)
                chunks = saved.pop("chunks", {})
                assert isinstance(saved, dict) and isinstance(chunks, dict)
            except (ValueError, AssertionError, OSError) as err:
                raise ValueError(f"--resume: {path} is not a sweep manifest ({err or 'not a JSON object'}); remove {self.directory} or run without --resume") from None
            for key in sorted(set(saved) | set(self.manifest)):
                if saved.get(key) != self.manifest.get(key):
                    raise ValueError(
                        f"--resume: {self.directory} holds chunks of a different sweep ({key} was {saved.get(key)!r}, "
                        f"now {self.manifest.get(key)!r}); remove it or run without --resume"
                    )
            self.chunks = {str(k): str(v) for k, v in chunks.items()}
            return
        for name in found:  # a fresh run: no stale chunks (only this sweep's kind of file is deleted)
            os.unlink(os.path.join(self.directory, name))

    def _contents(self) -> list[str]:
        """The names in the directory ([] when there is none); ValueError if it is not a plain
        directory or holds a file that is not a manifest, chunk or their temporary."""
        if not os.path.lexists(self.directory):
            return []
        if os.path.islink(self.directory) or not os.path.isdir(self.directory):
            raise ValueError(f"-o/--output: {self.directory!r} (the sweep's parts folder) exists and is not a directory; move it away")
        names = sorted(os.listdir(self.directory))
        foreign = [n for n in names if not _OURS.fullmatch(n) or not os.path.isfile(os.path.join(self.directory, n))
                   or os.path.islink(os.path.join(self.directory, n))]  # fmt: skip
        if foreign:
            raise ValueError(
                f"-o/--output: the parts folder {self.directory!r} holds {foreign[0]!r}, which is not a sweep chunk or "
                f"manifest; it belongs to this output's sweep alone: move that file (and any other) out of it"
            )
        return names

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Releases the lock (the chunks stay for ``--resume``)."""
        if self._fd is None:
            return
        try:
            os.unlink(self._lock_path)  # before the unlock: see _lock's inode check
        except FileNotFoundError:
            pass
        untrack_temporary(self._lock_path)
        os.close(self._fd)
        self._fd = None

    def _write_manifest(self) -> None:
        text = json.dumps({**self.manifest, "chunks": self.chunks}, indent=1, sort_keys=True)
        write_atomic(os.path.join(self.directory, _MANIFEST), lambda tmp: _write_bytes(tmp, text.encode()))

    def _path(self, index: int) -> str:
        return os.path.join(self.directory, f"chunk-{index:06d}.npz")

    def load(self, index: int, shapes: dict | None = None) -> dict | None:
        """The saved bands of chunk ``index`` (name -> array), or None if this sweep has not
        saved it. A chunk the manifest lists is verified: its SHA-256 and, with ``shapes``
        (name -> shape), its names and shapes; ValueError if they differ."""
        sha = self.chunks.get(str(index))
        path = self._path(index)
        if sha is None or not os.path.exists(path):
            return None
        with open(path, "rb") as handle:
            data = handle.read()
        where = f"--resume: chunk {index} of {self.directory!r}"
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"{where} does not match its checksum in the manifest (changed since it was written); remove the folder or run without --resume")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as saved:
                values = {name: saved[name] for name in saved.files}
        except (ValueError, OSError) as err:
            raise ValueError(f"{where} is not a chunk of bands ({err}); remove the folder or run without --resume") from None
        if shapes is not None:
            got = {name: tuple(v.shape) for name, v in values.items()}
            want = {name: tuple(s) for name, s in shapes.items()}
            if got != want or any(v.dtype.kind != "f" for v in values.values()):
                raise ValueError(f"{where} holds {got}, not the bands {want} of this sweep; remove the folder or run without --resume")
        return values

    def save(self, index: int, values: dict) -> None:
        """Writes chunk ``index`` atomically (a kill mid-write leaves no chunk, not half of one),
        then its checksum into the manifest."""
        buffer = io.BytesIO()
        np.savez(buffer, **{name: np.asarray(v) for name, v in values.items()})
        data = buffer.getvalue()
        os.makedirs(self.directory, exist_ok=True)
        self._contents()  # still ours
        write_atomic(self._path(index), lambda tmp: _write_bytes(tmp, data))
        self.chunks[str(index)] = hashlib.sha256(data).hexdigest()
        self._write_manifest()

    def done(self) -> list[int]:
        """The chunks this sweep saved (those listed in its manifest and present)."""
        return sorted(int(k) for k in self.chunks if os.path.exists(self._path(int(k))))

    def remove(self) -> None:
        """Deletes this sweep's manifest and chunks (and the folder, when that leaves it empty)
        and releases the lock; a file that is not the sweep's own is never deleted."""
        try:
            if os.path.isdir(self.directory) and not os.path.islink(self.directory):
                for name in os.listdir(self.directory):
                    if _OURS.fullmatch(name) and os.path.isfile(os.path.join(self.directory, name)):
                        os.unlink(os.path.join(self.directory, name))
                try:
                    os.rmdir(self.directory)
                except OSError:  # something else appeared in it: not ours to delete
                    pass
        finally:
            self.close()


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
