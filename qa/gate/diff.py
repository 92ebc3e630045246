"""``qa diff RUN_A RUN_B``: every metric of two stored runs side by side, paired per image, without judging or
storing anything (no policy, no verdict, no gate row).

B is read as the candidate and A as what it is compared with: "worse by" is how much worse B is than A (metric
units, positive = worse, the sign every gate output uses), with the 95% percentile-bootstrap interval of the
paired per-image differences, how many images got worse, and the image that got worst. Where nothing pairs, the
output says why: once above the table when the runs are on other reference sets (or share no image), and per metric
the reason stored with its missing rows (weights absent and the fix, said once when both runs share it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from qa.averaging import mean_of, paired_interval
from qa.gate.data import (
    GateError,
    MetricData,
    RunInfo,
    load_metric,
    metric_averaging,
    problems_text,
    run_cases,
    run_metric_names,
)
from qa.gate.formats import clean_json, md
from qa.gate.stats import paired_differences
from qa.gate.units import fmt_num, metric_target_unit
from qa.store.db import Reader


@dataclass
class MetricDiff:
    """One metric of B against A. Means in metric units; ``worse_by`` positive = B worse (None: no direction or
    nothing paired); ``note`` says why a number is absent."""

    metric: str
    unit: str
    better: str
    a_mean: float | None = None
    b_mean: float | None = None
    worse_by: float | None = None
    worse_by_ci: tuple[float, float] | None = None
    n: int = 0
    n_worse: int = 0
    worst_case: str = ""
    worst_by: float | None = None
    note: str = ""


def _mean(values: dict[str, float], keys: list[str], metric: str) -> float | None:
    return mean_of([values[k] for k in keys], metric_averaging(metric)) if keys else None


def diff_metric(db: Reader, a: RunInfo, b: RunInfo, metric: str, confidence: float = 0.95) -> MetricDiff:
    """:class:`MetricDiff` of ``metric``: paired per image where both runs have per-image values, else their set
    values (no interval)."""
    try:
        target, unit = metric_target_unit(metric)
    except GateError as exc:
        return MetricDiff(metric, "", "?", note=str(exc))
    out = MetricDiff(metric, unit, target.label())
    da, dbm = load_metric(db, a.run_id, metric), load_metric(db, b.run_id, metric)
    keys = sorted(set(da.per_case) & set(dbm.per_case))
    if not keys:
        if da.set_value is not None and dbm.set_value is not None:
            out.a_mean, out.b_mean = da.set_value[0], dbm.set_value[0]
            if target.has_direction:
                out.worse_by = target.goodness(out.a_mean) - target.goodness(out.b_mean) + 0.0
            out.note = "set values (no per-image pairs)"
        else:
            out.note = _missing_note(da, dbm)
        return out
    out.a_mean, out.b_mean, out.n = _mean(da.per_case, keys, metric), _mean(dbm.per_case, keys, metric), len(keys)
    if not target.has_direction:
        out.note = "no direction (target none): means only"
        return out
    good_a = {k: target.goodness(da.per_case[k]) for k in keys}
    good_b = {k: target.goodness(dbm.per_case[k]) for k in keys}
    diffs, order = paired_differences(good_b, good_a, True)  # positive = B better
    iv = paired_interval([good_b[k] for k in order], [good_a[k] for k in order], metric_averaging(metric), confidence)
    out.worse_by, out.worse_by_ci = -iv.mean + 0.0, (-iv.high + 0.0, -iv.low + 0.0)
    out.n_worse = int(np.sum(diffs < 0))
    i = int(np.argmin(diffs))
    if diffs[i] < 0:
        out.worst_case, out.worst_by = order[i], -float(diffs[i])
    lost = len(set(da.per_case) ^ set(dbm.per_case))
    notes = [f"{lost} image(s) with a value in only one run left out"] if lost else []
    va, vb = sorted(da.versions - {""}), sorted(dbm.versions - {""})
    if va and vb and va != vb:  # shown, not judged (the gate refuses such a comparison)
        notes.append(f"metric versions differ: A {', '.join(va)}, B {', '.join(vb)}")
    out.note = "; ".join(notes)
    return out


def _missing_note(da: MetricData, db_: MetricData) -> str:
    """Why a metric has nothing to compare: each run's stored reason (a set value's, or the most common reason of
    its per-image rows, e.g. weights absent), said once when both runs share it; else that no image has a value in
    both runs."""
    reasons: dict[str, str] = {}
    for side, d in (("A", da), ("B", db_)):
        if d.per_case or d.set_value is not None:
            continue  # this run has values: the other run says why nothing pairs
        if d.set_problem:
            reasons[side] = d.set_problem
        elif d.problems:  # every per-image row of this run is missing or failed: its most common reason
            reasons[side] = problems_text(d.problems, len(d.problems), limit=1)
        elif not d.has_rows:
            reasons[side] = "no value stored"
    if len(reasons) == 2 and len(set(reasons.values())) == 1:
        return reasons["A"]  # the same reason said once
    if reasons:
        return "; ".join(f"{side}: {why}" for side, why in reasons.items())
    if da.per_case and db_.per_case:
        return "no image has a value in both runs"
    return "no paired values"


def pairing_note(db: Reader, a: RunInfo, b: RunInfo) -> str:
    """Why per-image values of A and B may not pair ('' when they ran on the same reference content): other
    reference sets, other content of one set, or no image in common; said once above the table."""
    common = set(run_cases(db, a.run_id)) & set(run_cases(db, b.run_id))
    paired = (f"the {len(common)} image id(s) in both are paired, and may be different images" if common
              else "they share no image, so no per-image value can be paired")
    if a.reference_set != b.reference_set:
        return (f"A and B ran on different reference sets: A on {a.reference_set!r}, B on {b.reference_set!r}; "
                + paired)
    if a.reference_set_sha256 and b.reference_set_sha256 and a.reference_set_sha256 != b.reference_set_sha256:
        return (f"A and B ran on different content of reference set {a.reference_set!r} (A sha256 "
                f"{a.reference_set_sha256[:12]}, B {b.reference_set_sha256[:12]}); " + paired)
    if not common:
        return f"A and B (reference set {a.reference_set!r}) have no image in common: no per-image value can be paired"
    return ""


def diff_runs(db: Reader, a: RunInfo, b: RunInfo, metrics: list[str] | None = None) -> list[MetricDiff]:
    """Every metric both runs have (or ``metrics``), in name order."""
    if metrics is None:
        names = sorted(set(run_metric_names(db, a.run_id)) & set(run_metric_names(db, b.run_id)))
    else:
        names = metrics
    return [diff_metric(db, a, b, m) for m in names]


def diff_output(a: RunInfo, b: RunInfo, diffs: list[MetricDiff], fmt: str = "text", note: str = "") -> str:
    """The diff as ``text`` (a table), ``json`` or ``markdown``; ``note``: :func:`pairing_note`, said once."""
    if fmt == "json":
        return json.dumps(clean_json({"a": a.run_id, "b": b.run_id, "stored": False,
                                      "reference_sets": {"a": a.reference_set, "b": b.reference_set}, "note": note,
                                      "metrics": [asdict(d) for d in diffs]}), indent=2, allow_nan=False)
    head = (f"B {b.run_id} ({b.decoder}) against A {a.run_id} ({a.decoder}); worse by: B worse than A "
            "(+ = worse), 95% CI of the paired per-image differences; nothing is stored")
    header = ["metric", "better", "A", "B", "worse by [CI]", "images worse", "worst image", "note"]
    if fmt == "markdown":
        rows = [_row(d, fmt_num(d.a_mean, d.unit), fmt_num(d.b_mean, d.unit), d.note) for d in diffs]
        lines = [f"### qa diff: {md(head)}", "", *([f"**Note:** {md(note)}", ""] if note else []),
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
        return "\n".join(lines)
    # text: a terminal's width; each unit and each long note said once under the table, referred to by number
    notes: dict[str, int] = {}
    rows = []
    for d in diffs:
        cell = d.note
        if len(cell) > MAX_NOTE:
            cell = f"[{notes.setdefault(cell, len(notes) + 1)}]"
        rows.append(_row(d, fmt_num(d.a_mean), fmt_num(d.b_mean), cell))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    table = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    units = [f"  {d.metric}: {d.unit}" for d in diffs if d.unit]
    tail = (["units:", *units] if units else []) + (["notes:"] + [f"  [{i}] {n}" for n, i in notes.items()]
                                                    if notes else [])
    return "\n".join([head, *([f"note: {note}"] if note else []), *table, *tail])


#: a note longer than this (characters) is printed once under the text table and referred to by number
MAX_NOTE = 60


def _row(d: MetricDiff, a: str, b: str, note: str) -> list[str]:
    """One table row of ``d`` with its A and B means already formatted."""
    ci = f" [{fmt_num(d.worse_by_ci[0])}, {fmt_num(d.worse_by_ci[1])}]" if d.worse_by_ci else ""
    worst = f"{d.worst_case} (+{fmt_num(d.worst_by)})" if d.worst_case else "-"
    return [d.metric, d.better, a, b, (fmt_num(d.worse_by) + ci) if d.worse_by is not None else "-",
            f"{d.n_worse}/{d.n}" if d.n else "-", worst, note]
