"""HTML tables of the report: summary, what changed, set results, missing values, sign-offs, runs.

Every value from the store is escaped with :func:`qa.report.safe.esc`. A missing or failed value is always shown
as the word "missing" or "error" with its reason, never as a number.
"""

from __future__ import annotations

from collections import Counter

from qa.gate.standing import caveats, verdict_words
from qa.metrics.base import says_not_applicable
from qa.metrics.declarations import declared_unit
from qa.report.data import ReportData, RunInfo, SetRow, SignoffRow, target_of
from qa.report.gates import approved_now, blocking_checks, caveats_html, check_title, gate_of_run, verdict_html
from qa.report.safe import esc, finite, fmt

#: how many distinct reasons the missing-values table lists per (decoder, metric, status)
MAX_REASONS = 3


def _table(header: list[str], rows: list[list[str]], cls: str = "data") -> str:
    """Cells are HTML already (escaped by the caller); the header is escaped here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def missing_html(status: str, reason: str) -> str:
    """A missing/error value: the word, then the reason."""
    word = "error" if status == "error" else "missing"
    return f'<span class="missing">{word}</span> <span class="reason">{esc(reason or "no reason recorded")}</span>'


def _image_reason(data: ReportData, run_id: str, metric: str) -> str:
    """The most common reason of the missing/failed per-image rows of (run, metric), or ''."""
    reasons = Counter(r.detail for r in data.image_rows if r.run_id == run_id and r.metric == metric
                      and r.status != "ok" and r.detail)
    return reasons.most_common(1)[0][0] if reasons else ""


def value_html(row: SetRow | None) -> str:
    """A set value with its interval, or 'missing' with the reason."""
    if row is None:
        return missing_html("missing", "not computed in this run")
    if row.status != "ok" or row.value is None:
        return missing_html(row.status, row.detail)
    ci = f' <span class="ci">[{esc(fmt(row.ci_low))}, {esc(fmt(row.ci_high))}]</span>' if finite(row.ci_low) else ""
    n = f' <span class="muted">n={esc(row.n)}</span>' if row.n else ""
    note = f' <span class="reason">{esc(row.detail)}</span>' if row.detail else ""
    return f"{esc(fmt(row.value))}{ci}{n}{note}"


def signoff_status(data: ReportData, run_id: str) -> str:
    """The latest sign-off decision of ``run_id`` as HTML."""
    rows = [s for s in data.signoffs if s.run_id == run_id]
    if not rows:
        return '<span class="verdict muted">not signed off</span>'
    s = rows[-1]
    cls = "ok" if s.decision == "approve" else "bad" if s.decision == "reject" else "muted"
    when = f"{s.signed_at:%Y-%m-%d %H:%M}" if s.signed_at else ""
    override = ' <span class="verdict warn">override</span>' if s.override else ""
    note = f' <span class="reason">&ldquo;{esc(s.note)}&rdquo;</span>' if s.note else ""
    return f'<span class="verdict {cls}">{esc(s.decision)}</span> by {esc(s.reviewer)} {esc(when)}{override}{note}'


def settings_text(data: ReportData, run_id: str, other: str | None) -> str:
    """The run's decoder settings against ``other``'s: "degrade_sigma 0.0 -> 0.3", "same settings", or unknown."""
    from qa.gate.data import settings_diff_text

    if other is None or other == run_id:
        mine = data.settings.get(run_id)
        return "not recorded" if mine is None else (", ".join(f"{k}={v}" for k, v in sorted(mine.items())) or "none")
    return settings_diff_text(data.settings.get(run_id), data.settings.get(other))


def summary_section(data: ReportData) -> str:
    """Per decoder: the failed checks of its latest run's gate named first, then run, gate, sign-off, settings."""
    rows, failures = [], []
    for decoder in data.decoders:
        run = data.latest[decoder]
        gate = gate_of_run(data, run.run_id, run.track)
        verdict = verdict_html(gate.verdict) if gate else '<span class="verdict muted">not gated</span>'
        shipped = data.shipped_policy.get(run.track, "")
        now = approved_now(data, run.run_id)
        verdict += caveats_html(gate, shipped, now) if gate else ""
        failed = [check_title(c) for c in blocking_checks(gate)] if gate else []
        if gate and not failed and caveats(gate, shipped, now):  # a pass that is no release decision is not "no failures"
            failures.append(f"<li><b>{esc(decoder)}</b> <code>{esc(run.run_id)}</code>: no release decision: its "
                            f"gate is {esc(verdict_words(gate, shipped, now))}</li>")
        if failed:
            failures.append(f"<li><b>{esc(decoder)}</b> <code>{esc(run.run_id)}</code>: "
                            + ", ".join(f'<span class="failed-check">{esc(f)}</span>' for f in failed) + "</li>")
        elif gate and gate.verdict == "fail":
            failures.append(f"<li><b>{esc(decoder)}</b> <code>{esc(run.run_id)}</code>: gate failed (details in "
                            f"the gate table)</li>")
        done, bad = data.case_counts.get(run.run_id, (run.n_cases, 0))
        if bad and not failed:  # a run with failed cases is never "no failed checks", gated or not
            failures.append(f"<li><b>{esc(decoder)}</b> <code>{esc(run.run_id)}</code>: {bad} of {done} cases failed "
                            "(no output; the reasons are in the images section and `qa gate`)</li>")
        status = esc(run.status) + (f' <span class="reason">{esc(run.error)}</span>' if run.error else "")
        approved = data.approved.get(decoder)
        if gate and approved is None and str(gate.verdict).lower() == "pass":
            # nothing verified-approved to compare with: absolute bounds only, never a bare "pass"; a gate against an
            # approval this report could not verify (no trusted keys) is not one against no baseline
            verdict += (' <span class="reason">against an approved run this report could not verify</span>'
                        if gate.baseline_kind == "approved" and data.approval_note
                        else ' <span class="reason">against no approved baseline</span>')
        rows.append([f"<b>{esc(decoder)}</b>", f"<code>{esc(run.run_id)}</code>",
                     esc(f"{run.started_at:%Y-%m-%d %H:%M}" if run.started_at else ""), status,
                     _cases(data, run), verdict, esc(", ".join(failed)) or '<span class="muted">none</span>',
                     signoff_status(data, run.run_id),
                     f"<code>{esc(approved.run_id)}</code>" + (
                         f' <span class="bad-text">{esc(data.approval_terms.get(decoder, "").lstrip("; "))}</span>'
                         if data.approval_terms.get(decoder) else "") if approved else _elsewhere(data, decoder),
                     esc(settings_text(data, run.run_id, approved.run_id if approved else None))])
    head = ("<div class='headline'><b>Failed checks</b><ul>" + "".join(failures) + "</ul></div>") if failures else \
        "<p class='headline ok-text'>No failed checks in the latest gate of any decoder.</p>"
    later = [f"<b>{esc(d)}</b> <code>{esc(r.run_id)}</code> ({esc(r.status)}, started "
             f"{esc(f'{r.started_at:%Y-%m-%d %H:%M}' if r.started_at else '?')})"
             for d in data.decoders for r in data.unfinished.get(d, [])]
    if later:  # the latest *finished* run speaks; a newer one that did not finish is named, never silently absent
        head += (f"<p class='reason'>newer runs that did not finish, so not shown as their decoder's latest: "
                 f"{'; '.join(later)}. A run killed outright stays 'running': finish one with "
                 "<code>qa run --resume RUN_ID</code>.</p>")
    return head + _table(["decoder", "latest run", "started (UTC)", "status", "cases", "gate", "failed checks",
                          "sign-off", "approved run", "settings (vs approved)"], rows)


def _change(metric: str, old: SetRow | None, new: SetRow | None) -> list[str] | None:
    if old is None and new is None:
        return None
    if not (old and new and old.status == new.status == "ok" and finite(old.value) and finite(new.value)):
        if old and new and old.status == new.status and (old.status != "ok" or old.value == new.value):
            return None  # unchanged: missing both times, or the same non-finite value
        return [esc(metric), value_html(old), value_html(new), "", '<span class="muted">not comparable</span>']
    if (old.metric_version or "") != (new.metric_version or ""):  # another definition: a change of the metric
        return [esc(metric), value_html(old), value_html(new), "",
                f'<span class="muted">not comparable: metric version {esc(old.metric_version or "?")} -> '
                f"{esc(new.metric_version or '?')}</span>"]
    delta = float(new.value) - float(old.value)  # type: ignore[arg-type]
    target = target_of(metric)
    unit = declared_unit(metric)
    # one sign everywhere qa compares: "worse by", + = worse (the gate's and `qa diff`'s); a metric without a
    # direction shows its plain change, said so
    change = f"now - before {delta:+.4g}"
    if delta == 0:
        verdict = '<span class="muted">unchanged</span>'
        change = f"{0.0:.4g}"
    elif target is None:
        verdict = '<span class="muted">direction unknown (metric not registered)</span>'
    elif not target.has_direction:
        verdict = '<span class="muted">changed (no better or worse: target none)</span>'
    else:
        worse_by = target.goodness(float(old.value)) - target.goodness(float(new.value)) + 0.0  # type: ignore[arg-type]
        change = f"{worse_by:+.4g}"
        verdict = '<span class="verdict ok">better</span>' if worse_by < 0 else '<span class="verdict bad">worse</span>'
        if finite(new.ci_low) and finite(new.ci_high) and new.ci_low <= old.value <= new.ci_high:  # type: ignore[operator]
            verdict += ' <span class="muted">(previous value inside the new interval)</span>'
    return [esc(metric), value_html(old), value_html(new), esc(change + (f" {unit}" if unit else "")), verdict]


def _cases(data: ReportData, run: RunInfo) -> str:
    """The cases cell: planned, and how many have an outcome and how many failed when that is not all of them."""
    done, bad = data.case_counts.get(run.run_id, (run.n_cases, 0))
    text = esc(run.n_cases)
    if done != run.n_cases:
        text += f' <span class="bad-text">({done} with an outcome: the run did not finish them all)</span>'
    if bad:
        text += f' <span class="bad-text">({bad} failed)</span>'
    return text


def _elsewhere(data: ReportData, decoder: str) -> str:
    """The approved-run cell of a decoder with no approved run on its latest run's images."""
    other = data.approved_elsewhere.get(decoder)
    if other is None:
        return '<span class="muted">none</span>'
    return (f'<code>{esc(other.run_id)}</code> <span class="bad-text">on other images of set '
            f"{esc(other.reference_set)} ({esc(other.reference_set_sha256[:12])}, the latest run "
            f"{esc(data.latest[decoder].reference_set_sha256[:12])}): not compared</span>")


def changes_section(data: ReportData) -> str:
    """Metric deltas of each decoder's latest run against its comparison run."""
    parts = []
    first = [d for d in data.decoders if data.comparison.get(d) is None]
    if first:  # said once for all of them (a first demo has only first runs)
        parts.append(f"<p class='muted'>no earlier finished run of {esc(', '.join(first))} on the same reference "
                     "images (set content): nothing to compare yet (means over other images are not a change)</p>")
    for decoder in data.decoders:
        run = data.latest[decoder]
        prev = data.comparison.get(decoder)
        if prev is None:
            continue
        old, new = data.set_results.get(prev.run_id, {}), data.set_results.get(run.run_id, {})
        rows = [r for m in sorted(set(old) | set(new)) if (r := _change(m, old.get(m), new.get(m)))]
        head = (f"<h3>{esc(decoder)}</h3><p><code>{esc(run.run_id)}</code> against "
                f"<code>{esc(prev.run_id)}</code> ({esc(data.comparison_kind.get(decoder, ''))})</p>")
        body = _table(["metric", "before", "now", "worse by (+ = worse)", "change"], rows) if rows else \
            "<p class='muted'>no metric changed</p>"
        parts.append(head + body)
    return "".join(parts)


def target_mark(metric: str) -> str:
    """HTML after a metric name: &uarr; higher is better, &darr; lower, "&rarr; 1" closer to 1, nothing for none."""
    target = target_of(metric)
    if target is None or target.kind == "none":
        return ""
    if target.kind == "value":
        return f' <span title="closer to {esc(target.label()[10:])} is better">&rarr; {esc(target.label()[10:])}</span>'
    return " &uarr;" if target.kind == "higher" else " &darr;"


def _not_applicable_anywhere(data: ReportData, metric: str) -> bool:
    """True when no decoder's latest run has a value of ``metric`` and every reason is "not applicable" (e.g.
    psnr on the generate track, which has no pixel-aligned reference): the metric does not apply to these runs."""
    rows = [data.set_results.get(data.latest[d].run_id, {}).get(metric) for d in data.decoders]
    return all(r is not None and r.status == "missing" and says_not_applicable(r.detail or "") for r in rows)


def set_results_section(data: ReportData) -> str:
    """Every metric of each decoder's latest run: value and interval, or missing with the reason. Metrics that
    apply to none of the runs are named in one line under the table (their reasons are in "missing")."""
    metrics = sorted({m for d in data.decoders for m in data.set_results.get(data.latest[d].run_id, {})})
    if not metrics:
        return "<p class='muted'>no set results in the latest runs</p>"
    inapplicable = [m for m in metrics if _not_applicable_anywhere(data, m)]
    reasons: dict[str, int] = {}  # a long reason (missing weights, with its fix) is said once, under the table

    def cite(reason: str) -> str:
        n = reasons.setdefault(reason or "no reason recorded", len(reasons) + 1)
        return f'<a class="fn" href="#why-{n}">[{n}]</a>'

    rows = []
    for m in (m for m in metrics if m not in inapplicable):
        unit = declared_unit(m)
        cells = [f"{esc(m)}{target_mark(m)}" + (f' <span class="muted">({esc(unit)})</span>' if unit else "")]
        for d in data.decoders:
            run_id = data.latest[d].run_id
            row = data.set_results.get(run_id, {}).get(m)
            if row is not None and row.status == "ok" and row.value is not None:
                cells.append(value_html(row))
                continue
            why = (row.detail if row is not None else "not computed in this run") or _image_reason(data, run_id, m)
            per_image = _image_reason(data, run_id, m)
            cells.append(f'<span class="missing">{"error" if row is not None and row.status == "error" else "missing"}'
                         f"</span> {cite(why)}" + (f" per image {cite(per_image)}" if per_image and per_image not in why
                                                  else ""))
        rows.append(cells)
    listed = "".join(f'<li id="why-{n}" value="{n}"><span class="reason">{esc(r)}</span></li>'
                     for r, n in reasons.items())
    note = (f"<p class='muted'>Not applicable to any of these runs (reasons under &ldquo;Missing and failed "
            f"values&rdquo;): {esc(', '.join(inapplicable))}</p>") if inapplicable else ""
    table = _table(["metric"] + data.decoders, rows, "data fit") if rows else ""
    return table + (f'<ol class="reasons">{listed}</ol>' if listed else "") + note


def _weights_fix(reason: str) -> str:
    """``reason`` when it is qa's missing-weights reason (it names the fix as a `qa weights ...` command), else ''."""
    return reason if "`qa weights " in reason else ""


def missing_section(data: ReportData) -> str:
    """Per-image values that are missing or failed, counted per decoder and metric, with their reasons. Reasons
    that are missing weights (with their `qa weights` fix) are listed once above the table."""
    decoder_of = {r.run_id: r.decoder for r in data.latest.values()}
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    weights: dict[str, set[str]] = {}
    for r in data.image_rows:
        if r.status != "ok":
            fix = _weights_fix(r.detail)
            if fix:
                weights.setdefault(fix, set()).add(r.metric)
            groups.setdefault((decoder_of.get(r.run_id, "?"), r.metric, r.status), Counter())[
                "missing weights (listed above)" if fix else r.detail] += 1
    if not groups:
        return "<p class='muted'>none: every per-image value of the latest runs was computed</p>"
    head = ""
    if weights:
        head = ("<p><b>Missing weights</b> (each listed once; the metrics that need them are stored as missing):"
                "</p><ul>" + "".join(f"<li>{esc(', '.join(sorted(ms)))}: <span class='reason'>{esc(fix)}</span></li>"
                                    for fix, ms in sorted(weights.items())) + "</ul>")
    rows = []
    for (decoder, metric, status), reasons in sorted(groups.items()):
        listed = "; ".join(f"{esc(reason or 'no reason recorded')} (&times;{n})"
                           for reason, n in reasons.most_common(MAX_REASONS))
        more = len(reasons) - MAX_REASONS
        listed += f" <span class='muted'>and {more} other reason(s)</span>" if more > 0 else ""
        word = "error" if status == "error" else "missing"
        rows.append([esc(decoder), esc(metric), f'<span class="missing">{word}</span>', esc(sum(reasons.values())),
                     listed])
    return head + _table(["decoder", "metric", "status", "rows", "reasons"], rows)


def signoffs_section(data: ReportData) -> str:
    """Every counting sign-off of the runs in the window, in order; then those that do not count, with why."""
    note = f"<p class='reason'>{esc(data.approval_note)}</p>" if data.approval_note else ""
    decoder_of = {r.run_id: r.decoder for r in data.runs}
    bad = ""
    if data.uncounted:
        bad = ("<p class='reason'>These sign-offs do not count (never used as approvals):</p>"
               + _table(["#", "decoder", "run", "decision", "reviewer", "why it does not count"],
                        [[esc(s.seq), esc(decoder_of.get(s.run_id, "?")), f"<code>{esc(s.run_id)}</code>",
                          esc(s.decision), esc(s.reviewer), esc(why)] for s, why in data.uncounted]))
    if not data.signoffs:
        return note + "<p class='muted'>no sign-offs for the selected runs (<code>qa signoff</code>)</p>" + bad
    rows = [_signoff_row(s, decoder_of.get(s.run_id, "?")) for s in data.signoffs]
    return note + _table(["#", "decoder", "run", "decision", "reviewer", "override", "note", "signed (UTC)"], rows) + bad


def _signoff_row(s: SignoffRow, decoder: str) -> list[str]:
    when = f"{s.signed_at:%Y-%m-%d %H:%M}" if s.signed_at else ""
    return [esc(s.seq), esc(decoder), f"<code>{esc(s.run_id)}</code>", esc(s.decision), esc(s.reviewer),
            "yes" if s.override else "", esc(s.note), esc(when)]


def runs_section(data: ReportData) -> str:
    """Every run in the window with its provenance."""
    rows = []
    for r in reversed(data.runs):
        rows.append([f"<code>{esc(r.run_id)}</code>", esc(r.decoder), esc(r.status),
                     esc(f"{r.started_at:%Y-%m-%d %H:%M}" if r.started_at else ""), esc(r.track),
                     esc(f"{r.reference_set} ({r.reference_set_sha256[:12]})"), esc(r.weights_sha256[:12] or "-"),
                     esc(r.qa_version), esc(r.git_commit[:12] or "-"), esc(settings_text(data, r.run_id, None))])
    return _table(["run", "decoder", "status", "started (UTC)", "track", "reference set", "weights", "qa",
                   "commit", "decoder settings"], rows)
