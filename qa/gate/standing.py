"""Which stored gate speaks for a run, and what a reader must know about it.

A run may have several gates: against the approved run, against itself or a run of someone's choice, against
no baseline, under a policy file of someone's choice, a pytest session that made only some checks (``-k``). Only a
complete gate under the track's shipped policy against the approved run (or none, for a first release) says what
the release decision says; a gate against no baseline yields to one against the approved run whatever their
order (it compared nothing: a regression gated `--baseline none` after failing against the approved run must not
read "pass"); `qa status` and the
report show that one when there is one, and any other with its caveats beside the verdict ("pass (partial: ...)"),
never a bare "pass" (audit 2026-12-07: a failed gate against the approved run followed by a passing gate against
the run itself showed "pass" and "No failed checks").
"""

from __future__ import annotations

from functools import cache

from qa.gate.policy import PolicyError, default_policy_path, load_policy
from qa.store.records import GateRow


@cache
def shipped_policy_sha(track: str) -> str:
    """The sha256 of the track's shipped policy ('' when there is none here)."""
    try:
        return load_policy(default_policy_path(track or "decode")).sha256()
    except PolicyError:
        return ""


def caveats(gate: GateRow, shipped_sha: str, approved: str = "") -> list[str]:
    """What keeps ``gate`` from speaking for its run's release (empty when nothing does). ``approved``: the
    decoder's approved run now ('' when not known): a gate against an earlier approved run is stale (unless its
    run is the approved one: then it is the gate the approval rested on)."""
    out = []
    if not (isinstance(gate.details, dict) and gate.details.get("complete") is True):
        out.append("partial: not every check of the policy ran")
    if gate.baseline_run_id and gate.baseline_run_id == gate.run_id:
        out.append("against the run itself")
    elif not gate.baseline_kind:  # a session whose baseline checks were all left out (an older gate row)
        out.append("against no run baseline (bounds and decoder baselines only), not the approved run")
    elif gate.baseline_kind not in ("approved", "none"):
        chosen = f" {gate.baseline_run_id}" if gate.baseline_run_id else ""
        out.append(f"against {gate.baseline_kind}{chosen}, not the approved run")
    if approved and gate.run_id != approved:  # the approved run's own gates are what its approval rested on
        if gate.baseline_kind == "approved" and gate.baseline_run_id not in ("", approved):
            out.append(f"against {gate.baseline_run_id}, the approved run then; it is now {approved}")
        elif gate.baseline_kind == "none":  # no baseline speaks for a first release only
            out.append(f"against no baseline, though {approved} is approved")
    if shipped_sha and gate.policy_sha256 and gate.policy_sha256 != shipped_sha:
        out.append("under a policy that is not the shipped one")
    return out


def speaking_gate(gates: list[GateRow], shipped_sha: str, approved: str = "") -> GateRow | None:
    """The latest of a run's ``gates`` (oldest first) with the fewest caveats (none, when one has none), a gate
    against no baseline counting one more; None when there is no gate."""
    if not gates:
        return None
    counts = [len(caveats(g, shipped_sha, approved)) + (g.baseline_kind == "none") for g in gates]  # none: compared nothing
    return [g for g, n in zip(gates, counts, strict=True) if n == min(counts)][-1]


def verdict_words(gate: GateRow, shipped_sha: str, approved: str = "") -> str:
    """The verdict with its caveats: "fail", "pass (partial: not every check of the policy ran)"."""
    found = caveats(gate, shipped_sha, approved)
    return gate.verdict + (f" ({'; '.join(found)})" if found else "")
