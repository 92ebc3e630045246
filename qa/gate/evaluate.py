"""A whole gate: resolve baselines, run every check a policy asks for, store the verdict in ``gates``.

This is the one gate logic: ``qa gate`` calls :func:`gate_run`, and the pytest plugin asks the same functions
which metrics each test checks (:func:`metrics_for`) and which baselines apply (:func:`decoder_baseline`), so
both give the same checks, verdicts and reasons on the same store.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.errors import did_you_mean
from qa.gate.checks import Baseline, CheckResult, GateContext, blocking, overall_verdict
from qa.gate.data import (
    GateError,
    RunInfo,
    latest_finished_run,
    load_run,
    require_same_seeds,
    run_provenance,
    run_settings,
    settings_diff,
    settings_diff_text,
)
from qa.gate.policy import Policy
from qa.gate.worse import image_lines
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.gates import insert_gate
from qa.store.records import GateRecord

#: ``baseline_decoder = "plain"``: the candidate's own plain decode (see :func:`plain_baseline`)
PLAIN = "plain"
#: the metrics of the plain decode are named with this prefix (``baseline_psnr``; :mod:`qa.metrics.plain_baseline`)
PLAIN_PREFIX = "baseline_"
#: the baseline chosen for a first release: no run baseline at all
NONE_NOTE = "no baseline, chosen with --baseline none (the first release): absolute bounds and decoder baselines only"


def plain_baseline(candidate: RunInfo) -> Baseline:
    """The candidate's own plain decode as its decoder baseline (``baseline_decoder = "plain"``): bicubic at its
    factor for a pixel upsampler, the plain decode of the same latent at its size for a latent decoder, scored in
    the candidate's own run (``baseline_psnr`` for ``psnr``, :mod:`qa.metrics.plain_baseline`). It always fits
    the candidate's input and factor, and needs no other run."""
    return Baseline(f"decoder:{PLAIN}", candidate, origin=f"{candidate.decoder}'s own plain decode",
                    metric_prefix=PLAIN_PREFIX)


def is_baseline_file(spec: str) -> bool:
    """Whether ``spec`` names a baseline file (``qa baseline export``) rather than a run id or keyword."""
    return spec.endswith(".parquet") or ("/" in spec or "\\" in spec) or Path(spec).is_file()


def resolve_baseline(store: Store, candidate: RunInfo, spec: str, trusted: Any = None) -> Baseline:
    """Resolve ``approved``, ``none``, a baseline file, ``decoder:NAME`` or a run id for the candidate.

    ``approved`` is the verified approved run of the candidate's decoder on its reference set, checked against
    ``trusted`` (a :class:`qa.gate.signing.TrustedKeys` or file; default ``$QA_TRUSTED_KEYS``, then the
    ``trusted_keys`` setting); a baseline file is verified the same way. No approved run, a broken chain, a file
    that does not verify, an approved run that did not finish, or one on other reference content raise GateError
    (fail closed: ``qa gate`` exits 2, a pytest session records the baseline's ``error`` and its comparisons fail).
    ``decoder:NAME`` without a run gives a :class:`Baseline` with ``run`` None and a note; an explicit run id that
    does not exist, is unfinished or is on another reference set raises GateError.
    """
    spec = spec.strip()
    if not spec:
        raise GateError("empty baseline", "use 'approved', 'none', a baseline file, 'decoder:NAME' or a run id")
    if spec == "approved":
        from qa.gate.approved import approved_for

        found = approved_for(store, candidate, trusted)
        require_same_seeds(candidate, store, found.run, found.reader)
        return Baseline("approved", found.run, reader=found.reader, origin=found.describe(),
                        policy_sha256=found.row.policy_sha256)
    if spec == "none":
        return Baseline("none", None, NONE_NOTE)
    if is_baseline_file(spec):
        from qa.gate.baseline_file import approved_from_file

        found = approved_from_file(Path(spec), candidate, trusted)
        require_same_seeds(candidate, store, found.run, found.reader)
        return Baseline("approved", found.run, reader=found.reader, origin=found.describe(),
                        policy_sha256=found.row.policy_sha256)
    if spec.startswith("decoder:"):
        name = spec.split(":", 1)[1].strip()
        if not name:
            raise GateError(f"baseline {spec!r} names no decoder", "use decoder:NAME, e.g. decoder:bicubic")
        if name == PLAIN:
            return plain_baseline(candidate)
        run = latest_finished_run(store, name, candidate.reference_set_sha256, candidate.seeds)
        note = "" if run else (f"no finished run of decoder {name!r} on reference set {candidate.reference_set!r}; "
                               f"run `qa run --decoder {name} --reference-set {candidate.reference_set}`")
        return Baseline(f"decoder:{name}", run, note)
    from qa.gate.approved import unfinished

    run = load_run(store, spec)
    if problem := unfinished(run):  # the same refusal as an unfinished approved run or baseline file
        raise GateError(f"baseline run {run.run_id} cannot be a baseline: {problem}",
                        f"pick a finished run, or finish this one first with `qa run --resume {run.run_id}`")
    if run.reference_set_sha256 != candidate.reference_set_sha256:
        raise GateError(f"baseline run {run.run_id} is on reference set {run.reference_set!r} "
                        f"({run.reference_set_sha256[:12]}), the candidate on {candidate.reference_set!r} "
                        f"({candidate.reference_set_sha256[:12]}): no images pair", "pick a run on the same set")
    require_same_seeds(candidate, store, run, store)
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
    #: "degrade_sigma 0.0 -> 0.3" against the first baseline with a run ('' when there is none)
    settings: str = ""
    #: what identifies the runs (:func:`gate_provenance`): ``candidate``, and ``baseline`` (None without a run)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return blocking(self.results)

    def lines(self) -> list[str]:
        """One line per check, then the verdict (for terminals and logs)."""
        out = [f"gate of run {self.run.run_id} ({self.run.decoder}, track {self.run.track}) under "
               f"{self.policy.source or 'policy'} [sha256 {self.policy.sha256()[:12]}]"]
        out += [f"  baseline: {b.describe()}" for b in self.baselines]
        if self.settings:
            out.append(f"  settings vs {self.baselines[0].kind}: {self.settings}")
        out += [f"  {'' if n.startswith('warning:') else 'note: '}{n}" for n in self.notes]
        said = {f"baseline {b.kind} does not apply: {b.inapplicable}" for b in self.baselines if b.inapplicable}
        for r in self.results:  # a reason many checks share (a baseline that does not apply) is said once
            text = r.message if r.message not in said else f"{r.title}: as above"
            said.add(r.message)
            out += [f"  {r.verdict.upper():12s} {text}"] + image_lines(r.images, " " * 16)
        failed = [r.title for r in self.results if r.blocks]
        out.append(f"verdict: {self.verdict}" + (" (blocks the release)" if self.blocks else "")
                   + (f"; failed: {', '.join(failed)}" if failed else ""))
        return out


#: the checks a policy can ask for per metric (the suites have one test function each)
CHECKS = ("bounds", "baseline", "decoder_baseline", "worst_images")


def metrics_for(policy: Policy, check: str) -> list[str]:
    """The policy's metrics that ``check`` applies to, in file order: ``bounds`` (a min or max),
    ``baseline`` (a margin or relative margin), ``decoder_baseline`` (a decoder margin), ``worst_images``
    (an image margin or tail quantile). The suites' tests are parametrized over exactly these."""
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}; one of {', '.join(CHECKS)}")
    keep = {
        "bounds": lambda r: r.min is not None or r.max is not None,
        "baseline": lambda r: r.compares(False),
        "decoder_baseline": lambda r: r.compares(True),
        "worst_images": lambda r: r.checks_worst_images(),
    }[check]
    return [m for m, r in policy.metrics.items() if keep(r)]


def scale_mismatch(candidate: str, candidate_scale: int | None, baseline_decoder: str,
                   baseline_scale: int | None) -> str:
    """Why a paired comparison of ``candidate`` with ``baseline_decoder`` would be unfair ('' when it is fair or
    a scale is unknown): decoders of different upscale factors decode inputs of different sizes."""
    if candidate_scale is None or baseline_scale is None or candidate_scale == baseline_scale:
        return ""
    return mismatch_text(candidate, candidate_scale, baseline_decoder, baseline_scale)


def mismatch_text(candidate: str, candidate_scale: int | None, baseline_decoder: str,
                  baseline_scale: int | None) -> str:
    """The reason a decoder baseline of another scale does not apply (None: a scale that is not known)."""
    return (f"baseline decoder {baseline_decoder!r} upscales x{baseline_scale} and {candidate!r} x{candidate_scale}: "
            f"their inputs differ, so a paired comparison would be unfair; pass --baseline decoder:NAME of the same "
            f"scale")


def decoder_inapplicable(store: Store, run: RunInfo, baseline_decoder: str) -> str:
    """:func:`scale_mismatch` of ``run`` and ``baseline_decoder`` with the scales stored on their run rows (the
    baseline decoder's from its latest run with a recorded scale; unknown when it has none yet)."""
    mine = run.scale if run.scale is not None else store_runs.decoder_scale(store, run.decoder)
    return scale_mismatch(run.decoder, mine, baseline_decoder, store_runs.decoder_scale(store, baseline_decoder))


def decoder_baseline(store: Store, run: RunInfo, policy: Policy) -> Baseline | None:
    """The policy's decoder baseline for ``run``: None when the policy names none or names the candidate's own
    decoder; a baseline with ``inapplicable`` set when the comparison would be unfair."""
    dec = policy.baseline_decoder
    if not dec or dec == run.decoder:
        return None
    if dec == PLAIN:
        return plain_baseline(run)
    why = decoder_inapplicable(store, run, dec)
    if why:
        return Baseline(f"decoder:{dec}", None, why, inapplicable=why)
    return resolve_baseline(store, run, f"decoder:{dec}")


def _known_decoder(store: Store, spec: str) -> None:
    """GateError (exit 2: the gate cannot be decided) when a requested ``decoder:NAME`` baseline names a decoder
    with no run at all in the store (a typo, or a decoder never run here): no comparison is possible, and a
    release verdict would blame the candidate for it."""
    if not spec.startswith("decoder:"):
        return
    name = spec.split(":", 1)[1].strip()
    if not name or name == PLAIN:
        return
    known = store_runs.decoder_names(store)
    if name not in known:
        raise GateError(f"baseline {spec!r}: no run of decoder {name!r} in {store.path} (decoders with runs: "
                        f"{', '.join(known) or 'none'})",
                        did_you_mean(name, known) or f"run it first: `qa run --decoder {name} --reference-set SET`")


def baselines_for(store: Store, run: RunInfo, policy: Policy, spec: str | None, trusted: Any = None) -> list[Baseline]:
    """The requested baseline plus the policy's decoder baseline (deduplicated; not the candidate's decoder)."""
    out: list[Baseline] = []
    if spec:
        _known_decoder(store, spec)
        out.append(resolve_baseline(store, run, spec, trusted))
    dec = decoder_baseline(store, run, policy)
    if dec is not None and all(b.kind != dec.kind for b in out):
        out.append(dec)
    return out


def evaluate(store: Store, run: RunInfo, policy: Policy, baselines: list[Baseline]) -> GateContext:
    """Run the policy's checks in the suites' order: every case decoded, bounds, each metric against the run
    baseline, against the decoder baseline, and the worst images against the run baseline."""
    ctx = GateContext(store, run, policy)
    for b in baselines:
        ctx.read_from(b)
    ctx.cases_ok()
    ctx.policies_of(baselines)  # an approved baseline: the policy it was signed under
    for name in metrics_for(policy, "bounds"):
        rule = policy.rule(name)
        ctx.bound(name, rule.min, rule.max)
    for b in [b for b in baselines if not b.is_decoder]:
        for name in metrics_for(policy, "baseline"):
            ctx.against(name, b)
    for b in [b for b in baselines if b.is_decoder]:
        for name in metrics_for(policy, "decoder_baseline"):
            ctx.against(name, b)
    for b in [b for b in baselines if not b.is_decoder]:
        for name in metrics_for(policy, "worst_images"):
            ctx.worst_images(name, b)
    return ctx


def gate_notes(run: RunInfo, policy: Policy, baselines: list[Baseline]) -> list[str]:
    """Notes a gate carries: baselines without a run, a policy of another track, a run gated against itself."""
    notes = [b.note for b in baselines if b.run is None and b.note and not b.inapplicable]  # that one is on its line
    if run.track and policy.track != run.track:
        notes.append(f"policy is for track {policy.track!r}, run {run.run_id} is on track {run.track!r}")
    for b in baselines:
        if b.run is not None and b.run.run_id == run.run_id and not b.metric_prefix:
            notes.append(f"warning: the {b.kind} baseline is the candidate run {run.run_id} itself, so its "
                         "comparisons cannot fail; gate a newer run, or pass --baseline RUN_ID")
    return notes


def settings_against(store: Store, run: RunInfo, baselines: list[Baseline]) -> tuple[str, list[list[object]]]:
    """The candidate's decoder settings against the first baseline that has a run of the same decoder:
    (one line of text, [setting, baseline value, candidate value] rows); ('', []) when there is none."""
    for b in baselines:
        if b.run is not None and b.run.decoder == run.decoder and b.run.run_id != run.run_id:
            mine, theirs = run_settings(store, run.run_id), run_settings(b.reader or store, b.run.run_id)
            return (settings_diff_text(mine, theirs, b.kind),
                    [[k, old, new] for k, old, new in settings_diff(mine, theirs)])
    return "", []


def gate_provenance(store: Store, run: RunInfo, baselines: list[Baseline]) -> dict[str, Any]:
    """:func:`run_provenance` of the candidate and of the first baseline with a run of its own (not the candidate's
    own plain decode), that baseline's ``kind`` added; ``baseline`` None when there is none."""
    found = next((b for b in baselines if b.run is not None and not b.metric_prefix), None)
    base = None if found is None or found.run is None else \
        {"kind": found.kind, **run_provenance(found.reader or store, found.run)}
    return {"candidate": run_provenance(store, run), "baseline": base}


def complete(policy: Policy, baselines: list[Baseline], results: list[CheckResult], run: RunInfo | None = None
             ) -> bool:
    """Whether ``results`` hold every check :func:`evaluate` makes for these baselines and, given the candidate
    ``run``, for the policy's decoder baseline (:func:`decoder_baseline`: required whether or not the caller had
    it; a pytest session run with ``-k`` that deselects its tests, or any other check, stores a partial gate, and a
    partial gate never unlocks an approval)."""
    want = {("cases", "case", "")} | {("bounds", m, "") for m in metrics_for(policy, "bounds")}
    dec = policy.baseline_decoder
    if run is not None and dec and dec != run.decoder and all(b.kind != f"decoder:{dec}" for b in baselines):
        baselines = [*baselines, Baseline(f"decoder:{dec}")]
    for b in baselines:
        if b.is_decoder:
            want |= {("baseline", m, b.kind) for m in metrics_for(policy, "decoder_baseline")}
        else:
            want |= {("baseline", m, b.kind) for m in metrics_for(policy, "baseline")}
            want |= {("worst_images", m, b.kind) for m in metrics_for(policy, "worst_images")}
        if b.policy_sha256:
            want.add(("policy", "policy", b.kind))
    return want <= {(r.kind, r.metric, r.baseline_kind) for r in results}


def store_gate(store: Store, run: RunInfo, policy: Policy, baselines: list[Baseline], results: list[CheckResult],
               notes: list[str] | None = None) -> tuple[str, str]:
    """Insert one ``gates`` row for these results; returns (gate_id, verdict).

    ``baseline_run_id``/``baseline_kind`` name the first baseline (the one asked for); details_json lists
    every baseline and every check.
    """
    verdict = overall_verdict(results)
    first = baselines[0] if baselines else Baseline("")  # "none" only when chosen: it may unlock a first approval
    if first.error:  # a baseline that could not be used is recorded as such, never as "none"
        first = Baseline(f"{first.kind} (unusable)")
    details = {
        "checks": [r.to_dict() for r in results],
        "baselines": [{"kind": b.kind, "run_id": b.run_id, "note": b.note or b.error, "origin": b.origin}
                      for b in baselines],
        "notes": list(notes or []),
        "blocks": blocking(results),
        "complete": complete(policy, baselines, results, run),
        "policy_source": policy.source,
        "settings": run_settings(store, run.run_id),
        "settings_diff": settings_against(store, run, baselines)[1],
    }
    gate_id = f"gate-{uuid.uuid4().hex[:12]}"
    insert_gate(store, GateRecord(gate_id, run.run_id, first.run_id, first.kind, policy.sha256(), policy.to_json(),
                                  verdict, json.dumps(details, default=str), datetime.now(UTC).replace(tzinfo=None)))
    return gate_id, verdict


def gate_run(store: Store, run_id: str, policy: Policy, baseline: str | None = "approved",
             decoder: str | None = None, trusted: Any = None) -> GateOutcome:
    """Decide and store the gate of ``run_id`` (``latest``: the latest run of ``decoder``) under ``policy``;
    ``trusted``: the trusted keys that verify an ``approved`` or file baseline (see :func:`resolve_baseline`)."""
    run = load_run(store, run_id, decoder)
    baselines = baselines_for(store, run, policy, baseline, trusted)
    ctx = evaluate(store, run, policy, baselines)
    return decide(store, run, policy, baselines, ctx.results)


def decide(store: Store, run: RunInfo, policy: Policy, baselines: list[Baseline],
           results: list[CheckResult]) -> GateOutcome:
    """Store the gate of ``results`` (with its notes) and return it: the one place a gate is assembled, for
    ``qa gate`` and the pytest session alike (whether it is complete: :func:`complete`)."""
    notes = gate_notes(run, policy, baselines)
    gate_id, verdict = store_gate(store, run, policy, baselines, results, notes)
    return GateOutcome(run, baselines, policy, list(results), verdict, gate_id, notes,
                       settings_against(store, run, baselines)[0], gate_provenance(store, run, baselines))
