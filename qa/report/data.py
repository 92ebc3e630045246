"""Everything a report shows, read from the store with parameterised queries (the report reads nothing else).

The selection is a time window (``since``, naive UTC like ``runs.started_at``) and an optional decoder list.
Per decoder the *latest* run in the window feeds the summary, the distributions and the image grid; every run in
the window feeds the perception-distortion plane, and the trends with each decoder's approved run besides (drawn
even when it is older than the window: a decoder that runs once a week has one run in a weekly window, and the
approved run is what its trend is read against). "What changed" compares each latest run with a
*comparison run*: the decoder's approved release (the verified approved run on the latest run's reference set,
:mod:`qa.gate.approved`; sign-offs that do not count are listed apart and never used; without a trusted-keys
file none is named, and the report says so) when there is one and it is not the latest run itself; else the latest finished run before the window (the
state the previous report showed), or, when there is none or no window, its previous finished run. The approved
run's per-image rows and images are loaded too, for the candidate-vs-approved image view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from qa.averaging import set_interval
from qa.errors import QAError, StoreError
from qa.gate.data import metric_averaging
from qa.gate.policy import Policy
from qa.metrics.base import Target
from qa.metrics.declarations import declaration
from qa.report.crops import CropData, load_crop_data
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs
from qa.store.db import Reader
from qa.store.gates import gates_of
from qa.store.records import GateRow, ImageRow, RunInfo, SetRow, SignoffRow, parse_json

__all__ = ["GateRow", "ImageRow", "ReportData", "RunInfo", "Selection", "SetRow", "SignoffRow",
           "load", "make_selection", "target_of", "now_utc", "parse_since"]

#: a week, for ``--weekly``
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Selection:
    """Which runs a report covers. ``since``: naive UTC datetime or None (all time)."""

    since: datetime | None = None
    decoders: tuple[str, ...] | None = None
    label: str = "all runs"


@dataclass
class ReportData:
    """What one report shows. Dicts are keyed by run id unless named otherwise."""

    selection: Selection
    db_path: str
    generated_at: datetime
    runs: list[RunInfo] = field(default_factory=list)  # in the window, oldest first
    latest: dict[str, RunInfo] = field(default_factory=dict)  # decoder -> latest finished run in the window (else latest)
    #: decoder -> its runs after its latest finished one that did not finish (running, killed, interrupted, failed)
    unfinished: dict[str, list[RunInfo]] = field(default_factory=dict)
    comparison: dict[str, RunInfo] = field(default_factory=dict)  # decoder -> comparison run
    comparison_kind: dict[str, str] = field(default_factory=dict)  # decoder -> how it was chosen
    set_results: dict[str, dict[str, SetRow]] = field(default_factory=dict)
    image_rows: list[ImageRow] = field(default_factory=list)  # latest runs only
    images: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (run, case, kind) -> png
    captions: dict[tuple[str, str], str] = field(default_factory=dict)  # (refset sha256, case) -> caption
    gates: list[GateRow] = field(default_factory=list)
    signoffs: list[SignoffRow] = field(default_factory=list)  # the counting sign-offs of runs in the window
    uncounted: list[tuple[SignoffRow, str]] = field(default_factory=list)  # sign-offs that do not count, and why
    approval_note: str = ""  # why no approved run is named ('' when approvals were verified)
    approved: dict[str, RunInfo] = field(default_factory=dict)  # decoder -> its approved run (any time)
    #: latest run id -> (cases with a stored outcome, cases that failed: no output, the reason in their row)
    case_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: decoder -> its approved run when that is on other content of the latest run's set name (not compared)
    approved_elsewhere: dict[str, RunInfo] = field(default_factory=dict)
    #: run id -> the kinds of its reference set (``["text"]`` for a text set; [] for none or an older run)
    set_kinds: dict[str, list[str]] = field(default_factory=dict)
    #: decoder -> what its approval rests on beyond a passing gate under the shipped policy ('' when nothing):
    #: an override, a policy file other than the shipped one (:func:`qa.gate.approved.approval_terms`)
    approval_terms: dict[str, str] = field(default_factory=dict)
    approved_rows: list[ImageRow] = field(default_factory=list)  # per-image rows of the approved runs
    settings: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # run -> decoder settings (None: old)
    #: track -> sha256 of its shipped policy (gates decided under it are the ones the report leads with)
    shipped_policy: dict[str, str] = field(default_factory=dict)
    #: regions and full-resolution tiled images of the latest and approved runs (the compare view's crops)
    crops: CropData = field(default_factory=lambda: CropData(None))
    #: track -> its shipped policy (what the compare view ranks by: the metric its worst-images rule gates)
    policies: dict[str, Policy] = field(default_factory=dict)

    def approved_before(self) -> dict[str, RunInfo]:
        """decoder -> its approved run when that is not in the window (older than it): the trends draw it too."""
        window = {r.run_id for r in self.runs}
        return {d: r for d, r in sorted(self.approved.items()) if r.run_id not in window}

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


def load(store: Store, selection: Selection, trusted: Any = None) -> ReportData:
    """Read everything the report needs in one read-only connection (a DuckDB error becomes a StoreError).
    ``trusted``: the trusted-keys file that verifies approvals (default ``$QA_TRUSTED_KEYS``, then the setting)."""
    try:
        return _load(store, selection, trusted)
    except duckdb.Error as exc:
        raise StoreError(f"cannot read the report's data from {store.path}: {exc}",
                         "is it a qa database? `qa status --db PATH` lists its runs") from exc


def _load(store: Store, selection: Selection, trusted: Any) -> ReportData:
    data = ReportData(selection=selection, db_path=str(store.path), generated_at=now_utc())
    with store.snapshot() as db:
        data.runs = store_runs.runs_in_window(db, selection.since, selection.decoders)
        for run in data.runs:  # oldest first, so the last one wins; a finished run before one that is not
            current = data.latest.get(run.decoder)
            if run.status == "finished" or current is None or current.status != "finished":
                data.latest[run.decoder] = run
                if run.status == "finished":
                    data.unfinished.pop(run.decoder, None)
            else:  # still running, killed (stays 'running'), interrupted or failed: shown, not the decoder's latest
                data.unfinished.setdefault(run.decoder, []).append(run)
        if not data.latest:
            return data
        window_ids = [r.run_id for r in data.runs]
        latest_ids = [r.run_id for r in data.latest.values()]
        _load_approved(db, data, trusted)
        _load_comparison(db, selection, data)
        all_ids = list(dict.fromkeys(window_ids + [r.run_id for r in data.comparison.values()]
                                     + [r.run_id for r in data.approved_before().values()]))  # trend anchors
        for run_id, cfg in store_runs.run_configs(db, all_ids).items():
            parsed, _ = parse_json(cfg)
            found = parsed.get("decoder_settings") if isinstance(parsed, dict) else None
            data.settings[run_id] = dict(found) if isinstance(found, dict) else None
            kinds = parsed.get("reference_set_kinds") if isinstance(parsed, dict) else None
            data.set_kinds[run_id] = [str(k) for k in kinds] if isinstance(kinds, list) else []
        approved_ids = [r.run_id for d, r in data.approved.items() if data.latest[d].run_id != r.run_id]
        data.set_results = reaveraged(db, store_results.set_results_of(db, all_ids))
        data.image_rows = store_results.image_rows_of(db, latest_ids)
        data.case_counts = {i: (len(store_results.run_cases(db, i)), len(store_results.case_problems(db, i)))
                            for i in latest_ids}
        if approved_ids:
            data.approved_rows = store_results.image_rows_of(db, approved_ids)
        data.images = store_results.report_images(db, latest_ids + approved_ids)
        data.crops = load_crop_data(db, store, latest_ids + approved_ids)
        data.captions = store_results.captions(db, sorted({r.reference_set_sha256 for r in data.latest.values()}))
        data.gates = gates_of(db, window_ids)
        data.policies = _shipped_policies({r.track for r in data.latest.values()})
        data.shipped_policy = {t: p.sha256() for t, p in data.policies.items()}
    return data


def reaveraged(db: Reader, set_results: dict[str, dict[str, SetRow]]) -> dict[str, dict[str, SetRow]]:
    """``set_results`` with the set values of metrics averaged in noise power (PSNR, :mod:`qa.averaging`) made again
    from their per-image rows by the engine's own rule (:func:`qa.averaging.set_interval`): a run stored before
    that rule holds the arithmetic mean of its dB, and a trend drawn through both would show a step no decoder made.
    A run stored under the rule gets its stored value back."""
    for run_id, rows in set_results.items():
        for metric, row in rows.items():
            if row.status != "ok" or metric_averaging(metric) == "value":
                continue
            cases: dict[str, list[float]] = {}
            for r in store_results.metric_rows(db, run_id, metric):
                if r.status == "ok" and r.value is not None and not math.isnan(r.value):
                    cases.setdefault(r.case_id, []).append(r.value)
            if cases:
                iv = set_interval(cases, metric_averaging(metric))
                lo, hi = (iv.low, iv.high) if len(cases) >= 2 else (row.ci_low, row.ci_high)
                rows[metric] = replace(row, value=iv.mean, ci_low=lo, ci_high=hi, n=len(cases))
    return set_results


def _load_approved(db: Reader, data: ReportData, trusted: Any) -> None:
    """decoder -> its verified approved run on the latest run's reference set; the window's sign-offs, those
    that count apart from those that do not. A broken chain or changed approved evidence raises GateError."""
    from qa.gate.approved import approval_terms, approved_run, chain_of
    from qa.gate.signing import SigningError, TrustedKeys
    from qa.gate.signoff_verify import check_chain

    window = {r.run_id for r in data.runs}
    try:
        check = chain_of(db, db.path, trusted)
    except SigningError as exc:
        if trusted is not None:
            raise
        check = check_chain(db, db.path, TrustedKeys(db.path))  # shown, never used: nothing can count
        broken = (f"; the chain does not verify ({len(check.broken)} problem(s): `qa signoff verify` lists them)"
                  if check.broken else "")
        data.approval_note = f"approvals not verified, so none is shown: {str(exc).splitlines()[0]}{broken}"
        data.uncounted = [(r, "not verified (no trusted-keys file)") for r in check.rows if r.run_id in window]
        return
    data.signoffs = [r for r in check.rows if r.run_id in window and check.counts(r)]
    data.uncounted = [(r, check.not_counting[r.seq]) for r in check.rows
                      if r.run_id in window and r.seq in check.not_counting]
    for decoder, latest in data.latest.items():
        found = approved_run(db, check, decoder, latest.reference_set, f"the store {db.path}")
        if found is not None and found.run.reference_set_sha256 != latest.reference_set_sha256:
            data.approved_elsewhere[decoder] = found.run  # other images under the same set name: nothing pairs
        elif found is not None:
            data.approved[decoder] = found.run
            data.approval_terms[decoder] = approval_terms(found.row, found.run.track)


def _load_comparison(db: Reader, selection: Selection, data: ReportData) -> None:
    for decoder, latest in data.latest.items():
        row = None
        approved = data.approved.get(decoder)
        if approved is not None and approved.run_id != latest.run_id:
            data.comparison[decoder] = approved
            data.comparison_kind[decoder] = "the approved run"
            continue
        if selection.since is not None:
            row = store_runs.finished_before(db, decoder, selection.since, latest.reference_set_sha256)
            kind = "latest run before the report window (what the previous report showed)"
        if row is None:
            row = store_runs.previous_finished(db, decoder, latest.run_id, latest.started_at,
                                               latest.reference_set_sha256)
            kind = "previous finished run"
        if row is not None:
            data.comparison[decoder] = row
            data.comparison_kind[decoder] = kind


def _shipped_policies(tracks: set[str]) -> dict[str, Policy]:
    """track -> the shipped policy (tracks without one, or with an unreadable one, are left out)."""
    from qa.gate.policy import default_policy_path, load_policy

    out = {}
    for track in sorted(t for t in tracks if t):
        try:
            out[track] = load_policy(default_policy_path(track))
        except QAError:
            continue
    return out


def target_of(name: str) -> Target | None:
    """What "better" means for metric ``name``, from its declaration (:mod:`qa.metrics.declarations`: read from
    its source, no metric code runs); None when the metric is not registered here or cannot be described (the
    report then shows its numbers without a direction)."""
    try:
        return declaration(name).target
    except QAError:
        return None
