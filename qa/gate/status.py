"""``qa status DECODER``: runs, their latest gate verdicts and sign-offs, the approved run, and for the newest
run what a sign-off meeting asks: which checks failed, what changed against the approved run (metric means and
decoder settings), and where the report is. Text, JSON or Markdown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qa.gate.data import latest_decisions, run_settings, settings_diff, settings_diff_text
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.gates import raw_gates_of
from qa.store.signoffs import signoffs_of

#: runs listed per decoder
MAX_RUNS = 10


def _gate_text(kind: str, base: str, verdict: str) -> str:
    if not kind or kind == "none":  # decided before any baseline existed: bounds (and decoder baselines) only
        return f"gate {verdict} (no approved or run baseline yet: bounds and decoder baselines only)"
    return f"gate {verdict} vs {kind}" + (f" {base}" if base else "")


def _failed(details: Any) -> list[dict[str, str]]:
    checks = details.get("checks", []) if isinstance(details, dict) else []
    out = []
    for c in checks:
        if not isinstance(c, dict):
            continue
        blocks = c.get("verdict") == "fail" or (c.get("verdict") == "needs-review" and not c.get("allow_review"))
        if blocks:
            kind = {"baseline": "", "worst_images": " worst images", "cases": ""}.get(str(c.get("kind")),
                                                                                     f" {c.get('kind')}")
            vs = f" vs {c['baseline_kind']}" if c.get("baseline_kind") else ""
            name = "every case decoded" if c.get("kind") == "cases" else f"{c.get('metric')}{kind}{vs}"
            out.append({"check": name, "verdict": str(c.get("verdict")), "message": str(c.get("message", ""))})
    return out


def _changes(details: Any) -> list[dict[str, Any]]:
    """Metric means of the candidate against the approved (or asked-for run) baseline, from the gate's checks."""
    checks = details.get("checks", []) if isinstance(details, dict) else []
    return [{"metric": c.get("metric"), "baseline_kind": c.get("baseline_kind"), "candidate": c.get("candidate_mean"),
             "baseline": c.get("baseline_mean"), "difference": c.get("diff_mean"), "ci": c.get("diff_ci"),
             "verdict": c.get("verdict")}
            for c in checks if isinstance(c, dict) and c.get("kind") == "baseline"
            and not str(c.get("baseline_kind", "")).startswith("decoder:") and c.get("baseline_mean") is not None]


def decoder_status(store: Store, decoder: str, report: Path | None = None) -> dict[str, Any]:
    """Everything ``qa status DECODER`` shows, as plain data."""
    runs = store_runs.recent_runs(store, decoder, limit=MAX_RUNS)
    out: dict[str, Any] = {"decoder": decoder, "runs": [], "approved_run": None, "latest": None}
    if not runs:
        return out
    decisions = latest_decisions(store)
    ids = [r.run_id for r in runs]
    gates: dict[str, tuple[Any, ...]] = {}
    for gid, rid, verdict, kind, base, at, details in raw_gates_of(store, ids):
        gates[str(rid)] = (gid, verdict, kind, base, at, details)  # the last one wins: the latest gate
    signs: dict[str, list[str]] = {}
    for s in signoffs_of(store, ids):
        text = f"{s.decision} by {s.reviewer} at {s.signed_at:%Y-%m-%d %H:%M}" + (" (override)" if s.override else "")
        signs.setdefault(s.run_id, []).append(text + (f": {s.note}" if s.note else ""))
    for run in runs:
        rid = run.run_id
        g = gates.get(rid)
        out["runs"].append({
            "run_id": rid, "status": run.status, "reference_set": run.reference_set,
            "started_at": f"{run.started_at:%Y-%m-%d %H:%M}",
            "gate": _gate_text(str(g[2] or ""), str(g[3] or ""), str(g[1])) + f" ({g[0]})" if g else "not gated",
            "gate_id": str(g[0]) if g else None, "verdict": str(g[1]) if g else None, "signoffs": signs.get(rid, [])})
    approved_ids = [r for r, d in decisions.items() if d == "approve"]
    approved = store_runs.newest_of(store, decoder, approved_ids)
    out["approved_run"] = approved.run_id if approved else None
    newest = out["runs"][0]
    g = gates.get(newest["run_id"])
    parsed: Any = None
    if g:
        try:
            parsed = json.loads(str(g[5])) if g[5] else None
        except json.JSONDecodeError:
            parsed = None
    mine = run_settings(store, newest["run_id"])
    theirs = run_settings(store, out["approved_run"]) if out["approved_run"] else None
    latest: dict[str, Any] = {"run_id": newest["run_id"], "gate": newest["gate"], "failed": _failed(parsed),
                              "changes": _changes(parsed), "settings": mine}
    if out["approved_run"] and out["approved_run"] != newest["run_id"]:
        latest["settings_vs_approved"] = settings_diff_text(mine, theirs)
        latest["settings_diff"] = [[k, a, b] for k, a, b in settings_diff(mine, theirs)]
    latest["report"] = (f"{report.resolve().as_uri()}" if report is not None and report.is_file() else
                        f"no report yet: `qa report --decoder {decoder} --out {report or 'reports/report.html'}`")
    out["latest"] = latest
    return out


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else "n/a"


def _text(st: dict[str, Any]) -> list[str]:
    lines = [f"decoder {st['decoder']}:"]
    if not st["runs"]:
        return lines + ["  no runs"]
    for r in st["runs"]:
        lines.append(f"  {r['run_id']}  [{r['status']}, set {r['reference_set']}, {r['started_at']}]  {r['gate']}")
        lines += [f"      sign-off: {s}" for s in r["signoffs"]]
    lines.append(f"  approved run: {st['approved_run']}" if st["approved_run"] else "  no approved run")
    lt = st["latest"]
    lines.append(f"  newest run {lt['run_id']}: {lt['gate']}")
    lines += [f"    FAILED {f['check']}: {f['message']}" for f in lt["failed"]]
    for c in lt["changes"]:
        lines.append(f"    change vs {c['baseline_kind']}: {c['metric']} {_num(c['baseline'])} -> {_num(c['candidate'])} "
                     f"(difference, + = better: {_num(c['difference'])}; {c['verdict']})")
    settings = json.dumps(lt["settings"], sort_keys=True, default=str) if lt["settings"] is not None else "not recorded"
    lines.append(f"    settings: {settings}")
    if "settings_vs_approved" in lt:
        lines.append(f"    settings vs approved: {lt['settings_vs_approved']}")
    lines.append(f"    report: {lt['report']}")
    return lines


def _markdown(st: dict[str, Any]) -> list[str]:
    from qa.gate.formats import md

    lines = [f"### qa status: {md(st['decoder'])}", ""]
    if not st["runs"]:
        return lines + ["no runs"]
    lt = st["latest"]
    lines.append(f"**Newest run** `{md(lt['run_id'])}`: {md(lt['gate'])}; approved run: "
                 f"`{md(st['approved_run'] or 'none')}`")
    if lt["failed"]:
        lines += ["", "**Failed checks:**"] + [f"- {md(f['check'])}: {md(f['message'])}" for f in lt["failed"]]
    if "settings_vs_approved" in lt:
        lines += ["", f"**Settings vs approved:** {md(lt['settings_vs_approved'])}"]
    if lt["changes"]:
        lines += ["", "| metric | baseline | approved/baseline | candidate | difference (+ = better) | verdict |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {md(c['metric'])} | {md(c['baseline_kind'])} | {_num(c['baseline'])} | {_num(c['candidate'])} | "
                  f"{_num(c['difference'])} | {md(c['verdict'])} |" for c in lt["changes"]]
    lines += ["", "| run | status | started | gate | sign-offs |", "|---|---|---|---|---|"]
    lines += [f"| `{md(r['run_id'])}` | {md(r['status'])} | {md(r['started_at'])} | {md(r['gate'])} | "
              f"{md('; '.join(r['signoffs']))} |" for r in st["runs"]]
    lines += ["", f"report: {md(lt['report'])}"]
    return lines


def _names(store: Store, decoder: str | None) -> list[str]:
    return [decoder] if decoder else store_runs.decoder_names(store)


def status_text(store: Store, decoder: str | None, report: Path | None = None) -> str:
    """Text block for one decoder, or for every decoder with runs when ``decoder`` is None."""
    out: list[str] = []
    for name in _names(store, decoder):
        out += _text(decoder_status(store, name, report))
    return "\n".join(out)


def status_output(store: Store, decoder: str | None, fmt: str = "text", report: Path | None = None) -> str:
    """``qa status`` as ``text``, ``json`` (a list of :func:`decoder_status` dicts) or ``markdown``."""
    states = [decoder_status(store, name, report) for name in _names(store, decoder)]
    if fmt == "json":
        from qa.gate.formats import clean_json

        return json.dumps(clean_json(states), indent=2, default=str, allow_nan=False)
    if fmt == "markdown":
        return "\n\n".join("\n".join(_markdown(s)) for s in states)
    return "\n".join(line for s in states for line in _text(s))
