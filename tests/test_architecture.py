"""The package's shape (docs/ARCHITECTURE.md): folders by stage, imports only downward.

The import graph is read from the source with ``ast`` (every ``import`` and ``from ... import``
of a chinplan module, at module level or inside a function), so a lazy import counts as an
arrow too. The "house" puts each module one floor above the highest module it imports.
"""

from __future__ import annotations

import ast
import importlib
import os
import pathlib
import subprocess
import sys

import pytest

import chinplan

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chinplan"

MAX_FLOORS = 9
MAX_TOP_MODULES = 14
#: "No module over about 600 lines": a module may run a little over while it has one job.
MAX_LINES = 625
#: Stages, lowest first; a module may import its own stage or a lower one. The engine sits
#: below inference only because model averaging (inference.compare_models) reduces with it.
STAGES = ("core", "datasets", "engine", "inference", "decide", "plots", "cli")


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: pathlib.Path, modules: dict) -> set[str]:
    """The chinplan modules that ``name`` imports (the package ``chinplan`` itself excluded)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names]
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target not in (name, "chinplan"):
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}, modules


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else "core"


def test_no_import_circles(graph):
    edges, _ = graph
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert circles == []


def test_the_house_is_at_most_nine_floors(graph):
    edges, _ = graph
    floors: dict[str, int] = {}

    def floor(v):
        if v not in floors:
            floors[v] = 1 + max((floor(w) for w in edges[v]), default=0)
        return floors[v]

    highest = max(edges, key=floor)
    assert floor(highest) <= MAX_FLOORS, (highest, floor(highest))
    assert floor("chinplan.cli.parser") <= 3  # --help stays near the ground (no JAX)


def test_imports_point_down_the_pipeline(graph):
    edges, _ = graph
    rank = {stage: i for i, stage in enumerate(STAGES)}
    upward = [(a, b) for a, deps in edges.items() for b in deps if rank[_stage(b)] > rank[_stage(a)]]
    assert upward == []


def test_few_modules_at_the_top_and_none_oversized(graph):
    _, modules = graph
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_MODULES, sorted(p.name for p in top)
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules.items()}
    assert max(sizes.values()) <= MAX_LINES, max(sizes.items(), key=lambda kv: kv[1])


#: Documented import paths (README, docs, examples, earlier releases): each must import.
DOCUMENTED_MODULES = (
    "chinplan.arch", "chinplan.calibration", "chinplan.cli", "chinplan.compare_models", "chinplan.costs",
    "chinplan.data", "chinplan.data_constrained", "chinplan.datasets", "chinplan.decide", "chinplan.design",
    "chinplan.engine", "chinplan.extrapolated_optima", "chinplan.extrapolation", "chinplan.fit",
    "chinplan.format", "chinplan.huber", "chinplan.kernels", "chinplan.law", "chinplan.model",
    "chinplan.optima", "chinplan.plots", "chinplan.posterior", "chinplan.quantiles", "chinplan.regret",
    "chinplan.sbc", "chinplan.sweep", "chinplan.uncertain",
)  # fmt: skip
DOCUMENTED_NAMES = (
    ("chinplan.fit", "DEFAULT_MAX_EPOCHS"), ("chinplan.fit", "DEFAULT_FIT_SETTINGS"),
    ("chinplan.design", "next_runs"), ("chinplan.design", "reweight"), ("chinplan.sbc", "sbc"),
    ("chinplan.sbc", "SBC_PRIORS"), ("chinplan.calibration", "report"), ("chinplan.costs", "Deployment"),
    ("chinplan.data_constrained", "default_posterior"), ("chinplan.decide", "tco_bands"),
    ("chinplan.decide", "prob_lower_loss"), ("chinplan.plots", "fan_chart"), ("chinplan.plots", "save"),
    ("chinplan.model", "INFORMED_PRIORS"), ("chinplan.model", "HuberLike"), ("chinplan.huber", "huber_fit"),
    ("chinplan.optima", "data_constrained_optimal"), ("chinplan.extrapolation", "isoflop_minima"),
    ("chinplan.extrapolation", "ExtrapolatedLaw"), ("chinplan.engine", "bands"), ("chinplan.cli", "main"),
    ("chinplan.sweep", "SCENARIOS_SCHEMA"), ("chinplan.sweep", "build_deployment"), ("chinplan.data", "RUNS_SCHEMA"),
)  # fmt: skip


@pytest.mark.parametrize("path", DOCUMENTED_MODULES)
def test_documented_module_paths_import(path):
    module = importlib.import_module(path)
    moved = chinplan.MOVED_MODULES.get(path.partition(".")[2])
    if moved is not None:  # one module object under both names
        assert module is importlib.import_module(f"chinplan.{moved}")


@pytest.mark.parametrize("path, name", DOCUMENTED_NAMES)
def test_documented_names_resolve(path, name):
    assert hasattr(importlib.import_module(path), name)


def test_every_public_name_resolves():
    for name in chinplan.__all__:
        assert getattr(chinplan, name) is not None, name
    assert callable(chinplan.fit) and chinplan.fit.__module__ == "chinplan.inference.fit"


def test_import_chinplan_and_the_parser_load_no_jax():
    code = (
        "import sys, chinplan, chinplan.cli, chinplan.cli.parser\n"
        "chinplan.cli.parser.build_parser().format_help()\n"
        "print(sorted(m for m in ('jax', 'numpy', 'pandas') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=True)
    assert out.stdout.strip() == "[]"
