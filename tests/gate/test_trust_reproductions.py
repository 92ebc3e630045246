"""Issue 25: a release decision that cannot be bypassed. Each reproduction of the issue, run again as it describes
it (on a 6-tile set and one decoder, ``tunable``, whose candidates differ by a setting like pid's
``degrade_sigma``), and what a hostile reviewer would try next; each test is named after what it proves.

The world: run A (blur 0) approved by ana as the first release (gated with ``--baseline none``); candidate C
(blur 1.5: clearly worse on psnr and ssim); candidate I (blur 0 again: identical to A).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.cli.main import main as qa_main
from qa.errors import QAError
from qa.gate.signoff import record_signoff, verify_chain
from qa.gate.signoff_format import canonical_row, row_hash
from qa.gate.status import status_output
from qa.store import Store
from tests.gate.conftest import run_of
from tests.gate.signing_helpers import make_reviewer
from tests.helpers import make_refset


def qa(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = qa_main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def gate(w: dict[str, object], capsys: pytest.CaptureFixture[str], run: str, baseline: str = "approved",
         *extra: str) -> tuple[int, str, str]:
    return qa(capsys, "gate", "--run", run, "--baseline", baseline, "--policy", str(w["policy"]), "--db",
              str(w["db"]), *extra)


def sql(store: Store, statement: str, params: list[object] | None = None) -> None:
    with store.transaction() as con:
        con.execute(statement, params or [])


# -- 1. self-gate, then approve -----------------------------------------------------------------------------------
def test_self_gate_never_unlocks_approval(w, capsys) -> None:
    """Repro 1: the worse candidate fails against the approved run; gated against itself it "passes" (with the
    warning); approving it without --override is refused, and `qa status` still names A."""
    runs, store = w["runs"], w["store"]
    rc, out, _ = gate(w, capsys, runs["C"])
    assert rc == 1 and "psnr (higher is better)" in out and f"baseline approved run {runs['A']}" in out
    rc, out, err = gate(w, capsys, runs["C"], runs["C"])
    assert rc == 0 and "verdict: pass" in out and "cannot fail" in err
    with pytest.raises(QAError, match=rf"against the approved run {runs['A']} .* is fail.*explicit override"):
        record_signoff(store, runs["C"], None, "approve", "", policy=w["policy"])
    rc, _, err = qa(capsys, "signoff", "--run", runs["C"], "--decision", "approve", "--policy", str(w["policy"]),
                    "--db", str(w["db"]))
    assert rc == 2 and "explicit override" in err
    assert f"approved run: run {runs['A']}" in status_output(store, "tunable")


def test_gates_against_other_baselines_never_unlock_approval(w, capsys) -> None:
    """A passing gate of the worse candidate against a run id or against no baseline (after the first release)
    is a comparison: approval needs the gate against the current approved run."""
    runs, store = w["runs"], w["store"]
    bad = run_of(store, Path(str(w["refset"])), 1.5)
    assert gate(w, capsys, runs["C"], bad)[0] == 0  # C vs another blurred run: passes
    assert gate(w, capsys, runs["C"], "none")[0] == 0  # bounds only: passes
    with pytest.raises(QAError, match="has no gate under .* against the approved run"):
        record_signoff(store, runs["C"], None, "approve", "", policy=w["policy"])


def test_identical_candidate_gated_against_the_approved_run_may_be_approved(w, capsys) -> None:
    runs, store = w["runs"], w["store"]
    rc, out, _ = gate(w, capsys, runs["I"])
    assert rc == 0 and "worse by 0 dB" in out
    assert record_signoff(store, runs["I"], None, "approve", "", policy=w["policy"]) == 2
    assert f"approved run: run {runs['I']}" in status_output(store, "tunable")
    assert verify_chain(store) == []


# -- 2. unverified approvals are used -----------------------------------------------------------------------------
def _forge_unsigned_approval(store: Store, run_id: str) -> None:
    seq, prev = store.query("select seq, hash from signoffs order by seq desc limit 1")[0]
    at = store.query("select now()::timestamp")[0][0]
    h = row_hash(str(prev), canonical_row(int(seq) + 1, run_id, "mallory", "approve", "", False, at))
    sql(store, "insert into signoffs values (?, ?, 'mallory', 'approve', '', false, ?, ?, ?)",
        [int(seq) + 1, run_id, at, prev, h])


def test_unsigned_approve_row_is_never_the_baseline(w, capsys, tmp_path) -> None:
    """Repro 2: an unsigned approve row inserted with the duckdb module for a later run: verify fails, and the
    gate, `qa status` and the report refuse to pick a baseline (exit 2), instead of using the forged run."""
    runs, store = w["runs"], w["store"]
    _forge_unsigned_approval(store, runs["C"])
    rc, out, _ = qa(capsys, "signoff", "verify", "--db", str(w["db"]))
    assert rc == 1 and "unsigned but follows signed rows" in out
    rc, _, err = gate(w, capsys, runs["C"])
    assert rc == 2 and "does not verify" in err and "no approved baseline can be trusted" in err
    rc, _, err = qa(capsys, "status", "tunable", "--db", str(w["db"]))
    assert rc == 2 and "does not verify" in err
    rc, _, err = qa(capsys, "report", "--db", str(w["db"]), "--out", str(tmp_path / "r.html"))
    assert rc == 2 and "does not verify" in err and not (tmp_path / "r.html").exists()
    with pytest.raises(QAError, match="does not verify"):  # and no one can sign on top of it
        record_signoff(store, runs["A"], None, "reject", "hide it")


def test_approval_signed_by_an_untrusted_key_does_not_count(w, capsys) -> None:
    """mallory signs an approval of the worse run with her own key and a trusted file of her own: the row is
    reported as not counting and the baseline stays ana's approval (the gate still fails against A)."""
    runs, store = w["runs"], w["store"]
    folder = Path(str(w["tmp"])) / "mallory"
    folder.mkdir()
    own = folder / "own_signers"
    shutil.copy(str(w["trusted"]), own)
    key, _ = make_reviewer(folder, "mallory", own)
    record_signoff(store, runs["C"], "mallory", "approve", "trust me", override=True, key=key, trusted=own)
    problems = verify_chain(store)
    assert any("seq 2" in p and "does not count" in p and "not in the trusted-keys file" in p for p in problems)
    rc, out, _ = gate(w, capsys, runs["C"])
    assert rc == 1 and f"baseline approved run {runs['A']}" in out
    assert f"approved run: run {runs['A']}" in status_output(store, "tunable")


def test_swapped_trusted_keys_file_leaves_no_baseline(w, capsys) -> None:
    """Gating with a trusted-keys file that does not list ana (mallory's own file): ana's approval does not count,
    so there is no approved run: exit 2 saying one approval does not count, never a pass."""
    folder = Path(str(w["tmp"])) / "m"
    folder.mkdir()
    _, own = make_reviewer(folder, "mallory")
    rc, _, err = gate(w, capsys, w["runs"]["C"], "approved", "--trusted-keys", str(own))
    assert rc == 2 and "no approved run" in err and "1 approval(s) in the chain do not count" in err


# -- 3. the approved evidence is signed -----------------------------------------------------------------------------
EDITS = {
    "results": "update results set value = value + 10 where run_id = $a and metric = 'psnr'",
    "set_results": "update set_results set value = value + 1 where run_id = $a and metric = 'psnr'",
    "image": "update images set png = png || '\\x00'::blob where run_id = $a and case_id = 'tile01' and kind = 'output'",
    "delete_image": "delete from images where run_id = $a and case_id = 'tile02' and kind = 'output'",
    "policy_json": "update gates set policy_json = replace(policy_json, '0.3', '30.0') where run_id = $a",
    "gate_details": "update gates set details_json = details_json || ' ' where run_id = $a",
    "run_settings": "update runs set config_json = replace(config_json, '\"blur\": 0.0', '\"blur\": 1.5') where run_id = $a",
    "reference_manifest": "update cases set image_sha256 = 'ff' || image_sha256[3:] where case_id = 'tile03' and $a = $a",
    "swap_cases": ("update results set case_id = case when case_id = 'tile00' then 'tile01' else 'tile00' end "
                   "where run_id = $a and case_id in ('tile00', 'tile01') and metric = 'psnr'"),
    "delete_gate": "delete from gates where run_id = $a",
    "delete_run": "delete from runs where run_id = $a",
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_editing_approved_results_breaks_verification(w, capsys, edit) -> None:
    """Repro 3 and what a hostile reviewer tries next: any change to what the approval signed (values, set
    results, a stored PNG, a deleted image row, the gate's policy text or details, the run's settings, the
    reference manifest, two cases' values swapped, the gate or the run deleted) breaks `verify` naming the run,
    and the gate stops (exit 2) instead of comparing with the edited numbers or falling back to an older run."""
    a, store = w["runs"]["A"], w["store"]
    with store.transaction() as con:
        con.execute(EDITS[edit], {"a": a})
    rc, out, _ = qa(capsys, "signoff", "verify", "--db", str(w["db"]))
    assert rc == 1 and f"approval of run {a}" in out, out
    rc, _, err = gate(w, capsys, w["runs"]["C"])
    assert rc == 2 and f"the approved run {a}" in err and "does not verify" in err, err


def test_reordering_rows_changes_nothing_signed(w, capsys) -> None:
    """Rows re-inserted in another physical order are the same evidence (everything is read in key order)."""
    a, store = w["runs"]["A"], w["store"]
    with store.transaction() as con:
        con.execute("create temp table r as select * from results where run_id = ?", [a])
        con.execute("delete from results where run_id = ?", [a])
        con.execute("insert into results select * from r order by case_id desc, metric desc")
    assert verify_chain(store) == []
    assert gate(w, capsys, w["runs"]["C"])[0] == 1


# -- 4. a fresh store passes ------------------------------------------------------------------------------------------
def test_fresh_store_with_approved_baseline_fails_in_qa_gate(w, capsys, tmp_path) -> None:
    """Repro 4 (`qa gate`; pytest: tests/session/test_plugin.py): a store without the approval is exit 2 with the
    fix, never a pass."""
    fresh = Store(tmp_path / "fresh" / "qa.duckdb")
    run = run_of(fresh, Path(str(w["refset"])), 1.5)
    rc, _, err = qa(capsys, "gate", "--run", run, "--policy", str(w["policy"]), "--db", str(fresh.path))
    assert rc == 2 and "no approved run of decoder 'tunable'" in err
    assert "--baseline FILE" in err and "--baseline none" in err


# -- 5. a changed reference set ---------------------------------------------------------------------------------------
def test_changed_reference_set_fails_naming_both_hashes(w, capsys, tmp_path) -> None:
    """Repro 5: blur one reference image and rebuild the manifest under the same set name: the gate against the
    approved run is exit 2 naming both content hashes and the fix, not "nothing to compare, pass"."""
    from PIL import Image, ImageFilter

    from qa.refset.build import build_reference_set

    changed = tmp_path / "set"
    shutil.copytree(Path(str(w["refset"])), changed)
    Image.open(changed / "tile02.png").filter(ImageFilter.GaussianBlur(2)).save(changed / "tile02.png")
    (changed / "manifest.csv").unlink()
    assert build_reference_set(changed).ok
    run = run_of(w["store"], changed, 0.0)
    old = w["store"].query("select reference_set_sha256 from runs where run_id = ?", [w["runs"]["A"]])[0][0]
    new = w["store"].query("select reference_set_sha256 from runs where run_id = ?", [run])[0][0]
    assert old != new
    rc, _, err = gate(w, capsys, run)
    assert rc == 2 and old in err and new in err and "restore the reference set" in err
    rc, out, _ = qa(capsys, "status", "tunable", "--db", str(w["db"]))
    assert rc == 0 and "made on other content" in out


def test_approval_on_another_reference_set_is_not_a_baseline(w, capsys, tmp_path) -> None:
    """A run approved on set 'set' is no baseline for a candidate on another set name: exit 2 naming where the
    decoder's approvals are."""
    other = make_refset(tmp_path / "other", n=4)
    run = run_of(w["store"], other, 1.5)
    rc, _, err = gate(w, capsys, run)
    assert rc == 2 and "no approved run of decoder 'tunable' on reference set 'other'" in err
    assert "it has approvals on 'set'" in err


def test_a_gate_row_forged_to_pass_never_unlocks_approval(w, capsys) -> None:
    """The gates table is not signed: a hostile user rewrites the worse candidate's failing gate against the
    approved run as a pass. Approving on it is refused: the gate's checks are recomputed from the stored numbers."""
    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["C"])[0] == 1
    sql(store, "update gates set verdict = 'pass', details_json = replace(replace(details_json, '\"fail\"', "
               "'\"pass\"'), '\"blocks\": true', '\"blocks\": false') where run_id = ?", [runs["C"]])
    with pytest.raises(QAError, match="checks recomputed from the stored numbers fail .*psnr vs approved"):
        record_signoff(store, runs["C"], None, "approve", "", policy=w["policy"])
    assert f"approved run: run {runs['A']}" in status_output(store, "tunable")


def test_signoff_takes_latest(w, capsys) -> None:
    """`qa signoff --run latest [--decoder NAME]` signs the decoder's latest run, as `qa gate` reads `latest`."""
    latest = w["store"].query("select run_id from runs order by started_at desc limit 1")[0][0]
    rc, out, _ = qa(capsys, "signoff", "--run", "latest", "--decoder", "tunable", "--decision", "reject", "--note",
                    "not this one", "--db", str(w["db"]))
    assert rc == 0 and f"reject of {latest}" in out and "chain head: " in out
    rc, _, err = qa(capsys, "signoff", "--run", "latest", "--decoder", "nope", "--decision", "reject", "--db",
                    str(w["db"]))
    assert rc == 2 and "no run of decoder 'nope'" in err
