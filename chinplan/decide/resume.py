"""Sweeps that survive interruption: chunks of scenarios kept beside the output, for ``--resume``.

``chinplan sweep`` evaluates its scenarios (flattened in C order) in chunks of a fixed number
(:func:`chinplan.decide.sweep.run_sweep` with a :class:`Checkpoint`), and writes each finished
chunk's bands, atomically, to ``<output>.parts/chunk-<i>.npz``. The output itself is written
atomically at the end, and the directory is removed after it: a run killed at any moment
leaves the previous output (or none) and the chunks done so far. ``--resume`` reads them back
and evaluates only the missing chunks; every chunk is the same function of the same inputs,
so the result is identical to an uninterrupted run. A manifest (the scenario file's and the
posterior's SHA-256, draws, seed, uncertainty, chunk size, chinplan version) guards against
resuming a different sweep.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np

from chinplan._files import write_atomic

#: The sidecar directory of an output: ``<output>.parts``.
SIDECAR_SUFFIX = ".parts"
_MANIFEST = "manifest.json"


def sidecar(output: str | os.PathLike) -> str:
    return os.fspath(output) + SIDECAR_SUFFIX


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Checkpoint:
    """The chunks of one sweep in ``directory``; ``manifest`` identifies the sweep.

    Without ``resume`` any previous directory is removed; the directory and its manifest are
    made with the first chunk. With ``resume``, the directory's manifest must equal
    ``manifest`` (ValueError naming the first difference); a missing directory starts afresh.
    """

    def __init__(self, directory: str, manifest: dict, *, chunk: int, resume: bool):
        self.directory, self.chunk = directory, int(chunk)
        self.manifest = {**manifest, "chunk": self.chunk}
        path = os.path.join(directory, _MANIFEST)
        if resume and os.path.exists(path):
            with open(path) as handle:
                found = json.load(handle)
            for key in sorted(set(found) | set(self.manifest)):
                if found.get(key) != self.manifest.get(key):
                    raise ValueError(
                        f"--resume: {directory} holds chunks of a different sweep ({key} was {found.get(key)!r}, "
                        f"now {self.manifest.get(key)!r}); remove it or run without --resume"
                    )
            return
        if os.path.lexists(directory):  # a fresh run: no stale chunks
            shutil.rmtree(directory)

    def _open(self) -> None:
        """Makes the directory and its manifest before the first chunk (so a run that saves
        no chunk leaves nothing behind)."""
        path = os.path.join(self.directory, _MANIFEST)
        if not os.path.exists(path):
            os.makedirs(self.directory, exist_ok=True)
            write_atomic(path, lambda tmp: _write_text(tmp, json.dumps(self.manifest, indent=1, sort_keys=True)))

    def _path(self, index: int) -> str:
        return os.path.join(self.directory, f"chunk-{index:06d}.npz")

    def load(self, index: int) -> dict | None:
        """The saved bands of chunk ``index`` (name -> array), or None if it is not done."""
        path = self._path(index)
        if not os.path.exists(path):  # (also when the directory itself does not exist)
            return None
        with np.load(path) as saved:
            return {name: saved[name] for name in saved.files}

    def save(self, index: int, values: dict) -> None:
        """Writes chunk ``index`` atomically (a kill mid-write leaves no chunk, not half of one)."""

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **{name: np.asarray(v) for name, v in values.items()})

        self._open()
        write_atomic(self._path(index), write)

    def done(self) -> list[int]:
        if not os.path.isdir(self.directory):
            return []
        return sorted(int(f[6:12]) for f in os.listdir(self.directory) if f.startswith("chunk-") and f.endswith(".npz"))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
