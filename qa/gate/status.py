"""``qa status DECODER``: runs, their latest gate verdicts and sign-offs, the approved run, and for the newest
run what a sign-off meeting asks: which checks failed, what changed against the approved run (metric means and
decoder settings), and where the report is. Text, JSON or Markdown.

The approved run is the verified one (:mod:`qa.gate.approved`): sign-offs that do not count are shown with why;
without a trusted-keys file no approved run is named (and the output says why); a broken chain or approved
evidence that changed stops the command (GateError, exit 2).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from qa.gate.approved import Approved, approved_run, chain_of
from qa.gate.data import run_settings, settings_diff, settings_diff_text
from qa.gate.signing import SigningError
from qa.gate.signoff_verify import ChainCheck
from qa.gate.standing import shipped_policy_sha, speaking_gate, verdict_words
from qa.gate.worse import worse_by
from qa.metrics.declarations import declared_unit
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.gates import gates_of
from qa.store.records import GateRow

#: runs listed per decoder, and in the table of every decoder's runs above them (how many are left out is said)
MAX_RUNS = 10
RUNS_LISTED = 30


def _gate_text(kind: str, base: str, verdict: str) -> str:
    if kind == "none":  # the first release, chosen explicitly: bounds (and decoder baselines) only
        return f"gate {verdict} vs no baseline (--baseline none: bounds and decoder baselines only)"
    if not kind:
        return f"gate {verdict} (no run baseline: bounds and decoder baselines only)"
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
             "baseline": c.get("baseline_mean"), "worse_by": worse_by(c)[0], "ci": worse_by(c)[1],
             "verdict": c.get("verdict")}
            for c in checks if isinstance(c, dict) and c.get("kind") == "baseline"
            and not str(c.get("baseline_kind", "")).startswith("decoder:") and c.get("baseline_mean") is not None]


def verified_chain(store: Store, trusted: Any = None) -> tuple[ChainCheck | None, str]:
    """(chain, why it is unverified): the verified sign-off chain, or None and the reason (no trusted keys)."""
    if not store.exists():
        return None, "no database"
    try:
        with store.snapshot() as db:
            return chain_of(db, store.path, trusted), ""
    except SigningError as exc:
        if trusted is not None:
            raise
        return None, str(exc).splitlines()[0]


def _approved(store: Store, chain: ChainCheck | None, decoder: str, reference_set: str) -> Approved | None:
    if chain is None:
        return None
    with store.snapshot() as db:
        return approved_run(db, chain, decoder, reference_set, f"the store {store.path}", source=store)


def decoder_status(store: Store, decoder: str, report: Path | None = None,
                   chain: tuple[ChainCheck | None, str] | None = None) -> dict[str, Any]:
    """Everything ``qa status DECODER`` shows, as plain data. ``chain``: :func:`verified_chain` (computed here
    when None, with ``$QA_TRUSTED_KEYS`` or the setting)."""
    runs = store_runs.recent_runs(store, decoder, limit=MAX_RUNS)
    out: dict[str, Any] = {"decoder": decoder, "runs": [], "approved_run": None, "latest": None,
                           "runs_total": store_runs.count_runs(store, decoder)}
    if not runs:
        return out
    check, unverified = chain if chain is not None else verified_chain(store)
    ids = [r.run_id for r in runs]
    by_run: dict[str, list[GateRow]] = {}
    for row in gates_of(store, ids):  # oldest first
        by_run.setdefault(row.run_id, []).append(row)
    shipped = {r.run_id: shipped_policy_sha(r.track) for r in runs}
    # the gate that speaks for each run (qa.gate.standing): a complete one under the shipped policy when any
    approved = _approved(store, check, decoder, runs[0].reference_set)
    now = approved.run.run_id if approved else ""
    gates = {rid: found for rid, gs in by_run.items() if (found := speaking_gate(gs, shipped[rid], now)) is not None}
    signs: dict[str, list[str]] = {}
    for s in (check.rows if check is not None else []):
        if s.run_id not in ids:
            continue
        text = f"{s.decision} by {s.reviewer} at {s.signed_at:%Y-%m-%d %H:%M}" + (" (override)" if s.override else "")
        why = check.not_counting.get(s.seq) if check is not None else None
        signs.setdefault(s.run_id, []).append(text + (f": {s.note}" if s.note else "")
                                              + (f" [does not count: {why}]" if why else ""))
    unfinished = _unfinished(store, [r.run_id for r in runs if r.status != "finished"])
    for run in runs:
        rid = run.run_id
        g = gates.get(rid)
        out["runs"].append({
            "run_id": rid, "status": run.status, "progress": unfinished.get(rid, ""), "reference_set": run.reference_set,
            "started_at": f"{run.started_at:%Y-%m-%d %H:%M}",
            "gate": _gate_text(g.baseline_kind, g.baseline_run_id, verdict_words(g, shipped[rid], now)) + f" ({g.gate_id})"
            if g else "not gated",
            "gate_id": g.gate_id if g else None, "verdict": g.verdict if g else None, "signoffs": signs.get(rid, [])})
    out["approved_run"] = approved.run.run_id if approved else None
    out["approved"] = approved.describe() if approved else (
        f"not verified: {unverified}" if check is None else f"none on reference set {runs[0].reference_set!r}")
    if approved is not None and approved.run.reference_set_sha256 != runs[0].reference_set_sha256:
        out["approved"] += (f"; made on other content of {runs[0].reference_set!r} "
                            f"({approved.run.reference_set_sha256[:12]}, newest run {runs[0].reference_set_sha256[:12]})")
    newest = out["runs"][0]
    g = gates.get(newest["run_id"])
    parsed: Any = g.details if g else None  # None when absent or not JSON
    mine = run_settings(store, newest["run_id"])
    theirs = run_settings(store, out["approved_run"]) if out["approved_run"] else None
    latest: dict[str, Any] = {"run_id": newest["run_id"], "gate": newest["gate"], "failed": _failed(parsed),
                              "changes": _changes(parsed), "settings": mine}
    if out["approved_run"] and out["approved_run"] != newest["run_id"]:
        latest["settings_vs_approved"] = settings_diff_text(mine, theirs)
        latest["settings_diff"] = [[k, a, b] for k, a, b in settings_diff(mine, theirs)]
    latest["report"] = (f"{report.resolve().as_uri()}" if report is not None and report.is_file() else
                        f"no report yet: `qa report --decoder {shlex.quote(decoder)} --out "
                        f"{shlex.quote(str(report or 'reports/report.html'))} --db {shlex.quote(str(store.path))}`")
    out["latest"] = latest
    return out


def _unfinished(store: Store, run_ids: list[str]) -> dict[str, str]:
    """run id -> how far a run that did not finish got and how to finish it (scale audit M3: a run whose process
    was killed outright stays 'running', and nothing told it from a live one)."""
    from qa.store.records import parse_json
    from qa.store.results import done_shards

    out = {}
    with store.snapshot() as db:
        for rid, text in store_runs.run_configs(db, run_ids).items():
            cfg, _ = parse_json(text)
            shards = cfg.get("shards") if isinstance(cfg, dict) else None
            total = f" of {len(shards)}" if isinstance(shards, list) else ""
            out[rid] = (f"{len(done_shards(db, rid))}{total} shards committed; finish it with `qa run --resume "
                        f"{shlex.quote(rid)}` (a run still 'running' with no process behind it was killed)")
    return out


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else "n/a"


def _older(st: dict[str, Any]) -> str:
    """'' when every run of the decoder is listed; else how many older runs the list leaves out and where they are."""
    left = st.get("runs_total", 0) - len(st["runs"])
    return (f"... and {left} older run(s) not listed (the newest {len(st['runs'])} are): `qa report --decoder "
            f"{shlex.quote(st['decoder'])}` shows every run, `qa export --run RUN_ID` one run's rows") if left > 0 else ""


def _text(st: dict[str, Any]) -> list[str]:
    lines = [f"decoder {st['decoder']}:"]
    if not st["runs"]:
        return lines + ["  no runs"]
    for r in st["runs"]:
        lines.append(f"  {r['run_id']}  [{r['status']}, set {r['reference_set']}, {r['started_at']}]  {r['gate']}")
        lines += [f"      {r['progress']}"] if r["progress"] else []
        lines += [f"      sign-off: {s}" for s in r["signoffs"]]
    if (older := _older(st)):
        lines.append(f"  {older}")
    lines.append(f"  approved run: {st['approved']}" if st["approved_run"] else f"  no approved run ({st['approved']})")
    lt = st["latest"]
    lines.append(f"  newest run {lt['run_id']}: {lt['gate']}")
    lines += [f"    FAILED {f['check']}: {f['message']}" for f in lt["failed"]]
    for c in lt["changes"]:
        lines.append(f"    change vs {c['baseline_kind']}: {c['metric']} {_num(c['baseline'])} -> {_num(c['candidate'])} "
                     f"(worse by {_num(c['worse_by'])}; {c['verdict']})")
    settings = json.dumps(lt["settings"], sort_keys=True, default=str) if lt["settings"] is not None else "not recorded"
    lines.append(f"    settings: {settings}")
    if "settings_vs_approved" in lt:
        lines.append(f"    settings vs approved: {lt['settings_vs_approved']}")
    lines.append(f"    report: {lt['report']}")
    return lines


def _markdown(st: dict[str, Any]) -> list[str]:
    from qa.gate.formats import md, md_code

    lines = [f"### qa status: {md(st['decoder'])}", ""]
    if not st["runs"]:
        return lines + ["no runs"]
    lt = st["latest"]
    lines.append(f"**Newest run** {md_code(lt['run_id'])}: {md(lt['gate'])}; approved run: "
                 f"{md_code(st['approved_run'] or 'none')} ({md(st['approved'])})")
    if lt["failed"]:
        lines += ["", "**Failed checks:**"] + [f"- {md(f['check'])}: {md(f['message'])}" for f in lt["failed"]]
    if "settings_vs_approved" in lt:
        lines += ["", f"**Settings vs approved:** {md(lt['settings_vs_approved'])}"]
    if lt["changes"]:
        lines += ["", "| metric | baseline | approved/baseline | candidate | worse by (+ = worse) | verdict | unit |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {md(c['metric'])} | {md(c['baseline_kind'])} | {_num(c['baseline'])} | {_num(c['candidate'])} | "
                  f"{_num(c['worse_by'])} | {md(c['verdict'])} | {md(declared_unit(c['metric']))} |" for c in lt["changes"]]
    lines += ["", "| run | status | started | gate | sign-offs |", "|---|---|---|---|---|"]
    lines += [f"| {md_code(r['run_id'])} | {md(r['status'] + (': ' + r['progress'] if r['progress'] else ''))} | "
              f"{md(r['started_at'])} | {md(r['gate'])} | "
              f"{md('; '.join(r['signoffs']))} |" for r in st["runs"]]
    if (older := _older(st)):
        lines += ["", md(older)]
    lines += ["", f"report: {md(lt['report'])}"]
    return lines


def _names(store: Store, decoder: str | None) -> list[str]:
    return [decoder] if decoder else store_runs.decoder_names(store)


def status_output(store: Store, decoder: str | None, fmt: str = "text", report: Path | None = None,
                  trusted: Any = None) -> str:
    """``qa status`` as ``text``, ``json`` (a list of :func:`decoder_status` dicts) or ``markdown``; ``trusted``:
    the trusted-keys file that verifies approvals (default ``$QA_TRUSTED_KEYS``, then the setting)."""
    chain = verified_chain(store, trusted)
    states = [decoder_status(store, name, report, chain) for name in _names(store, decoder)]
    if fmt == "json":
        from qa.gate.formats import clean_json

        return json.dumps(clean_json(states), indent=2, default=str, allow_nan=False)
    if fmt == "markdown":
        return "\n\n".join("\n".join(_markdown(s)) for s in states)
    return "\n".join(line for s in states for line in _text(s))
