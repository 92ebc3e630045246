"""Set-level summaries of per-image results: mean with a percentile-bootstrap confidence interval."""

from __future__ import annotations

import math

import numpy as np

#: bootstrap resamples and the interval's coverage
N_BOOT = 2000
CONFIDENCE = 0.95


def bootstrap_mean_ci(values: np.ndarray, n_boot: int = N_BOOT, confidence: float = CONFIDENCE,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and a percentile bootstrap interval (NaN bounds for fewer than 2 values).

    Infinite values (e.g. PSNR of identical images) make the mean infinite; the interval is then (inf, inf)
    if all are infinite, else computed on the resampled means as usual.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, math.nan, math.nan
    if np.isinf(values).all():
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    with np.errstate(invalid="ignore"):
        means = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi)
