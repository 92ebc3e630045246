"""The dependency rules of docs/ARCHITECTURE.md, checked on the source with ``ast`` (nothing is imported).

Each rule names a part (a folder or module of ``qa/``) and the parts it must never import; a forbidden import
anywhere in the part, at module level or inside a function, fails with the file and line. SQL outside
``qa/store`` fails the same way, and so does a cycle between the parts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "qa"

#: part -> the parts it must never import (see docs/ARCHITECTURE.md, "Arrows that must never exist")
FORBIDDEN: dict[str, set[str]] = {
    "gate": {"engine", "decoders", "session", "refset"},
    "metrics": {"engine", "gate", "report", "session"},
    "report": {"engine", "decoders", "session", "refset"},
    "decoders": {"store", "engine", "gate", "report", "session"},
}
#: parts that may import only these parts of qa
ONLY: dict[str, set[str]] = {
    "store": {"settings", "errors"},
    "settings": {"errors"},
}
#: front ends: nothing else in qa imports them
FRONT_ENDS = {"cli", "pytest_plugin"}
#: method names that talk SQL to a DuckDB connection or a Store
SQL_CALLS = {"execute", "executemany", "sql", "query", "query_df"}


def _part(path: Path) -> str:
    rel = path.relative_to(QA).with_suffix("")
    return rel.parts[0]


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute import (``from a import b`` yields ``a`` and ``a.b``)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            out.append((node.lineno, str(node.args[0].value)))  # importlib.import_module("qa.x") counts too
    return out


def _sources() -> list[tuple[Path, ast.AST]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in sorted(QA.rglob("*.py"))]


def _edges_of(src: str, path: Path, tree: ast.AST) -> list[tuple[str, str, Path, int]]:
    out = []
    for line, module in _imports(tree):
        top = module.split(".")
        if top[0] == "training":
            out.append((src, "training", path, line))
        elif top[0] == "qa" and len(top) > 1 and top[1] != src and not top[1].startswith("__"):
            out.append((src, top[1], path, line))
    return out


def _edges() -> list[tuple[str, str, Path, int]]:
    """(from part, to part, file, line) of every import of another part of qa (or of ``training``)."""
    return [e for path, tree in _sources() for e in _edges_of(_part(path), path, tree)]


def _violations(edges: list[tuple[str, str, Path, int]]) -> list[str]:
    bad = [f"{_where(p, n)}: qa/{a} imports qa.{b}" for a, b, p, n in edges if b in FORBIDDEN.get(a, set())]
    bad += [f"{_where(p, n)}: qa/{a} imports qa.{b} (it may import only {sorted(ONLY[a])})"
            for a, b, p, n in edges if a in ONLY and b not in ONLY[a]]
    bad += [f"{_where(p, n)}: qa/{a} imports the front end qa.{b}" for a, b, p, n in edges
            if b in FRONT_ENDS and a not in FRONT_ENDS]
    bad += [f"{_where(p, n)}: qa/{a} imports training (not on the runtime path)" for a, b, p, n in edges
            if b == "training"]
    return bad


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_rules_see_the_parts_they_name() -> None:
    """A rule about a part that does not exist (renamed folder) would pass silently: every named part exists."""
    parts = {_part(p) for p, _ in _sources()}
    named = set(FORBIDDEN) | set(ONLY) | FRONT_ENDS | {d for v in FORBIDDEN.values() for d in v}
    assert named - {"training"} <= parts, sorted(named - parts)


def test_forbidden_arrows_are_absent() -> None:
    bad = _violations(_edges())
    assert not bad, "\n".join(bad)


def test_no_sql_outside_the_store() -> None:
    """The must-show of issue 15 (`grep -rn "execute(" qa | grep -v "^qa/store/"` prints nothing), as text and as
    calls: no module outside qa/store calls execute/executemany/sql/query/query_df on anything."""
    bad = []
    for path, tree in _sources():
        if _part(path) == "store":
            continue
        text = path.read_text(encoding="utf-8")
        bad += [f"{_where(path, i)}: execute(" for i, line in enumerate(text.splitlines(), 1) if "execute(" in line]
        bad += [f"{_where(path, node.lineno)}: .{node.func.attr}(...)" for node in ast.walk(tree)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS]
    assert not bad, "SQL outside qa/store:\n" + "\n".join(bad)


def test_the_parts_form_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in _edges():
        graph.setdefault(a, set()).add(b)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(a for a in graph if a in reach(a))
    assert not cycles, f"parts on a cycle: {cycles}; edges: " + "; ".join(
        f"{a} -> {sorted(graph[a] & set(cycles))}" for a in cycles)


@pytest.mark.parametrize(("part", "source"), [
    ("gate", "from qa.engine.run import RunEngine\n"),
    ("gate", "def f():\n    import qa.decoders.base\n"),
    ("metrics", "import qa.report.build\n"),
    ("store", "from qa.engine import run\n"),
    ("settings", "from qa.store import Store\n"),
    ("engine", "from training.zoo import cards\n"),
    ("report", "import importlib\nimportlib.import_module('qa.cli.main')\n"),
])
def test_the_checker_catches_a_planted_import(part: str, source: str) -> None:
    """The checker is not vacuous: a forbidden import planted in a part (even inside a function, or through
    importlib) is reported."""
    path = QA / part / "planted.py"
    assert _violations(_edges_of(part, path, ast.parse(source)))


def test_the_checker_allows_the_allowed() -> None:
    assert not _violations(_edges_of("engine", QA / "engine" / "x.py", ast.parse("from qa.store import Store\n")))


def test_importing_qa_imports_no_training_module() -> None:
    """`python -c "import qa, sys; print([m for m in sys.modules if 'train' in m])"` prints []."""
    code = "import qa, qa.cli.main, qa.engine.run, qa.gate.evaluate, qa.report.build, sys; " \
           "print([m for m in sys.modules if 'train' in m and m.startswith(('qa', 'training'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
