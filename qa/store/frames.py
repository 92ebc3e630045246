"""The Python read API: stored runs and results as pandas DataFrames (read-only: nothing is written, and a
store another process is writing is read as one consistent snapshot).

Example (the numbers `qa run` stored, one row per image, seed and metric)::

    from qa.store import Store
    from qa.store.frames import results_frame, runs_frame, set_results_frame

    store = Store("reports/qa.duckdb")                     # or Store() for $QA_DB / reports/qa.duckdb
    runs = runs_frame(store)                               # one row per run, newest first
    run_id = runs.loc[runs.decoder == "pid", "run_id"].iloc[0]
    per_image = results_frame(store, run_id)               # case_id, seed, metric, value, status, detail, ...
    table = per_image.pivot_table(index="case_id", columns="metric", values="value")  # mean over seeds
    sets = set_results_frame(store, run_id)                # metric, value, ci_low, ci_high, n, status

``value`` is NaN where ``status`` is not ``ok`` (``missing`` or ``error``; ``detail`` says why): never 0.
``qa export --run ID --out FILE.parquet|csv`` writes :func:`results_frame` with the run's provenance columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from qa.store.db import Reader

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RESULT_COLUMNS", "RUN_COLUMNS", "results_frame", "runs_frame", "set_results_frame"]

#: the columns of :func:`runs_frame`
RUN_COLUMNS = ("run_id", "decoder", "family", "backend", "track", "status", "started_at", "finished_at",
               "reference_set", "reference_set_sha256", "seeds", "scale", "weights_sha256", "qa_version",
               "git_commit", "device", "n_cases", "error")
#: the columns of :func:`results_frame`
RESULT_COLUMNS = ("run_id", "case_id", "seed", "metric", "value", "status", "detail", "metric_version")


def _frame(db: Reader, sql: str, params: Sequence[object], columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(db.query(sql, list(params)), columns=list(columns))


def runs_frame(db: Reader, decoder: str | None = None) -> pd.DataFrame:
    """Every run (of ``decoder``), newest first: identity, provenance and status (:data:`RUN_COLUMNS`)."""
    where, params = ("where decoder = ?", [decoder]) if decoder else ("", [])
    return _frame(db, f"select {', '.join(RUN_COLUMNS)} from runs {where} order by started_at desc", params,
                  RUN_COLUMNS)


def results_frame(db: Reader, run_id: str) -> pd.DataFrame:
    """Every per-image row of ``run_id`` (:data:`RESULT_COLUMNS`; the ``case`` rows say whether each image
    decoded), ordered by metric, case and seed; ``value`` NaN where it is missing or failed."""
    df = _frame(db, f"select {', '.join(RESULT_COLUMNS)} from results where run_id = ? order by metric, case_id, "
                "seed", [run_id], RESULT_COLUMNS)
    df["value"] = df["value"].astype("float64")
    return df


def set_results_frame(db: Reader, run_id: str) -> pd.DataFrame:
    """The set-level results of ``run_id``: metric, value, ci_low, ci_high, n, status, detail."""
    cols = ("metric", "value", "ci_low", "ci_high", "n", "status", "detail", "metric_version")
    return _frame(db, f"select {', '.join(cols)} from set_results where run_id = ? order by metric", [run_id], cols)
