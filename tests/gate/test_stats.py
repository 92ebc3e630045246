"""Gate statistics: paired differences with infinities, the bootstrap interval, and the verdict rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from qa.gate.stats import Interval, bootstrap_interval, paired_differences, paired_verdict, unpaired_interval


def test_paired_differences_sign_and_infinities() -> None:
    cand = {"a": 30.0, "b": math.inf, "c": 20.0, "only_cand": 1.0}
    base = {"a": 31.0, "b": math.inf, "c": math.inf, "only_base": 2.0}
    d, keys = paired_differences(cand, base, higher_is_better=True)
    assert keys == ["a", "b", "c"]
    assert d.tolist() == [-1.0, 0.0, -math.inf]  # identical perfect images differ by 0, not NaN
    d, _ = paired_differences({"a": 0.2}, {"a": 0.3}, higher_is_better=False)
    assert d.tolist() == pytest.approx([0.1])  # lower is better: a lower candidate is better (positive)


def test_bootstrap_matches_scipy_percentile_bootstrap() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0.4, 1.0, size=40)
    ours = bootstrap_interval(x, confidence=0.95, n_boot=20000, seed=1)
    ref = sps.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=20000, method="percentile",
                        random_state=np.random.default_rng(2)).confidence_interval
    assert ours.mean == pytest.approx(x.mean())
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert ours.low == pytest.approx(ref.low, abs=0.05 * se * 4)  # Monte Carlo noise of two independent resamplings
    assert ours.high == pytest.approx(ref.high, abs=0.05 * se * 4)


def test_bootstrap_coverage_is_close_to_nominal() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    trials = 300
    for t in range(trials):
        x = rng.normal(1.0, 2.0, size=30)
        iv = bootstrap_interval(x, 0.9, n_boot=400, seed=t)
        hits += iv.low <= 1.0 <= iv.high
    # percentile bootstrap under-covers slightly at n=30; 90% nominal -> expect ~0.86-0.92
    assert 0.82 <= hits / trials <= 0.95


def test_bootstrap_with_infinities_and_degenerate_sets() -> None:
    assert bootstrap_interval(np.array([math.inf] * 4)) == Interval(math.inf, math.inf, math.inf, 4, 0.95)
    iv = bootstrap_interval(np.array([1.0, 2.0, math.inf, 3.0, 2.0]), n_boot=500)
    assert iv.mean == math.inf and not math.isnan(iv.low) and iv.high == math.inf
    both = bootstrap_interval(np.array([math.inf, -math.inf, 1.0]))
    assert (both.low, both.high) == (-math.inf, math.inf)
    assert bootstrap_interval(np.array([0.0, 0.0, 0.0])).low == 0.0
    assert math.isnan(bootstrap_interval(np.array([])).mean)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_interval(np.array([1.0, math.nan]))


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
    iv = unpaired_interval((5.0, math.nan, math.nan), (5.0, math.nan, math.nan), True, 0.95)
    assert (iv.mean, iv.low, iv.high) == (0.0, 0.0, 0.0)
