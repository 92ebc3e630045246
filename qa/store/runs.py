"""The ``runs`` and ``cases`` tables: a run's row from start to finish, and the look-ups that find runs.

Writers take a :class:`qa.store.Store`, readers a :class:`qa.store.db.Reader` (a store or a read-only
snapshot); all speak :mod:`qa.store.records`. Queries are parameterised.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from qa.store.db import Reader, Store
from qa.store.records import CaseRecord, NewRun, ResumeRow, RunInfo

#: the columns :func:`run_info` reads (by name)
RUN_FIELDS = ("run_id", "decoder", "track", "status", "reference_set", "reference_set_sha256", "seeds",
              "weights_sha256", "identity_sha256", "started_at", "finished_at", "backend", "family", "qa_version",
              "git_commit", "n_cases", "error", "suite", "device", "scale")
RUN_COLS = ", ".join(RUN_FIELDS)
#: the columns of a run that decide whether it may be resumed (:class:`ResumeRow`)
RESUME_FIELDS = ("config_json", "status", "reference_set_sha256", "weights_sha256", "encoder_sha256", "seeds",
                 "qa_version", "identity_sha256")


def _s(x: object) -> str:
    return "" if x is None else str(x)


def marks(values: Iterable[object]) -> str:
    """Placeholders for ``in (...)``: one '?' per value (the values go in as parameters)."""
    return "(" + ", ".join("?" for _ in values) + ")"


def run_info(values: tuple[Any, ...]) -> RunInfo:
    """A :class:`RunInfo` from a row of :data:`RUN_COLS` (read by name)."""
    row = dict(zip(RUN_FIELDS, values, strict=True))
    text = {k: _s(v) for k, v in row.items()}
    return RunInfo(
        run_id=text["run_id"], decoder=text["decoder"], track=text["track"], status=text["status"],
        reference_set=text["reference_set"], reference_set_sha256=text["reference_set_sha256"],
        seeds=tuple(int(s) for s in json.loads(text["seeds"])) if row["seeds"] else (),
        weights_sha256=text["weights_sha256"], identity_sha256=text["identity_sha256"],
        started_at=row["started_at"], finished_at=row["finished_at"], backend=text["backend"],
        family=text["family"], qa_version=text["qa_version"], git_commit=text["git_commit"],
        n_cases=None if row["n_cases"] is None else int(row["n_cases"]), error=text["error"], suite=text["suite"],
        device=text["device"], scale=None if row["scale"] is None else int(row["scale"]))


def runs_where(db: Reader, where: str = "", params: list[object] | None = None, order: str = "started_at desc",
               limit: int | None = None) -> list[RunInfo]:
    """Runs matching a parameterised condition over ``runs`` columns (internal to :mod:`qa.store`)."""
    cols = RUN_COLS.replace(", scale", ", null as scale") if "scale" in getattr(db, "missing", ()) else RUN_COLS
    sql = f"select {cols} from runs" + (f" where {where}" if where else "") + f" order by {order}"
    args = list(params or [])
    if limit is not None:
        sql += " limit ?"
        args.append(int(limit))
    return [run_info(r) for r in db.query(sql, args)]


# -- writing ------------------------------------------------------------------------------------------------------
def insert_run(store: Store, run: NewRun, cases: list[CaseRecord]) -> None:
    """Store a starting run (status ``running``) and its reference set's cases (kept if already there)."""
    with store.transaction() as con:
        con.execute(
            "insert into runs (run_id, started_at, finished_at, status, suite, decoder, family, backend, track, "
            "weights_sha256, encoder_sha256, reference_set, reference_set_sha256, seeds, qa_version, git_commit, "
            "device, config_json, identity_sha256, n_shards, n_cases, error, scale) "
            "values (?, ?, null, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?)",
            [run.run_id, run.started_at, run.suite, run.decoder, run.family, run.backend, run.track,
             run.weights_sha256, run.encoder_sha256, run.reference_set, run.reference_set_sha256,
             json.dumps(run.seeds), run.qa_version, run.git_commit, run.device,
             json.dumps(run.config, default=str), run.identity_sha256, run.n_shards, run.n_cases, run.scale],
        )
        for c in cases:
            con.execute("insert or ignore into cases values (?, ?, ?, ?, ?, ?, ?, null, null)",
                        [c.reference_set_sha256, c.case_id, c.reference_set, c.image_id, c.file, c.image_sha256,
                         c.caption])


def set_running(store: Store, run_id: str) -> None:
    """Mark a run ``running`` whatever its status (a state planted by tests and repairs; a resume uses
    :func:`claim_for_resume`, which never takes a finished or approved run)."""
    with store.transaction() as con:
        con.execute("update runs set status = 'running', finished_at = null where run_id = ?", [run_id])


def set_stopped(store: Store, run_id: str, status: str, error: str) -> None:
    """Record that a run stopped (``failed`` or ``interrupted``) whatever its status (a state planted by tests and
    repairs; a process that ran the run uses :func:`stop_running`, which never touches a run it does not hold)."""
    with store.transaction() as con:
        con.execute("update runs set status = ?, error = ? where run_id = ?", [status, error, run_id])


@dataclass(frozen=True)
class RunState:
    """What decides whether a process may change a run's status: the status ('' when there is no such run), its
    stored error, and its latest approving sign-off in words ('' when none; any approval signs the run's evidence,
    the status included, so an approved run is never changed)."""

    status: str
    error: str = ""
    approval: str = ""

    @property
    def held(self) -> bool:
        """Whether a process that is writing the run may still change it: ``running`` and not approved."""
        return self.status == "running" and not self.approval


def run_state(con: duckdb.DuckDBPyConnection, run_id: str) -> RunState:
    """The :class:`RunState` of ``run_id``, read on ``con`` (inside the caller's transaction, so a change made on
    it decides on what was read)."""
    row = con.execute("select status, error from runs where run_id = ?", [run_id]).fetchone()
    if row is None:
        return RunState("")
    found = con.execute("select seq, reviewer, signed_at from signoffs where run_id = ? and decision = 'approve' "
                        "order by seq desc limit 1", [run_id]).fetchone()
    approval = ""
    if found is not None:
        seq, reviewer, at = found
        approval = f"sign-off seq {seq}, approved by {_s(reviewer) or 'an unnamed reviewer'}" + (
            f" at {at:%Y-%m-%d %H:%M}" if isinstance(at, datetime) else "")
    return RunState(_s(row[0]), _s(row[1]), approval)


def state_of(store: Store, run_id: str) -> RunState:
    """The :class:`RunState` of ``run_id`` now (read only)."""
    with store.connect() as con:
        return run_state(con, run_id)


def claim_for_resume(store: Store, run_id: str) -> RunState:
    """Mark a run ``running`` again to resume it, unless it is gone, finished or approved (one transaction).

    Returns the state found: the run was claimed when its status is neither '' nor ``finished`` and it has no
    approval; otherwise nothing was written."""
    with store.transaction() as con:
        state = run_state(con, run_id)
        if state.status and state.status != "finished" and not state.approval:
            con.execute("update runs set status = 'running', finished_at = null where run_id = ?", [run_id])
    return state


def stop_running(store: Store, run_id: str, status: str, error: str) -> RunState:
    """Record that a run this process was writing stopped (``failed`` or ``interrupted``), only while it is still
    ``running`` and not approved (compare-and-set, one transaction): a run that another process finished, stopped
    or that was approved meanwhile is left as it is. Returns the state found (written when ``held``)."""
    with store.transaction() as con:
        state = run_state(con, run_id)
        if state.held:
            con.execute("update runs set status = ?, error = ? where run_id = ?", [status, error, run_id])
    return state


# -- reading ------------------------------------------------------------------------------------------------------
def get_run(db: Reader, run_id: str) -> RunInfo | None:
    """The run ``run_id``, or None."""
    found = runs_where(db, "run_id = ?", [run_id])
    return found[0] if found else None


def resume_row(db: Reader, run_id: str) -> ResumeRow | None:
    """The identity columns of a stored run (to check a resume), or None when there is no such run."""
    rows = db.query(f"select {', '.join(RESUME_FIELDS)} from runs where run_id = ?", [run_id])
    if not rows:
        return None
    return ResumeRow(**{k: _s(v) for k, v in zip(RESUME_FIELDS, rows[0], strict=True)})


def run_config(db: Reader, run_id: str) -> dict[str, Any] | None:
    """The parsed ``config_json`` of a run; None when there is no such run or it holds no JSON object."""
    rows = db.query("select config_json from runs where run_id = ?", [run_id])
    if not rows or not rows[0][0]:
        return None
    try:
        cfg = json.loads(str(rows[0][0]))
    except json.JSONDecodeError:
        return None
    return cfg if isinstance(cfg, dict) else None


def run_configs(db: Reader, run_ids: list[str]) -> dict[str, Any]:
    """run id -> its raw ``config_json`` text (None when empty), for these runs."""
    if not run_ids:
        return {}
    rows = db.query(f"select run_id, config_json from runs where run_id in {marks(run_ids)}", list(run_ids))
    return {str(r): c for r, c in rows}


def decoder_names(db: Reader) -> list[str]:
    """Every decoder with a stored run, sorted."""
    return [str(r[0]) for r in db.query("select distinct decoder from runs order by 1")]


def latest_run(db: Reader, decoder: str | None = None) -> RunInfo | None:
    """The most recently started run (of ``decoder`` when given)."""
    found = (runs_where(db, "decoder = ?", [decoder], limit=1) if decoder
             else runs_where(db, limit=1))
    return found[0] if found else None


def recent_runs(db: Reader, decoder: str | None = None, limit: int = 30) -> list[RunInfo]:
    """The latest ``limit`` runs (of ``decoder`` when given), newest first."""
    if decoder:
        return runs_where(db, "decoder = ?", [decoder], limit=limit)
    return runs_where(db, limit=limit)


def count_runs(db: Reader, decoder: str | None = None) -> int:
    """How many runs the store holds (of ``decoder`` when given): what a list cut to the newest few left out."""
    rows = db.query("select count(*) from runs where decoder = ?", [decoder]) if decoder else \
        db.query("select count(*) from runs")
    return int(str(rows[0][0]))


def finished_runs(db: Reader, decoder: str, reference_set_sha256: str,
                  among: list[str] | None = None) -> list[RunInfo]:
    """Finished runs of ``decoder`` on this reference set, newest first (only those in ``among`` when given)."""
    where = "decoder = ? and reference_set_sha256 = ? and status = 'finished'"
    params: list[object] = [decoder, reference_set_sha256]
    if among is not None:
        if not among:
            return []
        where += f" and run_id in {marks(among)}"
        params += list(among)
    return runs_where(db, where, params)


def newest_of(db: Reader, decoder: str, run_ids: list[str]) -> RunInfo | None:
    """The newest of these runs that is a run of ``decoder`` (any status)."""
    if not run_ids:
        return None
    found = runs_where(db, f"decoder = ? and run_id in {marks(run_ids)}", [decoder, *run_ids], limit=1)
    return found[0] if found else None


def finished_with_identity(db: Reader, identity_sha256: str) -> str | None:
    """The latest finished run with this ``identity_sha256``."""
    rows = db.query("select run_id from runs where identity_sha256 = ? and status = 'finished' "
                       "order by started_at desc limit 1", [identity_sha256])
    return str(rows[0][0]) if rows else None


def finished_with_base_identity(db: Reader, base_identity_sha256: str) -> list[tuple[str, dict[str, Any]]]:
    """(run id, config) of finished runs whose identity apart from metrics is this one, newest first."""
    rows = db.query("select run_id, config_json from runs where status = 'finished' "
                       "and json_extract_string(config_json, '$.base_identity_sha256') = ? "
                       "order by started_at desc", [base_identity_sha256])
    return [(str(r), json.loads(str(c))) for r, c in rows]


def runs_in_window(db: Reader, since: datetime | None, decoders: tuple[str, ...] | None) -> list[RunInfo]:
    """Runs started at or after ``since`` (all when None) of ``decoders`` (all when None), oldest first."""
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        where.append("started_at >= ?")
        params.append(since)
    if decoders:
        where.append(f"decoder in {marks(decoders)}")
        params.extend(decoders)
    return runs_where(db, " and ".join(where), params, order="started_at, run_id")


def finished_before(db: Reader, decoder: str, before: datetime, reference_set_sha256: str) -> RunInfo | None:
    """The latest finished run of ``decoder`` on the reference content ``reference_set_sha256`` started before
    ``before`` (a run on other images is no "before": its means are of other images)."""
    found = runs_where(db, "decoder = ? and status = 'finished' and started_at < ? and reference_set_sha256 = ?",
                       [decoder, before, reference_set_sha256], order="started_at desc, run_id desc", limit=1)
    return found[0] if found else None


def previous_finished(db: Reader, decoder: str, run_id: str, started_at: datetime | None,
                      reference_set_sha256: str) -> RunInfo | None:
    """The latest finished run of ``decoder`` on the reference content ``reference_set_sha256``, other than
    ``run_id``, started no later than ``started_at``."""
    found = runs_where(db, "decoder = ? and status = 'finished' and run_id != ? and started_at <= ? and "
                       "reference_set_sha256 = ?", [decoder, run_id, started_at, reference_set_sha256],
                       order="started_at desc, run_id desc", limit=1)
    return found[0] if found else None


def decoder_scale(db: Reader, decoder: str) -> int | None:
    """The output scale recorded on the latest run of ``decoder`` that has one (None: no such run)."""
    if "scale" in getattr(db, "missing", ()):
        return None
    rows = db.query("select scale from runs where decoder = ? and scale is not null order by started_at desc limit 1",
                    [decoder])
    return int(str(rows[0][0])) if rows else None
