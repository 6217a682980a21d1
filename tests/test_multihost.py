"""Two processes on 127.0.0.1 (JAX's multi-controller runtime, gloo CPU collectives, one
host device each) split the scenarios and return the single-process results bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from chinplan import engine
from chinplan.law import HOFFMANN_2022, LawParams, loss
from chinplan.optima import compute_optimal

REPO = Path(__file__).resolve().parents[1]
BUDGETS = np.logspace(20, 25, 37)
N_GRID = np.logspace(8, 11, 5)[:, None]
D_GRID = np.logspace(10, 13, 7)[None, :]
CHUNK = 4  # scenarios per device per step, the same in both runs: the very same kernel
SEEN: list[float] = []  # budgets this process evaluated fn at (filled by a debug callback)


def make_draws(n_draws: int = 64, seed: int = 0) -> LawParams:
    rng = np.random.default_rng(seed)
    return LawParams(*(np.float32(v) * (1 + 0.05 * rng.standard_normal(n_draws)).astype(np.float32) for v in HOFFMANN_2022))


def recorded_plan(theta, compute):
    """compute_optimal, recording on the host which budgets this process evaluates."""
    jax.debug.callback(lambda c: SEEN.append(float(c)), compute)
    return compute_optimal(theta, compute)


def results() -> dict[str, np.ndarray]:
    draws = make_draws()
    b = engine.bands(recorded_plan, draws, BUDGETS, chunk_size=CHUNK, progress=False)
    return {
        "n": np.asarray(b.values.n), "loss": np.asarray(b.values.loss),
        "mean": np.asarray(engine.expectation(loss, draws, N_GRID, D_GRID, chunk_size=CHUNK)),
        "cvar": np.asarray(engine.cvar(loss, draws, N_GRID, D_GRID, level=0.9, chunk_size=CHUNK)),
    }


WORKER = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, numpy as np
    process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{{port}}", num_processes=2, process_id=process_id,
                                   initialization_timeout=20)
    except Exception as error:  # the platform cannot start the runtime: say why, exit 77
        print(f"cannot start jax.distributed: {{type(error).__name__}}: {{error}}", file=sys.stderr)
        sys.exit(77)
    assert jax.process_count() == 2 and jax.device_count() == 2, (jax.process_count(), jax.device_count())
    sys.path.insert(0, {tests!r})
    import test_multihost as t
    got = t.results()
    jax.effects_barrier()
    np.savez(out, seen=np.asarray(t.SEEN), **got)
    jax.distributed.shutdown()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_split_scenarios_and_match_one(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    port = str(free_port())
    procs = [
        subprocess.Popen([sys.executable, str(script), str(i), port, str(tmp_path / f"p{i}.npz")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    try:
        outcomes = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    codes = [p.returncode for p in procs]
    if 77 in codes:
        pytest.skip("this platform cannot start JAX's distributed runtime on 127.0.0.1: "
                    + " | ".join(err.strip().splitlines()[-1] for (_, err) in outcomes if err.strip()))
    assert codes == [0, 0], [err[-2000:] for _, err in outcomes]

    SEEN.clear()
    want = results()  # one process, one device, the same per-device chunk size
    parts = [np.load(tmp_path / f"p{i}.npz") for i in range(2)]
    for part in parts:
        for name, value in want.items():
            np.testing.assert_array_equal(part[name], value, err_msg=name)

    # Each process evaluated only its devices' shards: per step of 2 x CHUNK padded scenarios,
    # process 0 the first CHUNK and process 1 the next (padding repeats scenario 0).
    steps = -(-BUDGETS.size // (2 * CHUNK))
    padded = np.concatenate([BUDGETS, np.repeat(BUDGETS[:1], steps * 2 * CHUNK - BUDGETS.size)]).astype(np.float32)
    owner = (np.arange(padded.size) // CHUNK) % 2
    for i, part in enumerate(parts):
        assert set(part["seen"].tolist()) == set(padded[owner == i].astype(float).tolist())
    assert len(set(parts[0]["seen"].tolist()) & set(parts[1]["seen"].tolist())) == 1  # scenario 0 (padding)
