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


def percentile_ends(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    """The (low, high) inverted-CDF quantiles of resampled statistics for a two-sided ``confidence`` interval."""
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(np.asarray(stats, dtype=np.float64), [alpha, 1.0 - alpha], method="inverted_cdf")
    return float(lo), float(hi)


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
