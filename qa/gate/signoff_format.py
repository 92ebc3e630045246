"""The exact bytes a sign-off row's hash and signatures cover, for every row format qa has written.

* format 1 (a qa without signatures): seq, run_id, reviewer, decision, note, override, signed_at;
* format 2: format 1's fields plus prev_hash, the gate and policy sha256 the approval rests on, the signer's key;
* format 3: format 2's plus the run's decoder, reference set (name and content sha256) and the sha256 of its
  evidence (:mod:`qa.gate.evidence`, evidence format 1): what the gate read, so changing any of it breaks the
  approval;
* format 4 (written now): format 3's fields, its evidence digest of evidence format 2 (format 1 plus the crops'
  regions, full-resolution images and tiles: what the reviewer looked at).

A row's ``hash`` is ``sha256(prev_hash + canonical)``; the reviewer signs ``ROW_DOMAIN + hash`` and the anchor's
head ``HEAD_DOMAIN + "SEQ HASH"`` (Ed25519, :mod:`qa.gate.signing`). Shared by the writer
(:mod:`qa.gate.signoff`) and the verifier (:mod:`qa.gate.signoff_verify`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

DECISIONS = ("approve", "reject")
#: the row format a sign-off is written in now
ROW_FORMAT = 4
#: row format -> the evidence format its ``evidence_sha256`` is a digest of (rows that sign evidence)
EVIDENCE_FORMAT_OF_ROW = {3: 1, 4: 2}
#: every row format this qa can verify (None: the unsigned rows of a qa without signatures)
ROW_FORMATS = (None, 2, 3, 4)
#: signature domains: a row's hash, and the anchor's head
ROW_DOMAIN = b"qa-signoff-row-v2\0"
HEAD_DOMAIN = b"qa-signoff-head-v2\0"


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


def canonical_row_v3(seq: int, run_id: str, reviewer: str, decision: str, note: str, override: bool,
                     signed_at: datetime, prev_hash: str, gate_id: str, policy_sha256: str, signer: str,
                     evidence_sha256: str, decoder: str, reference_set: str, reference_set_sha256: str) -> str:
    """The exact text a format-3 row's hash covers: format 2's fields plus the evidence digest and the run's
    decoder and reference set (name and content hash)."""
    base = json.loads(canonical_row_v2(seq, run_id, reviewer, decision, note, override, signed_at, prev_hash,
                                       gate_id, policy_sha256, signer))
    base |= {"format": 3, "evidence_sha256": evidence_sha256, "decoder": decoder, "reference_set": reference_set,
             "reference_set_sha256": reference_set_sha256}
    return json.dumps(base, sort_keys=True)


def canonical_row_v4(seq: int, run_id: str, reviewer: str, decision: str, note: str, override: bool,
                     signed_at: datetime, prev_hash: str, gate_id: str, policy_sha256: str, signer: str,
                     evidence_sha256: str, decoder: str, reference_set: str, reference_set_sha256: str) -> str:
    """The exact text a format-4 row's hash covers: format 3's fields, its evidence digest being of evidence
    format 2."""
    base = json.loads(canonical_row_v3(seq, run_id, reviewer, decision, note, override, signed_at, prev_hash,
                                       gate_id, policy_sha256, signer, evidence_sha256, decoder, reference_set,
                                       reference_set_sha256))
    base |= {"format": 4, "evidence_format": EVIDENCE_FORMAT_OF_ROW[4]}
    return json.dumps(base, sort_keys=True)


def signs_evidence(row_format: int | None) -> bool:
    """Whether a row of ``row_format`` signs its run's evidence (only such approvals can be a baseline)."""
    return row_format in EVIDENCE_FORMAT_OF_ROW


def row_hash(prev_hash: str, canonical: str) -> str:
    """sha256 hex of ``prev_hash + canonical``."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def head_message(seq: int, h: str) -> bytes:
    """What the anchor's head signature covers."""
    return f"{int(seq)} {h}".encode()


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
