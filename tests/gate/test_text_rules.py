"""Text rules of the release policies: optional on other sets, required on a text set, fail closed without OCR."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.engine.run import RunConfig, RunEngine
from qa.gate.checks import GateContext
from qa.gate.data import load_run, reference_set_kinds
from qa.gate.evaluate import resolve_baseline
from qa.gate.policy import PolicyError, load_policy, parse_policy
from qa.metrics.text import ocr
from qa.store import Store
from tests.helpers import needs_ocr, sign, write_set

SUITES = Path(__file__).resolve().parents[2] / "suites"
POLICY = {"policy": {"track": "upscale"},
          "metrics": {"psnr": {"min": 5.0},
                      "text_cer": {"applies_to": ["text"], "margin": 0.02},
                      "text_invented": {"group": "invented", "applies_to": ["text"], "margin": 0.005,
                                        "image_margin": 0.05}}}
SIGNS = {"gate": ("NORTH GATE", "Platform 7"), "exit": ("EXIT", "Stairs B")}


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("textgate")
    images = {k: sign(v, size=40, side=(256, 128)) for k, v in SIGNS.items()}
    return {"text": write_set(root / "text", images, {k: "\n".join(v) for k, v in SIGNS.items()}),
            "plain": write_set(root / "plain", images, None)}


def _gate(store: Store, refset: Path, metrics: list[str], metric: str) -> tuple[str, str]:
    run_id = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=metrics,
                                              progress=False))
    run = load_run(store, run_id)
    res = GateContext(store, run, parse_policy(POLICY)).against(metric, resolve_baseline(store, run, run_id))
    return res.verdict, res.message


def test_text_rules_are_required_on_a_text_set_and_skipped_elsewhere(sets, tmp_path: Path) -> None:
    store = Store(tmp_path / "qa.duckdb")
    verdict, message = _gate(store, sets["text"], ["psnr"], "text_cer")
    assert verdict == "fail" and "required metric missing" in message
    verdict, message = _gate(store, sets["plain"], ["psnr"], "text_invented")
    assert verdict == "skipped" and "applies to text reference sets only" in message
    verdict, message = _gate(store, sets["plain"], ["psnr", "text_cer"], "text_cer")  # computed, not gated
    assert verdict == "skipped" and "applies to text reference sets only" in message
    assert "sets no margin" not in message  # the policy does set one (CI audit L3): the set's kind is the reason
    kinds = {r.reference_set: reference_set_kinds(store, r.run_id)
             for r in [load_run(store, rid) for (rid,) in store.query("select run_id from runs")]}
    assert kinds == {"text": ["text"], "plain": []}


def test_a_text_set_without_the_ocr_engine_fails_closed(sets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "unavailable_reason",
                        lambda: "OCR engine absent; install it: apt-get install tesseract-ocr-eng")
    verdict, message = _gate(Store(tmp_path / "qa.duckdb"), sets["text"], ["psnr", "text_invented"], "text_invented")
    assert verdict == "fail" and "apt-get install tesseract-ocr-eng" in message


@needs_ocr
def test_a_text_set_with_the_engine_is_gated_on_its_numbers(sets, tmp_path: Path) -> None:
    verdict, message = _gate(Store(tmp_path / "qa.duckdb"), sets["text"], ["psnr", "text_cer", "text_invented"],
                             "text_cer")
    assert verdict == "pass" and "text_cer" in message


def test_shipped_policies_name_text_rules_for_text_sets() -> None:
    for track in ("upscale", "decode"):
        policy = load_policy(SUITES / f"policy_{track}.toml")
        for name in ("text_cer", "text_invented"):
            rule = policy.metrics[name]
            assert rule.required and rule.applies_to == ("text",) and rule.margin is not None
            assert policy.for_set_kinds(["text"]).metrics[name] == rule
            other = policy.for_set_kinds([]).metrics[name]
            assert not other.required and other.margin is None and other.image_margin is None
        assert policy.for_set_kinds([]).sha256() == policy.sha256()  # resolved per run, stored as written
    bad = {**POLICY, "metrics": {"text_cer": {"applies_to": ["txt"]}}}
    with pytest.raises(PolicyError, match="applies_to"):
        parse_policy(bad)
