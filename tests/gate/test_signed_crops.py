"""An approval signs what the reviewer looked at, not only what the gate read: the full-resolution tiles and the
regions the report's crops show (evidence format 2, sign-off rows of format 4). Approvals written by the qa before
(row format 3, evidence format 1) still verify and count.

The world is tests/gate/conftest.py's: run A (blur 0) approved by ana; candidate C (blur 1.5)."""

from __future__ import annotations

import pytest

from qa.gate import signoff as signoff_module
from qa.gate.evidence import evidence
from qa.gate.signoff import record_signoff, signoff_rows, verify_chain
from qa.gate.signoff_format import canonical_row_v3
from tests.gate.test_trust_reproductions import gate, qa

TILE_EDITS = {
    "tile_bytes": ("update tiles set data = data || '\\x00'::blob where image_sha256 = "
                   "(select min(image_sha256) from pixels where run_id = $a)"),
    "tile_deleted": ("delete from tiles where image_sha256 = (select min(image_sha256) from pixels where run_id = $a) "
                     "and tile_y = 0 and tile_x = 0"),
    "pixels_row": "update pixels set image_sha256 = 'ff' || image_sha256[3:] where run_id = $a and case_id = 'tile01'",
    "region_planted": ("insert into regions values ($a, 'tile02', 0, 'map_invented_detail', 0, 0, 0, 16, 0.5, 0, 0, "
                       "16, 16)"),
}


def test_new_approvals_sign_the_crops(w) -> None:
    """The world's approval is a format-4 row whose evidence digest is of evidence format 2 and covers tiles."""
    row = signoff_rows(w["store"], w["runs"]["A"])[-1]
    assert row.format == 4
    with w["store"].snapshot() as db:
        assert evidence(db, row.run_id, row.gate_id, row.policy_sha256, 2).sha256 == row.evidence_sha256
        assert evidence(db, row.run_id, row.gate_id, row.policy_sha256, 1).sha256 != row.evidence_sha256
        assert db.query("select count(*) from tiles where image_sha256 in (select image_sha256 from pixels "
                        "where run_id = ?)", [row.run_id])[0][0] > 0  # there are tiles to sign


@pytest.mark.parametrize("edit", sorted(TILE_EDITS))
def test_editing_what_the_crops_show_breaks_the_approval(w, capsys, edit) -> None:
    """A tile's bytes, a deleted tile, a full-resolution image swapped, a region planted where the crops look:
    `qa signoff verify` names the approval and the gate stops (exit 2) instead of using the baseline."""
    a, store = w["runs"]["A"], w["store"]
    with store.transaction() as con:
        con.execute(TILE_EDITS[edit], {"a": a})
    rc, out, _ = qa(capsys, "signoff", "verify", "--db", str(w["db"]))
    assert rc == 1 and f"approval of run {a}" in out and "crops' regions and tiles" in out, out
    rc, _, err = gate(w, capsys, w["runs"]["C"])
    assert rc == 2 and f"the approved run {a}" in err and "does not verify" in err, err


def test_an_approval_of_the_previous_format_still_verifies_and_counts(w, capsys, monkeypatch) -> None:
    """A format-3 row (what the qa before this change wrote: evidence format 1, no tiles) appended to the chain
    verifies and is the approved baseline; its evidence still covers results, so editing one breaks it, while a
    tile it never signed does not."""
    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["I"])[0] == 0  # I equals A: passes against the approved run
    monkeypatch.setattr(signoff_module, "ROW_FORMAT", 3)
    monkeypatch.setattr(signoff_module, "canonical_row_v4", canonical_row_v3)
    record_signoff(store, runs["I"], None, "approve", "as the previous qa wrote it", policy=w["policy"])
    monkeypatch.undo()
    monkeypatch.setenv("QA_SIGNING_KEY", str(w["ana"]))
    monkeypatch.setenv("QA_TRUSTED_KEYS", str(w["trusted"]))
    row = signoff_rows(store, runs["I"])[-1]
    assert row.format == 3 and verify_chain(store) == []
    rc, out, _ = gate(w, capsys, runs["C"])
    assert rc == 1 and f"baseline approved run {runs['I']}" in out  # the format-3 approval is the baseline
    with store.transaction() as con:
        con.execute(TILE_EDITS["tile_bytes"], {"a": runs["I"]})
    problems = verify_chain(store)  # I's tiles are A's too (same pixels, one tile each): A's format-4 approval breaks
    assert any(f"approval of run {runs['A']}" in p for p in problems)
    assert not any(f"approval of run {runs['I']}" in p for p in problems)  # format 1 never covered tiles
    with store.transaction() as con:
        con.execute("update results set value = value + 1 where run_id = ? and metric = 'psnr'", [runs["I"]])
    problems = verify_chain(store)
    assert any(f"approval of run {runs['I']}" in p and "changed after it was approved" in p for p in problems)
