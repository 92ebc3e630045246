"""The CI path of ``pytest suites/``, run with ``pytester`` on a 6-tile 64x64 set (the ci audit's H1, M1, M2, M3):
an empty ``--decoder=`` (an unset CI variable) is a usage error; a partial gate is a failed testcase in the JUnit
XML, whose properties name the gate and the run it judged; ``--gate-summary`` writes the gate this session decided
(never the store's ``latest``); a run with failed cases is never reused, and ``--fresh-run`` decodes afresh."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

import qa.metrics.fidelity  # noqa: F401
import qa.session.suite  # noqa: F401  (imported here so pytester's in-process runs do not re-import it each time)
from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.engine.run import RunConfig, RunEngine
from qa.store import Store
from tests.gate.helpers import register
from tests.helpers import make_refset
from tests.session.helpers import INNER, SUITES

POLICY = """
[policy]
track = "upscale"
n_boot = 200

[metrics.psnr]
min = 15.0
margin = 0.3
"""
#: FlakyBicubic fails the batches holding tile03 while the file this variable names exists
FLAG = "QA_TEST_FLAKY_FLAG"


class FlakyBicubic(BicubicDecoder):
    """Bicubic that fails tile03's batch while a flag file exists (a stand-in for an out-of-memory error)."""

    family = "flaky-bicubic"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        flag = os.environ.get(FLAG, "")
        if flag and Path(flag).exists() and "tile03" in batch.case_ids:
            raise RuntimeError("transient failure (flag file present)")
        return super().decode(batch, seed)


def _register() -> None:
    from qa.decoders.catalog import DECODERS

    register()
    if "flaky-bicubic" not in DECODERS:
        DECODERS.register("flaky-bicubic", FlakyBicubic)


@pytest.fixture(scope="module")
def refset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_refset(tmp_path_factory.mktemp("ci") / "set")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    _register()
    for name in ("test_upscale.py", "policy_upscale.toml"):
        (pytester.path / name).write_text((SUITES / name).read_text())
    (pytester.path / "tiny.toml").write_text(POLICY)
    return pytester


def run(suite: pytest.Pytester, refset: Path, decoder: str, *extra: str) -> pytest.RunResult:
    return suite.runpytest("-p", "no:cacheprovider", *INNER, "-rs", f"--decoder={decoder}",
                           f"--reference-set={refset}", f"--db={suite.path / 'qa.duckdb'}", "--policy=tiny.toml",
                           "--baseline=none", *extra)


def _cases(xml: Path) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}.{c.get('name')}": c for c in ET.parse(xml).getroot().iter("testcase")}


def _props(case: ET.Element) -> dict[str, str]:
    return {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}


@pytest.mark.parametrize("value", ["", " "], ids=["empty", "blank"])
def test_empty_decoder_is_a_usage_error(suite: pytest.Pytester, refset: Path, value: str) -> None:
    """H1: --decoder="$QA_DECODER" with the variable unset gated nothing and exited 0 (every test skipped)."""
    result = run(suite, refset, value, f"--junitxml={suite.path / 'out.xml'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*--decoder is empty (known: *bicubic*): pass --decoder NAME; in CI the variable*"])


def test_partial_gate_is_a_failed_testcase_in_the_junit(suite: pytest.Pytester, refset: Path) -> None:
    """M1: -k exited 1 but the JUnit XML had 0 failures and no reason; the whole gate names its gate and run."""
    xml = suite.path / "whole.xml"
    whole = run(suite, refset, "bicubic", f"--junitxml={xml}")
    assert whole.ret == 0, whole.stdout.str()
    gate = _cases(xml)["qa.release_gate"]
    assert gate.find("failure") is None
    store = Store(suite.path / "qa.duckdb")
    (gate_id, run_id), = store.query("select gate_id, run_id from gates")
    props = _props(gate)
    assert (props["qa.gate_id"], props["qa.gate.run_id"], props["qa.gate.complete"]) == (gate_id, run_id, "True")

    xml = suite.path / "partial.xml"
    partial = run(suite, refset, "bicubic", "-k", "every_case", f"--junitxml={xml}")
    assert partial.ret == pytest.ExitCode.TESTS_FAILED
    suite_el = ET.parse(xml).getroot().find("testsuite")
    assert suite_el is not None and suite_el.get("failures") == "1"
    failure = _cases(xml)["qa.release_gate"].find("failure")
    assert failure is not None and "partial gate" in str(failure.get("message")), ET.tostring(suite_el)
    assert "decides nothing" in str(failure.get("message"))
    assert _cases(xml)["test_upscale.test_every_case_decoded"].find("failure") is None


def test_gate_summary_is_the_gate_this_session_decided(suite: pytest.Pytester, refset: Path) -> None:
    """M2: the workflow's summary re-gated `--run latest`, which need not be the run pytest gated (a store shared
    with another job, or a reused run): --gate-summary writes the session's own gate."""
    first = run(suite, refset, "bicubic")
    assert first.ret == 0, first.stdout.str()
    store = Store(suite.path / "qa.duckdb")
    (gated,) = [r[0] for r in store.query("select run_id from runs")]
    # another job stores a newer run of the same decoder (other metrics: not the identity the suites reuse)
    newer = RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=["ssim"],
                                             progress=False))
    assert newer != gated
    out = suite.path / "reports" / "qa-gate.md"
    second = run(suite, refset, "bicubic", f"--gate-summary={out}")
    assert second.ret == 0, second.stdout.str()
    text = out.read_text()
    gate_id = store.query("select gate_id from gates where run_id = ? order by decided_at desc limit 1",
                          [gated])[0][0]
    assert text.startswith(f"### qa gate: PASS for `{gated}` (bicubic)"), text[:300]
    assert gate_id in text and newer not in text
    partial = run(suite, refset, "bicubic", "-k", "every_case", f"--gate-summary={out}")
    assert partial.ret == pytest.ExitCode.TESTS_FAILED
    assert out.read_text().startswith("### qa gate: PARTIAL (pass on the checks that ran, decides nothing)")
    unknown = run(suite, refset, "bicubc", f"--gate-summary={out}")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    assert out.read_text().startswith("### qa gate: NOT DECIDED") and "did you mean 'bicubic'" in out.read_text()


def test_a_run_with_failed_cases_is_never_reused(suite: pytest.Pytester, refset: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """M3: a transient failure stuck: the finished run with a failed case was reused by every later session."""
    flag = suite.path / "flaky"
    monkeypatch.setenv(FLAG, str(flag))
    flag.touch()
    failing = run(suite, refset, "flaky-bicubic")
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    failing.stdout.fnmatch_lines(["*cases failed to decode*transient failure*"])
    flag.unlink()  # the cause is gone
    again = run(suite, refset, "flaky-bicubic")
    assert again.ret == 0, again.stdout.str()
    store = Store(suite.path / "qa.duckdb")
    assert store.query("select count(*) from runs")[0][0] == 2
    clean = store.query("select run_id from runs order by started_at desc limit 1")[0][0]
    third = run(suite, refset, "flaky-bicubic")
    assert third.ret == 0
    third.stdout.fnmatch_lines([f"qa: flaky-bicubic: reused run {clean} in * s (stored *no failed case); pass "
                                "--fresh-run to decode afresh"])
    fresh = run(suite, refset, "flaky-bicubic", "--fresh-run")
    assert fresh.ret == 0
    fresh.stdout.fnmatch_lines(["qa: flaky-bicubic: made run *"])
    assert store.query("select count(*) from runs")[0][0] == 3


def test_a_newer_failing_run_does_not_hide_a_clean_one(refset: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """M3: of the runs with the planned identity, the latest one without failed cases is reused."""
    _register()
    store = Store(tmp_path / "qa.duckdb")
    config = RunConfig(decoder="flaky-bicubic", reference_set=str(refset), metrics=["psnr"], progress=False)
    clean = RunEngine(store).start(config)
    flag = tmp_path / "flaky"
    monkeypatch.setenv(FLAG, str(flag))
    flag.touch()
    failing = RunEngine(store).start(config)  # newer, same identity, a failed case
    assert store.query("select count(*) from results where run_id = ? and metric = 'case' and status != 'ok'",
                       [failing])[0][0] > 0
    got = RunEngine(store).ensure(config)
    assert got.reused and got.run_id == clean
