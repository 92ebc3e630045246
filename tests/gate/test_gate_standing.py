"""The gate that speaks for a run in `qa status` and the report (audit round 2, N3 and N6, 2026-12-07): a failed
gate against the approved run followed by a passing gate against the run itself showed "pass" and "No failed
checks"; an approval under a policy file that is not the shipped one was named without saying so in the report.
Same world as test_trust_reproductions.py (conftest ``w``: every gate there is under the tests' own policy)."""

from __future__ import annotations

from qa.gate.standing import caveats
from qa.gate.status import status_output
from qa.report.build import write_report
from qa.store.gates import gates_of
from tests.gate.test_trust_reproductions import gate


def test_a_later_gate_against_itself_does_not_speak_for_a_failed_run(w, capsys) -> None:
    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["C"])[0] == 1  # against the approved run A: clearly worse
    assert gate(w, capsys, runs["C"], runs["C"])[0] == 0  # against itself: cannot fail
    both = gates_of(store, [runs["C"]])
    assert [g.verdict for g in both] == ["fail", "pass"]
    assert "against the run itself" in caveats(both[1], "") and not caveats(both[0], "")
    text = status_output(store, "tunable")
    line = next(t for t in text.splitlines() if runs["C"] in t and "gate" in t)
    assert "gate fail (under a policy that is not the shipped one) vs approved" in line and both[0].gate_id in line
    html = write_report(store, out=w["tmp"] / "r.html").read_text()
    assert html.index(both[0].gate_id) < html.index(both[1].gate_id)  # the failed gate speaks, the other folded
    assert "against the run itself" in html  # with its caveat


def test_the_report_says_the_approval_rests_on_another_policy(w) -> None:
    html = write_report(w["store"], out=w["tmp"] / "r.html").read_text()
    assert "not the shipped policy_upscale.toml" in html


def test_a_later_gate_against_no_baseline_or_a_chosen_run_does_not_speak_for_a_failed_run(w, capsys) -> None:
    """Report audit H3 (2026-12-07): a regression failed against the approved run, then gated against a run of
    the reviewer's choice (or `--baseline none`), was shown by `qa status` and the report with that later gate's
    verdict only: the failures against the approved run were gone."""
    from qa.gate.standing import speaking_gate

    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["C"])[0] == 1  # against the approved run A: clearly worse
    assert gate(w, capsys, runs["C"], "none")[0] == 0  # absolute bounds only: nothing compared
    gate(w, capsys, runs["C"], runs["I"])  # against a run of one's choice
    rows = gates_of(store, [runs["C"]])
    assert [g.baseline_kind for g in rows] == ["approved", "none", "run"]
    assert any("not the approved run" in c for c in caveats(rows[2], ""))
    assert speaking_gate(rows, "") is rows[0] and speaking_gate(rows[1:2], "") is rows[1]  # alone: a first release
    line = next(t for t in status_output(store, "tunable").splitlines() if runs["C"] in t and "gate" in t)
    assert "gate fail" in line and rows[0].gate_id in line


def test_a_gate_against_an_earlier_approved_run_is_shown_stale(w, capsys) -> None:
    """Report audit M3: after another run was approved, a run's "pass" against the earlier approved run (and its
    "change vs approved" numbers) read as current in `qa status` and the report."""
    from qa.gate.signoff import record_signoff

    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["I"])[0] == 0  # I passes against the approved run A
    record_signoff(store, runs["C"], "ana", "approve", "accepted with its blur", override=True, policy=w["policy"])
    row = gates_of(store, [runs["I"]])[-1]
    stale = f"against {runs['A']}, the approved run then; it is now {runs['C']}"
    assert stale in caveats(row, "", runs["C"]) and not caveats(row, "", runs["A"])
    line = next(t for t in status_output(store, "tunable").splitlines() if runs["I"] in t and "gate" in t)
    assert stale in line
    assert stale in write_report(store, out=w["tmp"] / "r.html").read_text()
    c_row = gates_of(store, [runs["C"]])
    assert not c_row or all("it is now" not in " ".join(caveats(g, "", runs["C"])) for g in c_row)  # its own basis


def test_a_gate_against_no_baseline_does_not_outrank_a_stale_failure_once_a_run_is_approved(w, capsys) -> None:
    """A failure against the earlier approved run, made stale by a new approval, must not yield to a later pass
    against no baseline: `--baseline none` speaks for a first release only (found reading this change)."""
    from qa.gate.signoff import record_signoff
    from qa.gate.standing import speaking_gate

    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["C"])[0] == 1  # fails against the approved run A
    record_signoff(store, runs["I"], "ana", "approve", "next release", override=True, policy=w["policy"])
    assert gate(w, capsys, runs["C"], "none")[0] == 0
    rows = gates_of(store, [runs["C"]])
    assert f"against no baseline, though {runs['I']} is approved" in caveats(rows[1], "", runs["I"])
    assert speaking_gate(rows, "", runs["I"]) is rows[0]
    line = next(t for t in status_output(store, "tunable").splitlines() if runs["C"] in t and "gate" in t)
    assert "gate fail" in line and rows[0].gate_id in line


def test_a_gate_against_no_run_baseline_is_named_so() -> None:
    """The re-audit (2026-12-08): a gate stored by a session whose baseline checks were all left out read
    "gate pass (against , not the approved run)", the baseline's name empty."""
    from qa.store.records import GateRow

    row = GateRow("g1", "r1", "", "", "pass", {"complete": True}, "", None)
    assert caveats(row, "") == ["against no run baseline (bounds and decoder baselines only), not the approved run"]
