"""One-shot accelerator benchmark: bands throughput, the reduction's share, the NUTS fit.

On a machine with a CUDA JAX image (jax[cuda] already installed), from the checkout::

    pip install --no-deps -e . && python benchmarks/gpu.py --json gpu.json

It installs nothing; packages chinplan needs beyond JAX (numpyro, optax, arviz, ...) must be
in the image (the NUTS step is skipped, with the reason, if numpyro is missing). On one
H100/H200 the whole run is sized to finish in well under 8 minutes. ``--small`` runs the
same steps at CI size on a CPU (about a minute on two cores). It prints:

* the device (name, platform, count), its bf16 peak from :mod:`chinplan.costs` where the
  name is known, and its peak memory in use after the run where the backend reports it;
* ``chinplan.bands(loss, ...)`` over 1,000 draws x 1e7 and 1e8 scenarios (an N x D grid),
  in draw-scenario pairs/s, compilation excluded (a warm-up call on a small grid with the
  same chunk), and the compile time;
* the reduction's share: ``1 - t(expectation) / t(bands)`` on the 1e7 grid (``expectation``
  evaluates the same law with a mean);
* the exact reductions per chunk on this backend (bitonic network against ``jnp.sort``;
  they must agree bit for bit), to choose the reduction per backend by measurement;
* ``chinplan.fit`` on the 245 embedded runs with the shipped settings (compile included).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import chinplan
from chinplan import costs, engine
from chinplan.law import LawParams, loss

Q = (0.05, 0.5, 0.95)


def grid(n_scenarios: int) -> tuple[np.ndarray, np.ndarray]:
    side = math.isqrt(n_scenarios - 1) + 1
    return np.logspace(8, 12, side)[:, None], np.logspace(10, 14, side)[None, :]


def draws(n_draws: int) -> LawParams:
    post = chinplan.default_posterior().params
    idx = np.arange(n_draws) % np.asarray(post.E).shape[0]
    return LawParams(*(np.asarray(p, np.float32)[idx] for p in post))


def timed(run) -> float:
    start = time.perf_counter()
    jax.block_until_ready(run())
    return time.perf_counter() - start


#: Device-kind substrings (as JAX reports them, upper case) -> chinplan.costs hardware names.
KNOWN = (("H200", "H200"), ("H100 PCIE", "H100_PCIE"), ("H100", "H100_SXM"), ("A100", "A100"), ("B200", "B200"),
         ("GB200", "GB200"), ("MI300X", "MI300X"), ("MI325X", "MI325X"), ("V5E", "TPU_V5E"), ("V5 LITE", "TPU_V5E"),
         ("V5P", "TPU_V5P"), ("V6E", "TPU_V6E"), ("V6 LITE", "TPU_V6E"))


def device_peak(kind: str) -> str:
    """The dense bf16 peak and memory bandwidth of the chinplan.costs entry matching ``kind``."""
    for fragment, name in KNOWN:
        if fragment in kind.upper():
            hw = getattr(costs, name)
            return f"{name}: {hw.bf16 / 1e12:,.0f} TFLOP/s bf16 dense, {hw.memory_bandwidth / 1e12:.2f} TB/s"
    return "not in chinplan.costs"


def reductions(n_draws: int, chunk: int, repeats: int) -> dict:
    """Seconds per chunk of evaluated pipeline outputs for each exact reduction design of
    ``bench_reduction.py`` on this backend (bitonic network with reshapes, with gathers,
    counting-pass selection, ``jnp.sort``); they must agree bit for bit."""
    from bench_reduction import DESIGNS, chunks

    y = jnp.asarray(chunks(n_draws, chunk)["dollars"])
    out = {"chunk_scenarios": chunk}
    reference = None
    for name, design in DESIGNS.items():
        f = jax.jit(design)
        value = np.asarray(f(y))
        reference = value if reference is None else reference
        out[name] = {"s": float(np.median([timed(lambda f=f: f(y)) for _ in range(repeats)])),
                     "bitwise_equal": bool(np.array_equal(value, reference))}
    return out


def nuts(small: bool) -> dict:
    try:
        import numpyro
    except ImportError as error:
        return {"skipped": f"numpyro is not installed ({error})"}
    from chinplan.inference.fit import DEFAULT_FIT_SETTINGS

    settings = dict(DEFAULT_FIT_SETTINGS)
    seed = settings.pop("seed")
    if small:
        settings.update(num_draws=300, num_warmup=300, num_chains=1)
    start = time.perf_counter()
    post = chinplan.fit(chinplan.datasets.chinchilla(), key=jax.random.PRNGKey(seed), progress=False,
                        extrapolation=not small, **settings)
    jax.block_until_ready(post.params)
    return {"fit_s": time.perf_counter() - start, "draws": post.num_draws, "divergences": int(post.num_divergences),
            "settings": "shipped" if not small else "small: 1 chain, 300 draws, 300 warm-up, no extrapolation component"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI size on a CPU: 2e4 and 1e5 scenarios")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    dev = jax.devices()[0]
    sizes = (20_000, 100_000) if args.small else (10_000_000, 100_000_000)
    params = draws(args.draws)
    figures = {
        "device": dev.device_kind, "platform": dev.platform, "device_count": jax.device_count(),
        "peak": device_peak(dev.device_kind), "jax": jax.__version__, "host": platform.node(),
        "draws": args.draws, "load_average": os.getloadavg()[0],
    }
    print(f"device: {dev.device_kind} ({dev.platform}, {jax.device_count()} device(s)); peak {figures['peak']}")
    chunk = engine._default_chunk_size(args.draws, sizes[-1], dev.platform)
    figures["chunk_scenarios_per_device"] = chunk
    start = time.perf_counter()
    warm = grid(chunk * jax.local_device_count())
    jax.block_until_ready(engine.bands(loss, params, *warm, q=Q, chunk_size=chunk).values)
    jax.block_until_ready(engine.expectation(loss, params, *warm, chunk_size=chunk))
    figures["compile_s"] = time.perf_counter() - start
    print(f"chunk {chunk} scenarios per device; warm-up (compilation) {figures['compile_s']:.1f} s")
    for size in sizes:
        n, d = grid(size)
        pairs = args.draws * n.size * d.size
        repeats = args.repeats if size == sizes[0] else 1
        run = lambda n=n, d=d: engine.bands(loss, params, n, d, q=Q, chunk_size=chunk).values  # noqa: E731
        bands_s = min(timed(run) for _ in range(repeats))
        row = {"scenarios": n.size * d.size, "pairs": pairs, "bands_s": bands_s, "bands_pairs_per_s": pairs / bands_s}
        if size == sizes[0]:
            mean = lambda n=n, d=d: engine.expectation(loss, params, n, d, chunk_size=chunk)  # noqa: E731
            mean_s = min(timed(mean) for _ in range(repeats))
            row.update(expectation_s=mean_s, reduction_share=1 - mean_s / bands_s)
        figures[f"bands_{size:.0e}"] = row
        share = f", reduction share {row['reduction_share']:.0%}" if "reduction_share" in row else ""
        print(f"bands {row['scenarios']:.3g} scenarios x {args.draws} draws: {bands_s:.2f} s, "
              f"{row['bands_pairs_per_s']:.3g} pairs/s{share}")
    r = figures["reductions_per_chunk"] = reductions(args.draws, chunk, args.repeats)
    print(f"reductions per chunk of {args.draws} x {chunk}: " + ", ".join(
        f"{k} {v['s'] * 1e3:.2f} ms{'' if v['bitwise_equal'] else ' (DIFFERS)'}" for k, v in r.items() if k != "chunk_scenarios"))
    figures["nuts"] = nuts(args.small)
    print("NUTS:", figures["nuts"])
    stats = dev.memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        figures["peak_device_memory_gib"] = stats["peak_bytes_in_use"] / 2**30
        print(f"peak device memory in use: {figures['peak_device_memory_gib']:.2f} GiB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
