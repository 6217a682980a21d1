"""Scale-out on JAX's multi-controller runtime: one process against several on 127.0.0.1.

Runs the same large ``chinplan.bands`` call (the pipeline benchmark's plan + TCO function,
``--draws`` x ``--scenarios``, chunk ``--chunk-size`` scenarios per device) in three setups,
each in fresh processes, interleaved over ``--repeats`` rounds:

  1 proc x 1 dev   one process, one CPU device (XLA threads its loops over the cores);
  1 proc x P dev   one process, P forced host devices (``shard_map`` over local devices);
  P proc x 1 dev   P processes on 127.0.0.1 (``jax.distributed.initialize``, gloo CPU
                   collectives), one device each: each evaluates its share of every chunk.

With ``--pin`` each process is pinned to one core (``os.sched_setaffinity``), so one
process on one core is compared with P processes on P cores: the scale-out measured with
the hardware growing as it does across hosts (without it, one process already threads over
every core of this machine). Compilation is excluded (a warm-up call on one step of scenarios in each process); the wall
time of the timed call is the slowest process's. Results must be identical bit for bit
across setups (same per-device chunk). Run::

    python benchmarks/bench_multihost.py --scenarios 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

WORKER = textwrap.dedent(
    """
    import os, sys, json, time
    process_id, processes, devices, port, out, draws, scenarios, chunk, pin = sys.argv[1:10]
    process_id, processes, devices = int(process_id), int(processes), int(devices)
    if pin == "1":  # one core per process: the hardware grows with the processes
        os.sched_setaffinity(0, {{process_id % os.cpu_count()}})
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={{devices}}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, numpy as np
    if processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{{port}}", num_processes=processes, process_id=process_id)
    sys.path.insert(0, {here!r})
    import chinplan
    from bench_pipeline import make_draws, make_scenarios, plan_and_cost, Q
    params = make_draws(int(draws))
    chunk = int(chunk)
    step = chunk * jax.device_count()
    c, q = make_scenarios(step, seed=5)
    jax.block_until_ready(chinplan.bands(plan_and_cost, params, c, q, q=Q, chunk_size=chunk, progress=False).values)
    c, q = make_scenarios(int(scenarios), seed=2)
    start, cpu = time.perf_counter(), time.process_time()
    values = jax.block_until_ready(chinplan.bands(plan_and_cost, params, c, q, q=Q, chunk_size=chunk, progress=False).values)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if process_id == 0:
        np.savez(out, **{{k: np.asarray(v) for k, v in values.items()}})
    print(json.dumps({{"wall": wall, "cpu": cpu}}))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(script: Path, processes: int, devices: int, out: Path, args, pin: bool = False) -> dict:
    port = str(free_port())
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(i), str(processes), str(devices), port, str(out),
                          str(args.draws), str(args.scenarios), str(args.chunk_size), "1" if pin else "0"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(processes)
    ]
    reports = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(stderr[-3000:])
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    return {"wall": max(r["wall"] for r in reports), "cpu": sum(r["cpu"] for r in reports)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--scenarios", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--pin", action="store_true",
                        help="pin each process to one core (1 process on 1 core against P processes on P cores)")
    args = parser.parse_args()
    p = args.processes
    if args.pin:
        setups = {"1 proc x 1 dev": (1, 1), f"{p} proc x 1 dev": (p, 1)}
    else:
        setups = {"1 proc x 1 dev": (1, 1), f"1 proc x {p} dev": (1, p), f"{p} proc x 1 dev": (p, 1)}
    print(f"{'one core per process; ' if args.pin else ''}{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; {args.draws} draws x {args.scenarios} "
          f"scenarios, chunk {args.chunk_size} per device, {args.repeats} interleaved rounds")
    times = {k: [] for k in setups}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER.format(here=str(HERE)))
        for _ in range(args.repeats):
            for name, (processes, devices) in setups.items():
                times[name].append(run(script, processes, devices, Path(tmp) / f"{processes}_{devices}.npz", args, args.pin))
        results = {name: np.load(Path(tmp) / f"{pr}_{dv}.npz") for name, (pr, dv) in setups.items()}
        first = next(iter(results.values()))
        identical = all(np.array_equal(r[k], first[k]) for r in results.values() for k in first.files)
    base = np.median([t["wall"] for t in times["1 proc x 1 dev"]])
    print(f"\n{'setup':16s} {'wall s':>8s} {'cpu s':>8s} {'x 1 proc':>9s}")
    figures = {"load_average_end": os.getloadavg()[0], "identical_bits": identical, "setups": {}}
    for name in setups:
        wall = float(np.median([t["wall"] for t in times[name]]))
        cpu = float(np.median([t["cpu"] for t in times[name]]))
        figures["setups"][name] = {"wall_s": wall, "cpu_s": cpu, "ratio": wall / base}
        print(f"{name:16s} {wall:8.2f} {cpu:8.2f} {wall / base:9.2f}")
    print(f"bands identical bit for bit across setups: {identical}; load average {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
