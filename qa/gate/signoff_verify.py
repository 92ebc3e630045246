"""Verifying the sign-off chain: which rows are intact, which count, and what is broken.

Two kinds of finding, as git treats signed history:

* **broken** (the chain cannot be trusted; every command that needs a baseline stops with exit 2): an edited
  row (hash mismatch, or a signature that does not match the row under the key it names), a deleted row (gap
  in seq, broken prev_hash), a deleted last row or an added one (the anchor records another head; a missing
  anchor is a finding too), a re-used sequence number, an unsigned row after signed ones, an anchor whose
  signature is not the last row's signer's.
* **does not count** (reported; the row is never used, the chain goes on): a row signed by a key the
  trusted-keys file does not list (revoked, or never trusted), outside the key's ``valid-after``/``valid-before``,
  by a key whose ``namespaces`` exclude ``qa`` or whose line qa refuses, a reviewer name that is not one of the
  key's, a row of a qa without signatures, an approval signed before qa signed evidence (format 2), a row whose
  time cannot be true (:func:`time_problem`: dated before a counting row earlier in the chain or before the gate
  it cites, or in the future; the signer's clock dates the row, and a key's validity window is checked at that
  date, so a clock set back would let an expired key sign).

Evidence (what an approval signs about its run) is checked by :func:`evidence_problems`: for one approval where
a baseline is chosen (:mod:`qa.gate.approved`), for every approval by ``qa signoff verify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from qa.gate.evidence import evidence
from qa.gate.signing import TrustedKeys, signature_valid
from qa.gate.signoff_format import (
    EVIDENCE_FORMAT_OF_ROW,
    HEAD_DOMAIN,
    ROW_DOMAIN,
    ROW_FORMATS,
    canonical_row,
    canonical_row_v2,
    canonical_row_v3,
    canonical_row_v4,
    gate_passed,
    head_message,
    row_hash,
)
from qa.store.anchor import GENESIS, read_anchor
from qa.store.db import Reader
from qa.store.gates import gate_record
from qa.store.records import SignoffRow
from qa.store.signoffs import signoff_rows

#: rows recorded by a qa without signatures: reported, never counted, but signed rows may follow them
LEGACY = "is not signed (recorded by a qa without signatures)"
#: approvals signed before qa signed the evidence: reported, never the approved baseline
NO_EVIDENCE = ("approves with a signature made before qa signed the run's evidence (format 2): its evidence "
               "cannot be verified, so it never counts as the approved baseline; re-approve the run with this qa")


#: how far a sign-off's date may lie before the rows earlier in the chain, before the gate it cites, or after the
#: time it is verified: two machines' clocks disagree by seconds (NTP-synchronised ones by far less); more is a
#: clock set back or forward
CLOCK_SKEW = timedelta(minutes=10)


@dataclass
class ChainCheck:
    """The verified chain: rows by seq, what is broken, which rows do not count and why, and the head."""

    rows: list[SignoffRow]
    broken: list[str] = field(default_factory=list)
    not_counting: dict[int, str] = field(default_factory=dict)
    head: dict[str, Any] = field(default_factory=lambda: dict(GENESIS))
    notes: list[str] = field(default_factory=list)
    #: the latest date of a counting row (UTC, naive): a new row may not be dated before it
    latest: datetime | None = None
    #: rows by trusted keys dated in the future: nothing is appended after them (once their date passed they
    #: would count, and every row appended meanwhile, dated before them, would stop counting)
    future: list[SignoffRow] = field(default_factory=list)

    def counts(self, row: SignoffRow) -> bool:
        """Whether ``row`` counts (signed by a trusted key, in its bounds, intact chain)."""
        return not self.broken and row.seq not in self.not_counting

    def where(self, row: SignoffRow) -> str:
        return f"sign-off seq {row.seq} (run {row.run_id}, reviewer {row.reviewer})"

    @property
    def findings(self) -> list[str]:
        """Every finding as one line: broken ones first, then the rows that do not count."""
        by_seq = {r.seq: r for r in self.rows}
        return self.broken + [f"{self.where(by_seq[s])} does not count: {why}" if s in by_seq else why
                              for s, why in sorted(self.not_counting.items())]


def _canonical(r: SignoffRow) -> str:
    assert r.signed_at is not None
    args = (r.seq, r.run_id, r.reviewer, r.decision, r.note, r.override, r.signed_at)
    if r.format is None:
        return canonical_row(*args)
    if r.format == 2:
        return canonical_row_v2(*args, r.prev_hash, r.gate_id, r.policy_sha256, r.signer)
    signed = (r.prev_hash, r.gate_id, r.policy_sha256, r.signer, r.evidence_sha256, r.decoder, r.reference_set,
              r.reference_set_sha256)
    return canonical_row_v3(*args, *signed) if r.format == 3 else canonical_row_v4(*args, *signed)


def _row(check: ChainCheck, r: SignoffRow, trusted: TrustedKeys, signed_before: bool) -> None:
    """Adds what is wrong with one row to ``check``."""
    where = check.where(r)
    if r.signed_at is None:
        check.broken.append(f"{where}: signed_at is not a timestamp")
        return
    if r.format not in ROW_FORMATS:
        check.broken.append(f"{where}: unknown row format {r.format} (written outside qa, or by a newer qa)")
        return
    if row_hash(r.prev_hash, _canonical(r)) != r.hash:
        check.broken.append(f"{where}: hash mismatch, the row was edited after it was signed")
        return
    if r.format is None:
        if signed_before:
            check.broken.append(f"{where} is unsigned but follows signed rows: it was written outside qa")
        else:
            check.not_counting[r.seq] = LEGACY
        return
    if not signature_valid(r.signer, r.signature, ROW_DOMAIN, r.hash.encode()):
        check.broken.append(f"{where}: the signature does not match the row (edited and re-hashed outside qa)")
        return
    why = trusted.why_not(r.signer, r.reviewer, r.signed_at)
    if why:
        check.not_counting[r.seq] = why
    elif r.decision == "approve" and r.format == 2:
        check.not_counting[r.seq] = NO_EVIDENCE


def _anchor(check: ChainCheck, db_path: Path, anchor: tuple[dict[str, Any] | None, dict[str, Any] | None, str]
            ) -> None:
    """Compares the chain's end with the anchor's head (or the pending head)."""
    rows = check.rows
    last = (rows[-1].seq, rows[-1].hash) if rows else (0, "")
    head, pending, trouble = anchor
    if trouble or head is None:
        check.broken.append(trouble or f"sign-off anchor of {db_path} is unreadable")
        check.head = {**GENESIS, "seq": last[0], "hash": last[1]}
        return
    candidates = [h for h in (head, pending) if h is not None]
    matched = next((h for h in candidates if (int(h["seq"]), str(h["hash"])) == last), None)
    name = f"{db_path.name}.signoff-head"
    if matched is None:
        top = max(int(h["seq"]) for h in candidates)
        same = next((h for h in candidates if int(h["seq"]) == last[0]), None)
        if same is not None:
            check.broken.append(f"sign-off seq {last[0]} is not the row the anchor recorded (hash "
                                f"{str(same['hash'])[:12]}, now {last[1][:12]}): the sequence number was re-used for "
                                "another row")
        elif last[0] < top:
            check.broken.append(f"sign-off chain ends at seq {last[0]} but the anchor {name} records seq {top}: rows "
                                "were deleted")
        else:
            check.broken.append(f"sign-off chain ends at seq {last[0]}, after the anchor's seq {top}: rows were added "
                                "outside qa")
        check.head = {**GENESIS, "seq": last[0], "hash": last[1]}
        return
    check.head = matched
    if last[0] == 0:
        if matched["hash"] != "":
            check.broken.append(f"the anchor {name} is malformed (seq 0 with a hash)")
        return
    signer, sig = str(matched.get("signer") or ""), str(matched.get("signature") or "")
    if rows[-1].format is None and not signer:
        check.notes.append(f"the anchor's head (seq {last[0]}) {LEGACY}")
        return
    if signer != rows[-1].signer or not signature_valid(signer, sig, HEAD_DOMAIN, head_message(last[0], last[1])):
        check.broken.append(f"the anchor's head (seq {last[0]}) is not signed by the key that signed that row: it "
                            "was written outside qa")
    elif rows[-1].seq in check.not_counting:
        check.notes.append(f"the anchor's head (seq {last[0]}) is signed by a key that no longer counts "
                           f"({check.not_counting[rows[-1].seq]}); the next sign-off by a trusted key re-anchors it")


def time_problem(db: Reader, signed_at: datetime, gate_id: str, latest: datetime | None) -> str:
    """Why a row dated ``signed_at`` (UTC, naive) citing gate ``gate_id`` cannot be that old or new, given the
    latest date of a counting row before it (``latest``); '' when it can. :data:`CLOCK_SKEW` is allowed each way."""
    when = f"{signed_at:%Y-%m-%d %H:%M:%S}"
    if latest is not None and signed_at < latest - CLOCK_SKEW:
        return f"it is dated {when}, before a sign-off earlier in the chain ({latest:%Y-%m-%d %H:%M:%S})"
    g = gate_record(db, gate_id) if gate_id else None
    if g is not None and signed_at < g.decided_at - CLOCK_SKEW:
        return f"it is dated {when}, before the gate it cites ({gate_id}, decided {g.decided_at:%Y-%m-%d %H:%M:%S})"
    if signed_at > datetime.now(UTC).replace(tzinfo=None) + CLOCK_SKEW:
        return f"it is dated {when}, in the future"
    return ""


def _dated(check: ChainCheck, db: Reader, r: SignoffRow) -> None:
    """Marks a signed, otherwise counting row whose date cannot be true as not counting (its key's validity was
    checked at that date); a counting row moves ``check.latest`` on."""
    if r.format is None or r.seq in check.not_counting or r.signed_at is None:
        return
    why = time_problem(db, r.signed_at, r.gate_id or "", check.latest)
    if why.endswith("in the future"):
        check.future.append(r)
    if why:
        check.not_counting[r.seq] = (f"{why}: signed with a clock set wrong, so its key's validity window cannot "
                                     "be checked")
    else:
        check.latest = max(check.latest or r.signed_at, r.signed_at)


def check_chain(db: Reader, db_path: Path, trusted: TrustedKeys,
                anchor: tuple[dict[str, Any] | None, dict[str, Any] | None, str] | None = None) -> ChainCheck:
    """Verify every row of the chain in ``db`` against ``trusted`` and the anchor (default: the file beside
    ``db_path``; a baseline file passes the head it carries)."""
    check = ChainCheck(signoff_rows(db))
    check.notes += trusted.notes()
    expected, last_seq, prev, signed = 1, 0, "", False
    for r in check.rows:
        if r.seq == last_seq:
            check.broken.append(f"sign-off seq {r.seq} appears twice: a sequence number was re-used")
        elif r.seq != expected:
            check.broken.append(f"sign-off seq {expected}..{r.seq - 1} missing: rows were deleted before seq {r.seq}")
        if r.prev_hash != prev:
            check.broken.append(f"sign-off seq {r.seq}: prev_hash does not match the hash of the row before it "
                                "(a row was deleted or replaced)")
        _row(check, r, trusted, signed)
        _dated(check, db, r)
        signed = signed or r.format is not None
        prev, expected, last_seq = r.hash, r.seq + 1, r.seq
    _anchor(check, db_path, anchor if anchor is not None else read_anchor(db_path))
    return check


def evidence_problems(db: Reader, row: SignoffRow) -> list[str]:
    """What is wrong with the evidence an approval (row format 3 or 4) signed: the run's evidence digest, of the
    evidence format its row format names, recomputed from
    ``db`` differs, the run or its gate is gone, the gate is not this run's under the signed policy, or did not
    pass (for an approval without override). Empty when the evidence is as signed."""
    where = f"sign-off seq {row.seq} (approval of run {row.run_id})"
    ev = evidence(db, row.run_id, row.gate_id, row.policy_sha256, EVIDENCE_FORMAT_OF_ROW.get(row.format or 0, 1))
    out = [f"{where}: {p}" for p in ev.problems]
    if row.gate_id:
        g = gate_record(db, row.gate_id)
        if g is not None and (g.run_id != row.run_id or g.policy_sha256 != row.policy_sha256):
            out.append(f"{where}: cites gate {row.gate_id}, which is not a gate of this run under the signed policy")
        elif g is not None and not row.override and not gate_passed(g.verdict, g.details_json):
            out.append(f"{where}: approves without override citing gate {row.gate_id}, whose verdict is {g.verdict}")
    elif not row.override:
        out.append(f"{where}: approves without override and without a gate")
    if ev.sha256 != row.evidence_sha256:
        out.append(f"{where}: the evidence of run {row.run_id} changed after it was approved (its results, set "
                   "results, images, run identity, reference manifest or gate differ from what was signed"
                   + (", or the crops' regions and tiles" if row.format == 4 else "") + ")")
    return out
