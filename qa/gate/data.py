"""What a gate reads from the store: runs, per-case metric values, set values, and baselines.

Gates judge numbers from the store only; nothing here runs a decoder.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qa.averaging import Averaged, mean_of
from qa.errors import QAError
from qa.metrics.declarations import declaration
from qa.store import Store
from qa.store import results as store_results
from qa.store import runs as store_runs
from qa.store.db import Reader
from qa.store.records import RunInfo
from qa.store.results import case_problems, run_cases, run_metric_names

__all__ = ["GateError", "MetricData", "RunInfo", "case_problems", "latest_finished_run", "load_metric", "load_run",
           "reference_set_kinds", "run_cases", "run_metric_names", "run_provenance", "run_settings", "set_summary",
           "settings_diff", "settings_diff_text", "settings_json"]


class GateError(QAError):
    """A gate that cannot be decided at all: unknown run, no such baseline, bad policy (exit status 2)."""


def load_run(store: Store, run_id: str, decoder: str | None = None) -> RunInfo:
    """The run ``run_id``; ``latest`` = the most recently started run of ``decoder`` (of any decoder when None:
    then an error when the store holds runs of several decoders, since "latest" would be whichever ran last).
    A run id of another decoder than ``decoder`` is an error too. Raises :class:`GateError`."""
    if run_id == "latest" and decoder:
        found = store_runs.latest_run(store, decoder)
        if found is None:
            raise GateError(f"no run of decoder {decoder!r} in {store.path}", "list runs with `qa status`")
        return found
    if run_id == "latest":
        names = store_runs.decoder_names(store)
        if len(names) > 1:
            raise GateError(f"--run latest is ambiguous: {store.path} holds runs of {len(names)} decoders "
                            f"({', '.join(names)})", "pass --decoder NAME (the latest run of that decoder)")
        info = store_runs.latest_run(store)
    else:
        info = store_runs.get_run(store, run_id)
    if info is None:
        raise GateError(f"no run {run_id!r} in {store.path}", "list runs with `qa status`, or check --db")
    if decoder and info.decoder != decoder:
        raise GateError(f"run {run_id} is a run of decoder {info.decoder!r}, not {decoder!r}",
                        "drop --decoder, or pass a run of that decoder")
    return info


def latest_finished_run(store: Store, decoder: str, reference_set_sha256: str,
                        seeds: tuple[int, ...] | None = None) -> RunInfo | None:
    """The latest finished run of ``decoder`` on the same reference set, preferring the same seeds."""
    runs = store_runs.finished_runs(store, decoder, reference_set_sha256)
    if seeds is not None:
        same = [r for r in runs if r.seeds == seeds]
        if same:
            return same[0]
    return runs[0] if runs else None


@dataclass
class MetricData:
    """One metric of one run. ``per_case``: case id -> mean over seeds of the ok values.

    ``problems``: case id -> reason, for every case with a missing/error row (the row's detail).
    ``set_value``: (value, ci_low, ci_high) from ``set_results`` for set-level metrics, else None.
    ``set_problem``: why a set-level value is missing, '' if none.
    ``versions``: the metric versions its rows were computed with (one, unless a run mixed qa versions).
    """

    metric: str
    per_case: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    set_value: tuple[float, float, float] | None = None
    set_problem: str = ""
    n_rows: int = 0
    versions: frozenset[str] = frozenset()

    @property
    def has_rows(self) -> bool:
        return self.n_rows > 0 or self.set_value is not None or bool(self.set_problem)


def metric_averaging(metric: str) -> Averaged:
    """How ``metric``'s values are averaged over seeds and cases (its declaration, :mod:`qa.averaging`); ``"value"``
    for a name not registered here or not describable (such a metric cannot be gated: its direction problem says
    why)."""
    try:
        return declaration(metric).averaged
    except QAError:
        return "value"


def load_metric(store: Reader, run_id: str, metric: str) -> MetricData:
    """Per-case values and problems of ``metric`` in ``run_id`` (NaN values count as problems); ``store`` is the
    candidate's store or a loaded baseline file."""
    rows = store_results.metric_rows(store, run_id, metric)
    data = MetricData(metric=metric, n_rows=len(rows), versions=frozenset(r.metric_version for r in rows))
    sums: dict[str, list[float]] = {}
    for row in rows:
        cid, seed, value, status = row.case_id, row.seed, row.value, row.status
        if status != "ok" or value is None or math.isnan(value):
            why = row.detail or (f"status {status}" if status != "ok" else "value is NaN")
            data.problems.setdefault(cid, f"{why} (seed {seed})" if seed >= 0 and "seed" not in why else why)
            continue
        sums.setdefault(cid, []).append(value)
    how = metric_averaging(metric)
    for cid, vals in sums.items():
        if cid not in data.problems:  # seeds averaged as the metric declares (equal infinities stay that infinity)
            data.per_case[cid] = mean_of(vals, how)
    if not rows:
        srow = store_results.set_result(store, run_id, metric)
        if srow is not None:
            data.versions = frozenset({srow.metric_version})
            if srow.status == "ok" and srow.value is not None and not math.isnan(srow.value):
                data.set_value = (srow.value, _f(srow.ci_low), _f(srow.ci_high))
            else:
                data.set_problem = srow.detail or f"status {srow.status}"
    return data


def problems_text(problems: dict[str, str], total: int, limit: int = 3) -> str:
    """Why cases have no value, each reason said once with how many cases share it: "16 cases: weights 'alexnet'
    absent; fix: ..." rather than the same sentence (and link) per case. A case's own id and "(seed N)" are taken
    out of its reason, so that cases failing for one cause group together."""
    groups: dict[str, list[str]] = {}
    for case in sorted(problems):
        why = re.sub(r" \(seed -?\d+\)$", "", problems[case])
        why = why[len(case) + 2:] if why.startswith(f"{case}: ") else why
        groups.setdefault(why, []).append(case)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    parts = []
    for why, cases in ordered[:limit]:
        which = ", ".join(cases[:3]) + (f" +{len(cases) - 3} more" if len(cases) > 3 else "")
        parts.append(f"{why} ({'every case' if len(cases) == total else which})")  # total: cases of the run
    more = f"; {len(ordered) - limit} other reason(s)" if len(ordered) > limit else ""
    return "; ".join(parts) + more


def _f(x: float | None) -> float:
    return math.nan if x is None else x


def set_summary(store: Store, run_id: str) -> list[tuple[str, float | None, float | None, float | None, int, str]]:
    """(metric, value, ci_low, ci_high, n, status) of every set result of the run."""
    rows = store_results.set_results_of(store, [run_id]).get(run_id, {})
    return [(m, r.value, r.ci_low, r.ci_high, int(r.n or 0), r.status) for m, r in rows.items()]


def run_settings(store: Reader, run_id: str) -> dict[str, object] | None:
    """The decoder settings a run was made with (``config_json.decoder_settings``: degrade_sigma, steps, paths;
    the values that enter the run's identity), or None for a run stored before qa recorded them."""
    cfg = store_runs.run_config(store, run_id)
    found = cfg.get("decoder_settings") if cfg is not None else None
    return dict(found) if isinstance(found, dict) else None


def settings_json(settings: dict[str, object] | None) -> str | None:
    """Decoder settings as canonical JSON text (keys sorted, no spaces: equal settings, equal text), None when the
    run's settings were not recorded."""
    return None if settings is None else json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)


def utc_text(when: datetime | None) -> str | None:
    """A stored time (naive UTC) as ISO 8601 with its offset ("2026-11-16T09:00:05.123456+00:00"), None if unknown."""
    return None if when is None else when.replace(tzinfo=UTC).isoformat()


def run_provenance(store: Reader, run: RunInfo) -> dict[str, Any]:
    """What identifies ``run`` (read from ``store``, the candidate's store or a loaded baseline file), as plain JSON
    types: decoder, family, backend, track, scale, status, start and end (UTC), reference set and its content
    sha256, seeds, weights and encoder sha256, identity sha256, decoder settings (:func:`run_settings`), qa version,
    git commit, device, suite. ``qa export`` writes it beside every row and the gate's JSON and Markdown name the
    candidate's and baseline's."""
    row = store_runs.resume_row(store, run.run_id)
    return {"run_id": run.run_id, "decoder": run.decoder, "family": run.family, "backend": run.backend,
            "track": run.track, "scale": run.scale, "status": run.status, "started_at": utc_text(run.started_at),
            "finished_at": utc_text(run.finished_at), "reference_set": run.reference_set,
            "reference_set_sha256": run.reference_set_sha256, "seeds": list(run.seeds),
            "weights_sha256": run.weights_sha256, "encoder_sha256": row.encoder_sha256 if row else "",
            "identity_sha256": run.identity_sha256, "decoder_settings": run_settings(store, run.run_id),
            "qa_version": run.qa_version, "git_commit": run.git_commit, "device": run.device, "suite": run.suite}


def draws_with_seeds(store: Reader, run_id: str) -> bool:
    """Whether the run's decoder was declared stochastic (``config_json.stochastic``: its seeds are random draws);
    True for a run stored before qa recorded it (unknown: a comparison must then be of the same seeds)."""
    cfg = store_runs.run_config(store, run_id)
    found = cfg.get("stochastic") if cfg is not None else None
    return found if isinstance(found, bool) else True


def require_same_seeds(candidate: RunInfo, store: Reader, baseline: RunInfo, baseline_reader: Reader) -> None:
    """GateError when the baseline run decoded other seeds than the candidate and either decoder draws with its
    seeds: other seeds are other random samples, and a candidate re-run with new seeds until its draws pass would
    pass a gate that its first seeds failed."""
    if tuple(candidate.seeds) == tuple(baseline.seeds):
        return
    if not (draws_with_seeds(store, candidate.run_id) or draws_with_seeds(baseline_reader, baseline.run_id)):
        return
    want = ",".join(str(s) for s in baseline.seeds)
    raise GateError(
        f"baseline run {baseline.run_id} decoded seeds {list(baseline.seeds)}, the candidate {candidate.run_id} seeds "
        f"{list(candidate.seeds)}: the decoder draws with its seeds, so other seeds compare other random samples "
        "(and a candidate re-run with new seeds until its draws pass would pass)",
        f"run the candidate with the baseline's seeds (`qa run --decoder {candidate.decoder} --seeds {want}`, "
        f"`pytest suites/ --seeds {want}`), or approve a new baseline made with the seeds you want")


def reference_set_kinds(store: Reader, run_id: str) -> list[str]:
    """The kinds of reference set the run was made on (``config_json.reference_set_kinds``: ``["text"]`` for a
    text set), [] for a set of no particular kind or a run stored before qa recorded them."""
    cfg = store_runs.run_config(store, run_id)
    found = cfg.get("reference_set_kinds") if cfg is not None else None
    return [str(k) for k in found] if isinstance(found, list) else []


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
