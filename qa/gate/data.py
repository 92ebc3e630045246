"""What a gate reads from the store: runs, per-case metric values, set values, and baselines.

Gates judge numbers from the store only; nothing here runs a decoder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from qa.errors import QAError
from qa.store import Store


class GateError(QAError):
    """A gate that cannot be decided at all: unknown run, no such baseline, bad policy (exit status 2)."""


@dataclass(frozen=True)
class RunInfo:
    """One row of ``runs`` as a gate needs it."""

    run_id: str
    decoder: str
    track: str
    status: str
    reference_set: str
    reference_set_sha256: str
    seeds: tuple[int, ...]
    weights_sha256: str
    identity_sha256: str
    started_at: object
    error: str = ""


_RUN_COLS = ("run_id, decoder, track, status, reference_set, reference_set_sha256, seeds, weights_sha256, "
             "identity_sha256, started_at, error")


def _run_info(row: tuple[object, ...]) -> RunInfo:
    seeds = tuple(int(s) for s in json.loads(str(row[6]))) if row[6] else ()
    return RunInfo(str(row[0]), str(row[1]), str(row[2] or ""), str(row[3]), str(row[4]), str(row[5]), seeds,
                   str(row[7] or ""), str(row[8] or ""), row[9], str(row[10] or ""))


def load_run(store: Store, run_id: str, decoder: str | None = None) -> RunInfo:
    """The run ``run_id``; ``latest`` = the most recently started run of ``decoder`` (of any decoder when None:
    then an error when the store holds runs of several decoders, since "latest" would be whichever ran last).
    A run id of another decoder than ``decoder`` is an error too. Raises :class:`GateError`."""
    if run_id == "latest" and decoder:
        rows = store.query(f"select {_RUN_COLS} from runs where decoder = ? order by started_at desc limit 1",
                           [decoder])
        if not rows:
            raise GateError(f"no run of decoder {decoder!r} in {store.path}", "list runs with `qa status`")
        return _run_info(rows[0])
    if run_id == "latest":
        names = [str(r[0]) for r in store.query("select distinct decoder from runs order by 1")]
        if len(names) > 1:
            raise GateError(f"--run latest is ambiguous: {store.path} holds runs of {len(names)} decoders "
                            f"({', '.join(names)})", "pass --decoder NAME (the latest run of that decoder)")
        rows = store.query(f"select {_RUN_COLS} from runs order by started_at desc limit 1")
    else:
        rows = store.query(f"select {_RUN_COLS} from runs where run_id = ?", [run_id])
    if not rows:
        raise GateError(f"no run {run_id!r} in {store.path}", "list runs with `qa status`, or check --db")
    info = _run_info(rows[0])
    if decoder and info.decoder != decoder:
        raise GateError(f"run {run_id} is a run of decoder {info.decoder!r}, not {decoder!r}",
                        "drop --decoder, or pass a run of that decoder")
    return info


def latest_finished_run(store: Store, decoder: str, reference_set_sha256: str,
                        seeds: tuple[int, ...] | None = None) -> RunInfo | None:
    """The latest finished run of ``decoder`` on the same reference set, preferring the same seeds."""
    rows = store.query(f"select {_RUN_COLS} from runs where decoder = ? and reference_set_sha256 = ? "
                       "and status = 'finished' order by started_at desc", [decoder, reference_set_sha256])
    runs = [_run_info(r) for r in rows]
    if seeds is not None:
        same = [r for r in runs if r.seeds == seeds]
        if same:
            return same[0]
    return runs[0] if runs else None


def latest_decisions(store: Store) -> dict[str, str]:
    """run id -> the decision of its latest sign-off (``approve`` or ``reject``)."""
    rows = store.query("select run_id, decision from signoffs order by seq")
    return {str(r): str(d) for r, d in rows}


def latest_approved_run(store: Store, decoder: str, reference_set_sha256: str) -> RunInfo | None:
    """The last run (by start time) of ``decoder`` on this reference set whose latest sign-off is approve."""
    approved = [r for r, d in latest_decisions(store).items() if d == "approve"]
    if not approved:
        return None
    marks = ",".join("?" * len(approved))
    rows = store.query(f"select {_RUN_COLS} from runs where decoder = ? and reference_set_sha256 = ? "
                       f"and status = 'finished' and run_id in ({marks}) order by started_at desc limit 1",
                       [decoder, reference_set_sha256, *approved])
    return _run_info(rows[0]) if rows else None


@dataclass
class MetricData:
    """One metric of one run. ``per_case``: case id -> mean over seeds of the ok values.

    ``problems``: case id -> reason, for every case with a missing/error row (the row's detail).
    ``set_value``: (value, ci_low, ci_high) from ``set_results`` for set-level metrics, else None.
    ``set_problem``: why a set-level value is missing, '' if none.
    """

    metric: str
    per_case: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    set_value: tuple[float, float, float] | None = None
    set_problem: str = ""
    n_rows: int = 0

    @property
    def has_rows(self) -> bool:
        return self.n_rows > 0 or self.set_value is not None or bool(self.set_problem)


def load_metric(store: Store, run_id: str, metric: str) -> MetricData:
    """Per-case values and problems of ``metric`` in ``run_id`` (NaN values count as problems)."""
    rows = store.query("select case_id, seed, value, status, detail from results where run_id = ? and metric = ? "
                       "order by case_id, seed", [run_id, metric])
    data = MetricData(metric=metric, n_rows=len(rows))
    sums: dict[str, list[float]] = {}
    for case_id, seed, value, status, detail in rows:
        cid = str(case_id)
        if status != "ok" or value is None or math.isnan(float(value)):  # type: ignore[arg-type]
            why = str(detail or "") or (f"status {status}" if status != "ok" else "value is NaN")
            data.problems.setdefault(cid, f"{why} (seed {seed})" if int(seed) >= 0 and "seed" not in why else why)  # type: ignore[call-overload]
            continue
        sums.setdefault(cid, []).append(float(value))  # type: ignore[arg-type]
    for cid, vals in sums.items():
        if cid not in data.problems:
            data.per_case[cid] = sum(vals) / len(vals)  # equal infinities stay that infinity
    if not rows:
        srow = store.query("select value, ci_low, ci_high, status, detail from set_results where run_id = ? "
                           "and metric = ?", [run_id, metric])
        if srow:
            value, lo, hi, status, detail = srow[0]
            if status == "ok" and value is not None and not math.isnan(float(value)):  # type: ignore[arg-type]
                data.set_value = (float(value), _f(lo), _f(hi))  # type: ignore[arg-type]
            else:
                data.set_problem = str(detail or f"status {status}")
    return data


def _f(x: object) -> float:
    return math.nan if x is None else float(x)  # type: ignore[arg-type]


def case_problems(store: Store, run_id: str) -> dict[str, str]:
    """case id -> why the case produced no output (the ``case`` rows that are not ok)."""
    rows = store.query("select case_id, detail from results where run_id = ? and metric = 'case' and status != 'ok'",
                       [run_id])
    return {str(c): str(d or "case failed") for c, d in rows}


def run_cases(store: Store, run_id: str) -> list[str]:
    """Every case id the run has a ``case`` row for."""
    return [str(r[0]) for r in store.query(
        "select distinct case_id from results where run_id = ? and metric = 'case' order by 1", [run_id])]


def run_metric_names(store: Store, run_id: str) -> list[str]:
    """Metric names with per-image or set results in the run (without the ``case`` pseudo-metric)."""
    rows = store.query("select distinct metric from results where run_id = ? and metric != 'case' union "
                       "select distinct metric from set_results where run_id = ? order by 1", [run_id, run_id])
    return [str(r[0]) for r in rows]


def set_summary(store: Store, run_id: str) -> list[tuple[str, float | None, float | None, float | None, int, str]]:
    """(metric, value, ci_low, ci_high, n, status) of every set result of the run."""
    rows = store.query("select metric, value, ci_low, ci_high, n, status from set_results where run_id = ? "
                       "order by metric", [run_id])
    out: list[tuple[str, float | None, float | None, float | None, int, str]] = []
    for m, v, lo, hi, n, s in rows:
        out.append((str(m), _opt(v), _opt(lo), _opt(hi), int(str(n or 0)), str(s)))
    return out


def _opt(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def run_settings(store: Store, run_id: str) -> dict[str, object] | None:
    """The decoder settings a run was made with (``config_json.decoder_settings``: degrade_sigma, steps, paths;
    the values that enter the run's identity), or None for a run stored before qa recorded them."""
    rows = store.query("select config_json from runs where run_id = ?", [run_id])
    if not rows or not rows[0][0]:
        return None
    try:
        cfg = json.loads(str(rows[0][0]))
    except json.JSONDecodeError:
        return None
    found = cfg.get("decoder_settings") if isinstance(cfg, dict) else None
    return dict(found) if isinstance(found, dict) else None


def settings_diff(candidate: dict[str, object] | None, baseline: dict[str, object] | None
                  ) -> list[tuple[str, object, object]]:
    """(setting, baseline value, candidate value) for every setting that differs, sorted by name; a setting
    one side lacks shows as None. Empty when either side is unknown (see :func:`settings_diff_text`)."""
    if candidate is None or baseline is None:
        return []
    keys = sorted(set(candidate) | set(baseline))
    return [(k, baseline.get(k), candidate.get(k)) for k in keys if baseline.get(k) != candidate.get(k)]


def settings_diff_text(candidate: dict[str, object] | None, baseline: dict[str, object] | None,
                       baseline_name: str = "approved") -> str:
    """One line: "degrade_sigma 0.0 -> 0.3" (baseline -> candidate), "same settings as ...", or why unknown."""
    if candidate is None or baseline is None:
        which = "candidate" if candidate is None else baseline_name
        return f"settings of the {which} run were not recorded (run made before qa stored decoder settings)"
    diff = settings_diff(candidate, baseline)
    if not diff:
        return f"same decoder settings as the {baseline_name} run"
    return "; ".join(f"{k} {json.dumps(b, default=str)} -> {json.dumps(c, default=str)}" for k, b, c in diff)
