"""The pytest plugin and the shipped suites, run from outside with ``pytester`` on a 6-tile 64x64 set."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import qa.metrics.fidelity  # noqa: F401
import qa.session.suite  # noqa: F401  (imported here so pytester's in-process runs do not re-import it each time)
from qa.gate.policy import load_policy
from qa.store import Store
from tests.gate.helpers import register
from tests.helpers import make_refset
from tests.session.helpers import INNER, SUITES

POLICY = """
[policy]
track = "upscale"
baseline_decoder = "bicubic"
n_boot = 1000

[metrics.psnr]
min = 15.0
margin = 0.3
decoder_margin = 0.3

[metrics.ssim]
min = 0.2
margin = 0.01
decoder_margin = 0.01
"""


@pytest.fixture(scope="module")
def refset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_refset(tmp_path_factory.mktemp("gate") / "set")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester folder with the shipped upscale and decode suites and a conftest registering test decoders."""
    register()
    pytester.makeconftest("from tests.gate.helpers import register\nregister()\n")
    for name in ("test_upscale.py", "test_decode.py", "policy_upscale.toml", "policy_decode.toml"):
        (pytester.path / name).write_text((SUITES / name).read_text())
    (pytester.path / "tiny.toml").write_text(POLICY)
    return pytester


def run(suite: pytest.Pytester, refset: Path, decoder: str, *extra: str) -> pytest.RunResult:
    return suite.runpytest("-p", "no:cacheprovider", *INNER, "-rs",
                           f"--decoder={decoder}", f"--reference-set={refset}",
                           f"--db={suite.path / 'qa.duckdb'}", "--policy=tiny.toml", *extra)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """test id -> passed/failed/skipped, from the inner session's reports."""
    out = {}
    for rep in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if rep.when == "call" or rep.outcome != "passed":
            out[rep.nodeid.split("::")[-1] if "test_upscale" in rep.nodeid else rep.nodeid] = rep.outcome
    return out


def test_same_output_as_baseline_passes(suite: pytest.Pytester, refset: Path) -> None:
    result = run(suite, refset, "bicubic-twin", "--baseline=decoder:bicubic")
    assert result.ret == 0, result.stdout.str()
    got = outcomes(result)
    for test in ("test_every_case_decoded", "test_absolute_bounds[fidelity:psnr]", "test_absolute_bounds[fidelity:ssim]",
                 "test_not_worse_than_baseline[fidelity:psnr]", "test_not_worse_than_decoder_baseline[fidelity:ssim]"):
        assert got[test] == "passed", (test, got)
    # the baseline decoder was run on the same set because none was stored; both runs are in the DB
    store = Store(suite.path / "qa.duckdb")
    assert {r[0] for r in store.query("select decoder from runs")} == {"bicubic-twin", "bicubic"}
    verdict, details = store.query("select verdict, details_json from gates")[0]
    assert verdict == "pass" and '"diff_mean": 0.0' in str(details)
    # the other track's suite skips with the reason
    result.stdout.fnmatch_lines(["*serves the upscale track; this suite gates decode*"])


@pytest.mark.parametrize("decoder", ["blurry-bicubic", "textured-bicubic"])
def test_planted_regression_fails_the_baseline_test(suite: pytest.Pytester, refset: Path, decoder: str) -> None:
    result = run(suite, refset, decoder, "--baseline=none")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    got = outcomes(result)
    # the bounds are loose enough: the regression is caught by the paired comparison against bicubic
    assert got["test_absolute_bounds[fidelity:psnr]"] == "passed"
    assert got["test_every_case_decoded"] == "passed"
    assert got["test_not_worse_than_decoder_baseline[fidelity:psnr]"] == "failed"
    assert got["test_not_worse_than_decoder_baseline[fidelity:ssim]"] == "failed"
    # the first release, chosen with --baseline none: the run baseline is skipped and says so
    assert got["test_not_worse_than_baseline[fidelity:psnr]"] == "skipped"
    result.stdout.fnmatch_lines(["*chosen with --baseline none*"])
    text = result.stdout.str()
    m = re.search(r"AssertionError: psnr \(higher is better\): candidate run (\S+) mean ([\d.]+) dB vs baseline "
                  r"decoder:bicubic run (\S+) mean ([\d.]+) dB; worse by ([\d.]+) dB, "
                  r"95% CI \[([\d.]+), ([\d.]+)\] over 6 paired images; allowed 0.3 dB -> fail", text)
    assert m, text
    cand, base = float(m.group(2)), float(m.group(4))
    worse, lo, hi = float(m.group(5)), float(m.group(6)), float(m.group(7))
    assert 0.3 < lo <= worse <= hi  # "worse by" is positive when worse, like every other output
    # the difference of the two (noise-power) means, each shown to 4 significant digits
    assert worse == pytest.approx(base - cand, abs=1e-2)
    store = Store(suite.path / "qa.duckdb")
    assert store.query("select verdict from gates")[0][0] == "fail"


@pytest.mark.parametrize("required", [True, False])
def test_metric_without_weights(suite: pytest.Pytester, refset: Path, required: bool) -> None:
    (suite.path / "tiny.toml").write_text(POLICY + f"\n[metrics.needs_weights]\nrequired = {str(required).lower()}\n"
                                                   "min = 0.0\n")
    result = run(suite, refset, "bicubic", "--baseline=none")
    got = outcomes(result)
    assert got["test_absolute_bounds[fidelity:psnr]"] == "passed"
    reason = "weights 'fake-net' are not installed here; run `qa weights fetch fake-net`"
    if required:
        assert got["test_absolute_bounds[fidelity:needs_weights]"] == "failed"
        result.stdout.fnmatch_lines([f"*needs_weights [[]bounds[]]: required metric missing: 6 of 6 cases*{reason}*"])
        assert result.ret == pytest.ExitCode.TESTS_FAILED
    else:
        assert got["test_absolute_bounds[fidelity:needs_weights]"] == "skipped"
        result.stdout.fnmatch_lines([f"SKIPPED*test_upscale.py*optional metric skipped*{reason}*"])
        assert result.ret == 0


def test_decoder_that_raises_fails_not_errors(suite: pytest.Pytester, refset: Path) -> None:
    result = run(suite, refset, "always-raising")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    parsed = result.parseoutcomes()
    assert "errors" not in parsed and "error" not in parsed, parsed
    got = outcomes(result)
    assert got["test_every_case_decoded"] == "failed"
    assert got["test_absolute_bounds[fidelity:psnr]"] == "failed"
    result.stdout.fnmatch_lines(["*6 of 6 cases failed to decode*planted failure decoding*"])


def test_unknown_decoder_is_a_usage_error(suite: pytest.Pytester, refset: Path) -> None:
    """One message naming the known decoders (ci audit L1), not one failure per test with the same reason."""
    result = run(suite, refset, "no-such-decoder")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--decoder 'no-such-decoder': unknown decoder 'no-such-decoder' (known: *bicubic*"])


def test_junitxml_carries_metrics_and_second_run_reuses(suite: pytest.Pytester, refset: Path) -> None:
    xml = suite.path / "out.xml"
    first = run(suite, refset, "bicubic", f"--junitxml={xml}", "--baseline=none")
    assert first.ret == 0, first.stdout.str()
    store = Store(suite.path / "qa.duckdb")
    (run_id,) = [r[0] for r in store.query("select run_id from runs")]
    stored = {m: (v, lo, hi) for m, v, lo, hi in store.query(
        "select metric, value, ci_low, ci_high from set_results where run_id = ?", [run_id])}
    root = ET.parse(xml).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["qa.run_id"] == run_id and props["qa.reused"] == "False"
    for metric in ("psnr", "ssim"):
        assert float(props[f"qa.metric.{metric}"]) == pytest.approx(stored[metric][0], rel=1e-12)
        lo, hi = (float(x) for x in props[f"qa.metric.{metric}.ci"].strip("[]").split(","))
        assert (lo, hi) == pytest.approx(stored[metric][1:], rel=1e-12)
    checks = [p.get("value") for p in root.iter("property") if p.get("name") == "qa.check"]
    assert any(c.startswith("psnr (higher is better)") and "set mean" in c for c in checks)

    second = run(suite, refset, "bicubic", f"--junitxml={xml}", "--baseline=none")
    assert second.ret == 0
    assert store.query("select count(*) from runs")[0][0] == 1  # nothing changed: the stored run is reused
    props = {p.get("name"): p.get("value") for p in ET.parse(xml).getroot().iter("property")}
    assert props["qa.run_id"] == run_id and props["qa.reused"] == "True"
    gates = store.query("select run_id, policy_sha256 from gates")
    assert len(gates) == 2 and all(g == (run_id, load_policy(suite.path / "tiny.toml").sha256()) for g in gates)


def test_without_decoder_is_a_usage_error(suite: pytest.Pytester) -> None:
    """Release suites without --decoder gate nothing: a usage error naming the fix, never 'all skipped' and exit 0
    (ci audit H1; tests/session/test_ci_gate.py has the empty --decoder= of an unset CI variable)."""
    result = suite.runpytest("-p", "no:cacheprovider", *INNER, "-rs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the release suites need --decoder NAME (known: *bicubic*"])


def test_unknown_baseline_run_fails_not_errors(suite: pytest.Pytester, refset: Path) -> None:
    result = run(suite, refset, "bicubic", "--baseline=no-such-run")
    assert result.ret == pytest.ExitCode.TESTS_FAILED and "errors" not in result.parseoutcomes()
    got = outcomes(result)
    assert got["test_not_worse_than_baseline[fidelity:psnr]"] == "failed"
    assert got["test_absolute_bounds[fidelity:psnr]"] == "passed"
    result.stdout.fnmatch_lines(["*cannot compare with baseline no-such-run: no run 'no-such-run'*"])


def test_fresh_store_with_approved_baseline_fails(suite: pytest.Pytester, refset: Path, monkeypatch) -> None:
    """Issue 25, reproduction 4: a CI runner's empty store and the default --baseline approved is a failure (the
    baseline tests fail with the reason and the fix), never "skipped, no approved run yet" and exit 0."""
    monkeypatch.delenv("QA_TRUSTED_KEYS", raising=False)
    result = run(suite, refset, "bicubic")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-2000:]
    got = outcomes(result)
    assert got["test_not_worse_than_baseline[fidelity:psnr]"] == "failed"
    assert got["test_absolute_bounds[fidelity:psnr]"] == "passed"
    result.stdout.fnmatch_lines(["*cannot compare with baseline approved: no approved run of decoder 'bicubic'*"])
    assert "--baseline none" in result.stdout.str() and "qa baseline export" in result.stdout.str()
    verdict, kind = Store(suite.path / "qa.duckdb").query("select verdict, baseline_kind from gates")[0]
    assert verdict == "fail" and kind == "approved (unusable)"
