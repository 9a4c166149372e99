"""The library's layering, read from its source: no import cycle, no import that runs back up.

Every import counts, those inside functions too. Modules group into layers: the root's
infrastructure modules (``reco.run_dir``, ``reco.errors``, ...) one each, every domain package
(``reco.expansion``, ``reco.policy``) one, and ``reco.config``, the aggregator of every domain's
config section, one of its own at the top. The layers must form a DAG, so a domain never
reaches back into one that depends on it; within a domain, sibling subpackages
(``reco.policy.ope``, ``reco.policy.bandits``) form a DAG too. reco/ never imports ray or the
layers above it (ray_jobs/, serve/, bench/).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGGREGATOR = "reco.config"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts a and a.b), wherever the import sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in sorted((ROOT / "reco").rglob("*.py"))}
    raw = {name: _imports(path, name) for name, path in files.items()}
    return {name: {m for m in deps if m in files and m != name} for name, deps in raw.items()}


def _domain(module: str) -> str:
    """``reco.rank.models.mf`` -> ``reco.rank``; a root module is its own layer."""
    return ".".join(module.split(".")[:2])


def _subpackage(module: str, packages: set[str]) -> str | None:
    """``reco.policy.ope.estimators`` -> ``reco.policy.ope``; None for a domain's own modules."""
    parts = module.split(".")
    return ".".join(parts[:3]) if len(parts) > 3 and ".".join(parts[:3]) in packages else None


def _collapse(graph: dict[str, set[str]], unit) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, deps in graph.items():
        u = unit(module)
        if u is None:
            continue
        out.setdefault(u, set()).update(d for d in map(unit, deps) if d is not None and d != u)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_the_checker_sees_imports_inside_functions_and_finds_cycles(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from reco.a import b\n    import reco.c\n")
    assert _imports(src, "reco.m") == {"reco.a", "reco.a.b", "reco.c"}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_cycle_counting_imports_inside_functions(graph):
    assert _cycles(graph) == []


def test_domains_form_layers_with_no_import_back_up(graph):
    assert _cycles(_collapse(graph, _domain)) == []


def test_sibling_subpackages_form_layers(graph):
    packages = {m for m in graph if (ROOT / Path(*m.split("."))).is_dir()}
    assert _cycles(_collapse(graph, lambda m: _subpackage(m, packages))) == []


def test_only_entry_points_import_the_config_aggregator(graph):
    importers = sorted(m for m, deps in graph.items() if AGGREGATOR in deps)
    assert importers == []


def test_reco_never_imports_ray_or_the_layers_above_it():
    offenders = []
    for path in sorted((ROOT / "reco").rglob("*.py")):
        for module in _imports(path, _module_name(path)):
            if module.split(".")[0] in {"ray", "ray_jobs", "serve", "bench"}:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []
