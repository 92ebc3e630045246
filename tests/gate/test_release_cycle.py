"""One release cycle of the embedded ``pid`` on every second image of reference_sets/default (16 images, a
systematic half to keep the test's CPU time down; suites/README.md has the full set's numbers), through pytester
and the shipped suites:
gate (the first release: ``--baseline=none``), approve, a candidate with more latent noise (``[decoders.pid]
degrade_sigma = 0.3`` in a qa.toml) fails the shipped upscale policy on invented detail, a candidate identical to
the approved run passes, and ``qa gate --run latest --decoder pid`` agrees with pytest on the same store (verdict
and every reason). Then the baseline travels (issue 25): the approved run is exported to one file, and a fresh
store (a CI runner) gates the worse candidate against it (exit 1, invented detail named) and an identical one
(exit 0), in pytest and ``qa gate`` alike; the file with one byte changed is exit 2."""

from __future__ import annotations

import csv
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qa.cli.main import main as qa_main
from qa.engine.run import RunConfig, RunEngine
from qa.gate.cli import run_gate_command
from qa.gate.policy import load_policy
from qa.gate.signoff import record_signoff
from qa.refset.manifest import write_manifest
from qa.session.suite import SuiteSession  # imported once, not in every in-process pytester run
from qa.store import Store
from tests.gate.signing_helpers import export_reviewer, make_reviewer
from tests.session.helpers import INNER, SUITES

pytestmark = pytest.mark.slow

POLICY = load_policy(SUITES / "policy_upscale.toml")
#: what the suites run: the policy's metrics (fid and lpips_alex stored as missing, no weights here) and the plain
#: decode's variants its decoder rule compares with (baseline_psnr, ...)
METRICS = SuiteSession.run_metrics(POLICY)


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return {"root": tmp_path_factory.mktemp("cycle")}


DEFAULT_SET = Path(__file__).resolve().parents[2] / "reference_sets" / "default"


def _half_set(root: Path) -> Path:
    """Every second image of the default set (manifest order), copied with its manifest rows."""
    rows = list(csv.DictReader((DEFAULT_SET / "manifest.csv").open(encoding="utf-8")))[::2]
    root.mkdir(parents=True)
    for row in rows:
        shutil.copy(DEFAULT_SET / row["file"], root / row["file"])
    write_manifest(root, rows)
    return root


def _suite(pytester: pytest.Pytester) -> pytest.Pytester:
    for name in ("test_upscale.py", "test_decode.py", "test_generate.py", "policy_upscale.toml",
                 "policy_decode.toml", "policy_generate.toml"):
        (pytester.path / name).write_text((SUITES / name).read_text())
    return pytester


def _gate(pytester: pytest.Pytester, db: Path, *extra: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *INNER, "-rs", "--decoder=pid", f"--db={db}",
                              f"--reference-set={pytester.path / 'half'}", *extra)


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    out = {}
    for rep in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if rep.when == "call" or rep.outcome != "passed":
            out[rep.nodeid.split("::")[-1]] = rep.outcome
    return out


def _checks(details_json: object) -> list[tuple[str, str, str, str, str]]:
    details = json.loads(str(details_json))
    return sorted((c["metric"], c["kind"], c["baseline_kind"], c["verdict"], c["message"]) for c in details["checks"])


def test_release_cycle(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester)
    refset = str(_half_set(pytester.path / "half"))
    db = pytester.path / "qa.duckdb"
    store = Store(db)

    # 1. the first run of pid, made here (so pytester's in-process sessions, which drop the modules they import,
    #    find torch and the models imported already), gated by the suite (which reuses it): no approved run yet,
    #    recorded against no baseline (not "pass vs approved")
    RunEngine(store).start(RunConfig(decoder="pid", reference_set=refset, seeds=[0, 1], metrics=METRICS,
                                     progress=False))
    first = _gate(pytester, db, "--baseline=none")  # the first release: chosen explicitly
    assert first.ret == 0, first.stdout.str()[-3000:]
    first.stdout.fnmatch_lines(["*deselected test_decode.py: decoder 'pid' serves the upscale track*"])
    assert "test_decode.py" not in " ".join(_outcomes(first))  # other tracks' suites are deselected, not skipped
    (approved,) = [str(r[0]) for r in store.query("select run_id from runs where decoder = 'pid'")]
    assert store.query("select baseline_kind, baseline_run_id from gates")[0] == ("none", None)
    keys = make_reviewer(pytester.path, "ana")
    export_reviewer(monkeypatch, *keys)  # the reviewer's trusted key
    record_signoff(store, approved, "ana", "approve", "release 1")

    # 2. the candidate with degrade_sigma = 0.3 fails the shipped policy on invented detail
    (pytester.path / "qa.toml").write_text("[decoders.pid]\ndegrade_sigma = 0.3\n")
    xml = pytester.path / "worse.xml"
    worse = _gate(pytester, db, f"--junitxml={xml}")
    (pytester.path / "qa.toml").unlink()
    props = {p.get("name"): p.get("value") for p in ET.parse(xml).getroot().iter("property")}
    assert props["qa.settings_vs_approved"] == "degrade_sigma 0.0 -> 0.3"  # what the candidate is, in JUnit
    assert json.loads(props["qa.settings"])["degrade_sigma"] == 0.3
    got = _outcomes(worse)
    assert worse.ret == pytest.ExitCode.TESTS_FAILED, worse.stdout.str()[-3000:]
    # the mean of the share rises (interval entirely on the worse side, not clear of the 5% margin: needs review,
    # which the shipped policy does not allow) and the strongest invented region of some images rises by more than
    # allowed (invented_peak, version 5: astronaut-shuttle, hubble-star and china-pagoda-roof, by 55-90%;
    # suites/README.md)
    assert got["test_not_worse_than_baseline[invented:invented_detail]"] == "failed", got
    assert got["test_worst_images_not_worse_than_baseline[invented:invented_peak]"] == "failed", got
    assert got["test_every_case_decoded"] == "passed" and got["test_absolute_bounds[fidelity:psnr]"] == "passed"
    text = worse.stdout.str()
    m = re.search(r"invented_detail \(lower is better\): candidate run \S+ mean ([\d.]+)[^;]* vs baseline approved run "
                  r"\S+ mean ([\d.]+)[^;]*; .* allowed ([\d.e-]+)[a-z ]* \(5% of the baseline\) -> (needs-review|fail)", text)
    assert m, text[-4000:]
    assert float(m.group(1)) > float(m.group(2)) and float(m.group(3)) == pytest.approx(0.05 * float(m.group(2)),
                                                                                        rel=2e-3)
    worst = re.search(r"invented_peak \(lower is better\) worst images, .*worse than allowed: ([a-z-]+) ([\d.]+) -> "
                      r"([\d.]+) .*-> fail",
                      text)
    assert worst, text[-4000:]
    rule = POLICY.rule("invented_peak")  # the named image broke the shipped rule
    approved_peak, candidate_peak = float(worst.group(2)), float(worst.group(3))
    allowed = (rule.image_margin or 0.0) + (rule.image_relative_margin or 0.0) * approved_peak
    assert candidate_peak - approved_peak > allowed
    assert "qa/gate" not in text.split("short test summary")[0].split("FAILURES")[-1]  # short bodies
    candidate = str(store.query("select run_id from runs where decoder = 'pid' order by started_at desc")[0][0])
    assert candidate != approved
    settings = json.loads(str(store.query("select config_json from runs where run_id = ?", [candidate])[0][0]))
    assert settings["decoder_settings"]["degrade_sigma"] == 0.3  # stored readably, not only in the hash

    # 3. `qa gate --run latest --decoder pid` on the same store: the same verdict and the same reasons, even
    #    after a bicubic run (which `latest` without --decoder would have picked)
    RunEngine(store).start(RunConfig(decoder="bicubic", reference_set=refset, metrics=["psnr"], progress=False))
    capsys.readouterr()  # drop what the inner pytest sessions printed
    assert run_gate_command(store, run="latest", decoder="pid", fmt="json") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == candidate and out["verdict"] == "fail"
    assert {"invented_detail vs approved", "invented_peak worst images vs approved"} <= set(out["failed"])
    assert "degrade_sigma 0.0 -> 0.3" in out["settings"]
    pytest_row, cli_row = store.query("select details_json from gates where run_id = ? order by decided_at",
                                      [candidate])
    assert _checks(pytest_row[0]) == _checks(cli_row[0])
    # the decoder baseline is pid's own plain decode in the same run: it applies in both, whatever else is stored
    plain = {c[0]: c[3] for c in _checks(cli_row[0]) if c[2] == "decoder:plain"}
    assert plain["psnr"] in ("pass", "fail", "needs-review") and plain["ssim"] in ("pass", "fail", "needs-review")
    assert plain["lpips_alex"] == "skipped"  # optional, and its weights are absent here
    assert run_gate_command(store, run="latest") == 2  # several decoders: "latest" alone is ambiguous
    assert "pass --decoder NAME" in capsys.readouterr().err

    # 4. a fresh run identical to the approved one (same settings, same seeds) passes, with a difference of 0
    same = RunEngine(store).start(RunConfig(decoder="pid", reference_set=refset, seeds=[0, 1], metrics=METRICS,
                                            progress=False))
    again = _gate(pytester, db)
    assert again.ret == 0, again.stdout.str()[-3000:]
    row = store.query("select verdict, details_json from gates where run_id = ?", [same])[0]
    assert row[0] == "pass"
    inv = [c for c in _checks(row[1]) if c[0] == "invented_detail" and c[1] == "baseline"]
    assert inv and "worse by 0 " in inv[0][4]

    # 5. the baseline travels: export from this store; a fresh store (a CI runner) gates against the file
    baseline = pytester.path / "release" / "pid-baseline.parquet"
    assert qa_main(["baseline", "export", "--decoder", "pid", "--out", str(baseline), "--db", str(db)]) == 0
    ci_db = pytester.path / "ci" / "qa.duckdb"
    (pytester.path / "qa.toml").write_text("[decoders.pid]\ndegrade_sigma = 0.3\n")
    worse_ci = _gate(pytester, ci_db, f"--baseline={baseline}")
    (pytester.path / "qa.toml").unlink()
    got = _outcomes(worse_ci)
    assert worse_ci.ret == pytest.ExitCode.TESTS_FAILED, worse_ci.stdout.str()[-3000:]
    assert got["test_worst_images_not_worse_than_baseline[invented:invented_peak]"] == "failed", got
    # (an unrelated bicubic run in the CI store changes nothing: the decoder baseline is pid's own plain decode)
    RunEngine(Store(ci_db)).start(RunConfig(decoder="bicubic", reference_set=refset, metrics=["psnr"], progress=False))
    capsys.readouterr()
    assert qa_main(["gate", "--run", "latest", "--decoder", "pid", "--baseline", str(baseline), "--db",
                    str(ci_db)]) == 1
    out = capsys.readouterr().out
    assert "failed: " in out and "invented_peak worst images vs approved" in out and f"baseline file {baseline}" in out
    assert "settings vs approved: degrade_sigma 0.0 -> 0.3" in out  # read from the file
    same_ci = _gate(pytester, ci_db, f"--baseline={baseline}")
    assert same_ci.ret == 0, same_ci.stdout.str()[-3000:]
    assert qa_main(["gate", "--run", "latest", "--decoder", "pid", "--baseline", str(baseline), "--db",
                    str(ci_db)]) == 0
    data = bytearray(baseline.read_bytes())
    data[len(data) // 2] ^= 0x01
    baseline.write_bytes(bytes(data))
    capsys.readouterr()
    assert qa_main(["gate", "--run", "latest", "--decoder", "pid", "--baseline", str(baseline), "--db",
                    str(ci_db)]) == 2
    assert f"baseline file {baseline} was changed after export" in capsys.readouterr().err
