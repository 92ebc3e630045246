"""The ``gates`` table: one verdict per (run, policy) decision, with every check in ``details_json``."""

from __future__ import annotations

from typing import Any

import duckdb

from qa.store.db import Reader, Store
from qa.store.records import GateRecord, GateRow, parse_json
from qa.store.runs import marks


def insert_gate(store: Store, gate: GateRecord) -> None:
    """Append one ``gates`` row."""
    with store.transaction() as con:
        con.execute("insert into gates values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [gate.gate_id, gate.run_id, gate.baseline_run_id, gate.baseline_kind, gate.policy_sha256,
                     gate.policy_json, gate.verdict, gate.details_json, gate.decided_at])


def gates_of(db: Reader, run_ids: list[str]) -> list[GateRow]:
    """The gates of these runs, oldest decision first (undated ones first, then by gate id)."""
    if not run_ids:
        return []
    out = []
    for g in db.query(
            f"select gate_id, run_id, baseline_run_id, baseline_kind, verdict, details_json, decided_at, "
            f"policy_sha256 from gates where run_id in {marks(run_ids)} order by decided_at nulls first, gate_id",
            list(run_ids)):
        details, err = parse_json(g[5])
        out.append(GateRow(str(g[0]), str(g[1]), str(g[2] or ""), str(g[3] or ""), str(g[4] or ""), details, err,
                           g[6], str(g[7] or "")))  # type: ignore[arg-type]
    return out


def raw_gates_of(db: Reader, run_ids: list[str]) -> list[tuple[Any, ...]]:
    """(gate_id, run_id, verdict, baseline_kind, baseline_run_id, decided_at, details_json) of these runs'
    gates, oldest decision first (nulls last), as stored."""
    if not run_ids:
        return []
    return db.query(f"select gate_id, run_id, verdict, baseline_kind, baseline_run_id, decided_at, details_json "
                    f"from gates where run_id in {marks(run_ids)} order by decided_at", list(run_ids))


def latest_gate_under(con: duckdb.DuckDBPyConnection, run_id: str, policy_sha256: str
                      ) -> tuple[str, str, str | None] | None:
    """(gate_id, verdict, details_json) of the run's latest gate under this policy, inside an open transaction."""
    row = con.execute("select gate_id, verdict, details_json from gates where run_id = ? and policy_sha256 = ? "
                      "order by decided_at desc limit 1", [run_id, policy_sha256]).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), row[2])


def gates_by_id(con: duckdb.DuckDBPyConnection, gate_ids: list[str]) -> dict[str, tuple[str, str, str, str | None]]:
    """gate id -> (run_id, policy_sha256, verdict, details_json), inside an open connection."""
    out: dict[str, tuple[str, str, str, str | None]] = {}
    if not gate_ids:
        return out
    for gid, rid, pol, verdict, details in con.execute(
            "select gate_id, run_id, policy_sha256, verdict, details_json from gates where gate_id in "
            f"{marks(gate_ids)}", list(gate_ids)).fetchall():
        out[str(gid)] = (str(rid), str(pol), str(verdict), details)
    return out
