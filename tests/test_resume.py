"""Sweeps that survive interruption (issue 14, capability 17): a sweep that fails after k chunks
leaves the previous output (or none) and k chunks beside it; ``--resume`` evaluates only the
missing chunks, and its output is byte-for-byte the uninterrupted run's."""

from __future__ import annotations

import os

import pytest

from chinplan import engine
from chinplan.cli import EXIT_INTERRUPTED, main

SCENARIOS = """\
[grid]
compute = {logspace = [20, 26, 7]}
queries = {values = [0, 1e9, 1e11]}
[deployment]
input_tokens = 400
output_tokens = 100
price = {lognormal = [2.0, 0.25]}
"""
# 21 scenarios in chunks of 4: 6 chunks, the last one short
REAL_BANDS = engine.bands
ARGS = ["--draws", "100", "--uncertainty", "law", "--chunk", "4", "--no-progress"]


def sweep(tmp_path, output, *extra):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIOS)
    return main(["sweep", str(path), "-o", str(output), *ARGS, *extra])


class FailAfter:
    """engine.bands that raises KeyboardInterrupt (Ctrl-C) on call ``k + 1``, counting calls."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.k is not None and self.calls > self.k:
            raise KeyboardInterrupt
        return REAL_BANDS(*args, **kwargs)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, capsys):
    whole = tmp_path / "whole.csv"
    assert sweep(tmp_path, whole) == 0
    assert not os.path.exists(f"{whole}.parts")  # removed once the output is written
    expected = whole.read_bytes()

    out = tmp_path / "out.csv"
    out.write_text("the previous file\n")
    failing = FailAfter(2)
    monkeypatch.setattr(engine, "bands", failing)
    assert sweep(tmp_path, out) == EXIT_INTERRUPTED
    assert out.read_text() == "the previous file\n"  # untouched: never a partial file
    parts = sorted(os.listdir(f"{out}.parts"))
    assert parts == ["chunk-000000.npz", "chunk-000001.npz", "manifest.json"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]

    resumed = FailAfter(None)
    monkeypatch.setattr(engine, "bands", resumed)
    assert sweep(tmp_path, out, "--resume") == 0
    assert resumed.calls == 4  # only the 4 chunks not done
    assert out.read_bytes() == expected
    assert not os.path.exists(f"{out}.parts")
    capsys.readouterr()


def test_resume_refuses_another_sweeps_chunks(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.csv"
    monkeypatch.setattr(engine, "bands", FailAfter(1))
    assert sweep(tmp_path, out) == EXIT_INTERRUPTED
    monkeypatch.setattr(engine, "bands", FailAfter(None))
    assert sweep(tmp_path, out, "--resume", "--seed", "7") != 0
    assert "different sweep (seed was 0, now 7)" in capsys.readouterr().err
    # without --resume a run starts afresh (and succeeds) whatever the directory holds
    assert sweep(tmp_path, out, "--seed", "7") == 0 and out.exists()
