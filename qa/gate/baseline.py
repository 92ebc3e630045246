"""What a candidate run is compared with: one :class:`Baseline` (its run, where its rows are, why it cannot be used)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from qa.store.records import RunInfo

__all__ = ["Baseline"]


@dataclass(frozen=True, repr=False)
class Baseline:
    """What a candidate is compared with. ``kind``: ``approved``, ``run``, ``decoder:NAME``, ``decoder:plain``
    (the candidate's own plain decode, scored in its own run) or ``none`` (no baseline, chosen explicitly: the
    first release).

    ``run`` is None when no such run exists; ``note`` then says why. ``error``: why the baseline could not be
    resolved at all (a broken sign-off chain, no approved run): every comparison with it fails with that reason.
    ``reader``: where the baseline run's rows are when not in the candidate's store (a baseline file);
    ``origin``: how it was verified, in words.
    """

    kind: str
    run: RunInfo | None = None
    note: str = ""
    #: why comparing with this baseline would be unfair (e.g. another upscale factor): checks skip with it
    inapplicable: str = ""
    error: str = ""
    reader: Any = None
    origin: str = ""
    #: the baseline's values of metric M are its run's ``metric_prefix + M`` (``baseline_psnr`` for the plain
    #: decode in the candidate's own run, ``decoder:plain``); '' = the same metric
    metric_prefix: str = ""
    #: an approved baseline: the sha256 of the policy its approval was signed under ('' for other kinds). A gate
    #: under another policy cannot compare with it (:meth:`qa.gate.checks.GateContext` fails those checks): an
    #: approval holds for the rules it was judged by, and a loosened policy file must not turn a regression green
    policy_sha256: str = ""

    def policy_problem(self, policy_sha256: str, policy_source: str = "") -> str:
        """Why a gate under the policy with this sha256 cannot compare with this approved baseline ('' when it can):
        the approval was signed under another policy, so its rules are not the ones judging now."""
        if not self.policy_sha256 or self.policy_sha256 == policy_sha256:
            return ""
        name = PurePath(policy_source).name if policy_source else "this policy"
        return (f"the approved baseline {self.run_id or ''} was approved under policy {self.policy_sha256[:12]}, "
                f"this gate runs under {name} ({policy_sha256[:12]}): an approval holds only for the rules it was "
                "judged by, so a changed policy cannot pass against it. Gate under the policy it was approved under; "
                "for a reviewed policy change, a reviewer approves a run under the new policy (`qa signoff --run RUN "
                "--decision approve --policy FILE --override --note WHY`)")

    def metric_of(self, metric: str) -> str:
        """The metric whose values stand for ``metric`` on the baseline's side."""
        return self.metric_prefix + metric

    @property
    def run_id(self) -> str | None:
        return self.run.run_id if self.run else None

    @property
    def is_decoder(self) -> bool:
        return self.kind.startswith("decoder:")

    def __repr__(self) -> str:  # what pytest prints for a test's ``qa_baseline`` argument: the gate's words
        return f"<baseline {self.describe()}>"

    def describe(self) -> str:
        if self.inapplicable:
            return f"{self.kind} (does not apply: {self.inapplicable})"
        if self.error:
            return f"{self.kind} (cannot be used: {self.error})"
        if self.run and self.metric_prefix:
            return f"{self.kind} ({self.origin}, {self.metric_prefix}* metrics of run {self.run.run_id})"
        if self.run and self.origin:
            return f"{self.kind} ({self.origin})"
        if self.run:
            return f"{self.kind} (run {self.run.run_id})"
        return f"{self.kind} ({self.note})" if self.kind == "none" else f"{self.kind} (none: {self.note})"
