"""qa.averaging: a metric's values averaged as it declares; PSNR in noise power equals scikit-image's PSNR of the
images pooled into one (an independent implementation), and its interval is the bootstrap's, mapped to dB."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.data import astronaut, coffee
from skimage.metrics import peak_signal_noise_ratio

from qa.averaging import interval_of, mean_of, paired_interval
from qa.bootstrap import bootstrap_mean
from qa.gate.data import metric_averaging
from qa.gate.stats import paired_differences


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Four 96 x 96 reference/output pairs: two noisy photo crops, a blurred-ish one, and an identical pair."""
    rng = np.random.default_rng(3)
    photos = [astronaut()[100:196, 150:246], coffee()[50:146, 200:296], astronaut()[300:396, 60:156],
              coffee()[200:296, 300:396]]
    pairs = []
    for i, photo in enumerate(photos):
        ref = photo.astype(np.float64) / 255
        sigma = (0.02, 0.06, 0.004, 0.0)[i]
        out = np.clip(ref + rng.normal(0, sigma, ref.shape), 0, 1) if sigma else ref.copy()
        pairs.append((ref, out))
    return pairs


def test_psnr_averaged_in_noise_power_is_the_psnr_of_the_images_pooled() -> None:
    pairs = _pairs()
    with np.errstate(divide="ignore"):  # scikit-image divides by an MSE of 0 for the identical pair: +inf
        per_image = [peak_signal_noise_ratio(r, o, data_range=1.0) for r, o in pairs]
    assert math.isinf(per_image[3])  # the identical pair
    pooled = peak_signal_noise_ratio(np.concatenate([r for r, _ in pairs]), np.concatenate([o for _, o in pairs]),
                                     data_range=1.0)
    assert mean_of(per_image, "noise_power") == pytest.approx(pooled, abs=1e-9)
    assert math.isinf(mean_of(per_image, "value"))  # the arithmetic mean of dB: +inf, whatever the other images
    # without the identical pair, both are finite and the pooled one is the lower (Jensen), decided by the worst
    finite = per_image[:3]
    assert mean_of(finite, "noise_power") < mean_of(finite, "value")
    assert mean_of(finite, "noise_power") < min(finite) + 10 * math.log10(3)


def test_an_identical_item_adds_no_noise_and_a_set_of_them_is_identical() -> None:
    assert mean_of([math.inf, 20.0], "noise_power") == pytest.approx(20.0 + 10 * math.log10(2), abs=1e-12)
    assert mean_of([math.inf, math.inf], "noise_power") == math.inf
    assert mean_of([30.0, 30.0, 30.0], "noise_power") == pytest.approx(30.0, abs=1e-12)
    assert math.isnan(mean_of([], "noise_power")) and math.isnan(mean_of([20.0, math.nan], "noise_power"))
    iv = interval_of([math.inf] * 4, "noise_power")
    assert (iv.mean, iv.low, iv.high, iv.n) == (math.inf, math.inf, math.inf, 4)


def test_the_noise_power_interval_is_the_bootstrap_of_the_powers_in_db() -> None:
    values = np.array([18.0, 25.0, 31.0, 27.5, math.inf, 22.0])
    iv = interval_of(values, "noise_power", confidence=0.9, n_boot=500, seed=7)
    powers = bootstrap_mean(10.0 ** (-values / 10.0), 0.9, 500, 7)
    assert iv.mean == pytest.approx(-10 * math.log10(powers.mean), abs=1e-12)
    assert iv.low == pytest.approx(-10 * math.log10(powers.high), abs=1e-12)  # most noise = fewest dB
    assert iv.high == pytest.approx(-10 * math.log10(powers.low), abs=1e-12)
    assert iv.low < iv.mean < iv.high and math.isfinite(iv.high) and iv.n == 6
    assert interval_of(values[:4], "value", 0.9, 500, 7) == bootstrap_mean(values[:4], 0.9, 500, 7)
    with pytest.raises(ValueError, match="NaN"):
        interval_of([20.0, math.nan], "noise_power")


def test_unknown_averagings_and_metrics() -> None:
    with pytest.raises(ValueError, match="unknown averaging 'median'"):
        mean_of([1.0], "median")
    assert metric_averaging("psnr") == "noise_power" and metric_averaging("agreement_psnr") == "noise_power"
    assert metric_averaging("ssim") == "value" and metric_averaging("invented_peak") == "value"
    assert metric_averaging("no_such_metric") == "value"


def test_a_paired_noise_power_difference_is_the_difference_of_the_two_means_resampled_together() -> None:
    cand = [24.0, 30.5, math.inf, 19.0, 27.0]
    base = [25.0, 30.0, 40.0, 21.0, math.inf]
    iv = paired_interval(cand, base, "noise_power", confidence=0.9, n_boot=400, seed=5)
    assert iv.mean == pytest.approx(mean_of(cand, "noise_power") - mean_of(base, "noise_power"), abs=1e-12)
    # the interval: each resample's two means, from the same draws as the bootstrap of a mean (an explicit loop)
    idx = np.random.default_rng(5).integers(0, 5, size=(400, 5))
    stats = sorted(mean_of(np.asarray(cand)[i], "noise_power") - mean_of(np.asarray(base)[i], "noise_power")
                   for i in idx)
    assert (iv.low, iv.high) == pytest.approx((stats[math.ceil(0.05 * 400) - 1], stats[math.ceil(0.95 * 400) - 1]))
    assert iv.low <= iv.mean <= iv.high and iv.n == 5
    both_exact = paired_interval([math.inf, math.inf], [math.inf, math.inf], "noise_power")
    assert (both_exact.mean, both_exact.low, both_exact.high) == (0.0, 0.0, 0.0)
    assert paired_interval([math.inf], [30.0], "noise_power").mean == math.inf
    assert paired_interval([30.0], [math.inf], "noise_power").mean == -math.inf
    with pytest.raises(ValueError, match="as many"):
        paired_interval([1.0, 2.0], [1.0], "noise_power")
    # averaged as they are: the bootstrap of the per-item differences, equal infinities 0 (gate.stats' rule)
    diffs, _ = paired_differences({"a": 30.0, "b": math.inf, "c": 20.0}, {"a": 31.0, "b": math.inf, "c": 21.5}, True)
    assert paired_interval([30.0, math.inf, 20.0], [31.0, math.inf, 21.5], n_boot=300) == bootstrap_mean(diffs, n_boot=300)
