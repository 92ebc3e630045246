"""Report audit L6 (2026-12-07): a report built without a trusted-keys file cannot verify approvals, so it names no
approved run; it called a gate that passed against the (signed, verified at gate time) approved run "against no
approved baseline", as if nothing had been compared. It now says the approval could not be verified here."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.gate.evaluate import gate_run
from qa.gate.policy import load_policy
from qa.gate.signing import TRUSTED_ENV
from qa.gate.signoff import record_signoff
from qa.report.build import write_report
from qa.store import Store
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset
from tests.report.test_report_other_content import _run


def _summary_row(html: str, run_id: str) -> str:
    start = html.index('<section id="summary">')
    summary = html[start: html.index("</section>", start)]
    rows = [r for r in summary.split("<tr>") if r.startswith("<td>") and f"<code>{run_id}</code>" in r]
    assert len(rows) == 1
    return rows[0]


def test_a_gate_against_an_unverifiable_approval_is_not_called_unanchored(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    root = make_refset(tmp_path / "set", n=3)
    db = tmp_path / "qa.duckdb"
    first = _run(root, db)
    store = Store(db)
    key, trusted = make_reviewer(tmp_path, "ana")
    (tmp_path / "policy.toml").write_text('[policy]\ntrack = "upscale"\nn_boot = 200\n[metrics.psnr]\nmin = 10.0\n'
                                          'margin = 0.3\n')
    policy = load_policy(tmp_path / "policy.toml")
    gate_run(store, first, policy, "none", trusted=trusted)
    record_signoff(store, first, "ana", "approve", "first release", key=key, trusted=trusted,
                   policy=tmp_path / "policy.toml")  # the policy the gates run under (CI audit H3)
    second = _run(root, db)
    outcome = gate_run(store, second, policy, "approved", trusted=trusted)
    assert outcome.verdict == "pass" and outcome.baselines[0].kind == "approved"

    verified = _summary_row(write_report(store, out=tmp_path / "v.html", trusted=trusted).read_text(), second)
    assert "against no approved baseline" not in verified and "could not verify" not in verified
    unverified = _summary_row(write_report(store, out=tmp_path / "u.html").read_text(), second)
    assert "against no approved baseline" not in unverified
    assert "against an approved run this report could not verify" in unverified
