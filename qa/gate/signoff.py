"""Release sign-offs: append-only rows in ``signoffs``, chained by sha256.

Each row's ``hash`` is ``sha256(prev_hash + canonical_row)``, where ``canonical_row`` is the JSON (sorted keys)
of seq, run_id, reviewer, decision, note, override and signed_at (ISO 8601, UTC, microseconds), and
``prev_hash`` is the previous row's hash ("" for the first row). Editing any field of a row breaks its hash;
deleting a row breaks the next row's ``prev_hash`` and leaves a gap in ``seq``. Deleting the *last* rows
leaves a shorter chain that is still consistent, so the head (seq and hash of the last row) is also written to
an anchor file beside the database (``<db>.signoff-head``), which :func:`verify_chain` compares against.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from qa.errors import QAError
from qa.store import Store

DECISIONS = ("approve", "reject")


def canonical_row(seq: int, run_id: str, reviewer: str, decision: str, note: str, override: bool,
                  signed_at: datetime) -> str:
    """The exact text a sign-off row's hash covers."""
    return json.dumps({"seq": int(seq), "run_id": run_id, "reviewer": reviewer, "decision": decision,
                       "note": note, "override": bool(override),
                       "signed_at": signed_at.isoformat(timespec="microseconds")}, sort_keys=True)


def row_hash(prev_hash: str, canonical: str) -> str:
    """sha256 hex of ``prev_hash + canonical``."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def anchor_path(store: Store) -> Path:
    """The anchor file holding the chain's head: ``<db>.signoff-head``."""
    return store.path.with_name(store.path.name + ".signoff-head")


def latest_gate(store: Store, run_id: str) -> tuple[str, str] | None:
    """(gate_id, verdict) of the most recent gate of ``run_id``, or None."""
    rows = store.query("select gate_id, verdict from gates where run_id = ? order by decided_at desc limit 1",
                       [run_id])
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def record_signoff(store: Store, run_id: str, reviewer: str, decision: str, note: str | None = "",
                   override: bool = False) -> int:
    """Append a sign-off; returns its ``seq``.

    Approving a run whose latest gate failed needs ``override=True`` and a non-empty ``note`` (QAError
    otherwise). ``override`` on anything else is recorded as given.
    """
    reviewer = (reviewer or "").strip()
    note = (note or "").strip()
    if not reviewer:
        raise QAError("a sign-off needs a reviewer", "pass --reviewer NAME")
    if decision not in DECISIONS:
        raise QAError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not store.query("select 1 from runs where run_id = ?", [run_id]):
        raise QAError(f"no run {run_id!r} in {store.path}", "list runs with `qa status DECODER`")
    gate = latest_gate(store, run_id)
    if decision == "approve" and gate is not None and gate[1] == "fail":
        if not override:
            raise QAError(f"the latest gate of run {run_id} ({gate[0]}) failed; approving it needs an explicit "
                          "override", "pass --override with a --note that says why")
        if not note:
            raise QAError(f"overriding the failed gate {gate[0]} of run {run_id} needs a note",
                          "pass --note 'why this release is acceptable'")
    signed_at = datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as con:
        last = con.execute("select seq, hash from signoffs order by seq desc limit 1").fetchone()
        seq = int(last[0]) + 1 if last else 1
        prev = str(last[1]) if last else ""
        h = row_hash(prev, canonical_row(seq, run_id, reviewer, decision, note, override, signed_at))
        con.execute("insert into signoffs values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, run_id, reviewer, decision, note, bool(override), signed_at, prev, h])
    anchor_path(store).write_text(f"{seq} {h}\n", encoding="utf-8")  # after the commit: never ahead of it
    return seq


def verify_chain(store: Store) -> list[str]:
    """Problems in the sign-off chain (empty when intact): edited rows, deleted rows, a moved head."""
    rows = store.query("select seq, run_id, reviewer, decision, note, override, signed_at, prev_hash, hash "
                       "from signoffs order by seq")
    problems: list[str] = []
    prev, expected_seq = "", 1
    for seq, run_id, reviewer, decision, note, override, signed_at, prev_hash, h in rows:
        seq = int(seq)  # type: ignore[call-overload]
        if seq != expected_seq:
            problems.append(f"sign-off seq {expected_seq}..{seq - 1} missing: rows were deleted before seq {seq}")
        if str(prev_hash) != prev:
            problems.append(f"sign-off seq {seq}: prev_hash does not match the hash of the row before it "
                            "(a row was deleted or replaced)")
        if not isinstance(signed_at, datetime):
            problems.append(f"sign-off seq {seq}: signed_at is not a timestamp")
            recomputed = ""
        else:
            recomputed = row_hash(str(prev_hash), canonical_row(seq, str(run_id), str(reviewer), str(decision),
                                                               str(note or ""), bool(override), signed_at))
        if recomputed != str(h):
            problems.append(f"sign-off seq {seq} (run {run_id}, reviewer {reviewer}): hash mismatch, the row was "
                            "edited after it was signed")
        prev, expected_seq = str(h), seq + 1
    anchor = anchor_path(store)
    if anchor.exists():
        parts = anchor.read_text(encoding="utf-8").split()
        head = (int(parts[0]), parts[1]) if len(parts) == 2 and parts[0].isdigit() else None
        last = (expected_seq - 1, prev) if rows else (0, "")
        if head is None:
            problems.append(f"sign-off anchor {anchor} is unreadable")
        elif head != last:
            problems.append(f"sign-off chain ends at seq {last[0]} but the anchor {anchor.name} records seq "
                            f"{head[0]}: rows were deleted or added outside qa")
    return problems


def signoffs_of(store: Store, run_ids: list[str]) -> list[tuple[object, ...]]:
    """(seq, run_id, reviewer, decision, note, override, signed_at) of these runs, oldest first."""
    if not run_ids:
        return []
    marks = ",".join("?" * len(run_ids))
    return store.query(f"select seq, run_id, reviewer, decision, note, override, signed_at from signoffs "
                       f"where run_id in ({marks}) order by seq", list[object](run_ids))
