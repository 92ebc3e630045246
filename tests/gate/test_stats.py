"""Gate statistics: paired differences with infinities and the verdict rule (the bootstrap: tests/test_bootstrap.py)."""

from __future__ import annotations

import math

import pytest

from qa.bootstrap import Interval
from qa.gate.stats import paired_differences, paired_verdict, unpaired_interval


def test_paired_differences_sign_and_infinities() -> None:
    cand = {"a": 30.0, "b": math.inf, "c": 20.0, "only_cand": 1.0}
    base = {"a": 31.0, "b": math.inf, "c": math.inf, "only_base": 2.0}
    d, keys = paired_differences(cand, base, higher_is_better=True)
    assert keys == ["a", "b", "c"]
    assert d.tolist() == [-1.0, 0.0, -math.inf]  # identical perfect images differ by 0, not NaN
    d, _ = paired_differences({"a": 0.2}, {"a": 0.3}, higher_is_better=False)
    assert d.tolist() == pytest.approx([0.1])  # lower is better: a lower candidate is better (positive)


def test_verdict_rule() -> None:
    iv = lambda lo, hi: Interval((lo + hi) / 2, lo, hi, 10, 0.95)  # noqa: E731
    assert paired_verdict(iv(-0.1, 0.3), margin=0.2) == "pass"
    assert paired_verdict(iv(-0.2, 0.3), margin=0.2) == "pass"  # exactly at -margin clears it
    assert paired_verdict(iv(-0.9, -0.3), margin=0.2) == "fail"
    assert paired_verdict(iv(-0.5, 0.1), margin=0.2) == "needs-review"
    assert paired_verdict(iv(0.0, 0.0), margin=0.0) == "pass"
    assert paired_verdict(iv(-math.inf, -math.inf), margin=5.0) == "fail"


def test_unpaired_interval_is_conservative() -> None:
    # FID (lower is better): candidate 12 [11, 13], baseline 10 [9.5, 10.5] -> difference -2 in [-3.5, -0.5]
    iv = unpaired_interval((12.0, 11.0, 13.0), (10.0, 9.5, 10.5), higher_is_better=False, confidence=0.95)
    assert (iv.mean, iv.low, iv.high) == (-2.0, -3.5, -0.5)
    # point values only where the policy chose them (n_boot = 0)
    iv = unpaired_interval((5.0, math.nan, math.nan), (5.0, math.nan, math.nan), True, 0.95, points=True)
    assert (iv.mean, iv.low, iv.high) == (0.0, 0.0, 0.0)


def test_a_set_value_without_an_interval_is_not_read_as_exact() -> None:
    """Cache audit (2026-12-08): a set value whose interval could not be computed (KID of 2 outputs) was gated as
    if exact, its point value standing for both ends: the difference's interval was a point, so a check passed on
    numbers that bound nothing. An unknown end is unbounded now, so such a check needs review at best."""
    iv = unpaired_interval((5.0, math.nan, math.nan), (5.0, 4.0, 6.0), True, 0.95)
    assert iv.mean == 0.0 and iv.low == -math.inf and iv.high == math.inf
    assert paired_verdict(iv, margin=0.5) == "needs-review"
    iv = unpaired_interval((5.0, 4.5, 5.5), (5.0, math.nan, math.nan), False, 0.95)
    assert (iv.low, iv.high) == (-math.inf, math.inf)
