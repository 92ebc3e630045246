"""Verifying the sign-off chain: hashes, sequence, signatures against the trusted keys, approvals' gates, anchor.

Detects: an edited row (hash mismatch), an edited row whose hashes were recomputed (its signature no longer
matches, or was made by a key the trusted file does not list), a deleted row (gap in seq, broken prev_hash),
a deleted last row (the anchor records a later head; a missing anchor is a finding too), a re-used sequence
number (the anchor's head hash differs at the same seq, or seq repeats), a row whose reviewer is not a name
of its key, and an approval citing a gate that is absent or did not pass.
"""

from __future__ import annotations

import binascii
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from qa.gate.signing import TrustedKeys, fingerprint
from qa.gate.signoff import (
    HEAD_DOMAIN,
    ROW_DOMAIN,
    canonical_row,
    canonical_row_v2,
    gate_passed,
    head_message,
    row_hash,
)
from qa.store.anchor import GENESIS, read_anchor
from qa.store.gates import gates_by_id
from qa.store.signoffs import chain_rows

#: problems of rows recorded by a qa without signatures: reported, but new signed rows may follow them
LEGACY = "is not signed (recorded by a qa without signatures)"


def _fp(public: str) -> str:
    try:
        return fingerprint(public)
    except (IndexError, ValueError, binascii.Error):
        return "unreadable key"


def _row_problems(row: tuple[Any, ...], prev: str, trusted: TrustedKeys,
                  gates: dict[str, tuple[str, str, str, str | None]]) -> list[str]:
    seq, run_id, reviewer, decision, note, override, signed_at, prev_hash, h, fmt, gate_id, pol, signer, sig = row
    where = f"sign-off seq {seq} (run {run_id}, reviewer {reviewer})"
    if not isinstance(signed_at, datetime):
        return [f"{where}: signed_at is not a timestamp"]
    args = (int(seq), str(run_id), str(reviewer), str(decision), str(note or ""), bool(override), signed_at)
    if fmt is None:
        if row_hash(str(prev_hash), canonical_row(*args)) != str(h):
            return [f"{where}: hash mismatch, the row was edited after it was signed"]
        return [f"{where} {LEGACY}"]
    signer = str(signer or "")
    canonical = canonical_row_v2(*args, str(prev_hash), str(gate_id or ""), str(pol or ""), signer)
    if row_hash(str(prev_hash), canonical) != str(h):
        return [f"{where}: hash mismatch, the row was edited after it was signed"]
    names = trusted.principals(signer)
    if not names:
        return [f"{where}: signed by a key that is not in the trusted-keys file {trusted.path} ({_fp(signer)})"]
    if str(reviewer) not in names:
        return [f"{where}: the key that signed it ({_fp(signer)}) may not sign as {reviewer!r} "
                f"(its names: {', '.join(sorted(names))})"]
    if not trusted.verify(signer, str(sig or ""), ROW_DOMAIN, str(h).encode()):
        return [f"{where}: the signature does not match the row (edited and re-hashed outside qa)"]
    if decision == "approve" and not override:
        g = gates.get(str(gate_id or ""))
        if g is None or g[0] != str(run_id) or g[1] != str(pol or ""):
            return [f"{where}: approves without override citing gate {gate_id!r}, which is not a gate of this run "
                    "under the signed policy in the database"]
        if not gate_passed(g[2], g[3]):
            return [f"{where}: approves without override citing gate {gate_id}, whose verdict is {g[2]}"]
    return []


def _head_problems(head: dict[str, Any], trusted: TrustedKeys, name: str) -> list[str]:
    if int(head["seq"]) == 0:
        return [] if head["hash"] == "" else [f"{name} is malformed (seq 0 with a hash)"]
    if not trusted.verify(str(head.get("signer") or ""), str(head.get("signature") or ""), HEAD_DOMAIN,
                          head_message(int(head["seq"]), str(head["hash"]))):
        return [f"{name} (seq {head['seq']}) is not signed by a trusted key: it was written outside qa"]
    return []


def check_chain(con: duckdb.DuckDBPyConnection, db_path: Path,
                trusted: TrustedKeys) -> tuple[list[str], dict[str, Any]]:
    """(problems, head): every problem found, and the chain's head as an anchor entry (with its signature)."""
    rows = chain_rows(con)
    gates = gates_by_id(con, sorted({str(r[10]) for r in rows if r[10]}))
    problems: list[str] = []
    prev, expected_seq, last_seq = "", 1, 0
    for row in rows:
        seq = int(row[0])
        if seq == last_seq:
            problems.append(f"sign-off seq {seq} appears twice: a sequence number was re-used")
        elif seq != expected_seq:
            problems.append(f"sign-off seq {expected_seq}..{seq - 1} missing: rows were deleted before seq {seq}")
        if str(row[7]) != prev:
            problems.append(f"sign-off seq {seq}: prev_hash does not match the hash of the row before it "
                            "(a row was deleted or replaced)")
        problems += _row_problems(row, str(row[7]), trusted, gates)
        prev, expected_seq, last_seq = str(row[8]), seq + 1, seq
    last = (last_seq, prev)
    head, pending, trouble = read_anchor(db_path)
    if trouble:
        return problems + [trouble], {**GENESIS, "seq": last[0], "hash": last[1]}
    assert head is not None  # read_anchor returns a head when there is no trouble
    candidates = [h for h in (head, pending) if h is not None]
    matched = next((h for h in candidates if (int(h["seq"]), str(h["hash"])) == last), None)
    if matched is None:
        top = max(int(h["seq"]) for h in candidates)
        same = next((h for h in candidates if int(h["seq"]) == last[0]), None)
        if same is not None:
            problems.append(f"sign-off seq {last[0]} is not the row the anchor recorded (hash {str(same['hash'])[:12]}, "
                            f"now {last[1][:12]}): the sequence number was re-used for another row")
        elif last[0] < top:
            problems.append(f"sign-off chain ends at seq {last[0]} but the anchor {db_path.name}.signoff-head records "
                            f"seq {top}: rows were deleted")
        else:
            problems.append(f"sign-off chain ends at seq {last[0]}, after the anchor's seq {top}: rows were added "
                            "outside qa")
        matched = {**GENESIS, "seq": last[0], "hash": last[1]}
    elif not matched.get("signer") and rows and rows[-1][9] is None:
        problems.append(f"the anchor's head (seq {last[0]}) {LEGACY}")
    else:
        problems += _head_problems(matched, trusted, "the anchor's head")
    return problems, matched
