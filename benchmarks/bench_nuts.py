"""NUTS on the embedded Chinchilla runs: wall time with compilation included.

    python benchmarks/bench_nuts.py [--repeats 2] [--chain-method sequential] [--host-devices 4] [--extrapolation both]

Each repeat runs in a fresh Python process so that compilation is counted every time.
``--host-devices K`` sets ``XLA_FLAGS=--xla_force_host_platform_device_count=K`` in that
process (before JAX starts), so that chinplan.fit runs the 4 chains in parallel on the CPU's
cores; chinplan itself never sets JAX flags. Goal (issue 2): under 20 s on a 2-core CPU.
``--extrapolation both`` times each repeat with and without the extrapolation component's
five leave-the-largest-out refits, interleaved (goal of issue 12: the whole fit under 60 s).
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
import chinplan
from chinplan.inference.fit import DEFAULT_FIT_SETTINGS
settings = dict(DEFAULT_FIT_SETTINGS); seed = settings.pop("seed")
runs = chinplan.datasets.chinchilla()
t1 = time.perf_counter()
post = chinplan.fit(runs, key=jax.random.PRNGKey(seed), progress=False, chain_method=sys.argv[1] or None,
                    extrapolation=sys.argv[2] == "on", **settings)
jax.block_until_ready(post.params)
t2 = time.perf_counter()
diag = post.diagnostics()
print(json.dumps({"extrapolation": sys.argv[2], "import_s": t1 - t0, "fit_s": t2 - t1, "draws": post.num_draws,
                  "min_ess_bulk": float(diag.ess_bulk.min()), "max_rhat": float(diag.r_hat.max()),
                  "divergences": post.num_divergences}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chain-method", default="", help="sequential, vectorized or parallel (default: chinplan's choice)")
    parser.add_argument("--host-devices", type=int, default=0, help="force this many XLA CPU devices in the child (0: leave)")
    parser.add_argument("--extrapolation", choices=("on", "off", "both"), default="on", help="with the leave-out refits (default: on, as chinplan.fit)")
    args = parser.parse_args()
    modes = ("off", "on") if args.extrapolation == "both" else (args.extrapolation,)
    results = []
    for _ in range(args.repeats):
        env = dict(os.environ)
        if args.host_devices:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={args.host_devices}".strip()
        for mode in modes:  # interleaved, so both see the same machine load
            out = subprocess.run([sys.executable, "-c", CHILD, args.chain_method, mode], capture_output=True, text=True, check=True, env=env)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(results[-1])
    for mode in modes:
        best = min(r["fit_s"] for r in results if r["extrapolation"] == mode)
        print(f"NUTS fit (4 chains x 1000 draws, 500 warm-up, compile included), extrapolation {mode}: best {best:.1f} s of {args.repeats}")


if __name__ == "__main__":
    main()
