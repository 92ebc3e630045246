"""The ``signoffs`` and ``signoff_proofs`` tables: the append-only, hash-chained sign-offs.

The chain logic (hashes, signatures, the anchor, which rows count) is :mod:`qa.gate`'s; this module only reads
and writes rows. :func:`signoff_rows` is the one reader (every command reads sign-offs through it, as
:class:`qa.store.records.SignoffRow`); :func:`append_signoff` writes inside the caller's transaction, which also
checked the chain.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from qa.store.db import Reader
from qa.store.records import NewSignoff, SignoffRow
from qa.store.runs import marks

#: proof columns by the migration that added them (a file of an older schema, read as it is, lacks them)
_PROOF_COLS = ("format", "gate_id", "policy_sha256", "signer", "signature", "evidence_sha256", "decoder",
               "reference_set", "reference_set_sha256")


def _proof_columns(db: Reader) -> tuple[list[str], bool]:
    """The select list of the proof columns (null for those the file lacks), and whether the table exists."""
    have = {str(r[0]) for r in db.query(
        "select column_name from information_schema.columns where table_name = 'signoff_proofs'")}
    return [f"p.{c}" if c in have else f"null as {c}" for c in _PROOF_COLS], bool(have)


def signoff_rows(db: Reader, run_ids: list[str] | None = None, seq: int | None = None) -> list[SignoffRow]:
    """Every sign-off (or those of ``run_ids``, or the one ``seq``) with its proof, by seq; read as stored, not
    verified. Works on a file of any schema version (proof columns it lacks read as null)."""
    cols, has_proofs = _proof_columns(db)
    where: list[str] = []
    params: list[object] = []
    if run_ids is not None:
        if not run_ids:
            return []
        where.append(f"s.run_id in {marks(run_ids)}")
        params += list(run_ids)
    if seq is not None:
        where.append("s.seq = ?")
        params.append(int(seq))
    join = " left join signoff_proofs p on p.seq = s.seq" if has_proofs else ""
    sql = (f"select s.seq, s.run_id, s.reviewer, s.decision, s.note, s.override, s.signed_at, s.prev_hash, s.hash, "
           f"{', '.join(cols)} from signoffs s{join}" + (" where " + " and ".join(where) if where else "")
           + " order by s.seq")
    out = []
    for r in db.query(sql, params):
        at = r[6] if isinstance(r[6], datetime) else None
        out.append(SignoffRow(
            seq=int(str(r[0])), run_id=_s(r[1]), reviewer=_s(r[2]), decision=_s(r[3]), note=_s(r[4]),
            override=bool(r[5]), signed_at=at, prev_hash=_s(r[7]), hash=_s(r[8]),
            format=None if r[9] is None else int(str(r[9])), gate_id=_s(r[10]), policy_sha256=_s(r[11]),
            signer=_s(r[12]), signature=_s(r[13]), evidence_sha256=_s(r[14]), decoder=_s(r[15]),
            reference_set=_s(r[16]), reference_set_sha256=_s(r[17])))
    return out


def _s(x: object) -> str:
    return "" if x is None else str(x)


def append_signoff(con: duckdb.DuckDBPyConnection, s: NewSignoff) -> None:
    """Insert a signed sign-off's row and its proof (of ``s.format``), inside the caller's transaction."""
    con.execute("insert into signoffs values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [s.seq, s.run_id, s.reviewer, s.decision, s.note, bool(s.override), s.signed_at, s.prev_hash,
                 s.hash])
    con.execute("insert into signoff_proofs (seq, format, gate_id, policy_sha256, signer, signature, evidence_sha256, "
                "decoder, reference_set, reference_set_sha256) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [s.seq, s.format, s.gate_id, s.policy_sha256, s.signer, s.signature, s.evidence_sha256, s.decoder,
                 s.reference_set, s.reference_set_sha256])
