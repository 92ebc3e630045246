"""A sign-off's date is the signer's clock, and a key's validity window is checked at that date (audit finding F4,
2026-12-07): a holder of an expired key set the clock back and signed an approval that counted. Now a row dated
before a counting row earlier in the chain, before the gate it cites, or in the future does not count, and
``qa signoff`` refuses to write one. Same world as test_trust_reproductions.py (conftest ``w``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

import qa.gate.signoff as signoff_module
from qa.errors import QAError
from qa.gate.signoff import record_signoff, verify_chain
from qa.gate.signoff_verify import CLOCK_SKEW
from qa.gate.status import status_output
from tests.gate.test_trust_reproductions import gate


def _clock(monkeypatch: pytest.MonkeyPatch, shift: timedelta) -> None:
    """The signing machine's clock moved by ``shift`` (what `faketime` does to the process)."""
    real = datetime

    class Shifted(real):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
            return real.now(tz) + shift

    monkeypatch.setattr(signoff_module, "datetime", Shifted)


def _bob_approves_i(w: dict[str, object]) -> int:
    return record_signoff(w["store"], w["runs"]["I"], "bob", "approve", "", key=w["bob"],  # type: ignore[index,arg-type]
                          policy=w["policy"])  # type: ignore[arg-type]


@pytest.mark.parametrize("shift", [-timedelta(days=7), -CLOCK_SKEW - timedelta(minutes=1),
                                   CLOCK_SKEW + timedelta(minutes=1)])
def test_a_clock_set_wrong_is_refused_before_anything_is_written(w, capsys, monkeypatch, shift: timedelta) -> None:
    runs = w["runs"]
    assert gate(w, capsys, runs["I"])[0] == 0
    _clock(monkeypatch, shift)
    with pytest.raises(QAError, match="clock cannot be right") as err:
        _bob_approves_i(w)
    assert ("in the future" in str(err.value)) == (shift > timedelta(0))
    assert f"approved run: run {runs['A']}" in status_output(w["store"], "tunable")


def test_a_clock_within_the_skew_signs(w, capsys, monkeypatch) -> None:
    assert gate(w, capsys, w["runs"]["I"])[0] == 0
    _clock(monkeypatch, -CLOCK_SKEW / 2)
    assert _bob_approves_i(w) == 2
    assert verify_chain(w["store"]) == []


def test_a_backdated_row_in_the_chain_does_not_count(w, capsys, monkeypatch) -> None:
    """A row written with the clock set back (by a qa that did not refuse it) is reported and never the approved
    baseline; the chain goes on, and later rows by trusted keys count."""
    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["I"])[0] == 0
    checked = signoff_module.time_problem
    _clock(monkeypatch, -timedelta(days=7))
    monkeypatch.setattr(signoff_module, "time_problem", lambda *a: "")  # the older qa
    assert _bob_approves_i(w) == 2
    monkeypatch.setattr(signoff_module, "time_problem", checked)
    monkeypatch.setattr(signoff_module, "datetime", datetime)
    findings = verify_chain(store)
    assert len(findings) == 1 and "seq 2" in findings[0] and "does not count" in findings[0]
    assert "before a sign-off earlier in the chain" in findings[0]
    assert f"approved run: run {runs['A']}" in status_output(store, "tunable")
    assert record_signoff(store, runs["C"], None, "reject", "too blurry") == 3  # ana signs on


def test_an_approval_under_a_policy_that_is_not_shipped_says_so_wherever_it_is_named(w, capsys) -> None:
    """Audit finding F2: an approval under a policy file of the signer's choice (here the tests' own) is named
    with that policy's hash and "not the shipped ..." in the gate's baseline line and in `qa signoff verify`;
    a policy of another track needs an override."""
    from qa.gate.approved import approval_terms
    from qa.gate.signoff import chain_report

    check, _ = chain_report(w["store"])
    assert any("not the shipped policy_upscale.toml" in n for n in check.notes)
    row = check.rows[0]
    assert "judged by other rules, and either may be the weaker" in approval_terms(row, "upscale")
    rc, out, _ = gate(w, capsys, w["runs"]["I"])
    assert rc == 0 and "not the shipped policy_upscale.toml" in out
    other = Path(str(w["tmp"])) / "decode.toml"
    other.write_text('[policy]\ntrack = "decode"\n[metrics.psnr]\nmin = 1.0\n')
    with pytest.raises(QAError, match="is for track 'decode'"):
        record_signoff(w["store"], w["runs"]["I"], "bob", "approve", "", key=w["bob"], policy=other)


def test_nothing_is_appended_after_a_row_dated_in_the_future_until_its_key_is_revoked(w, capsys, monkeypatch) -> None:
    """Audit round 2 (N1): bob signs with his clock 3 days ahead (by a qa that did not refuse it). The row does not
    count, but honest rows appended after it, dated before it, would stop counting once its date passed (the
    approved run silently falling back). So `qa signoff` refuses to append until bob's key is revoked; then it
    signs on and the future row never counts."""
    runs, store, trusted = w["runs"], w["store"], Path(str(w["trusted"]))
    assert gate(w, capsys, runs["I"])[0] == 0
    checked = signoff_module.time_problem
    _clock(monkeypatch, timedelta(days=3))
    monkeypatch.setattr(signoff_module, "time_problem", lambda *a: "")
    assert _bob_approves_i(w) == 2
    monkeypatch.setattr(signoff_module, "time_problem", checked)
    monkeypatch.setattr(signoff_module, "datetime", datetime)
    assert any("in the future" in f for f in verify_chain(store))
    with pytest.raises(QAError, match="in the future, by a key the trusted-keys file still lists") as err:
        record_signoff(store, runs["C"], None, "reject", "too blurry")
    assert "remove the key of 'bob'" in str(err.value)
    trusted.write_text("\n".join(t for t in trusted.read_text().splitlines() if not t.startswith("bob ")) + "\n")
    assert record_signoff(store, runs["C"], None, "reject", "too blurry") == 3
    assert f"approved run: run {runs['A']}" in status_output(store, "tunable")
