"""The layout rules of :mod:`qa.metrics.invented`, read from the source with ``ast`` (nothing is imported):

1. no import cycle among the package's modules (explicit imports, those inside functions included);
2. the float64 oracle (``qa.metrics.invented.oracle``) is imported only by its own modules, ``tests/`` and
   ``benchmarks/`` (an ``import``, or a registry-style ``"qa.metrics.invented.oracle...:name"`` string);
3. no single-letter import alias (``import ... as F``) inside the package;
4. the tiers meet only in the dispatcher: a module of ``cpu/`` or ``tensor/`` imports, from ``qa``, only its own
   tier, ``qa.metrics.invented.coefficients`` and ``qa.metrics.invented.model``; outside the two tiers only
   ``qa.metrics.invented.dispatch`` imports a tier module (tests and benchmarks may: they compare the tiers);
   ``model`` and ``coefficients`` import nothing from the package.

Each rule is also run on a planted violation, so that a checker that finds nothing cannot pass unnoticed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "qa.metrics.invented"
ORACLE = f"{PACKAGE}.oracle"
TIERS = (f"{PACKAGE}.cpu", f"{PACKAGE}.tensor")
DISPATCH = f"{PACKAGE}.dispatch"
SHARED = (f"{PACKAGE}.coefficients", f"{PACKAGE}.model")
#: a string naming an oracle module or a "module:attr" target in it (what a lazy registry would import)
ORACLE_TARGET = re.compile(r"qa\.metrics\.invented\.oracle(\.\w+)*(:\w+)?")


@dataclass(frozen=True)
class Import:
    """One imported module (resolved to a package module where it names one), its alias and line."""

    source: str
    target: str
    alias: str | None
    line: int


def module_name(path: Path) -> str:
    """``qa/metrics/invented/cpu/steps.py`` -> ``qa.metrics.invented.cpu.steps`` (``__init__`` -> the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_sources() -> dict[str, str]:
    """Module name -> source of every module of the package."""
    files = sorted((ROOT / "qa" / "metrics" / "invented").rglob("*.py"))
    return {module_name(f): f.read_text() for f in files}


def _is_package(name: str, modules: dict[str, str]) -> bool:
    return any(m.startswith(name + ".") for m in modules)


def imports(name: str, source: str, modules: dict[str, str]) -> list[Import]:
    """Every import of module ``name`` (``source``): ``from a import b`` names module ``a.b`` where that is a
    module of ``modules``, else ``a``; relative imports are resolved against ``name``."""
    out = []
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, a.asname, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append(Import(name, full if full in modules else base, a.asname, node.lineno))
    return out


def graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    return {m: {i.target for i in imports(m, src, modules) if i.target in modules and i.target != m}
            for m, src in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _in(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def oracle_importers(files: dict[str, str]) -> list[str]:
    """``path:line`` of every import of the oracle (or registry-style string naming it) in ``files`` (relative
    path -> source) outside the oracle itself, ``tests/`` and ``benchmarks/``."""
    bad = []
    for path, source in files.items():
        if path.startswith(("tests/", "benchmarks/", "qa/metrics/invented/oracle/")):
            continue
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(_in(a.name, ORACLE) for a in node.names):
                bad.append(f"{path}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.module and (
                    _in(node.module, ORACLE) or (node.module == PACKAGE and any(a.name == "oracle" for a in node.names))):
                bad.append(f"{path}:{node.lineno}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ORACLE_TARGET.fullmatch(node.value):
                bad.append(f"{path}:{node.lineno}")
    return bad


def one_letter_aliases(modules: dict[str, str]) -> list[str]:
    """``module:line alias`` of every single-letter import alias."""
    return [f"{i.source}:{i.line} as {i.alias}" for m, src in modules.items() for i in imports(m, src, modules)
            if i.alias is not None and len(i.alias) == 1]


def tier_violations(modules: dict[str, str]) -> list[str]:
    """``importer -> imported`` for every import that breaks rule 4 of the module docstring."""
    bad = []
    for m, src in modules.items():
        for i in imports(m, src, modules):
            if not _in(i.target, "qa"):
                continue
            tier = next((t for t in TIERS if _in(m, t)), None)
            if tier is not None:
                allowed = _in(i.target, tier) or i.target in SHARED
            elif m in SHARED:
                allowed = not _in(i.target, PACKAGE)
            else:
                allowed = m == DISPATCH or not any(_in(i.target, t) for t in TIERS)
            if not allowed:
                bad.append(f"{m} -> {i.target}")
    return bad


def repo_sources() -> dict[str, str]:
    """Relative path -> source of every Python file of the repository (virtual environments left out)."""
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        if not rel.startswith((".", "build/")) and "/." not in rel and "site-packages" not in rel:
            out[rel] = f.read_text()
    return out


@pytest.fixture(scope="module")
def modules() -> dict[str, str]:
    found = package_sources()
    # the checks below would pass on an empty or unparsed package: make sure they see the real one
    assert {DISPATCH, f"{PACKAGE}.analysis", f"{PACKAGE}.cpu.steps", f"{PACKAGE}.tensor.filters", ORACLE} <= set(found)
    edges = graph(found)
    assert f"{PACKAGE}.cpu.steps" in edges[DISPATCH] and f"{PACKAGE}.tensor.filters" in edges[DISPATCH]
    assert sum(len(e) for e in edges.values()) > 40
    return found


def _planted(modules: dict[str, str], name: str, line: str) -> dict[str, str]:
    """``modules`` with ``line`` appended to module ``name``'s source."""
    return {**modules, name: modules[name] + "\n" + line + "\n"}


def test_no_import_cycle(modules: dict[str, str]) -> None:
    assert cycles(graph(modules)) == []
    # local_fit -> dispatch exists; dispatch -> local_fit closes a circle
    planted = _planted(modules, DISPATCH, "from qa.metrics.invented.local_fit import residual")
    assert [f"{PACKAGE}.dispatch", f"{PACKAGE}.local_fit"] in cycles(graph(planted))
    # a circle through a function-level import, across tiers and back
    planted = _planted(modules, f"{PACKAGE}.coefficients", "def f():\n    from qa.metrics.invented import analysis")
    assert any(f"{PACKAGE}.coefficients" in c and f"{PACKAGE}.analysis" in c for c in cycles(graph(planted)))


def test_the_oracle_is_for_tests_and_benchmarks_only() -> None:
    files = repo_sources()
    assert "qa/metrics/invented/metrics.py" in files and any(p.startswith("tests/") for p in files)
    assert oracle_importers(files) == []
    # the side door issue 28 found: a metric drawing its map with the oracle's region_map
    planted = {**files, "qa/metrics/invented/metrics.py": files["qa/metrics/invented/metrics.py"]
               + "\nfrom qa.metrics.invented.oracle.region_map import region_map\n"}
    assert oracle_importers(planted) == ["qa/metrics/invented/metrics.py:" + str(len(planted[
        "qa/metrics/invented/metrics.py"].splitlines()))]
    for line in ("from qa.metrics.invented import oracle", "import qa.metrics.invented.oracle.bands",
                 "TARGET = 'qa.metrics.invented.oracle.analysis:invented_detail'"):
        assert len(oracle_importers({"training/x.py": line + "\n"})) == 1, line
    # tests, benchmarks and the oracle's own modules may; a docstring that names it is not an import
    allowed = {"tests/x.py": "from qa.metrics.invented import oracle\n",
               "benchmarks/x.py": "from qa.metrics.invented import oracle\n",
               "qa/metrics/invented/oracle/x.py": "from qa.metrics.invented.oracle.bands import luma\n",
               "qa/x.py": '"""Tested against :mod:`qa.metrics.invented.oracle`."""\n'}
    assert oracle_importers(allowed) == []


def test_no_single_letter_module_aliases(modules: dict[str, str]) -> None:
    assert one_letter_aliases(modules) == []
    planted = _planted(modules, f"{PACKAGE}.metrics", "from qa.metrics.invented import analysis as A")
    assert one_letter_aliases(planted) == [f"{PACKAGE}.metrics:{len(planted[f'{PACKAGE}.metrics'].splitlines())} as A"]


def test_the_tiers_meet_only_in_the_dispatcher(modules: dict[str, str]) -> None:
    assert tier_violations(modules) == []
    plants = {
        # the circle issue 28 found: a cpu step calling the torch tier's bicubic
        (f"{PACKAGE}.cpu.steps", "from qa.metrics.invented.tensor.interp import bicubic"):
            f"{PACKAGE}.cpu.steps -> {PACKAGE}.tensor.interp",
        (f"{PACKAGE}.tensor.fit", "from qa.metrics.invented.cpu import steps as cpu_steps"):
            f"{PACKAGE}.tensor.fit -> {PACKAGE}.cpu.steps",
        (f"{PACKAGE}.tensor.filters", "from qa.metrics.invented import dispatch"):
            f"{PACKAGE}.tensor.filters -> {PACKAGE}.dispatch",
        # the method reaching past the dispatcher
        (f"{PACKAGE}.analysis", "from qa.metrics.invented.cpu.steps import band"):
            f"{PACKAGE}.analysis -> {PACKAGE}.cpu.steps",
        (f"{PACKAGE}.model", "from qa.metrics.invented.coefficients import INTERP_HALF"):
            f"{PACKAGE}.model -> {PACKAGE}.coefficients",
    }
    for (name, line), want in plants.items():
        assert tier_violations(_planted(modules, name, line)) == [want], line
