"""Serving cost by the roofline (issue 14, capability 13) against hand computation in float64.

A decode step of B sequences takes max(compute, memory) time: B 2N / (P U_prefill) FLOPs, or
reading the weights once (N w bytes) and each sequence's KV cache (S k bytes) at BW bytes/s.
The oracles below write that out in NumPy float64, independently of chinplan.costs.
"""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

from chinplan import arch, costs, extrapolated_optima, law, optima
from chinplan.engine import kernels
from chinplan.decide import sweep
from chinplan.costs import Deployment
from chinplan.extrapolated import ExtrapolatedLaw, extrapolated_log_loss
from test_cluster import run  # the CLI runner: (exit code, stdout, stderr)

P = law.HOFFMANN_2022
SERVE = dict(queries=1e10, input_tokens=1000.0, output_tokens=250.0)


def np_layers(n):
    """Layers of the Llama 3-style family: N = 10 d^2 L, d = 128 L."""
    return (np.float64(n) / (10.0 * 128.0**2)) ** (1.0 / 3.0)


def np_token_seconds(n, dep):
    """(prefill, decode) GPU-seconds per token, float64, from the roofline written out."""
    n = np.float64(n)
    peak = np.float64(dep.peak_flops if dep.inference_peak_flops is None else dep.inference_peak_flops)
    prefill = 2 * n / (peak * dep.mfu_prefill)
    if dep.batch is None:
        return prefill, 2 * n / (peak * dep.mfu_decode)
    w = 2.0 if dep.bytes_per_weight is None else dep.bytes_per_weight
    bw = 3.35e12 if dep.memory_bandwidth is None else dep.memory_bandwidth
    k = 2 * 1024 * np_layers(n) * w if dep.kv_bytes_per_token is None else dep.kv_bytes_per_token
    s = dep.input_tokens + dep.output_tokens / 2 if dep.context is None else dep.context
    step_bytes = n * w + dep.batch * s * k  # weights once, every sequence's cache
    return prefill, max(prefill, step_bytes / dep.batch / bw)


def np_dollars(n, d, dep):
    n, d = np.float64(n), np.float64(d)
    prefill, decode = np_token_seconds(n, dep)
    train_h = 6 * n * d / (3600 * dep.peak_flops * dep.mfu_train)
    serve_h = dep.queries * (dep.input_tokens * prefill + dep.output_tokens * decode) / 3600
    return dep.price * (train_h + serve_h), serve_h


def test_kv_cache_bytes_of_known_shapes():
    # Llama 3 8B: 32 layers x 8 KV heads x 128 x (K, V) x 2 bytes = 131,072 B per token.
    assert arch.kv_bytes_per_token(arch.LLAMA3_8B) == 2 * 32 * 8 * 128 * 2 == 131072
    # Llama 2 7B is MHA: 32 x 32 heads x 128 x 2 x 2 = 524,288 B; fp8 halves it.
    assert arch.kv_bytes_per_token(arch.LLAMA2_7B, 1.0) == 2 * 32 * 32 * 128 == 262144
    for n in (1e9, 8.03e9, 7e10, 1e12):
        assert arch.layers_for_params(n) == pytest.approx(np_layers(n), rel=1e-14)
        got = float(np.exp(arch.log_kv_bytes_per_token_for_params(math.log(n), math.log(2.0))))
        assert got == pytest.approx(2 * 1024 * np_layers(n) * 2, rel=1e-5)
    # the family is a stand-in: within 15% of Llama 3 8B's 32 layers and 70B's 80
    assert arch.layers_for_params(8.03e9) == pytest.approx(32, rel=0.15)
    assert arch.layers_for_params(70.55e9) == pytest.approx(80, rel=0.15)


CASES = [
    # memory bound: batch 1, the weights dominate
    Deployment(**SERVE, batch=1.0, context=4096.0),
    # batch 64 at 4K context: the KV cache dominates
    Deployment(**SERVE, batch=64.0, context=4096.0, memory_bandwidth=4.8e12, bytes_per_weight=1.0),
    # an exact KV size of a known shape, context from the query (1000 + 250/2)
    Deployment(**SERVE, batch=16.0, kv_bytes_per_token=131072.0, inference_peak_flops=2.25e15),
    # huge batch, no cache: compute bound, at the prefill MFU
    Deployment(**SERVE, batch=1e6, context=0.0),
]


@pytest.mark.parametrize("dep", CASES)
def test_token_seconds_and_tco_against_hand_roofline(dep, precision):
    dtype, rtol = precision
    rtol = max(rtol, 1e-11)
    for n in (1e9, 7e10, 1e12):
        want = np_token_seconds(n, dep)
        got = costs.token_seconds(n, dep)
        np.testing.assert_allclose([float(got.prefill), float(got.decode)], want, rtol=rtol * 10)
        dollars, serve_h = np_dollars(n, 2e12, dep)
        cost = costs.tco(n, 2e12, dep)
        np.testing.assert_allclose(float(cost.inference_gpu_hours), serve_h, rtol=rtol * 10)
        np.testing.assert_allclose(float(cost.dollars), dollars, rtol=rtol * 10)
        np.testing.assert_allclose(float(np.exp(costs.log_dollars(n, 2e12, dep))), dollars, rtol=rtol * 10)


def test_roofline_figures_by_hand():
    """One figure worked through: 70B in bf16 on an H100 SXM, batch 64, 4,096-token context."""
    dep = Deployment(**SERVE, batch=64.0, context=4096.0)
    n = 7e10
    weights = 7e10 * 2  # 140 GB read once per step
    kv = 64 * 4096 * (2 * 1024 * (7e10 / 163840) ** (1 / 3) * 2)  # 64 caches of 4,096 tokens
    step = (weights + kv) / 3.35e12  # seconds per step, memory bound
    assert step > 64 * 2 * n / (989e12 * 0.5)  # than the compute: memory bound indeed
    assert float(costs.token_seconds(n, dep).decode) == pytest.approx(step / 64, rel=1e-5)
    # the fixed-MFU decode at 10% is this roofline's cost when MFU = 2N / (P t_decode)
    mfu = 2 * n / (989e12 * step / 64)
    fixed = Deployment(**SERVE, mfu_decode=mfu)
    assert float(costs.tco(n, 1e12, fixed).dollars) == pytest.approx(float(costs.tco(n, 1e12, dep).dollars), rel=1e-5)


def test_compute_bound_limit_is_the_fixed_mfu_at_prefill_mfu():
    roof = Deployment(**SERVE, batch=1e7, context=0.0)
    fixed = Deployment(**SERVE, mfu_decode=0.5)
    for n in (1e9, 1e11):
        assert float(costs.tco(n, 1e12, roof).dollars) == pytest.approx(float(costs.tco(n, 1e12, fixed).dollars), rel=1e-5)


def np_roofline_optimum(target, dep):
    """The least-dollar plan on the iso-loss curve by a dense float64 grid in log D."""
    E, A, B, al, be = (np.float64(x) for x in P)
    log_d = np.linspace(np.log(1e10), np.log(1e16), 400_001)
    rest = target - E - B * np.exp(-be * log_d)
    ok = rest > 0
    n = np.where(ok, (A / np.where(ok, rest, 1.0)) ** (1 / al), np.inf)
    cost = np.array([np_dollars(a, np.exp(b), dep)[0] if np.isfinite(a) else np.inf for a, b in zip(n[::20], log_d[::20])])
    i = int(np.argmin(cost)) * 20
    window = slice(max(i - 40, 0), i + 41)
    fine = np.array([np_dollars(a, np.exp(b), dep)[0] for a, b in zip(n[window], log_d[window])])
    j = window.start + int(np.argmin(fine))
    return n[j], np.exp(log_d[j]), fine.min()


@pytest.mark.parametrize("dep", CASES[:3])
def test_cost_optimum_against_a_grid(dep):
    with jax.enable_x64(True):
        best = costs.cost_optimal(P, 2.0, dep)
        n, d = float(best.n), float(best.d)
    want_n, want_d, want_cost = np_roofline_optimum(2.0, dep)
    assert float(law.loss(P, n, d)) == pytest.approx(2.0, rel=1e-9)
    assert np_dollars(n, d, dep)[0] <= want_cost * (1 + 1e-9)
    assert d == pytest.approx(want_d, rel=1e-3) and n == pytest.approx(want_n, rel=1e-3)


def test_crossover_moves_with_batch():
    """Batching amortises the weight reads: the optimum is nearer Chinchilla at batch 64."""
    plans = {b: costs.cost_optimal(P, 2.0, Deployment(**SERVE, batch=b, context=2048.0)) for b in (1.0, 64.0)}
    chinchilla = optima.optimal_for_loss(P, 2.0)
    assert float(plans[1.0].n) < float(plans[64.0].n) < float(chinchilla.n)


def _ext(u, v):
    law_params = law.LawParams(*(np.float32(x) for x in P))
    domain = np.array([21.0, 9.5, 10.5], np.float32)  # the plans below lie beyond it
    return ExtrapolatedLaw(law_params, np.float32(u), np.float32(v), np.float32(0.0), domain)


def test_extrapolation_draw_without_drift_is_the_law_roofline_optimum():
    dep = Deployment(**SERVE, batch=8.0, context=2048.0)
    want = costs.cost_optimal(_ext(0, 0).law, 2.0, dep)
    got = kernels.optimum((_ext(0.0, 0.0), dep), 2.0, "cost")
    np.testing.assert_array_equal([got.n, got.d], [want.n, want.d])


def test_extrapolation_draw_with_drift_minimises_roofline_dollars():
    """With a drift the plan is searched: it reaches the target under the draw's loss, and
    no plan on a grid of token counts that reaches it is cheaper by the roofline."""
    dep = Deployment(**SERVE, batch=8.0, context=2048.0)
    theta = _ext(0.01, 0.1)
    got = kernels.optimum((theta, dep), 2.0, "cost")
    log_n, log_d = np.log(float(got.n)), np.log(float(got.d))
    assert float(np.exp(extrapolated_log_loss(theta, log_n, log_d))) == pytest.approx(2.0, rel=1e-4)
    grid = np.linspace(log_d - 2.0, log_d + 2.0, 201)
    grid_n = np.asarray(jax.vmap(lambda x: extrapolated_optima.params_for_loss(theta, x, np.log(2.0)))(grid), np.float64)
    costs_on_grid = [np_dollars(np.exp(a), np.exp(b), dep)[0] for a, b in zip(grid_n, grid) if np.isfinite(a)]
    assert np_dollars(float(got.n), float(got.d), dep)[0] <= min(costs_on_grid) * (1 + 1e-4)
    # and the drift moved it off the law's plan
    assert abs(float(got.d) / float(costs.cost_optimal(theta.law, 2.0, dep).d) - 1) > 1e-3


def test_roofline_checks_name_the_field():
    with pytest.raises(ValueError, match="deployment.context.*batch"):
        costs.tco(1e9, 1e12, Deployment(context=100.0))
    with pytest.raises(ValueError, match="deployment.batch"):
        costs.tco(1e9, 1e12, Deployment(batch=0.5))
    with pytest.raises(ValueError, match="deployment.memory_bandwidth"):
        costs.tco(1e9, 1e12, Deployment(batch=1.0, memory_bandwidth=0.0))
    with pytest.raises(ValueError, match="roofline"):
        costs.weighted_inference_tokens(Deployment(**SERVE, batch=4.0))
    assert Deployment().decode == "mfu" and Deployment(batch=2.0).decode == "roofline"


def test_build_deployment_fills_the_serving_chip():
    dep, described = sweep.build_deployment(hardware="a100", precision="bf16", inference_hardware="H200",
                                            inference_precision="fp8", decode="roofline", batch=32.0)  # fmt: skip
    assert (dep.batch, dep.memory_bandwidth, dep.bytes_per_weight) == (32.0, 4.8e12, 1.0)
    assert described["decode"] == "roofline" and described["memory_bandwidth"] == 4.8e12
    with pytest.raises(ValueError, match="decode"):
        sweep.build_deployment(hardware="h100", precision="bf16", batch=4.0)
    with pytest.raises(ValueError, match="memory_bandwidth"):
        sweep.build_deployment(hardware="h100", precision="bf16", inference_peak_flops=1e15, decode="roofline")




def test_cli_tco_roofline(capsys):
    argv = ["tco", "--target-loss", "2.0", "--queries", "1e10", "--input-tokens", "1000", "--output-tokens", "250",
            "--uncertainty", "law", "--draws", "101", "--json"]  # fmt: skip
    code, out, err = run(capsys, [*argv, "--decode", "roofline", "--batch", "64", "--context", "4096", "--memory-bandwidth", "4e12"])
    assert code == 0, err
    doc = json.loads(out)
    dep = doc["deployment"]
    assert (dep["decode"], dep["batch"], dep["context"], dep["memory_bandwidth"]) == ("roofline", 64.0, 4096.0, 4e12)
    plan = doc["targets"][0]["inference_optimal"]
    median_n, median_d = plan["n"][1], plan["d"][1]
    # serving GPU-hours rise with N alone: their median (of 101 draws, an order statistic) is
    # the median plan's, by hand
    roof = Deployment(**SERVE, batch=64.0, context=4096.0, memory_bandwidth=4e12, bytes_per_weight=2.0)
    _, serve_h = np_dollars(median_n, median_d, roof)
    assert plan["inference_gpu_hours"][1] == pytest.approx(serve_h, rel=1e-5)
    code, _, err = run(capsys, [*argv, "--batch", "64"])
    assert code == 2 and "--batch need --decode roofline" in err


def test_sweep_toml_roofline(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[grid]\ntarget_loss = 2.0\nbatch = [1, 64]\n'
        '[deployment]\ndecode = "roofline"\ncontext = 4096\nmemory_bandwidth = 4.8e12\n'
        "queries = 1e10\ninput_tokens = 1000\noutput_tokens = 250\n"
    )
    scenarios = sweep.load_scenarios(path)
    assert scenarios.deployment.memory_bandwidth == 4.8e12 and scenarios.described["decode"] == "roofline"
    bad = tmp_path / "b.toml"
    bad.write_text("[grid]\ntarget_loss = 2.0\nbatch = [1, 64]\n[deployment]\nqueries = 1e10\ninput_tokens = 1000\n")
    with pytest.raises(ValueError, match="grid.batch needs deployment.decode"):
        sweep.load_scenarios(bad)
