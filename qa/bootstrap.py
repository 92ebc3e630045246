"""The percentile bootstrap, one way for all of qa: the engine's set value of a per-image metric, the gate's
intervals (a candidate's set mean, paired differences against a baseline) and the set metrics' intervals (FID, KID,
CMMD, CLIP score).

Resampling: ``n_boot`` resamples of the ``n`` items with replacement, the indices drawn from
``numpy.random.default_rng(seed)`` as one ``(n_boot, n)`` array. Interval ends: the **inverted-CDF** quantiles of
the resampled statistics at ``alpha = (1 - confidence) / 2`` and ``1 - alpha``, i.e. the ``ceil(alpha * n_boot)``-th
order statistic, no interpolation (the textbook percentile interval, Efron & Tibshirani 1993, ch. 13). Why not
numpy's default linear interpolation: each end is then a statistic some resample actually had, so infinite values
stay meaningful (PSNR of identical images is +inf: interpolating between +inf and a finite neighbour gives +inf, and
between +inf and -inf NaN), and an end never depends on a blend of two resamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: resamples and coverage where nobody asks for others (a gate policy names its own)
N_BOOT = 2000
CONFIDENCE = 0.95
#: most resamples a gate policy may ask for. Memory: :func:`resamples` draws ``n_boot x n`` int64 indices and the
#: mean gathers as many float64 values, about ``16 x n_boot x n`` bytes at once: 1.6 MB per image at this
#: bound, 1.6 GB for a set of 1,000 images (10^8 resamples of 3 images took 4.8 GB). The percentile ends' Monte
#: Carlo error is already small at the default 2,000 and negligible long before this.
MAX_N_BOOT = 100_000


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a two-sided ``confidence`` percentile-bootstrap interval [low, high]."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float


def resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` indices into ``n`` items, drawn with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def order_statistic(values: np.ndarray, q: float) -> float:
    """The inverted-CDF ``q`` quantile of ``values``: their ``ceil(q * n)``-th smallest (the first for q = 0); NaN
    when any value is NaN or there are none.

    ``q * n`` is rounded to 9 decimals before the ceiling, so the rule does not depend on how ``q`` was rounded in
    binary: ``(1 - 0.95) / 2`` is 0.025000000000000022, and 0.025 x 2000 must select the 50th of 2000, not the 51st.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or bool(np.isnan(v).any()):
        return math.nan
    k = min(max(math.ceil(round(q * v.size, 9)), 1), v.size)
    return float(np.partition(v, k - 1)[k - 1])


def percentile_ends(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    """The (low, high) inverted-CDF quantiles of resampled statistics for a two-sided ``confidence`` interval."""
    alpha = (1.0 - confidence) / 2.0
    return order_statistic(stats, alpha), order_statistic(stats, 1.0 - alpha)


def bootstrap_mean(values: np.ndarray, confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """Mean of ``values`` and its percentile bootstrap interval.

    With both +inf and -inf present the interval is (-inf, +inf) and the mean NaN: nothing can be concluded. A
    single value, or equal values, give a degenerate interval (that value); no values give NaN. NaN values raise
    ValueError (a missing number must be left out, or counted as missing, by the caller).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    if np.isnan(v).any():
        raise ValueError("bootstrap_mean: values contain NaN")
    if bool(np.isposinf(v).any()) and bool(np.isneginf(v).any()):
        return Interval(math.nan, -math.inf, math.inf, int(v.size), confidence)
    mean = float(v.mean())
    if v.size == 1 or bool((v == v[0]).all()):
        return Interval(mean, float(v[0]), float(v[0]), int(v.size), confidence)
    lo, hi = percentile_ends(v[resamples(v.size, n_boot, seed)].mean(axis=1), confidence)
    return Interval(mean, lo, hi, int(v.size), confidence)


def bootstrap_statistic(n: int, statistic: Callable[[np.ndarray], float], n_boot: int,
                        confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over resamples of ``range(n)`` (a set metric's
    statistic of its resampled outputs, e.g. FID with the reference statistics held fixed); NaN ends when
    ``n_boot`` is 0 or ``n`` < 2."""
    if n_boot <= 0 or n < 2:
        return math.nan, math.nan
    return percentile_ends(np.array([statistic(idx) for idx in resamples(n, n_boot, seed)]), confidence)


def centred_bootstrap(n: int, statistic: Callable[[np.ndarray], float], center: float, n_boot: int,
                      seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bias-corrected percentile bootstrap interval of a set statistic whose value on the whole set is ``center``.

    The resamples are those of :func:`qa.bootstrap.bootstrap_statistic` (``n_boot`` draws of ``range(n)`` with
    replacement, seeded). A resample repeats images, and at small ``n`` that shifts these statistics: a repeated
    output is a pair at distance 0 (CMMD's V-statistic, KID's off-diagonal sum) or shrinks the covariance (FID),
    so the plain percentile interval can miss its own value (CMMD, n = 6..10: about 1 set in 3; FID, n <= 5: the
    value is the interval's top). The resampled statistics are therefore shifted by the bootstrap estimate of
    that bias (their mean minus ``center``), i.e. this is the percentile interval of the bias-corrected
    statistic, and then widened, if it still misses it, to hold ``center``. At small ``n`` the interval stays
    rough (a percentile bootstrap of a few images): it is never narrower than the resamples' own spread and
    never excludes the value. A resample whose statistic is NaN (undefined for it, e.g. KID of a resample with
    one distinct image) is left out. NaN ends when ``n_boot`` is 0, ``n`` < 2, a statistic is infinite, or
    fewer than half of the resamples have a statistic.
    """
    if n_boot <= 0 or n < 2 or not math.isfinite(center):
        return math.nan, math.nan
    stats = np.array([statistic(idx) for idx in resamples(n, n_boot, seed)], np.float64)
    stats = stats[~np.isnan(stats)]
    if 2 * stats.size < n_boot or not np.isfinite(stats).all():
        return math.nan, math.nan
    lo, hi = percentile_ends(stats - (float(stats.mean()) - center), confidence)
    return min(lo, center), max(hi, center)
