"""The evidence an approval signs: one sha256 over everything the gate reads of a run, in a canonical order.

Covered (format 1, signed by sign-off rows of format 3; see ``docs/ci.md``):

* the run's identity: decoder, family, backend, track, weights and encoder sha256, reference set name and
  content sha256, seeds, qa version, git commit, the effective settings (``config_json``), identity sha256,
  status, number of cases, scale;
* the reference set's manifest as stored (case, image id, file, image sha256, caption), sorted by case;
* every result row (case, seed, metric, metric version, value, status, detail) and set result (metric, metric
  version, value, interval, n, status, detail);
* the sha256 of every stored image and map (case, seed, kind);
* the gate the approval rests on (its row, the sha256 of its ``details_json`` and of its ``policy_json``) and
  the policy sha256 the approval was judged under.

Format 2 (signed by sign-off rows of format 4) covers all of format 1 and what the report's crops show: every
stored region of the run (where the crops look), every full-resolution image (size, tiling, pixel hash) and the
sha256 of every stored tile of those images, so a tile edited after an approval breaks it like a result row.

Floats enter as ``repr`` (exact, round-trips), times as ISO 8601. :func:`evidence` also re-hashes the stored
``policy_json`` and names a gate whose policy text no longer hashes to its ``policy_sha256``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qa.store import evidence as store_evidence
from qa.store.db import Reader
from qa.store.gates import gate_record

#: the evidence format new approvals sign (sign-off row format 4); format 1 stays verifiable (row format 3)
EVIDENCE_FORMAT = 2
#: every evidence format this qa can recompute
EVIDENCE_FORMATS = (1, 2)


@dataclass
class Evidence:
    """The digest of a run's evidence, and what is wrong with it (a missing run, an edited policy text)."""

    run_id: str
    sha256: str
    problems: list[str] = field(default_factory=list)


def _v(x: Any) -> Any:
    """A JSON-safe, exact form of one stored value."""
    if isinstance(x, float):
        return "nan" if math.isnan(x) else repr(x)
    if isinstance(x, datetime):
        return x.isoformat(timespec="microseconds")
    if isinstance(x, bytes | bytearray | memoryview):
        return hashlib.sha256(bytes(x)).hexdigest()
    if x is None or isinstance(x, str | int | bool):
        return x
    return str(x)


def _rows(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [[_v(x) for x in r] for r in rows]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def evidence(db: Reader, run_id: str, gate_id: str, policy_sha256: str, fmt: int = EVIDENCE_FORMAT) -> Evidence:
    """The evidence digest (format ``fmt``, one of :data:`EVIDENCE_FORMATS`) of ``run_id`` approved on gate
    ``gate_id`` ('' for an override without a gate) under the policy ``policy_sha256``."""
    if fmt not in EVIDENCE_FORMATS:
        raise ValueError(f"unknown evidence format {fmt}")
    problems: list[str] = []
    run = store_evidence.run_fields(db, run_id)
    if run is None:
        problems.append(f"run {run_id} is not in {db.path} (its rows were deleted)")
        run = {}
    gate: dict[str, Any] | None = None
    if gate_id:
        g = gate_record(db, gate_id)
        if g is None:
            problems.append(f"gate {gate_id} of run {run_id} is not in {db.path} (deleted)")
        else:
            if _sha(g.policy_json) != g.policy_sha256:
                problems.append(f"gate {gate_id}: its stored policy_json no longer hashes to its policy_sha256 "
                                f"{g.policy_sha256[:12]} (edited after the gate)")
            gate = {"gate_id": g.gate_id, "run_id": g.run_id, "baseline_run_id": g.baseline_run_id,
                    "baseline_kind": g.baseline_kind, "policy_sha256": g.policy_sha256,
                    "policy_json_sha256": _sha(g.policy_json), "verdict": g.verdict,
                    "details_json_sha256": _sha(g.details_json), "decided_at": _v(g.decided_at)}
    doc: dict[str, Any] = {
        "format": fmt,
        "run": {k: _v(v) for k, v in run.items()},
        "reference": _rows(store_evidence.reference_rows(db, str(run.get("reference_set_sha256") or ""))),
        "results": _rows(store_evidence.result_rows(db, run_id)),
        "set_results": _rows(store_evidence.set_result_rows(db, run_id)),
        "images": _rows(store_evidence.image_hashes(db, run_id)),
        "gate": gate,
        "policy_sha256": policy_sha256,
    }
    if fmt >= 2:  # what the report's crops show
        doc["regions"] = _rows(store_evidence.region_rows(db, run_id))
        doc["pixels"] = _rows(store_evidence.pixel_rows(db, run_id))
        doc["tiles"] = _rows(store_evidence.tile_hashes(db, run_id))
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return Evidence(run_id, _sha(text), problems)
