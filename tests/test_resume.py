"""Sweeps that survive interruption (issue 14, capability 17): a sweep that fails after k chunks
leaves the previous output (or none) and k chunks beside it; ``--resume`` evaluates only the
missing chunks, and its output is byte-for-byte the uninterrupted run's."""

from __future__ import annotations

import os

import numpy as np

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


# --------------------------------------------------------------------------------------
# p_target: the share of draws whose plan reaches a loss, as a sweep output.
# --------------------------------------------------------------------------------------


def np_reached(params, n, d, target):
    """Share of draws with E + A/N^alpha + B/D^beta <= target, float64 (n, d broadcast)."""
    E, A, B, al, be = (np.asarray(x, np.float64)[:, None] for x in params)
    return np.mean(E + A / n**al + B / d**be <= target, axis=0)


def np_chinchilla(params, compute):
    """Hoffmann et al. 2022, Eq. 4: N* = G (C/6)^(beta/(alpha+beta)), D* = (C/6) / N*."""
    E, A, B, al, be = (np.asarray(x, np.float64)[:, None] for x in params)
    g = (al * A / (be * B)) ** (1 / (al + be))
    n = g * (compute / 6) ** (be / (al + be))
    return n, compute / 6 / n


@pytest.fixture(scope="module")
def law_draws():
    from chinplan import default_posterior
    from chinplan.decide import risk as decide

    return decide.subset_draws(default_posterior().params, 200, seed=0)


@pytest.mark.parametrize("grid, target", [("n = [1e9, 8e9, 7e10]\nd = [1e11, 1.5e13]", 2.02), ("compute = {logspace = [22, 23, 6]}", 2.05)])
def test_sweep_p_target_by_hand(tmp_path, law_draws, grid, target):
    from chinplan.decide import resume as _resume
    from chinplan.decide import sweep

    path = tmp_path / "p.toml"
    path.write_text(f"[sweep]\np_target = {target}\n[grid]\n{grid}\n")
    scenarios = sweep.load_scenarios(path)
    whole = sweep.run_sweep(scenarios, law_draws)
    checkpoint = _resume.Checkpoint(str(tmp_path / "parts"), {}, chunk=2, resume=False)
    chunked = sweep.run_sweep(scenarios, law_draws, checkpoint=checkpoint)
    got = whole["p_target"].values
    np.testing.assert_array_equal(chunked["p_target"].values, got)
    if "n" in scenarios.axes:
        n, d = np.meshgrid(scenarios.axes["n"], scenarios.axes["d"], indexing="ij")
        want = np_reached(law_draws, n.reshape(-1), d.reshape(-1), target).reshape(n.shape)
    else:
        n, d = np_chinchilla(law_draws, scenarios.axes["compute"])
        E, A, B, al, be = (np.asarray(x, np.float64)[:, None] for x in law_draws)
        want = np.mean(E + A / n**al + B / d**be <= target, axis=0)
    assert np.any((want > 0.05) & (want < 0.95)), want  # the target splits the draws: a real check
    np.testing.assert_allclose(got, want, atol=2 / 200)  # a draw at the threshold may flip in float32
    assert "p_target" in sweep.sweep_frame(whole).columns


def test_sweep_p_target_rejected_with_a_target_loss_grid(tmp_path):
    from chinplan.decide import sweep

    path = tmp_path / "p.toml"
    path.write_text("[sweep]\np_target = 2.0\n[grid]\ntarget_loss = 2.0\n")
    with pytest.raises(ValueError, match="p_target applies to grid.compute"):
        sweep.load_scenarios(path)
