"""Issue 25, reproductions 6, 7, 8 and 10, and baselines that travel: keys as git treats them (revocation, time
bounds, namespaces, cert-authority, passphrases), a head kept in git, storage diagnoses, and a baseline file that
a fresh store gates against (one changed byte: exit 2). Same world as test_trust_reproductions.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qa.errors import QAError
from qa.gate.signing import PASSPHRASE_ENV, load_signing_key
from qa.gate.signoff import record_signoff, verify_chain
from qa.gate.status import status_output
from qa.store import Store
from qa.store import baseline_file as store_file
from tests.gate.conftest import run_of
from tests.gate.test_trust_reproductions import gate, qa, sql


def _line(trusted: Path, name: str) -> str:
    return next(t for t in trusted.read_text().splitlines() if t.startswith(name + " "))


def _second_approval_by_bob(w: dict[str, object], capsys: pytest.CaptureFixture[str]) -> str:
    """bob approves the identical candidate I (gated against A): the approved run becomes I."""
    runs, store = w["runs"], w["store"]
    assert gate(w, capsys, runs["I"])[0] == 0
    record_signoff(store, runs["I"], "bob", "approve", "", key=w["bob"], policy=w["policy"])
    assert f"approved run: run {runs['I']}" in status_output(store, "tunable")
    return str(runs["I"])


# -- 6. keys as git treats them ----------------------------------------------------------------------------------------
def test_revoked_key_stops_counting_without_blocking_others(w, capsys) -> None:
    """Repro 6: removing bob's line revokes him: his approval is reported and no longer counts (the approved run
    falls back to ana's A), the anchor he signed is not called "written outside qa", and ana signs on."""
    runs, store, trusted = w["runs"], w["store"], Path(str(w["trusted"]))
    _second_approval_by_bob(w, capsys)
    trusted.write_text("\n".join(t for t in trusted.read_text().splitlines() if not t.startswith("bob ")) + "\n")
    rc, out, _ = qa(capsys, "signoff", "verify", "--db", str(w["db"]))
    assert rc == 1 and "seq 2" in out and "does not count" in out and "revoked" in out
    assert "written outside qa" not in out and "no longer counts" in out
    assert f"approved run: run {runs['A']}" in status_output(store, "tunable")
    rc, out, _ = gate(w, capsys, runs["C"])
    assert rc == 1 and f"baseline approved run {runs['A']}" in out
    assert record_signoff(store, runs["C"], None, "reject", "too blurry") == 3  # ana is not blocked
    assert [p for p in verify_chain(store) if "does not count" not in p] == []


@pytest.mark.parametrize(("option", "why"), [
    ('valid-before="20200101"', "not before the key's valid-before"),
    ('valid-after="20990101Z"', "before the key's valid-after"),
    ('namespaces="git"', "does not include 'qa'"),
    ("cert-authority", "cert-authority"),
    ('namespaces="git,qa",valid-after="20000101"', ""),
])
def test_allowed_signers_options_are_honoured_at_the_signing_time(w, capsys, option, why) -> None:
    """`valid-after`/`valid-before` are checked at the time recorded in the row, `namespaces` must include qa,
    `cert-authority` is refused with the reason: a row outside them does not count, and such a key cannot sign."""
    runs, store, trusted = w["runs"], w["store"], Path(str(w["trusted"]))
    bob_line = _line(trusted, "bob")
    if why:  # bob signs while his line is plain, then the line gets the option: his row stops counting
        record_signoff(store, runs["C"], "bob", "reject", "", key=w["bob"])
    trusted.write_text(trusted.read_text().replace(bob_line, bob_line.replace("bob ", f"bob {option} ", 1)))
    problems = verify_chain(store)
    if not why:
        record_signoff(store, runs["C"], "bob", "reject", "", key=w["bob"])
        assert verify_chain(store) == []
        return
    assert any("seq 2" in p and "does not count" in p and why in p for p in problems), problems
    with pytest.raises(QAError, match=why.replace("'", ".")):
        record_signoff(store, runs["C"], "bob", "reject", "", key=w["bob"])


def test_passphrase_key_signs_or_fails_in_one_line(w, capsys, monkeypatch, tmp_path) -> None:
    """Repro 7: an `ssh-keygen -N pw` key signs with $QA_KEY_PASSPHRASE; without it, or with a wrong one, one line
    and exit 2 (no traceback)."""
    key = tmp_path / "cy_ed25519"
    if shutil.which("ssh-keygen") is not None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-C", "cy", "-f", str(key)], check=True,
                       timeout=60)
    else:  # the same OpenSSH format (bcrypt KDF, aes256-ctr), written by cryptography
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        k = Ed25519PrivateKey.generate()
        key.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                        serialization.BestAvailableEncryption(b"pw")))
        (tmp_path / "cy_ed25519.pub").write_bytes(k.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" cy\n")
    trusted = Path(str(w["trusted"]))
    trusted.write_text(trusted.read_text() + "cy " + (tmp_path / "cy_ed25519.pub").read_text())
    argv = ["signoff", "--run", w["runs"]["C"], "--decision", "reject", "--key", str(key), "--db", str(w["db"])]
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    rc, _, err = qa(capsys, *argv)
    assert rc == 2 and "Traceback" not in err and f"${PASSPHRASE_ENV} is not set" in err and len(err.splitlines()) == 2
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    rc, _, err = qa(capsys, *argv)
    assert rc == 2 and "Traceback" not in err and "passphrase" in err and len(err.splitlines()) == 2
    monkeypatch.setenv(PASSPHRASE_ENV, "pw")
    assert load_signing_key(key).public.startswith("ssh-ed25519 ")
    rc, out, _ = qa(capsys, *argv)
    assert rc == 0 and "recorded: sign-off seq 2" in out
    assert verify_chain(w["store"]) == []


# -- 8. rollback can be pinned ---------------------------------------------------------------------------------------
def test_expect_head_catches_a_restored_older_database(w, capsys, tmp_path) -> None:
    """Repro 8: verify prints the full head; a head kept elsewhere (in git) catches the restore of an older DB and
    anchor pair, which on its own verifies intact."""
    store, db = w["store"], str(w["db"])
    old = tmp_path / "old"
    old.mkdir()
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):
        shutil.copy(tmp_path / name, old / name)
    record_signoff(store, w["runs"]["C"], None, "reject", "too blurry")
    rc, out, _ = qa(capsys, "signoff", "verify", "--db", db)
    head = store.query("select hash from signoffs order by seq desc limit 1")[0][0]
    assert rc == 0 and f"head seq 2, hash {head}\n" in out and len(head) == 64
    assert qa(capsys, "signoff", "verify", "--db", db, "--expect-head", head)[0] == 0
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):  # roll back: the older pair is self-consistent
        shutil.copy(old / name, tmp_path / name)
    assert qa(capsys, "signoff", "verify", "--db", db)[0] == 0
    rc, out, _ = qa(capsys, "signoff", "verify", "--db", db, "--expect-head", head)
    assert rc == 1 and f"is not the expected {head}" in out


# -- 10. storage diagnoses ----------------------------------------------------------------------------------------------
def _make_read_only(path: Path) -> None:
    """chmod, or for root (who writes read-only files anyway) the immutable attribute; skip where neither works."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without chattr: a read-only file cannot be made here")


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def test_read_only_file_and_folder_are_named_as_such(w, capsys) -> None:
    """Repro 10: a read-only DB file or folder is named read-only (never "damaged, restore from a backup"); `qa
    signoff` there is one line and exit 2, not a PermissionError traceback."""
    db = Path(str(w["db"]))
    _make_read_only(db)
    try:
        rc, _, err = gate(w, capsys, w["runs"]["C"])
    finally:
        _make_writable(db)
    assert rc == 2 and f"database {db} is read-only" in err and "restore it from a backup" not in err
    _make_read_only(db.parent)
    try:
        rc, _, err = qa(capsys, "signoff", "--run", w["runs"]["C"], "--decision", "reject", "--db", str(db))
    finally:
        _make_writable(db.parent)
    assert rc == 2 and "is read-only" in err and "Traceback" not in err and "backup" not in err


def test_every_command_refuses_a_newer_schema(w, capsys, tmp_path) -> None:
    """Repro 10: a database of a newer schema: status, gate, signoff verify and report (read-only) all refuse."""
    sql(w["store"], "insert into schema_version values (99, 'from the future', now())")
    db = str(w["db"])
    for argv in (["status", "--db", db], ["gate", "--run", w["runs"]["C"], "--db", db],
                 ["signoff", "verify", "--db", db], ["report", "--db", db, "--out", str(tmp_path / "r.html")]):
        rc, _, err = qa(capsys, *argv)
        assert rc == 2 and "schema version 99 is newer than this qa" in err, (argv, err)
    assert not (tmp_path / "r.html").exists()


# -- baselines that travel ---------------------------------------------------------------------------------------------
def _export(w: dict[str, object], capsys: pytest.CaptureFixture[str], out: Path, *extra: str) -> None:
    rc, text, err = qa(capsys, "baseline", "export", "--decoder", "tunable", "--out", str(out), "--db",
                       str(w["db"]), *extra)
    assert rc == 0 and f"approved run {w['runs']['A']}" in text, err


def test_baseline_file_gates_a_fresh_store(w, capsys, tmp_path) -> None:
    """Store A approved, exported; a fresh store B (a CI runner) gates the worse candidate against the file
    (exit 1, the failing checks named), an identical candidate (exit 0); the file verifies on its own."""
    path = tmp_path / "release" / "tunable-baseline.parquet"
    _export(w, capsys, path)
    rc, out, _ = qa(capsys, "baseline", "verify", str(path))
    assert rc == 0 and "baseline file verifies" in out
    fresh = Store(tmp_path / "ci" / "qa.duckdb")
    worse, same = run_of(fresh, Path(str(w["refset"])), 1.5), run_of(fresh, Path(str(w["refset"])), 0.0)
    base = ["--baseline", str(path), "--policy", str(w["policy"]), "--db", str(fresh.path)]
    rc, out, _ = qa(capsys, "gate", "--run", worse, *base)
    assert rc == 1 and "failed: psnr vs approved" in out and f"baseline approved run {w['runs']['A']}" in out
    assert f"from baseline file {path}" in out
    rc, out, _ = qa(capsys, "gate", "--run", same, *base)
    assert rc == 0 and "worse by 0 dB" in out


@pytest.mark.parametrize("where", [0.001, 0.2, 0.5, 0.8, 0.999])
def test_one_changed_byte_of_a_baseline_file_is_exit_2(w, capsys, tmp_path, where) -> None:
    path = tmp_path / "b.parquet"
    _export(w, capsys, path)
    fresh = Store(tmp_path / "ci" / "qa.duckdb")
    run = run_of(fresh, Path(str(w["refset"])), 0.0)
    data = bytearray(path.read_bytes())
    i = int(where * (len(data) - 1))
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    rc, _, err = qa(capsys, "gate", "--run", run, "--baseline", str(path), "--policy", str(w["policy"]),
                    "--db", str(fresh.path))
    assert rc == 2 and str(path) in err and ("changed after export" in err or "not a" in err), err


def _reseal(path: Path, change) -> None:  # noqa: ANN001
    """Rewrite a baseline file with ``change(table, row)`` applied and a fresh, valid file digest (what someone
    with qa's own code could do)."""
    import json

    rows = []
    for t, text, png in store_file.read_rows(path):
        row = json.loads(text) if t != "meta" else json.loads(text)
        rows.append((t, change(t, row), png))
    store_file.write_file(path, rows)


@pytest.mark.parametrize("what", ["psnr_value", "approval_decoder", "drop_image_hash", "other_head", "tile_digest"])
def test_a_resealed_baseline_file_with_edited_content_is_exit_2(w, capsys, tmp_path, what) -> None:
    """A hostile edit that also recomputes the file's digest: the signatures and the evidence still name it."""
    path = tmp_path / "b.parquet"
    _export(w, capsys, path)

    def change(table: str, row: dict) -> dict | None:  # type: ignore[type-arg]
        if what == "psnr_value" and table == "results" and row["metric"] == "psnr":
            row["value"] += 1.0
        if what == "approval_decoder" and table == "signoff_proofs":
            row["decoder"] = "other"
        if what == "tile_digest" and table == "tile_digests":  # a crop's tile other than the one approved
            row["sha256"] = "0" * 64
        if what == "other_head" and table == "meta":
            row["head"]["hash"] = "0" * 64
        return row

    _reseal(path, change)
    if what == "drop_image_hash":
        rows = [r for r in store_file.read_rows(path) if r[0] != "image_digests" or "tile01" not in r[1]]
        import json

        store_file.write_file(path, [(t, json.loads(x), p) for t, x, p in rows])
    fresh = Store(tmp_path / "ci" / "qa.duckdb")
    run = run_of(fresh, Path(str(w["refset"])), 0.0)
    rc, _, err = qa(capsys, "gate", "--run", run, "--baseline", str(path), "--policy", str(w["policy"]),
                    "--db", str(fresh.path))
    assert rc == 2 and str(path) in err, err
    assert {"psnr_value": "changed after it was approved", "approval_decoder": "hash mismatch",
            "drop_image_hash": "changed after it was approved", "other_head": "anchor",
            "tile_digest": "changed after it was approved"}[what] in err, err


def test_a_baseline_file_of_another_decoder_is_refused(w, capsys, tmp_path) -> None:
    """Replaying the approval of one decoder for another: the file holds no approval of the candidate's decoder."""
    path = tmp_path / "b.parquet"
    _export(w, capsys, path)
    fresh = Store(tmp_path / "ci" / "qa.duckdb")
    from qa.engine.run import RunConfig, RunEngine

    other = RunEngine(fresh).start(RunConfig(decoder="bicubic", reference_set=str(w["refset"]),
                                             metrics=["psnr", "ssim"], progress=False))
    rc, _, err = qa(capsys, "gate", "--run", other, "--baseline", str(path), "--policy", str(w["policy"]),
                    "--db", str(fresh.path))
    assert rc == 2 and "no approved run of decoder 'bicubic'" in err and "it holds 'tunable'" in err


def test_a_baseline_file_is_verified_against_the_trusted_keys_given(w, capsys, tmp_path, monkeypatch) -> None:
    """Without trusted keys a file cannot be verified (exit 2); with a file that does not list ana: no approval."""
    path = tmp_path / "b.parquet"
    _export(w, capsys, path, "--thumbnails")
    fresh = Store(tmp_path / "ci" / "qa.duckdb")
    run = run_of(fresh, Path(str(w["refset"])), 0.0)
    argv = ["gate", "--run", run, "--baseline", str(path), "--policy", str(w["policy"]), "--db", str(fresh.path)]
    monkeypatch.delenv("QA_TRUSTED_KEYS")
    rc, _, err = qa(capsys, *argv)
    assert rc == 2 and "trusted-keys file" in err and "--trusted-keys" in err
    only_bob = tmp_path / "only_bob"
    only_bob.write_text(_line(Path(str(w["trusted"])), "bob") + "\n")
    rc, _, err = qa(capsys, *argv, "--trusted-keys", str(only_bob))
    assert rc == 2 and "no approved run" in err and "do not count" in err


def test_a_candidate_wearing_the_approved_run_id_is_still_compared_with_the_file(w, capsys, tmp_path) -> None:
    """A runner's store whose worse candidate was renamed to the approved run's id: the baseline is still read
    from the file (and the candidate from the store), so the comparison fails instead of comparing it with itself."""
    path = tmp_path / "b.parquet"
    _export(w, capsys, path)
    fresh = Store(tmp_path / "ci" / "qa.duckdb")
    worse, approved = run_of(fresh, Path(str(w["refset"])), 1.5), str(w["runs"]["A"])
    for table in ("runs", "results", "set_results", "images", "shards"):
        sql(fresh, f"update {table} set run_id = ? where run_id = ?", [approved, worse])
    rc, out, _ = qa(capsys, "gate", "--run", approved, "--baseline", str(path), "--policy", str(w["policy"]),
                    "--db", str(fresh.path))
    assert rc == 1 and "failed: psnr vs approved" in out, out
