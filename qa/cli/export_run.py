"""``qa export``: one run's per-image rows with what identifies the run, as Parquet or CSV.

Every row carries the run's provenance (:func:`qa.gate.data.run_provenance`), so two exports of different runs
(another decoder setting, an interrupted run, other seeds) never read alike: decoder, family, backend, track,
scale, ``run_status`` (the run's; ``status`` is the row's), ``started_at``/``finished_at`` (ISO 8601, UTC),
reference set and its sha256, ``seeds`` and ``decoder_settings`` (canonical JSON text), weights, encoder and
identity sha256, qa version, git commit, device and suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qa.gate.data import RunInfo, load_run, run_provenance, settings_json
from qa.plain_text import csv_frame
from qa.store import Store
from qa.store.db import Reader
from qa.store.frames import results_frame
from qa.store.runs import get_run

#: the provenance columns after the per-image columns, in this order (the row's own ``status`` stays ``status``)
PROVENANCE_COLUMNS = ("decoder", "family", "backend", "track", "scale", "run_status", "started_at", "finished_at",
                      "reference_set", "reference_set_sha256", "seeds", "decoder_settings", "weights_sha256",
                      "encoder_sha256", "identity_sha256", "qa_version", "git_commit", "device", "suite")


def provenance_columns(db: Reader, run: RunInfo) -> dict[str, Any]:
    """The :data:`PROVENANCE_COLUMNS` values of ``run``: seeds and decoder settings as canonical JSON text (settings
    None when the run did not record them)."""
    p = run_provenance(db, run)
    values = {**p, "run_status": p["status"], "seeds": json.dumps(p["seeds"], separators=(",", ":")),
              "decoder_settings": settings_json(p["decoder_settings"])}
    return {c: values[c] for c in PROVENANCE_COLUMNS}


def export_run(store: Store, run_id: str, decoder: str | None, out: Path) -> str:
    """Write the rows of ``run_id`` (``latest``: of ``decoder``) with its provenance to ``out`` (``.parquet``: text
    as it is; ``.csv``: a text cell a spreadsheet would run as a formula starts with ``'``,
    :func:`qa.plain_text.csv_frame`); returns the line ``qa export`` prints. Rows and provenance are read from one
    snapshot, so a run that is still writing exports with the status its rows had."""
    found = load_run(store, run_id, decoder)
    with store.snapshot() as db:
        run = get_run(db, found.run_id) or found
        frame = results_frame(db, run.run_id)
        columns = provenance_columns(db, run)
    for col, value in columns.items():
        frame[col] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        csv_frame(frame).to_csv(out, index=False)  # a formula-like id is text in a spreadsheet
    return f"wrote {len(frame)} rows of run {run.run_id} ({run.decoder}) to {out}"
