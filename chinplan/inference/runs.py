"""Runs tables: load and validate (N, D, C, loss) from a CSV file or a DataFrame.

A runs table has one row per training run and the columns ``params`` (N), ``tokens`` (D),
``flops`` (C) and ``loss``. Either ``tokens`` or ``flops`` may be omitted; the other is
derived with C = 6 N D (Kaplan et al. 2020, §2.1). Every value is checked on the host, in
float64, before anything reaches JAX, so integer token counts never overflow int32.
"""

from __future__ import annotations

import datetime
import io
import math
import os
import re
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from chinplan import _checks
from chinplan.format import COLUMN_ALIASES, MIN_RUNS, RUNS_SCHEMA, parse_human  # noqa: F401  (re-exported)
from chinplan.law import FLOPS_PER_PARAM_TOKEN, DataConstrainedParams

__all__ = ["load_runs", "check_identifiable", "RunsArrays", "runs_arrays", "ConfigArrays", "config_arrays", "MIN_RUNS", "COLUMN_ALIASES", "RUNS_SCHEMA"]

class ConfigArrays(NamedTuple):
    """A data-constrained runs table grouped by configuration (N, D, U), float64 NumPy arrays.

    ``log_loss`` is the mean log loss of a configuration's ``repeats`` runs (seed repeats)
    and ``within_ss`` their sum of squared deviations from it (0 for a single run).
    """

    log_n: np.ndarray
    log_d: np.ndarray
    log_u: np.ndarray
    log_loss: np.ndarray
    repeats: np.ndarray
    within_ss: np.ndarray


class RunsArrays(NamedTuple):
    """The logs of a runs table as float64 NumPy arrays, ready for a fit."""

    log_n: np.ndarray
    log_d: np.ndarray
    log_loss: np.ndarray


def _canonical_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Each canonical column's source column; ValueError when two columns claim one name
    (``params`` and ``N``, or ``loss`` and ``Loss ``): which one the fit reads would be a guess."""
    found: dict[str, list] = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        for name, aliases in COLUMN_ALIASES.items():
            if key in aliases:
                found.setdefault(name, []).append(col)
    for name, cols in found.items():
        if len(cols) > 1:
            raise ValueError(
                f"runs table is ambiguous: columns {[str(c) for c in cols]} all name {name!r} "
                f"(accepted spellings: {list(COLUMN_ALIASES[name])}); keep one"
            )
    return {name: cols[0] for name, cols in found.items()}


def _human_sizes(values: pd.Series) -> pd.Series:
    """Cells written like 70M or 1.4T as numbers (a size column); other cells as they are."""

    def convert(value):
        if isinstance(value, str):
            try:
                return parse_human(value)
            except ValueError:
                return value  # reported, with its row, by _check_column
        return value

    return values.map(convert)


def _row_label(label):
    """A row's index label as a message names it: a whole float as an integer ("row 36742300",
    not "row 36742300.0"), a NumPy scalar as the Python value."""
    label = label.item() if isinstance(label, np.generic) else label
    if isinstance(label, float) and label.is_integer():
        return int(label)
    return label


def _shown(cell) -> str:
    """A cell as a one-line message shows it: its Python value's repr (not "np.float64(-1.0)"),
    or, for a nested object (a Series, an array) or a long text, its type and size."""
    cell = cell.item() if isinstance(cell, np.generic) else cell
    text = repr(cell)
    if "\n" not in text and len(text) <= 60:
        return text
    if isinstance(cell, str):
        return f"{cell[:50]!r}... ({len(cell)} characters)"
    return f"a {type(cell).__name__}" + (f" of {len(cell)} values" if hasattr(cell, "__len__") else "")


def _check_column(values: pd.Series, name: str, row_labels) -> np.ndarray:
    if name != "loss" and (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        values = _human_sizes(values).astype(object)
    if (pd.api.types.is_bool_dtype(values) or pd.api.types.is_complex_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
            or pd.api.types.is_timedelta64_dtype(values)):  # fmt: skip
        raise ValueError(
            f"column {name!r} has dtype {values.dtype}; it must hold real numbers (finite and > 0)"
        )
    if values.dtype == object:  # cells of any type: a bool or complex cell is not a number
        bad = next(((i, v) for i, v in zip(row_labels, values) if not _is_number(v)), None)  # (label, cell): labels may repeat
        if bad is not None:
            raise ValueError(f"column {name!r}, row {bad[0]}: value {_shown(bad[1])} is not a number")
    try:
        array = pd.to_numeric(values, errors="raise").to_numpy(np.float64)
    except OverflowError:  # Python ints beyond int64 (10**24 is fine; 10**400 is not finite)
        array = np.array([_float_or_inf(v) for v in values], np.float64)
    except (ValueError, TypeError):
        label, cell = _first_unparsed(values, row_labels)
        digits = isinstance(cell, str) and any(c.isdigit() for c in cell)  # full-width, 3_5
        hint = " (write plain ASCII digits, as 35 or 3.5e10)" if digits else ""
        raise ValueError(f"column {name!r}, row {label}: value {_shown(cell)} is not a number{hint}") from None
    for check, what in ((~np.isfinite(array), "is not finite"), (array <= 0, "must be positive")):
        if check.any():
            i = int(np.argmax(check))
            raise ValueError(f"column {name!r}, row {row_labels[i]}: value {_shown(array[i])} {what}")
    return array


def _first_unparsed(values: pd.Series, row_labels):
    """The row label and cell of the first cell pandas cannot read as a number (full-width digits, ``3_5``
    and ``Fraction`` are numbers to Python's float, not to a table)."""
    for i, v in zip(row_labels, values):
        if not _is_number(v):
            return i, v
        try:
            pd.to_numeric(pd.Series([v], dtype=object), errors="raise")
        except (ValueError, TypeError):
            return i, v
    return row_labels[0], values.iloc[0]


_TIMES = (datetime.date, datetime.time, datetime.timedelta, np.datetime64, np.timedelta64)


def _is_number(value) -> bool:
    if isinstance(value, (bool, np.bool_, complex, np.complexfloating, *_TIMES)):
        return False
    try:
        float(value)
        return True
    except OverflowError:  # an integer too large for a float: a number (refused as not finite)
        return True
    except (TypeError, ValueError):
        return False


def _float_or_inf(value) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


#: The largest runs file read (bytes): about five million runs, far beyond any fit chinplan makes.
MAX_RUNS_FILE_BYTES = 256 << 20
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar", ".tgz")


def _read_csv(source) -> pd.DataFrame:
    """A runs CSV from a local file (or an open file object): never a URL, never decompressed,
    at most :data:`MAX_RUNS_FILE_BYTES`; every row as many fields as the header, no header twice."""
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else repr(source)
    if isinstance(source, (str, os.PathLike)):
        if _URL.match(name):
            raise ValueError(f"runs file {name!r} is a URL; chinplan reads local files only: download it first")
        if name.lower().endswith(_COMPRESSED):
            raise ValueError(f"runs file {name!r} is compressed; chinplan reads plain CSV files only: decompress it first")
        try:
            with open(source, "rb") as handle:
                data = handle.read(MAX_RUNS_FILE_BYTES + 1)
        except FileNotFoundError:
            raise ValueError(f"runs file {name!r} does not exist") from None
        except OSError as err:  # a directory, no permission, ...
            raise ValueError(f"runs file {name!r} cannot be read: {err}") from None
    else:
        data = source.read(MAX_RUNS_FILE_BYTES + 1)
        data = data.encode() if isinstance(data, str) else data
    if len(data) > MAX_RUNS_FILE_BYTES:
        raise ValueError(f"runs file {name!r} is larger than {MAX_RUNS_FILE_BYTES:,} bytes (the most chinplan reads, about five million runs)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            header = pd.read_csv(io.BytesIO(data), header=None, nrows=1, dtype=str, index_col=False, compression=None)
            frame = pd.read_csv(io.BytesIO(data), index_col=False, compression=None)
    except pd.errors.EmptyDataError:
        raise ValueError(f"runs file {name!r} is empty") from None
    except pd.errors.ParserWarning:  # pandas would take the first column as an index and shift the rest
        raise ValueError(f"runs file {name!r}: its rows have more fields than its header (columns: {list(header.iloc[0])}); "
                         "every row must have one value per column") from None  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"runs file {name!r} is not a readable CSV: {err}") from None
    cells = [str(c) for c in header.iloc[0]]
    twice = next((c for i, c in enumerate(cells) if c in cells[:i]), None)
    if twice is not None:
        raise ValueError(f"runs file {name!r} has the column {twice!r} twice in its header ({cells}); keep one")
    return frame


def load_runs(path_or_frame: str | os.PathLike | pd.DataFrame, *, min_runs: int = MIN_RUNS) -> pd.DataFrame:
    """Loads a runs table and validates it.

    Args:
      path_or_frame: a CSV path or a DataFrame with columns ``params`` and ``loss`` and at
        least one of ``tokens`` and ``flops`` (aliases such as ``N``, ``D``, ``C``,
        ``Model Size`` and ``Training FLOP`` are accepted).
      min_runs: the fewest runs accepted (default: the Bayesian model's 7 parameters).

    Returns:
      A new DataFrame with float64 columns params, tokens, flops, loss.

    Raises:
      ValueError: a path that does not exist or is not a readable CSV, an argument that is
        neither a path nor a DataFrame, a missing column, a boolean or complex column, a
        value that is not a finite positive number (naming the column and the row), fewer
        than ``min_runs`` runs, or ``min_runs`` not an integer >= 1.
    """
    min_runs = _checks.integer("min_runs", min_runs)
    if isinstance(path_or_frame, pd.DataFrame):
        frame = path_or_frame
        duplicated = [str(c) for c in frame.columns[frame.columns.duplicated()]]
        if duplicated:
            raise ValueError(f"runs table has the column {duplicated[0]!r} twice (columns: {[str(c) for c in frame.columns]}); keep one")
    elif isinstance(path_or_frame, (str, os.PathLike)) or hasattr(path_or_frame, "read"):
        frame = _read_csv(path_or_frame)
    else:
        raise ValueError(
            f"path_or_frame must be a CSV path or a pandas DataFrame, got {type(path_or_frame).__name__}"
        )
    columns = _canonical_columns(frame)
    for name in ("params", "loss"):
        if name not in columns:
            raise ValueError(f"runs table has no {name!r} column (columns: {list(frame.columns)})")
    if "tokens" not in columns and "flops" not in columns:
        raise ValueError(f"runs table needs a 'tokens' or a 'flops' column (columns: {list(frame.columns)})")
    rows = [_row_label(label) for label in frame.index]
    data = {name: _check_column(frame[col], name, rows) for name, col in columns.items()}
    if "tokens" in data and "flops" in data:  # both given: they must tell one story (C ~ 6 N D)
        ratio = data["flops"] / (FLOPS_PER_PARAM_TOKEN * data["params"] * data["tokens"])
        bad = np.flatnonzero((ratio < 0.5) | (ratio > 2.0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"columns 'flops' and 'tokens', row {rows[i]}: flops {float(data['flops'][i])!r} is {float(ratio[i]):.3g} x "
                f"6 * params * tokens (valid range [0.5, 2]: C = 6 N D up to attention and counting conventions); "
                "a units mistake? give one of the two columns, or fix it"
            )
    if "tokens" not in data:
        data["tokens"] = data["flops"] / (FLOPS_PER_PARAM_TOKEN * data["params"])
    if "flops" not in data:
        data["flops"] = FLOPS_PER_PARAM_TOKEN * data["params"] * data["tokens"]
    if len(rows) < min_runs:
        raise ValueError(f"runs table has {len(rows)} runs; the model needs at least {min_runs}")
    names = ("params", "tokens", "flops", "loss")
    if "unique_tokens" in data:
        over = data["unique_tokens"] > data["tokens"] * (1.0 + 1e-9)
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise ValueError(
                f"column 'unique_tokens', row {rows[i]}: value {float(data['unique_tokens'][i])!r} exceeds the run's "
                f"tokens {float(data['tokens'][i])!r}; valid range (0, tokens] (epochs = tokens / unique_tokens >= 1)"
            )
        names += ("unique_tokens",)
    return pd.DataFrame({name: data[name] for name in names})


def check_identifiable(runs: pd.DataFrame) -> None:
    """ValueError, before any sampling, when the runs cannot separate the law's terms: the size
    term A/N^alpha needs at least 2 model sizes and the data term B/D^beta 2 token counts
    (identical rows, or one model size, leave a flat direction NUTS cannot sample)."""
    for column, term in (("params", "model sizes (the size term A / N^alpha)"), ("tokens", "token counts (the data term B / D^beta)")):
        distinct = np.unique(runs[column].to_numpy(np.float64))
        if distinct.size < 2:
            raise ValueError(
                f"runs: all {len(runs)} runs have {column} = {float(distinct[0]):.6g}; the law needs runs of at least 2 "
                f"distinct {term} to be identified (valid: >= 2 distinct values of {column!r})"
            )


def config_arrays(runs: pd.DataFrame) -> ConfigArrays:
    """Groups a validated runs table with ``unique_tokens`` by configuration (N, D, U).

    Runs with the same parameters, tokens and unique tokens (seed repeats) become one
    configuration: their mean log loss, their count and their within-configuration sum of
    squares, in first-appearance order.
    """
    if "unique_tokens" not in runs:
        raise ValueError(f"runs table has no 'unique_tokens' column (columns: {list(runs.columns)}); the data-constrained law needs it")
    logs = pd.DataFrame({
        "log_n": np.log(runs["params"].to_numpy(np.float64)),
        "log_d": np.log(runs["tokens"].to_numpy(np.float64)),
        "log_u": np.log(runs["unique_tokens"].to_numpy(np.float64)),
        "log_loss": np.log(runs["loss"].to_numpy(np.float64)),
    })
    grouped = logs.groupby(["log_n", "log_d", "log_u"], sort=False)["log_loss"]
    mean, size = grouped.mean(), grouped.size()
    ss = grouped.var(ddof=0) * size  # sum of squared deviations from the configuration's mean
    keys = np.asarray(mean.index.to_list(), np.float64).reshape(-1, 3)
    return ConfigArrays(keys[:, 0], keys[:, 1], keys[:, 2], mean.to_numpy(np.float64), size.to_numpy(np.float64), ss.to_numpy(np.float64))


def runs_arrays(runs: pd.DataFrame) -> RunsArrays:
    """log N, log D and log loss of a validated runs table (float64, on the host)."""
    return RunsArrays(
        np.log(runs["params"].to_numpy(np.float64)),
        np.log(runs["tokens"].to_numpy(np.float64)),
        np.log(runs["loss"].to_numpy(np.float64)),
    )


# --------------------------------------------------------------------------------------
# Repeated data: the epochs the runs of a data-constrained posterior covered
# --------------------------------------------------------------------------------------


class EpochRangeWarning(UserWarning):
    """A plan repeats its data more epochs than the runs the law was fitted to."""


def draws_of(posterior) -> DataConstrainedParams:
    """The draws of a data-constrained posterior (``posterior.params``); a clear error otherwise."""
    if getattr(posterior, "law", None) != "data_constrained":
        raise ValueError(
            "posterior must be fitted with law='data_constrained' (chinplan.fit(runs, law='data_constrained', key=...) "
            f"or chinplan.decide.data_constrained.default_posterior()), got {getattr(posterior, 'law', type(posterior).__name__)!r}"
        )
    return posterior.params


def fitted_epochs(posterior) -> float:
    """The most epochs any fitted run repeated its data (the law's fitted range)."""
    draws_of(posterior)
    const = posterior.to_arviz().constant_data
    return float(np.max(np.exp(np.asarray(const["log_d"]) - np.asarray(const["log_u"]))))


def warn_beyond(posterior, epochs, what: str) -> None:
    """Warns (:class:`EpochRangeWarning`) when any of ``epochs`` exceeds the fitted range."""
    limit = fitted_epochs(posterior)
    epochs = np.asarray(epochs, np.float64)
    if np.any(epochs > limit * (1 + 1e-6)):
        warnings.warn(
            f"{what} repeats the data {float(np.max(epochs)):.3g} epochs, beyond the {limit:.3g} epochs of the runs the "
            "law was fitted to: there the law's errors grow several-fold, in both directions (docs/DATA_CONSTRAINED.md)",
            EpochRangeWarning,
            stacklevel=3,
        )
