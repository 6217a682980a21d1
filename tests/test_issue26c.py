"""Issue 26, found again by the audit of session 29: findings whose library side was still open.

Class 6, "fixed-design costs overflow to inf and print as results": the command line refused
such a design (``compare 1e30:1e30``) and a sweep's grid did, but the library's own decision
tables did not: ``evaluate_designs(P, [1e30], [1e30], DEP)`` returned ``dollars_mean = inf``
as a result, and ``tco``/``cost_bands`` blamed "the deployment's price, query volume or MFU"
for an overflow that the design's size caused. One check now, :func:`chinplan.costs.check_design`,
before any work.
"""

import re

import jax.numpy as jnp
import numpy as np
import pytest

import chinplan
from chinplan import costs
from chinplan.costs import Deployment
from chinplan.decide import risk

#: 8 draws of the published law: what is checked is the designs, before any draw is used.
P = chinplan.LawParams(*(jnp.full(8, v, jnp.float32) for v in chinplan.HOFFMANN_2022))
DEP = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0)
FLOPS = r"the training FLOPs 6 N D of the largest design must be representable in float32.*got about 1e60\.8$"


@pytest.mark.parametrize("call, name", [
    (lambda: risk.evaluate_designs(P, [7e10, 1e30], [1.4e12, 1e30], DEP), "n x d"),
    (lambda: risk.prob_cheaper(P, [7e10, 1e30], [1.4e12, 1e30], DEP), "n x d"),
    (lambda: risk.cost_bands(P, 1e30, 1e30, DEP), "n x d"),
    (lambda: risk.expected_cost(P, 1e30, 1e30, DEP), "n x d"),
    (lambda: risk.cost_cvar(P, 1e30, 1e30, DEP), "n x d"),
    (lambda: risk.chance_constrained(P, [1e9, 1e30], [1e11, 1e30], 2.5, 0.5, DEP), "n_grid x d_grid"),
    (lambda: costs.tco(1e30, 1e30, DEP), "n x d"),
], ids=["evaluate_designs", "prob_cheaper", "cost_bands", "expected_cost", "cost_cvar", "chance_constrained", "tco"])  # fmt: skip
def test_a_design_whose_training_flops_overflow_is_refused_not_priced_at_inf(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: {FLOPS}") as caught:
        call()
    assert "price, query volume or MFU" not in str(caught.value)  # the design's size, not the deployment


def test_designs_that_fit_the_dtype_are_priced_as_before():
    frame = risk.evaluate_designs(P, [7e10, 1e15], [1.4e12, 1e15], DEP)  # 6e30 FLOPs: far, but representable
    assert np.isfinite(frame["dollars_mean"]).all() and frame["dollars_mean"].iloc[1] > frame["dollars_mean"].iloc[0]
    paired = risk.evaluate_designs(P, [1e30, 1.0], [1.0, 1e30], DEP)  # paired designs: 6e30 each, not 1e30 x 1e30
    assert np.isfinite(paired["dollars_mean"]).all()


# ----- class 2: a signal is answered within a second, even inside one long XLA computation -----
#: ``chinplan ARGV`` as the program (``cli.main()``, argv None) whose work is one XLA computation
#: that never returns (a float32 count that stops growing at 2^24; the NUTS chain or sweep chunk it stands for
#: took 3.6 s to 90 s): READY is printed once it is compiled and running.
SPIN_RUNNER = r"""
import sys, threading, time
sys.argv = ["chinplan", *sys.argv[1:]]
import chinplan.cli as cli

def spin(*args, **kwargs):
    import jax
    import jax.numpy as jnp
    from jax import lax

    loop = jax.jit(lambda x: lax.while_loop(lambda c: c >= 0.0, lambda c: c + 1.0, x))  # float32: stuck at 2^24, forever
    threading.Timer(1.0, lambda: print("READY", file=sys.stderr, flush=True)).start()  # the loop is running by then
    return loop(jnp.float32(1.0)).block_until_ready()

from chinplan.cli import fit as fit_command
from chinplan import engine
fit_command.fit = spin
engine.bands = spin
sys.exit(cli.main())
"""


@pytest.mark.parametrize("command, sig, code, line", [
    ("fit", "SIGTERM", 143, "chinplan: terminated\n"),
    ("sweep", "SIGINT", 130, "chinplan: interrupted\n"),
    ("sweep", "SIGHUP", 129, "chinplan: hung up (terminal closed)\n"),
])  # fmt: skip
def test_a_signal_inside_one_long_xla_computation_ends_the_command_within_a_second(tmp_path, command, sig, code, line):
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_faults import ENV, ROOT, SWEEP_TOML, listing, wait_ready

    (tmp_path / "runs.csv").write_text("n,d,loss\n" + "".join(f"{10**k},{20 * 10**k},{3 - k / 10}\n" for k in range(6, 16)))
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    (tmp_path / "out.nc").write_bytes(b"the previous output")
    argv = {"fit": ["fit", str(tmp_path / "runs.csv"), "-o", str(tmp_path / "out.nc")],
            "sweep": ["sweep", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out.nc"), "--draws", "50"]}[command]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", SPIN_RUNNER, *argv], env={**ENV, "CHINPLAN_CPU_DEVICES": "1"}, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_ready(process)
        start = time.monotonic()
        process.send_signal(getattr(signal, sig))
        out, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code and err == line and out == "", (process.returncode, err)
    # 0.5 s of grace for the main thread (SIGNAL_GRACE), then the exit: 2 s leaves room for a busy machine
    assert elapsed < 2.0, elapsed
    assert (tmp_path / "out.nc").read_bytes() == b"the previous output"
    assert sorted(listing(tmp_path)) == ["out.nc", "runs.csv", "s.toml"]  # no temporary, no sweep lock left
    assert not os.path.exists(tmp_path / "out.nc.parts.lock")


#: The program entry with its parser slowed down: READY, then 30 s before the command starts.
SLOW_PARSER_RUNNER = r"""
import sys, time
sys.argv = ["chinplan", *sys.argv[1:]]
import chinplan.cli as cli

real = cli.build_parser

def slow():
    print("READY", file=sys.stderr, flush=True)
    time.sleep(30)
    return real()

cli.build_parser = slow
sys.exit(cli.main())
"""


@pytest.mark.parametrize("sig, code, line", [
    ("SIGTERM", 143, "chinplan: terminated\n"),
    ("SIGINT", 130, "chinplan: interrupted\n"),
])  # fmt: skip
def test_a_signal_while_the_program_builds_its_parser_is_one_line(sig, code, line):
    """Before the command's handlers (signals_unwind) take over, the ``chinplan`` script had
    Python's defaults: SIGTERM killed it silently (-15), SIGINT printed a KeyboardInterrupt traceback."""
    import signal
    import subprocess
    import sys

    from test_faults import ENV, ROOT, as_from_a_shell, wait_ready

    process = subprocess.Popen(as_from_a_shell([sys.executable, "-c", SLOW_PARSER_RUNNER, "hardware"]), env=ENV, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_ready(process)
        process.send_signal(getattr(signal, sig))
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code and err == line and out == "", (process.returncode, err)


# ----- class 6: sizes beyond a thousand Q print as powers of ten, never "1.16e+06Q" ----------------
def test_huge_counts_read_as_powers_of_ten_and_rounding_moves_up_a_unit():
    from chinplan.format import human_count

    assert human_count(1.16e36) == "1.16e36" and human_count(2.21e18) == "2.21e18" and human_count(-2e20) == "-2e20"
    assert human_count(999.9e12) == "1Q" and human_count(999.6) == "1K"  # not '1e+03T', '1e+03'
    assert human_count(70e9) == "70B" and human_count(5.2e5) == "520K" and human_count(999.4) == "999"


def test_plan_at_the_largest_budget_prints_no_garbled_sizes(capsys):
    from test_issue14 import run

    code, out, err = run(capsys, ["plan", "--compute", "3e38", "--draws", "100"])  # 100 draws: only the format is checked
    assert code == 0, err
    assert "e+" not in out and re.search(r"\b\d\.\d+e1[89]\b", out), out  # N* about 2e18: a power of ten, not '2.21e+03Q'


# ----- class 8: a one-draw posterior is refused plainly where a command needs more --------------
def test_a_one_draw_posterior_is_one_plain_line_for_next_runs_and_the_pair_plot(capsys, tmp_path):
    """The issue met "arange: cannot compute length" on a one-draw posterior; every other command
    answers with it (a warning that one chain has no R-hat)."""
    from test_issue14 import run

    idata = chinplan.default_posterior().to_arviz().isel(chain=[0], draw=[0])
    path = tmp_path / "one.nc"
    idata.to_netcdf(str(path), engine="h5netcdf")
    code, _, err = run(capsys, ["next-runs", "--target-compute", "1e24", "--budget", "1e21", "--posterior", str(path)])
    assert code == 1 and err.splitlines()[-1] == f"chinplan: error: next-runs needs a posterior of at least 2 draws to simulate outcomes; {path} has 1"
    code, _, err = run(capsys, ["plot", "pair", "-o", str(tmp_path / "pair.png"), "--posterior", str(path)])
    assert code == 1 and err.splitlines()[-1] == "chinplan: error: a pair plot needs at least 2 posterior draws; the posterior has 1"
    assert "arange" not in err and "Traceback" not in err
    code, out, err = run(capsys, ["plan", "--compute", "1e24", "--posterior", str(path)])
    assert code == 0 and "holds 1 chain" in err, err


# ----- class 5: a runs file is read within a size cap, as plain bytes --------------------------
def test_a_runs_file_beyond_the_size_cap_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """The issue's 0.76 MB .gz of 30M rows took 5.3 GB and 11 minutes; a file is now read up to
    MAX_RUNS_FILE_BYTES (256 MiB) and refused beyond it (here with the cap lowered to 1 KiB:
    the rule, not 256 MiB of test data)."""
    from chinplan.inference import runs as runs_module

    text = "params,tokens,loss\n" + "".join(f"{1e8 * (1 + i)},{2e9 * (1 + i)},{3.0 - i / 1000}\n" for i in range(100))
    path = tmp_path / "runs.csv"
    path.write_text(text)
    assert len(chinplan.load_runs(path)) == 100
    monkeypatch.setattr(runs_module, "MAX_RUNS_FILE_BYTES", 1024)
    monkeypatch.setattr(runs_module.pd, "read_csv", lambda *a, **k: pytest.fail("parsed a file beyond the cap"))
    with pytest.raises(ValueError, match=r"^runs file '.*runs\.csv' is larger than 1,024 bytes \(the most chinplan reads"):
        chinplan.load_runs(path)


def test_gzip_bytes_under_a_csv_name_are_not_decompressed(tmp_path):
    import gzip

    path = tmp_path / "runs.csv"  # the name says plain CSV; the bytes are gzip
    path.write_bytes(gzip.compress(("params,tokens,loss\n" + "1e8,2e9,3.0\n" * 20).encode()))
    with pytest.raises(ValueError, match=r"^runs file '.*runs\.csv'"):
        chinplan.load_runs(path)


def test_the_program_sets_its_handlers_at_the_first_line_of_chinplan_and_a_library_user_keeps_theirs(tmp_path, monkeypatch):
    """A signal while the program's modules load (0.05-0.3 s in: the issue's traceback at 0.05 s,
    "unexpected ImportError") is one line: the handlers are set by ``chinplan/__init__.py``'s first
    lines when the process is the program (the script, or ``python -m chinplan.cli``), and only then."""
    import signal
    import subprocess
    import sys

    from chinplan import _program
    from test_faults import ENV, ROOT, as_from_a_shell, wait_ready

    for orig, argv0, expected in (([sys.executable, "-m", "chinplan.cli", "plan"], "-m", True),
                                  ([sys.executable, "/usr/bin/chinplan", "plan"], "/usr/bin/chinplan", True),
                                  ([sys.executable, "-m", "pytest"], "/x/pytest/__main__.py", False),
                                  ([sys.executable, "-c", "import chinplan"], "-c", False)):  # fmt: skip
        monkeypatch.setattr(sys, "orig_argv", orig)
        monkeypatch.setattr(sys, "argv", [argv0])
        assert _program.is_program() is expected, orig
    script = tmp_path / "chinplan"  # what a console script is called
    script.write_text("import sys, time\nimport chinplan\nprint('READY', file=sys.stderr, flush=True)\ntime.sleep(30)\n")
    library = tmp_path / "user.py"
    library.write_text("import signal, chinplan\nprint(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
                       "signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n")  # fmt: skip
    done = subprocess.run(as_from_a_shell([sys.executable, str(library)]), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done  # importing chinplan changes no handler of a Python user
    for sig, code, line in ((signal.SIGINT, 130, "chinplan: interrupted\n"), (signal.SIGTERM, 143, "chinplan: terminated\n")):
        process = subprocess.Popen(as_from_a_shell([sys.executable, str(script)]), env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(process)
            process.send_signal(sig)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == code and err == line, (process.returncode, err)  # not a KeyboardInterrupt traceback
