"""Everything a report shows, read from the store with parameterised queries (the report reads nothing else).

The selection is a time window (``since``, naive UTC like ``runs.started_at``) and an optional decoder list.
Per decoder the *latest* run in the window feeds the summary, the distributions and the image grid; every run in
the window feeds the trends and the perception-distortion plane. "What changed" compares each latest run with a
*comparison run*: the decoder's approved release (its latest run whose latest sign-off approves it, from any
time) when there is one and it is not the latest run itself; else the latest finished run before the window (the
state the previous report showed), or, when there is none or no window, its previous finished run. The approved
run's per-image rows and images are loaded too, for the candidate-vs-approved image view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import duckdb

from qa.errors import QAError, StoreError
from qa.metrics.base import Target, metric_target
from qa.store import Store

#: a week, for ``--weekly``
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Selection:
    """Which runs a report covers. ``since``: naive UTC datetime or None (all time)."""

    since: datetime | None = None
    decoders: tuple[str, ...] | None = None
    label: str = "all runs"


@dataclass
class RunInfo:
    """One row of ``runs`` (the columns a report shows)."""

    run_id: str
    decoder: str
    backend: str
    family: str
    track: str
    started_at: datetime | None
    finished_at: datetime | None
    status: str
    reference_set: str
    reference_set_sha256: str
    weights_sha256: str
    qa_version: str
    git_commit: str
    n_cases: int | None
    error: str


@dataclass
class SetRow:
    """One row of ``set_results``: value and bootstrap interval, or a status with its reason."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: str
    detail: str


@dataclass
class ImageRow:
    """One row of ``results`` of a latest run (per image, per seed, per metric)."""

    run_id: str
    case_id: str
    seed: int
    metric: str
    value: float | None
    status: str
    detail: str


@dataclass
class GateRow:
    """One row of ``gates``; ``details`` is the parsed ``details_json`` (None when absent or not JSON)."""

    gate_id: str
    run_id: str
    baseline_run_id: str
    baseline_kind: str
    verdict: str
    details: Any
    details_error: str
    decided_at: datetime | None
    policy_sha256: str = ""


@dataclass
class SignoffRow:
    """One row of ``signoffs``."""

    seq: int
    run_id: str
    reviewer: str
    decision: str
    note: str
    override: bool
    signed_at: datetime | None


@dataclass
class MetricInfo:
    """A metric's declaration as far as a report needs it; ``higher_is_better`` None when unknown."""

    name: str
    higher_is_better: bool | None
    unit: str = ""
    description: str = ""
    known: bool = True
    target: Target | None = None  # None when unknown


@dataclass
class ReportData:
    """What one report shows. Dicts are keyed by run id unless named otherwise."""

    selection: Selection
    db_path: str
    generated_at: datetime
    runs: list[RunInfo] = field(default_factory=list)  # in the window, oldest first
    latest: dict[str, RunInfo] = field(default_factory=dict)  # decoder -> latest run in the window
    comparison: dict[str, RunInfo] = field(default_factory=dict)  # decoder -> comparison run
    comparison_kind: dict[str, str] = field(default_factory=dict)  # decoder -> how it was chosen
    set_results: dict[str, dict[str, SetRow]] = field(default_factory=dict)
    image_rows: list[ImageRow] = field(default_factory=list)  # latest runs only
    images: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (run, case, kind) -> png
    captions: dict[tuple[str, str], str] = field(default_factory=dict)  # (refset sha256, case) -> caption
    gates: list[GateRow] = field(default_factory=list)
    signoffs: list[SignoffRow] = field(default_factory=list)
    approved: dict[str, RunInfo] = field(default_factory=dict)  # decoder -> its approved run (any time)
    approved_rows: list[ImageRow] = field(default_factory=list)  # per-image rows of the approved runs
    settings: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # run -> decoder settings (None: old)
    #: track -> sha256 of its shipped policy (gates decided under it are the ones the report leads with)
    shipped_policy: dict[str, str] = field(default_factory=dict)

    @property
    def decoders(self) -> list[str]:
        """Decoders with a run in the window, sorted."""
        return sorted(self.latest)

    def metrics(self) -> list[str]:
        """Every metric name in the set results or per-image rows of the window, sorted."""
        names = {m for rows in self.set_results.values() for m in rows}
        names |= {r.metric for r in self.image_rows if r.metric != "case"}
        return sorted(names)


def now_utc() -> datetime:
    """The current time as naive UTC (the convention of ``runs.started_at``)."""
    return datetime.now(UTC).replace(tzinfo=None)


def parse_since(since: str) -> datetime:
    """Parse ``--since``: an ISO date or date-time (a zone-aware one is converted to UTC)."""
    try:
        when = datetime.fromisoformat(since.strip())
    except ValueError as exc:
        raise QAError(f"--since {since!r} is not an ISO date", "write it as 2025-01-31 or 2025-01-31T08:00") from exc
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def make_selection(weekly: bool = False, since: str | None = None, decoders: list[str] | None = None,
                   now: datetime | None = None) -> Selection:
    """The selection of ``qa report`` options. ``--weekly`` and ``--since`` exclude each other."""
    if weekly and since:
        raise QAError("--weekly and --since select different windows", "pass one of them")
    decs = tuple(dict.fromkeys(d for d in decoders if d)) if decoders else None
    if weekly:
        start = (now or now_utc()) - WEEK
        label = f"runs of the 7 days since {start:%Y-%m-%d %H:%M} UTC"
    elif since:
        start = parse_since(since)
        label = f"runs since {start:%Y-%m-%d %H:%M} UTC"
    else:
        start, label = None, "all runs"
    return Selection(since=start, decoders=decs, label=label)


def _in(values: list[str] | tuple[str, ...]) -> str:
    """Placeholders for ``in (...)``: one '?' per value (the values go in as parameters)."""
    return "(" + ", ".join("?" for _ in values) + ")"


_RUN_COLS = ("run_id, decoder, backend, family, track, started_at, finished_at, status, reference_set, "
             "reference_set_sha256, weights_sha256, qa_version, git_commit, n_cases, error")


def _run(row: tuple[Any, ...]) -> RunInfo:
    s = [("" if v is None else v) for v in row]
    return RunInfo(str(s[0]), str(s[1]), str(s[2]), str(s[3]), str(s[4]), row[5], row[6], str(s[7]), str(s[8]),
                   str(s[9]), str(s[10]), str(s[11]), str(s[12]), row[13], str(s[14]))


def load(store: Store, selection: Selection) -> ReportData:
    """Read everything the report needs in one read-only connection (a DuckDB error becomes a StoreError)."""
    try:
        return _load(store, selection)
    except duckdb.Error as exc:
        raise StoreError(f"cannot read the report's data from {store.path}: {exc}",
                         "is it a qa database? `qa status --db PATH` lists its runs") from exc


def _load(store: Store, selection: Selection) -> ReportData:
    data = ReportData(selection=selection, db_path=str(store.path), generated_at=now_utc())
    with store.connect(read_only=True) as con:
        _load_runs(con, selection, data)
        if not data.latest:
            return data
        window_ids = [r.run_id for r in data.runs]
        latest_ids = [r.run_id for r in data.latest.values()]
        _load_approved(con, data)
        _load_comparison(con, selection, data)
        all_ids = list(dict.fromkeys(window_ids + [r.run_id for r in data.comparison.values()]))
        for run_id, cfg in con.execute(f"select run_id, config_json from runs where run_id in {_in(all_ids)}",
                                       all_ids).fetchall():
            parsed, _ = _parse_json(cfg)
            found = parsed.get("decoder_settings") if isinstance(parsed, dict) else None
            data.settings[str(run_id)] = dict(found) if isinstance(found, dict) else None
        approved_ids = [r.run_id for d, r in data.approved.items() if data.latest[d].run_id != r.run_id]
        for run_id, metric, value, lo, hi, n, status, detail in con.execute(
            f"select run_id, metric, value, ci_low, ci_high, n, status, detail from set_results "
            f"where run_id in {_in(all_ids)} order by run_id, metric", all_ids).fetchall():
            data.set_results.setdefault(str(run_id), {})[str(metric)] = SetRow(
                value, lo, hi, n, str(status or "missing"), str(detail or ""))
        data.image_rows = [
            ImageRow(str(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4], str(r[5] or "missing"), str(r[6] or ""))
            for r in con.execute(
                f"select run_id, case_id, seed, metric, value, status, detail from results "
                f"where run_id in {_in(latest_ids)} order by run_id, case_id, seed, metric", latest_ids).fetchall()
        ]
        if approved_ids:
            data.approved_rows = [
                ImageRow(str(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4], str(r[5] or "missing"), str(r[6] or ""))
                for r in con.execute(
                    f"select run_id, case_id, seed, metric, value, status, detail from results where run_id in "
                    f"{_in(approved_ids)} order by run_id, case_id, seed, metric", approved_ids).fetchall()]
        image_ids = latest_ids + approved_ids
        for run_id, case_id, kind, png in con.execute(
            f"select run_id, case_id, kind, png from images where run_id in {_in(image_ids)} "
            f"and (kind in ('reference', 'output', 'baseline') or kind like 'map:%') order by run_id, case_id, kind, seed",
            image_ids).fetchall():
            data.images.setdefault((str(run_id), str(case_id), str(kind)), bytes(png))
        shas = sorted({r.reference_set_sha256 for r in data.latest.values()})
        for sha, case_id, caption in con.execute(
            f"select reference_set_sha256, case_id, caption from cases where reference_set_sha256 in {_in(shas)}",
            shas).fetchall():
            data.captions[(str(sha), str(case_id))] = str(caption or "")
        for g in con.execute(
            f"select gate_id, run_id, baseline_run_id, baseline_kind, verdict, details_json, decided_at, "
            f"policy_sha256 from gates where run_id in {_in(window_ids)} order by decided_at nulls first, gate_id",
            window_ids).fetchall():
            details, err = _parse_json(g[5])
            data.gates.append(GateRow(str(g[0]), str(g[1]), str(g[2] or ""), str(g[3] or ""), str(g[4] or ""),
                                      details, err, g[6], str(g[7] or "")))
        data.shipped_policy = _shipped_policies({r.track for r in data.latest.values()})
        for s in con.execute(
            f"select seq, run_id, reviewer, decision, note, override, signed_at from signoffs "
            f"where run_id in {_in(window_ids)} order by seq", window_ids).fetchall():
            data.signoffs.append(SignoffRow(int(s[0]), str(s[1]), str(s[2] or ""), str(s[3] or ""),
                                            str(s[4] or ""), bool(s[5]), s[6]))
    return data


def _load_runs(con: duckdb.DuckDBPyConnection, selection: Selection, data: ReportData) -> None:
    where: list[str] = []
    params: list[object] = []
    if selection.since is not None:
        where.append("started_at >= ?")
        params.append(selection.since)
    if selection.decoders:
        where.append(f"decoder in {_in(selection.decoders)}")
        params.extend(selection.decoders)
    sql = f"select {_RUN_COLS} from runs" + (" where " + " and ".join(where) if where else "")
    data.runs = [_run(r) for r in con.execute(sql + " order by started_at, run_id", params).fetchall()]
    for run in data.runs:
        data.latest[run.decoder] = run  # oldest first, so the last one wins


def _load_approved(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """decoder -> its latest finished run (on the latest run's reference set) whose latest sign-off approves it."""
    decisions: dict[str, str] = {}
    for run_id, decision in con.execute("select run_id, decision from signoffs order by seq").fetchall():
        decisions[str(run_id)] = str(decision)
    approved = [r for r, d in decisions.items() if d == "approve"]
    if not approved:
        return
    for decoder, latest in data.latest.items():
        row = con.execute(
            f"select {_RUN_COLS} from runs where decoder = ? and status = 'finished' and reference_set_sha256 = ? "
            f"and run_id in {_in(approved)} order by started_at desc limit 1",
            [decoder, latest.reference_set_sha256, *approved]).fetchone()
        if row is not None:
            data.approved[decoder] = _run(row)


def _load_comparison(con: duckdb.DuckDBPyConnection, selection: Selection, data: ReportData) -> None:
    for decoder, latest in data.latest.items():
        row = None
        approved = data.approved.get(decoder)
        if approved is not None and approved.run_id != latest.run_id:
            data.comparison[decoder] = approved
            data.comparison_kind[decoder] = "the approved run"
            continue
        if selection.since is not None:
            row = con.execute(
                f"select {_RUN_COLS} from runs where decoder = ? and status = 'finished' and started_at < ? "
                f"order by started_at desc, run_id desc limit 1", [decoder, selection.since]).fetchone()
            kind = "latest run before the report window (what the previous report showed)"
        if row is None:
            row = con.execute(
                f"select {_RUN_COLS} from runs where decoder = ? and status = 'finished' and run_id != ? "
                f"and started_at <= ? order by started_at desc, run_id desc limit 1",
                [decoder, latest.run_id, latest.started_at]).fetchone()
            kind = "previous finished run"
        if row is not None:
            data.comparison[decoder] = _run(row)
            data.comparison_kind[decoder] = kind


def _shipped_policies(tracks: set[str]) -> dict[str, str]:
    """track -> sha256 of the shipped policy (tracks without one, or with an unreadable one, are left out)."""
    from qa.gate.policy import default_policy_path, load_policy

    out = {}
    for track in sorted(t for t in tracks if t):
        try:
            out[track] = load_policy(default_policy_path(track)).sha256()
        except QAError:
            continue
    return out


def _parse_json(text: object) -> tuple[Any, str]:
    if text is None or str(text).strip() == "":
        return None, ""
    try:
        return json.loads(str(text)), ""
    except (TypeError, ValueError) as exc:
        return None, f"details_json is not valid JSON ({exc})"


@lru_cache(maxsize=256)
def metric_info(name: str) -> MetricInfo:
    """The declaration of metric ``name`` from the registry; unknown names give ``higher_is_better=None``.

    A registered class is read without instantiating it (constructors may load networks).
    """
    try:
        from qa.registries import METRICS

        factory = METRICS.factory(name)
        obj: Any = factory if isinstance(factory, type) else factory()
        hib = getattr(obj, "higher_is_better", None)
        target = metric_target(obj)
        return MetricInfo(name, bool(hib) if hib is not None else None, str(getattr(obj, "unit", "") or ""),
                          str(getattr(obj, "description", "") or ""), target=target)
    except Exception:  # noqa: BLE001 - a metric the registry cannot describe is shown as "direction unknown"
        return MetricInfo(name, None, known=False)
