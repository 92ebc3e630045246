"""Sign-offs a release can trust: the reproductions of issue 18 (breaks 4-9), each as a test named after what it
proves, on real runs of a 6-tile 64x64 set and real Ed25519 keys."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.cli.main import main as qa_main
from qa.engine.run import RunConfig, RunEngine
from qa.errors import QAError
from qa.gate.evaluate import gate_run
from qa.gate.policy import PolicyError, load_policy, parse_policy
from qa.gate.signing import generate_key, load_signing_key
from qa.gate.signoff import anchor_path, record_signoff, verify_chain
from qa.gate.signoff_format import canonical_row_v2, canonical_row_v4, row_hash
from qa.gate.status import status_output
from qa.store import Store
from qa.store.anchor import read_anchor, write_anchor
from tests.gate.helpers import register
from tests.gate.signing_helpers import export_reviewer, make_reviewer
from tests.helpers import make_refset

REPO = Path(__file__).resolve().parents[2]
STRICT = """
[policy]
track = "upscale"
n_boot = 1000
[metrics.psnr]
min = 100.0
"""
LENIENT = STRICT.replace("min = 100.0", "min = 0.0")


class Stop(Exception):
    """Raised from on_shard to leave a run 'failed' after its first shard."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """bicubic (finished), blurry-bicubic (finished) and a bicubic run that failed after its first shard."""
    register()
    root = tmp_path_factory.mktemp("trust")
    refset = make_refset(root / "set")
    store = Store(root / "qa.duckdb")
    runs = {}
    for key, dec in (("good", "bicubic"), ("blurry", "blurry-bicubic")):
        runs[key] = RunEngine(store).start(RunConfig(decoder=dec, reference_set=str(refset), metrics=["psnr"],
                                                     progress=False))

    def stop(index: int) -> None:
        raise Stop("planted stop after shard 0")

    with pytest.raises(Stop):
        RunEngine(store, on_shard=stop).start(RunConfig(decoder="bicubic", reference_set=str(refset), metrics=["psnr"],
                                                        shard_size=2, progress=False))
    runs["failed"] = str(store.query("select run_id from runs where status = 'failed'")[0][0])
    (root / "strict.toml").write_text(STRICT)
    (root / "lenient.toml").write_text(LENIENT)
    return {"root": root, "runs": runs}


@pytest.fixture
def store(world: dict[str, object], tmp_path: Path) -> Store:
    for name in ("qa.duckdb", "qa.duckdb.signoff-head"):
        shutil.copy(Path(str(world["root"])) / name, tmp_path / name)
    return Store(tmp_path / "qa.duckdb")


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """ana's trusted key (exported as the default), and mallory's key that the trusted file does not list."""
    folder = tmp_path / "keys"
    folder.mkdir()
    ana, trusted = make_reviewer(folder, "ana,bo")
    own_trust = folder / "mallory_signers"  # the project's file with her own key added: not the trusted one
    shutil.copy(trusted, own_trust)
    mallory, _ = make_reviewer(folder, "mallory", own_trust)
    export_reviewer(monkeypatch, ana, trusted)
    return {"ana": ana, "trusted": trusted, "mallory": mallory, "mallory_trusted": own_trust}


def _rejects(store: Store, runs: dict[str, str], n: int) -> None:
    for i in range(n):
        record_signoff(store, runs["good"], "ana", "reject", f"note {i}")


def _sql(store: Store, sql: str, params: list[object] | None = None) -> None:
    with store.transaction() as con:
        con.execute(sql, params or [])


def test_deleting_signoffs_together_with_the_anchor_is_detected(world, store, keys) -> None:
    """Break 4: deleting the newest row (or every row) and the anchor file no longer passes verify."""
    _rejects(store, world["runs"], 3)
    assert verify_chain(store) == []
    pristine = store.path.read_bytes()
    _sql(store, "delete from signoffs where seq = 3")
    anchor_path(store).unlink()
    assert any("anchor" in p and "missing" in p for p in verify_chain(store))
    store.path.write_bytes(pristine)
    _sql(store, "delete from signoffs")
    _sql(store, "delete from signoff_proofs")
    assert any("anchor" in p and "missing" in p for p in verify_chain(store))
    assert qa_main(["signoff", "verify", "--db", str(store.path)]) == 1
    store.path.write_bytes(pristine)  # delete the newest row and write an anchor that matches the shorter chain
    _sql(store, "delete from signoffs where seq = 3")
    head2 = str(store.query("select hash from signoffs where seq = 2")[0][0])
    write_anchor(store.path, {"seq": 2, "hash": head2, "signer": "", "signature": ""})
    assert any("not signed by the key that signed that row" in p for p in verify_chain(store))


def test_a_new_signoff_is_refused_while_the_chain_is_broken(world, store, keys) -> None:
    """Break 5: after a deletion, the next sign-off is refused (chain head checked first) instead of hiding it."""
    _rejects(store, world["runs"], 2)
    _sql(store, "delete from signoffs where seq = 2")
    assert any("seq 1" in p and "seq 2" in p for p in verify_chain(store))
    with pytest.raises(QAError, match="does not verify.*nothing was recorded"):
        record_signoff(store, world["runs"]["good"], "ana", "reject", "one more")
    assert store.query("select seq from signoffs order by seq") == [(1,)]
    assert verify_chain(store) != []


def test_a_reused_sequence_number_is_detected(world, store, keys) -> None:
    """A row deleted and replaced by another with the same seq (even validly signed by a trusted key) is found."""
    _rejects(store, world["runs"], 2)
    key = load_signing_key(keys["ana"])
    row = store.query("select prev_hash, signed_at from signoffs where seq = 2")[0]
    prev, at = str(row[0]), row[1]
    h = row_hash(prev, canonical_row_v2(2, world["runs"]["good"], "ana", "approve", "", True, at, prev, "", "",
                                        key.public))
    _sql(store, "delete from signoffs where seq = 2")
    _sql(store, "delete from signoff_proofs where seq = 2")
    _sql(store, "insert into signoffs values (2, ?, 'ana', 'approve', '', true, ?, ?, ?)",
         [world["runs"]["good"], at, prev, h])
    _sql(store, "insert into signoff_proofs (seq, format, gate_id, policy_sha256, signer, signature) "
         "values (2, 2, '', '', ?, ?)", [key.public, key.sign(b"qa-signoff-row-v2\0", h.encode())])
    problems = verify_chain(store)
    assert "seq 2" in problems[0] and "re-used" in problems[0]
    assert [p for p in problems if "does not count" not in p] == problems[:1]


def test_anchor_and_row_stay_consistent_when_killed_at_each_step_and_under_concurrent_writers(world, store, keys) -> None:
    """Break 6: SIGKILL after the intent is written or after the commit leaves a chain that verifies, and the
    approval is shown only if it committed; two processes signing at once never raise a false alarm."""
    runs = world["runs"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def sign(kill_at: str, note: str) -> int:
        code = ("import os, sys; from qa.gate import signoff; from qa.store import Store\n"
                f"signoff.step_hook = lambda s: os.kill(os.getpid(), 9) if s == {kill_at!r} else None\n"
                f"signoff.record_signoff(Store({str(store.path)!r}), {runs['good']!r}, 'ana', 'reject', {note!r})\n")
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120).returncode

    assert sign("pending-anchor-written", "never committed") == -9
    assert verify_chain(store) == [] and store.query("select count(*) from signoffs")[0][0] == 0
    assert read_anchor(store.path)[1] is not None  # the intent is still there, and harmless
    assert sign("committed", "committed, anchor not finalised") == -9
    assert verify_chain(store) == [] and store.query("select note from signoffs") == [("committed, anchor not finalised",)]
    assert "reject by ana" in status_output(store, "bicubic")
    procs = [subprocess.Popen([sys.executable, "-c",
                               "from qa.gate.signoff import record_signoff; from qa.store import Store\n"
                               f"for i in range(3): record_signoff(Store({str(store.path)!r}), {runs['good']!r}, "
                               f"'ana', 'reject', 'writer {w} #' + str(i))\n"], env=env) for w in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert verify_chain(store) == []
    assert [r[0] for r in store.query("select seq from signoffs order by seq")] == list(range(1, 8))


def test_an_edited_row_with_recomputed_hashes_and_anchor_fails_its_signature(world, store, keys) -> None:
    """Break 7: flipping a reject to approve and recomputing every hash and the anchor with qa's own code is found,
    because the row's signature (and the anchor's) no longer match a trusted key."""
    runs = world["runs"]
    _rejects(store, runs, 2)
    signer, sig = store.query("select signer, signature from signoff_proofs where seq = 1")[0]
    prev = ""
    for seq, run_id, reviewer, _decision, note, _override, at, ev, dec, rs, rsha in store.query(
            "select s.seq, s.run_id, s.reviewer, s.decision, s.note, s.override, s.signed_at, p.evidence_sha256, "
            "p.decoder, p.reference_set, p.reference_set_sha256 from signoffs s join signoff_proofs p using (seq) "
            "order by seq"):
        h = row_hash(prev, canonical_row_v4(seq, run_id, reviewer, "approve", note, True, at, prev, "", "", signer,
                                            ev, dec, rs, rsha))
        _sql(store, "update signoffs set decision = 'approve', override = true, prev_hash = ?, hash = ? where seq = ?",
             [prev, h, seq])
        prev = h
    write_anchor(store.path, {"seq": 2, "hash": prev, "signer": signer, "signature": sig})
    problems = verify_chain(store)
    assert sum("signature does not match" in p for p in problems) == 2
    assert any("anchor's head" in p and "not signed by the key that signed that row" in p for p in problems)


def test_a_row_signed_by_a_key_not_in_the_trusted_file_is_detected(world, store, keys, capsys) -> None:
    """Must show: mallory signs with her own trusted file; verify against the project's file names the row."""
    runs = world["runs"]
    _rejects(store, runs, 1)
    record_signoff(store, runs["good"], "mallory", "reject", "mine", key=keys["mallory"],
                   trusted=keys["mallory_trusted"])
    problems = verify_chain(store, keys["trusted"])
    assert any("seq 2" in p and "not in the trusted-keys file" in p and "does not count" in p for p in problems)
    assert qa_main(["signoff", "verify", "--trusted-keys", str(keys["trusted"]), "--db", str(store.path)]) == 1
    assert "anchor's head (seq 2) is signed by a key that no longer counts" in capsys.readouterr().out
    # through the CLI: an untrusted key cannot record at all, and cannot claim another reviewer's name
    assert qa_main(["signoff", "--run", runs["good"], "--decision", "reject", "--key", str(keys["mallory"]),
                    "--db", str(store.path)]) == 2
    assert "is not in the trusted-keys file" in capsys.readouterr().err
    with pytest.raises(QAError, match="may not sign as 'mallory'"):
        record_signoff(store, runs["good"], "mallory", "reject", "")


def test_non_finite_policy_bounds_and_margins_are_rejected() -> None:
    """Break 8 (parser): min = -inf, max = inf, margin = inf or nan can no longer make a gate pass anything."""
    for rule in ({"min": -math.inf}, {"max": math.inf}, {"margin": math.inf}, {"decoder_margin": math.nan}):
        with pytest.raises(PolicyError, match="finite"):
            parse_policy({"policy": {"track": "upscale"}, "metrics": {"psnr": rule}})


def test_a_lenient_gate_does_not_launder_a_failed_run(world, store, keys, tmp_path) -> None:
    """Break 8: a pass under another policy does not approve under the shipped one; naming that policy is
    allowed but signed into the row, where anyone can see which policy the approval rests on."""
    root, blurry = Path(str(world["root"])), world["runs"]["blurry"]
    assert gate_run(store, blurry, load_policy(root / "strict.toml"), "none").verdict == "fail"
    inf = tmp_path / "inf.toml"
    inf.write_text(STRICT.replace("min = 100.0", "min = -inf\nmargin = inf"))
    assert qa_main(["gate", "--run", blurry, "--policy", str(inf), "--db", str(store.path)]) == 2
    with pytest.raises(QAError, match="needs an explicit override"):
        record_signoff(store, blurry, "ana", "approve", "")
    with pytest.raises(QAError, match="is fail; approving it needs an explicit override"):
        record_signoff(store, blurry, "ana", "approve", "", policy=root / "strict.toml")
    assert gate_run(store, blurry, load_policy(root / "lenient.toml"), "none").verdict == "pass"
    with pytest.raises(QAError, match="no gate under the shipped policy"):
        record_signoff(store, blurry, "ana", "approve", "")
    record_signoff(store, blurry, "ana", "approve", "", policy=root / "lenient.toml")
    assert store.query("select policy_sha256 from signoff_proofs")[0][0] == load_policy(root / "lenient.toml").sha256()
    assert verify_chain(store) == []
    _sql(store, "update gates set verdict = 'fail'")  # the gate an approval cites is part of what is verified
    problems = verify_chain(store)
    assert any("whose verdict is fail" in p for p in problems) and any("evidence of run" in p for p in problems)


def test_a_failed_run_is_never_approved_and_a_never_gated_one_needs_override(world, store, keys) -> None:
    """Break 9: a failed run is not approved, even with --override and a note (resume audit H1: its evidence is
    partial; tests/gate/test_partial_runs_never_approved.py); a finished run without a gate needs --override and a
    note; `qa status` names no approved run after the refusals."""
    runs = world["runs"]
    with pytest.raises(QAError, match=r"did not finish \(status failed.*never approved, with --override or without"):
        record_signoff(store, runs["failed"], "ana", "approve", "")
    with pytest.raises(QAError, match="has no gate under the shipped policy policy_upscale.toml"):
        record_signoff(store, runs["good"], "ana", "approve", "")
    assert "no approved run" in status_output(store, "bicubic")
    with pytest.raises(QAError, match=r"did not finish \(status failed"):
        record_signoff(store, runs["failed"], "ana", "approve", "partial run accepted for a hotfix", override=True)
    assert "no approved run" in status_output(store, "bicubic")
    record_signoff(store, runs["good"], "ana", "approve", "accepted without a gate for a hotfix", override=True)
    text = status_output(store, "bicubic")
    assert f"approved run: run {runs['good']}, approved by ana" in text and "(override)" in text
    assert verify_chain(store) == []


def test_keygen_writes_a_private_key_and_the_trusted_line(tmp_path, capsys) -> None:
    key = tmp_path / "k" / "bo_ed25519"
    assert qa_main(["signoff", "keygen", "--key", str(key), "--reviewer", "bo"]) == 0
    out = capsys.readouterr().out
    assert oct(key.stat().st_mode & 0o777) == "0o600" and f"bo {load_signing_key(key).public}" in out
    assert qa_main(["signoff", "keygen", "--key", str(key), "--reviewer", "bo"]) == 2  # never overwrites
    assert "not overwriting" in capsys.readouterr().err
    with pytest.raises(QAError, match="one word"):
        generate_key(tmp_path / "x", "two words")


def test_verify_without_trusted_keys_or_signoffs_table_exits_2(world, store, monkeypatch, capsys) -> None:
    """Break 10 (sign-offs): no trusted file, or a dropped signoffs table: one clear line, exit 2."""
    monkeypatch.delenv("QA_TRUSTED_KEYS", raising=False)
    assert qa_main(["signoff", "verify", "--db", str(store.path)]) == 2
    assert "--trusted-keys" in capsys.readouterr().err
    key, trusted = make_reviewer(store.path.parent, "ana")
    _sql(store, "drop table signoffs")
    assert qa_main(["signoff", "verify", "--trusted-keys", str(trusted), "--db", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert "missing part of qa's schema" in err and "Traceback" not in err and len(err.strip().splitlines()) == 2



def test_an_ssh_keygen_key_and_an_allowed_signers_line_work_as_is(world, store, tmp_path, monkeypatch) -> None:
    """The key a reviewer already has (`ssh-keygen -t ed25519`) and git's allowed_signers line for it."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed here")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cy@example.org", "-f", str(key)],
                   check=True, timeout=60)
    trusted = tmp_path / "allowed_signers"
    trusted.write_text("# reviewers\ncy@example.org namespaces=\"git,qa\" " + (tmp_path / "id_ed25519.pub").read_text())
    monkeypatch.setenv("QA_TRUSTED_KEYS", str(trusted))
    assert record_signoff(store, world["runs"]["good"], None, "reject", "from my ssh key", key=key) == 1
    assert store.query("select reviewer from signoffs")[0][0] == "cy@example.org"
    assert verify_chain(store) == []


def test_signoff_list_show_and_verify_print_what_is_stored(world, store, keys, capsys) -> None:
    """A sign-off meeting from the terminal: list (all, or one run's), show one row whole, verify's count and head."""
    _rejects(store, world["runs"], 2)
    db = ["--db", str(store.path)]
    assert qa_main(["signoff", "list", *db]) == 0
    out = capsys.readouterr().out
    assert "note 0" in out and "note 1" in out and "reject" in out and world["runs"]["good"] in out
    assert qa_main(["signoff", "list", "--run", "no-such-run", *db]) == 0
    assert "no sign-offs of run no-such-run" in capsys.readouterr().out
    assert qa_main(["signoff", "show", "--seq", "2", *db]) == 0
    out = capsys.readouterr().out
    head = str(store.query("select hash from signoffs where seq = 2")[0][0])
    assert "note 1" in out and head in out and "signer: ssh-ed25519" in out
    assert qa_main(["signoff", "show", "--seq", "9", *db]) == 2
    assert "no sign-off with seq 9" in capsys.readouterr().err
    assert qa_main(["signoff", "verify", *db]) == 0
    out = capsys.readouterr().out
    assert f"2 sign-off(s); head seq 2, hash {head}\n" in out and "intact" in out  # the full head
