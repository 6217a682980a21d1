"""Posterior files are untrusted (issue 17, class 3): a crafted-file suite for ``Posterior.load``.

Every file here is built from a small slice of the shipped posterior (2 chains x 10 draws) and
then damaged: extra, missing or renamed dims, a missing variable, NaN/inf/out-of-range draws
(hypothesis picks the variable, the damage and the position), external storage, soft and
external links, virtual datasets, odd data types and huge declared sizes. Each must be refused
with a ValueError naming the file and the variable; none may return another file's bytes or
allocate what it declares.
"""

import os
import resource
import time

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chinplan
from chinplan import Posterior
from chinplan.inference import posterior_file

SCALES = ("alpha", "beta", "sigma", "nu")
LOGS = ("log_E", "log_A", "log_B")
SITES = LOGS + SCALES
SOME_SITES = ("log_A", "beta", "nu")  # one log, one law scale, one noise site (each load costs ~0.3 s)


@pytest.fixture(scope="module")
def idata():
    return chinplan.default_posterior().to_arviz().isel(chain=slice(0, 2), draw=slice(0, 10))


@pytest.fixture(scope="module")
def good(idata, tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.nc"
    Posterior(idata).save(path)
    return path


def write(idata, path, group="posterior", **variables):
    """``idata`` with ``variables`` replaced in ``group``, written to ``path``."""
    copy = idata.copy()
    dataset = getattr(copy, group).copy()  # never the module fixture's own dataset
    for name, value in variables.items():
        if value is None:
            dataset = dataset.drop_vars(name)
        else:
            dataset[name] = value
    setattr(copy, group, dataset)
    copy.to_netcdf(str(path), engine="h5netcdf")
    return path


def refused(path, *patterns):
    with pytest.raises(ValueError) as info:
        Posterior.load(path)
    message = str(info.value)
    assert message.startswith(f"posterior file {str(path)!r}"), message
    for pattern in patterns:
        assert pattern in message, message
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_good_file_loads(good):
    assert Posterior.load(good).num_draws == 20


# --- dims ------------------------------------------------------------------------------


@pytest.mark.parametrize("site", SOME_SITES)
def test_an_extra_dim_is_refused(idata, tmp_path, site):
    path = write(idata, tmp_path / "extra.nc", **{site: idata.posterior[site].expand_dims(school=3, axis=-1)})
    refused(path, f"'posterior/{site}'", "('chain', 'draw', 'school')")


@pytest.mark.parametrize("site", SOME_SITES)
def test_a_missing_dim_is_refused(idata, tmp_path, site):
    path = write(idata, tmp_path / "missing.nc", **{site: idata.posterior[site].isel(chain=0, drop=True)})
    refused(path, f"'posterior/{site}'", "('draw',)")


@pytest.mark.parametrize("rename", [{"chain": "c"}, {"draw": "sample"}, {"chain": "draw", "draw": "chain"}])
def test_renamed_dims_are_refused(idata, tmp_path, rename):
    copy = idata.copy()
    if len(rename) == 2:  # transposed: (draw, chain)
        copy.posterior = copy.posterior.transpose("draw", "chain")
    else:
        copy.posterior = copy.posterior.rename(rename)
    copy.to_netcdf(str(tmp_path / "renamed.nc"), engine="h5netcdf")
    refused(tmp_path / "renamed.nc", "variable 'posterior/", "exactly ('chain', 'draw')")


@pytest.mark.parametrize("site", SOME_SITES)
def test_a_missing_variable_is_refused(idata, tmp_path, site):
    refused(write(idata, tmp_path / "lacking.nc", **{site: None}), "lacks the variables", site)


def test_the_extrapolation_group_is_checked_too(idata, tmp_path):
    kappa = idata.extrapolation["kappa"]
    refused(write(idata, tmp_path / "a.nc", "extrapolation", kappa=-kappa - 1), "'extrapolation/kappa'")
    refused(write(idata, tmp_path / "b.nc", "extrapolation", u=kappa.expand_dims(k=2, axis=-1)), "'extrapolation/u'", "dims")
    refused(write(idata, tmp_path / "c.nc", "extrapolation", v=None), "extrapolation group lacks", "'v'")
    short = idata.extrapolation.isel(draw=slice(0, 5))
    copy = idata.copy()
    copy.extrapolation = short
    copy.to_netcdf(str(tmp_path / "d.nc"), engine="h5netcdf")
    refused(tmp_path / "d.nc", "'extrapolation/u'", "(2, 5)", "(2, 10)")


# --- values: hypothesis picks the site, the damage and the draw ---------------------------

DAMAGE = {
    "nan": lambda site, x: np.nan,
    "inf": lambda site, x: np.inf,
    "-inf": lambda site, x: -np.inf,
    "nonpositive": lambda site, x: -abs(x) if site in SCALES else x,
    "zero": lambda site, x: 0.0 if site in SCALES else x,
    "float32-overflow": lambda site, x: 1e39 if site in SCALES else 100.0,  # finite in float64 only
    "float32-underflow": lambda site, x: 1e-39 if site in SCALES else -100.0,  # exp(log) is 0 in float32
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=st.sampled_from(SITES), damage=st.sampled_from(sorted(DAMAGE)), chain=st.integers(0, 1), draw=st.integers(0, 9))
def test_damaged_draws_are_refused_naming_the_variable(idata, tmp_path, site, damage, chain, draw):
    values = np.asarray(idata.posterior[site].values, np.float64).copy()
    new = DAMAGE[damage](site, values[chain, draw])
    if new == values[chain, draw]:
        return  # this damage does not apply to this site (a log may be negative or zero)
    values[chain, draw] = new
    path = write(idata, tmp_path / f"{site}-{damage}.nc", **{site: (("chain", "draw"), values)})
    refused(path, f"variable 'posterior/{site}'", "in 1 of 20 draws")


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=st.sampled_from(SITES), factor=st.floats(0.5, 2.0))
def test_plausible_draws_still_load(idata, tmp_path, site, factor):
    """The checks refuse damage, not data: rescaled draws (still in range) load unchanged."""
    values = np.asarray(idata.posterior[site].values, np.float64) * factor
    path = write(idata, tmp_path / "scaled.nc", **{site: (("chain", "draw"), values)})
    np.testing.assert_allclose(Posterior.load(path).draws(site), values.reshape(-1), rtol=1e-6)


# --- HDF5 structure: nothing is read from elsewhere, nothing huge is allocated ------------


def crafted(good, tmp_path, name, build):
    path = tmp_path / name
    path.write_bytes(good.read_bytes())
    with h5py.File(path, "a") as handle:
        build(handle)
    return path


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(b"SECRET-BYTES-" * 100)
    return str(path)


def test_external_storage_is_refused(good, tmp_path, secret):
    def build(handle):  # alpha's values become the secret file's bytes
        del handle["posterior/alpha"]
        handle.create_dataset("posterior/alpha", shape=(2, 10), dtype="<f4", external=[(secret, 0, 80)])

    refused(crafted(good, tmp_path, "external.nc", build), "'posterior/alpha'", "external storage")
    leak = crafted(good, tmp_path, "leak.nc", lambda h: h.create_dataset("observed_data/leak", shape=(64,), dtype="u1", external=[(secret, 0, 64)]))
    refused(leak, "'observed_data/leak'", "external storage")


@pytest.mark.parametrize("kind", ["soft", "external"])
def test_links_are_refused(good, tmp_path, secret, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.arange(20.0).reshape(2, 10)
    link = h5py.SoftLink("/posterior/beta") if kind == "soft" else h5py.ExternalLink(str(other), "/x")

    def build(handle):
        handle["posterior/gamma"] = link

    refused(crafted(good, tmp_path, f"{kind}.nc", build), "'posterior/gamma'", f"link of kind {kind!r}")


def test_virtual_datasets_are_refused(good, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.arange(20.0, dtype="f4").reshape(2, 10)
    layout = h5py.VirtualLayout(shape=(2, 10), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(2, 10))
    refused(crafted(good, tmp_path, "virtual.nc", lambda h: h.create_virtual_dataset("posterior/virt", layout)), "'posterior/virt'", "virtual dataset")


def test_odd_data_types_are_refused(good, tmp_path):
    compound = np.dtype([("a", "f8"), ("b", "i4")])
    path = crafted(good, tmp_path, "compound.nc", lambda h: h.create_dataset("posterior/pair", shape=(3,), dtype=compound))
    refused(path, "'posterior/pair'", "data type")


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2, 10, 10**8), (2**40,)])
def test_huge_declared_sizes_are_refused_before_reading(good, tmp_path, shape):
    def build(handle):
        chunks = (1,) * (len(shape) - 1) + (1024,)
        handle.create_dataset("posterior/huge", shape=shape, dtype="f8", chunks=chunks, compression="gzip")

    path = crafted(good, tmp_path, "huge.nc", build)
    assert os.path.getsize(path) < 10 * 2**20  # small on disk
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    refused(path, "'posterior/huge'", f"more than {posterior_file.MAX_BYTES} bytes")
    assert time.perf_counter() - start < 5.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 200 * 1024  # KiB: nothing of it allocated


def test_many_objects_and_deep_groups_are_refused(good, tmp_path):
    def deep(handle):
        group = handle
        for k in range(posterior_file.MAX_DEPTH + 2):
            group = group.create_group(f"g{k}")

    refused(crafted(good, tmp_path, "deep.nc", deep), "deeper than")

    def loop(handle):  # a hard link from a group to its parent: walking it never ends
        handle["posterior/loop"] = handle["posterior"]

    refused(crafted(good, tmp_path, "loop.nc", loop), "posterior/loop")


def test_the_cli_refuses_a_crafted_file_in_one_line(good, tmp_path, secret, capsys):
    def build(handle):
        del handle["posterior/alpha"]
        handle.create_dataset("posterior/alpha", shape=(2, 10), dtype="<f4", external=[(secret, 0, 80)])

    path = crafted(good, tmp_path, "external.nc", build)
    from chinplan.cli import main

    assert main(["plan", "--compute", "1e24", "--posterior", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "external storage" in err and "SECRET" not in err


def test_no_file_stays_open_after_a_load_or_a_refusal(good, idata, tmp_path):
    def open_files():
        return [i.name for i in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)]

    before = open_files()
    posterior = Posterior.load(good)
    posterior.summary(), posterior.extrapolated_params()
    bad = write(idata, tmp_path / "bad.nc", alpha=-idata.posterior["alpha"])
    refused(bad)
    assert open_files() == before
    bad.write_bytes(good.read_bytes())  # a refused file can be replaced at once
