"""The rules of docs/ARCHITECTURE.md, checked on the source with ``ast`` (nothing of qa is imported), in one place.

* **Arrows that must never exist** (:data:`FORBIDDEN`, :data:`ONLY`, the front ends, ``training``): checked on the
  *transitive* imports. From every module of a part the checker follows every import (at module level and inside
  functions, which run when the function is called; ``if TYPE_CHECKING:`` blocks excepted) and the parent packages
  Python runs on the way, through every module reached: the closure. So a side door, Gate -> X -> Decoders with X
  a module that may import decoders itself, fails like a direct arrow, reported with its chain.
* **Torch-free parts** (:data:`TORCH_FREE`): no module in their closure imports torch; and, run for real,
  ``import qa.gate`` (every module of gate, report and store, and every metric declaration read) leaves torch out.
* **No cycles**: between the parts, and between the modules of one part.
* SQL only in ``qa/store``; no module over 400 lines; the runtime imports no training script.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "qa"

#: part -> the parts it must never import, directly or through another module (docs/ARCHITECTURE.md)
FORBIDDEN: dict[str, set[str]] = {
    "gate": {"engine", "decoders", "session", "refset", "report"},
    "metrics": {"engine", "gate", "report", "session", "decoders"},
    "report": {"engine", "decoders", "session", "refset"},
    "decoders": {"store", "engine", "gate", "report", "session", "metrics"},
}
#: parts that may import only these parts of qa (transitively)
ONLY: dict[str, set[str]] = {
    "store": {"settings", "errors", "plain_text"},
    "settings": {"errors", "plain_text"},
    "errors": set(),
    "plain_text": set(),
}
#: front ends: nothing else in qa imports them
FRONT_ENDS = {"cli", "pytest_plugin"}
#: parts whose import never imports torch (a gate, a report and the store read numbers; they run no network)
TORCH_FREE = {"gate", "report", "store", "settings", "errors", "plain_text"}
#: packages outside qa that nothing in qa may import
NEVER_IMPORTED = {"training"}
#: method names that talk SQL to a DuckDB connection or a Store
SQL_CALLS = {"execute", "executemany", "sql", "query", "df"}
MAX_LINES = 400


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (a qa module, or the top-level name of another package) at ``line``."""

    source: str
    target: str
    line: int


@dataclass
class Graph:
    """The modules of ``qa`` (name -> file) and their imports."""

    files: dict[str, Path]
    edges: dict[str, list[Edge]] = field(default_factory=dict)

    def part(self, module: str) -> str:
        """``qa.gate.units`` -> ``gate``; ``qa.settings`` -> ``settings``; an outside package -> its name."""
        parts = module.split(".")
        return parts[1] if parts[0] == "qa" and len(parts) > 1 else ("" if module == "qa" else parts[0])

    def where(self, module: str, line: int) -> str:
        path = self.files.get(module)
        return f"{path.relative_to(ROOT) if path and path.is_relative_to(ROOT) else module}:{line}"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(module: str, is_package: bool, tree: ast.AST, known: Iterable[str]) -> list[Edge]:
    """Every import of ``module``: qa modules by full name (parent packages included, as Python runs them), other
    packages by their top-level name."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    guarded = _type_checking_lines(tree)
    out: list[Edge] = []

    def add(name: str, line: int) -> None:
        if line in guarded:
            return
        if name.split(".")[0] != "qa":
            out.append(Edge(module, name.split(".")[0], line))
            return
        for target in [*_ancestors(name), name]:
            if target in known and target != module:
                out.append(Edge(module, target, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            add(base, node.lineno)
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    add(f"{base}.{a.name}", node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            add(node.args[0].value, node.lineno)  # importlib.import_module("qa.x") counts too
    return out


@functools.cache
def _tree() -> tuple[dict[str, Path], dict[str, list[Edge]]]:
    """The modules of the source tree and their imports, read once per session."""
    files = {module_name(p): p for p in sorted(QA.rglob("*.py"))}
    edges = {name: _imports(name, path.name == "__init__.py", ast.parse(path.read_text(encoding="utf-8"), str(path)),
                            files) for name, path in files.items()}
    return files, edges


def build_graph(planted: dict[str, str] | None = None) -> Graph:
    """The graph of the source tree, with ``planted`` modules (name -> source) added or replacing real ones."""
    real_files, real_edges = _tree()
    files = dict(real_files)
    for name in planted or {}:
        files.setdefault(name, QA / "planted" / f"{name.rpartition('.')[2]}.py")
    graph = Graph(files, dict(real_edges))
    for name, text in (planted or {}).items():  # a real module never imports a new planted one: its edges stand
        is_package = name in real_files and real_files[name].name == "__init__.py"
        graph.edges[name] = _imports(name, is_package, ast.parse(text, name), files)
    return graph


def reached(graph: Graph, start: str) -> dict[str, list[Edge]]:
    """The closure of ``start``'s imports: every module that importing ``start``, or calling its functions, may
    import, with the shortest chain of imports to it."""
    chains: dict[str, list[Edge]] = {}
    todo = [(e, [e]) for e in graph.edges.get(start, [])]
    while todo:
        edge, chain = todo.pop(0)
        if edge.target in chains or edge.target == start:
            continue
        chains[edge.target] = chain
        nxt = list(graph.edges.get(edge.target, []))
        nxt += [Edge(edge.target, a, edge.line) for a in _ancestors(edge.target) if a in graph.files]
        todo += [(e, [*chain, e]) for e in nxt]
    return chains


def _chain_text(graph: Graph, chain: list[Edge]) -> str:
    head = chain[0]
    return f"{graph.where(head.source, head.line)}: " + " -> ".join([head.source, *(e.target for e in chain)])


def violations(graph: Graph, modules: Iterable[str] | None = None) -> list[str]:
    """Every forbidden arrow reached from ``modules`` (default: every module of qa), with its import chain."""
    bad = []
    for module in sorted(modules if modules is not None else graph.files):
        src = graph.part(module)
        for target, chain in reached(graph, module).items():
            dst = graph.part(target)
            if not dst or dst == src:
                continue
            why = ""
            if dst in FORBIDDEN.get(src, set()):
                why = f"qa/{src} must never import qa.{dst}"
            elif src in ONLY and target.startswith("qa.") and dst not in ONLY[src]:
                why = f"qa/{src} may import only {sorted(ONLY[src])} of qa"
            elif dst in FRONT_ENDS and src not in FRONT_ENDS:
                why = f"qa/{src} imports the front end qa.{dst}"
            elif dst in NEVER_IMPORTED:
                why = f"qa/{src} imports {dst} (not on the runtime path)"
            elif dst == "torch" and src in TORCH_FREE:
                why = f"importing qa/{src} imports torch"
            if why:
                bad.append(f"{_chain_text(graph, chain)}: {why}")
    return bad


def cycles_within_parts(graph: Graph) -> list[list[str]]:
    """Import cycles (every import counts, imports of one's own parent packages excepted) between the modules of
    one part."""
    adj = {m: {e.target for e in graph.edges.get(m, []) if e.target in graph.files and e.target not in _ancestors(m)
               and graph.part(e.target) == graph.part(m)} for m in graph.files}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(adj[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return found


# -- the rules on the real tree -------------------------------------------------------------------------------------


def test_the_rules_see_the_parts_they_name() -> None:
    """A rule about a part that does not exist (a renamed folder) would pass silently: every named part exists."""
    graph = build_graph()
    parts = {graph.part(m) for m in graph.files}
    named = set(FORBIDDEN) | set(ONLY) | FRONT_ENDS | TORCH_FREE | {d for v in FORBIDDEN.values() for d in v}
    assert named <= parts, sorted(named - parts)


def test_forbidden_arrows_are_absent_even_through_side_doors() -> None:
    bad = violations(build_graph())
    assert not bad, "\n".join(bad)


def test_the_parts_form_no_cycle() -> None:
    graph = build_graph()
    arrows: dict[str, set[str]] = {}
    for module, edges in graph.edges.items():
        for e in edges:
            a, b = graph.part(module), graph.part(e.target)
            if a and b and a != b and e.target.startswith("qa."):
                arrows.setdefault(a, set()).add(b)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in arrows.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(a for a in arrows if a in reach(a))
    assert not cycles, f"parts on a cycle: {cycles}; arrows: " + "; ".join(
        f"{a} -> {sorted(arrows[a] & set(cycles))}" for a in cycles)


def test_the_modules_of_a_part_form_no_cycle() -> None:
    cycles = cycles_within_parts(build_graph())
    assert not cycles, "import cycles inside a part: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_sql_outside_the_store() -> None:
    """The must-show of issue 15 (`grep -rn "execute(" qa | grep -v "^qa/store/"` prints nothing), as text and as
    calls: no module outside qa/store calls execute/executemany/sql/query/df on anything."""
    bad = []
    for path in sorted(QA.rglob("*.py")):
        if path.is_relative_to(QA / "store"):
            continue
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        bad += [f"{rel}:{i}: execute(" for i, line in enumerate(text.splitlines(), 1) if "execute(" in line]
        bad += [f"{rel}:{node.lineno}: .{node.func.attr}(...)" for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS]
    assert not bad, "SQL outside qa/store:\n" + "\n".join(bad)


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in QA.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("package", ["qa.gate", "qa.report", "qa.store"])
def test_importing_gate_report_or_store_imports_no_torch(package: str) -> None:
    """`python -c "import qa.gate, sys; print('torch' in sys.modules)"` prints False (and for qa.report, qa.store)."""
    assert _python(f"import {package}, sys; print('torch' in sys.modules)") == "False"


def test_every_gate_report_and_store_module_and_every_declaration_leave_torch_out() -> None:
    """All of their modules imported, and every registered metric's declaration read (what a gate and a report
    need of a metric): still no torch, no decoder, no engine."""
    code = ("import importlib, pkgutil, sys\n"
            "import qa.gate, qa.report, qa.store\n"
            "for pkg in (qa.gate, qa.report, qa.store):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__):\n"
            "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
            "from qa.metrics.catalog import METRICS\n"
            "from qa.metrics.declarations import declaration\n"
            "assert all(declaration(n).read == 'source' for n in METRICS.names())\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('qa.decoders', 'qa.engine'))))")
    assert _python(code) == "[]"


def test_importing_the_runtime_never_imports_a_training_script() -> None:
    """`python -c "import qa, sys; print([m for m in sys.modules if 'train' in m])"` prints [] for the runtime."""
    runtime = ["qa", "qa.cli.main", "qa.engine.run", "qa.decoders.factory", "qa.decoders.l2p", "qa.metrics.agreement",
               "qa.gate.evaluate", "qa.report.build", "qa.pytest_plugin", "qa.zoo.models"]
    code = ("import importlib, sys\n"
            f"for m in {runtime!r}: importlib.import_module(m)\n"
            "print([m for m in sys.modules if m == 'training' or m.startswith('training.') or '.train' in m])")
    assert _python(code) == "[]"


# -- the checker is not vacuous: planted imports fail it ------------------------------------------------------------

#: qa/registries.py as it was on main before issue 28: a module of no part that imports the decoders at module level
SIDE_DOOR = "from qa.decoders.base import Decoder\nfrom qa.metrics.base import Metric\n"


@pytest.mark.parametrize(("planted", "start", "expected"), [
    # direct arrows, at module level, inside a function, through importlib
    ({"qa.gate.planted": "from qa.engine.run import RunEngine\n"}, "qa.gate.planted", "must never import qa.engine"),
    ({"qa.gate.planted": "def f():\n    import qa.decoders.base\n"}, "qa.gate.planted", "qa.decoders"),
    ({"qa.metrics.planted": "import qa.report.build\n"}, "qa.metrics.planted", "qa.report"),
    ({"qa.store.planted": "from qa.engine import run\n"}, "qa.store.planted", "may import only"),
    ({"qa.settings": "from qa.store import Store\n"}, "qa.settings", "may import only"),
    ({"qa.engine.planted": "from training.zoo import cards\n"}, "qa.engine.planted", "training"),
    ({"qa.report.planted": "import importlib\nimportlib.import_module('qa.cli.main')\n"}, "qa.report.planted",
     "front end"),
    # side doors: Gate -> X -> Decoders, where X itself may import decoders
    ({"qa.registries": SIDE_DOOR, "qa.gate.planted": "def target(m):\n    from qa.registries import METRICS\n"},
     "qa.gate.planted", "qa.gate.planted -> qa.registries -> qa.decoders"),
    ({"qa.planted_x": "import qa.planted_y\n", "qa.planted_y": "from qa.decoders import vae\n",
      "qa.gate.planted": "import qa.planted_x\n"}, "qa.gate.planted",
     "qa.gate.planted -> qa.planted_x -> qa.planted_y -> qa.decoders"),
    ({"qa.planted_x": "def build():\n    import qa.decoders.base\n", "qa.gate.planted": "import qa.planted_x\n"},
     "qa.gate.planted", "qa.gate.planted -> qa.planted_x -> qa.decoders"),
    ({"qa.planted_x": "import torch\n", "qa.report.planted": "from qa.planted_x import f\n"}, "qa.report.planted",
     "imports torch"),
])
def test_the_checker_catches_a_planted_import(planted: dict[str, str], start: str, expected: str) -> None:
    """A forbidden import planted in a part (even inside a function, through importlib, or behind one or two
    modules that may import it themselves) is reported, with its chain."""
    bad = violations(build_graph(planted), [start])
    assert any(expected in b for b in bad), bad


def test_the_checker_allows_the_allowed() -> None:
    """What the rules allow passes: the engine imports the store and the decoders; the gate reads declarations;
    a TYPE_CHECKING import is no import."""
    planted = {
        "qa.engine.planted": "from qa.store import Store\nimport qa.decoders.vae\n",
        "qa.gate.planted": "from qa.metrics.declarations import declaration\nfrom typing import TYPE_CHECKING\n"
                           "if TYPE_CHECKING:\n    from qa.decoders.base import Decoder\n",
    }
    assert violations(build_graph(planted), list(planted)) == []


def test_the_cycle_check_catches_a_planted_cycle() -> None:
    """Two modules of a part importing each other (one of them inside a function: pid <-> pid_upstream was such a
    circle) are reported; so is a circle in a sub-package."""
    planted = {"qa.decoders.planted_a": "from qa.decoders import planted_b\n",
               "qa.decoders.planted_b": "def f():\n    from qa.decoders.planted_a import X\n"}
    assert ["qa.decoders.planted_a", "qa.decoders.planted_b"] in cycles_within_parts(build_graph(planted))
    nested = {"qa.metrics.invented.planted_a": "import qa.metrics.invented.planted_b\n",
              "qa.metrics.invented.planted_b": "import qa.metrics.invented.planted_a\n"}
    assert ["qa.metrics.invented.planted_a", "qa.metrics.invented.planted_b"] in cycles_within_parts(build_graph(nested))
