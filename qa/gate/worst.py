"""The worst-images rule of a gate: a set mean can hide one image that got much worse (one invented face among
thirty good images), so a policy may cap each image's loss and the loss of a tail quantile.

Values here are *goodness* (higher = better: the metric's value, its negative, or minus its distance from the
target; see :class:`qa.metrics.base.Target`), paired per image: case id -> goodness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qa.bootstrap import order_statistic
from qa.gate.policy import MetricRule
from qa.gate.worse import FOLD_AT, image_text
from qa.metrics.base import Target


@dataclass
class WorstImages:
    """The outcome of the rule. ``worst_loss``: the largest per-image loss (metric units, >= 0 means worse);
    ``margin``: that image's allowance; ``offenders``: (case, baseline value, candidate value, loss, allowance)
    of every image over its allowance, worst first; ``tail``: (quantile, baseline, candidate, allowance) or None."""

    verdict: str
    worst_loss: float
    margin: float | None
    worst_case: str = ""
    offenders: list[tuple[str, float, float, float, float]] = field(default_factory=list)
    tail: tuple[float, float, float, float] | None = None
    tail_fails: bool = False
    target: Target = field(default_factory=lambda: Target("higher"))

    def metric_value(self, goodness: float) -> float:
        """Back from goodness to the metric's value (for a target value: the distance from it)."""
        return -goodness if self.target.kind in ("lower", "value") else goodness

    def images(self) -> list[dict[str, object]]:
        """Every image over its allowance, worst first: case, baseline and candidate value (metric units), worse
        by and allowed (>= 0; worse by > allowed)."""
        return [{"case": c, "baseline": self.metric_value(b), "candidate": self.metric_value(v), "worse_by": loss,
                 "allowed": allow} for c, b, v, loss, allow in self.offenders]

    def text(self, unit: str = "") -> str:
        """One sentence with the numbers (metric units; target-value metrics as distance from the target); names
        the first :data:`~qa.gate.worse.FOLD_AT` offending images (:meth:`images` has them all)."""
        dist = f" (distance from {self.target.value:g})" if self.target.kind == "value" else ""
        parts = []
        if self.offenders:
            shown = ", ".join(image_text(im) for im in self.images()[:FOLD_AT])
            more = (f" (+{len(self.offenders) - FOLD_AT} more: all {len(self.offenders)} listed below)"
                    if len(self.offenders) > FOLD_AT else "")
            parts.append(f"{len(self.offenders)} image(s) worse than allowed{dist}: {shown}{more}")
        elif self.margin is not None:
            parts.append(f"no image worse than allowed{dist}; the worst change is {self.worst_case} "
                         f"(worse by {self.worst_loss:.4g}, allowed {self.margin:.4g})")
        if self.tail is not None:
            q, b, c, allow = self.tail
            parts.append(f"{q:.0%} quantile of the worst side{dist} {self.metric_value(b):.4g} -> {self.metric_value(c):.4g} "
                         f"(worse by {b - c:.4g}, allowed {allow:.4g}){' over the allowance' if self.tail_fails else ''}")
        return "; ".join(parts) + (f" [{unit}]" if unit else "")


def judge_worst_images(candidate: dict[str, float], baseline: dict[str, float], rule: MetricRule,
                       target: Target) -> WorstImages:
    """Apply ``rule``'s image_margin/image_relative_margin and tail_quantile to paired goodness values."""
    keys = sorted(set(candidate) & set(baseline))
    if not keys:
        raise ValueError("judge_worst_images: no paired images")
    out = WorstImages(verdict="pass", worst_loss=-math.inf, margin=None, target=target)
    if rule.image_relative_margin is not None or rule.image_margin is not None:
        best_slack = math.inf
        for k in keys:
            b, c = baseline[k], candidate[k]
            loss = 0.0 if b == c else b - c
            allow = (rule.image_margin or 0.0) + (rule.image_relative_margin or 0.0) * abs(b)
            if loss > allow:
                out.offenders.append((k, b, c, loss, allow))
            if allow - loss < best_slack:  # the image closest to (or furthest over) its allowance
                best_slack, out.worst_case, out.worst_loss, out.margin = allow - loss, k, loss, allow
        out.offenders.sort(key=lambda o: o[4] - o[3])
    if rule.tail_quantile is not None:
        q = rule.tail_quantile
        # the q quantile of the badness (-goodness), inverted CDF: its ceil(q n)-th smallest (the 19th of 20 at 0.95)
        b_q = -order_statistic(-np.array([baseline[k] for k in keys]), q)
        c_q = -order_statistic(-np.array([candidate[k] for k in keys]), q)
        allow = rule.allowed_loss(b_q, decoder=False) or 0.0
        out.tail = (q, b_q, c_q, allow)
        out.tail_fails = b_q - c_q > allow
        if out.margin is None:
            out.worst_loss, out.margin = b_q - c_q, allow
    out.verdict = "fail" if out.offenders or out.tail_fails else "pass"
    return out
