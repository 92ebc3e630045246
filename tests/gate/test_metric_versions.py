"""Values of different metric versions are never compared: a method change (invented detail version 5 -> 6)
moves the numbers without any change of the decoder, so a candidate scored by one version against a baseline
scored by another fails closed (a required metric) with the reason and the fix, instead of a verdict on noise."""

from __future__ import annotations

from qa.gate.checks import version_problem
from qa.gate.data import MetricData
from tests.gate.test_trust_reproductions import gate, sql


def test_a_candidate_of_another_metric_version_fails_closed_against_the_approved_run(w, capsys) -> None:
    runs, store = w["runs"], w["store"]
    rc, out, _ = gate(w, capsys, runs["I"])  # I equals A: passes while both have the same versions
    assert rc == 0, out
    sql(store, "update results set metric_version = metric_version || '-next' where run_id = ? and metric = 'psnr'",
        [runs["I"]])
    rc, out, _ = gate(w, capsys, runs["I"])
    assert rc == 1, out
    line = next(x for x in out.splitlines() if "FAIL" in x and "psnr" in x)
    assert "different metric versions are not compared" in line and f"baseline run {runs['A']}" in line
    assert "-next" in line and "run that baseline's decoder again" in line
    assert any("PASS" in x and "ssim (" in x for x in out.splitlines())  # the other metric is still compared


def test_version_problem_rule() -> None:
    def data(*versions: str) -> MetricData:
        return MetricData(metric="m", versions=frozenset(versions))

    assert version_problem("m", data("5"), data("5"), "b") == ""
    assert version_problem("m", data(""), data("5"), "b") == ""  # a file that records no version: nothing to say
    assert "version 6" in version_problem("m", data("6"), data("5"), "b")
    assert "version 5, 6" in version_problem("m", data("5", "6"), data("5"), "b")  # a run that mixed versions


def test_qa_diff_says_when_versions_differ(w, capsys) -> None:
    from tests.gate.test_trust_reproductions import qa

    runs, store = w["runs"], w["store"]
    sql(store, "update results set metric_version = metric_version || '-next' where run_id = ? and metric = 'psnr'",
        [runs["I"]])
    rc, out, _ = qa(capsys, "diff", runs["A"], runs["I"], "--db", str(w["db"]))
    assert rc == 0
    psnr = next(x for x in out.splitlines() if x.startswith("psnr "))
    assert "metric versions differ" in psnr or "[" in psnr.split()[-1]  # said in the row or as a numbered note
    assert "metric versions differ" in out
