"""The ``shards``, ``results``, ``set_results``, ``images`` and ``cases`` tables: what a run computed.

A shard's rows, thumbnails and ``shards`` row commit in one transaction (:func:`commit_shard`); a run's set
results and its ``finished`` status in another (:func:`finish_run`). Queries are parameterised.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa

from qa.store import pixels as store_pixels
from qa.store.db import Reader, Store, insert_arrow
from qa.store.records import ImageRow, MetricRow, RegionRow, ResultRow, SetResult, SetRow, TiledImage
from qa.store.runs import RunState, marks, run_state


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- writing ------------------------------------------------------------------------------------------------------
def done_shards(db: Reader, run_id: str) -> set[int]:
    """Indices of the shards of ``run_id`` already committed."""
    return {int(str(r[0])) for r in db.query("select shard_index from shards where run_id = ?", [run_id])}


def commit_shard(store: Store, run_id: str, index: int, rows: Sequence[ResultRow],
                 images: Sequence[tuple[str, int, str, bytes]], n_cases: int, worker: str = "",
                 regions: Sequence[RegionRow] = (), tiled: Sequence[TiledImage] = ()) -> bool:
    """Write one shard's result rows, images (case, seed, kind, png), regions and full-resolution tiled images
    (:mod:`qa.store.pixels`) and its ``shards`` row in one transaction.

    Returns False (and writes nothing) when the shard was committed already: nothing is counted twice.
    ``worker``: who computed it (default: this host and process)."""
    # rows go in as Arrow tables (one statement each): DuckDB's executemany runs one insert per row (~1 ms each)
    result_table = pa.table({
        "run_id": pa.array([run_id] * len(rows), pa.string()),
        "case_id": pa.array([r.case_id for r in rows], pa.string()),
        "seed": pa.array([r.seed for r in rows], pa.int32()),
        "metric": pa.array([r.metric for r in rows], pa.string()),
        "value": pa.array([r.value for r in rows], pa.float64()),
        "status": pa.array([r.status for r in rows], pa.string()),
        "detail": pa.array([r.detail for r in rows], pa.string()),
        "metric_version": pa.array([r.metric_version for r in rows], pa.string()),
    })
    latest = {(c, s, k): png for c, s, k, png in images}  # a repeated key keeps its last image, as a replace would
    image_table = pa.table({
        "run_id": pa.array([run_id] * len(latest), pa.string()),
        "case_id": pa.array([k[0] for k in latest], pa.string()),
        "seed": pa.array([k[1] for k in latest], pa.int32()),
        "kind": pa.array([k[2] for k in latest], pa.string()),
        "png": pa.array(list(latest.values()), pa.binary()),
    })
    with store.transaction() as con:
        if con.execute("select 1 from shards where run_id = ? and shard_index = ?", [run_id, index]).fetchone():
            return False
        if rows:
            insert_arrow(con, "insert into results", result_table)
        if latest:
            insert_arrow(con, "insert or replace into images", image_table)
        store_pixels.insert(con, run_id, regions, tiled)
        con.execute("insert into shards values (?, ?, ?, ?, ?)",
                    [run_id, index, n_cases, _now(), worker or f"{socket.gethostname()}:{os.getpid()}"])
    return True


def finish_run(store: Store, run_id: str, set_results: Sequence[SetResult]) -> RunState:
    """Replace the run's set results and mark it ``finished`` (one transaction), only while it is ``running`` and
    not approved (compare-and-set): a run another process finished or stopped meanwhile, or one approved, keeps
    its set results and status. Returns the state found (written when ``held``)."""
    with store.transaction() as con:
        state = run_state(con, run_id)
        if not state.held:
            return state
        con.execute("delete from set_results where run_id = ?", [run_id])
        if set_results:
            con.executemany("insert into set_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [[r.run_id, r.metric, r.value, r.ci_low, r.ci_high, r.n, r.status, r.detail,
                              r.metric_version] for r in set_results])
        con.execute("update runs set status = 'finished', finished_at = ?, error = null where run_id = ?",
                    [_now(), run_id])
    return state


def shard_writer(db: Reader, run_id: str, index: int) -> str:
    """Who committed shard ``index`` of the run, and when, in words ('' when it is not committed)."""
    rows = db.query("select worker, finished_at from shards where run_id = ? and shard_index = ?", [run_id, index])
    if not rows:
        return ""
    worker, at = rows[0]
    return f"worker {worker or '?'}" + (f" at {at:%H:%M:%S}" if isinstance(at, datetime) else "")


# -- reading ------------------------------------------------------------------------------------------------------
#: the columns :func:`_metric_row` reads (by name)
METRIC_ROW_FIELDS = ("case_id", "seed", "metric", "value", "status", "detail", "metric_version")
METRIC_ROW_COLS = ", ".join(METRIC_ROW_FIELDS)


def _metric_row(values: tuple[object, ...]) -> MetricRow:
    r = dict(zip(METRIC_ROW_FIELDS, values, strict=True))
    return MetricRow(case_id=str(r["case_id"]), seed=int(str(r["seed"])), metric=str(r["metric"]),
                     value=None if r["value"] is None else float(str(r["value"])), status=str(r["status"]),
                     detail="" if r["detail"] is None else str(r["detail"]),
                     metric_version="" if r["metric_version"] is None else str(r["metric_version"]))


def image_metric_rows(db: Reader, run_id: str) -> list[MetricRow]:
    """Every per-image row of the run but the ``case`` rows, ordered by metric, case and seed."""
    return [_metric_row(r) for r in db.query(
        f"select {METRIC_ROW_COLS} from results where run_id = ? and metric != 'case' "
        "order by metric, case_id, seed", [run_id])]


def metric_rows(db: Reader, run_id: str, metric: str) -> list[MetricRow]:
    """The rows of one metric of the run, ordered by case and seed."""
    return [_metric_row(r) for r in db.query(
        f"select {METRIC_ROW_COLS} from results where run_id = ? and metric = ? "
        "order by case_id, seed", [run_id, metric])]


def set_result(db: Reader, run_id: str, metric: str) -> SetRow | None:
    """The ``set_results`` row of one metric of the run, or None."""
    rows = db.query("select value, ci_low, ci_high, n, status, detail, metric_version from set_results "
                    "where run_id = ? and metric = ?", [run_id, metric])
    if not rows:
        return None
    v, lo, hi, n, status, detail, version = rows[0]
    return SetRow(_opt(v), _opt(lo), _opt(hi), None if n is None else int(str(n)), str(status),
                  "" if detail is None else str(detail), "" if version is None else str(version))


def set_results_of(db: Reader, run_ids: list[str]) -> dict[str, dict[str, SetRow]]:
    """run id -> metric -> its set result (with the metric's version), for these runs (metrics in name order)."""
    out: dict[str, dict[str, SetRow]] = {}
    if not run_ids:
        return out
    for run_id, metric, value, lo, hi, n, status, detail, version in db.query(
            f"select run_id, metric, value, ci_low, ci_high, n, status, detail, metric_version from set_results "
            f"where run_id in {marks(run_ids)} order by run_id, metric", list(run_ids)):
        out.setdefault(str(run_id), {})[str(metric)] = SetRow(
            _opt(value), _opt(lo), _opt(hi), None if n is None else int(str(n)), str(status or "missing"),
            str(detail or ""), str(version or ""))
    return out


def case_problems(db: Reader, run_id: str) -> dict[str, str]:
    """case id -> why the case produced no output (the ``case`` rows that are not ok)."""
    rows = db.query("select case_id, detail from results where run_id = ? and metric = 'case' and status != 'ok'",
                    [run_id])
    return {str(c): str(d or "case failed") for c, d in rows}


def failure_summary(db: Reader, run_id: str) -> str:
    """One line when cases of the run failed (stored as errors; the gate fails on them): how many, the first
    reason, and where to read the rest; '' when none did."""
    bad = case_problems(db, run_id)
    if not bad:
        return ""
    return (f"{len(bad)} of {len(run_cases(db, run_id))} cases of {run_id} failed (first: {bad[min(bad)]}); "
            f"every reason: `qa gate --run {run_id}` or `qa report`")


def run_cases(db: Reader, run_id: str) -> list[str]:
    """Every case id the run has a ``case`` row for."""
    return [str(r[0]) for r in db.query(
        "select distinct case_id from results where run_id = ? and metric = 'case' order by 1", [run_id])]


def run_metric_names(db: Reader, run_id: str) -> list[str]:
    """Metric names with per-image or set results in the run (without the ``case`` pseudo-metric)."""
    rows = db.query("select distinct metric from results where run_id = ? and metric != 'case' union "
                    "select distinct metric from set_results where run_id = ? order by 1", [run_id, run_id])
    return [str(r[0]) for r in rows]


def image_rows_of(db: Reader, run_ids: list[str]) -> list[ImageRow]:
    """Every ``results`` row of these runs, ordered by run, case, seed and metric."""
    if not run_ids:
        return []
    return [ImageRow(str(r[0]), str(r[1]), int(str(r[2])), str(r[3]), _opt(r[4]), str(r[5] or "missing"),
                     str(r[6] or ""))
            for r in db.query(f"select run_id, case_id, seed, metric, value, status, detail from results "
                              f"where run_id in {marks(run_ids)} order by run_id, case_id, seed, metric",
                              list(run_ids))]


def report_images(db: Reader, run_ids: list[str]) -> dict[tuple[str, str, str], bytes]:
    """(run, case, kind) -> png of the reference, output, baseline and ``map:*`` images of these runs (the
    lowest seed's when a kind has several)."""
    out: dict[tuple[str, str, str], bytes] = {}
    if not run_ids:
        return out
    for run_id, case_id, kind, png in db.query(
            f"select run_id, case_id, kind, png from images where run_id in {marks(run_ids)} "
            f"and (kind in ('reference', 'output', 'baseline') or kind like 'map:%') order by run_id, case_id, kind, seed",
            list(run_ids)):
        out.setdefault((str(run_id), str(case_id), str(kind)), bytes(png))  # type: ignore[call-overload]
    return out


def captions(db: Reader, reference_set_sha256s: list[str]) -> dict[tuple[str, str], str]:
    """(reference set sha256, case id) -> caption of the cases of these reference sets."""
    out: dict[tuple[str, str], str] = {}
    if not reference_set_sha256s:
        return out
    for sha, case_id, caption in db.query(
            f"select reference_set_sha256, case_id, caption from cases where reference_set_sha256 in "
            f"{marks(reference_set_sha256s)}", list(reference_set_sha256s)):
        out[(str(sha), str(case_id))] = str(caption or "")
    return out


def _opt(x: object) -> float | None:
    return None if x is None else float(str(x)) if not isinstance(x, int | float) else float(x)
