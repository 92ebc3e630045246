"""Pairing a candidate's per-image values with a baseline's: which images a paired check compares, and which it
cannot.

A paired comparison is only as wide as the images both runs scored. Images the baseline scored and the candidate
did not count against the candidate (it lost them); images the candidate scored and the baseline has no value for
(a baseline case that failed to decode, a metric error there) cannot be judged by any paired rule: every message
says how many of the candidate's images were compared (:attr:`Pairing.how`), and the worst-images rule never
passes while some are left unjudged (:meth:`qa.gate.checks.GateContext.worst_images`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.gate.data import MetricData, problems_text
from qa.metrics.base import Target

__all__ = ["Pairing", "pair"]


@dataclass(frozen=True)
class Pairing:
    """Per-image goodness (higher = better) of the paired images, candidate's and baseline's; ``why``: why no
    image pairs at all ('' when some do); ``unpaired``: the candidate's images without a baseline value."""

    cand: dict[str, float] = field(default_factory=dict)
    base: dict[str, float] = field(default_factory=dict)
    why: str = ""
    unpaired: tuple[str, ...] = ()
    baseline_run_id: str = ""

    @property
    def total(self) -> int:
        """The candidate's images: the paired ones and the ones without a baseline value."""
        return len(self.cand) + len(self.unpaired)

    def unpaired_text(self) -> str:
        """"2 have no baseline value in run R (case_2, case_3)"; '' when every candidate image pairs."""
        k = len(self.unpaired)
        if not k:
            return ""
        shown = ", ".join(self.unpaired[:5]) + (f" +{k - 5} more" if k > 5 else "")
        return f"{k} {'has' if k == 1 else 'have'} no baseline value in run {self.baseline_run_id} ({shown})"

    @property
    def how(self) -> str:
        """"over 4 paired images", or, when the baseline lacks some, "over 2 of 4 images: 2 have no baseline value
        in run R (case_2, case_3)": a partial pairing is never shown as a whole one."""
        if not self.unpaired:
            return f"over {len(self.cand)} paired images"
        return f"over {len(self.cand)} of {self.total} images: {self.unpaired_text()}"


def pair(cand: MetricData, base: MetricData, target: Target, base_metric: str, baseline_run_id: str) -> Pairing:
    """Pair ``cand``'s per-image values with ``base``'s (the baseline's values of ``base_metric``)."""
    lost = sorted(set(base.per_case) - set(cand.per_case))
    if lost:  # the baseline scored these cases and the candidate did not: counts against it
        return Pairing(why=(f"cases {', '.join(lost[:5])} have {base_metric} values in baseline run "
                            f"{baseline_run_id} but not in the candidate"), baseline_run_id=baseline_run_id)
    keys = sorted(set(cand.per_case) & set(base.per_case))
    if not keys:
        why = problems_text(base.problems, len(set(base.problems) | set(base.per_case))) if base.problems else (
            f"the run has no {base_metric} results" + (" (a run made before it existed, or with --metrics "
                                                       "without it: run the decoder again)" if
                                                       base_metric != cand.metric else ""))
        return Pairing(why=f"baseline run {baseline_run_id} has no {base_metric} value for any candidate case: {why}",
                       baseline_run_id=baseline_run_id)
    return Pairing({k: target.goodness(cand.per_case[k]) for k in keys},
                   {k: target.goodness(base.per_case[k]) for k in keys},
                   unpaired=tuple(sorted(set(cand.per_case) - set(base.per_case))), baseline_run_id=baseline_run_id)
