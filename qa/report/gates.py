"""The gate table: verdicts with their per-metric entries, read defensively from ``gates.details_json``.

The report does not assume one layout of ``details_json``. It looks for per-metric entries in a list, or under
one of :data:`ENTRY_KEYS` (a list of objects, or an object keyed by metric name), and shows every field each
entry has, the usual ones (metric, verdict, values, interval, margin, reason) first. Anything else at the top
level is shown as a key/value line. Every value is escaped.
"""

from __future__ import annotations

import json
from typing import Any

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


def gate_block(gate: GateRow, decoder: str) -> str:
    """One gate: header line, per-metric entries, other fields."""
    when = f"{gate.decided_at:%Y-%m-%d %H:%M}" if gate.decided_at else "unknown time"
    base = gate.baseline_run_id or "none"
    kind = f" ({esc(gate.baseline_kind)})" if gate.baseline_kind else ""
    parts = [f'<div class="gate"><p>{verdict_html(gate.verdict)} <b>{esc(decoder)}</b> run '
             f"<code>{esc(gate.run_id)}</code> against baseline <code>{esc(base)}</code>{kind}, decided {esc(when)}"
             f" &middot; gate <code>{esc(gate.gate_id)}</code></p>"]
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


def gates_section(data: ReportData) -> str:
    """Every gate of the runs in the window, newest first."""
    if not data.gates:
        return '<p class="muted">No gate verdicts for the selected runs (run <code>qa gate</code>).</p>'
    decoder_of = {r.run_id: r.decoder for r in data.runs}
    return "".join(gate_block(g, decoder_of.get(g.run_id, "?")) for g in reversed(data.gates))


def latest_gate(data: ReportData, run_id: str) -> GateRow | None:
    """The most recent gate of ``run_id`` (gates are loaded oldest first)."""
    found = [g for g in data.gates if g.run_id == run_id]
    return found[-1] if found else None
