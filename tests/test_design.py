"""next_runs: importance-reweighted preposterior analysis, against float64 NumPy/SciPy."""

import math

import jax
import numpy as np
import pytest
from scipy import stats

import chinplan
from chinplan.decide import design
from chinplan.engine import kernels

POST = None


def posterior():
    global POST
    if POST is None:
        idata = chinplan.default_posterior().to_arviz().isel(draw=slice(0, 250))  # 1,000 draws
        POST = chinplan.Posterior(idata)
    return POST


def _np_weighted_quantile(values, weights, q):
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(np.asarray(weights, np.float64)[order])
    return values[order][np.minimum(np.searchsorted(cum, q * cum[-1], side="left"), len(values) - 1)]


def test_weighted_quantile_matches_the_inverse_weighted_cdf():
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = rng.standard_normal(301)
        weights = rng.gamma(0.5, size=301)
        weights /= weights.sum()
        order = np.argsort(values)
        got = np.asarray(design.weighted_quantile(jax.numpy.asarray(values[order]), jax.numpy.asarray(weights[order])[None], jax.numpy.asarray([0.05, 0.5, 0.95])))
        want = [_np_weighted_quantile(values, weights, q) for q in (0.05, 0.5, 0.95)]
        np.testing.assert_allclose(got[0], want, rtol=1e-6)
    # equal weights: the order statistic ceil(q S)
    values = np.arange(1.0, 101.0)
    got = np.asarray(design.weighted_quantile(jax.numpy.asarray(values), jax.numpy.full((1, 100), 0.01), jax.numpy.asarray([0.05, 0.5, 0.95])))
    np.testing.assert_allclose(got[0], [5.0, 50.0, 95.0])


def test_expected_band_after_a_run_matches_a_float64_reweighting():
    post = posterior()
    n, d = np.array([3e8, 2e9]), np.array([5e9, 2e10])
    key = jax.random.key(3)
    result = design.next_runs(post, target=1e24, budget=1e21, candidates=(n, d), key=key, num_outcomes=16)
    # the same outcomes, drawn as next_runs draws them
    mean, replicate = post.sample_log_loss(np.log(n), np.log(d), key=key)
    truth = np.asarray(jax.random.choice(jax.random.fold_in(key, 1), post.num_draws, (16,), replace=False))
    outcomes = replicate[truth]
    theta = post.extrapolated_params()
    log_nstar = np.log10(np.asarray(jax.vmap(lambda th: kernels.plan(th, 1e24)["n"])(theta), np.float64))
    sigma, nu = post.draws("sigma").astype(np.float64), post.draws("nu").astype(np.float64)
    lo0, hi0 = np.quantile(log_nstar, [0.05, 0.95], method="inverted_cdf")
    assert result.table["now"].iloc[0] == pytest.approx(hi0 - lo0, abs=2e-6)
    for c in range(2):  # inside the fitted runs: the scale is sigma alone
        widths, ess = [], []
        for o in range(16):
            logw = stats.t.logpdf(outcomes[o, c], df=nu, loc=mean[:, c], scale=sigma)
            w = np.exp(logw - logw.max())
            w /= w.sum()
            widths.append(_np_weighted_quantile(log_nstar, w, 0.95) - _np_weighted_quantile(log_nstar, w, 0.05))
            ess.append(1.0 / np.sum(w**2))
        row = result.table[(result.table.params == n[c])].iloc[0]
        assert row["expected_after"] == pytest.approx(np.mean(widths), abs=1e-4)
        assert row["ess_mean"] == pytest.approx(np.mean(ess), rel=1e-3)
        assert row["decades_beyond"] == 0.0


def test_runs_teach_something_and_batches_fit_the_budget():
    post = posterior()
    result = design.next_runs(post, target=1e24, budget=3e20, key=jax.random.key(0), k=3, num_outcomes=16)
    table = result.table
    assert (table["flops"] <= 3e20 * (1 + 1e-9)).all() and (table["tokens"] >= table["params"]).all()
    assert table["gain"].iloc[0] > 0 and table["gain"].is_monotonic_decreasing
    # a run's outcome cannot make the band wider on average by much (reweighting only)
    assert (table["expected_after"] < table["now"] * 1.05).all()
    chosen = result.chosen
    assert len(chosen) == 3 and chosen["flops"].sum() <= 3e20 * (1 + 1e-9)
    # the first pick is the table's best, or a larger run within the simulation's error of it (the batch rule)
    best = table.iloc[0]
    first = table[(table["params"] == chosen.iloc[0]["params"]) & (table["tokens"] == chosen.iloc[0]["tokens"])].iloc[0]
    assert first["expected_after"] <= best["expected_after"] + 0.01 and first["flops"] >= best["flops"]
    assert len({(p, t) for p, t in zip(chosen["params"], chosen["tokens"])}) == 3
    assert chosen["expected_after"].is_monotonic_decreasing  # each pick narrows it further
    again = design.next_runs(post, target=1e24, budget=3e20, key=jax.random.key(0), k=3, num_outcomes=16)
    assert again.table.equals(result.table)  # same key, same answer


def test_other_objectives_and_bad_inputs():
    post = posterior()
    n, d = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    loss = design.next_runs(post, objective="loss", target=(70e9, 1.4e12), budget=1e21, candidates=(n, d), key=jax.random.key(0), num_outcomes=8)
    assert loss.units == "nats" and (loss.table["now"] > 0).all()
    prob = design.next_runs(post, objective="prob-target", target=(70e9, 1.4e12, 1.95), budget=1e21, candidates=(n, d), key=jax.random.key(0), num_outcomes=8)
    p = float(np.mean(np.asarray(jax.vmap(lambda th: kernels.loss(th, 70e9, 1.4e12) <= 1.95)(post.extrapolated_params()))))
    assert prob.table["now"].iloc[0] == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)), rel=1e-4)
    custom = design.next_runs(post, objective=lambda th: kernels.plan(th, 1e23)["d"], target=None, budget=1e21, candidates=(n, d), key=jax.random.key(0), num_outcomes=8)
    assert (custom.table["now"] > 0).all()
    with pytest.raises(ValueError, match="objective"):
        design.next_runs(post, objective="nope", target=1e24, budget=1e21, key=jax.random.key(0))
    with pytest.raises(ValueError, match="budget"):
        design.next_runs(post, target=1e24, budget=1e10, candidates=(n, d), key=jax.random.key(0))
    with pytest.raises(ValueError, match="target"):
        design.next_runs(post, objective="loss", target=1e24, budget=1e21, candidates=(n, d), key=jax.random.key(0))


def test_reweight_is_the_normalised_likelihood_of_the_new_runs():
    post = posterior()
    n, d, loss = np.array([1e9, 3e9]), np.array([2e10, 6e10]), np.array([2.6, 2.45])
    w = design.reweight(post, n, d, loss)
    mean, _ = post.sample_log_loss(np.log(n), np.log(d), key=jax.random.key(0))
    sigma, nu = post.draws("sigma").astype(np.float64), post.draws("nu").astype(np.float64)
    logw = sum(stats.t.logpdf(np.log(loss[r]), df=nu, loc=mean[:, r], scale=sigma) for r in range(2))
    want = np.exp(logw - logw.max())
    np.testing.assert_allclose(w, want / want.sum(), rtol=2e-3, atol=1e-9)
    with pytest.raises(ValueError, match="loss"):
        design.reweight(post, n, d, [2.6, -1.0])


def test_next_runs_command_json_table_and_plot(tmp_path, capsys):
    import json

    from chinplan.cli import main

    plot = tmp_path / "next.png"
    argv = ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "-k", "2", "--outcomes", "8", "--json", "--plot", str(plot)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["objective"] == "nstar" and out["uncertainty"] == "extrapolation" and out["plot"] == str(plot)
    gains = [c["width_now"] - c["expected_width_after"] for c in out["candidates"]]
    assert gains == sorted(gains, reverse=True)
    assert {"params", "tokens", "flops", "width_now", "expected_width_after", "gain_per_flop"} <= set(out["candidates"][0])
    assert len(out["chosen"]) == 2 and sum(c["flops"] for c in out["chosen"]) <= 1e21 * (1 + 1e-9)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["next-runs", "--target-compute", "1e24", "--budget", "1e21", "--outcomes", "8"]) == 0
    text = capsys.readouterr().out
    assert "run(s) to buy" in text and all(len(line) <= 80 for line in text.splitlines() if not line.startswith("4000"))
    assert main(["next-runs", "--target-compute", "1e24", "--budget", "1e21", "--objective", "prob-target"]) == 2
    assert "--target-loss" in capsys.readouterr().err


def test_prob_lower_loss_objective_is_the_entropy_of_the_comparison(capsys):
    import json

    from chinplan.cli import main

    post = posterior()
    target = (8e9, 15e12, 70e9, 1.4e12)
    result = design.next_runs(post, objective="prob-lower-loss", target=target, budget=1e21, candidates=(np.array([1e8]), np.array([2e9])),
                              key=jax.random.key(0), num_outcomes=8)  # fmt: skip
    p = float(np.mean(np.asarray(jax.vmap(lambda th: kernels.lower_loss(th, *target))(post.extrapolated_params()))))
    want = -(p * math.log(p) + (1 - p) * math.log(1 - p)) if 0 < p < 1 else 0.0
    assert result.table["now"].iloc[0] == pytest.approx(want, abs=1e-4)
    argv = ["next-runs", "--target-compute", "1e24", "--budget", "1e20", "--outcomes", "8", "--objective", "prob-lower-loss", "--json"]
    assert main([*argv, "--designs", "8B:15T", "70B:1.4T"]) == 0
    assert json.loads(capsys.readouterr().out)["objective"] == "prob-lower-loss"
    assert main(argv) == 2 and "--designs" in capsys.readouterr().err
