"""The package's layout rules (docs ARCHITECTURE): what the runtime imports, who may import whom, module sizes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "qa"
RUNTIME = ["qa", "qa.cli.main", "qa.engine", "qa.decoders", "qa.metrics", "qa.gate", "qa.report", "qa.decoders.catalog", "qa.metrics.catalog",
           "qa.pytest_plugin", "qa.decoders.l2p", "qa.metrics.agreement", "qa.zoo.models"]


def test_importing_the_runtime_never_imports_a_training_script() -> None:
    code = ("import importlib, sys\n"
            f"for m in {RUNTIME!r}: importlib.import_module(m)\n"
            "print([m for m in sys.modules if m == 'training' or m.startswith('training.') or '.train' in m])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _imports(path: Path) -> set[str]:
    """Every module name ``path`` imports (top level and inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("metrics", ("qa.engine", "qa.gate", "qa.report", "qa.decoders")),
    ("decoders", ("qa.engine", "qa.gate", "qa.report", "qa.store")),
    ("gate", ("qa.decoders",)),
    ("report", ("qa.engine", "qa.decoders")),
])
def test_dependency_rules(folder: str, forbidden: tuple[str, ...]) -> None:
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in sorted((QA / folder).rglob("*.py")) for m in _imports(p)
           if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert bad == []


def test_nothing_in_qa_imports_the_training_scripts_cli_or_plugin() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in sorted(QA.rglob("*.py")) for m in _imports(p)
           if m.split(".")[0] == "training"
           or (m.startswith(("qa.cli", "qa.pytest_plugin")) and not p.is_relative_to(QA / "cli"))]
    assert bad == []


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in QA.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_report_names_only_registered_metrics() -> None:
    from qa.metrics.catalog import METRICS
    from qa.report.charts import DISTORTION_METRICS, PERCEPTION_METRICS

    unknown = [m for m in DISTORTION_METRICS + PERCEPTION_METRICS if m not in METRICS.names()]
    assert unknown == []
