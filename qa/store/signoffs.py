"""The ``signoffs`` and ``signoff_proofs`` tables: the append-only, hash-chained sign-offs.

The chain logic (hashes, signatures, the anchor) is :mod:`qa.gate.signoff`'s; this module only reads and writes
rows. Appending happens inside one connection that also checks the chain (:func:`append_signoff` takes it).
"""

from __future__ import annotations

from typing import Any

import duckdb

from qa.store.db import Reader
from qa.store.records import NewSignoff, SignoffRow
from qa.store.runs import marks


def latest_decisions(db: Reader) -> dict[str, str]:
    """run id -> the decision of its latest sign-off (``approve`` or ``reject``)."""
    return {str(r): str(d) for r, d in db.query("select run_id, decision from signoffs order by seq")}


def signoffs_of(db: Reader, run_ids: list[str]) -> list[SignoffRow]:
    """The sign-offs of these runs, oldest first."""
    if not run_ids:
        return []
    return [SignoffRow(int(str(s[0])), str(s[1]), str(s[2] or ""), str(s[3] or ""), str(s[4] or ""), bool(s[5]),
                       s[6])  # type: ignore[arg-type]
            for s in db.query(f"select seq, run_id, reviewer, decision, note, override, signed_at from signoffs "
                              f"where run_id in {marks(run_ids)} order by seq", list(run_ids))]


def signoff_rows(db: Reader, run_id: str | None = None, seq: int | None = None) -> list[tuple[Any, ...]]:
    """(seq, run_id, reviewer, decision, note, override, signed_at, gate_id, policy_sha256, signer, prev_hash,
    hash) of every sign-off (or of one run, or one ``seq``), oldest first; read as stored, not verified."""
    where: list[str] = []
    params: list[object] = []
    if run_id is not None:
        where.append("s.run_id = ?")
        params.append(run_id)
    if seq is not None:
        where.append("s.seq = ?")
        params.append(seq)
    sql = ("select s.seq, s.run_id, s.reviewer, s.decision, s.note, s.override, s.signed_at, p.gate_id, "
           "p.policy_sha256, p.signer, s.prev_hash, s.hash from signoffs s left join signoff_proofs p "
           "on p.seq = s.seq" + (" where " + " and ".join(where) if where else "") + " order by s.seq")
    return db.query(sql, params)


def chain_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """(seq, run_id, reviewer, decision, note, override, signed_at, prev_hash, hash, format, gate_id,
    policy_sha256, signer, signature) of every sign-off, by seq (proof columns None for unsigned rows)."""
    return con.execute(
        "select s.seq, s.run_id, s.reviewer, s.decision, s.note, s.override, s.signed_at, s.prev_hash, s.hash, "
        "p.format, p.gate_id, p.policy_sha256, p.signer, p.signature "
        "from signoffs s left join signoff_proofs p on p.seq = s.seq order by s.seq").fetchall()


def count_signoffs(con: duckdb.DuckDBPyConnection) -> int:
    """Number of ``signoffs`` rows."""
    (n,) = con.execute("select count(*) from signoffs").fetchone() or (0,)
    return int(n)


def run_status_in(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The status of run ``run_id`` read inside an open transaction, or None when there is no such run."""
    row = con.execute("select status from runs where run_id = ?", [run_id]).fetchone()
    return None if row is None else str(row[0])


def append_signoff(con: duckdb.DuckDBPyConnection, s: NewSignoff) -> None:
    """Insert a signed sign-off's row and its proof, inside the caller's transaction."""
    con.execute("insert into signoffs values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [s.seq, s.run_id, s.reviewer, s.decision, s.note, bool(s.override), s.signed_at, s.prev_hash,
                 s.hash])
    con.execute("insert into signoff_proofs values (?, 2, ?, ?, ?, ?)",
                [s.seq, s.gate_id, s.policy_sha256, s.signer, s.signature])
