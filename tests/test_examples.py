"""Smoke tests of the worked examples in examples/: each runs in-process at --small sizes.

Every example is imported by path (examples/ is not a package) and its ``main(argv)`` is
called with ``--small``; the dict it returns is checked where the numbers mean something
(orderings, agreement with the library's closed forms, recovery of known constants), and
any plot it writes must be a non-empty file.
"""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
TESTED = {"chinchilla_vs_gopher", "chinchilla_trap", "data_constrained", "fit_your_own_runs", "jax_interop", "gpu_sweep", "next_runs", "roofline_trap"}


def load(name: str):
    """Imports examples/<name>.py as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"chinplan_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__ and len(module.__doc__) > 200, f"{name} needs a module docstring"
    return module


def test_every_example_is_smoke_tested():
    assert {p.stem for p in EXAMPLES.glob("*.py")} == TESTED


def test_chinchilla_vs_gopher(tmp_path, capsys):
    plot = tmp_path / "fan.png"
    r = load("chinchilla_vs_gopher").main(["--small", "--plot", str(plot)])
    assert r["draws"] == 200
    for key in ("chinchilla_loss", "gopher_loss", "optimal_n", "optimal_d", "optimal_loss"):
        assert np.all(np.diff(r[key]) >= 0), key  # 5% <= 50% <= 95%
    assert r["chinchilla_loss"][1] < r["gopher_loss"][1]
    assert r["loss_gap"][0] > 0  # Gopher worse in at least 95% of the draws
    assert r["p_chinchilla_lower"] > 0.95
    assert r["chinchilla_in_band"] and not r["gopher_in_band"]
    # Every draw's plan spends the budget: N* D* = C / 6 at the median (monotone maps).
    assert math.isclose(6 * r["optimal_n"][1] * r["optimal_d"][1], r["compute"], rel_tol=0.05)
    assert plot.stat().st_size > 0
    assert "P(Chinchilla has the lower loss)" in capsys.readouterr().out


def test_chinchilla_trap(tmp_path, capsys):
    plot = tmp_path / "trap.png"
    r = load("chinchilla_trap").main(["--small", "--plot", str(plot)])
    p = r["p_8b_cheaper_than_70b"]
    assert len(p) == len(r["queries"]) == 5
    assert np.all(np.diff(p) >= 0), p  # more queries favour the smaller model, draw by draw
    assert p[0] < 0.5 < p[-1]
    assert 1e8 < r["crossover_queries"] < 1e10
    assert r["loss"][1, 0] > r["loss"][1, 1]  # ... at the price of a higher loss
    assert r["p_8b_loss_not_worse"] < 0.05
    tco = r["tco"]  # (quantile, design, volume): every TCO grows with the query volume
    assert np.all(np.diff(tco[1], axis=1) > 0)
    m = r["prob_cheaper_matrix"]
    assert np.all(np.diag(m) == 0) and np.all(m + m.T <= 1 + 1e-6)
    # The dollar-optimal design for Chinchilla's loss shrinks as the volume grows.
    assert np.all(np.diff(r["optimal_n"][1]) < 0)
    assert plot.stat().st_size > 0
    assert "P(8B cheaper than 70B)" in capsys.readouterr().out


def test_data_constrained(tmp_path):
    plot = tmp_path / "epochs.svg"
    r = load("data_constrained").main(["--small", "--plot", str(plot)])
    assert r["loss_repeated"][1] >= r["loss_fresh"][1]
    assert r["repetition_cost"][0] >= 0
    rep, uniq = r["epochs_loss_repeated"][1], r["epochs_loss_unique"][1]
    assert np.all(np.diff(rep) < 0)  # more epochs still help ...
    assert np.all(rep >= uniq - 1e-6)  # ... but less than fresh tokens would
    assert np.all(np.diff(rep - uniq) > 0)  # ... and less and less
    at4 = list(r["epochs"]).index(4.0)
    assert rep[at4] - uniq[at4] < 0.01  # ~4 epochs are nearly as good as new data
    assert np.all(np.diff(r["epochs_token_value"]) < 0)
    assert np.all(r["budgets_loss_constrained"][1] >= r["budgets_loss_unlimited"][1] - 1e-6)
    assert r["plan_constrained"]["loss"][1] >= r["plan_unconstrained"]["loss"][1] - 1e-6
    assert plot.stat().st_size > 0


def test_fit_your_own_runs(tmp_path):
    plot = tmp_path / "pair.png"
    r = load("fit_your_own_runs").main(["--small", "--out", str(tmp_path), "--plot", str(plot)])
    truth, median = r["truth"], r["posterior_median"]
    assert abs(median["alpha"] - truth["alpha"]) < 0.1
    assert abs(median["beta"] - truth["beta"]) < 0.1
    assert abs(r["huber"]["alpha"] - truth["alpha"]) < 0.1
    assert r["roundtrip_equal"]
    assert pathlib.Path(r["posterior_path"]).stat().st_size > 0
    assert pathlib.Path(r["csv"]).stat().st_size > 0
    assert r["plan_n"][0] < r["plan_n"][1] < r["plan_n"][2]
    assert plot.stat().st_size > 0


def test_jax_interop():
    r = load("jax_interop").main(["--small"])
    assert r["traces"] == 1
    slopes = r["slopes"]
    assert slopes["8B"] < 0 < slopes["280B"]
    assert abs(slopes["N* (compute_optimal)"]) < 1e-5
    assert r["p_70b_too_big_vmap"] == pytest.approx(r["p_70b_too_big_engine"], abs=1e-6)
    assert r["inference_elasticity"][2] < 0  # more inference, smaller model
    assert abs(r["optax_n"] / r["compute_optimal_n"] - 1) < 0.03
    assert abs(r["optax_bayes_n"] / r["regret_bayes_n"] - 1) < 0.03
    assert abs(r["penalty_n"] / r["cost_optimal_n"] - 1) < 0.03
    assert abs(r["penalty_d"] / r["cost_optimal_d"] - 1) < 0.03
    assert abs(r["chance_probability"] - 0.9) <= 0.05


def test_gpu_sweep():
    r = load("gpu_sweep").main(["--small"])
    assert r["pairs"] == r["draws"] * r["scenarios"]
    assert 5e4 <= r["pairs"] <= 2e5
    assert r["pairs_per_second"] > 0 and r["seconds"] > 0
    assert r["spot_check_max_rel"] < 1e-4
    ds = r["dataset"]
    assert ds.loss.shape == (3, 16, 16, 4) and ds.dollars.shape == (3, 16, 16, 4)
    best = [row for row in r["best"] if row is not None]
    assert best, "some design must meet the loss target"
    sizes = [row["n"] for row in best]
    assert all(b <= a for a, b in zip(sizes, sizes[1:]))  # more queries, smaller winner
    assert all(row["loss_q95"] <= 2.0 for row in best)


def test_next_runs(capsys):
    r = load("next_runs").main(["--small"])
    chosen = r["chosen"]
    assert r["num_runs"] > 100 and len(chosen) == 3
    assert (6 * chosen["params"] * chosen["tokens"]).sum() <= 1e21 * (1 + 1e-9)
    assert np.all(np.diff(chosen["expected_after"]) < 0) and chosen["expected_after"].iloc[-1] < r["now"]
    assert "runs to buy" in capsys.readouterr().out


def np_roofline_crossover(batch: float) -> float:
    """Q* where 8B x 15T and 70B x 1.4T cost the same, by hand: H100 SXM bf16, $2/GPU-hour,
    MFU 40% train / 50% prefill, 300 + 200 tokens, context 400, 3.35 TB/s, bf16 weights."""
    peak, bw = 989e12, 3.35e12

    def costs(n, d):
        layers = (n / (10 * 128.0**2)) ** (1 / 3)
        kv = 2 * 1024 * layers * 2  # bytes per token of context
        prefill = 2 * n / (peak * 0.5)
        decode = max(prefill, (n * 2 / batch + 400 * kv) / bw)
        return 2 * 6 * n * d / (3600 * peak * 0.4), 2 * (300 * prefill + 200 * decode) / 3600

    (train8, serve8), (train70, serve70) = costs(8e9, 15e12), costs(70e9, 1.4e12)
    return (train8 - train70) / (serve70 - serve8)


def test_roofline_trap(capsys):
    r = load("roofline_trap").main(["--small"])
    rows = r["rows"]
    assert list(rows) == ["fixed MFU 10%", "roofline, batch 1", "roofline, batch 8", "roofline, batch 64"]
    for b in (1, 8, 64):
        assert rows[f"roofline, batch {b}"]["crossover"] == pytest.approx(np_roofline_crossover(b), rel=1e-4)
    crossings = [rows[f"roofline, batch {b}"]["crossover"] for b in (1, 8, 64)]
    assert crossings[0] < crossings[1] < rows["fixed MFU 10%"]["crossover"] < crossings[2]
    # larger batches: cheaper decoding, a dollar-optimal design nearer Chinchilla's
    sizes = [rows[f"roofline, batch {b}"]["optimal_n"] for b in (1, 8, 64)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert "8B cheaper from" in capsys.readouterr().out
