"""The ``gates`` table: one verdict per (run, policy) decision, with every check in ``details_json``."""

from __future__ import annotations

from typing import Any

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


_GATE_COLS = ("gate_id, run_id, baseline_run_id, baseline_kind, policy_sha256, policy_json, verdict, details_json, "
              "decided_at")


def _record(r: tuple[Any, ...]) -> GateRecord:
    return GateRecord(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), str(r[3] or ""), str(r[4] or ""),
                      str(r[5] or ""), str(r[6] or ""), str(r[7] or ""), r[8])


def gate_record(db: Reader, gate_id: str) -> GateRecord | None:
    """The ``gates`` row ``gate_id`` as stored, or None."""
    rows = db.query(f"select {_GATE_COLS} from gates where gate_id = ?", [gate_id])
    return _record(rows[0]) if rows else None


def latest_gate_against(db: Reader, run_id: str, policy_sha256: str, baseline_kind: str,
                        baseline_run_id: str | None) -> GateRecord | None:
    """The run's latest gate under this policy against this baseline (kind and run; ``None`` run: a gate against
    no baseline run), or None."""
    same_run = "baseline_run_id is null" if baseline_run_id is None else "baseline_run_id = ?"
    params: list[object] = [run_id, policy_sha256, baseline_kind]
    if baseline_run_id is not None:
        params.append(baseline_run_id)
    rows = db.query(f"select {_GATE_COLS} from gates where run_id = ? and policy_sha256 = ? and baseline_kind = ? "
                    f"and {same_run} order by decided_at desc, gate_id desc limit 1", params)
    return _record(rows[0]) if rows else None
