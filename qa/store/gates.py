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
    fields = ("gate_id", "run_id", "baseline_run_id", "baseline_kind", "verdict", "details_json", "decided_at",
              "policy_sha256")
    out = []
    for values in db.query(f"select {', '.join(fields)} from gates where run_id in {marks(run_ids)} "
                           "order by decided_at nulls first, gate_id", list(run_ids)):
        g = dict(zip(fields, values, strict=True))
        details, err = parse_json(g["details_json"])
        text = {k: "" if v is None else str(v) for k, v in g.items()}
        out.append(GateRow(gate_id=text["gate_id"], run_id=text["run_id"], baseline_run_id=text["baseline_run_id"],
                           baseline_kind=text["baseline_kind"], verdict=text["verdict"], details=details,
                           details_error=err, decided_at=g["decided_at"],  # type: ignore[arg-type]
                           policy_sha256=text["policy_sha256"]))
    return out


#: the columns :func:`_record` reads (by name), the fields of :class:`GateRecord`
_GATE_FIELDS = ("gate_id", "run_id", "baseline_run_id", "baseline_kind", "policy_sha256", "policy_json", "verdict",
                "details_json", "decided_at")
_GATE_COLS = ", ".join(_GATE_FIELDS)


def _record(values: tuple[Any, ...]) -> GateRecord:
    r = dict(zip(_GATE_FIELDS, values, strict=True))
    text = {k: "" if v is None else str(v) for k, v in r.items()}
    return GateRecord(gate_id=text["gate_id"], run_id=text["run_id"],
                      baseline_run_id=None if r["baseline_run_id"] is None else text["baseline_run_id"],
                      baseline_kind=text["baseline_kind"], policy_sha256=text["policy_sha256"],
                      policy_json=text["policy_json"], verdict=text["verdict"], details_json=text["details_json"],
                      decided_at=r["decided_at"])


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
