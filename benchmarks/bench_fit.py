"""``chinplan.fit`` with everything it learns (the fit, the convergence gate, the 5
leave-the-largest-out refits of the extrapolation component): wall time, compilation included.

    python benchmarks/bench_fit.py [--baseline-src DIR] [--datasets all,every4,below2e19] [--repeats 1]

Each fit runs in a fresh Python process (compilation counted every time, no persistent
compilation cache). ``--baseline-src DIR`` also times the same fits with the chinplan source
tree in DIR (e.g. ``git archive <commit> | tar -x -C DIR``), interleaved with this tree's, so
before and after see the same machine load. The data sets are those of issue 23: ``all`` (the
245 embedded runs), ``every4`` (every fourth embedded run by compute, 62 runs) and
``below2e19`` (the embedded runs below 2e19 FLOPs, 63 runs). Goal (issue 23): each at most
30 s with the default settings, passing the convergence gate.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import jax
import chinplan
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS
assert chinplan.__file__.startswith(sys.argv[2]), (chinplan.__file__, sys.argv[2])
runs = chinplan.datasets.chinchilla()
name = sys.argv[1]
if name == "every4":
    runs = runs.iloc[runs["flops"].to_numpy().argsort(kind="stable")[::4]].reset_index(drop=True)
elif name == "below2e19":
    runs = runs[runs["flops"] < 2e19].reset_index(drop=True)
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


def time_fit(src: str, name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=src, JAX_ENABLE_COMPILATION_CACHE="false")
    env.pop("CHINPLAN_COMPILATION_CACHE", None)
    out = subprocess.run([sys.executable, "-c", CHILD, name, os.path.abspath(src)], capture_output=True, text=True, env=env, cwd="/")
    if out.returncode:
        return {"data": name, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", default="", help="a chinplan source tree to time as 'before' (interleaved)")
    parser.add_argument("--datasets", default="all,every4,below2e19")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only-baseline", action="store_true", help="time only the baseline tree")
    args = parser.parse_args()
    trees = ([("before", args.baseline_src)] if args.baseline_src else []) + ([] if args.only_baseline else [("after", HERE)])
    results = []
    for _ in range(args.repeats):
        for name in args.datasets.split(","):
            for label, src in trees:  # interleaved: before and after see the same machine load
                result = {"tree": label, **time_fit(src, name)}
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
