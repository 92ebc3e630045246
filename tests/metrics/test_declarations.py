"""qa.metrics.declarations: a metric's declaration read from its source (no torch, no metric code), equal to what
the imported class says; third-party metrics through the ``qa.metrics`` entry-point group; honest fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa.errors import UnknownNameError
from qa.metrics.base import metric_target
from qa.metrics.catalog import METRICS
from qa.metrics.declarations import MetricDeclarationError, declaration

ROOT = Path(__file__).resolve().parents[2]


def test_every_builtin_is_read_from_source_and_says_what_its_class_says() -> None:
    builtins = [n for n in METRICS.names() if isinstance(METRICS.target(n), str)]  # not the classes tests register
    assert len(builtins) >= 24
    for name in builtins:
        d = declaration(name)
        cls = METRICS.factory(name)  # imports the metric (and torch): the reference the source reading must equal
        assert d.read == "source", name
        assert (d.target, d.value_range, d.level, d.needs, d.weights, d.unit, d.description, d.version,
                d.averaged) == (
            metric_target(cls), tuple(float(x) for x in cls.value_range), cls.level, tuple(cls.needs),
            tuple(cls.weights), cls.unit, cls.description, cls.version, cls.averaged), name
    # decibel ratios of signal to noise power are averaged in noise power (qa.averaging), the rest as they are
    assert {n for n in builtins if declaration(n).averaged == "noise_power"} == {
        "psnr", "baseline_psnr", "agreement_psnr"}


def test_aliases_and_unknown_names() -> None:
    assert declaration("lpips") == declaration("lpips_alex")
    with pytest.raises(UnknownNameError, match="psnr"):
        declaration("psnrr")


def test_a_class_registered_at_run_time_is_read_from_its_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.metrics.fidelity import PSNR

    class Twin(PSNR):
        target = 30.0
        averaged = "value"  # PSNR's noise-power averaging is for a higher-is-better ratio, not a target value

    METRICS.names()
    monkeypatch.setitem(METRICS._targets, "twin", Twin)  # noqa: SLF001 - test-only registration
    d = declaration("twin")
    assert d.read == "class" and d.target.kind == "value" and d.target.value == 30.0 and d.unit == "dB"

    monkeypatch.setitem(METRICS._targets, "twin", lambda: 3)  # noqa: SLF001 - same name, another target: read again
    with pytest.raises(MetricDeclarationError, match="not a Metric"):
        declaration("twin")


def test_an_averaging_nobody_defined_is_a_declaration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.metrics.fidelity import PSNR

    class Geometric(PSNR):
        averaged = "geometric"  # type: ignore[assignment]

    METRICS.names()
    monkeypatch.setitem(METRICS._targets, "geometric", Geometric)  # noqa: SLF001 - test-only registration
    with pytest.raises(MetricDeclarationError, match="unknown averaging 'geometric'; allowed: value, noise_power"):
        declaration("geometric")

    class LowerNoise(PSNR):
        higher_is_better = False

    monkeypatch.setitem(METRICS._targets, "geometric", LowerNoise)  # noqa: SLF001 - a decibel SNR that is "lower"
    with pytest.raises(MetricDeclarationError, match="higher-is-better; this metric's target is 'lower'"):
        declaration("geometric")


PLUGIN = {
    # the plugin's torch: a module that must never be imported by a gate, a report or `qa metrics` listings
    "qa_demo_heavy.py": 'raise ImportError("qa_demo_heavy was imported")\n',
    "qa_demo_plugin/__init__.py": "import qa_demo_heavy  # noqa\nfrom .impl import Sharpness\n",
    "qa_demo_plugin/impl.py": """
        import qa_demo_heavy  # noqa
        from qa.metrics.base import ImageMetric
        from qa.metrics.fidelity import PSNR

        from .units import PIXELS as UNIT

        LOWER_IS_BETTER = False

        class _Base(ImageMetric):
            higher_is_better = LOWER_IS_BETTER
            value_range = (0.0, float("inf"))

        class Sharpness(_Base):
            name = "sharpness"
            unit = UNIT
            needs = ("reference",)

        class PSNRTwin(PSNR):
            name = "psnr_twin"

        def make_sharpness():
            return Sharpness()
        """,
    "qa_demo_plugin/units.py": 'PIXELS = "px"\n',
    "qa_demo_computed.py": """
        from qa.metrics.base import ImageMetric

        class Computed(ImageMetric):
            name = "computed"
            higher_is_better = 1 > 2
            target = float(sum([0.5, 0.5]))

            def compute(self, sample):
                raise NotImplementedError

        def make():
            return Computed()
        """,
    "qa_demo_plugin-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: qa-demo-plugin\nVersion: 0.1\n",
    "qa_demo_plugin-0.1.dist-info/entry_points.txt": """
        [qa.metrics]
        sharpness = qa_demo_plugin:Sharpness
        psnr_twin = qa_demo_plugin.impl:PSNRTwin
        sharpness_factory = qa_demo_plugin.impl:make_sharpness
        computed_class = qa_demo_computed:Computed
        computed_factory = qa_demo_computed:make
        """,
}

PROBE = """
import json, sys
from qa.gate.units import metric_target_unit
from qa.metrics.declarations import MetricDeclarationError, declaration

out = {}
for name in ("sharpness", "psnr_twin"):
    d = declaration(name)
    out[name] = [d.read, d.target.label(), d.unit, list(d.value_range), list(d.needs)]
out["gate"] = [metric_target_unit("sharpness")[0].label(), metric_target_unit("sharpness")[1]]
out["torch"] = "torch" in sys.modules
out["heavy"] = "qa_demo_heavy" in sys.modules
try:
    declaration("sharpness_factory")
except MetricDeclarationError as exc:
    out["sharpness_factory"] = str(exc)
for name in ("computed_class", "computed_factory"):
    d = declaration(name)
    out[name] = [d.read, d.target.label()]
print(json.dumps(out))
"""


def test_a_plugin_metric_is_read_from_its_source_without_importing_it(tmp_path: Path) -> None:
    """An entry-point metric whose package imports something heavy (here: a module that raises when imported) is
    described from its source, through a package re-export, a private base, module constants (one imported) and a
    built-in base;
    a factory target is imported (and fails honestly here); computed declarations are imported and read."""
    for rel, text in PLUGIN.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text).lstrip())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sharpness"] == ["source", "lower", "px", [0.0, float("inf")], ["reference"]]
    assert out["psnr_twin"] == ["source", "higher", "dB", [0.0, float("inf")], ["reference"]]
    assert out["gate"] == ["lower", "px"]
    assert out["torch"] is False and out["heavy"] is False
    assert "cannot be imported" in out["sharpness_factory"] and "qa_demo_heavy was imported" in out["sharpness_factory"]
    assert out["computed_class"] == ["class", "closer to 1"]
    assert out["computed_factory"] == ["instance", "closer to 1"]
