"""Statistics of a gate: per-image paired differences, the verdict of their bootstrap interval (:mod:`qa.bootstrap`)
against a margin, and the interval of a difference of two set values.

Differences are signed so that positive = the candidate is better (``higher_is_better`` from the metric).
Infinite values are kept meaningful: two infinite values that are equal (PSNR of two perfect outputs) differ
by exactly 0; a perfect candidate against an imperfect baseline differs by +inf (and the reverse by -inf).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from qa.bootstrap import Interval

Verdict = Literal["pass", "fail", "needs-review"]


def paired_differences(candidate: dict[str, float], baseline: dict[str, float], higher_is_better: bool
                       ) -> tuple[np.ndarray, list[str]]:
    """Differences (candidate - baseline, sign flipped for lower-is-better metrics) on the keys both have.

    Returns the differences (float64, ordered by key) and the keys used.
    """
    keys = sorted(set(candidate) & set(baseline))
    sign = 1.0 if higher_is_better else -1.0
    diffs = np.empty(len(keys), dtype=np.float64)
    for i, k in enumerate(keys):
        c, b = float(candidate[k]), float(baseline[k])
        diffs[i] = 0.0 if c == b else sign * (c - b)  # equal infinities: 0, not NaN
    return diffs, keys


def paired_verdict(interval: Interval, margin: float) -> Verdict:
    """``pass`` when the interval's low end clears ``-margin``; ``fail`` when its high end is below
    ``-margin`` (clearly worse by more than the margin); ``needs-review`` when the interval straddles it."""
    if interval.low >= -margin:
        return "pass"
    if interval.high < -margin:
        return "fail"
    return "needs-review"


def unpaired_interval(cand: tuple[float, float, float], base: tuple[float, float, float], higher_is_better: bool,
                      confidence: float, points: bool = False) -> Interval:
    """Difference of two set-level values (value, ci_low, ci_high) when no per-image pairs exist (FID, KID).

    The interval is the conservative one from the two intervals' ends (candidate worst end minus baseline best
    end, and so on). An end that is unknown (None or NaN: too few outputs for a bootstrap) is unbounded, so the
    difference is not bounded on that side and the check cannot pass on it (fail closed); only with ``points``
    (a policy with ``n_boot = 0``: point values by choice) does a value without an interval stand for its ends.
    """
    def ends(v: tuple[float, float, float]) -> tuple[float, float, float]:
        known = [x is not None and not math.isnan(x) for x in v]
        if points:
            return tuple(x if k else v[0] for x, k in zip(v, known, strict=True))  # type: ignore[return-value]
        return (v[0], v[1] if known[1] else -math.inf, v[2] if known[2] else math.inf)

    cv, clo, chi = ends(cand)
    bv, blo, bhi = ends(base)
    if higher_is_better:
        mean, lo, hi = cv - bv, clo - bhi, chi - blo
    else:
        mean, lo, hi = bv - cv, blo - chi, bhi - clo
    if cv == bv:
        mean = 0.0
    return Interval(float(mean), float(lo), float(hi), 1, confidence)
