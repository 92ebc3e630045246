"""Which run is the approved baseline: decided by verification only.

"The approved run" of a decoder on a reference set is the latest approval in the sign-off chain that counts
(signed by a trusted key within its bounds, :mod:`qa.gate.signoff_verify`) and is still the run's latest
counting decision, and whose evidence digest recomputed from the store (or from a baseline file) matches the
signed one. A row that does not count is never used. When the chain is broken, or the latest approval's
evidence changed, nothing is chosen: :class:`GateError` with the reason (exit 2), never an older approval.
The reference set is matched by name; an approved run on other content of that name is a failure naming both
content hashes (:func:`require_same_content`). An approved run that did not finish (approved by a qa that let
``--override`` pass it) is never a baseline either (:func:`require_finished`): its results cover part of the set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qa.gate.data import GateError
from qa.gate.policy import default_policy_path
from qa.gate.signing import TRUSTED_ENV, SigningError, TrustedKeys, load_trusted_keys
from qa.gate.signoff_format import signs_evidence
from qa.gate.signoff_verify import ChainCheck, check_chain, evidence_problems
from qa.gate.standing import shipped_policy_sha
from qa.store import Store
from qa.store import runs as store_runs
from qa.store.db import Reader
from qa.store.records import RunInfo, SignoffRow

#: where the trusted-keys file comes from, for the hint of every command that needs one
TRUSTED_HINT = (f"pass --trusted-keys FILE (git's allowed_signers format), set ${TRUSTED_ENV}, or set "
                "trusted_keys in [tool.qa] / qa.toml")


@dataclass(frozen=True)
class Approved:
    """The verified approved run, its approval row, and where its rows are read from (``origin`` in words)."""

    run: RunInfo
    row: SignoffRow
    reader: Reader
    origin: str

    def describe(self) -> str:
        return (f"run {self.run.run_id}, approved by {self.row.reviewer} at {self.row.signed_at:%Y-%m-%d %H:%M} "
                f"(sign-off seq {self.row.seq}, verified, from {self.origin}){approval_terms(self.row, self.run.track)}")


def approval_terms(row: SignoffRow, track: str) -> str:
    """What a reader of "approved by ..." must also know: '' for an approval that rests on a passing gate under
    the track's shipped policy; else "; with an override" and/or "; under policy <sha> (not the shipped ...)".
    A policy file passed to ``qa signoff --policy`` is the signer's choice and may be weaker than the shipped
    one, or the shipped file may have been edited since (a gate under it then cannot pass against this approval:
    :meth:`qa.gate.baseline.Baseline.policy_problem`), so every place that names the approved run says so."""
    out = "; with an override" if row.override else ""
    shipped_sha = shipped_policy_sha(track)  # '' when the track has no shipped policy here
    if shipped_sha and row.policy_sha256 and row.policy_sha256 != shipped_sha:
        out += (f"; under policy {row.policy_sha256[:12]}, not the shipped "
                f"{default_policy_path(track or 'decode').name} as it is now ({shipped_sha[:12]}): it was judged by "
                "other rules, and either may be the weaker")
    return out


def resolve_trusted(trusted: TrustedKeys | str | Path | None) -> TrustedKeys:
    """The trusted keys: the object, a file, or (None) ``$QA_TRUSTED_KEYS`` then the ``trusted_keys`` setting."""
    if isinstance(trusted, TrustedKeys):
        return trusted
    if trusted is None:
        from qa.settings import get_settings

        trusted = os.environ.get(TRUSTED_ENV) or get_settings().trusted_keys
    if not trusted:
        raise SigningError("approvals are verified against a trusted-keys file, and none was given", TRUSTED_HINT)
    return load_trusted_keys(trusted)


def latest_decisions(check: ChainCheck) -> dict[str, SignoffRow]:
    """run id -> its latest sign-off that counts."""
    out: dict[str, SignoffRow] = {}
    for r in check.rows:
        if check.counts(r):
            out[r.run_id] = r
    return out


def approvals(check: ChainCheck) -> list[SignoffRow]:
    """Counting approvals that sign evidence (row formats 3 and 4) and are still their run's latest counting
    decision, newest first."""
    latest = latest_decisions(check)
    return [r for r in reversed(check.rows) if r.decision == "approve" and signs_evidence(r.format)
            and latest.get(r.run_id) is r]


def broken_error(check: ChainCheck, origin: str) -> GateError:
    """The error every command that needs a baseline stops with when the chain is broken."""
    return GateError(f"the sign-off chain of {origin} does not verify ({len(check.broken)} problem(s), first: "
                     f"{check.broken[0]}): no approved baseline can be trusted",
                     "run `qa signoff verify` for every problem; restore the database and its anchor from a backup "
                     "(or the baseline file from git)")


def approved_run(db: Reader, check: ChainCheck, decoder: str, reference_set: str, origin: str,
                 source: Reader | None = None) -> Approved | None:
    """The verified approved run of ``decoder`` on reference set ``reference_set`` (by name), or None when no
    counting approval exists. Raises GateError when the chain is broken or its evidence changed."""
    if check.broken:
        raise broken_error(check, origin)
    mine = [r for r in approvals(check) if r.decoder == decoder and r.reference_set == reference_set]
    if not mine:
        return None
    row = mine[0]
    problems = evidence_problems(db, row)
    if problems:
        raise GateError(f"the approved run {row.run_id} of {decoder} in {origin} does not verify: "
                        + "; ".join(problems), "the evidence it signed was changed: restore it from a backup (or "
                        "the baseline file from git); `qa signoff verify` lists every change")
    run = store_runs.get_run(db, row.run_id)
    if run is None:  # evidence_problems names a missing run; kept for type narrowing
        raise GateError(f"the approved run {row.run_id} is not in {origin}")
    return Approved(run, row, source if source is not None else db, origin)


def no_approved_error(check: ChainCheck, decoder: str, reference_set: str, origin: str) -> GateError:
    """"No approved run" as a failure that says what exists and what to do."""
    others = sorted({f"{r.reference_set!r} (content {r.reference_set_sha256[:12]})" for r in approvals(check)
                     if r.decoder == decoder and r.reference_set != reference_set})
    skipped = sum(1 for r in check.rows if r.decision == "approve" and r.seq in check.not_counting)
    return GateError(
        f"no approved run of decoder {decoder!r} on reference set {reference_set!r} in {origin}"
        + (f" (it has approvals on {', '.join(others)})" if others else "")
        + (f"; {skipped} approval(s) in the chain do not count (`qa signoff verify` says why)" if skipped else ""),
        "gate against a baseline file (--baseline FILE from `qa baseline export`), or, for the first release of "
        "this decoder, gate with --baseline none (absolute bounds and decoder baselines only) and approve that")


def require_same_content(approved: Approved, candidate: RunInfo) -> None:
    """GateError when the approved run was made on other content of the candidate's reference set."""
    if approved.run.reference_set_sha256 != candidate.reference_set_sha256:
        raise GateError(
            f"the approved run {approved.run.run_id} of {candidate.decoder!r} was made on reference set "
            f"{approved.run.reference_set!r} with content sha256 {approved.run.reference_set_sha256}; the candidate "
            f"{candidate.run_id} on content sha256 {candidate.reference_set_sha256}: no images pair, nothing can be "
            "compared",
            "restore the reference set to the approved content, or re-baseline: run the approved release's settings on "
            "the new content and approve it with `qa signoff --override --note 'reference set changed: ...'`")


def unfinished(run: RunInfo) -> str:
    """Why ``run`` holds only part of its evidence: it did not finish ('' when its status is ``finished``). Such a run
    is never approved and never a baseline, whatever a sign-off says: ``--override`` passes a failing gate, not
    results that were never computed."""
    if run.status == "finished":
        return ""
    why = f": {run.error}" if run.error else ""
    return (f"run {run.run_id} of {run.decoder!r} did not finish (status {run.status}{why}): its results cover only "
            "the cases it got to")


def require_finished(approved: Approved) -> None:
    """GateError when the approved run did not finish (an approval recorded before qa refused it): comparing with
    it would judge the candidate on the images the baseline happens to have, so the gate fails closed."""
    problem = unfinished(approved.run)
    if problem:
        raise GateError(
            f"the approved run in {approved.origin} (sign-off seq {approved.row.seq}) cannot be a baseline: {problem}",
            f"approve a finished run in its place: `qa run --decoder {approved.run.decoder}`, `qa gate --run RUN "
            "--baseline none`, then `qa signoff --run RUN --decision approve --override --note 'replaces the "
            "unfinished approved run'` (resuming the approved run would change the evidence its approval signed)")


def chain_of(db: Reader, db_path: Path, trusted: TrustedKeys | str | Path | None) -> ChainCheck:
    """The verified chain of the store read through ``db``. Without trusted keys (none given, no
    ``$QA_TRUSTED_KEYS``, no setting) only an empty chain can be checked (its anchor); a chain with rows then
    raises SigningError saying where the keys come from."""
    try:
        keys: TrustedKeys | None = resolve_trusted(trusted)
    except SigningError:
        if trusted is not None:
            raise
        keys = None
    check = check_chain(db, db_path, keys or TrustedKeys(Path("(no trusted-keys file)")))
    if keys is None and check.rows:
        raise SigningError(f"{db_path} holds {len(check.rows)} sign-off(s); which of them count can only be "
                           "verified against a trusted-keys file, and none was given", TRUSTED_HINT)
    return check


def store_chain(store: Store, trusted: TrustedKeys | str | Path | None) -> ChainCheck:
    """:func:`chain_of` on a store."""
    with store.snapshot() as db:
        return chain_of(db, store.path, trusted)


def approved_in_store(store: Store, decoder: str, reference_set: str,
                      trusted: TrustedKeys | str | Path | None = None) -> tuple[Approved | None, ChainCheck]:
    """The verified approved run of ``decoder`` on ``reference_set`` in ``store`` (None when there is none)."""
    origin = f"the store {store.path}"
    with store.snapshot() as db:
        check = chain_of(db, store.path, trusted)
        return approved_run(db, check, decoder, reference_set, origin, source=store), check


def approved_for(store: Store, candidate: RunInfo, trusted: TrustedKeys | str | Path | None = None) -> Approved:
    """The approved baseline of ``candidate`` in its store: verified, finished, on the same reference content;
    GateError (exit 2) otherwise, naming what is missing and the fix."""
    found, check = approved_in_store(store, candidate.decoder, candidate.reference_set, trusted)
    if found is None:
        raise no_approved_error(check, candidate.decoder, candidate.reference_set, f"the store {store.path}")
    require_finished(found)
    require_same_content(found, candidate)
    return found
