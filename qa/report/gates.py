"""The gate table: one gate per run (its latest under the shipped policy of its track, else its latest), older
gates of the run folded; per-metric entries read defensively from ``gates.details_json``.

Gates of qa's own layout (``checks``: one object per check) show as a compact table: check, verdict, candidate,
baseline, difference with its interval, margin, n, and the message folded under the row.

The report does not assume one layout of ``details_json``. It looks for per-metric entries in a list, or under
one of :data:`ENTRY_KEYS` (a list of objects, or an object keyed by metric name), and shows every field each
entry has, the usual ones (metric, verdict, values, interval, margin, reason) first. Anything else at the top
level is shown as a key/value line. Every value is escaped.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from qa.gate.standing import caveats, speaking_gate
from qa.gate.worse import image_text, worse_by
from qa.report.data import GateRow, ReportData
from qa.report.safe import esc, fmt

#: keys under which a gate's per-metric entries may sit
ENTRY_KEYS = ("metrics", "checks", "results", "per_metric", "entries", "items", "tests")
#: columns shown first when an entry has them
PREFERRED = ("metric", "name", "verdict", "status", "required", "candidate", "value", "baseline", "diff", "delta",
             "mean_diff", "ci_low", "ci_high", "ci", "interval", "margin", "threshold", "bound", "direction",
             "n", "reason", "message", "detail")
#: CSS class per verdict (the class comes from this table, never from the data)
VERDICT_CLASS = {"pass": "ok", "passed": "ok", "fail": "bad", "failed": "bad", "error": "bad",
                 "needs-review": "warn", "needs_review": "warn", "review": "warn", "skip": "muted",
                 "skipped": "muted", "missing": "warn"}


def verdict_html(verdict: object) -> str:
    """A verdict as a coloured, escaped label."""
    text = "" if verdict is None else str(verdict)
    cls = VERDICT_CLASS.get(text.strip().lower(), "muted")
    return f'<span class="verdict {cls}">{esc(text or "none")}</span>'


def entries_of(details: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-metric entries and the remaining top-level fields of a parsed ``details_json``."""
    if isinstance(details, list):
        return [e if isinstance(e, dict) else {"value": e} for e in details], {}
    if not isinstance(details, dict):
        return [], ({} if details is None else {"details": details})
    for key in ENTRY_KEYS:
        block = details.get(key)
        rest = {k: v for k, v in details.items() if k != key}
        if isinstance(block, list):
            return [e if isinstance(e, dict) else {"value": e} for e in block], rest
        if isinstance(block, dict) and block and all(isinstance(v, dict) for v in block.values()):
            return [{"metric": name, **entry} for name, entry in block.items()], rest
    return [], dict(details)


def _cell(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, (int, float)):
        return esc(fmt(value))
    if isinstance(value, str):
        if key in ("verdict", "status"):
            return verdict_html(value)
        return esc(value)
    text = json.dumps(value, default=str)
    return esc(text if len(text) <= 300 else text[:297] + "...")


def entries_table(entries: list[dict[str, Any]]) -> str:
    """An HTML table of gate entries with the union of their keys as columns."""
    keys: list[str] = [k for k in PREFERRED if any(k in e for e in entries)]
    keys += sorted({k for e in entries for k in e} - set(keys))
    head = "".join(f"<th>{esc(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_cell(k, e[k]) if k in e else ''}</td>" for k in keys) + "</tr>"
                   for e in entries)
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def caveats_html(gate: GateRow, shipped: str, approved: str = "") -> str:
    """The gate's caveats (:func:`qa.gate.standing.caveats`) after its verdict, '' when it has none."""
    found = caveats(gate, shipped, approved)
    return f' <span class="bad-text">({esc("; ".join(found))})</span>' if found else ""


def policy_html(gate: GateRow, shipped: str = "") -> str:
    """The policy a gate was judged under, at the end of its header line (" &middot; policy <file name> sha256
    <12 hex> (shipped)"): the file name it was read from (``details_json``'s ``policy_source``, without the
    runner-local folder) and its sha256; "(shipped)" when it is the shipped policy of the run's track (another
    one is a caveat beside the verdict)."""
    source = gate.details.get("policy_source") if isinstance(gate.details, dict) else None
    name = f" <code>{esc(PurePath(source).name)}</code>" if isinstance(source, str) and source else ""
    sha = f" sha256 <code>{esc(gate.policy_sha256[:12])}</code>" if gate.policy_sha256 else " sha256 unknown"
    which = " (shipped)" if shipped and gate.policy_sha256 == shipped else ""
    return f" &middot; policy{name}{sha}{which}"


def gate_block(gate: GateRow, decoder: str, shipped: str = "", approved: str = "") -> str:
    """One gate: header line, per-metric entries, other fields (``shipped``: the sha256 of its track's shipped
    policy, for its caveats)."""
    when = f"{gate.decided_at:%Y-%m-%d %H:%M}" if gate.decided_at else "unknown time"
    base = gate.baseline_run_id or "none"
    kind = f" ({esc(gate.baseline_kind)})" if gate.baseline_kind else ""
    parts = [f'<div class="gate"><p>{verdict_html(gate.verdict)}{caveats_html(gate, shipped, approved)} <b>{esc(decoder)}</b> run '
             f"<code>{esc(gate.run_id)}</code> against baseline <code>{esc(base)}</code>{kind}, decided {esc(when)}"
             f" &middot; gate <code>{esc(gate.gate_id)}</code>{policy_html(gate, shipped)}</p>"]
    if gate.details_error:
        parts.append(f'<p class="warn">{esc(gate.details_error)}</p>')
    entries, rest = entries_of(gate.details)
    if entries:
        parts.append(entries_table(entries))
    elif not gate.details_error:
        parts.append('<p class="muted">no per-metric entries in details_json</p>')
    if rest:
        items = "".join(f"<li><b>{esc(k)}</b>: {_cell(k, v)}</li>" for k, v in rest.items())
        parts.append(f'<ul class="kv">{items}</ul>')
    parts.append("</div>")
    return "".join(parts)


def _num(x: Any) -> str:
    return esc(fmt(x)) if isinstance(x, int | float) and not isinstance(x, bool) else ""


def check_title(c: dict[str, Any]) -> str:
    """"invented_detail vs approved", "psnr bounds", "every case decoded" for one stored check."""
    kind = str(c.get("kind", ""))
    if kind == "cases":
        return "every case decoded"
    what = {"baseline": "", "worst_images": " worst images", "bounds": " bounds"}.get(kind, f" {kind}")
    vs = f" vs {c['baseline_kind']}" if c.get("baseline_kind") else ""
    return f"{c.get('metric', '?')}{what}{vs}"


def blocking_checks(gate: GateRow) -> list[dict[str, Any]]:
    """The stored checks of ``gate`` that block the release (fail, or needs-review not allowed)."""
    checks = gate.details.get("checks") if isinstance(gate.details, dict) else None
    if not isinstance(checks, list):
        return []
    return [c for c in checks if isinstance(c, dict) and (
        c.get("verdict") == "fail" or (c.get("verdict") == "needs-review" and not c.get("allow_review")))]


def checks_table(checks: list[dict[str, Any]]) -> str:
    """qa's checks as a compact table, blocking ones first, skipped ones last; the message folded per row."""
    order = {"fail": 0, "needs-review": 1, "pass": 2, "skipped": 3}
    rows = []
    for c in sorted(checks, key=lambda c: order.get(str(c.get("verdict")), 4)):
        worse, ci = worse_by(c)
        ci_text = f' <span class="ci">[{_num(ci[0])}, {_num(ci[1])}]</span>' if ci else ""
        diff = _num(worse)
        images = c.get("images")
        listed = "".join(f"<li>{esc(image_text(im))}</li>" for im in images if isinstance(im, dict)) \
            if isinstance(images, list) else ""
        rows.append(f"<tr><td>{esc(check_title(c))}</td><td>{verdict_html(c.get('verdict'))}</td>"
                    f"<td>{_num(c.get('candidate_mean'))}</td><td>{_num(c.get('baseline_mean'))}</td>"
                    f"<td>{diff}{ci_text if diff else ''}</td><td>{_num(c.get('margin'))}</td><td>{_num(c.get('n'))}</td>"
                    f'<td><details><summary>why</summary><span class="reason">{esc(c.get("message", ""))}</span>'
                    + (f'<ol class="images">{listed}</ol>' if listed else "") + "</details></td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("check", "verdict", "candidate", "baseline",
                                             "worse by (+ = worse) [CI]", "allowed", "n", "message"))
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _compact(gate: GateRow, decoder: str, shipped: str = "", approved: str = "") -> str:
    checks = gate.details.get("checks") if isinstance(gate.details, dict) else None
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        return gate_block(gate, decoder, shipped, approved)
    when = f"{gate.decided_at:%Y-%m-%d %H:%M}" if gate.decided_at else "unknown time"
    base = f"against {esc(gate.baseline_kind)} <code>{esc(gate.baseline_run_id)}</code>" if gate.baseline_run_id \
        else "against no approved or run baseline (bounds and decoder baselines only)"
    failed = blocking_checks(gate)
    named = (f'<p class="bad-text">failed: {esc(", ".join(check_title(c) for c in failed))}</p>' if failed else "")
    notes = gate.details.get("notes") if isinstance(gate.details, dict) else None
    note_html = "".join(f'<p class="reason">{esc(n)}</p>' for n in notes if isinstance(n, str)) \
        if isinstance(notes, list) else ""
    return (f'<div class="gate"><p>{verdict_html(gate.verdict)}{caveats_html(gate, shipped, approved)} <b>{esc(decoder)}</b> run '
            f"<code>{esc(gate.run_id)}</code> {base}, decided {esc(when)} &middot; gate <code>{esc(gate.gate_id)}"
            f"</code>{policy_html(gate, shipped)}</p>{named}{note_html}{checks_table(checks)}</div>")


def gate_of_run(data: ReportData, run_id: str, track: str = "") -> GateRow | None:
    """The gate a report shows for ``run_id`` (:func:`qa.gate.standing.speaking_gate`): its latest complete gate
    under the shipped policy of ``track`` against another run or none, else its latest (shown with its caveats)."""
    found = [g for g in data.gates if g.run_id == run_id]
    return speaking_gate(found, data.shipped_policy.get(track, ""), approved_now(data, run_id))


def approved_now(data: ReportData, run_id: str) -> str:
    """The approved run (now) of ``run_id``'s decoder, '' when it has none (or the run is not in the window)."""
    decoder = next((r.decoder for r in data.runs if r.run_id == run_id), None)
    approved = data.approved.get(decoder) if decoder is not None else None
    return approved.run_id if approved is not None else ""


def gates_section(data: ReportData) -> str:
    """One gate per run (newest run first); the run's other gates folded under it."""
    if not data.gates:
        return '<p class="muted">No gate verdicts for the selected runs (run <code>qa gate</code>).</p>'
    parts = []
    for run in reversed(data.runs):
        shown = gate_of_run(data, run.run_id, run.track)
        if shown is None:
            continue
        shipped, now = data.shipped_policy.get(run.track, ""), approved_now(data, run.run_id)
        parts.append(_compact(shown, run.decoder, shipped, now))
        older = [g for g in reversed(data.gates) if g.run_id == run.run_id and g is not shown]
        if older:
            parts.append(f"<details><summary>{len(older)} other gate(s) of this run (other policies or "
                         f"earlier)</summary>{''.join(_compact(g, run.decoder, shipped, now) for g in older)}</details>")
    return "".join(parts)
