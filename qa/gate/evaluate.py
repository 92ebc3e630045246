"""A whole gate: resolve baselines, run every check a policy asks for, store the verdict in ``gates``."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from qa.gate.checks import Baseline, CheckResult, GateContext, blocking, overall_verdict
from qa.gate.data import GateError, RunInfo, latest_approved_run, latest_finished_run, load_run
from qa.gate.policy import Policy
from qa.store import Store


def resolve_baseline(store: Store, candidate: RunInfo, spec: str) -> Baseline:
    """Resolve ``approved``, ``decoder:NAME`` or a run id against the candidate's decoder and reference set.

    ``approved`` and ``decoder:NAME`` without a run give a :class:`Baseline` with ``run`` None and a note;
    an explicit run id that does not exist, is unfinished or is on another reference set raises GateError.
    """
    spec = spec.strip()
    if not spec:
        raise GateError("empty baseline", "use 'approved', 'decoder:NAME' or a run id")
    if spec == "approved":
        run = latest_approved_run(store, candidate.decoder, candidate.reference_set_sha256)
        note = "" if run else (f"no approved run of decoder {candidate.decoder!r} on reference set "
                               f"{candidate.reference_set!r} yet (approve one with `qa signoff --decision approve`)")
        return Baseline("approved", run, note)
    if spec.startswith("decoder:"):
        name = spec.split(":", 1)[1].strip()
        if not name:
            raise GateError(f"baseline {spec!r} names no decoder", "use decoder:NAME, e.g. decoder:bicubic")
        run = latest_finished_run(store, name, candidate.reference_set_sha256, candidate.seeds)
        note = "" if run else (f"no finished run of decoder {name!r} on reference set {candidate.reference_set!r}; "
                               f"run `qa run --decoder {name} --reference-set {candidate.reference_set}`")
        return Baseline(f"decoder:{name}", run, note)
    run = load_run(store, spec)
    if run.status != "finished":
        raise GateError(f"baseline run {run.run_id} is not finished (status {run.status})", "pick a finished run")
    if run.reference_set_sha256 != candidate.reference_set_sha256:
        raise GateError(f"baseline run {run.run_id} is on reference set {run.reference_set!r} "
                        f"({run.reference_set_sha256[:12]}), the candidate on {candidate.reference_set!r} "
                        f"({candidate.reference_set_sha256[:12]}): no images pair", "pick a run on the same set")
    return Baseline("run", run)


@dataclass
class GateOutcome:
    """A decided gate: every check, the overall verdict, and its row id in ``gates``."""

    run: RunInfo
    baselines: list[Baseline]
    policy: Policy
    results: list[CheckResult]
    verdict: str
    gate_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> bool:
        return blocking(self.results)

    def lines(self) -> list[str]:
        """One line per check, then the verdict (for terminals and logs)."""
        out = [f"gate of run {self.run.run_id} ({self.run.decoder}, track {self.run.track}) under "
               f"{self.policy.source or 'policy'} [sha256 {self.policy.sha256()[:12]}]"]
        out += [f"  baseline: {b.describe()}" for b in self.baselines]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  {r.verdict.upper():12s} {r.message}" for r in self.results]
        out.append(f"verdict: {self.verdict}" + (" (blocks the release)" if self.blocks else ""))
        return out


def baselines_for(store: Store, run: RunInfo, policy: Policy, spec: str | None) -> list[Baseline]:
    """The requested baseline plus the policy's decoder baseline (deduplicated; not the candidate's decoder)."""
    out: list[Baseline] = []
    if spec:
        out.append(resolve_baseline(store, run, spec))
    dec = policy.baseline_decoder
    if dec and dec != run.decoder and all(b.kind != f"decoder:{dec}" for b in out):
        out.append(resolve_baseline(store, run, f"decoder:{dec}"))
    return out


def evaluate(store: Store, run: RunInfo, policy: Policy, baselines: list[Baseline]) -> GateContext:
    """Run the policy's checks: every case decoded, each metric's bounds, each metric against each baseline."""
    ctx = GateContext(store, run, policy)
    ctx.cases_ok()
    for name, rule in policy.metrics.items():
        if rule.min is not None or rule.max is not None:
            ctx.bound(name, rule.min, rule.max)
        for b in baselines:
            if (rule.decoder_margin if b.is_decoder else rule.margin) is not None:
                ctx.against(name, b)
    return ctx


def store_gate(store: Store, run: RunInfo, policy: Policy, baselines: list[Baseline], results: list[CheckResult],
               notes: list[str] | None = None) -> tuple[str, str]:
    """Insert one ``gates`` row for these results; returns (gate_id, verdict).

    ``baseline_run_id``/``baseline_kind`` name the first baseline (the one asked for); details_json lists
    every baseline and every check.
    """
    verdict = overall_verdict(results)
    first = baselines[0] if baselines else Baseline("none")
    details = {
        "checks": [r.to_dict() for r in results],
        "baselines": [{"kind": b.kind, "run_id": b.run_id, "note": b.note} for b in baselines],
        "notes": list(notes or []),
        "blocks": blocking(results),
        "policy_source": policy.source,
    }
    gate_id = f"gate-{uuid.uuid4().hex[:12]}"
    with store.transaction() as con:
        con.execute("insert into gates values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [gate_id, run.run_id, first.run_id, first.kind, policy.sha256(), policy.to_json(), verdict,
                     json.dumps(details, default=str), datetime.now(UTC).replace(tzinfo=None)])
    return gate_id, verdict


def gate_run(store: Store, run_id: str, policy: Policy, baseline: str | None = "approved") -> GateOutcome:
    """Decide and store the gate of ``run_id`` (``latest`` allowed) under ``policy``."""
    run = load_run(store, run_id)
    baselines = baselines_for(store, run, policy, baseline)
    notes = [b.note for b in baselines if b.run is None and b.note]
    if run.track and policy.track != run.track:
        notes.append(f"policy is for track {policy.track!r}, run {run.run_id} is on track {run.track!r}")
    ctx = evaluate(store, run, policy, baselines)
    gate_id, verdict = store_gate(store, run, policy, baselines, ctx.results, notes)
    return GateOutcome(run, baselines, policy, ctx.results, verdict, gate_id, notes)
