"""How a metric's values are averaged, over a case's seeds and over a set's cases: one place for the engine's set
values, the gate (its per-case values, bounds and means), ``qa diff`` and ``qa score``.

A metric declares it (:attr:`qa.metrics.base.Metric.averaged`). Most are averaged as they are (``"value"``). A
decibel ratio of a signal to a noise power (PSNR: ``10 log10(1 / MSE)`` for data range 1) is averaged in its noise
power (``"noise_power"``): the mean of ``10^(-v / 10)`` over the items, given back in dB. For PSNR that is the PSNR
of the items' mean squared error, each item weighted equally (for images of one size, the PSNR of the images
pooled into one).

Why: the arithmetic mean of decibels is decided by the most faithful item. An identical pair is +inf dB and made
any set's mean +inf; a flat grey card decoded within 1e-5 reads about 100 dB and lifted a set of three 25 dB photos
to a mean of 44 dB, over whatever floor a policy sets, and one identical seed hid every other seed of its case. In
noise power an identical pair adds 0 and a near-identical one almost 0, so the summary is decided by the items with
the most error, which is what a floor is for. Differences of two runs image by image stay in dB (a paired margin
is "dB lost on an image").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal, get_args

import numpy as np

from qa.bootstrap import CONFIDENCE, N_BOOT, Interval, bootstrap_mean, percentile_ends, resamples

Averaged = Literal["value", "noise_power"]
#: the ways a metric may declare (:attr:`qa.metrics.base.Metric.averaged`)
AVERAGINGS: tuple[str, ...] = get_args(Averaged)


def check(how: str) -> Averaged:
    """``how`` as an :data:`Averaged` value; ValueError naming the allowed ones otherwise."""
    if how not in AVERAGINGS:
        raise ValueError(f"unknown averaging {how!r}; allowed: {', '.join(AVERAGINGS)}")
    return how  # type: ignore[return-value]


def _to_power(values: np.ndarray) -> np.ndarray:
    """Noise power (> = 0; +inf dB -> 0) of decibel values."""
    with np.errstate(over="ignore"):
        return np.power(10.0, -values / 10.0)


def _to_db(power: float) -> float:
    """Decibels of a noise power (0 -> +inf, +inf -> -inf)."""
    if power == 0.0:
        return math.inf
    if math.isinf(power):
        return -math.inf
    return -10.0 * math.log10(power)


def mean_of(values: Iterable[float], how: str = "value") -> float:
    """The mean of ``values`` (a metric's units) averaged as ``how`` says; NaN for no values. NaN values give NaN
    (callers leave missing numbers out)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return math.nan
    if check(how) == "value":
        return float(v.mean())
    if np.isnan(v).any():
        return math.nan
    return _to_db(float(_to_power(v).mean()))


def interval_of(values: Iterable[float], how: str = "value", confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                seed: int = 0) -> Interval:
    """:func:`mean_of` with its percentile bootstrap interval (:func:`qa.bootstrap.bootstrap_mean` over the
    averaged quantity, its ends given back in the metric's units: a noise power's high end is the dB low end).
    ValueError for NaN values, as :func:`~qa.bootstrap.bootstrap_mean`."""
    v = np.asarray(list(values), dtype=np.float64)
    if check(how) == "value":
        return bootstrap_mean(v, confidence, n_boot, seed)
    if np.isnan(v).any():
        raise ValueError("interval_of: values contain NaN")
    iv = bootstrap_mean(_to_power(v), confidence, n_boot, seed)
    if iv.n == 0:
        return iv
    return Interval(_to_db(iv.mean), _to_db(iv.high), _to_db(iv.low), iv.n, iv.confidence)


def paired_interval(candidate: Iterable[float], baseline: Iterable[float], how: str = "value",
                    confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """How much higher the candidate's mean is than the baseline's over the same items (``candidate`` and
    ``baseline`` in one order, the metric's units, averaged as ``how`` says), with the percentile bootstrap
    interval of resampling the pairs (the draws of :func:`~qa.bootstrap.bootstrap_mean`), so the difference is the
    difference of the means a report shows.

    ``"value"``: the mean of the per-item differences (equal values, infinities included, differ by 0).
    ``"noise_power"``: each resample's difference of its two dB means; two means of 0 noise (both identical)
    differ by 0, an identical candidate against a noisy baseline by +inf, and the reverse -inf. ValueError for NaN
    values or unequal lengths."""
    c = np.asarray(list(candidate), dtype=np.float64)
    b = np.asarray(list(baseline), dtype=np.float64)
    if c.shape != b.shape or np.isnan(c).any() or np.isnan(b).any():
        raise ValueError("paired_interval: the candidate and baseline values must be as many, without NaN")
    if check(how) == "value":
        with np.errstate(invalid="ignore"):
            return bootstrap_mean(np.where(c == b, 0.0, c - b), confidence, n_boot, seed)
    c, b = _to_power(c), _to_power(b)
    if c.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)

    def diff_db(cm: np.ndarray, bm: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = 10.0 * np.log10(bm / cm)
        return np.where((cm == 0) & (bm == 0), 0.0, d)

    mean = float(diff_db(np.array([c.mean()]), np.array([b.mean()]))[0])
    idx = resamples(c.size, n_boot, seed)
    lo, hi = percentile_ends(diff_db(c[idx].mean(axis=1), b[idx].mean(axis=1)), confidence)
    return Interval(mean, lo, hi, int(c.size), confidence)


def set_interval(case_values: Mapping[str, Iterable[float]], how: str = "value") -> Interval:
    """The set value of a per-image metric and its interval: each case's seed values averaged (:func:`mean_of`),
    then the cases in the order given (:func:`interval_of`, default resamples): seeds of one case are not
    independent samples. What the engine stores for a run, and what a report recomputes from the same rows."""
    return interval_of([mean_of(v, how) for v in case_values.values()], how)
