"""No output overwrites an input (issue 17, class 1): every command that writes checks its output
once, before any work, with ``chinplan._files.check_output``.

Property-style: hypothesis spells the same file in many ways (relative and absolute paths,
``.`` and ``sub/..`` segments, doubled slashes, a symlinked directory, a symlink to the file,
a hard link) and every writing command must refuse each spelling with exit code 2 and one
line naming the option, leaving the input byte-for-byte intact and nothing new in its
directory. Runs in-process (the check happens before any JAX work), so it is fast.
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chinplan import _files
from chinplan.cli import main
from chinplan.cli.parser import FIT_SUFFIXES, PLOT_SUFFIXES, SWEEP_SUFFIXES
from chinplan.inference.posterior import shipped_posterior_path

SEGMENTS = (".", "sub/..", "dlink", "", "sub/../dlink")
NAMES = ("input{s}", "link{s}", "hard{s}")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A directory with one input per suffix, a symlink and a hard link to each, a subdirectory
    and a symlink to the directory itself."""
    root = tmp_path_factory.mktemp("outputs")
    (root / "sub").mkdir()
    os.symlink(root, root / "dlink")
    for suffix in {*FIT_SUFFIXES, *PLOT_SUFFIXES, *SWEEP_SUFFIXES, ".toml"}:
        target = root / f"input{suffix}"
        target.write_bytes(os.urandom(256) + b"\x00precious\n")
        os.symlink(target.name, root / f"link{suffix}")
        os.link(target, root / f"hard{suffix}")
    return root


def spelled(root, segments, name, relative):
    """One spelling of ``root/name`` through ``segments`` (each a no-op on the resolved path)."""
    path = "/".join([str(root), *segments, name])  # an empty segment doubles a slash
    return os.path.relpath(path) if relative else path


spellings = st.tuples(st.lists(st.sampled_from(SEGMENTS), max_size=4), st.sampled_from(NAMES), st.booleans())


def run(argv) -> int:
    """``chinplan ARGV`` in-process: its exit code, from the parser (SystemExit) or a command."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def snapshot(root):
    """Every file under ``root`` (links not followed) with its bytes or link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[path] = os.readlink(path) if os.path.islink(path) else (None if os.path.isdir(path) else open(path, "rb").read())
    return out


#: (command line with {out} and {inp}, the suffix of the input the output collides with)
COMMANDS = [
    (["sweep", "{inp}", "-o", "{out}"], ".csv"),  # the scenario file, whatever its name
    (["sweep", "{toml}", "-o", "{out}", "--posterior", "{inp}"], ".nc"),
    (["sweep", "{toml}", "-o", "{out}", "--posterior", "{inp}"], ".parquet"),
    (["fit", "{inp}", "-o", "{out}"], ".nc"),
    (["plot", "fan", "-o", "{out}", "--posterior", "{inp}"], ".png"),
    (["plot", "iso-loss", "-o", "{out}", "--posterior", "{inp}"], ".svg"),
    (["plan", "--compute", "1e24", "--posterior", "{inp}", "--plot", "{out}"], ".svg"),
    (["tco", "--target-loss", "2", "--posterior", "{inp}", "--plot", "{out}"], ".png"),
    (["compare", "8B:1T", "--posterior", "{inp}", "--plot", "{out}"], ".png"),
]


@pytest.mark.parametrize("argv, suffix", COMMANDS, ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spelling=spellings)
def test_no_command_writes_over_an_input(tree, argv, suffix, spelling, capsys):
    segments, name, relative = spelling
    out = spelled(tree, segments, name.format(s=suffix), relative)
    before = snapshot(tree)
    values = {"out": out, "inp": str(tree / f"input{suffix}"), "toml": str(tree / "input.toml")}
    code = run([part.format(**values) for part in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    option = "--plot" if "--plot" in argv else "-o/--output"
    assert err.count("\n") == 1 and option in err and "same file as the input" in err and "Traceback" not in err
    assert snapshot(tree) == before  # the input byte for byte, no temporary, nothing new


@given(spelling=spellings, other=st.sampled_from(["other.nc", "sub/input.nc", "input.csv"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_same_file_is_the_resolved_file(tree, spelling, other):
    segments, name, relative = spelling
    path = spelled(tree, segments, name.format(s=".nc"), relative)
    assert _files.same_file(path, tree / "input.nc")
    assert not _files.same_file(path, tree / other)  # another file, existing or not
    with pytest.raises(_files.OutputPathError, match=r"^-o '.*' is the same file as the input"):
        _files.check_output(path, inputs=[None, tree / "input.nc"], suffixes=(".nc",), arg="-o")
    assert _files.check_output(tree / "new.nc", inputs=[path], suffixes=(".nc",), arg="-o") == str(tree / "new.nc")


@pytest.mark.parametrize("suffixes", [FIT_SUFFIXES, PLOT_SUFFIXES, SWEEP_SUFFIXES])
@given(name=st.text(st.characters(codec="ascii", exclude_characters="/\x00"), min_size=1, max_size=12),
       ext=st.sampled_from([".nc", ".NC", ".csv", ".png", ".svg", ".parquet", ".txt", "", ".nc.bak", ".tmp"]))  # fmt: skip
@settings(max_examples=40, deadline=None)
def test_the_suffix_is_the_format_written(suffixes, name, ext):
    path = "/tmp/" + name + ext
    if os.path.basename(path).lower().endswith(tuple(suffixes)):  # a dot-file ".csv" ends in .csv too (issue 26)
        assert _files.check_suffix(path, suffixes, "-o") == path
    else:
        with pytest.raises(_files.OutputPathError, match=r"^-o .* must end in " + ", ".join(suffixes).replace(".", r"\.")):
            _files.check_suffix(path, suffixes, "-o")


def test_fit_refuses_any_output_but_netcdf(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text("n,d,loss\n1,2,3\n")
    for out in ("runs.csv", "post.csv", "post.png", "post", "post.nc.tmp"):
        assert run(["fit", str(runs), "-o", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "must end in .nc" in err
    assert runs.read_text() == "n,d,loss\n1,2,3\n" and sorted(os.listdir(tmp_path)) == ["runs.csv"]


def test_the_shipped_posterior_is_an_input_too(tmp_path, capsys):
    shipped = shipped_posterior_path()
    before = open(shipped, "rb").read()
    scenarios = tmp_path / "s.toml"
    scenarios.write_text("")
    assert main(["sweep", str(scenarios), "-o", shipped]) == 2
    assert "same file as the input" in capsys.readouterr().err
    assert open(shipped, "rb").read() == before


def test_output_directory_is_checked_before_the_work(tmp_path, capsys):
    """A missing directory, or a directory that is the output, is refused before any work."""
    runs = tmp_path / "runs.csv"
    runs.write_text("not a runs table")  # loading it would fail: the output check must come first
    assert main(["fit", str(runs), "-o", str(tmp_path / "missing" / "post.nc")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "dir.nc").mkdir()
    assert run(["fit", str(runs), "-o", str(tmp_path / "dir.nc")]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["dir.nc", "runs.csv"]
