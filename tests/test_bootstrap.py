"""qa.bootstrap: the one percentile bootstrap (engine set values, gate intervals, set metrics' intervals)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from qa.bootstrap import Interval, bootstrap_mean, bootstrap_statistic, order_statistic, percentile_ends, resamples


def test_bootstrap_matches_scipy_percentile_bootstrap() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0.4, 1.0, size=40)
    ours = bootstrap_mean(x, confidence=0.95, n_boot=20000, seed=1)
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
        iv = bootstrap_mean(x, 0.9, n_boot=400, seed=t)
        hits += iv.low <= 1.0 <= iv.high
    # percentile bootstrap under-covers slightly at n=30; 90% nominal -> expect ~0.86-0.92
    assert 0.82 <= hits / trials <= 0.95


def test_bootstrap_with_infinities_and_degenerate_sets() -> None:
    assert bootstrap_mean(np.array([math.inf] * 4)) == Interval(math.inf, math.inf, math.inf, 4, 0.95)
    iv = bootstrap_mean(np.array([1.0, 2.0, math.inf, 3.0, 2.0]), n_boot=500)
    assert iv.mean == math.inf and not math.isnan(iv.low) and iv.high == math.inf
    both = bootstrap_mean(np.array([math.inf, -math.inf, 1.0]))
    assert (both.low, both.high) == (-math.inf, math.inf)
    assert bootstrap_mean(np.array([0.0, 0.0, 0.0])).low == 0.0
    assert math.isnan(bootstrap_mean(np.array([])).mean)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean(np.array([1.0, math.nan]))


def test_the_ends_are_inverted_cdf_order_statistics() -> None:
    """Each end is the ceil(alpha * B)-th resampled statistic (no interpolation between two)."""
    stats = np.random.default_rng(3).normal(size=1000)
    lo, hi = percentile_ends(stats, 0.95)
    ordered = np.sort(stats)
    assert (lo, hi) == (ordered[25 - 1], ordered[975 - 1])  # 0.025 x 1000 and 0.975 x 1000
    assert lo in stats and hi in stats


def test_the_documented_order_statistic_does_not_depend_on_binary_rounding() -> None:
    """(1 - 0.95) / 2 is 0.025000000000000022 in binary: the low end of 2000 is still the 50th, not the 51st;
    and the rule holds at every confidence a policy may name (report audit L3)."""
    stats = np.arange(1.0, 2001.0)  # the k-th order statistic is k
    assert percentile_ends(stats, 0.95) == (50.0, 1950.0)
    assert percentile_ends(stats, 0.90) == (100.0, 1900.0)
    assert percentile_ends(stats, 0.99) == (10.0, 1990.0)
    assert percentile_ends(np.arange(1.0, 1001.0), 0.8) == (100.0, 900.0)
    assert order_statistic(stats, 0.0) == 1.0 and order_statistic(stats, 1.0) == 2000.0
    assert math.isnan(order_statistic(np.array([1.0, math.nan]), 0.5))
    assert math.isnan(order_statistic(np.array([]), 0.5))
    assert order_statistic(np.array([1.0, math.inf, 2.0]), 1.0) == math.inf


def test_a_statistic_and_the_mean_share_the_resamples_and_the_ends() -> None:
    """The set metrics' bootstrap of a statistic and the mean's bootstrap are one method: same resamples, same ends."""
    x = np.random.default_rng(5).exponential(size=25)
    iv = bootstrap_mean(x, 0.9, n_boot=300, seed=4)
    assert bootstrap_statistic(x.size, lambda idx: float(x[idx].mean()), 300, 0.9, seed=4) == pytest.approx(
        (iv.low, iv.high), rel=1e-12)
    assert resamples(25, 300, 4).shape == (300, 25)
    assert all(math.isnan(e) for e in bootstrap_statistic(1, lambda idx: 0.0, 300))
    assert all(math.isnan(e) for e in bootstrap_statistic(10, lambda idx: 0.0, 0))
