"""The posterior file: NetCDF (arviz's layout) written atomically, read as untrusted.

Its HDF5 structure is checked before anything is read.

A crafted HDF5/NetCDF file can make a reader return the bytes of another local file (a
dataset with external storage, an external link, a virtual dataset mapping other files),
take gigabytes of memory from a few kilobytes on disk (a huge compressed or never-written
dataset), or loop (links back to a parent group). :func:`check_structure` walks the file's
links and datasets with h5py *metadata only* (no dataset is read) and refuses all of these,
naming the file and the object, before xarray/arviz read a byte of data.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from chinplan import _checks
from chinplan._files import (
    POSTERIOR_DIRECTORY,
    POSTERIOR_EMPTY,
    check_input_file,
    netcdf_image,
    write_bytes,
)

__all__ = ["check_structure", "check_site", "read_draws", "MAX_BYTES", "MAX_DRAWS", "MAX_OBJECTS", "MAX_DEPTH"]

#: The most bytes a posterior file may declare, summed over its datasets (uncompressed). A
#: fit of 16 chains x 100,000 draws of a dozen float64 sites is 150 MB.
MAX_BYTES = 1 << 30
#: The most draws (chains x draws) a posterior may hold, 16 chains x 100,000 draws: the work
#: of every answer over the draws (plans, per-draw cost optima) is bounded by it, checked from
#: the declared shapes before any value is read. ``fit`` refuses to make more.
MAX_DRAWS = 16 * 100_000
_DRAW_GROUPS = ("posterior", "extrapolation", "sample_stats")
#: The most links a posterior file may hold, and how deep its groups may nest.
MAX_OBJECTS = 10_000
MAX_DEPTH = 16
#: Dataset element kinds a posterior holds: bools, integers, floats, fixed or variable strings.
_KINDS = "biufSUO"


def _fail(name: str, what: str) -> None:
    raise ValueError(f"posterior file {name!r}: {what}; refusing an untrusted file that a chinplan posterior never is")


def _check_dataset(name: str, where: str, dset: Any) -> int:
    """Declared bytes of one dataset after refusing external storage, virtual data, odd types."""
    import h5py

    if dset.external:
        _fail(name, f"variable {where!r} is backed by external storage (another file's bytes)")
    if dset.is_virtual:
        _fail(name, f"variable {where!r} is a virtual dataset (it maps other datasets or files)")
    dtype = dset.dtype
    if dtype.kind not in _KINDS or (dtype.kind == "O" and h5py.check_string_dtype(dtype) is None):
        _fail(name, f"variable {where!r} has the data type {dtype} (a posterior holds numbers and strings)")
    if dtype.kind == "O" or (dtype.kind in "SU" and dtype.itemsize == 0):
        itemsize = 64  # variable-length strings: a bound per element, not their (unread) size
    else:
        itemsize = dtype.itemsize
    shape = dset.shape or ()
    count = 1
    for extent in shape:
        count *= int(extent)
    return count * itemsize


def check_structure(path: str | os.PathLike, name: str | None = None, *, max_bytes: int = MAX_BYTES) -> None:
    """Refuses (ValueError naming the file and the object) a file that is not HDF5, or holds a
    soft, external or user-defined link, a dataset with external storage, a virtual dataset,
    a dataset of a type a posterior never has, more than :data:`MAX_OBJECTS` links, groups
    deeper than :data:`MAX_DEPTH`, or datasets declaring more than ``max_bytes`` in all.

    Reads metadata only: no dataset's values are read, so a huge declared size costs nothing.
    """
    import h5py

    name = os.fspath(path) if name is None else name
    try:
        handle = h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError and others for a file that is not HDF5
        detail = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        raise ValueError(
            f"posterior file {name!r} is not a readable chinplan posterior (truncated, damaged or not NetCDF/HDF5: {detail})"
        ) from None
    with handle:
        declared, objects = 0, 0
        stack = [(handle, "", 0)]
        while stack:
            group, prefix, depth = stack.pop()
            if depth > MAX_DEPTH:
                _fail(name, f"groups nest deeper than {MAX_DEPTH} levels at {prefix!r}")
            for key in group.keys():
                objects += 1
                if objects > MAX_OBJECTS:
                    _fail(name, f"it holds more than {MAX_OBJECTS} objects")
                where = f"{prefix}/{key}".lstrip("/")
                link = group.get(key, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    kind = type(link).__name__.replace("Link", "").lower() or "user-defined"
                    _fail(name, f"{where!r} is a link of kind {kind!r} (it points elsewhere, possibly to another file)")
                item = group.get(key)
                if isinstance(item, h5py.Group):
                    stack.append((item, where, depth + 1))
                elif isinstance(item, h5py.Dataset):
                    declared += _check_dataset(name, where, item)
                    if declared > max_bytes:
                        _fail(name, f"its datasets declare more than {max_bytes} bytes (at {where!r})")
                    count = int(np.prod(item.shape or (), dtype=np.float64))
                    if where.split("/")[0] in _DRAW_GROUPS and count > MAX_DRAWS:
                        _fail(name, f"variable {where!r} holds {count:,} draws, more than {MAX_DRAWS:,} (16 chains x 100,000 draws; "
                                    "chinplan.inference.posterior_file.MAX_DRAWS)")  # fmt: skip
                else:  # a committed datatype
                    _fail(name, f"{where!r} is a {type(item).__name__}, not a group or a variable")


_F32 = np.finfo(np.float32)
#: What each site's draws must lie in: chinplan computes in float32 (float64 with x64), so a
#: scale must be a normal positive float32 and a log must exponentiate to one.
_SITE_RANGES = {
    **{name: (float(np.log(_F32.tiny)), float(np.log(_F32.max))) for name in ("log_E", "log_A", "log_B", "log_Nc", "log_Dc", "log_R_D", "log_R_N")},
    **{name: (float(_F32.tiny), float(_F32.max)) for name in ("alpha", "beta", "sigma", "nu", "alpha_N", "alpha_D", "sigma_seed")},
    # the extrapolation component: drifts and scales drawn under priors whose scale grids end at
    # 0.2 (tau_u, kappa; chinplan.inference.extrapolation.TAU_U_GRID, KAPPA_GRID): ten times
    # that is a 10-sigma draw, not a fit's. The valley's drift v and offset c follow the
    # allocation line minus each law draw's own slope and level (inference/allocation.py), so
    # a poorly identified law moves them far: v within 10 decades per decade, c within the
    # decades a float32 N* can move at all
    "u": (-2.0, 2.0),
    "kappa": (0.0, 2.0),
    "v": (-10.0, 10.0),
    "c": (-float(np.log10(_F32.max)), float(np.log10(_F32.max))),
}
#: The largest natural log of a count chinplan computes with (float32's largest value).
_LOG_MAX = float(np.log(_F32.max))
#: The sites a data-constrained fit may hold fixed (its base Chinchilla law).
_FIXABLE = ("log_E", "log_A", "log_B", "alpha", "beta")


def check_values(domain, constant: dict, attrs: dict, law: str, posterior, observed=None) -> None:
    """The values an untrusted file states beside its draws (after :func:`check_site`):

    * ``constant_data`` (the fitted runs): every ``log_*`` a finite log of a count in
      [1, float32's largest], every ``repeats`` a count >= 1;
    * the extrapolation domain: exactly the fitted runs' largest log10 (compute, params,
      tokens) when the file holds the runs (computed the same way in float64: 1e-9 decades
      is rounding), else each in [0, log10 of float32's largest];
    * ``fixed_sites``: only a data-constrained fit's base-law sites, each constant over the
      draws (a site said to be fixed that varies is hidden from the convergence checks);
    * with the observed log losses: no draw of the irreducible loss E above ten times the
      largest fitted loss (every fitted loss is E plus positive terms, times its noise).
    """
    if observed is not None and "log_E" in posterior and np.size(observed):
        top = float(np.max(np.asarray(observed, np.float64))) + float(np.log(10.0))
        log_e = np.asarray(posterior["log_E"], np.float64)
        if np.any(log_e > top):
            raise ValueError(f"variable 'posterior/log_E' has draws up to {float(np.max(log_e)):.6g}, an irreducible loss of "
                             f"{float(np.exp(np.max(log_e))):.6g}; valid range: at most 10 x the largest fitted loss, log_E <= {top:.6g}")  # fmt: skip
    for key, values in constant.items():
        values = np.asarray(values, np.float64)
        if key.startswith("log_"):
            _checks.in_range(f"variable 'constant_data/{key}'", values, 0.0, _LOG_MAX, unit="runs")
        elif key == "repeats":
            _checks.in_range("variable 'constant_data/repeats'", values, 1.0, float(_F32.max), unit="runs")
    if domain is not None:
        domain = np.asarray(domain, np.float64)
        log_n, log_d = (np.asarray(constant.get(k, ()), np.float64).reshape(-1) for k in ("log_n", "log_d"))
        if log_n.size and log_n.size == log_d.size:
            l10n, l10d = log_n / np.log(10.0), log_d / np.log(10.0)
            want = np.array([np.max(l10n + l10d) + np.log10(6.0), np.max(l10n), np.max(l10d)])
            if not np.all(np.abs(domain - want) <= 1e-9 * np.maximum(1.0, np.abs(want))):
                raise ValueError(
                    f"the extrapolation group's 'extrapolation_domain' {domain.tolist()} is not the fitted runs' largest "
                    f"log10 (compute, params, tokens) {want.tolist()} (from constant_data); the file is not a chinplan fit"
                )
        else:
            _checks.in_range("the extrapolation group's 'extrapolation_domain'", domain, 0.0, _LOG_MAX / np.log(10.0))
    _check_fit_record(attrs)
    fixed = [name for name in str(attrs.get("fixed_sites", "")).split(",") if name]
    for name in fixed:
        if law != "data_constrained" or name not in _FIXABLE:
            raise ValueError(f"attribute 'fixed_sites' names {name!r}; only a data-constrained fit may hold sites fixed, "
                             f"and only {list(_FIXABLE)}, got {attrs.get('fixed_sites')!r}")  # fmt: skip
        values = np.asarray(posterior[name]).reshape(-1)
        if values.size and np.ptp(values) != 0:
            raise ValueError(f"attribute 'fixed_sites' names {name!r}, whose draws vary (from {values.min()!r} to {values.max()!r}); "
                             "a fixed site has one value")  # fmt: skip


def _check_fit_record(attrs: dict) -> None:
    """The fit's record in the posterior's attributes: ``converged`` 0 or 1, ``fit_attempts`` a
    JSON list of attempts (objects whose ``problems`` is a list of text), as ``fit`` writes."""
    if "converged" in attrs:
        try:
            ok = float(attrs["converged"]) in (0.0, 1.0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"attribute 'converged' must be 0 or 1, got {str(attrs['converged'])[:60]!r}")
    if "fit_attempts" in attrs:
        text = str(attrs["fit_attempts"])
        try:
            attempts = json.loads(text)
        except ValueError:
            attempts = None
        problems = [a.get("problems", []) if isinstance(a, dict) else None for a in attempts] if isinstance(attempts, list) else [None]
        if not all(isinstance(p, list) and all(isinstance(x, str) for x in p) for p in problems):
            raise ValueError(f"attribute 'fit_attempts' must be a JSON list of the fit's attempts (objects with a 'problems' "
                             f"list of text), got {text[:60]!r}{'...' if len(text) > 60 else ''}")  # fmt: skip


def check_site(group, where: str, name: str, shape):
    """One variable of an untrusted file: dims exactly (chain, draw), the posterior's sizes,
    every draw in its site's range (:data:`_SITE_RANGES`; finite float32 otherwise)."""
    var = group[name]
    if tuple(var.dims) != ("chain", "draw"):
        raise ValueError(
            f"variable '{where}/{name}' has the dims {tuple(var.dims)}; a chinplan posterior's variables have "
            "exactly ('chain', 'draw') (a hierarchical or other program's posterior is not a chinplan law)"
        )
    if shape is not None and tuple(var.shape) != shape:
        raise ValueError(f"variable '{where}/{name}' has {var.shape} (chain, draw) draws, the posterior {shape}")
    if var.size == 0:
        raise ValueError(f"variable '{where}/{name}' has no draws")
    lo, hi = _SITE_RANGES.get(name, (-float(_F32.max), float(_F32.max)))
    _checks.in_range(f"variable '{where}/{name}'", np.asarray(var.values), lo, hi, unit="draws")
    return tuple(var.shape)


# --------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------


def display_name(path) -> str:
    """The path as error messages name it."""
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)


def write(idata, path: str | os.PathLike) -> None:
    """Writes an InferenceData to NetCDF atomically: into memory first (arviz's layout: root
    attrs, then each group, zlib for numbers), then to a temporary file in the destination's
    directory renamed over ``path`` with :func:`os.replace` (:func:`chinplan._files.write_bytes`)."""

    import xarray as xr

    def to_buffer(buffer) -> None:
        mode = "w"
        if getattr(idata, "attrs", None):
            xr.Dataset(attrs=idata.attrs).to_netcdf(buffer, mode=mode, engine="h5netcdf")
            mode = "a"
        for group in idata.groups():
            data = idata[group]
            encoding = {name: {"zlib": True} for name, var in data.variables.items() if var.dtype.kind in "biufc"}
            data.to_netcdf(buffer, mode=mode, group=group, engine="h5netcdf", encoding=encoding)
            mode = "a"

    write_bytes(path, netcdf_image(to_buffer))


def check_exists(path) -> None:
    """ValueError naming the file for a path that does not exist, is a directory, is empty or
    cannot be read (:func:`chinplan._files.check_input_file`; the command line checks the same
    before it imports JAX)."""
    check_input_file(path, "posterior file", directory=POSTERIOR_DIRECTORY, empty=POSTERIOR_EMPTY)


def read(path):
    """Reads a posterior file as an InferenceData, treating it as untrusted.

    Before reading any data, :func:`check_structure` refuses external storage, links, virtual
    datasets, odd types and declared sizes over :data:`MAX_BYTES`.

    Raises:
      ValueError: naming the path, for a missing, empty, truncated or non-NetCDF file, or one
        without a ``posterior`` group (never a raw h5py/netCDF traceback).
    """
    import arviz as az

    name = display_name(path)
    if isinstance(path, (str, os.PathLike)):
        check_exists(path)
        check_structure(path, name)
    try:  # eager: each group is read whole and its file closed at once, on every path (a lazy
        # load leaves the file open and reopens it later, so a refused file stayed open)
        with az.rc_context({"data.load": "eager"}):
            idata = az.from_netcdf(path, engine="h5netcdf")
    except Exception as err:  # h5py/netCDF raise many types for a damaged file
        detail = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        raise ValueError(
            f"posterior file {name!r} is not a readable chinplan posterior "
            f"(truncated, damaged or not NetCDF/HDF5: {detail})"
        ) from None
    if "posterior" not in idata.groups():
        raise ValueError(f"posterior file {name!r} has no 'posterior' group; not a chinplan posterior")
    return idata


# --------------------------------------------------------------------------------------
# The draws alone, fast: h5py, no arviz/xarray (the command line's hot path)
# --------------------------------------------------------------------------------------


class _Variable:
    """One variable read with h5py, shaped like the xarray variable :func:`check_site` reads."""

    def __init__(self, values: np.ndarray, dims: tuple[str, ...]):
        self.values, self.dims = values, dims
        self.shape, self.size = values.shape, values.size


def _dims(dset) -> tuple[str, ...]:
    """The NetCDF dimension names of an h5py dataset (its attached dimension scales)."""
    names = []
    for axis in dset.dims:
        scales = list(axis.values())
        names.append(scales[0].name.rsplit("/", 1)[-1] if scales else "?")
    return tuple(names)


def _attr(value):
    """An HDF5 attribute as xarray decodes it: text as str, a one-element array as its item."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.reshape(()).item() if value.dtype.kind in "SUO" else value.reshape(())[()]
    return value


#: What the fast reader decodes: the Chinchilla law's sites, the noise sites, the
#: extrapolation component; anything else goes through arviz (:func:`read`).
_FAST_LIKELIHOOD_NOISE = {"student_t": ("sigma", "nu"), "normal": ("sigma",), "huber": ("sigma",)}
_FAST_LAW_SITES = ("log_E", "log_A", "log_B", "alpha", "beta")


def read_draws(path) -> dict | None:
    """The draws of a Chinchilla-law posterior file, decoded once with h5py (no arviz, xarray
    or pandas): ``{"attrs", "posterior": {site: (chain, draw)}, "extrapolation": {u, v,
    kappa[, c]} or None, "extrapolation_attrs", "constant_data": {name: array}, "diverging":
    (chain, draw) or None}``.

    The file is treated as untrusted exactly as :func:`read` does (:func:`check_exists`,
    :func:`check_structure`, then :func:`check_site` on every site read). Returns None for
    anything the fast path does not decode or any check that fails (another law, another
    layout, a bad value), so the caller falls back to :func:`read` and its messages.
    """
    import h5py

    check_exists(path)
    name = display_name(path)
    check_structure(path, name)
    try:
        with h5py.File(path, "r") as handle:
            if "posterior" not in handle:
                return None
            group = handle["posterior"]
            attrs = {key: _attr(value) for key, value in group.attrs.items()}
            if attrs.get("law", "chinchilla") != "chinchilla" or "sigma_seed" in group:
                return None
            noise = _FAST_LIKELIHOOD_NOISE.get(attrs.get("likelihood", "student_t"))
            if noise is None:
                return None

            def variables(where: str, names) -> dict | None:
                found = {}
                shape = None
                for site in names:
                    if site not in handle[where]:
                        return None
                    dset = handle[where][site]
                    found[site] = _Variable(np.asarray(dset[()]), _dims(dset))
                    shape = check_site(found, where, site, shape)
                return {site: var.values for site, var in found.items()}

            draws = variables("posterior", _FAST_LAW_SITES + noise)
            if draws is None:
                return None
            extrapolation, extrapolation_attrs = None, {}
            if "extrapolation" in handle:
                extrapolation = variables("extrapolation", ("u", "v", "kappa", *(("c",) if "c" in handle["extrapolation"] else ())))
                extrapolation_attrs = {key: _attr(value) for key, value in handle["extrapolation"].attrs.items()}
                if extrapolation is None or extrapolation["u"].shape != draws["alpha"].shape:
                    return None
                domain = json.loads(extrapolation_attrs["extrapolation_domain"])
                if len(domain) != 3 or not all(np.isfinite(float(x)) for x in domain):
                    return None
            constant = {}
            if "constant_data" in handle:
                for key in ("log_n", "log_d"):
                    if key in handle["constant_data"] and isinstance(handle["constant_data"][key], h5py.Dataset):
                        constant[key] = np.asarray(handle["constant_data"][key][()], np.float64)
            observed = None
            if "observed_data" in handle and isinstance(handle["observed_data"].get("log_loss"), h5py.Dataset):
                observed = np.asarray(handle["observed_data"]["log_loss"][()], np.float64)
            check_values(domain if extrapolation is not None else None, constant, attrs, "chinchilla", draws, observed)
            diverging = None  # the sampler's divergences, for the convergence gate the command line recomputes
            stats = handle.get("sample_stats")
            if isinstance(stats, h5py.Group) and isinstance(stats.get("diverging"), h5py.Dataset):
                diverging = np.asarray(stats["diverging"][()])
                if diverging.dtype.kind not in "biu" or diverging.shape != draws["alpha"].shape:
                    return None
    except (ValueError, KeyError, TypeError, OSError):
        return None
    return {"attrs": attrs, "posterior": draws, "extrapolation": extrapolation,
            "extrapolation_attrs": extrapolation_attrs, "constant_data": constant, "diverging": diverging}  # fmt: skip
