"""Wall-clock and cluster sizing (issue 14, capability 14): days to train on K GPUs and the GPUs
needed to train in T days, against hand computation, in plan, tco and compare (JSON)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chinplan import costs
from chinplan.cli import main

DRAWS = ["--draws", "50", "--uncertainty", "law"]


def run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, argv):
    code, out, err = run(capsys, [*argv, *DRAWS, "--json"])
    assert code == 0, err
    return json.loads(out)


def hand_hours(flops, peak=989e12, mfu=0.4):
    return flops / (3600.0 * peak * mfu)


def test_days_and_gpus_by_hand():
    hours = hand_hours(6 * 8e9 * 15e12)  # Llama-3-8B-like: 505,561 H100-hours at 40% MFU
    assert hours == pytest.approx(505_561.0, abs=1.0)
    assert costs.training_days(hours, 2048) == pytest.approx(hours / 24 / 2048, rel=1e-15)
    assert costs.gpus_for_days(hours, 30) == math.ceil(hours / 720)
    assert costs.gpus_for_days(24.0 * 30 * 7, 30) == 7  # exactly 7 GPUs' worth: no rounding up
    np.testing.assert_array_equal(costs.training_days([np.inf, 48.0], 2), [np.inf, 1.0])
    with pytest.raises(ValueError, match="train_gpu_hours"):
        costs.training_days(-1.0, 8)
    with pytest.raises(ValueError, match="gpus"):
        costs.training_days(10.0, 0)
    with pytest.raises(ValueError, match="days"):
        costs.gpus_for_days(10.0, -3)


def test_plan_reports_training_time(capsys):
    doc = run_json(capsys, ["plan", "--compute", "1e24", "--gpus", "1024", "--days", "90", "--hardware", "A100"])
    assert doc["training_hardware"]["hardware"] == "a100"
    training = doc["plans"][0]["training"]
    hours = hand_hours(1e24, peak=312e12)  # the budget is the training FLOPs: no band
    np.testing.assert_allclose(training["gpu_hours"], [hours] * 3, rtol=1e-6)
    np.testing.assert_allclose(training["days_on_gpus"], [hours / 24 / 1024] * 3, rtol=1e-6)
    assert training["gpus_for_days"] == [math.ceil(hours / 24 / 90)] * 3
    assert (training["gpus"], training["days"]) == (1024, 90.0)
    code, out, err = run(capsys, ["plan", "--compute", "1e24", *DRAWS, "--gpus", "64"])
    assert code == 0 and "days on 64 GPUs" in out
    code, _, err = run(capsys, ["plan", "--compute", "1e24", "--mfu", "0.3"])
    assert code == 2 and "--gpus" in err


def test_compare_and_tco_report_training_time(capsys):
    doc = run_json(capsys, ["compare", "8B:15T", "70B:1.4T", "--gpus", "2048", "--days", "30"])
    for entry, flops in zip(doc["designs"], (6 * 8e9 * 15e12, 6 * 70e9 * 1.4e12)):
        hours = hand_hours(flops)
        np.testing.assert_allclose(entry["train_gpu_hours"], [hours] * 3, rtol=1e-5)
        np.testing.assert_allclose(entry["training"]["days_on_gpus"], [hours / 24 / 2048] * 3, rtol=1e-5)
        assert entry["training"]["gpus_for_days"] == [math.ceil(hours / 720)] * 3
    doc = run_json(capsys, ["tco", "--target-loss", "2.0", "--queries", "1e9", "--tokens-per-query", "500", "--gpus", "512"])
    target = doc["targets"][0]
    for group, key in (("optimal", "inference_optimal"), ("chinchilla", "chinchilla")):
        hours = np.asarray(target[key]["train_gpu_hours"])
        np.testing.assert_allclose(hours, hand_hours(np.asarray(target[key]["train_flops"])), rtol=1e-5)
        np.testing.assert_allclose(target["training"][group]["days_on_gpus"], hours / 24 / 512, rtol=1e-12)
        assert "gpus_for_days" not in target["training"][group]
