"""The embedded dataset and the validation of user runs tables."""

import numpy as np
import pandas as pd
import pytest

import chinplan
from chinplan import datasets
from chinplan.inference.runs import MIN_RUNS, load_runs, runs_arrays


def test_chinchilla_dataset_shape_and_columns():
    runs = datasets.chinchilla()
    assert list(runs.columns) == ["params", "tokens", "flops", "loss"]
    assert len(runs) == 245
    assert all(runs[c].dtype == np.float64 for c in runs.columns)
    np.testing.assert_allclose(runs.flops, 6 * runs.params * runs.tokens, rtol=1e-12)
    assert runs.params.min() > 5e7 and runs.params.max() < 2e10
    assert runs.flops.min() > 1e18 and runs.flops.max() < 2e22
    assert runs.loss.min() > 2.0 and runs.loss.max() < 5.1


def test_shipped_csv_is_byte_identical_to_source():
    with datasets.chinchilla_path().open("rb") as fh:
        import hashlib

        assert hashlib.sha256(fh.read()).hexdigest() == datasets.CHINCHILLA_SHA256


def test_drop_outliers_removes_the_five_high_loss_runs():
    full, kept = datasets.chinchilla(), datasets.chinchilla(drop_outliers=True)
    assert len(kept) == 240
    dropped = full[~full.loss.isin(kept.loss)]
    assert len(dropped) == 5
    assert (dropped.loss >= 3.446).all()
    assert np.allclose(dropped.flops, 1e19, rtol=0.1)


def _frame(n=10):
    rng = np.random.default_rng(1)
    params = 10 ** rng.uniform(7, 10, n)
    tokens = 10 ** rng.uniform(9, 11, n)
    return pd.DataFrame({"params": params, "tokens": tokens, "loss": rng.uniform(2, 4, n)})


def test_load_runs_derives_flops_or_tokens():
    frame = _frame()
    from_tokens = load_runs(frame)
    np.testing.assert_allclose(from_tokens.flops, 6 * frame.params * frame.tokens)
    with_flops = frame.assign(flops=6 * frame.params * frame.tokens).drop(columns="tokens")
    from_flops = load_runs(with_flops)
    np.testing.assert_allclose(from_flops.tokens, frame.tokens, rtol=1e-12)


def test_load_runs_reads_csv_and_aliases(tmp_path):
    path = tmp_path / "runs.csv"
    frame = _frame().rename(columns={"params": "N", "tokens": "D", "loss": "Loss"})
    frame.to_csv(path, index=False)
    runs = load_runs(path)
    assert list(runs.columns) == ["params", "tokens", "flops", "loss"]
    # The raw Epoch AI file is accepted as it is.
    raw = load_runs(datasets.chinchilla_path())
    np.testing.assert_allclose(raw.values, datasets.chinchilla().values)


def test_int64_counts_are_kept_exact():
    frame = pd.DataFrame(
        {"params": np.full(8, 8_000_000_000, np.int64), "tokens": np.full(8, 15_000_000_000_000, np.int64), "loss": 2.0}
    )
    runs = load_runs(frame)
    assert runs.tokens.iloc[0] == 15e12
    assert np.all(np.isfinite(runs_arrays(runs).log_d))


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("params", -1.0, "must be positive"),
        ("params", 0.0, "must be positive"),
        ("tokens", np.nan, "not finite"),
        ("tokens", np.inf, "not finite"),
        ("loss", 0.0, "must be positive"),
        ("loss", -2.0, "must be positive"),
        ("loss", "abc", "not a number"),
    ],
)
def test_bad_value_names_column_and_row(column, value, message):
    frame = _frame().astype(object)
    frame.loc[3, column] = value
    with pytest.raises(ValueError, match=rf"column '{column}', row 3: .*{message}"):
        load_runs(frame)


@pytest.mark.parametrize("missing", ["params", "loss"])
def test_missing_column(missing):
    with pytest.raises(ValueError, match=f"no '{missing}' column"):
        load_runs(_frame().drop(columns=missing))


def test_missing_tokens_and_flops():
    with pytest.raises(ValueError, match="'tokens' or a 'flops' column"):
        load_runs(_frame().drop(columns="tokens"))


def test_too_few_runs():
    with pytest.raises(ValueError, match=f"has {MIN_RUNS - 1} runs; the model needs at least {MIN_RUNS}"):
        load_runs(_frame(MIN_RUNS - 1))
    assert len(load_runs(_frame(MIN_RUNS))) == MIN_RUNS


def test_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_runs(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_runs(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("params,tokens,loss\n")
    with pytest.raises(ValueError, match="has 0 runs"):
        load_runs(header_only)


def test_public_names():
    assert chinplan.load_runs is load_runs
