"""Release sign-offs: append-only rows in ``signoffs``, chained by sha256 and signed by the reviewer's key.

Each row's ``hash`` is ``sha256(prev_hash + canonical)``; ``canonical`` is the JSON (sorted keys) of seq,
run_id, reviewer, decision, note, override, signed_at (ISO 8601, UTC, microseconds), prev_hash, and, from
format 2 on, the gate and policy sha256 the approval rests on and the signer's public key. The reviewer signs
that hash with an Ed25519 key (:mod:`qa.gate.signing`); the signature, key, gate and policy hash are kept in
``signoff_proofs`` (same transaction). :mod:`qa.gate.signoff_verify` checks every row against a trusted-keys
file that lives outside the database, and the chain's head against the anchor file (:mod:`qa.store.anchor`).

Before a row is appended the whole chain is verified; the check, the row and the anchor are written while
holding the database's single-writer lock. An approval needs a finished run whose latest gate under the
track's shipped policy (or the ``policy`` named in the sign-off, hashed into it) passed; anything else needs
``override`` with a note.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from qa.errors import QAError
from qa.gate.signing import SigningError, SigningKey, TrustedKeys, fingerprint, load_signing_key, load_trusted_keys
from qa.store import Store
from qa.store import runs as store_runs
from qa.store import signoffs as store_signoffs
from qa.store.anchor import anchor_path as _anchor_path
from qa.store.anchor import write_anchor
from qa.store.gates import latest_gate_under
from qa.store.records import NewSignoff, SignoffRow

DECISIONS = ("approve", "reject")
#: signature domains: a row's hash, and the anchor's head
ROW_DOMAIN = b"qa-signoff-row-v2\0"
HEAD_DOMAIN = b"qa-signoff-head-v2\0"
#: test seam: called with "pending-anchor-written" and "committed" while the lock is held
step_hook: Callable[[str], None] | None = None


def canonical_row(seq: int, run_id: str, reviewer: str, decision: str, note: str, override: bool,
                  signed_at: datetime) -> str:
    """The exact text a format-1 (unsigned, older qa) sign-off row's hash covers."""
    return json.dumps({"seq": int(seq), "run_id": run_id, "reviewer": reviewer, "decision": decision,
                       "note": note, "override": bool(override),
                       "signed_at": signed_at.isoformat(timespec="microseconds")}, sort_keys=True)


def canonical_row_v2(seq: int, run_id: str, reviewer: str, decision: str, note: str, override: bool,
                     signed_at: datetime, prev_hash: str, gate_id: str, policy_sha256: str, signer: str) -> str:
    """The exact text a signed (format 2) row's hash covers: format 1's fields plus prev_hash, gate, policy, key."""
    base = json.loads(canonical_row(seq, run_id, reviewer, decision, note, override, signed_at))
    base |= {"format": 2, "prev_hash": prev_hash, "gate_id": gate_id, "policy_sha256": policy_sha256,
             "signer": signer}
    return json.dumps(base, sort_keys=True)


def row_hash(prev_hash: str, canonical: str) -> str:
    """sha256 hex of ``prev_hash + canonical``."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def head_message(seq: int, h: str) -> bytes:
    """What the anchor's head signature covers."""
    return f"{int(seq)} {h}".encode()


def anchor_path(store: Store) -> Path:
    """The anchor file holding the chain's head: ``<db>.signoff-head``."""
    return _anchor_path(store.path)


def gate_passed(verdict: str, details_json: str | None) -> bool:
    """Whether a stored gate lets a release through: ``pass``, or a ``needs-review`` its policy allows."""
    if verdict == "pass":
        return True
    if verdict != "needs-review":
        return False
    try:
        return json.loads(details_json or "{}").get("blocks") is False
    except (ValueError, AttributeError):
        return False


def approval_basis(con: duckdb.DuckDBPyConnection, run_id: str, status: str, policy_sha: str,
                   policy_name: str) -> tuple[str, str]:
    """(gate_id, reason): the gate an approval of ``run_id`` rests on, and why it cannot ('' when it can)."""
    if status != "finished":
        return "", f"run {run_id} is not finished (status {status})"
    row = latest_gate_under(con, run_id, policy_sha)
    if row is None:
        return "", (f"run {run_id} has no gate under {policy_name} (sha256 {policy_sha[:12]}); gate it with "
                    f"`qa gate --run {run_id}`")
    if not gate_passed(str(row[1]), row[2]):
        return str(row[0]), f"the latest gate of run {run_id} under {policy_name} ({row[0]}) is {row[1]}"
    return str(row[0]), ""


def _policy_of(track: str, policy: str | Path | None) -> tuple[str, str]:
    """(sha256, name) of the named policy, or of the track's shipped one."""
    from qa.gate.policy import default_policy_path, load_policy

    path = Path(policy) if policy is not None else default_policy_path(track or "decode")
    return load_policy(path).sha256(), (f"policy {path}" if policy is not None else f"the shipped policy {path.name}")


def _reviewer_of(key: SigningKey, trusted: TrustedKeys, reviewer: str | None) -> str:
    names = trusted.principals(key.public)
    if not names:
        raise SigningError(f"the key {key.path} ({fingerprint(key.public)}) is not in the trusted-keys file "
                           f"{trusted.path}", f"have this line reviewed into it: 'NAME {key.public}'")
    reviewer = (reviewer or "").strip()
    if not reviewer:
        if len(names) != 1:
            raise QAError(f"the key {key.path} may sign as {', '.join(sorted(names))}", "pass --reviewer NAME")
        return next(iter(names))
    if reviewer not in names:
        raise SigningError(f"the key {key.path} may not sign as {reviewer!r} (its names in {trusted.path}: "
                           f"{', '.join(sorted(names))})", "pass --reviewer with one of those names, or your own --key")
    return reviewer


def record_signoff(store: Store, run_id: str, reviewer: str | None, decision: str, note: str | None = "",
                   override: bool = False, *, key: SigningKey | str | Path | None = None,
                   trusted: TrustedKeys | str | Path | None = None, policy: str | Path | None = None) -> int:
    """Append a signed sign-off; returns its ``seq``.

    ``key``: the reviewer's private key (default ``$QA_SIGNING_KEY``); ``trusted``: the trusted-keys file
    (default ``$QA_TRUSTED_KEYS``), which must list the key under ``reviewer`` (default: the key's only name).
    ``policy``: judge the approval by this policy file instead of the track's shipped one (its sha256 is signed).
    An approval that is not backed by a passing gate of a finished run needs ``override=True`` and a note.
    Refuses (QAError, nothing written) when the existing chain does not verify.
    """
    from qa.gate.signoff_verify import LEGACY, check_chain

    key = key if isinstance(key, SigningKey) else load_signing_key(key)
    trusted = trusted if isinstance(trusted, TrustedKeys) else load_trusted_keys(trusted)
    reviewer = _reviewer_of(key, trusted, reviewer)
    note = (note or "").strip()
    if decision not in DECISIONS:
        raise QAError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    run = store_runs.get_run(store, run_id)
    if run is None:
        raise QAError(f"no run {run_id!r} in {store.path}", "list runs with `qa status DECODER`")
    policy_sha, policy_name = _policy_of(run.track, policy) if decision == "approve" else ("", "")
    finished: dict[str, dict[str, Any]] = {}

    def committed() -> None:  # still under the lock
        _step("committed")
        write_anchor(store.path, finished["head"])

    with store.transaction(after_commit=committed) as con:  # one lock: chain check, anchor and row
        gate_id = ""
        if decision == "approve":
            status = str(store_signoffs.run_status_in(con, run_id))
            gate_id, reason = approval_basis(con, run_id, status, policy_sha, policy_name)
            if reason and not override:
                raise QAError(f"{reason}; approving it needs an explicit override",
                              "pass --override with a --note that says why")
            if reason and not note:
                raise QAError(f"overriding ({reason}) needs a note", "pass --note 'why this release is acceptable'")
        problems, head = check_chain(con, store.path, trusted)
        problems = [p for p in problems if LEGACY not in p]  # an older qa's rows: reported by verify only
        if problems:
            raise QAError(f"the sign-off chain does not verify ({len(problems)} problem(s), first: {problems[0]}); "
                          "nothing was recorded", "run `qa signoff verify` and restore the database and its "
                          f"anchor {anchor_path(store).name} from a backup")
        seq, prev = int(head["seq"]) + 1, str(head["hash"])
        signed_at = datetime.now(UTC).replace(tzinfo=None)
        h = row_hash(prev, canonical_row_v2(seq, run_id, reviewer, decision, note, override, signed_at, prev,
                                            gate_id, policy_sha, key.public))
        new_head = {"seq": seq, "hash": h, "signer": key.public,
                    "signature": key.sign(HEAD_DOMAIN, head_message(seq, h))}
        write_anchor(store.path, head, pending=new_head)
        _step("pending-anchor-written")
        store_signoffs.append_signoff(con, NewSignoff(
            seq, run_id, reviewer, decision, note, bool(override), signed_at, prev, h, gate_id, policy_sha,
            key.public, key.sign(ROW_DOMAIN, h.encode())))
        finished["head"] = new_head
    return seq


def _step(name: str) -> None:
    if step_hook is not None:
        step_hook(name)


def verify_chain(store: Store, trusted: TrustedKeys | str | Path | None = None) -> list[str]:
    """Problems in the sign-off chain (empty when intact): edited, deleted, re-used or untrusted rows, a moved
    head. ``trusted``: the trusted-keys file (default ``$QA_TRUSTED_KEYS``)."""
    from qa.gate.signoff_verify import check_chain

    trusted = trusted if isinstance(trusted, TrustedKeys) else load_trusted_keys(trusted)
    with store.connect() as con:
        return check_chain(con, store.path, trusted)[0]


def chain_summary(store: Store, trusted: TrustedKeys | str | Path | None = None) -> tuple[list[str], int, int, str]:
    """(problems, number of rows, head seq, head hash) of the sign-off chain, as :func:`verify_chain` checks it."""
    from qa.gate.signoff_verify import check_chain

    trusted = trusted if isinstance(trusted, TrustedKeys) else load_trusted_keys(trusted)
    with store.connect() as con:
        problems, head = check_chain(con, store.path, trusted)
        n = store_signoffs.count_signoffs(con)
    return problems, n, int(head.get("seq", 0)), str(head.get("hash", ""))


def signoff_rows(store: Store, run_id: str | None = None, seq: int | None = None) -> list[tuple[Any, ...]]:
    """(seq, run_id, reviewer, decision, note, override, signed_at, gate_id, policy_sha256, signer, prev_hash,
    hash) of every sign-off (or of one run, or one ``seq``), oldest first; read as stored, not verified."""
    return store_signoffs.signoff_rows(store, run_id, seq)


def signoffs_of(store: Store, run_ids: list[str]) -> list[SignoffRow]:
    """The sign-offs of these runs, oldest first."""
    return store_signoffs.signoffs_of(store, run_ids)
