"""``qa status DECODER``: runs, their latest gate verdicts and sign-offs, and the approved run (if any)."""

from __future__ import annotations

from qa.gate.data import latest_decisions
from qa.gate.signoff import signoffs_of
from qa.store import Store

#: runs listed per decoder
MAX_RUNS = 10


def _decoder_text(store: Store, decoder: str) -> list[str]:
    runs = store.query("select run_id, status, reference_set, started_at from runs where decoder = ? "
                       "order by started_at desc limit ?", [decoder, MAX_RUNS])
    lines = [f"decoder {decoder}:"]
    if not runs:
        return lines + ["  no runs"]
    decisions = latest_decisions(store)
    ids: list[object] = [str(r[0]) for r in runs]
    marks = ",".join("?" * len(ids))
    gates: dict[str, tuple[object, ...]] = {}
    for gid, rid, verdict, kind, base, at in store.query(
            f"select gate_id, run_id, verdict, baseline_kind, baseline_run_id, decided_at from gates "
            f"where run_id in ({marks}) order by decided_at", ids):
        gates[str(rid)] = (gid, verdict, kind, base, at)  # the last one wins: the latest gate
    signs: dict[str, list[str]] = {}
    for _seq, rid, reviewer, decision, note, override, at in signoffs_of(store, [str(i) for i in ids]):
        text = f"{decision} by {reviewer} at {at:%Y-%m-%d %H:%M}" + (" (override)" if override else "")  # type: ignore[str-format]
        signs.setdefault(str(rid), []).append(text + (f": {note}" if note else ""))
    for run_id, status, refset, started in runs:
        rid = str(run_id)
        g = gates.get(rid)
        gate = (f"gate {g[1]} vs {g[2]}" + (f" {g[3]}" if g[3] else "") + f" ({g[0]})") if g else "not gated"
        lines.append(f"  {rid}  [{status}, set {refset}, {started:%Y-%m-%d %H:%M}]  {gate}")  # type: ignore[str-format]
        lines += [f"      sign-off: {s}" for s in signs.get(rid, [])]
    approved_ids = [r for r, d in decisions.items() if d == "approve"]
    approved = store.query(
        f"select run_id from runs where decoder = ? and run_id in ({','.join('?' * len(approved_ids))}) "
        "order by started_at desc limit 1", [decoder, *approved_ids]) if approved_ids else []
    lines.append(f"  approved run: {approved[0][0]}" if approved else "  no approved run")
    return lines


def status_text(store: Store, decoder: str | None) -> str:
    """Text block for one decoder, or for every decoder with runs when ``decoder`` is None."""
    names = [decoder] if decoder else [str(r[0]) for r in store.query("select distinct decoder from runs order by 1")]
    out: list[str] = []
    for name in names:
        out += _decoder_text(store, name)
    return "\n".join(out)
