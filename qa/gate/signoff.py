"""Release sign-offs: append-only rows in ``signoffs``, chained by sha256, signed by the reviewer's key, and
(format 3) signing the digest of the run's evidence.

A row's hash covers :mod:`qa.gate.signoff_format`'s canonical text: the decision, the gate and policy it rests
on, the signer's key, the run's decoder and reference set, and the sha256 of everything the gate read of the run
(:mod:`qa.gate.evidence`). The reviewer signs the hash with an Ed25519 key (:mod:`qa.gate.signing`); the
signature and proof fields go into ``signoff_proofs`` (same transaction). :mod:`qa.gate.signoff_verify` checks
the chain against a trusted-keys file outside the database and the head against the anchor (:mod:`qa.store.anchor`).

Approval is judged against the approved baseline: without ``override``, a run may be approved only when its
latest gate under the track's shipped policy (or the ``policy`` named, whose sha256 is signed) **against the
current verified approved run** of its decoder and reference set passed. Before the first approval of a decoder
on a reference set, that is a gate against no baseline, chosen explicitly (``qa gate --baseline none``).
Gates against the run itself or against any other baseline never unlock approval. Before a row is appended
the whole chain is verified; the check, the row and the anchor are written while holding the database's lock.
Rows of revoked keys do not block sign-offs by keys still trusted. A run that did not finish is never approved,
``override`` or not (:func:`not_approvable`): an override passes a failing gate, not evidence that is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.gate.approved import Approved, approval_terms, approved_run, broken_error, resolve_trusted, unfinished
from qa.gate.baseline import Baseline
from qa.gate.data import GateError, load_run
from qa.gate.evaluate import NONE_NOTE, decoder_baseline, evaluate
from qa.gate.evidence import evidence
from qa.gate.policy import Policy, default_policy_path, load_policy
from qa.gate.signing import SigningError, SigningKey, TrustedKeys, fingerprint, load_signing_key
from qa.gate.signoff_format import (
    DECISIONS,
    EVIDENCE_FORMAT_OF_ROW,
    HEAD_DOMAIN,
    ROW_DOMAIN,
    ROW_FORMAT,
    canonical_row_v4,
    gate_passed,
    head_message,
    row_hash,
    signs_evidence,
)
from qa.gate.signoff_verify import ChainCheck, check_chain, evidence_problems, time_problem
from qa.plain_text import refusal
from qa.store import Store
from qa.store import runs as store_runs
from qa.store import signoffs as store_signoffs
from qa.store.anchor import anchor_path as _anchor_path
from qa.store.anchor import write_anchor
from qa.store.db import Snapshot
from qa.store.gates import latest_gate_against
from qa.store.records import NewSignoff, RunInfo, SignoffRow, parse_json

__all__ = ["DECISIONS", "anchor_path", "approval_basis", "chain_report", "not_approvable", "record_signoff",
           "signoff_rows", "step_hook", "verify_chain"]

#: test seam: called with "pending-anchor-written" and "committed" while the lock is held
step_hook: Callable[[str], None] | None = None


def anchor_path(store: Store) -> Path:
    """The anchor file holding the chain's head: ``<db>.signoff-head``."""
    return _anchor_path(store.path)


def _policy_of(track: str, policy: str | Path | None) -> tuple[Policy, str]:
    """The named policy, or the track's shipped one, and its name in words."""
    path = Path(policy) if policy is not None else default_policy_path(track or "decode")
    return load_policy(path), (f"policy {path}" if policy is not None else f"the shipped policy {path.name}")


def _recomputed(db: Snapshot, run: RunInfo, policy: Policy, base: Baseline) -> str:
    """Why the policy's checks against the run baseline and its decoder baseline, recomputed now from the stored
    numbers, block ('' when they do not): a gate row is not signed, so a "pass" written into ``gates`` by hand, or
    stored by a session that left checks out, never unlocks an approval."""
    baselines = [base]
    dec = decoder_baseline(db, run, policy)  # type: ignore[arg-type]  # a Snapshot reads like a Store
    if dec is not None:
        baselines.append(dec)
    ctx = evaluate(db, run, policy, baselines)  # type: ignore[arg-type]
    failed = [r.title for r in ctx.results if r.blocks]
    return ", ".join(failed)


def not_approvable(run: RunInfo) -> str:
    """Why ``run`` can never be approved, whatever ``--override`` says ('' when it may be): it did not finish, so its
    evidence is partial; a partial approved run would become the baseline every later gate compares with."""
    problem = unfinished(run)
    if not problem:
        return ""
    return (f"{problem}; an unfinished run is never approved, with --override or without (--override passes a "
            "failing gate, not results that were never computed)")


def approval_basis(db: Snapshot, check: ChainCheck, run: RunInfo, policy: Policy, policy_name: str,
                   origin: str) -> tuple[str, str]:
    """(gate_id, reason): the gate an approval of ``run`` rests on, and why it cannot ('' when it can).

    The gate must be the run's latest under the policy against the current verified approved run of its decoder
    on its reference set (kind ``approved``), or, when there is none yet, against no baseline (kind ``none``,
    chosen with ``--baseline none``); and it must have passed. Raises GateError when the chain is broken or the
    approved run's evidence changed. The gate's checks against that baseline are recomputed too. An approved run
    that did not finish is no baseline: the run is then judged against none, and approving it needs an override."""
    if refused := not_approvable(run):  # record_signoff refuses it outright, override or not
        return "", refused
    if run.track and policy.track != run.track:  # another track's rules leave this track's checks out
        return "", (f"{policy_name} is for track {policy.track!r}, run {run.run_id} is on track {run.track!r}: "
                    "its checks are not this track's")
    current = approved_run(db, check, run.decoder, run.reference_set, origin)
    if current is not None and current.run.run_id == run.run_id:
        return "", f"run {run.run_id} is already the approved run (sign-off seq {current.row.seq})"
    if current is not None and current.run.reference_set_sha256 != run.reference_set_sha256:
        return "", (f"the approved run {current.run.run_id} is on other content of reference set "
                    f"{run.reference_set!r} ({current.run.reference_set_sha256[:12]}, this run "
                    f"{run.reference_set_sha256[:12]}): approving this run re-baselines the decoder")
    replaced = ""
    if current is not None and (problem := unfinished(current.run)):  # approved by a qa that let --override pass it
        replaced = (f"the approved run cannot be a baseline ({problem}), so this run is judged by its gate against "
                    "no baseline, and approving it replaces that approval")
        current = None
    gate_id, reason = _basis(db, run, policy, policy_name, current)
    return gate_id, "; ".join(r for r in (replaced, reason) if r)


def _basis(db: Snapshot, run: RunInfo, policy: Policy, policy_name: str, current: Approved | None) -> tuple[str, str]:
    """:func:`approval_basis` once the baseline is known: ``current`` (the approved run) or, None, no baseline."""
    policy_sha = policy.sha256()
    kind, base = ("approved", current.run.run_id) if current is not None else ("none", None)
    g = latest_gate_against(db, run.run_id, policy_sha, kind, base)
    against = f"the approved run {base}" if base else "no baseline (the first release: `--baseline none`)"
    if g is None:
        how = "--baseline approved" if base else "--baseline none"
        return "", (f"run {run.run_id} has no gate under {policy_name} (sha256 {policy_sha[:12]}) against {against}; "
                    f"gate it with `qa gate --run {run.run_id} {how}` (gates against itself or other baselines "
                    "never unlock approval)")
    details, _ = parse_json(g.details_json)
    if not isinstance(details, dict) or details.get("complete") is not True:
        return g.gate_id, (f"the latest gate of run {run.run_id} against {against} ({g.gate_id}) did not make every "
                           "check of the policy (a pytest session with -k?): gate it with `qa gate`")
    if not gate_passed(g.verdict, g.details_json):
        return g.gate_id, f"the latest gate of run {run.run_id} under {policy_name} against {against} ({g.gate_id}) is {g.verdict}"
    failed = _recomputed(db, run, policy, Baseline("approved", current.run, policy_sha256=current.row.policy_sha256)
                         if current is not None
                         else Baseline("none", None, NONE_NOTE))
    if failed:
        return g.gate_id, (f"gate {g.gate_id} says {g.verdict}, but its checks recomputed from the stored numbers "
                           f"fail ({failed}): the gate row does not match the evidence")
    return g.gate_id, ""


def _reviewer_of(key: SigningKey, trusted: TrustedKeys, reviewer: str | None) -> str:
    names = trusted.principals(key.public)
    listed = trusted.keys.get(key.public)
    if not names:
        if listed:
            why = trusted.why_not(key.public, sorted(listed)[0], None)
            raise SigningError(f"the key {key.path} may not sign qa sign-offs now: {why}",
                               "have the trusted-keys line fixed, or sign with another key")
        raise SigningError(f"the key {key.path} ({fingerprint(key.public)}) is not in the trusted-keys file "
                           f"{trusted.path}", f"have this line reviewed into it: 'NAME {key.public}'")
    reviewer = (reviewer or "").strip()
    if not reviewer:
        if len(names) != 1:
            raise QAError(f"the key {key.path} may sign as {', '.join(sorted(names))}", "pass --reviewer NAME")
        return next(iter(names))
    if reviewer not in names:
        raise SigningError(f"the key {key.path} may not sign as {reviewer!r} (its names in {trusted.path}: "
                           f"{', '.join(sorted(names))})", "pass --reviewer with one of those names, or your own --key")
    return reviewer


def record_signoff(store: Store, run_id: str, reviewer: str | None, decision: str, note: str | None = "",
                   override: bool = False, *, key: SigningKey | str | Path | None = None,
                   trusted: TrustedKeys | str | Path | None = None, policy: str | Path | None = None,
                   decoder: str | None = None) -> int:
    """Append a signed sign-off; returns its ``seq``.

    ``run_id``: a run id or ``latest`` (of ``decoder``). ``key``: the reviewer's private key (default
    ``$QA_SIGNING_KEY``); ``trusted``: the trusted-keys file (default ``$QA_TRUSTED_KEYS``, then the
    ``trusted_keys`` setting), which must list the key under ``reviewer`` (default: the key's only name).
    ``policy``: judge the approval by this policy file instead of the track's shipped one (its sha256 is signed).
    An approval not backed by a passing gate against the approved baseline (see :func:`approval_basis`) needs
    ``override=True`` and a note. Refuses (QAError, nothing written) when the chain is broken, and an approval of a
    run that did not finish whatever ``override`` says (:func:`not_approvable`).
    """
    key = key if isinstance(key, SigningKey) else load_signing_key(key)
    trusted = resolve_trusted(trusted)
    reviewer = _reviewer_of(key, trusted, reviewer)
    note = (note or "").replace("\r\n", "\n").strip()
    for what, text, allow in (("reviewer name", reviewer, ""), ("note", note, "\n\t")):
        if refused := refusal(what, text, allow):
            raise QAError(f"{refused}; nothing was recorded")
    if decision not in DECISIONS:
        raise QAError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    try:
        run = load_run(store, run_id, decoder)
    except GateError as exc:
        raise QAError(str(exc).split("\n")[0], "list runs with `qa status DECODER`") from exc
    pol, policy_name = _policy_of(run.track, policy) if decision == "approve" else (None, "")
    policy_sha = pol.sha256() if pol is not None else ""
    finished: dict[str, dict[str, Any]] = {}

    def committed() -> None:  # still under the lock
        _step("committed")
        write_anchor(store.path, finished["head"])

    with store.transaction(after_commit=committed) as con:  # one lock: chain check, anchor and row
        db = Snapshot(con, store.path)
        run = store_runs.get_run(db, run.run_id) or run  # its status as of this transaction
        check = check_chain(db, store.path, trusted)
        if check.broken:
            err = broken_error(check, f"the store {store.path}")
            raise QAError(f"{str(err).splitlines()[0]}; nothing was recorded", err.hint)
        gate_id = ""
        if decision == "approve" and (refused := not_approvable(run)):
            raise QAError(f"{refused}; nothing was recorded",
                          f"finish it with `qa run --resume {run.run_id}`, or start a new run (`qa run --decoder "
                          f"{run.decoder}`); then gate that run with `qa gate --run RUN` and approve it")
        if decision == "approve":
            assert pol is not None
            gate_id, reason = approval_basis(db, check, run, pol, policy_name, f"the store {store.path}")
            if reason and not override:
                raise QAError(f"{reason}; approving it needs an explicit override",
                              "pass --override with a --note that says why")
            if reason and not note:
                raise QAError(f"overriding ({reason}) needs a note", "pass --note 'why this release is acceptable'")
        ev = evidence(db, run.run_id, gate_id, policy_sha, EVIDENCE_FORMAT_OF_ROW[ROW_FORMAT])
        if ev.problems:
            raise QAError(f"the evidence of run {run.run_id} cannot be signed: {ev.problems[0]}; nothing was recorded")
        head = check.head
        seq, prev = int(head["seq"]) + 1, str(head["hash"])
        signed_at = datetime.now(UTC).replace(tzinfo=None)
        if check.future:
            r = check.future[0]
            raise QAError(f"{check.where(r)} is dated {r.signed_at:%Y-%m-%d %H:%M}, in the future, by a key the "
                          "trusted-keys file still lists: a row appended after it would stop counting once that "
                          "date passed; nothing was recorded",
                          f"remove the key of {r.reviewer!r} from {trusted.path} (revoke it: its rows stop counting), "
                          "then sign again")
        clock = time_problem(db, signed_at, gate_id, check.latest)
        if clock:
            raise QAError(f"this machine's clock cannot be right for a sign-off: {clock}; nothing was recorded",
                          "set the clock right (e.g. NTP) and sign again")
        h = row_hash(prev, canonical_row_v4(seq, run.run_id, reviewer, decision, note, override, signed_at, prev,
                                            gate_id, policy_sha, key.public, ev.sha256, run.decoder,
                                            run.reference_set, run.reference_set_sha256))
        new_head = {"seq": seq, "hash": h, "signer": key.public,
                    "signature": key.sign(HEAD_DOMAIN, head_message(seq, h))}
        write_anchor(store.path, head, pending=new_head)
        _step("pending-anchor-written")
        store_signoffs.append_signoff(con, NewSignoff(
            seq, run.run_id, reviewer, decision, note, bool(override), signed_at, prev, h, gate_id, policy_sha,
            key.public, key.sign(ROW_DOMAIN, h.encode()), ev.sha256, run.decoder, run.reference_set,
            run.reference_set_sha256, ROW_FORMAT))
        finished["head"] = new_head
    return seq


def _step(name: str) -> None:
    if step_hook is not None:
        step_hook(name)


def chain_report(store: Store, trusted: TrustedKeys | str | Path | None = None) -> tuple[ChainCheck, list[str]]:
    """The verified chain and every evidence problem of its counting approvals (``qa signoff verify``)."""
    trusted = resolve_trusted(trusted)
    with store.snapshot() as db:
        check = check_chain(db, store.path, trusted)
        evidence_found: list[str] = []
        for r in check.rows:
            if r.decision == "approve" and signs_evidence(r.format) and r.seq not in check.not_counting:
                evidence_found += evidence_problems(db, r)
                run = store_runs.get_run(db, r.run_id)
                terms = approval_terms(r, run.track) if run is not None else ""
                if terms:  # counts, and says what it rests on
                    check.notes.append(f"{check.where(r)} approves{terms.replace(';', ',', 1)}")
    return check, evidence_found


def verify_chain(store: Store, trusted: TrustedKeys | str | Path | None = None) -> list[str]:
    """Every finding (empty when intact and every row counts): broken rows and anchor, rows that do not count,
    and approvals whose evidence changed. ``trusted``: the trusted-keys file (default ``$QA_TRUSTED_KEYS``)."""
    check, evidence_found = chain_report(store, trusted)
    return check.findings + evidence_found


def signoff_rows(store: Store, run_id: str | None = None, seq: int | None = None) -> list[SignoffRow]:
    """Every sign-off (or of one run, or one ``seq``), oldest first; read as stored, not verified."""
    with store.snapshot() as db:
        return store_signoffs.signoff_rows(db, [run_id] if run_id is not None else None, seq)
