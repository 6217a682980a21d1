"""Issue 17 (reliability round 2), classes 2, 4, 5, 6 and 8: many generated inputs per class.

Class 2: products of counts are formed in logs and must fit float32 (lifetime tokens, weighted
inference tokens); a cost that overflows is refused, never printed as null; a FLOP budget below
the smallest sensible one (N* < 1 parameter or D* < 1 token) is refused wherever a planner
meets one; Python warnings reach the terminal as one line each. Class 4: a hand-built
``Draws`` is checked like any argument; flags are True/False only; ambiguous runs columns are
an error. Class 5: distributions check their parameters when built, and a bounded quantity
(an MFU) accepts only distributions on its domain. Class 6: sizes are estimated from the
arguments before any allocation (sweep axes, fit chains) and the shape search is closed form.
Class 8: deployment draws do not depend on JAX's x64 mode.
"""

import math
import tracemalloc
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chinplan
from chinplan import arch, costs, optima
from chinplan.inference import runs as data
from chinplan.decide import risk as decide
from chinplan.decide import regret
from chinplan.decide import sweep
from chinplan.cli import main
from chinplan.costs import Deployment
from chinplan.uncertain import LogNormal, LogUniform, Uniform

F32MAX = float(np.finfo(np.float32).max)
P = jax.tree.map(lambda x: x[:16], chinplan.default_posterior().params)
DEP = Deployment(queries=1e9, input_tokens=400.0, output_tokens=100.0)
KEY = jax.random.key(0)
FAST = dict(deadline=None, derandomize=True)
MFU_FIELDS = ("mfu_train", "mfu_prefill", "mfu_decode")

# ------------------------------------------------------------------------------- class 2


@settings(max_examples=40, **FAST)
@given(log10_q=st.floats(0.0, 38.0), log10_t=st.floats(0.0, 38.0))
def test_lifetime_tokens_are_a_product_checked_in_logs(log10_q, log10_t):
    """Q x T beyond float32 is refused naming the product; below it, tco's inference FLOPs
    equal the float64 reference 2 N Q T, or the overflow is refused: never an inf cost."""
    q, t = 10.0**log10_q, 10.0**log10_t
    product = q * t  # float64: the reference
    if abs(math.log(product / F32MAX)) < 1e-6:
        return  # at the limit itself float32 rounding decides
    dep = DEP._replace(queries=q, input_tokens=t, output_tokens=0.0)
    if product > F32MAX:
        with pytest.raises(ValueError, match=r"^deployment\.queries x \(input_tokens \+ output_tokens\), the lifetime tokens, must be representable in float32"):
            costs.validate_deployment(dep)
        return
    n = 1e3
    try:
        cost = costs.tco(n, 1e4, dep)
    except ValueError as err:  # an honest overflow of 2 N Q T or its dollars, refused
        assert "overflows float32" in str(err) and 2 * n * product > F32MAX / 1e9
        return
    np.testing.assert_allclose(float(cost.inference_flops), 2 * n * product, rtol=2e-5)
    assert all(np.isfinite(np.asarray(v)) for v in cost)


@settings(max_examples=25, **FAST)
@given(field=st.sampled_from(["price", "mfu_train", "mfu_decode", "queries"]), log10=st.floats(-38.0, 38.0))
def test_a_reached_plan_never_has_an_infinite_cost(field, log10):
    """Huge prices or query volumes, tiny MFUs: tco_bands gives finite costs for every
    reachable plan or refuses with a one-line reason; never inf (null in JSON) with exit 0."""
    value = 10.0**log10
    if field.startswith("mfu"):
        value = min(value, 1.0)
    try:
        result = decide.tco_bands(P, 2.3, DEP._replace(**{field: value}))
    except ValueError as err:
        assert "must be representable in float32" in str(err) or "overflows float32" in str(err), str(err)
        return
    for group in ("optimal", "chinchilla"):
        values = {k: np.asarray(v, np.float64) for k, v in result.values[group].items()}
        reached = np.isfinite(values["n"]) & np.isfinite(values["d"])
        for name, v in values.items():
            assert np.all(np.isfinite(v[reached])), (name, v)


def test_a_target_some_draws_barely_reach_gives_inf_flops_not_an_error():
    """Draws whose E sits just below the target reach it only with astronomical N and D: their
    training FLOPs pass float32's range. That is the plan's size, not a deployment out of
    range, so the band is an honest inf (null in JSON) and the call succeeds (it raised
    "overflows float32 ... price, query volume or MFU" before); the plan's N and D bands stay
    finite, and 6 N D of such a band is beyond float32 / 1e3 (float64 here)."""
    target = 2.3
    e = np.asarray(P.E, np.float64)
    # a third of the draws barely reach the target, the rest easily (E as drawn, well below)
    barely = np.arange(e.size) % 3 == 0
    params = P._replace(E=jnp.asarray(np.where(barely, target * (1 - 1e-6), e), P.E.dtype))
    result = decide.tco_bands(params, target, DEP, q=(0.05, 0.5, 0.95))
    values = {k: np.asarray(v, np.float64)[:, 0] for k, v in result.values["optimal"].items()}
    assert np.all(np.isfinite(values["n"])) and np.all(np.isfinite(values["d"]))
    assert np.isinf(values["train_flops"][2]) and 6 * values["n"][2] * values["d"][2] > F32MAX / 1e3
    assert np.isfinite(values["train_flops"][0])  # the easy draws' plans are priced as always


@settings(max_examples=20, **FAST)
@given(question=st.sampled_from(["expected_cost", "cost_bands", "cost_cvar"]), log10_price=st.floats(0.0, 38.0))
def test_a_fixed_design_cost_is_finite_or_refused(question, log10_price):
    """A fixed design's cost under every draw, its mean and its tail mean: finite, or a
    ValueError naming the overflow (a mean of huge costs overflowed to inf before)."""
    try:
        value = np.asarray(getattr(decide, question)(P, [8e9], [15e12], DEP._replace(price=10.0**log10_price)), np.float64)
    except ValueError as err:
        assert "overflows float32" in str(err) or "must be representable in float32" in str(err), str(err)
        return
    assert np.all(np.isfinite(value)), value


@settings(max_examples=30, **FAST)
@given(log10_ratio=st.floats(-6.0, 12.0).filter(lambda x: abs(x) > 1e-9))
def test_the_smallest_sensible_budget_applies_everywhere(log10_ratio):
    """plan_bands, regret_compute and the sweep's compute axis share optima.sensible_budget."""
    point = decide.median_params(P)
    c_min = optima.smallest_budget(point)
    compute = c_min * 10.0**log10_ratio
    if log10_ratio < 0:
        for call in (lambda: decide.plan_bands(P, compute), lambda: regret.regret_compute(P, compute, grid_points=3)):
            with pytest.raises(ValueError, match=rf"^compute must be at least {c_min:.6g} FLOPs \(valid range \[{c_min:.6g}, inf\)\)"):
                call()
        return
    plan = decide.plan_bands(P, compute)
    assert all(np.all(np.isfinite(v)) for v in plan.values())
    n, d = optima.compute_optimal(point, compute)[:2]
    assert float(n) >= 1 - 1e-4 and float(d) >= 1 - 1e-4  # the point plan: at least 1 of each


def test_plan_below_the_smallest_budget_is_one_line(capsys):
    assert main(["plan", "--compute", "1", "--draws", "20"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chinplan: error: --compute must be at least")


def test_tco_with_an_overflowing_price_is_one_line_not_nulls(capsys):
    assert main(["tco", "--target-loss", "2.3", "--draws", "20", "--uncertainty", "law", "--price", "1e36", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "overflows float32" in captured.err


@settings(max_examples=20, **FAST)
@given(messages=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=3),
       category=st.sampled_from([RuntimeWarning, UserWarning, DeprecationWarning, FutureWarning]))  # fmt: skip
def test_python_warnings_reach_stderr_one_line_each(messages, category):
    import contextlib
    import io
    import warnings

    def command(args):
        for m in messages:
            warnings.warn(m, category)
        return 0

    stderr = io.StringIO()
    with mock.patch.dict("chinplan.cli._COMMANDS", {"hardware": command}), warnings.catch_warnings(), contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        assert main(["hardware"]) == 0
    err = stderr.getvalue()
    assert err.count("\n") == len(messages)
    assert all(line.startswith(f"chinplan: warning: {category.__name__}: ") for line in err.splitlines())


# ------------------------------------------------------------------------------- class 4

BAD_VALUES = {
    "queries": [-1.0, np.nan, np.inf],
    "price": [-1.0, 0.0, np.nan],
    "mfu_train": [0.0, -0.5, 1.5],
    "mfu_decode": [0.0, 2.0, np.nan],
    "peak_flops": [0.0, -1e15],
    "input_tokens": [-400.0],
}
DRAWS = decide.draw_pairs(P, DEP)
ENTRIES = {
    "expected_cost": lambda theta: decide.expected_cost(theta, 7e10, 1.4e12),
    "cost_bands": lambda theta: decide.cost_bands(theta, 7e10, 1.4e12),
    "cost_cvar": lambda theta: decide.cost_cvar(theta, 7e10, 1.4e12),
    "tco_bands": lambda theta: decide.tco_bands(theta, 2.3),
    "prob_cheaper": lambda theta: decide.prob_cheaper(theta, [7e10, 3e10], [1.4e12, 3e12]),
    "prob_target": lambda theta: decide.prob_target(theta, 7e10, 1.4e12, 2.3),
}


@settings(max_examples=40, **FAST)
@given(field=st.sampled_from(sorted(BAD_VALUES)), index=st.integers(0, 2), entry=st.sampled_from(sorted(ENTRIES)),
       where=st.integers(0, 15))  # fmt: skip
def test_a_hand_built_draws_is_checked_like_any_argument(field, index, entry, where):
    """A negative query volume, a zero MFU or a negative price in one draw of a Draws made by
    hand used to drop the serving cost or give NaN; every entry point now names the field."""
    values = BAD_VALUES[field]
    column = np.asarray(getattr(DRAWS.deployment, field), np.float64).copy()
    column[where] = values[index % len(values)]
    theta = decide.Draws(DRAWS.law, DRAWS.deployment._replace(**{field: jnp.asarray(column)}))
    with pytest.raises(ValueError, match=rf"^deployment\.{field} must be finite"):
        ENTRIES[entry](theta)


def test_a_draws_with_two_draw_axes_is_refused():
    theta = decide.Draws(DRAWS.law, DRAWS.deployment._replace(queries=jnp.ones(3)))
    with pytest.raises(ValueError, match=r"params .*leading draw axis"):
        decide.expected_cost(theta, 7e10, 1.4e12)


NOT_FLAGS = st.one_of(st.text(max_size=5), st.integers(-2, 2), st.floats(allow_nan=True), st.none(), st.lists(st.booleans(), max_size=2))


@settings(max_examples=40, **FAST)
@given(value=NOT_FLAGS, call=st.sampled_from(["as_frame", "log_likelihood", "progress", "fit_progress"]))
def test_flags_are_true_or_false_only(value, call):
    if value is None and call in ("progress", "fit_progress"):
        return  # None: "when stderr is a terminal"
    name = {"fit_progress": "progress"}.get(call, call)
    with mock.patch("chinplan.fit.sample_nuts", side_effect=AssertionError("fit started sampling")):
        calls = {
            "as_frame": lambda: regret.regret_compute(P, 1e21, grid_points=3, as_frame=value),
            "log_likelihood": lambda: chinplan.fit(chinplan.datasets.chinchilla(), key=KEY, log_likelihood=value),
            "fit_progress": lambda: chinplan.fit(chinplan.datasets.chinchilla(), key=KEY, progress=value),
            "progress": lambda: chinplan.engine.expectation(lambda t, x: t.E * x, P, 1.0, progress=value),
        }
        with pytest.raises(ValueError, match=rf"^{name} must be True or False, got "):
            calls[call]()


def _spellings(name):
    return st.sampled_from(data.COLUMN_ALIASES[name]).flatmap(
        lambda a: st.tuples(st.sampled_from([a, a.upper(), a.title()]), st.sampled_from(["", " ", "  "])).map(lambda t: t[1] + t[0] + t[1])
    )


@settings(max_examples=40, **FAST)
@given(name=st.sampled_from(sorted(data.COLUMN_ALIASES)), seed=st.integers(0, 2**16))
def test_ambiguous_runs_columns_are_an_error(name, seed):
    """Two columns that both name one quantity (``params`` and ``N``; ``loss`` and ``Loss ``):
    which the fit would read is a guess, so the table is refused naming both."""
    rng = np.random.default_rng(seed)
    aliases = list(data.COLUMN_ALIASES[name])
    first, second = rng.choice(len(aliases), 2)
    a = aliases[first]
    b = aliases[second] if second != first else f" {aliases[second].upper()} "
    frame = pd.DataFrame({"params": np.logspace(8, 9, 8), "tokens": np.logspace(10, 11, 8), "loss": np.linspace(3, 2.5, 8)})
    values = frame[name] if name in frame else 6 * frame["params"] * frame["tokens"]
    frame = frame.drop(columns=[name], errors="ignore").assign(**{a: values, b: values})
    with pytest.raises(ValueError, match=rf"^runs table is ambiguous: columns .* all name '{name}'"):
        chinplan.load_runs(frame)


# ------------------------------------------------------------------------------- class 5


@settings(max_examples=30, **FAST)
@given(field=st.sampled_from(MFU_FIELDS), median=st.floats(1e-3, 1.0), sigma=st.floats(0.0, 2.0))
def test_a_lognormal_mfu_is_refused(field, median, sigma):
    """A lognormal MFU of median 0.9 puts 42% of its draws above 1 (costs too low)."""
    with pytest.raises(ValueError, match=rf"^deployment\.{field}: a LogNormal \(support \(0, inf\)\) leaves the domain \(0, 1\]"):
        costs.validate_deployment(DEP._replace(**{field: LogNormal(median, sigma)}))


@settings(max_examples=30, **FAST)
@given(field=st.sampled_from(MFU_FIELDS), lo=st.floats(1e-3, 1.0), width=st.floats(0.0, 1.0), kind=st.sampled_from([Uniform, LogUniform]))
def test_distributions_on_the_mfu_domain_stay_in_it(field, lo, width, kind):
    hi = lo + (1.0 - lo) * width
    draws = getattr(costs.sample_deployment(DEP._replace(**{field: kind(lo, hi)}), 256, key=KEY), field)
    draws = np.asarray(draws, np.float64)
    assert np.all(draws > 0) and np.all(draws <= 1.0)


@settings(max_examples=40, **FAST)
@given(kind=st.sampled_from(["LogNormal", "Uniform", "LogUniform"]), a=st.floats(-10, 10), b=st.floats(-10, 10))
def test_a_distribution_checks_its_parameters_when_built(kind, a, b):
    valid = {"LogNormal": a > 0 and b >= 0, "Uniform": a <= b, "LogUniform": 0 < a <= b}[kind]
    cls = {"LogNormal": LogNormal, "Uniform": Uniform, "LogUniform": LogUniform}[kind]
    if valid:
        assert tuple(cls(a, b)) == (a, b)
    else:
        with pytest.raises(ValueError, match=rf"^{kind} needs "):
            cls(a, b)


def test_distributions_built_under_tracing_are_not_checked():
    out = jax.vmap(lambda m: LogNormal(m, 0.1).sample(KEY))(jnp.ones(3))
    assert out.shape == (3,)
    assert jax.tree.map(lambda x: None, LogNormal(1.0, 0.5)) == LogNormal(None, None)


# ------------------------------------------------------------------------------- class 6


def _sweep_file(tmp_path, grid: str):
    path = tmp_path / "s.toml"
    path.write_text(f"[sweep]\noutputs = ['n']\n[grid]\n{grid}\n")
    return path


@settings(max_examples=15, **FAST)
@given(log10_num=st.floats(7.0001, 15.0))
def test_a_huge_sweep_axis_is_refused_before_it_is_built(log10_num, tmp_path_factory):
    num = int(10**log10_num)
    path = _sweep_file(tmp_path_factory.mktemp("s"), f"compute = {{logspace = [20, 24, {num}]}}")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"\[grid\] has {num:,} scenarios, more than 10,000,000; split the sweep"):
            sweep.load_scenarios(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # the 8-byte-a-point array (80 MB and up) was never built


@settings(max_examples=10, **FAST)
@given(nums=st.lists(st.integers(200, 3000), min_size=3, max_size=3).filter(lambda v: math.prod(v) > sweep.MAX_SCENARIOS))
def test_a_huge_grid_is_refused_from_its_declared_sizes(nums, tmp_path_factory):
    grid = "\n".join(f"{k} = {{linspace = [1, 2, {n}]}}" for k, n in zip(("target_loss", "queries", "input_tokens"), nums))
    path = _sweep_file(tmp_path_factory.mktemp("s"), grid)
    with pytest.raises(ValueError, match=rf"\[grid\] has {math.prod(nums):,} scenarios, more than 10,000,000"):
        sweep.load_scenarios(path)


@settings(max_examples=20, **FAST)
@given(chains=st.integers(1, 10**7), draws=st.integers(1, 10**8), warmup=st.integers(0, 10**6))
def test_fit_estimates_its_size_before_sampling(chains, draws, warmup):
    """``fit --chains 1000000`` ran silent for minutes; now the estimate is refused first."""
    stored = 8.0 * chains * draws * 16
    iterations = chains * (warmup + draws)
    with mock.patch("chinplan.fit.sample_nuts", side_effect=RuntimeError("fit started sampling")):
        if stored > chinplan.inference.posterior_file.MAX_BYTES:
            with pytest.raises(ValueError, match=r"bytes of draws, more than the limit of 1\.07e\+09"):
                chinplan.fit(chinplan.datasets.chinchilla(), key=KEY, num_chains=chains, num_draws=draws, num_warmup=warmup)
        elif chains * draws > chinplan.inference.posterior_file.MAX_DRAWS:  # issue 26: the draws a file may hold
            with pytest.raises(ValueError, match=r"draws, more than the limit of 1\.6e\+06"):
                chinplan.fit(chinplan.datasets.chinchilla(), key=KEY, num_chains=chains, num_draws=draws, num_warmup=warmup)
        elif iterations > chinplan.inference.sampler.MAX_ITERATIONS:
            with pytest.raises(ValueError, match=r"hours at 0\.7 ms an iteration.*NUTS iterations, more than the limit of 1e\+07"):
                chinplan.fit(chinplan.datasets.chinchilla(), key=KEY, num_chains=chains, num_draws=draws, num_warmup=warmup)
        else:
            with pytest.raises(RuntimeError, match="fit started sampling"):
                chinplan.fit(chinplan.datasets.chinchilla(), key=KEY, num_chains=chains, num_draws=draws, num_warmup=warmup)


@pytest.mark.parametrize("kw", [dict(aspect_ratio=1e-30), dict(multiple_of=10**12), dict(head_dim=10**15), dict(aspect_ratio=1e30)])
def test_shape_search_is_bounded_for_extreme_arguments(kw):
    """Time was ~1 / aspect_ratio (a loop over every layer count); these returned never."""
    fit = arch.shape_for_params(7e9, **kw)
    assert fit.shape.n_layers >= 1 and fit.n_params > 0


# ------------------------------------------------------------------------------- class 8


@settings(max_examples=10, **FAST)
@given(seed=st.integers(0, 2**31 - 1))
def test_deployment_draws_do_not_depend_on_x64(seed):
    """Draws are made in float32 whatever the x64 mode (they differed up to 5.5% in a 95% quantile)."""
    dep = DEP._replace(queries=LogNormal(1e9, 0.7), mfu_train=Uniform(0.3, 0.5), price=LogUniform(1.0, 4.0))
    key = jax.random.key(seed)
    f32 = costs.sample_deployment(dep, 64, key=key)
    with jax.enable_x64(True):
        f64 = costs.sample_deployment(dep, 64, key=key)
        assert f64.queries.dtype == jnp.float64
    for field in ("queries", "mfu_train", "price"):
        np.testing.assert_allclose(np.asarray(getattr(f64, field)), np.asarray(getattr(f32, field), np.float64), rtol=3e-6)


@settings(max_examples=25, **FAST)
@given(log10_factor=st.floats(-3.0, 3.0), row=st.integers(0, 7))
def test_tokens_and_flops_that_disagree_are_refused_naming_the_row(log10_factor, row):
    """Given both, flops must be within a factor of 2 of 6 N D (attention and counting
    conventions move it by tens of percent; a units mistake by orders of magnitude)."""
    frame = pd.DataFrame({"params": [1e8] * 8, "tokens": [2e9] * 8, "loss": [3.0] * 8})
    frame["flops"] = 6 * frame["params"] * frame["tokens"]
    frame.loc[row, "flops"] *= 10.0**log10_factor
    if 0.5 <= 10.0**log10_factor <= 2.0:
        assert len(data.load_runs(frame)) == 8
        return
    with pytest.raises(ValueError, match=rf"columns 'flops' and 'tokens', row {row}: .*valid range \[0.5, 2\]"):
        data.load_runs(frame)
