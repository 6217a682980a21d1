"""``chinplan.fit`` with everything it learns (the fit, the convergence gate, the 5
leave-the-largest-out refits of the extrapolation component): wall time, compilation included.

    python benchmarks/bench_fit.py [--baseline-src DIR] [--datasets all,every4,below2e19] [--repeats 1]
        [--cpu-devices K] [--cli]

Each fit runs in a fresh Python process (compilation counted every time, no persistent
compilation cache). ``--baseline-src DIR`` also times the same fits with the chinplan source
tree in DIR (e.g. ``git archive <commit> | tar -x -C DIR``), interleaved with this tree's, so
before and after see the same machine load. The data sets are those of issue 23: ``all`` (the
245 embedded runs), ``every4`` (every fourth embedded run by compute, 62 runs) and
``below2e19`` (the embedded runs below 2e19 FLOPs, 63 runs). Goal (issue 23): each at most
30 s with the default settings, passing the convergence gate.

``--cpu-devices K`` gives the fitting process K CPU devices (``jax_num_cpu_devices``), so the
NUTS chains run K at a time, as ``chinplan fit`` does on a K-core machine. ``--cli`` times the
command itself instead (``python -m chinplan.cli fit RUNS.csv -o FILE``, its summary and file
included), twice per data set and tree with one fresh compilation cache: ``cold`` (the first
command on a machine) and ``warm`` (every later one).
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SELECT = r"""
runs = chinplan.datasets.chinchilla()
name = sys.argv[1]
if name == "every4":
    runs = runs.iloc[runs["flops"].to_numpy().argsort(kind="stable")[::4]].reset_index(drop=True)
elif name == "below2e19":
    runs = runs[runs["flops"] < 2e19].reset_index(drop=True)
"""

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import jax
if int(sys.argv[3]) > 1:
    jax.config.update("jax_num_cpu_devices", int(sys.argv[3]))
import chinplan
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS
assert chinplan.__file__.startswith(sys.argv[2]), (chinplan.__file__, sys.argv[2])
""" + SELECT + r"""
settings = dict(num_draws=1000, num_warmup=500, num_chains=4)  # the CLI defaults (seed 0)
t1 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    post = chinplan.fit(runs, key=jax.random.PRNGKey(0), progress=False, **settings)
t2 = time.perf_counter()
diag = post.diagnostics()
attempts = json.loads(post.attrs.get("fit_attempts", "[]"))
print(json.dumps({"data": name, "runs": len(runs), "import_s": round(t1 - t0, 2), "fit_s": round(t2 - t1, 2),
                  "draws": post.num_draws, "min_ess_bulk": round(float(diag.ess_bulk.min())), "max_rhat": round(float(diag.r_hat.max()), 4),
                  "divergences": post.num_divergences, "attempts": len(attempts), "converged": not post.convergence_problems(),
                  "extrapolation": post.has_extrapolation}))
"""


def time_fit(src: str, name: str, cpu_devices: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=src, JAX_ENABLE_COMPILATION_CACHE="false")
    env.pop("CHINPLAN_COMPILATION_CACHE", None)
    out = subprocess.run([sys.executable, "-c", CHILD, name, os.path.abspath(src), str(cpu_devices)], capture_output=True, text=True, env=env, cwd="/")
    if out.returncode:
        return {"data": name, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def runs_csv(src: str, name: str, folder: str) -> str:
    """The data set ``name`` as a CSV file in ``folder`` (the selections of CHILD)."""
    path = os.path.join(folder, f"{name}.csv")
    code = f"import sys, chinplan\n{SELECT}runs.to_csv({path!r}, index=False)\n"
    subprocess.run([sys.executable, "-c", code, name, os.path.abspath(src), "1"], check=True, env=dict(os.environ, PYTHONPATH=src), cwd="/")
    return path


def time_cli(src: str, name: str, folder: str) -> list[dict]:
    """``chinplan fit`` on the data set, cold then warm (one fresh compilation cache)."""
    import tempfile
    import time

    csv = runs_csv(src, name, folder)
    cache = tempfile.mkdtemp(dir=folder)
    env = dict(os.environ, PYTHONPATH=src, CHINPLAN_CACHE="1", CHINPLAN_CACHE_DIR=cache)
    rows = []
    for state in ("cold", "warm"):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "chinplan.cli", "fit", csv, "-o", os.path.join(folder, f"{name}-{state}.nc")],
                             capture_output=True, text=True, env=env, cwd=folder)  # fmt: skip
        seconds = time.perf_counter() - start
        row = {"data": name, "cache": state, "fit_s": round(seconds, 2), "exit": out.returncode}
        if out.returncode:
            row["error"] = out.stderr.strip().splitlines()[-1:]
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", default="", help="a chinplan source tree to time as 'before' (interleaved)")
    parser.add_argument("--datasets", default="all,every4,below2e19")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only-baseline", action="store_true", help="time only the baseline tree")
    parser.add_argument("--cpu-devices", type=int, default=1, help="CPU devices of the fitting process (chains run that many at a time)")
    parser.add_argument("--cli", action="store_true", help="time `chinplan fit` (cold and warm compilation cache) instead of chinplan.fit")
    args = parser.parse_args()
    trees = ([("before", args.baseline_src)] if args.baseline_src else []) + ([] if args.only_baseline else [("after", HERE)])
    if args.cli:
        import tempfile

        folder = tempfile.mkdtemp(prefix="bench-fit-cli-")
        print("| data | tree | cache | `chinplan fit` s | exit |")
        print("|---|---|---|---|---|")
        for _ in range(args.repeats):
            for name in args.datasets.split(","):
                for label, src in trees:
                    for row in time_cli(src, name, folder):
                        print(f"| {name} | {label} | {row['cache']} | {row['fit_s']:.1f} | {row['exit']} |", flush=True)
        return
    results = []
    for _ in range(args.repeats):
        for name in args.datasets.split(","):
            for label, src in trees:  # interleaved: before and after see the same machine load
                result = {"tree": label, "cpu_devices": args.cpu_devices, **time_fit(src, name, args.cpu_devices)}
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| data | runs | tree | fit s (best) | attempts | min bulk ESS | max R-hat | converged |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        for label, _ in trees:
            rows = [r for r in results if r["tree"] == label and r["data"] == name and "fit_s" in r]
            if not rows:
                print(f"| {name} | | {label} | failed | | | | |")
                continue
            r = min(rows, key=lambda r: r["fit_s"])
            print(f"| {name} | {r['runs']} | {label} | {r['fit_s']:.1f} | {r['attempts']} | {r['min_ess_bulk']} | {r['max_rhat']} | {r['converged']} |")


if __name__ == "__main__":
    main()
