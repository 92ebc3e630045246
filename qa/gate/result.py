"""The outcome of one gate check (:class:`CheckResult`): verdict, message and numbers, as every output reads it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CheckResult"]


@dataclass
class CheckResult:
    """The outcome of one check. Values in the metric's units; differences signed so positive = better."""

    metric: str
    kind: str  # cases | bounds | at_least | at_most | baseline | worst_images | policy
    verdict: str  # pass | fail | needs-review | skipped
    message: str
    required: bool = True
    allow_review: bool = False
    candidate_run_id: str = ""
    candidate_mean: float | None = None
    candidate_ci: tuple[float, float] | None = None
    n: int = 0
    bound: float | None = None
    baseline_kind: str = ""
    baseline_run_id: str | None = None
    baseline_mean: float | None = None
    diff_mean: float | None = None
    diff_ci: tuple[float, float] | None = None
    margin: float | None = None
    notes: list[str] = field(default_factory=list)
    #: worst images: every image over its allowance (:meth:`qa.gate.worst.WorstImages.images`), worst first
    images: list[dict[str, Any]] = field(default_factory=list)
    #: worst images: the image closest to (or furthest over) its allowance; its values are the means above
    worst_case: str = ""

    @property
    def blocks(self) -> bool:
        """Whether this result fails a release (a fail, or needs-review the policy does not allow)."""
        return self.verdict == "fail" or (self.verdict == "needs-review" and not self.allow_review)

    @property
    def title(self) -> str:
        """A short name: "invented_detail vs approved", "psnr bounds", "lost_detail worst images vs approved"."""
        if self.kind == "cases":
            return "every case decoded"
        what = {"baseline": "", "worst_images": " worst images", "bounds": " bounds", "at_least": " at least",
                "at_most": " at most", "policy": ""}.get(self.kind, f" {self.kind}")
        return f"{self.metric}{what}" + (f" vs {self.baseline_kind}" if self.baseline_kind else "")

    @property
    def worse_by(self) -> float | None:
        """How much worse than the baseline (metric units, positive = worse): the reading of every output."""
        return None if self.diff_mean is None else -self.diff_mean + 0.0  # + 0.0: never "-0"

    @property
    def worse_by_ci(self) -> tuple[float, float] | None:
        return None if self.diff_ci is None else (-self.diff_ci[1] + 0.0, -self.diff_ci[0] + 0.0)

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"worse_by": self.worse_by, "worse_by_ci": self.worse_by_ci}
