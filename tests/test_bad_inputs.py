"""Bad input, everywhere: one row per bad input of docs/BAD_INPUTS.md.

The doc's table is written from these rows (``python tests/test_bad_inputs.py`` runs every
row and rewrites it) and :func:`test_doc_lists_every_row` checks the two agree: the same rows
in the same order and sections, each call as written here, each quoted message matching the
row's regex, each flagged result described by the row's ``says``.

Every row is a public call with one bad input and what it must get: a ``ValueError`` (or the
named exception type) whose message matches a regex naming the argument, or a flagged result
(``inf`` for an unreachable plan, a ``nan_fraction``, ``found=False``, ...) checked by a
predicate. Rows marked ``xfail(strict=True)`` are known gaps in files this change could not
touch; each reason says what is wrong and where, and the row turns into a pass (and the strict
xfail into an error) when the gap is fixed.

Law, optima, costs and arch functions called with concrete bad values (NaN, inf, a negative
or zero count, a target at or below E, a constant out of its domain) raise a ``ValueError``
naming the argument, the value and the valid range. Under a caller's ``jit``/``vmap``/``grad``
(tracers) they check nothing and return NaN/inf by IEEE rules: ``-traced`` rows and
:func:`test_checked_functions_jit_vmap_grad_with_tracers` show it.

``fit`` rows never sample: ``chinplan.fit.sample_nuts`` is replaced by a function that fails
with "fit started sampling", so a row whose input ``fit`` does not reject before sampling
fails fast instead of running NUTS.
"""

from __future__ import annotations

import functools
import math
import os
import re
from importlib import resources
from typing import Any, Callable
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import chinplan
from chinplan.decide import regret
from chinplan import _files, arch, costs, law, optima
from chinplan.decide import risk as decide
from chinplan.inference import huber
from chinplan.costs import Deployment
from chinplan.uncertain import LogNormal, LogUniform, Uniform
from chinplan.law import HOFFMANN_2022 as H
from chinplan.law import LawParams

# ----------------------------------------------------------------------------- shared inputs

_RNG = np.random.default_rng(5)
_DRAWS = 64
#: 64 draws around Hoffmann et al. 2022, E spread so that a target near E_MID splits the draws.
P = LawParams(
    E=(1.69 + 0.05 * _RNG.standard_normal(_DRAWS)).astype(np.float32),
    A=(406.4 * np.exp(0.05 * _RNG.standard_normal(_DRAWS))).astype(np.float32),
    B=(410.7 * np.exp(0.05 * _RNG.standard_normal(_DRAWS))).astype(np.float32),
    alpha=(0.34 + 0.01 * _RNG.standard_normal(_DRAWS)).astype(np.float32),
    beta=(0.28 + 0.01 * _RNG.standard_normal(_DRAWS)).astype(np.float32),
)
E_MIN, E_MID = float(P.E.min()), float(np.median(P.E))
DEP = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0)
RANDOM_DEP = DEP._replace(queries=LogNormal(1e9, 0.5))
KEY = jax.random.key(0)
SHAPE = arch.TransformerShape(2, 512, 8, 1000)


def _num(value) -> str:
    """A value as the doc writes it: np.nan, np.inf, -np.inf, else its repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return "np.nan" if math.isnan(value) else "np.inf" if value > 0 else "-np.inf"
    return repr(value)


# Ten runs on the exact Hoffmann law: the Huber rows' data.
_HN = 10 ** _RNG.uniform(7, 10, 10)
_HD = 10 ** _RNG.uniform(9, 11, 10)
_HL = np.asarray(law.loss(H, _HN, _HD), np.float64)
_HGRID = np.array([[0.5, 6.0, 6.0, 0.3, 0.3]])  # one start: every Huber row shares one compile
_HKW = dict(grid=_HGRID, max_iter=5)


def _runs(n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"params": 10 ** rng.uniform(7, 10, n), "tokens": 10 ** rng.uniform(9, 11, n), "loss": rng.uniform(2, 4, n)}
    )


def _runs_with(column: str, value: Any, row: int = 3) -> pd.DataFrame:
    frame = _runs().astype(object)
    frame.loc[row, column] = value
    return frame


_GOOD_CSV = _runs().to_csv(index=False)
_CSV_ROWS = _GOOD_CSV.splitlines()


def _csv_with(cell_row: int, column: str, text: str) -> str:
    """The good CSV with one cell (data row ``cell_row``, 0-based) replaced by ``text``."""
    header = _CSV_ROWS[0].split(",")
    lines = list(_CSV_ROWS)
    cells = lines[cell_row + 1].split(",")
    cells[header.index(column)] = text
    lines[cell_row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- files


class Files:
    """Bad files, written once per module into a temporary directory."""

    def __init__(self, root):
        self.root = root

    def path(self, name: str) -> str:
        return os.fspath(self.root / name)

    def text(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        return os.fspath(path)

    def link(self, name: str, target: str) -> str:
        """A symlink ``name`` to ``target`` (made once)."""
        path = self.root / name
        if not os.path.islink(path):
            os.symlink(target, path)
        return os.fspath(path)

    def hard_link(self, name: str, target: str) -> str:
        """A hard link ``name`` to ``target`` (made once)."""
        path = self.root / name
        if not path.exists():
            os.link(target, path)
        return os.fspath(path)

    def directory(self, name: str) -> str:
        (self.root / name).mkdir(exist_ok=True)
        return os.fspath(self.root / name)

    def posterior(self, kind: str) -> str:
        """A damaged posterior file of one ``kind``."""
        path = self.root / f"{kind}.nc"
        if path.exists():
            return os.fspath(path)
        source = resources.files("chinplan.datasets") / "chinchilla_posterior.nc"
        if kind in _CRAFTED:  # the shipped file with one HDF5 object added or replaced (h5py)
            import h5py

            path.write_bytes(source.read_bytes())
            with h5py.File(path, "a") as handle:
                _CRAFTED[kind](handle, self)
            return os.fspath(path)
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "truncated":
            data = source.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == "not_netcdf":
            path.write_text("params,tokens,loss\n1e9,2e10,2.5\n")
        elif kind == "many_draws":  # 1,600,001 draws declared, never written: a few KB on disk
            import h5py

            from chinplan.inference.posterior_file import MAX_DRAWS

            with h5py.File(path, "w") as handle:
                handle.create_dataset("posterior/alpha", shape=(1, MAX_DRAWS + 1), dtype="<f4", chunks=(1, 65536), compression="gzip")
        elif kind == "plain_netcdf":
            import xarray as xr

            xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
        else:
            idata = chinplan.Posterior.load(source).to_arviz().copy()
            if kind == "lacking_nu":
                idata.posterior = idata.posterior.drop_vars("nu")
            elif kind == "nan_alpha":
                idata.posterior["alpha"] = idata.posterior["alpha"] * np.nan
            elif kind == "extra_dim":  # a hierarchical posterior: alpha per group
                idata.posterior["alpha"] = idata.posterior["alpha"].expand_dims(group=3, axis=-1)
            elif kind == "renamed_dims":
                idata.posterior = idata.posterior.rename(chain="c", draw="sample")
            elif kind == "log_A_overflow":  # finite in float64, exp() is inf in float32
                idata.posterior["log_A"] = idata.posterior["log_A"] + 100.0
            elif kind == "negative_sigma":
                idata.posterior["sigma"] = -idata.posterior["sigma"]
            elif kind in _ABSURD:  # issue 26 class 4: typed right, values absurd
                group, attrs, variables = _ABSURD[kind]
                dataset = getattr(idata, group).copy()
                for name, value in variables.items():
                    values = value(dataset[name].values) if callable(value) else np.broadcast_to(value, dataset[name].shape)
                    dataset[name] = (dataset[name].dims, values.astype(dataset[name].dtype))
                dataset.attrs.update(attrs)
                setattr(idata, group, dataset)
                if kind == "chains_apart":  # no fit record: a missing `converged` was taken as a pass
                    idata.posterior.attrs.pop("converged", None)
                    idata.posterior.attrs.pop("fit_attempts", None)
            else:
                raise ValueError(kind)
            idata.to_netcdf(os.fspath(path), engine="h5netcdf")
        return os.fspath(path)


#: Posterior files of the right types with absurd values (issue 26, class 4): kind -> (group,
#: attributes to set, variables to replace by a value broadcast over the draws).
_ABSURD = {
    "domain_low": ("extrapolation", {"extrapolation_domain": "[-30, -30, -30]"}, {}),
    "domain_huge": ("extrapolation", {"extrapolation_domain": "[1e300, 1e300, 1e300]"}, {}),
    "log_n_nan": ("constant_data", {}, {"log_n": np.nan}),
    "u_huge": ("extrapolation", {}, {"u": 1e30}),
    "log_E_88": ("posterior", {}, {"log_E": 88.0}),
    "all_fixed": ("posterior", {"fixed_sites": "log_E,log_A,log_B,alpha,beta,sigma,nu"}, {}),
    "fit_attempts_not_json": ("posterior", {"fit_attempts": "{bad", "converged": 0}, {}),
    "converged_maybe": ("posterior", {"converged": "maybe"}, {}),
    "chains_apart": ("posterior", {}, {"alpha": lambda a: a + np.where(np.arange(a.shape[0]) == 0, 0.02, 0.0)[:, None]}),  # chain 0 elsewhere
}


def _external(handle, files):  # alpha's values are another file's bytes
    secret = files.text("secret.txt", "SECRET" * 4000)
    shape = handle["posterior/alpha"].shape
    del handle["posterior/alpha"]
    handle.create_dataset("posterior/alpha", shape=shape, dtype="<f4", external=[(secret, 0, 4 * int(np.prod(shape)))])


def _virtual(handle, files):
    import h5py

    layout = h5py.VirtualLayout(shape=(4, 1000), dtype="f4")
    layout[:] = h5py.VirtualSource(files.posterior("truncated"), "posterior/alpha", shape=(4, 1000))
    handle.create_virtual_dataset("posterior/mapped", layout)


def _soft_link(handle, files):
    import h5py

    handle["posterior/gamma"] = h5py.SoftLink("/posterior/alpha")


def _huge(handle, files):  # 8 TB declared, a few KB on disk
    handle.create_dataset("posterior/huge", shape=(10**6, 10**6), dtype="f8", chunks=(1, 1024), compression="gzip")


_CRAFTED = {"external_storage": _external, "virtual_dataset": _virtual, "soft_link": _soft_link, "huge_declared": _huge}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return Files(tmp_path_factory.mktemp("bad_inputs"))


@functools.lru_cache(maxsize=1)
def _huber_fit():
    return huber.huber_fit(_HN, _HD, _HL, **_HKW)


def _fit(runs=None, **kwargs):
    """``chinplan.fit`` with sampling replaced by a failure: validation must come first."""
    settings = dict(key=KEY, num_draws=10, num_warmup=10, num_chains=1, progress=False)
    settings.update(kwargs)

    def no_sampling(*args, **kw):
        raise AssertionError("fit started sampling before rejecting its input")

    with mock.patch("chinplan.fit.sample_nuts", no_sampling):
        return chinplan.fit(_runs() if runs is None else runs, **settings)


def _latin1(f) -> str:
    """A scenario file in Latin-1, not UTF-8."""
    path = f.path("latin1.toml")
    with open(path, "wb") as handle:
        handle.write("[grid]\ncompute = 1e22 # caf\xe9\n".encode("latin-1"))
    return path


def _fifo(f) -> str:
    """A FIFO (a node that is not a regular file) in the temporary directory."""
    path = f.path("pipe.nc")
    if not os.path.exists(path):
        os.mkfifo(path)
    return path


def _read_only(f) -> str:
    path = f.text("locked.nc", "x")
    os.chmod(path, 0o444)
    return path


def _next_runs(**kwargs):
    from chinplan.decide import design

    return design.next_runs(chinplan.default_posterior(), target=1e22, budget=1e20, key=KEY, **kwargs)


def _dc():
    from chinplan.decide import data_constrained

    return data_constrained


from chinplan.decide import sweep as _sw  # noqa: E402
from chinplan.decide import resume  # noqa: E402

#: The manifest of the sweeps the parts-folder rows make (any dict identifies a sweep).
_SWEEP = {"x64": False}


def _parts(f, name: str, add: dict | None = None) -> str:
    """``<name>.csv.parts``: the parts folder of an interrupted sweep (manifest ``_SWEEP``, chunk
    0 of bands (3, 2) saved, the lock released), then the files of ``add`` (name -> bytes) written
    into it."""
    directory = f.path(f"{name}.csv.parts")
    if not os.path.exists(directory):
        with resume.Checkpoint(directory, _SWEEP, chunk=2, resume=False) as checkpoint:
            checkpoint.save(0, {"n": np.ones((3, 2))})
        for file, data in (add or {}).items():
            with open(os.path.join(directory, file), "wb") as handle:
                handle.write(data)
    return directory


def _resume(directory: str, manifest: dict = _SWEEP):
    """What ``--resume`` reads of a parts folder: chunk 0, verified (the lock released after)."""
    with resume.Checkpoint(directory, manifest, chunk=2, resume=True) as checkpoint:
        return checkpoint.load(0, {"n": (3, 2)})


def _while_locked(directory: str, call: Callable):
    """``call(directory)`` while another sweep holds that parts folder's lock."""
    with resume.Checkpoint(directory, _SWEEP, chunk=2, resume=False):
        return call(directory)


def _npz(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


#: A sweep of 40,000 scenarios x all 13 outputs x 1001 quantiles (issue 26, class 5).
_WIDE_TOML = ("[sweep]\noutputs = [" + ", ".join(repr(name) for name in _sw.SWEEP_OUTPUTS) + "]\nquantiles = ["
              + ", ".join(f"{v:.4f}" for v in np.linspace(0, 1, 1001)) + "]\n[grid]\ncompute = {logspace = [20, 24, 200]}\n"
              "queries = {logspace = [6, 12, 200]}\n[deployment]\ninput_tokens = 400\noutput_tokens = 100\n")  # fmt: skip


def _many_runs(count: int) -> pd.DataFrame:
    """``count`` distinct runs (sizes and ratios spread), a valid table of any length."""
    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(7, 10, count)
    return pd.DataFrame({"params": n, "tokens": 20 * n * rng.uniform(0.5, 2, count), "loss": rng.uniform(2, 4, count)})


def _one_draw():
    """A posterior of one draw (one chain x one draw), as arviz holds it."""
    import arviz as az

    return az.from_dict(posterior={k: np.ones((1, 1)) for k in ("log_E", "log_A", "log_B", "alpha", "beta")})


def _plots():
    from chinplan import plots

    return plots


# ----------------------------------------------------------------------------- predicates


def _all(x, test) -> bool:
    return all(bool(np.all(test(np.asarray(leaf)))) for leaf in jax.tree.leaves(x))


def is_nan(x) -> bool:
    return _all(x, np.isnan)


def is_posinf(x) -> bool:
    return _all(x, np.isposinf)


def _unreachable_plan(a) -> bool:  # Allocation(inf, inf, E): never NaN
    return is_posinf((a.n, a.d)) and np.isclose(float(a.loss), float(H.E), rtol=1e-6)


def _split_draws(result) -> bool:
    prob, fraction = (np.asarray(x) for x in result)
    return bool(np.all(np.isfinite(prob)) and 0.0 < float(fraction) < 1.0)


def _inf_band_never_nan(bands) -> bool:
    values = np.asarray(bands.values)
    return bool(not np.isnan(values).any() and np.isinf(values[-1]) and np.isfinite(values[0]))


def _cost_band_never_nan(ds) -> bool:
    values = np.stack([ds[v].values for v in ("n", "d", "dollars")])
    return bool(not np.isnan(values).any() and np.isinf(ds.dollars.values[-1, 0]) and np.isfinite(ds.dollars.values[:, 1]).all())


def _nan_fraction(expected: float, field: str = "loss", omit: bool = False) -> Callable:
    def check(bands) -> bool:
        fraction = float(getattr(bands.nan_fraction, field))
        values = np.asarray(getattr(bands.values, field))
        ok_values = np.all(np.isfinite(values)) if omit else np.all(np.isnan(values))
        return bool(np.isclose(fraction, expected) and ok_values)

    return check


# ----------------------------------------------------------------------------- the table

ROWS = []
#: Row id -> the "Gets" text of a flagged row in docs/BAD_INPUTS.md.
SAYS: dict[str, str] = {}


_SECTION = [""]
#: Row id -> the section of docs/BAD_INPUTS.md it is listed under.
SECTIONS: dict[str, str] = {}
#: Row id -> the call as the doc writes it, for rows built in a loop (others: from the source).
CALL_TEXT: dict[str, str] = {}


def section(title: str) -> None:
    """Starts a new section of the table (a ``###`` heading of docs/BAD_INPUTS.md)."""
    _SECTION[0] = title


def raises(row_id: str, call: Callable, match: str, exc=ValueError, *, gap: str | None = None):
    """A row whose call must raise ``exc`` with a message matching ``match``."""
    _add(row_id, call, exc, match, None, gap)


def flags(row_id: str, call: Callable, check: Callable, *, says: str, gap: str | None = None):
    """A row whose call must return a result for which ``check(result)`` is True; ``says`` is
    what docs/BAD_INPUTS.md writes in its "Gets" column."""
    SAYS[row_id] = says
    _add(row_id, call, None, None, check, gap)


def _add(row_id, call, exc, match, check, gap):
    assert row_id not in SECTIONS, f"duplicate row id {row_id}"
    SECTIONS[row_id] = _SECTION[0]
    marks = [pytest.mark.xfail(strict=True, reason=f"gap in {gap}")] if gap else []
    ROWS.append(pytest.param(call, exc, match, check, id=row_id, marks=marks))


# --- load_runs: files --------------------------------------------------------------------
section("Runs tables: `load_runs`, `datasets`")
raises("load_runs/missing-file", lambda f: chinplan.load_runs(f.path("nope.csv")), r"runs file '.*nope\.csv' does not exist")
raises("load_runs/empty-file", lambda f: chinplan.load_runs(f.text("empty.csv", "")), r"runs file '.*empty\.csv' is empty")
raises("load_runs/header-only", lambda f: chinplan.load_runs(f.text("header.csv", "params,tokens,loss\n")),
       r"runs table has 0 runs; the model needs at least 7")
raises("load_runs/directory", lambda f: chinplan.load_runs(f.path("")), r"runs file '.*' cannot be read")
raises("load_runs/binary-file", lambda f: chinplan.load_runs(f.posterior("truncated")), r"runs file '.*' is not a readable CSV")
raises("load_runs/ragged-rows", lambda f: chinplan.load_runs(f.text("ragged.csv", _GOOD_CSV + "1,2,3,4,5\n")),
       r"runs file '.*ragged\.csv' is not a readable CSV")
raises("load_runs/wrong-columns", lambda f: chinplan.load_runs(f.text("cols.csv", _GOOD_CSV.replace("params", "size", 1))),
       r"runs table has no 'params' column \(columns: \['size', 'tokens', 'loss'\]\)")
raises("load_runs/missing-loss-column", lambda f: chinplan.load_runs(_runs().drop(columns="loss")), r"runs table has no 'loss' column")
raises("load_runs/no-tokens-or-flops", lambda f: chinplan.load_runs(_runs().drop(columns="tokens")),
       r"runs table needs a 'tokens' or a 'flops' column")
raises("load_runs/wrong-delimiter", lambda f: chinplan.load_runs(f.text("semi.csv", _GOOD_CSV.replace(",", ";"))),
       r"runs table has no 'params' column \(columns: \['params;tokens;loss'\]\)")
# --- load_runs: cells ----------------------------------------------------------------------
raises("load_runs/non-numeric-cell", lambda f: chinplan.load_runs(f.text("abc.csv", _csv_with(3, "loss", "abc"))),
       r"column 'loss', row 3: value 'abc' is not a number")
raises("load_runs/empty-cell", lambda f: chinplan.load_runs(f.text("blank.csv", _csv_with(3, "tokens", ""))),
       r"column 'tokens', row 3: value .*nan.* is not finite")
raises("load_runs/inf-cell", lambda f: chinplan.load_runs(f.text("inf.csv", _csv_with(3, "tokens", "inf"))),
       r"column 'tokens', row 3: value .*inf.* is not finite")
raises("load_runs/nan", lambda f: chinplan.load_runs(_runs_with("loss", np.nan)), r"column 'loss', row 3: .* is not finite")
raises("load_runs/zero", lambda f: chinplan.load_runs(_runs_with("params", 0.0)), r"column 'params', row 3: .* must be positive")
raises("load_runs/negative", lambda f: chinplan.load_runs(_runs_with("tokens", -1e9)), r"column 'tokens', row 3: .* must be positive")
raises("load_runs/bool-column", lambda f: chinplan.load_runs(_runs().assign(params=True)),
       r"column 'params' has dtype bool; it must hold real numbers")
raises("load_runs/bool-cell", lambda f: chinplan.load_runs(_runs_with("params", True)),
       r"column 'params', row 3: value True is not a number")
raises("load_runs/complex-column", lambda f: chinplan.load_runs(_runs().assign(loss=_runs().loss + 1j)),
       r"column 'loss' has dtype complex128")
raises("load_runs/list-cell", lambda f: chinplan.load_runs(_runs_with("loss", [1, 2])), r"column 'loss', row 3: value \[1, 2\] is not a number")
raises("load_runs/too-few-runs", lambda f: chinplan.load_runs(_runs(6)), r"runs table has 6 runs; the model needs at least 7")
raises("load_runs/empty-dataframe", lambda f: chinplan.load_runs(pd.DataFrame()), r"runs table has no 'params' column \(columns: \[\]\)")
raises("load_runs/int-argument", lambda f: chinplan.load_runs(123),
       r"path_or_frame must be a CSV path or a pandas DataFrame, got int")
raises("load_runs/ndarray-argument", lambda f: chinplan.load_runs(np.ones((10, 3))),
       r"path_or_frame must be a CSV path or a pandas DataFrame, got ndarray")
raises("load_runs/min-runs-zero", lambda f: chinplan.load_runs(_runs(), min_runs=0), r"min_runs must be an integer >= 1, got 0")
raises("load_runs/min-runs-bool", lambda f: chinplan.load_runs(_runs(), min_runs=True), r"min_runs must be an integer >= 1, got True")
raises("datasets/drop-outliers-string", lambda f: chinplan.datasets.chinchilla(drop_outliers="no"), r"drop_outliers")

# --- fit: input validation only (sampling is blocked) ---------------------------------------
section("`fit` (input validation only; sampling is blocked in the test)")
raises("fit/nan-in-runs", lambda f: _fit(_runs_with("loss", np.nan)), r"column 'loss', row 3: .* is not finite")
raises("fit/missing-runs-file", lambda f: _fit(f.path("nope.csv")), r"runs file '.*nope\.csv' does not exist")
raises("fit/num-draws-zero", lambda f: _fit(num_draws=0), r"num_draws must be an integer >= 1, got 0")
raises("fit/num-draws-float", lambda f: _fit(num_draws=2.5), r"num_draws must be an integer >= 1, got 2.5")
raises("fit/num-warmup-negative", lambda f: _fit(num_warmup=-1), r"num_warmup must be an integer >= 0, got -1")
raises("fit/num-chains-zero", lambda f: _fit(num_chains=0), r"num_chains must be an integer >= 1, got 0")
raises("fit/priors-unknown", lambda f: _fit(priors="flat"), r"priors must be one of .* got 'flat'")
raises("fit/law-unknown", lambda f: _fit(law="power"), r"law must be one of .* got 'power'")
raises("fit/likelihood-unknown", lambda f: _fit(likelihood="cauchy"), r"likelihood must be one of .* got 'cauchy'")
raises("fit/num-draws-bool", lambda f: _fit(num_draws=True), r"num_draws must be an integer >= 1, got True")
raises("fit/key-none", lambda f: _fit(key=None), r"\bkey\b")
raises("fit/key-int", lambda f: _fit(key=0), r"\bkey\b")
raises("fit/target-accept-above-1", lambda f: _fit(target_accept_prob=1.5), r"target_accept_prob")
raises("fit/target-accept-nan", lambda f: _fit(target_accept_prob=float("nan")), r"target_accept_prob")
raises("fit/chain-method-unknown", lambda f: _fit(chain_method="threads"), r"chain_method")

# --- Posterior.load -----------------------------------------------------------------------
section("`Posterior.load`")
raises("Posterior.load/missing-file", lambda f: chinplan.Posterior.load(f.path("missing.nc")),
       r"posterior file '.*missing\.nc' does not exist")
raises("Posterior.load/empty-file", lambda f: chinplan.Posterior.load(f.posterior("empty")),
       r"posterior file '.*empty\.nc'.*not a readable chinplan posterior")
raises("Posterior.load/truncated", lambda f: chinplan.Posterior.load(f.posterior("truncated")),
       r"posterior file '.*truncated\.nc' is not a readable chinplan posterior")
raises("Posterior.load/not-netcdf", lambda f: chinplan.Posterior.load(f.posterior("not_netcdf")),
       r"posterior file '.*not_netcdf\.nc' is not a readable chinplan posterior")
raises("Posterior.load/directory", lambda f: chinplan.Posterior.load(f.path("")),
       r"posterior file '.*' (is a directory|is not a readable chinplan posterior)")
raises("Posterior.load/no-posterior-group", lambda f: chinplan.Posterior.load(f.posterior("plain_netcdf")),
       r"posterior file '.*plain_netcdf\.nc' has no 'posterior' group")
raises("Posterior.load/lacking-variables", lambda f: chinplan.Posterior.load(f.posterior("lacking_nu")),
       r"posterior file '.*lacking_nu\.nc': posterior lacks the variables \['nu'\]")
raises("Posterior.load/none", lambda f: chinplan.Posterior.load(None), r"posterior file 'None' is not a readable chinplan posterior")
raises("Posterior.load/nan-draws", lambda f: chinplan.Posterior.load(f.posterior("nan_alpha")), r"alpha")

# --- law and optima: concrete bad values raise; traced ones keep IEEE semantics ------------------
section("Law and optima: concrete values raise, traced values keep IEEE results")
_POS = r" must be finite and > 0 \(valid range \(0, inf\)\), got "
_BELOW_E = r"target_loss must exceed the irreducible loss E \(valid range \(E, inf\), E = 1\.69337\), got "
raises("loss/nan-n", lambda f: chinplan.loss(H, np.nan, 1e10), r"\bn" + _POS + "nan")
flags("loss/nan-n-traced", lambda f: jax.jit(chinplan.loss)(H, np.nan, 1e10), is_nan, says="under `jax.jit`: NaN (IEEE)")
raises("loss/negative-n", lambda f: chinplan.loss(H, -1e9, 1e10), r"\bn" + _POS + r"-1000000000\.0")
flags("loss/negative-n-traced", lambda f: jax.jit(chinplan.loss)(H, -1e9, 1e10), is_nan, says="under `jax.jit`: NaN (IEEE: log of a negative count)")
raises("loss/zero-d", lambda f: chinplan.loss(H, 1e9, 0.0), r"\bd" + _POS + r"0\.0")
flags("loss/zero-d-traced", lambda f: jax.jit(chinplan.loss)(H, 1e9, 0.0), is_posinf, says="under `jax.jit`: +inf (B / 0^beta)")
flags("loss/empty", lambda f: chinplan.loss(H, np.ones(0), 1e10), lambda r: np.shape(r) == (0,),
      says="an empty array, shape (0,) (broadcasting rules)")
raises("loss/mismatched-shapes", lambda f: chinplan.loss(H, np.ones(3), np.ones(2)), r"Incompatible shapes for broadcasting")
raises("loss/string", lambda f: chinplan.loss(H, "1e9", 1e10), r"n must be a real number or an array of real numbers, got '1e9'")
raises("loss/complex", lambda f: chinplan.loss(H, 1e9 + 1j, 1e10), r"complex", (TypeError, ValueError))
raises("compute_optimal/nan", lambda f: chinplan.compute_optimal(H, np.nan), r"compute" + _POS + "nan")
flags("compute_optimal/nan-traced", lambda f: jax.jit(chinplan.compute_optimal)(H, np.nan), is_nan, says="under `jax.jit`: n, d, loss all NaN")
raises("compute_optimal/negative", lambda f: chinplan.compute_optimal(H, -1e22), r"compute" + _POS + r"-1e\+22")
flags("compute_optimal/negative-traced", lambda f: jax.jit(chinplan.compute_optimal)(H, -1e22), is_nan, says="under `jax.jit`: n, d, loss all NaN (IEEE)")
raises("compute_optimal/zero", lambda f: chinplan.compute_optimal(H, 0.0), r"compute" + _POS + r"0\.0")
flags("compute_optimal/zero-traced", lambda f: jax.jit(chinplan.compute_optimal)(H, 0.0),
      lambda a: float(a.n) == 0.0 and float(a.d) == 0.0 and is_posinf(a.loss), says="under `jax.jit`: n = d = 0, loss = +inf (the limit)")
flags("compute_optimal/tiny-budget", lambda f: chinplan.compute_optimal(H, 1.0),
      lambda a: 0 < float(a.n) < 1 and 0 < float(a.d) < 1 and np.isfinite(float(a.loss)),
      says="n ≈ 0.57 < 1 parameter, d ≈ 0.29 < 1 token, finite loss: mathematically fine for the pure law (the decision layer rejects it: see regret_compute rows)")
raises("compute_optimal/inf", lambda f: chinplan.compute_optimal(H, np.inf), r"compute" + _POS + "inf")
flags("compute_optimal/inf-traced", lambda f: jax.jit(chinplan.compute_optimal)(H, np.inf),
      lambda a: is_posinf((a.n, a.d)) and np.isclose(float(a.loss), float(H.E), rtol=1e-6), says="under `jax.jit`: n = d = +inf, loss = E (the limit)")
raises("optimal_for_loss/below-E", lambda f: chinplan.optimal_for_loss(H, 1.0), _BELOW_E + r"1\.0")
flags("optimal_for_loss/below-E-traced", lambda f: jax.jit(chinplan.optimal_for_loss)(H, 1.0), _unreachable_plan, says="under `jax.jit`: flagged: n = d = +inf, loss = E (unreachable; never NaN)")
raises("optimal_for_loss/nan", lambda f: chinplan.optimal_for_loss(H, np.nan), r"target_loss must be finite \(valid range \(-inf, inf\)\), got nan")
flags("optimal_for_loss/nan-traced", lambda f: jax.jit(chinplan.optimal_for_loss)(H, np.nan), lambda a: is_nan((a.n, a.d, a.loss)), says="under `jax.jit`: n, d, loss NaN (NaN in, NaN out)")
flags("params_for_loss/below-floor", lambda f: chinplan.params_for_loss(H, 1e10, 1.7), is_posinf,
      says="flagged: +inf (no N reaches the target with these tokens)")
raises("params_for_loss/nan-tokens", lambda f: chinplan.params_for_loss(H, np.nan, 2.5), r"\bd" + _POS + "nan")
flags("params_for_loss/nan-tokens-traced", lambda f: jax.jit(chinplan.params_for_loss)(H, np.nan, 2.5), is_nan, says="under `jax.jit`: NaN (NaN in, NaN out)")

# --- engine ------------------------------------------------------------------------------
section("Engine: `bands`, `expectation`, `probability`, `cvar`")
_co = optima.compute_optimal
raises("bands/nan-scenario", lambda f: chinplan.bands(_co, P, np.array([1e22, np.nan])),
       r"scenario_args\[0\] contains NaN at 1 of 2 positions")
raises("bands/string-scenario", lambda f: chinplan.bands(_co, P, "1e22"), r"scenario_args\[0\] must be a real number or an array of real numbers, got '1e22' \(dtype <U4\)")
raises("bands/object-scenario", lambda f: chinplan.bands(_co, P, np.array([1e22, None], dtype=object)),
       r"scenario_args\[0\] contains NaN at 1 of 2 positions")
raises("bands/complex-scenario", lambda f: chinplan.bands(_co, P, np.array([1e22 + 1j])), r"scenario_args\[0\]")
raises("bands/mismatched-shapes", lambda f: chinplan.bands(law.loss, P, np.ones((2, 3)), np.ones(2)),
       r"scenario arguments do not broadcast to a common shape \(scenario_args\[0\]: \(2, 3\), scenario_args\[1\]: \(2,\)\)")
raises("bands/empty-scenario", lambda f: chinplan.bands(_co, P, np.ones(0)), r"scenario arguments broadcast to an empty shape \(0,\)")
flags("bands/negative-budget", lambda f: chinplan.bands(_co, P, -1e22), _nan_fraction(1.0, "n"),
      says="flagged: quantiles NaN and `Bands.nan_fraction.n == 1.0`")
flags("bands/zero-budget", lambda f: chinplan.bands(_co, P, 0.0),
      lambda b: float(np.max(b.values.n)) == 0.0 and is_posinf(b.values.loss) and float(b.nan_fraction.loss) == 0,
      says="n = 0, loss = +inf in every quantile; nan_fraction 0 (IEEE limits, no NaN)")
flags("bands/inf-budget", lambda f: chinplan.bands(_co, P, np.inf),
      lambda b: is_posinf(b.values.n) and np.all(np.isfinite(b.values.loss)) and float(b.nan_fraction.n) == 0,
      says="n = +inf, loss = E quantiles (finite); nan_fraction 0")
raises("bands/single-law-params", lambda f: chinplan.bands(_co, H, 1e22), r"params leaf \.E is a scalar; params needs a leading draw axis")
raises("bands/zero-draws", lambda f: chinplan.bands(_co, LawParams(*(np.ones(0),) * 5), 1e22), r"params has zero draws")
raises("bands/mismatched-draws", lambda f: chinplan.bands(_co, P._replace(E=P.E[:3]), 1e22),
       r"params leaves must share a leading draw axis")
raises("bands/string-params", lambda f: chinplan.bands(_co, P._replace(E=np.array(["a"] * _DRAWS)), 1e22), r"params",
       ValueError)
flags("bands/nan-draw", lambda f: chinplan.bands(_co, P._replace(E=P.E.copy() * np.r_[np.nan, np.ones(_DRAWS - 1)]), 1e22),
      _nan_fraction(1 / _DRAWS),
      says="flagged: `nan_fraction.loss == 1/64`, loss quantiles NaN (nan_policy='propagate')")
flags("bands/nan-draw-omit", lambda f: chinplan.bands(_co, P._replace(E=P.E.copy() * np.r_[np.nan, np.ones(_DRAWS - 1)]), 1e22,
                                                      nan_policy="omit"), _nan_fraction(1 / _DRAWS, omit=True),
      says="flagged: `nan_fraction.loss == 1/64`, loss quantiles over the 63 finite draws")
flags("expectation/nan-draw", lambda f: chinplan.expectation(_co, P._replace(E=P.E.copy() * np.r_[np.nan, np.ones(_DRAWS - 1)]),
                                                             1e22), lambda a: is_nan(a.loss) and np.isfinite(float(a.n)),
      says="loss mean NaN (documented: a NaN draw makes the mean NaN); n mean finite")
raises("bands/q-above-1", lambda f: chinplan.bands(_co, P, 1e22, q=[0.5, 1.5]), r"q must lie in \[0, 1\], got \[0\.5, 1\.5\]")
raises("bands/q-negative", lambda f: chinplan.bands(_co, P, 1e22, q=-0.1), r"q must lie in \[0, 1\], got \[-0\.1\]")
raises("bands/q-nan", lambda f: chinplan.bands(_co, P, 1e22, q=np.nan), r"q must lie in \[0, 1\], got \[nan\]")
raises("bands/q-empty", lambda f: chinplan.bands(_co, P, 1e22, q=[]), r"q must be a scalar or a non-empty 1-D sequence")
raises("bands/q-2d", lambda f: chinplan.bands(_co, P, 1e22, q=[[0.5]]), r"q must be a scalar or a non-empty 1-D sequence")
raises("bands/q-string", lambda f: chinplan.bands(_co, P, 1e22, q="median"), r"\bq\b")
raises("bands/q-bool", lambda f: chinplan.bands(_co, P, 1e22, q=True), r"\bq\b")
raises("bands/nan-policy", lambda f: chinplan.bands(_co, P, 1e22, nan_policy="drop"),
       r"nan_policy must be one of \['omit', 'propagate'\], got 'drop'")
raises("bands/chunk-zero", lambda f: chinplan.bands(_co, P, 1e22, chunk_size=0), r"chunk_size must be an integer >= 1 or None, got 0")
raises("bands/chunk-negative", lambda f: chinplan.bands(_co, P, 1e22, chunk_size=-4), r"chunk_size must be an integer >= 1 or None, got -4")
raises("bands/chunk-float", lambda f: chinplan.bands(_co, P, 1e22, chunk_size=2.5), r"chunk_size must be an integer >= 1 or None, got 2\.5")
raises("bands/chunk-string", lambda f: chinplan.bands(_co, P, 1e22, chunk_size="8"), r"chunk_size must be an integer >= 1 or None, got '8'")
raises("bands/chunk-bool", lambda f: chinplan.bands(_co, P, 1e22, chunk_size=True), r"chunk_size")
raises("expectation/chunk-zero", lambda f: chinplan.expectation(_co, P, 1e22, chunk_size=0), r"chunk_size must be an integer >= 1 or None, got 0")
raises("probability/non-boolean-fn", lambda f: chinplan.probability(_co, P, 1e22), r"probability\(\) needs fn to return booleans", TypeError)
raises("probability/nan-scenario", lambda f: chinplan.probability(decide.loss_at_most, P, 1e9, 1e11, np.nan),
       r"scenario_args\[2\] contains NaN")
raises("cvar/level-above-1", lambda f: chinplan.cvar(_co, P, 1e22, level=1.5), r"level must lie in \[0, 1\], got 1\.5")
raises("cvar/level-nan", lambda f: chinplan.cvar(_co, P, 1e22, level=np.nan), r"level must lie in \[0, 1\], got nan")
raises("cvar/chunk-zero", lambda f: chinplan.cvar(_co, P, 1e22, chunk_size=0), r"chunk_size must be an integer >= 1 or None, got 0")
raises("cvar/level-string", lambda f: chinplan.cvar(_co, P, 1e22, level="high"), r"\blevel\b")

# --- decide ------------------------------------------------------------------------------
section("Decisions (`chinplan.decide`)")
raises("prob_target/nan-n", lambda f: chinplan.prob_target(P, [1e9, np.nan], [1e11, 1e11], 2.5),
       r"n must be finite and > 0 \(valid range \(0, inf\)\), got .*nan.* at 1 of 2 positions")
raises("prob_target/inf-d", lambda f: chinplan.prob_target(P, 1e9, np.inf, 2.5), r"d must be finite and > 0 .*got .*inf")
raises("prob_target/zero-n", lambda f: chinplan.prob_target(P, 0, 1e11, 2.5), r"n must be finite and > 0 .*got .*0")
raises("prob_target/negative-target", lambda f: chinplan.prob_target(P, 1e9, 1e11, -2.5), r"target_loss must be finite and > 0")
raises("prob_target/string-n", lambda f: chinplan.prob_target(P, "1e9", 1e11, 2.5), r"n must be a real number .*dtype <U3")
raises("prob_target/bool-n", lambda f: chinplan.prob_target(P, True, 1e11, 2.5), r"n must be a real number .*dtype bool")
raises("prob_target/complex-n", lambda f: chinplan.prob_target(P, np.array([1e9 + 1j]), 1e11, 2.5), r"n must be a real number .*complex128")
raises("prob_target/object-none-n", lambda f: chinplan.prob_target(P, np.array([1e9, None], dtype=object), 1e11, 2.5),
       r"n must be finite and > 0")
raises("prob_target/object-bool-n", lambda f: chinplan.prob_target(P, np.array([1e9, True], dtype=object), 1e11, 2.5),
       r"n must be a real number")
raises("prob_target/ragged-n", lambda f: chinplan.prob_target(P, [[1e9], [1e9, 2e9]], 1e11, 2.5), r"n must be a number or an array of numbers")
raises("prob_target/mismatched", lambda f: chinplan.prob_target(P, [1e9, 1e10, 1e11], [1e11, 1e12], 2.5),
       r"scenario arguments do not broadcast to a common shape \(n: \(3,\), d: \(2,\), target_loss: \(\)\)")
raises("prob_target/empty-n", lambda f: chinplan.prob_target(P, [], 1e11, 2.5), r"n must not be empty")
raises("prob_target/zero-unique-tokens", lambda f: chinplan.prob_target(P, 1e9, 1e11, 2.5, unique_tokens=0.0),
       r"unique_tokens must be finite and > 0")
raises("prob_target/target-below-every-E", lambda f: chinplan.prob_target(P, 1e9, 1e11, E_MIN - 0.01),
       r"target_loss must exceed the irreducible loss E of at least one posterior draw \(min E = [\d.]+\)")
flags("prob_target/target-below-some-E", lambda f: (chinplan.prob_target(P, 1e12, 1e14, E_MID),
                                                    decide.unreachable_fraction(P, E_MID)), _split_draws,
      says="flagged: a finite probability (those draws count as misses) and `decide.unreachable_fraction` strictly between 0 and 1")
raises("prob_target/params-nan-draw", lambda f: chinplan.prob_target(P._replace(E=P.E * np.r_[np.nan, np.ones(_DRAWS - 1)]), 1e9, 1e11, 2.5),
       r"params\.E must be finite and > 0 in every draw .* in 1 of 64 draws")
raises("prob_target/params-negative-alpha", lambda f: chinplan.prob_target(P._replace(alpha=-P.alpha), 1e9, 1e11, 2.5),
       r"params\.alpha must be finite and > 0 in every draw")
raises("prob_target/params-tuple", lambda f: chinplan.prob_target(tuple(P), 1e9, 1e11, 2.5),
       r"params must be a LawParams with a leading draw axis, got tuple")
raises("prob_target/params-single-law", lambda f: chinplan.prob_target(H, 1e9, 1e11, 2.5),
       r"params must have one leading draw axis, got E of shape \(\)")
raises("smallest_model/target-below-every-E", lambda f: chinplan.smallest_model(P, [2.5, E_MIN], 1e12),
       r"target_loss must exceed the irreducible loss E")
flags("smallest_model/target-below-some-E", lambda f: chinplan.smallest_model(P, E_MID + 0.01, 1e14, p=0.9), is_posinf,
      says="flagged: +inf (fewer than p·n draws can reach it), never NaN")
flags("params_for_loss-bands/target-below-some-floors", lambda f: chinplan.bands(decide.params_for_loss, P, 1e15, E_MID + 0.02),
      _inf_band_never_nan,
      says="flagged: upper quantile +inf, lower quantile finite, no NaN, nan_fraction 0")
raises("smallest_model/p-zero", lambda f: chinplan.smallest_model(P, 2.5, 1e12, p=0), r"p must lie in \(0, 1\], got 0\.0")
raises("smallest_model/p-above-1", lambda f: chinplan.smallest_model(P, 2.5, 1e12, p=1.5), r"p must lie in \(0, 1\], got 1\.5")
raises("smallest_model/p-nan", lambda f: chinplan.smallest_model(P, 2.5, 1e12, p=np.nan), r"p must lie in \(0, 1\], got nan")
raises("smallest_model/p-string", lambda f: chinplan.smallest_model(P, 2.5, 1e12, p="high"), r"p must be a number in \(0, 1\], got 'high'")
raises("smallest_model/p-bool", lambda f: chinplan.smallest_model(P, 2.5, 1e12, p=True), r"p must be a number in \(0, 1\], got True")
raises("smallest_model/tokens-nan", lambda f: chinplan.smallest_model(P, 2.5, np.nan), r"tokens must be finite and > 0")
raises("target_cost_bands/target-below-every-E", lambda f: chinplan.target_cost_bands(P, 1.0, DEP),
       r"target_loss must exceed the irreducible loss E")
raises("target_cost_bands/2d-target", lambda f: chinplan.target_cost_bands(P, [[2.5]], DEP), r"target_loss must be a scalar or 1-D")
flags("target_cost_bands/target-below-some-E", lambda f: chinplan.target_cost_bands(P, [E_MID, 2.5], DEP), _cost_band_never_nan,
      says="flagged: upper dollars quantile +inf for the split target, no NaN anywhere; the reachable target is finite")
flags("unreachable_fraction/target-below-every-E", lambda f: decide.unreachable_fraction(P, 1.0), lambda r: float(r) == 1.0,
      says="1.0 (allowed here: this is the counter)")
raises("regret_compute/negative", lambda f: chinplan.regret_compute(P, -1e22), r"compute must be finite and > 0")
raises("regret_compute/nan", lambda f: chinplan.regret_compute(P, [1e22, np.nan]), r"compute must be finite and > 0")
raises("regret_compute/too-small-for-one-parameter", lambda f: chinplan.regret_compute(P, 1.0),
       r"compute must be at least [\d.]+ FLOPs \(valid range \[[\d.]+, inf\)\): below that the compute-optimal plan has "
       r"fewer than 1 parameter or 1 token; got .*1\.0")
raises("regret_compute/sub-flop", lambda f: chinplan.regret_compute(P, [1e22, 1e-3]), r"compute must be at least [\d.]+ FLOPs")
raises("regret_compute/2d", lambda f: chinplan.regret_compute(P, [[1e22]]), r"compute must be a scalar or 1-D, got shape \(1, 1\)")
raises("regret_compute/grid-points-even", lambda f: chinplan.regret_compute(P, 1e22, grid_points=4),
       r"grid_points must be an odd integer >= 3, got 4")
raises("regret_compute/span-zero", lambda f: chinplan.regret_compute(P, 1e22, span=0), r"span must be a finite number > 0, got 0")
raises("cost_bands/distribution-without-key", lambda f: chinplan.cost_bands(P, 1e9, 1e11, RANDOM_DEP),
       r"key is required")
raises("cost_bands/int-key", lambda f: chinplan.cost_bands(P, 1e9, 1e11, RANDOM_DEP, key=0),
       r"key must be a JAX PRNG key \(jax\.random\.key\(0\) or jax\.random\.PRNGKey\(0\)\), got 0")
raises("cost_bands/float-array-key", lambda f: chinplan.cost_bands(P, 1e9, 1e11, RANDOM_DEP, key=np.array([1.0, 2.0])),
       r"key must be a JAX PRNG key")
raises("cost_bands/q-above-1", lambda f: chinplan.cost_bands(P, 1e9, 1e11, DEP, q=2.0), r"q must lie in \[0, 1\]")
raises("expected_cost/unknown-field", lambda f: chinplan.expected_cost(P, 1e9, 1e11, DEP, field="cost"), r"field must be one of .* got 'cost'")
raises("expected_cost/deployment-dict", lambda f: chinplan.expected_cost(P, 1e9, 1e11, {"queries": 1e9}),
       r"deployment must be a chinplan\.costs\.Deployment, got dict")
raises("expected_cost/negative-queries", lambda f: chinplan.expected_cost(P, 1e9, 1e11, DEP._replace(queries=-1.0)),
       r"deployment\.queries must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0")
raises("cost_cvar/level-above-1", lambda f: chinplan.cost_cvar(P, 1e9, 1e11, DEP, level=2.0), r"level must lie in \[0, 1\], got 2\.0")
raises("cost_cvar/level-string", lambda f: chinplan.cost_cvar(P, 1e9, 1e11, DEP, level="high"),
       r"level must be a number in \[0, 1\], got 'high'")
raises("prob_cheaper/2d", lambda f: chinplan.prob_cheaper(P, np.full((2, 2), 1e9), np.full((2, 2), 1e11), DEP),
       r"n and d must be 1-D arrays of the same length, got shapes \(2, 2\) and \(2, 2\)")
raises("prob_cheaper/mismatched", lambda f: chinplan.prob_cheaper(P, [1e9, 2e9], [1e11], DEP),
       r"n and d must be 1-D arrays of the same length, got shapes \(2,\) and \(1,\)")
raises("evaluate_designs/mismatched", lambda f: chinplan.evaluate_designs(P, [1e9, 2e9], [1e11, 1e12, 1e13], DEP),
       r"n and d must be 1-D arrays of the same length")
raises("evaluate_designs/level-nan", lambda f: chinplan.evaluate_designs(P, [1e9], [1e11], DEP, level=np.nan),
       r"level must lie in \[0, 1\], got nan")
raises("chance_constrained/unknown-objective", lambda f: chinplan.chance_constrained(P, [1e9], [1e11], 2.5, objective="time"),
       r"objective must be one of \['dollars', 'flops', 'n'\], got 'time'")
raises("chance_constrained/2d-grid", lambda f: chinplan.chance_constrained(P, [[1e9]], [1e11], 2.5), r"n_grid and d_grid must be 1-D")
raises("chance_constrained/target-below-every-E", lambda f: chinplan.chance_constrained(P, [1e9], [1e11], 1.0),
       r"target_loss must exceed the irreducible loss E")
flags("chance_constrained/no-feasible-design", lambda f: chinplan.chance_constrained(P, [1e6, 1e7], [1e8, 1e9], 2.5, deployment=DEP)[0],
      lambda choice: choice["found"] is False and math.isnan(choice["n"]),
      says="flagged: `choice.found is False` (n, d, ... NaN by design, with the flag)")

# --- costs -------------------------------------------------------------------------------
section("Costs: `Deployment`, `sample_deployment`, `tco`, optima, hardware")
_vd = costs.validate_deployment
raises("Deployment/negative-queries", lambda f: _vd(DEP._replace(queries=-1.0)), r"deployment\.queries must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0")
raises("Deployment/nan-price", lambda f: _vd(DEP._replace(price=np.nan)), r"deployment\.price must be finite and > 0 \(valid range \(0, inf\)\), got nan")
raises("Deployment/inf-queries", lambda f: _vd(DEP._replace(queries=np.inf)), r"deployment\.queries must be finite .*got inf")
raises("Deployment/inf-peak", lambda f: _vd(DEP._replace(peak_flops=np.inf)), r"deployment\.peak_flops must be finite and > 0 \(valid range \(0, inf\)\), got inf")
raises("Deployment/zero-peak", lambda f: _vd(DEP._replace(peak_flops=0.0)), r"deployment\.peak_flops must be finite and > 0 \(valid range \(0, inf\)\), got 0\.0")
raises("Deployment/zero-mfu", lambda f: _vd(DEP._replace(mfu_train=0.0)), r"deployment\.mfu_train must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 0\.0")
raises("Deployment/mfu-above-1", lambda f: _vd(DEP._replace(mfu_decode=1.5)), r"deployment\.mfu_decode must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 1\.5")
raises("Deployment/negative-inference-price", lambda f: _vd(DEP._replace(inference_price=-1.0)), r"deployment\.inference_price must be finite")
raises("Deployment/string-peak", lambda f: _vd(DEP._replace(peak_flops="fast")), r"deployment\.peak_flops must be a real number .*dtype <U4")
raises("Deployment/bool-mfu", lambda f: _vd(DEP._replace(mfu_train=True)), r"deployment\.mfu_train must be a real number .*dtype bool")
raises("Deployment/complex-mfu", lambda f: _vd(DEP._replace(mfu_train=np.array([0.5 + 1j]))), r"deployment\.mfu_train must be a real number .*complex128")
raises("Deployment/object-array", lambda f: _vd(DEP._replace(queries=np.array([1e9, None], dtype=object))), r"deployment\.queries must be finite")
raises("Deployment/not-a-deployment", lambda f: _vd({"queries": 1e9}), r"deployment must be a chinplan\.costs\.Deployment, got dict")
raises("Deployment/lognormal-negative-median", lambda f: _vd(DEP._replace(queries=LogNormal(-1.0, 0.2))),
       r"^LogNormal needs median > 0 and sigma >= 0")  # refused when built
raises("Deployment/lognormal-negative-sigma", lambda f: _vd(DEP._replace(price=LogNormal(2.0, -0.1))),
       r"^LogNormal needs median > 0 and sigma >= 0")
raises("Deployment/lognormal-nan-median", lambda f: _vd(DEP._replace(queries=LogNormal(np.nan, 0.2))),
       r"^LogNormal\.median must be finite")
raises("Deployment/uniform-lo-above-hi", lambda f: _vd(DEP._replace(mfu_prefill=Uniform(0.6, 0.4))), r"^Uniform needs lo <= hi")
raises("Deployment/uniform-outside-range", lambda f: _vd(DEP._replace(mfu_train=Uniform(0.0, 1.5))),
       r"deployment\.mfu_train: Uniform draws must lie in \(0, 1\]")
raises("Deployment/uniform-nan", lambda f: _vd(DEP._replace(mfu_train=Uniform(np.nan, 0.5))), r"^Uniform\.lo must be finite")
raises("Deployment/loguniform-zero-lo", lambda f: _vd(DEP._replace(queries=LogUniform(0.0, 1e9))),
       r"^LogUniform needs lo <= hi \(and lo > 0 if log-uniform\)")
raises("Deployment/loguniform-string", lambda f: _vd(DEP._replace(price=LogUniform("a", 2.0))), r"^LogUniform\.lo must be a real number")
raises("sample_deployment/zero-draws", lambda f: chinplan.sample_deployment(DEP, 0, key=KEY), r"num_draws must be an integer >= 1, got 0")
raises("sample_deployment/float-draws", lambda f: chinplan.sample_deployment(DEP, 2.5, key=KEY), r"num_draws must be an integer >= 1, got 2\.5")
raises("sample_deployment/nan-draws", lambda f: chinplan.sample_deployment(DEP, np.nan, key=KEY), r"num_draws must be an integer >= 1, got nan")
raises("sample_deployment/bool-draws", lambda f: chinplan.sample_deployment(DEP, True, key=KEY), r"num_draws must be an integer >= 1, got True")
raises("sample_deployment/string-draws", lambda f: chinplan.sample_deployment(DEP, "4", key=KEY), r"num_draws must be an integer >= 1, got '4'")
raises("sample_deployment/missing-key", lambda f: chinplan.sample_deployment(RANDOM_DEP, 4, key=None),
       r"key is required to sample distribution-valued leaves")
raises("sample_deployment/int-key", lambda f: chinplan.sample_deployment(RANDOM_DEP, 4, key=3), r"key must be a JAX PRNG key .*got 3")
raises("sample_deployment/bad-field", lambda f: chinplan.sample_deployment(DEP._replace(mfu_train=0.0), 4, key=KEY), r"deployment\.mfu_train")
raises("with_cost_draws/single-law", lambda f: chinplan.with_cost_draws(H, DEP), r"params must have one leading draw axis, got E of shape \(\)")
raises("with_cost_draws/missing-key", lambda f: chinplan.with_cost_draws(P, RANDOM_DEP), r"key is required to sample distribution-valued leaves")
raises("tco/unsampled-distribution", lambda f: chinplan.tco(1e9, 1e11, RANDOM_DEP),
       r"deployment\.queries is a LogNormal distribution; sample it first")
raises("tco/deployment-dict", lambda f: chinplan.tco(1e9, 1e11, {"queries": 1e9}), r"deployment must be a chinplan\.costs\.Deployment, got dict")
raises("tco/nan-n", lambda f: chinplan.tco(np.nan, 1e11, DEP), r"\bn" + _POS + "nan")
flags("tco/nan-n-traced", lambda f: jax.jit(chinplan.tco)(np.nan, 1e11, DEP).dollars, is_nan, says="under `jax.jit`: dollars NaN")
raises("tco/zero-mfu", lambda f: chinplan.tco(1e9, 1e11, DEP._replace(mfu_train=0.0)),
       r"deployment\.mfu_train must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 0\.0")
flags("tco/zero-mfu-traced", lambda f: jax.jit(chinplan.tco)(1e9, 1e11, DEP._replace(mfu_train=0.0)).dollars, is_posinf, says="under `jax.jit`: dollars +inf (a zero MFU never finishes)")
raises("cost_optimal/unsampled-distribution", lambda f: chinplan.cost_optimal(H, 2.5, RANDOM_DEP), r"deployment\.queries is a LogNormal distribution")
raises("cost_optimal/nan-target", lambda f: chinplan.cost_optimal(H, np.nan, DEP), r"target_loss must be finite")
raises("inference_optimal/negative-tokens", lambda f: chinplan.inference_optimal(H, 2.5, -1.0),
       r"inference_tokens must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0")
raises("inference_optimal/nan-tokens", lambda f: chinplan.inference_optimal(H, 2.5, np.nan), r"inference_tokens must be finite and >= 0")
raises("inference_optimal/inf-tokens", lambda f: chinplan.inference_optimal(H, 2.5, np.inf), r"inference_tokens must be finite and >= 0")
raises("inference_optimal/string-tokens", lambda f: chinplan.inference_optimal(H, 2.5, "many"), r"inference_tokens must be a real number")
raises("inference_optimal/bool-tokens", lambda f: chinplan.inference_optimal(H, 2.5, True), r"inference_tokens must be a real number .*dtype bool")
raises("inference_optimal/complex-tokens", lambda f: chinplan.inference_optimal(H, 2.5, 1e12 + 1j), r"inference_tokens must be a real number .*complex")
raises("inference_optimal/nan-target", lambda f: chinplan.inference_optimal(H, np.nan, 1e12), r"target_loss must be finite \(valid range \(-inf, inf\)\), got nan")
raises("inference_optimal/target-below-E", lambda f: chinplan.inference_optimal(H, 1.0, 1e12), _BELOW_E + r"1\.0")
flags("inference_optimal/target-below-E-traced", lambda f: jax.jit(chinplan.inference_optimal)(H, 1.0, 1e12), _unreachable_plan, says="under `jax.jit`: flagged: n = d = +inf, loss = E (unreachable; never NaN)")
raises("inference_optimal/negative-target", lambda f: chinplan.inference_optimal(H, -1.0, 1e12), _BELOW_E + r"-1\.0")
flags("inference_optimal/negative-target-traced", lambda f: jax.jit(chinplan.inference_optimal)(H, -1.0, 1e12), _unreachable_plan, says="under `jax.jit`: flagged: n = d = +inf, loss = E (unreachable; never NaN)")
raises("data_constrained_optimal/zero-iters", lambda f: chinplan.data_constrained_optimal(H, 1e22, 1e10, iters=0), r"iters must be an integer >= 1, got 0")
raises("data_constrained_optimal/zero-width", lambda f: chinplan.data_constrained_optimal(H, 1e22, 1e10, width=0.0), r"width must be a finite number > 0, got 0\.0")
raises("HARDWARE/unknown-name", lambda f: chinplan.HARDWARE["tpu-v5"], r"unknown hardware 'tpu-v5'; choose from a100, a100-40gb, a100-80gb, b200, gb200, h100, h100-80gb, h100-pcie, h100-sxm, h200, mi300x")
raises("HARDWARE/unknown-name-is-KeyError", lambda f: chinplan.HARDWARE["h100-nvl"], r"unknown hardware 'h100-nvl'", KeyError)
raises("Hardware.peak/unknown-precision", lambda f: chinplan.H100_SXM.peak("fp4"), r"precision must be one of bf16, fp16, fp8, int8; got 'fp4'")
raises("Hardware.peak/unsupported-precision", lambda f: chinplan.A100.peak("fp8"), r"precision 'fp8' is not supported by this hardware")

# --- huber -------------------------------------------------------------------------------
section("Huber fit: `huber_fit`, `huber_bootstrap`")
_hf = chinplan.huber_fit
raises("huber_fit/nan-n", lambda f: _hf(np.r_[_HN[:9], np.nan], _HD, _HL, **_HKW), r"n must be finite and > 0 \(valid range \(0, inf\)\), got nan at 1 of 10 positions")
raises("huber_fit/inf-d", lambda f: _hf(_HN, np.r_[_HD[:9], np.inf], _HL, **_HKW), r"d must be finite and > 0 \(valid range \(0, inf\)\), got inf")
raises("huber_fit/zero-d", lambda f: _hf(_HN, np.r_[_HD[:9], 0.0], _HL, **_HKW), r"d must be finite and > 0 \(valid range \(0, inf\)\), got 0\.0")
raises("huber_fit/negative-loss", lambda f: _hf(_HN, _HD, -_HL, **_HKW), r"loss must be finite and > 0")
raises("huber_fit/object-none", lambda f: _hf(np.array([*_HN[:9], None], dtype=object), _HD, _HL, **_HKW), r"n must be finite and > 0 .*got nan")
raises("huber_fit/2d-n", lambda f: _hf(_HN.reshape(2, 5), _HD, _HL, **_HKW), r"n must be 1-D \(one value per run\), got shape \(2, 5\)")
raises("huber_fit/mismatched", lambda f: _hf(_HN, _HD[:9], _HL, **_HKW), r"d has 9 runs but n has 10")
raises("huber_fit/empty", lambda f: _hf([], [], [], **_HKW), r"need at least 5 runs to fit 5 constants, got 0")
raises("huber_fit/four-runs", lambda f: _hf(_HN[:4], _HD[:4], _HL[:4], **_HKW), r"need at least 5 runs to fit 5 constants, got 4")
raises("huber_fit/negative-weights", lambda f: _hf(_HN, _HD, _HL, weights=-np.ones(10), **_HKW), r"weights must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0")
raises("huber_fit/zero-weights", lambda f: _hf(_HN, _HD, _HL, weights=np.zeros(10), **_HKW), r"weights must not be all 0")
raises("huber_fit/weights-shape", lambda f: _hf(_HN, _HD, _HL, weights=np.ones(3), **_HKW), r"weights must have shape \(10,\), got \(3,\)")
raises("huber_fit/grid-shape", lambda f: _hf(_HN, _HD, _HL, grid=np.ones((3, 4))), r"grid must have shape \(S, 5\)")
raises("huber_fit/zero-lanes", lambda f: _hf(_HN, _HD, _HL, num_lanes=0, **_HKW), r"num_lanes must be an integer >= 1, got 0")
raises("huber_fit/zero-max-iter", lambda f: _hf(_HN, _HD, _HL, grid=_HGRID, max_iter=0), r"max_iter must be an integer >= 1, got 0")
raises("huber_fit/string-n", lambda f: _hf(np.array(["a"] * 10), _HD, _HL, **_HKW), r"\bn must be a real number")
raises("huber_fit/bool-n", lambda f: _hf(np.ones(10, bool), _HD, _HL, **_HKW), r"\bn must be a real number .*dtype bool")
raises("huber_fit/complex-n", lambda f: _hf(_HN + 1j, _HD, _HL, **_HKW), r"\bn must be a real number .*dtype complex128")
raises("huber_fit/zero-delta", lambda f: _hf(_HN, _HD, _HL, delta=0.0, **_HKW), r"delta")
raises("huber_fit/negative-delta", lambda f: _hf(_HN, _HD, _HL, delta=-1.0, **_HKW), r"delta")
raises("huber_fit/nan-delta", lambda f: _hf(_HN, _HD, _HL, delta=np.nan, **_HKW), r"delta")
raises("huber_fit/nan-grid", lambda f: _hf(_HN, _HD, _HL, grid=_HGRID * np.nan, max_iter=5), r"grid must be finite \(valid range \(-inf, inf\)\), got nan")
raises("huber_fit/empty-grid", lambda f: _hf(_HN, _HD, _HL, grid=np.ones((0, 5)), max_iter=5), r"grid must have shape \(S, 5\), S >= 1")
raises("huber_fit/float-max-iter", lambda f: _hf(_HN, _HD, _HL, grid=_HGRID, max_iter=5.5), r"max_iter must be an integer >= 1, got 5\.5")
raises("huber_bootstrap/missing-key", lambda f: chinplan.huber_bootstrap(_HN, _HD, _HL, key=None, fit=_huber_fit(), num_resamples=1, max_iter=5),
       r"\bkey\b")
raises("huber_bootstrap/int-key", lambda f: chinplan.huber_bootstrap(_HN, _HD, _HL, key=0, fit=_huber_fit(), num_resamples=1, max_iter=5),
       r"\bkey\b")
raises("huber_bootstrap/zero-resamples", lambda f: chinplan.huber_bootstrap(_HN, _HD, _HL, key=KEY, fit=_huber_fit(), num_resamples=0),
       r"num_resamples must be an integer >= 1, got 0")
raises("huber_bootstrap/zero-starts", lambda f: chinplan.huber_bootstrap(_HN, _HD, _HL, key=KEY, fit=_huber_fit(), num_starts=0),
       r"num_starts must be an integer >= 1, got 0")
raises("huber_bootstrap/nan-loss", lambda f: chinplan.huber_bootstrap(_HN, _HD, np.r_[_HL[:9], np.nan], key=KEY, fit=_huber_fit()),
       r"loss must be finite and > 0")
raises("huber_bootstrap/extra-starts-shape", lambda f: chinplan.huber_bootstrap(_HN, _HD, _HL, key=KEY, fit=_huber_fit(), num_resamples=1,
                                                                               max_iter=5, extra_starts=np.ones((2, 3))),
       r"extra_starts must have shape \(S, 5\)")
raises("huber_bootstrap/quantile-above-1", lambda f: chinplan.huber_bootstrap(_HN, _HD, _HL, key=KEY, fit=_huber_fit(), num_resamples=1,
                                                                             max_iter=5, quantiles=(0.5, 1.5)),
       r"quantiles")

# --- arch --------------------------------------------------------------------------------
section("Architecture (`chinplan.arch`)")
_tp = chinplan.transformer_params
raises("transformer_params/zero-layers", lambda f: _tp(SHAPE._replace(n_layers=0)), r"n_layers must be an integer >= 1, got 0")
raises("transformer_params/bool-layers", lambda f: _tp(SHAPE._replace(n_layers=True)), r"n_layers must be an integer >= 1, got True")
raises("transformer_params/float-layers", lambda f: _tp(SHAPE._replace(n_layers=2.5)), r"n_layers must be an integer >= 1, got 2\.5")
raises("transformer_params/string-width", lambda f: _tp(SHAPE._replace(d_model="512")), r"d_model must be an integer >= 1, got '512'")
raises("transformer_params/indivisible-width", lambda f: _tp(SHAPE._replace(d_model=500)), r"d_model must be divisible by n_heads=8, got d_model=500")
raises("transformer_params/kv-heads", lambda f: _tp(SHAPE._replace(n_kv_heads=3)), r"n_kv_heads must divide n_heads=8, got n_kv_heads=3")
raises("transformer_params/nan-mlp-ratio", lambda f: _tp(SHAPE._replace(mlp_ratio=np.nan)), r"mlp_ratio must be a finite number > 0, got nan")
raises("transformer_params/unknown-norm", lambda f: _tp(SHAPE._replace(norm="batchnorm")), r"norm must be one of \['layernorm', 'rmsnorm'\], got 'batchnorm'")
raises("transformer_params/string-flag", lambda f: _tp(SHAPE._replace(bias="yes")), r"bias must be True or False, got 'yes'")
raises("transformer_params/tuple", lambda f: _tp((2, 512, 8, 1000)), r"shape must be a chinplan\.arch\.TransformerShape, got tuple")
for _bad_id, _bad in [("nan", np.nan), ("inf", np.inf), ("zero", 0), ("negative", -7e9), ("bool", True), ("complex", 7e9 + 0j),
                      ("array", np.array([7e9, 8e9]))]:
    CALL_TEXT[f"shape_for_params/{_bad_id}"] = f"chinplan.shape_for_params({_num(_bad)})"
    raises(f"shape_for_params/{_bad_id}", lambda f, _b=_bad: chinplan.shape_for_params(_b), r"n_params must be a finite number > 0, got ")
raises("shape_for_params/numeric-string", lambda f: chinplan.shape_for_params("7e9"), r"n_params must be a finite number > 0")
flags("shape_for_params/below-smallest-shape", lambda f: chinplan.shape_for_params(0.5), lambda fit: fit.rel_error > 1.0,
      says="flagged: the smallest shape with `rel_error` > 1 (documented)")
raises("shape_for_params/zero-aspect-ratio", lambda f: chinplan.shape_for_params(7e9, aspect_ratio=0), r"aspect_ratio must be a finite number > 0, got 0")
raises("shape_for_params/zero-head-dim", lambda f: chinplan.shape_for_params(7e9, head_dim=0), r"head_dim must be an integer >= 1, got 0")
raises("training_memory_bytes/unknown-precision", lambda f: chinplan.training_memory_bytes(7e9, precision="fp4"), r"precision must be one of .* got 'fp4'")
raises("training_memory_bytes/unknown-optimizer", lambda f: chinplan.training_memory_bytes(7e9, optimizer="lion"), r"optimizer must be one of .* got 'lion'")
raises("training_memory_bytes/nan", lambda f: chinplan.training_memory_bytes(np.nan), r"n_params must be a finite number > 0, got nan")
raises("weight_memory_bytes/unknown-precision", lambda f: arch.weight_memory_bytes(7e9, precision="int2"), r"precision must be one of .* got 'int2'")
raises("lora_params/zero-rank", lambda f: chinplan.lora_params(SHAPE, 0), r"rank must be an integer >= 1, got 0")
raises("lora_params/unknown-target", lambda f: chinplan.lora_params(SHAPE, 8, targets=["qkv"]), r"targets must be among .* got 'qkv'")
raises("lora_params/zero-width-pair", lambda f: chinplan.lora_params([(0, 10)], 8), r"d_in must be an integer >= 1, got 0")


# --- every public function of law, optima, costs and arch: one bad argument at a time --------
section("Every public function of law, optima, costs and arch: one bad argument at a time")

#: Each checked function with good arguments: (doc name, function, takes a law first,
#: [(argument, kind, good value)]); the law argument's name in messages is ``params``
#: (``point`` for smallest_budget).
CHECKED = [
    ("chinplan.loss", chinplan.loss, "params", [("n", "positive", 1e9), ("d", "positive", 1e11)]),
    ("chinplan.log_loss", chinplan.log_loss, "params", [("log_n", "finite", 20.0), ("log_d", "finite", 25.0)]),
    ("law.loss_log", law.loss_log, "params", [("log_n", "finite", 20.0), ("log_d", "finite", 25.0)]),
    ("chinplan.effective_data", chinplan.effective_data, None, [("d", "positive", 1e11), ("unique_tokens", "positive", 1e10)]),
    ("chinplan.effective_params", chinplan.effective_params, "params", [("n", "positive", 1e9), ("unique_tokens", "positive", 1e10)]),
    ("chinplan.training_flops", chinplan.training_flops, None, [("n", "positive", 1e9), ("d", "positive", 1e11)]),
    ("law.log_training_flops", law.log_training_flops, None, [("n", "positive", 1e9), ("d", "positive", 1e11)]),
    ("chinplan.compute_optimal", chinplan.compute_optimal, "params", [("compute", "positive", 1e22)]),
    ("optima.compute_optimal_log", optima.compute_optimal_log, "params", [("log_compute", "finite", 50.0)]),
    ("chinplan.tokens_per_parameter", chinplan.tokens_per_parameter, "params", [("compute", "positive", 1e22)]),
    ("chinplan.optimal_for_loss", chinplan.optimal_for_loss, "params", [("target_loss", "target", 2.5)]),
    ("chinplan.params_for_loss", chinplan.params_for_loss, "params", [("d", "positive", 1e11), ("target_loss", "target", 2.5)]),
    ("chinplan.inference_optimal", chinplan.inference_optimal, "params",
     [("target_loss", "target", 2.5), ("inference_tokens", "nonnegative", 1e12)]),
    ("chinplan.cost_optimal", chinplan.cost_optimal, "params", [("target_loss", "target", 2.5), ("deployment", "deployment", DEP)]),
    ("chinplan.data_constrained_optimal", chinplan.data_constrained_optimal, "params",
     [("compute", "positive", 1e22), ("unique_tokens", "positive", 1e10)]),
    ("chinplan.smallest_budget", chinplan.smallest_budget, "point", []),
    ("chinplan.tco", chinplan.tco, None, [("n", "positive", 1e9), ("d", "positive", 1e11), ("deployment", "deployment", DEP)]),
    ("costs.log_dollars", costs.log_dollars, None, [("n", "positive", 1e9), ("d", "positive", 1e11), ("deployment", "deployment", DEP)]),
    ("chinplan.weighted_inference_tokens", chinplan.weighted_inference_tokens, None, [("deployment", "deployment", DEP)]),
    ("costs.lifetime_tokens", costs.lifetime_tokens, None,
     [("queries", "nonnegative", 1e9), ("input_tokens", "nonnegative", 500.0), ("output_tokens", "nonnegative", 100.0)]),
    ("costs.inference_flops", costs.inference_flops, None, [("n", "positive", 1e9), ("tokens", "nonnegative", 1e12)]),
    ("costs.log_inference_flops", costs.log_inference_flops, None, [("n", "positive", 1e9), ("tokens", "nonnegative", 1e12)]),
    ("costs.pflops_days", costs.pflops_days, None, [("flops", "nonnegative", 1e22)]),
    ("costs.gpu_hours", costs.gpu_hours, None,
     [("flops", "nonnegative", 1e22), ("peak_flops", "positive", 1e15), ("mfu", "fraction", 0.4)]),
    ("chinplan.training_memory_bytes", chinplan.training_memory_bytes, None, [("n_params", "number", 7e9)]),
    ("arch.weight_memory_bytes", arch.weight_memory_bytes, None, [("n_params", "number", 7e9)]),
    ("chinplan.shape_for_params", chinplan.shape_for_params, None, [("n_params", "number", 7e9)]),
    ("chinplan.lora_params", functools.partial(chinplan.lora_params, SHAPE), "SHAPE", [("rank", "integer", 8)]),
]
_E = float(H.E)
#: kind -> [(label, bad value, regex of the message after the argument's name)]
BAD_VALUES = {
    "positive": [("nan", math.nan, r" must be finite and > 0 \(valid range \(0, inf\)\), got nan"),
                 ("inf", math.inf, r" must be finite and > 0 \(valid range \(0, inf\)\), got inf"),
                 ("negative", -1.0, r" must be finite and > 0 \(valid range \(0, inf\)\), got -1\.0"),
                 ("zero", 0.0, r" must be finite and > 0 \(valid range \(0, inf\)\), got 0\.0")],
    "nonnegative": [("nan", math.nan, r" must be finite and >= 0 \(valid range \[0, inf\)\), got nan"),
                    ("inf", math.inf, r" must be finite and >= 0 \(valid range \[0, inf\)\), got inf"),
                    ("negative", -1.0, r" must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0")],
    "finite": [("nan", math.nan, r" must be finite \(valid range \(-inf, inf\)\), got nan"),
               ("inf", math.inf, r" must be finite \(valid range \(-inf, inf\)\), got inf"),
               ("-inf", -math.inf, r" must be finite \(valid range \(-inf, inf\)\), got -inf")],
    "target": [("nan", math.nan, r" must be finite \(valid range \(-inf, inf\)\), got nan"),
               ("inf", math.inf, r" must be finite \(valid range \(-inf, inf\)\), got inf"),
               ("at-E", _E, r" must exceed the irreducible loss E \(valid range \(E, inf\), E = 1\.69337\), got " + re.escape(repr(_E))),
               ("below-E", 1.0, r" must exceed the irreducible loss E \(valid range \(E, inf\), E = 1\.69337\), got 1\.0")],
    "fraction": [("nan", math.nan, r" must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got nan"),
                 ("zero", 0.0, r" must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 0\.0"),
                 ("above-1", 1.5, r" must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 1\.5")],
    "number": [("nan", math.nan, r" must be a finite number > 0, got nan"),
               ("inf", math.inf, r" must be a finite number > 0, got inf"),
               ("negative", -1.0, r" must be a finite number > 0, got -1\.0"),
               ("zero", 0.0, r" must be a finite number > 0, got 0\.0")],
    "integer": [("zero", 0, r" must be an integer >= 1, got 0"),
                ("float", 2.5, r" must be an integer >= 1, got 2\.5"),
                ("bool", True, r" must be an integer >= 1, got True")],
}
#: Bad deployments: (label, text, value, regex of the whole message).
BAD_DEPLOYMENTS = [
    ("negative-queries", "DEP._replace(queries=-1.0)", DEP._replace(queries=-1.0),
     r"deployment\.queries must be finite and >= 0 \(valid range \[0, inf\)\), got -1\.0"),
    ("zero-mfu", "DEP._replace(mfu_train=0.0)", DEP._replace(mfu_train=0.0),
     r"deployment\.mfu_train must be finite, > 0 and <= 1 \(valid range \(0, 1\]\), got 0\.0"),
    ("nan-price", "DEP._replace(price=np.nan)", DEP._replace(price=math.nan),
     r"deployment\.price must be finite and > 0 \(valid range \(0, inf\)\), got nan"),
]
#: Laws with one constant out of its domain (every constant must be finite and > 0).
BAD_LAWS = [
    ("negative-alpha", "alpha=-0.34", "alpha", H._replace(alpha=-0.34), r"-0\.34"),
    ("zero-beta", "beta=0.0", "beta", H._replace(beta=0.0), r"0\.0"),
    ("nan-E", "E=np.nan", "E", H._replace(E=math.nan), "nan"),
    ("inf-A", "A=np.inf", "A", H._replace(A=math.inf), "inf"),
    ("negative-B", "B=-410.7", "B", H._replace(B=-410.7), r"-410\.7"),
]


def _text(value) -> str:
    return "DEP" if value is DEP else _num(value)


def _checked_row(name, fn, law_name, args, row, bad_index=None, bad_value=None, bad_text=None, law_value=H, law_text="H", match=""):
    values = [bad_value if i == bad_index else good for i, (_, _, good) in enumerate(args)]
    texts = [bad_text if i == bad_index else _text(good) for i, (_, _, good) in enumerate(args)]
    if law_name == "SHAPE":  # a fixed first argument, not a law
        texts = ["SHAPE", *texts]
    elif law_name is not None:
        values, texts = [law_value, *values], [law_text, *texts]
    CALL_TEXT[row] = f"{name}({', '.join(texts)})"
    raises(row, lambda f, v=tuple(values): fn(*v), match)


for _name, _fn, _law, _args in CHECKED:
    _short = _name.split(".")[-1]
    for _i, (_arg, _kind, _good) in enumerate(_args):
        if _kind == "deployment":
            for _label, _dtext, _dep, _match in BAD_DEPLOYMENTS:
                _checked_row(_name, _fn, _law, _args, f"{_short}/{_arg}={_label}", _i, _dep, _dtext, match=_match)
            continue
        for _label, _bad, _tail in BAD_VALUES[_kind]:
            _checked_row(_name, _fn, _law, _args, f"{_short}/{_arg}={_label}", _i, _bad, _text(_bad),
                         match=rf"\b{_arg}" + _tail)
    if _law in ("params", "point"):
        for _label, _ltext, _field, _bad_law, _got in BAD_LAWS:
            _checked_row(_name, _fn, _law, _args, f"{_short}/{_law}={_label}", law_value=_bad_law,
                         law_text=f"H._replace({_ltext})",
                         match=rf"{_law}\.{_field} must be finite and > 0 \(valid range \(0, inf\)\), got {_got}")


# --- issue 17: one mechanism per class -------------------------------------------------------
section("Output files never overwrite an input (`_files.check_output`, every writing command)")
_OUT = dict(suffixes=(".nc",), arg="-o")
raises("check_output/same-file", lambda f: _files.check_output(f.text("in.nc", "x"), inputs=[f.path("in.nc")], **_OUT),
       r"^-o '.*in\.nc' is the same file as the input '.*in\.nc'; writing it would destroy the input", exc=_files.OutputPathError)
raises("check_output/through-a-symlink", lambda f: _files.check_output(f.link("alias.nc", f.text("in.nc", "x")), inputs=[f.path("in.nc")], **_OUT),
       r"^-o '.*alias\.nc' is the same file as the input '.*in\.nc'", exc=_files.OutputPathError)
raises("check_output/dot-dot-path", lambda f: _files.check_output(f.path("sub/../in.nc"), inputs=[f.text("in.nc", "x")], **_OUT),
       r"^-o '.*sub/\.\./in\.nc' is the same file as the input", exc=_files.OutputPathError)
raises("check_output/hard-link", lambda f: _files.check_output(f.hard_link("hard.nc", f.text("in.nc", "x")), inputs=[f.path("in.nc")], **_OUT),
       r"^-o '.*hard\.nc' is the same file as the input", exc=_files.OutputPathError)
raises("check_output/fit-writes-netcdf-only", lambda f: _files.check_output(f.path("runs.csv"), inputs=[], **_OUT),
       r"^-o '.*runs\.csv' must end in \.nc$", exc=_files.OutputPathError)
raises("check_output/a-directory", lambda f: _files.check_output(f.directory("dir.nc"), inputs=[], **_OUT),
       r"^-o '.*dir\.nc' is a directory; give a file name ending in \.nc", exc=_files.OutputPathError)
raises("check_writable/missing-directory", lambda f: _files.check_writable(f.path("no/such/out.nc"), arg="-o"),
       r"^-o: output directory '.*no/such' does not exist")
raises("check_writable/unwritable", lambda f: _files.check_writable("/proc/out.nc", arg="-o"),
       r"^-o: cannot write in output directory '/proc'")
raises("check_space/too-large", lambda f: _files.check_space(f.path("out.nc"), 10**18, arg="-o"),
       r"-o: not enough space in '.*' to write '.*out\.nc' \(needs about \d+ bytes, \d+ free\)", exc=OSError)  # free: this machine's

section("Posterior files are untrusted (`Posterior.load`, `_hdf5.check_structure`)")
raises("Posterior.load/extra-dim", lambda f: chinplan.Posterior.load(f.posterior("extra_dim")),
       r"posterior file '.*extra_dim\.nc': variable 'posterior/alpha' has the dims \('chain', 'draw', 'group'\)")
raises("Posterior.load/renamed-dims", lambda f: chinplan.Posterior.load(f.posterior("renamed_dims")),
       r"posterior file '.*renamed_dims\.nc': variable 'posterior/log_E' has the dims \('c', 'sample'\)")
raises("Posterior.load/log-overflows-float32", lambda f: chinplan.Posterior.load(f.posterior("log_A_overflow")),
       r"posterior file '.*': variable 'posterior/log_A' must be finite, >= -87\.3365 and <= 88\.7228 in every draw")
raises("Posterior.load/negative-scale", lambda f: chinplan.Posterior.load(f.posterior("negative_sigma")),
       r"posterior file '.*': variable 'posterior/sigma' must be finite, >= 1\.17549e-38")
raises("Posterior.load/external-storage", lambda f: chinplan.Posterior.load(f.posterior("external_storage")),
       r"posterior file '.*': variable 'posterior/alpha' is backed by external storage")
raises("Posterior.load/virtual-dataset", lambda f: chinplan.Posterior.load(f.posterior("virtual_dataset")),
       r"posterior file '.*': variable 'posterior/mapped' is a virtual dataset")
raises("Posterior.load/soft-link", lambda f: chinplan.Posterior.load(f.posterior("soft_link")),
       r"posterior file '.*': 'posterior/gamma' is a link of kind 'soft'")
raises("Posterior.load/huge-declared-size", lambda f: chinplan.Posterior.load(f.posterior("huge_declared")),
       r"posterior file '.*': its datasets declare more than 1073741824 bytes \(at 'posterior/huge'\)")

section("Finite in float64, not in the float32 chinplan computes in (`_checks.representable`)")
_F32 = r" must be representable in float32, the dtype chinplan computes in \(magnitude 0 or in \[1\.17549e-38, 3\.40282e\+38\]"
raises("compute_optimal/beyond-float32", lambda f: chinplan.compute_optimal(H, 1e39), r"^compute" + _F32 + r".*got 1e\+39")
raises("loss/denormal-in-float32", lambda f: chinplan.loss(H, 1e-40, 1e12), r"^n" + _F32 + r".*got 1e-40")
raises("Deployment/queries-beyond-float32", lambda f: costs.validate_deployment(DEP._replace(queries=1e39)), r"queries" + _F32)
raises("plan_bands/one-budget-beyond-float32", lambda f: decide.plan_bands(P, [1e22, 1e39]), r"^compute" + _F32 + r".*got 1e\+39")

section("No raw exceptions: a ValueError naming the argument")
raises("crossing/none-x", lambda f: decide.crossing(None, [0.1, 0.9], 0.5), r"^x must be finite and > 0 .*got nan")  # None is missing: NaN
raises("crossing/empty-p", lambda f: decide.crossing([1.0, 2.0], [], 0.5), r"^p must not be empty")
raises("crossing/ragged-level", lambda f: decide.crossing([1.0, 2.0], [0.1, 0.9], [[1], [1, 2]]), r"^level must be a number in \[0, 1\]")
raises("plan_bands/int-beyond-float64", lambda f: decide.plan_bands(P, 10**400), r"^compute must be finite .*an integer too large for a float64")
raises("plan_bands/q-none", lambda f: decide.plan_bands(P, 1e22, q=None), r"^q must be a number or a sequence of numbers in \[0, 1\], got None")
raises("prob_target/huge-chunk-size", lambda f: decide.prob_target(P, 7e10, 1.4e12, 2.0, chunk_size=10**24), r"^chunk_size must be an integer in \[1, 9223372036854775807\]")
raises("smallest_model/p-beyond-float64", lambda f: decide.smallest_model(P, 2.0, 1e12, p=-(10**400)), r"^p must be a number in \(0, 1\]")
raises("regret_compute/grid-points-none", lambda f: regret.regret_compute(P, 1e21, grid_points=None), r"^grid_points must be an integer >= 3, got None")
raises("subset_draws/unhashable-seed", lambda f: decide.subset_draws(P, 4, seed={}), r"^seed must be a seed: an integer >= 0 or a sequence of them, got \{\}")
raises("lora_params/none-matrices", lambda f: chinplan.lora_params(None, 8), r"^shape_or_matrices must be a TransformerShape or an iterable of \(d_in, d_out\) pairs, got None")
raises("lora_params/unhashable-target", lambda f: chinplan.lora_params(SHAPE, 8, targets=[["q"]]), r"^targets must be among .* got \['q'\]")
raises("load_runs/int-beyond-float64", lambda f: chinplan.load_runs(_runs_with("params", 10**400)), r"column 'params', row 3: value .*inf.* is not finite")
flags("compute_optimal/int-beyond-int64", lambda f: chinplan.compute_optimal(H, 10**24), lambda a: bool(np.isclose(float(a.n), float(chinplan.compute_optimal(H, 1e24).n))),
      says="the plan of 1e24: Python ints of any size are numbers")

section("Round 2: products of counts, costs, budgets, hand-built draws, domains, sizes (issue 17)")
raises("Deployment/lifetime-tokens-beyond-float32", lambda f: costs.validate_deployment(DEP._replace(queries=1e30, input_tokens=1e10)),
       r"^deployment\.queries x \(input_tokens \+ output_tokens\), the lifetime tokens, must be representable in float32.*got about 1e40\.0")
raises("Deployment/weighted-tokens-beyond-float32", lambda f: costs.validate_deployment(DEP._replace(mfu_decode=1e-35)),
       r"^the weighted inference tokens .* must be representable in float32")
raises("Deployment/zero-price", lambda f: costs.validate_deployment(DEP._replace(price=0.0)), r"^deployment\.price must be finite and > 0 \(valid range \(0, inf\)\), got 0\.0")
raises("Deployment/none-queries", lambda f: costs.validate_deployment(DEP._replace(queries=None)), r"^deployment\.queries must be finite")
raises("tco/cost-overflows-float32", lambda f: costs.tco(7e10, 1.4e12, DEP._replace(price=1e37)), r"^train_dollars of tco\(n=70000000000\.0, d=1400000000000\.0\) overflows float32")
raises("tco_bands/price-overflows-float32", lambda f: decide.tco_bands(P, 2.3, DEP._replace(price=1e36)), r"^train_dollars of the optimal plan overflows float32")
raises("plan_bands/below-smallest-budget", lambda f: decide.plan_bands(P, 1.0), r"^compute must be at least [0-9.]+ FLOPs \(valid range \[[0-9.]+, inf\)\).*got 1\.0")
raises("Draws/hand-built-negative-queries", lambda f: decide.expected_cost(decide.Draws(P, decide.draw_pairs(P, DEP).deployment._replace(queries=-jnp.ones(_DRAWS))), 7e10, 1.4e12),
       r"^deployment\.queries must be finite and >= 0 .*got -1\.0 at 64 of 64 positions")
raises("load_runs/ambiguous-columns", lambda f: chinplan.load_runs(_runs().assign(N=_runs().params)), r"^runs table is ambiguous: columns \['params', 'N'\] all name 'params'")
raises("regret_compute/as-frame-string", lambda f: regret.regret_compute(P, 1e21, as_frame="no"), r"^as_frame must be True or False, got 'no'")
raises("Deployment/lognormal-mfu", lambda f: costs.validate_deployment(DEP._replace(mfu_train=LogNormal(0.9, 0.3))),
       r"^deployment\.mfu_train: a LogNormal \(support \(0, inf\)\) leaves the domain \(0, 1\]")
raises("fit/chains-beyond-size", lambda f: _fit(num_chains=10**6, num_draws=1000), r"^fit with 1,000,000 chains x 1,000 draws would need about 1\.28e\+11 bytes of draws")
raises("fit/log-likelihood-string", lambda f: _fit(log_likelihood="no"), r"^log_likelihood must be True or False, got 'no'")


section("Round 3: tables read as written, numbers that look valid and are not (issue 26)")
_EXTRA_FIELD_CSV = _CSV_ROWS[0] + "\n" + "".join(line + ",7\n" for line in _CSV_ROWS[1:])
raises("load_runs/more-fields-than-header", lambda f: chinplan.load_runs(f.text("shifted.csv", _EXTRA_FIELD_CSV)),
       r"^runs file '.*shifted\.csv': its rows have more fields than its header \(columns: \['params', 'tokens', 'loss'\]\)")
raises("load_runs/duplicate-header", lambda f: chinplan.load_runs(f.text("dup.csv", _EXTRA_FIELD_CSV.replace("loss", "loss,loss", 1))),
       r"^runs file '.*dup\.csv' has the column 'loss' twice in its header")
raises("load_runs/duplicate-frame-column", lambda f: chinplan.load_runs(pd.concat([_runs(), _runs()[["loss"]]], axis=1)),
       r"^runs table has the column 'loss' twice")
raises("load_runs/timedelta-column", lambda f: chinplan.load_runs(_runs().assign(tokens=pd.to_timedelta(_runs().tokens))),
       r"^column 'tokens' has dtype timedelta64\[ns\]; it must hold real numbers")
raises("load_runs/datetime-column", lambda f: chinplan.load_runs(_runs().assign(params=pd.to_datetime(_runs().params))),
       r"^column 'params' has dtype datetime64\[ns\]; it must hold real numbers")
raises("load_runs/full-width-digits", lambda f: chinplan.load_runs(f.text("wide.csv", _csv_with(3, "loss", "\uff13"))),
       r"^column 'loss', row 3: value '\uff13' is not a number \(write plain ASCII digits")
raises("load_runs/underscore-digits", lambda f: chinplan.load_runs(f.text("under.csv", _csv_with(3, "loss", " 3_5 "))),
       r"^column 'loss', row 3: value ' 3_5 ' is not a number")
raises("load_runs/fraction-cell", lambda f: chinplan.load_runs(_runs_with("loss", __import__("fractions").Fraction(5, 2))),
       r"^column 'loss', row 3: value Fraction\(5, 2\) is not a number")
raises("load_runs/url", lambda f: chinplan.load_runs("http://127.0.0.1:9/x.csv"), r"^runs file 'http://127\.0\.0\.1:9/x\.csv' is a URL; chinplan reads local files only")
raises("load_runs/file-url", lambda f: chinplan.load_runs("file://" + f.text("local.csv", _GOOD_CSV)), r"^runs file 'file://.*' is a URL")
raises("load_runs/compressed", lambda f: chinplan.load_runs(f.path("runs.csv.gz")), r"^runs file '.*runs\.csv\.gz' is compressed; chinplan reads plain CSV files only")
raises("fit/identical-rows", lambda f: _fit(runs=pd.concat([_runs().iloc[[0]]] * 10, ignore_index=True)),
       r"^runs: all 10 runs have params = [0-9.e+]+; the law needs runs of at least 2 distinct model sizes")
raises("fit/one-model-size", lambda f: _fit(runs=_runs().assign(params=1e9)), r"^runs: all 10 runs have params = 1e\+09; the law needs .* >= 2 distinct values of 'params'")
raises("fit/one-token-count", lambda f: _fit(runs=_runs().assign(tokens=2e10)), r"^runs: all 10 runs have tokens = 2e\+10; the law needs .* token counts")
raises("load_scenarios/nan-in-logspace", lambda f: _sw.load_scenarios(f.text("nan.toml", "[grid]\ncompute = {logspace = [nan, 22, 3]}\n")),
       r"^nan\.toml: grid\.compute gives NaN \(values must be numbers\)")
raises("load_scenarios/nested-50000-deep", lambda f: _sw.load_scenarios(f.text("deep.toml", "a = " + "[" * 50000 + "]" * 50000 + "\n")),
       r"^deep\.toml: malformed TOML: arrays or tables nested too deeply")
raises("load_scenarios/not-utf8", lambda f: _sw.load_scenarios(_latin1(f)),
       r"^latin1\.toml: not UTF-8 text")
raises("load_scenarios/duplicate-quantiles", lambda f: _sw.load_scenarios(f.text("q.toml", "[sweep]\nquantiles = [0.5, 0.05, 0.0500000001]\n[grid]\ncompute = 1e22\n")),
       r"^q\.toml: sweep\.quantiles gives 0\.05 and 0\.0500000001, both the column 'q5'; give distinct levels")
raises("load_scenarios/duplicate-outputs", lambda f: _sw.load_scenarios(f.text("o.toml", "[sweep]\noutputs = ['n', 'n', 'loss']\n[grid]\ncompute = 1e22\n")),
       r"^o\.toml: sweep\.outputs names 'n' twice")
raises("run_sweep/design-flops-beyond-float32", lambda f: _sw.run_sweep(_sw.load_scenarios(f.text("big.toml", "[grid]\nn = 1e30\nd = 1e30\n")), P),
       r"^grid\.n x grid\.d: the training FLOPs 6 N D of the largest design must be representable in float32.*got about 1e60\.8")
raises("check_output/symlink-to-a-fifo", lambda f: _files.check_output(f.link("pipe-link.nc", _fifo(f)), inputs=[], **_OUT),
       r"^-o '.*/pipe-link\.nc' is a FIFO \('.*/pipe\.nc'\); chinplan writes regular files only", exc=_files.OutputPathError)
raises("check_output/package-file", lambda f: _files.check_output(os.path.join(os.path.dirname(chinplan.__file__), "datasets", "chinchilla_posterior.nc"), inputs=[], **_OUT),
       r"^-o '.*chinchilla_posterior\.nc' is inside the chinplan package .* never overwritten", exc=_files.OutputPathError)
raises("check_output/read-only-file", lambda f: _files.check_output(_read_only(f), inputs=[], **_OUT),
       r"^-o '.*/locked\.nc' is read-only \(mode 0444\); make it writable", exc=_files.OutputPathError)
raises("check_output/name-too-long-for-its-temporary", lambda f: _files.check_output(f.path("x" * 245 + ".nc"), inputs=[], **_OUT),
       r"^-o '.*/x+\.nc': its name is 248 bytes; with its temporary's 14 more, names of at most 241 bytes fit", exc=_files.OutputPathError)
raises("draw_pairs/queries-draws-beyond-float64", lambda f: decide.draw_pairs(P, DEP._replace(queries=LogNormal(1e9, 1e3)), key=KEY),
       r"^deployment\.queries x \(input_tokens \+ output_tokens\), the lifetime tokens, must be representable in float32.*got inf \(beyond even float64\) in \d+ of 64 draws$")
raises("next_runs/more-outcomes-than-draws", lambda f: _next_runs(num_outcomes=100_000),
       r"^num_outcomes must be at most the posterior's 4000 draws .*valid range \[2, 4000\]\), got 100000$")
raises("load_runs/repeated-row-labels", lambda f: chinplan.load_runs(_runs_with("loss", "abc").set_axis([0, 1, 2, 3, 3, 5, 6, 7, 8, 9])),
       r"^column 'loss', row 3: value 'abc' is not a number$")
raises("data_constrained.plan/unique-tokens-beyond-budget", lambda f: _dc().plan(_dc().default_posterior(), 5.76e23, 1e30),
       r"^unique_tokens must be at most compute / 6.*\(valid range \(0, 9\.6e\+22\] for compute 5\.76e\+23\), got 1e\+30")


section("Round 3: parts folders, posterior values, sizes, designs and messages (issue 26)")
# class 1: a sweep's parts folder belongs to that sweep alone
raises("Checkpoint/foreign-file-in-parts-folder", lambda f: resume.Checkpoint(_parts(f, "foreign", {"notes.txt": b"mine"}), _SWEEP, chunk=2, resume=False),
       r"^-o/--output: the parts folder '.*foreign\.csv\.parts' holds 'notes\.txt', which is not a sweep chunk or manifest")
raises("Checkpoint/another-sweep-writing", lambda f: _while_locked(f.path("busy.csv.parts"), lambda d: resume.Checkpoint(d, _SWEEP, chunk=2, resume=False)),
       r"^-o/--output: another chinplan sweep is writing '.*busy\.csv' \(it holds '.*busy\.csv\.parts\.lock'\)")
raises("Checkpoint/resume-changed-chunk", lambda f: _resume(_parts(f, "changed", {"chunk-000000.npz": _npz(n=np.full((3, 2), 10.0))})),
       r"^--resume: chunk 0 of '.*changed\.csv\.parts' does not match its checksum in the manifest")
raises("Checkpoint/resume-garbage-chunk", lambda f: _resume(_parts(f, "garbage", {"chunk-000000.npz": b"garbage, not an npz"})),
       r"^--resume: chunk 0 of '.*garbage\.csv\.parts' does not match its checksum in the manifest")
raises("Checkpoint/resume-other-precision", lambda f: _resume(_parts(f, "x64"), {"x64": True}),
       r"^--resume: .*x64\.csv\.parts holds chunks of a different sweep \(x64 was False, now True\)")
raises("Checkpoint/resume-damaged-manifest", lambda f: _resume(_parts(f, "manifest", {"manifest.json": b"{bad"})),
       r"^--resume: .*manifest\.csv\.parts/manifest\.json is not a sweep manifest \(")
# class 3: outputs only where they belong (a name that is only a suffix is that kind of file)
flags("suffix_of/dot-csv", lambda f: _files.suffix_of(f.path(".csv"), (".parquet", ".nc", ".csv")), lambda suffix: suffix == ".csv",
      says="`.csv`: a file named `.csv` is a CSV output (it was refused as not ending in `.csv`)")
# class 4: untrusted posterior files, values and not only structure
raises("Posterior.load/domain-below-its-runs", lambda f: chinplan.Posterior.load(f.posterior("domain_low")),
       r"'extrapolation_domain' \[-30\.0, -30\.0, -30\.0\] is not the fitted runs' largest log10 \(compute, params, tokens\)")
raises("Posterior.load/domain-1e300", lambda f: chinplan.Posterior.load(f.posterior("domain_huge")),
       r"'extrapolation_domain' \[1e\+300, 1e\+300, 1e\+300\] is not the fitted runs' largest")
raises("Posterior.load/nan-fitted-runs", lambda f: chinplan.Posterior.load(f.posterior("log_n_nan")), r"variable 'constant_data/log_n' must be finite")
raises("Posterior.load/level-drift-1e30", lambda f: chinplan.Posterior.load(f.posterior("u_huge")), r"variable 'extrapolation/u'")
raises("Posterior.load/irreducible-loss-e88", lambda f: chinplan.Posterior.load(f.posterior("log_E_88")),
       r"variable 'posterior/log_E' has draws up to 88.*at most 10 x the largest fitted loss")
raises("Posterior.load/every-site-fixed", lambda f: chinplan.Posterior.load(f.posterior("all_fixed")),
       r"attribute 'fixed_sites' names 'log_E'; only a data-constrained fit may hold sites fixed")
raises("Posterior.load/more-draws-than-a-fit-makes", lambda f: chinplan.Posterior.load(f.posterior("many_draws")),
       r"variable 'posterior/alpha' holds 1,600,001 draws, more than 1,600,000")
flags("Posterior.load/chains-that-disagree", lambda f: chinplan.Posterior.load(f.posterior("chains_apart")).convergence_problems(),
      lambda problems: any(p.startswith("alpha: R-hat") for p in problems),
      says="`['alpha: R-hat ... > 1.01', ...]`: the gate recomputed from the draws (a missing `converged` attribute is not a pass); the command line warns in one line")
# class 5: bounded work from small inputs
raises("load_scenarios/too-many-band-cells", lambda f: _sw.load_scenarios(f.text("wide.toml", _WIDE_TOML)),
       r"^wide\.toml: the sweep's 40,000 scenarios x 13 outputs x 1001 quantiles would need about .* band cells, more than the limit")
raises("fit/iterations-beyond-cap-on-many-runs", lambda f: _fit(runs=_many_runs(100_000), num_chains=4, num_warmup=10_000, num_draws=10_000),
       r"on 100,000 runs that is 3\.27e\+07 iterations as on 245\).*NUTS iterations, more than the limit of 1e\+07")
# class 6: numbers that look valid and are not (a design's cost of inf is not a result)
raises("evaluate_designs/flops-overflow", lambda f: chinplan.evaluate_designs(P, [7e10, 1e30], [1.4e12, 1e30], DEP),
       r"^n x d: the training FLOPs 6 N D of the largest design must be representable in float32.*got about 1e60\.8$")
raises("chance_constrained/grid-flops-overflow", lambda f: decide.chance_constrained(P, [1e9, 1e30], [1e11, 1e30], 2.5, 0.5, DEP),
       r"^n_grid x d_grid: the training FLOPs 6 N D of the largest design must be representable in float32")
raises("tco/design-flops-overflow", lambda f: costs.tco(1e30, 1e30, DEP), r"^n x d: the training FLOPs 6 N D of the largest design must be representable")
# class 7: tables read as written
flags("load_scenarios/utf8-byte-order-mark", lambda f: _sw.load_scenarios(f.text("bom.toml", "\ufeff[grid]\ncompute = 1e22\n")),
      lambda scenarios: list(scenarios.axes) == ["compute"] and scenarios.shape == (1,),
      says="read as the same file without the mark (it was \"Invalid statement (at line 1, column 1)\")")
# class 8: messages that read plainly
raises("load_runs/float-row-label", lambda f: chinplan.load_runs(_runs_with("params", -1.0, row=9).set_axis(np.linspace(0.0, 36742300.0, 10))),
       r"^column 'params', row 36742300: value -1\.0 must be positive$")
raises("load_runs/series-in-a-cell", lambda f: chinplan.load_runs(pd.DataFrame({"params": [1e8, 2e8, pd.Series([1, 2])], "tokens": [1e9, 2e9, 3e9], "loss": [3.0, 2.9, 2.8]}), min_runs=1),
       r"^column 'params', row 2: value a Series of 2 values is not a number$")
raises("load_runs/long-text-cell", lambda f: chinplan.load_runs(_runs_with("params", "y" * 100)),
       r"^column 'params', row 3: value 'y{50}'\.\.\. \(100 characters\) is not a number$")
raises("Posterior.load/fit-record-not-json", lambda f: chinplan.Posterior.load(f.posterior("fit_attempts_not_json")),
       r"posterior file '.*fit_attempts_not_json\.nc': attribute 'fit_attempts' must be a JSON list of the fit's attempts")
raises("Posterior.load/converged-maybe", lambda f: chinplan.Posterior.load(f.posterior("converged_maybe")),
       r"posterior file '.*converged_maybe\.nc': attribute 'converged' must be 0 or 1, got 'maybe'$")
raises("pair_plot/one-draw", lambda f: _plots().pair_plot(_one_draw()), r"^a pair plot needs at least 2 posterior draws; the posterior has 1$")


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("call, exc, match, check", ROWS)
def test_bad_input(call, exc, match, check, files):
    if exc is not None:
        with pytest.raises(exc, match=match):
            call(files)
    else:
        result = call(files)
        assert check(result), f"not flagged as documented: {result!r}"


# ----------------------------------------------------------------------------- tracers pass


_TRACEABLE = [row for row in CHECKED if row[0].split(".")[-1] not in
              ("smallest_budget", "training_memory_bytes", "weight_memory_bytes", "shape_for_params", "lora_params")]


def _with(args, index, value):
    return [value if i == index else good for i, (_, _, good) in enumerate(args)]


@pytest.mark.parametrize("name, fn, law_name, args", _TRACEABLE, ids=[row[0] for row in _TRACEABLE])
def test_checked_functions_jit_vmap_grad_with_tracers(name, fn, law_name, args):
    """The checks skip tracers: the same functions jit, vmap and grad as before, and a bad value
    under jit gives the IEEE result (NaN or inf) instead of an error."""
    lead = (H,) if law_name is not None else ()
    values = [good for _, _, good in args]
    eager = fn(*lead, *values)
    jitted = jax.jit(fn)(*lead, *values)
    for e, j in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=2e-6)
    numeric = [i for i, (_, kind, _) in enumerate(args) if kind not in ("deployment",)]
    if not numeric:  # weighted_inference_tokens: map over a deployment field instead
        out = jax.vmap(lambda q: fn(DEP._replace(queries=q)))(jnp.array([1e9, 2e9]))
        assert np.asarray(out).shape == (2,)
        return
    i = numeric[0]
    good = args[i][2]
    batch = jnp.asarray([good, good * 1.25 if args[i][1] != "fraction" else 0.5])
    out = jax.vmap(lambda x: fn(*lead, *_with(args, i, x)))(batch)
    assert all(np.asarray(leaf).shape[:1] == (2,) for leaf in jax.tree.leaves(out))
    first = lambda x: jnp.sum(jnp.asarray(jax.tree.leaves(fn(*lead, *_with(args, i, x)))[0], jnp.float32))  # noqa: E731
    grad = jax.grad(first)(jnp.float32(good))
    assert np.isfinite(float(grad))
    if law_name is not None:  # a traced law checks nothing either
        grad_law = jax.grad(lambda p: first_law(fn, p, values))(jax.tree.map(jnp.float32, H))
        assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(grad_law))
    _, bad, _ = BAD_VALUES[args[i][1]][0]  # the first bad value of the kind: NaN (or 0 for integers)
    result = jax.jit(lambda x: fn(*lead, *_with(args, i, x)))(jnp.float32(bad))
    assert any(not np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(result))


def first_law(fn, params, values):
    return jnp.sum(jnp.asarray(jax.tree.leaves(fn(params, *values))[0], jnp.float32))


# ----------------------------------------------------------------------------- the doc

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "BAD_INPUTS.md")
TABLE_START, TABLE_END = "## The table\n", "\n## Gaps found, and closed\n"
_ROW_LINE = re.compile(r"^\| (\d+) \| (`+)(.*?)\2 \| `([^`]+)` \| (.*) \|$")


def _row_calls() -> dict[str, str]:
    """Row id -> the call's source text (the body of the row's ``lambda f: ...``)."""
    import ast

    with open(__file__, encoding="utf-8") as fh:
        source = fh.read()
    calls = dict(CALL_TEXT)
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("raises", "flags")
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[1], ast.Lambda)):
            segment = ast.get_source_segment(source, node.args[1].body)
            calls.setdefault(node.args[0].value, " ".join(segment.split()))
    return calls


def _subclass_names(classes) -> set[str]:
    names, todo = set(), list(classes)
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _code(text: str) -> str:
    text = text.replace("|", "\\|")
    ticks = "``" if "`" in text else "`"
    return f"{ticks}{text}{ticks}"


def _uncode(text: str) -> str:
    return text.replace("\\|", "|")


def _outcome(param, files) -> str:
    """What the row's call gets, as the doc writes it."""
    call, exc, match, check = param.values
    if exc is None:
        return SAYS[param.id]
    try:
        call(files)
    except Exception as err:  # noqa: BLE001 - the row says which
        message = " ".join(str(err).split()).replace(os.fspath(files.root), "<tmp>")
        message = message.replace(os.path.dirname(os.path.realpath(chinplan.__file__)), "<chinplan>")  # the package, wherever installed
        return f"{type(err).__name__}: {_code(message)}"
    raise AssertionError(f"{param.id}: no exception")


def write_doc() -> None:
    """Runs every row and rewrites the table of docs/BAD_INPUTS.md from the results."""
    import pathlib
    import tempfile

    files = Files(pathlib.Path(tempfile.mkdtemp()))
    calls = _row_calls()
    lines, current = [], None
    for n, param in enumerate(ROWS, 1):
        if SECTIONS[param.id] != current:
            current = SECTIONS[param.id]
            lines += ["", f"### {current}", "", "| # | Call (bad input) | Row | Gets |", "|---|---|---|---|"]
        lines.append(f"| {n} | {_code(calls[param.id])} | `{param.id}` | {_outcome(param, files)} |")
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    head, rest = text.split(TABLE_START)
    tail = rest[rest.index(TABLE_END):]
    intro = rest[: rest.index("\n###")].rstrip("\n") if "\n###" in rest else ""
    with open(DOC, "w", encoding="utf-8") as fh:
        fh.write(head + TABLE_START + intro + "\n" + "\n".join(lines) + "\n" + tail)


def test_doc_lists_every_row():
    """docs/BAD_INPUTS.md's table is this module's rows: same ids, order, sections and calls; each
    quoted error matches the row's regex and exception type; each flagged result is the row's ``says``."""
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    table = text.split(TABLE_START)[1].split(TABLE_END)[0]
    sections = re.findall(r"^### (.*)$", table, re.M)
    parsed = [_ROW_LINE.match(line) for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert all(parsed), "a table line does not parse"
    assert [m.group(4) for m in parsed] == [p.id for p in ROWS], "rows differ: run python tests/test_bad_inputs.py"
    assert [int(m.group(1)) for m in parsed] == list(range(1, len(ROWS) + 1))
    assert sections == list(dict.fromkeys(SECTIONS[p.id] for p in ROWS))
    calls = _row_calls()
    for m, param in zip(parsed, ROWS):
        call, exc, match, check = param.values
        assert _uncode(m.group(3)) == calls[param.id], param.id
        gets = m.group(5)
        if exc is None:
            assert gets == SAYS[param.id], param.id
            continue
        name, _, quoted = gets.partition(": ")
        allowed = exc if isinstance(exc, tuple) else (exc,)
        assert name in _subclass_names(allowed), param.id
        message = _uncode(quoted.strip("`"))
        assert re.search(match, message), (param.id, match, message)


if __name__ == "__main__":
    write_doc()
