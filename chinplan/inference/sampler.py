"""NUTS chains as one jitted JAX function, compiled once per model and setting.

numpyro's ``MCMC.run`` compiles its sampling loop again on every call (numpyro 0.22:
``fori_collect`` jits ``_fori_collect_loop`` with a fresh closure as a static argument), so
four sequential chains paid four compilations (about 11 s each on a 2-core CPU) and every
repeat of a simulation-based calibration paid another. This module drives numpyro's own
NUTS kernel (``NUTS.init`` / ``NUTS.sample``: the same step-size and dense-mass-matrix
adaptation) from a function that is jitted once:

    chain(key, data) = scan(sample, init(key, data), num_warmup + num_draws)[num_warmup:]

and runs the chains one call per chain (sequential: one compiled chain serves any number
of chains), with ``vmap`` (vectorized) or ``pmap`` (parallel, one chain per device). The
compiled function is cached per (model, model options, settings), and the data are
arguments, so new data of the same shape reuse it.

Chains start at numpyro's ``init_to_median`` (the median of 15 prior draws), or, given
``init_values``, near those values (:func:`init_near`): each site at its value moved by
Uniform(-:data:`START_RADIUS`, +:data:`START_RADIUS`) in the sampler's unconstrained
coordinates, a fresh move per chain. The values are arguments of the compiled chain, so a new
start reuses it.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["sample_nuts", "chain_method_for", "check_size", "init_near", "CHAIN_METHODS", "MAX_ITERATIONS", "START_RADIUS"]

CHAIN_METHODS = ("sequential", "vectorized", "parallel")

#: The progress bar the compiled functions report to (set only while a call runs).
_progress = {"bar": None}


def _advance(steps) -> None:
    bar = _progress["bar"]
    if bar is not None:
        bar.update(int(steps))


#: The most NUTS iterations (chains x (warm-up + draws)) one fit may ask for: about 2 hours at
#: the ~0.7 ms an iteration takes on the 245 embedded runs on a 2-core CPU (benchmarks/RESULTS.md:
#: 4 chains x 1,500 iterations in about 1 s of sampling per chain).
MAX_ITERATIONS = 10**7
_SECONDS_PER_ITERATION_PER_RUN = 0.7e-3 / 245
_REFERENCE_RUNS = 245


def check_size(num_chains: int, num_warmup: int, num_draws: int, num_runs: int, num_values: int, max_bytes: int) -> None:
    """Refuses a fit before it starts when its size, estimated from the arguments, exceeds the
    limits: the draws kept (chains x draws x ``num_values`` float64 values per draw) beyond
    ``max_bytes`` (what a posterior file may hold, :data:`chinplan.inference.posterior_file.MAX_BYTES`), or
    more than :data:`MAX_ITERATIONS` NUTS iterations counted as on 245 runs (an iteration on
    more runs costs proportionally more). The message gives the estimate."""
    from chinplan import _checks

    stored = 8.0 * num_chains * num_draws * num_values
    _checks.affordable(
        f"fit with {num_chains:,} chains x {num_draws:,} draws", stored, max_bytes, "bytes of draws",
        "a posterior file holds at most that (chinplan.inference.posterior_file.MAX_BYTES); use fewer chains or draws",
    )
    from chinplan.inference.posterior_file import MAX_DRAWS

    _checks.affordable(
        f"fit with {num_chains:,} chains x {num_draws:,} draws", float(num_chains) * num_draws, MAX_DRAWS, "draws",
        "a posterior holds at most that (chinplan.inference.posterior_file.MAX_DRAWS, 16 chains x 100,000 draws); use fewer chains or draws",
    )
    iterations = float(num_chains) * (num_warmup + num_draws)
    hours = iterations * num_runs * _SECONDS_PER_ITERATION_PER_RUN / 3600
    # an iteration's cost grows with the runs (each leapfrog step evaluates every run): the cap
    # counts iterations as they cost on the 245 embedded runs (never fewer)
    work = iterations * max(num_runs, _REFERENCE_RUNS) / _REFERENCE_RUNS
    scaled = f"; on {num_runs:,} runs that is {work:.3g} iterations as on {_REFERENCE_RUNS}" if num_runs > _REFERENCE_RUNS else ""
    _checks.affordable(
        f"fit with {num_chains:,} chains x ({num_warmup:,} warm-up + {num_draws:,} draws) (about {hours:.3g} "
        f"hours at 0.7 ms an iteration on 245 runs{scaled})", work, MAX_ITERATIONS, "NUTS iterations",
        "use fewer chains, warm-up steps, draws or runs",
    )


def chain_method_for(num_chains: int, chain_method: str | None) -> str:
    """``chain_method`` or, when None, "parallel" if there are two devices or more (chains in
    groups of one per device), else "sequential"."""
    if chain_method is not None:
        return chain_method
    return "parallel" if jax.local_device_count() >= 2 and num_chains > 1 else "sequential"


#: Half-width of a chain's start around given values, in unconstrained coordinates (log
#: scale for positive sites, logit for bounded ones): chains start apart, so R-hat can see
#: chains that do not meet, yet near enough that the likelihood's tails do not take over
#: (docs/CALIBRATION.md: where the chains start).
START_RADIUS = 0.1


def init_near(values: dict, radius: float = START_RADIUS):
    """A numpyro init strategy: each sampled site named in ``values`` starts at
    ``T(T^-1(value) + u)``, u ~ Uniform(-radius, radius) from the site's key, where T maps
    the unconstrained line onto the site's support; other sites start at the prior median
    (``init_to_median``). Traceable: ``values`` may be arrays inside a jitted function."""
    return functools.partial(_near, values=values, radius=radius)  # numpyro wants a partial


def _near(site=None, values=None, radius=START_RADIUS):
    from numpyro.distributions import biject_to
    from numpyro.infer import init_to_median

    if site is None:
        return init_near(values, radius)
    if site["type"] != "sample" or site["is_observed"] or site["name"] not in values:
        return init_to_median(site)
    transform = biject_to(site["fn"].support)
    centre = transform.inv(jnp.asarray(values[site["name"]]))
    move = jax.random.uniform(site["kwargs"]["rng_key"], jnp.shape(centre), centre.dtype, -radius, radius)
    return transform(centre + move)


@functools.lru_cache(maxsize=32)
def _runner(model, model_kwargs: tuple, num_warmup: int, num_draws: int, num_chains: int, chain_method: str, progress_every: int,
            start: tuple | None = None):  # fmt: skip
    """The jitted ``(chain_keys, model_args, target_accept_prob, init_values) -> (samples,
    diverging)`` for one setting; for "sequential", the jitted ``(chain_key, ...)`` of one
    chain (``num_chains`` is 1 in the cache key), run once per chain, so any number of chains
    reuses one compiled chain. The target acceptance and the start's values are arguments,
    not settings: the convergence gate's retries reuse the compiled chain. ``start`` names the
    sites with start values (None: ``init_to_median``)."""
    from numpyro.infer import NUTS, init_to_median

    kwargs = dict(model_kwargs)

    def tick(i):
        if progress_every:
            lax.cond(i % progress_every == progress_every - 1, lambda: jax.debug.callback(_advance, progress_every), lambda: None)

    def chain(key, args, target_accept_prob, init_values):
        strategy = init_to_median if start is None else init_near(init_values)
        kernel = NUTS(model, dense_mass=True, target_accept_prob=target_accept_prob, init_strategy=strategy)
        state = kernel.init(key, num_warmup, model_args=args, model_kwargs=kwargs)

        def step(s, i):  # numpyro's kernel adapts while s.i < num_warmup, then samples
            tick(i)
            s = kernel.sample(s, args, kwargs)
            return s, (s.z, s.diverging)

        # one scan over warm-up and draws: the NUTS step is compiled once, not once per phase
        # (the default chain: 6.9 s against 8.5 s, benchmarks/bench_chain_compile.py); the
        # warm-up's states are dropped after
        _, (z, diverging) = lax.scan(step, state, jnp.arange(num_warmup + num_draws))
        z = jax.tree.map(lambda x: x[num_warmup:], z)
        samples = jax.vmap(kernel.postprocess_fn(args, kwargs))(z)
        return samples, diverging[num_warmup:]

    if chain_method == "sequential":
        return jax.jit(chain)
    if chain_method == "vectorized":
        return jax.jit(jax.vmap(chain, in_axes=(0, None, None, None)))
    return jax.pmap(chain, in_axes=(0, None, None, None))


#: Compiled samplers by (jitted function, argument shapes and dtypes): the progress path
#: compiles ahead of time (to report it) and must not compile again on the next call.
_COMPILED: dict = {}


def _compiled(run, *args):
    """``run`` compiled for ``args``, announcing the compilation on stderr (the first time for
    this shape; later calls reuse it). Falls back to ``run`` where it cannot be lowered."""
    if not hasattr(run, "lower"):
        return run
    leaves, tree = jax.tree_util.tree_flatten(args)
    signature = (run, tree, tuple((np.shape(x), str(getattr(x, "dtype", None) or np.result_type(x)), bool(getattr(x, "weak_type", False))) for x in leaves))
    if signature not in _COMPILED:
        print("NUTS compiling: the sampler is compiled once per data shape (several seconds)...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        _COMPILED[signature] = run.lower(*args).compile()
        print(f"NUTS compiled in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return _COMPILED[signature]


def sample_nuts(
    model,
    model_args: tuple,
    model_kwargs: dict,
    *,
    key: jax.Array,
    num_warmup: int,
    num_draws: int,
    num_chains: int,
    chain_method: str | None = None,
    target_accept_prob: float = 0.8,
    progress: bool = False,
    init_values: dict | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs ``num_chains`` NUTS chains of ``model`` (dense mass matrix), started at the prior
    median (``init_to_median``) or, given ``init_values`` (site name -> constrained value),
    near those values (:func:`init_near`).

    Chain c starts from key ``split(key, num_chains)[c]``; with the same chain method on the
    same machine its draws depend only on that key and the data. Across chain methods they
    differ: sequential (one call per chain), vectorized (``vmap``) and parallel (``pmap``,
    one chain per device, in groups when there are more chains than devices) compile the
    chain differently, floating-point rounding differs in the last bit, and NUTS (its accept
    and U-turn decisions) turns that into different, equally valid draws (measured:
    sequential, vectorized and parallel runs of one key differ from the first kept draw).
    ``model_kwargs`` must be hashable (they are part of the cache key); ``model_args`` are
    arrays and may change freely.

    Returns:
      (samples, diverging): the constrained sites (and deterministic sites) as NumPy arrays
      of shape (chain, draw, ...), and the divergence flags, shape (chain, draw).
    """
    method = chain_method_for(num_chains, chain_method)
    if method == "parallel" and jax.local_device_count() < 2:
        warnings.warn(
            f"chain_method='parallel' needs two devices or more but JAX has {jax.local_device_count()}; "
            "running the chains one after another",
            UserWarning,
            stacklevel=3,
        )
        method = "sequential"
    total = num_warmup + num_draws
    every = max(1, total // 100) if progress else 0
    # the compiled unit: one chain (sequential), a group of one chain per device (parallel:
    # as many groups as it takes, the last padded with spare chains that are dropped) or all
    # chains at once (vectorized)
    group = {"sequential": 1, "parallel": min(num_chains, jax.local_device_count())}.get(method, num_chains)
    spare = -num_chains % group  # repeats of the last key fill the last group
    start = None if init_values is None else tuple(sorted(init_values))
    run = _runner(model, tuple(sorted(model_kwargs.items())), num_warmup, num_draws, group, method, every, start)
    keys = jax.random.split(key, num_chains)
    args = tuple(model_args)
    accept = jnp.asarray(target_accept_prob, jnp.result_type(float))
    init = None if init_values is None else {k: jnp.asarray(v, jnp.result_type(float)) for k, v in init_values.items()}
    sequential = method == "sequential"
    bar = None
    if progress:  # compile first, saying so, so the bar does not sit at 0 through compilation
        run = _compiled(run, keys[0] if sequential else keys[:group], args, accept, init)
        from tqdm.auto import tqdm

        bar = tqdm(total=(num_chains + spare) * (total - total % every), desc=f"NUTS sampling: {num_chains} chain(s) x {total} steps ({method})")
    _progress["bar"] = bar
    try:
        # the calls are dispatched one after another (asynchronously), then gathered once
        if sequential:
            parts = [run(k, args, accept, init) for k in keys]
        else:
            padded = jnp.concatenate([keys, jnp.repeat(keys[-1:], spare, axis=0)]) if spare else keys
            parts = [run(padded[i : i + group], args, accept, init) for i in range(0, num_chains, group)]
        chains = (lambda x: np.asarray(x)[None]) if sequential else np.asarray  # one chain a call has no chain axis
        samples = {name: np.concatenate([chains(p[0][name]) for p in parts])[:num_chains] for name in sorted(parts[0][0])}
        diverging = np.concatenate([chains(p[1]) for p in parts])[:num_chains]
        jax.effects_barrier()
    finally:
        _progress["bar"] = None
        if bar is not None:
            bar.close()
    return samples, diverging
