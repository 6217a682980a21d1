"""Human numbers in and out (chinplan.format): 70B, 1.4T, $1.2M, 5.8e23 FLOPs, band cells."""

import math
import subprocess
import sys

import pytest

from chinplan.format import (
    band_cell,
    deployment_line,
    human_count,
    human_dollars,
    human_flops,
    parse_design,
    parse_human,
    percent,
    quantile_label,
    quantile_name,
    sci,
    short_sci,
)


@pytest.mark.parametrize(
    "text, value",
    [("70B", 70e9), ("1.4T", 1.4e12), ("15t", 15e12), ("2.5K", 2500.0), ("0.5M", 5e5), ("1Q", 1e15),
     ("1e9", 1e9), ("1000", 1000.0), ("7e1B", 70e9), (" 3 B ", 3e9)],
)  # fmt: skip
def test_parse_human(text, value):
    assert parse_human(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["70X", "B", "", "1.2.3T", "1e9B9"])
def test_parse_human_rejects(text):
    with pytest.raises(ValueError, match="is not a number"):
        parse_human(text)


def test_parse_design():
    assert parse_design("70B:1.4T") == ("70B:1.4T", 70e9, 1.4e12)
    assert parse_design("chinchilla=70e9:1.4e12") == ("chinchilla", 70e9, 1.4e12)
    for bad in ("70B", "70B:1T:2", "0:1T", "70X:1T", "a=70B"):
        with pytest.raises(ValueError, match="design"):
            parse_design(bad)


def test_human_formats():
    assert human_count(70e9) == "70B"
    assert human_count(1.4e12) == "1.4T"
    assert human_count(3.4e3) == "3.4K"
    assert human_count(float("inf")) == "inf"
    assert human_flops(5.76e23) == "5.76e23 FLOPs"
    assert human_flops(1e24) == "1e24 FLOPs"
    assert human_flops(math.inf) == "inf FLOPs"
    assert human_dollars(1.2e6) == "$1.2M"
    assert human_dollars(3.4e3) == "$3.4K"
    assert human_dollars(512) == "$512"
    assert human_dollars(0.25) == "$0.25"
    assert human_dollars(-2e9) == "-$2B"
    assert human_dollars(math.inf) == "$inf"


def test_scientific_and_percent_cells():
    assert sci(5.76e23) == "5.76e23" and sci(0.0) == "0" and sci(math.inf) == "inf"
    assert short_sci(1.4e12) == "1.4e12" and short_sci(7e10) == "7e10"
    assert percent(0.123) == "12.3%" and percent(-1e-9) == "0.0%"


def test_band_cells_and_quantile_names():
    assert band_cell([1e9, 2e9, 3e9], human_count) == "2B (1B - 3B)"
    assert band_cell([1.0, 2.0], lambda v: f"{v:g}") == "1 / 2"
    assert quantile_label([0.05, 0.5, 0.95]) == "50% (5% - 95%)"
    assert quantile_label([0.1, 0.9]) == "10%/90%"
    assert [quantile_name(q) for q in (0.05, 0.5, 0.95)] == ["q5", "q50", "q95"]


def test_deployment_line_shows_ranges_and_serving_hardware():
    described = {
        "hardware": "h100", "precision": "bf16", "inference_hardware": "a100", "inference_precision": "bf16",
        "peak_flops": 989e12, "mfu_train": {"uniform": [0.3, 0.5]}, "mfu_prefill": 0.5, "mfu_decode": 0.1,
        "price": 2.0, "inference_price": {"lognormal": [1.5, 0.25]}, "queries": 1e9,
        "input_tokens": 400.0, "output_tokens": 100.0,
    }  # fmt: skip
    line = deployment_line(described)
    assert line.startswith("H100 bf16 (989 TFLOP/s peak), serving on A100 bf16")
    assert "MFU 30%-50% train" in line and "$2 train / lognormal(1.5, 0.25) serve" in line
    assert line.endswith("1B queries x 500 tokens (400 in + 100 out)")


def test_format_needs_no_numerical_stack():
    code = "import sys, chinplan.format; print([m for m in ('jax', 'matplotlib') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
