"""The spectral rule (narrowband structure the reference does not have, issue 26 version 6): the float64 oracle
(:mod:`qa.metrics.invented.oracle.spectral`) on what it must find and must leave alone, and both tiers of the
product (:mod:`qa.metrics.invented.spectral`: torch, and the compiled envelope test) against it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from qa.metrics.invented import analysis, dispatch, model, oracle
from qa.metrics.invented import spectral as product
from qa.metrics.invented.oracle import spectral
from qa.metrics.invented.tensor.spectral import full_spectrum


def _flat_photo(h: int = 128, w: int = 160) -> np.ndarray:
    """A smooth (sky-like) reference: a gentle gradient with faint low-frequency structure, (h, w, 3) [0, 1]."""
    yy, xx = np.mgrid[:h, :w] / 64.0
    lum = 0.55 + 0.1 * yy + 0.02 * np.sin(xx * 1.3)
    return np.repeat(lum[..., None], 3, axis=2).astype(np.float32)


def _with_luma(img: np.ndarray, add: np.ndarray) -> np.ndarray:
    return np.clip(img + add[..., None], 0.0, 1.0).astype(np.float32)


def _grating(shape: tuple[int, int], amplitude: float, period: float, angle: float = 0.3) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amplitude * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)


def test_periodograms_sum_to_the_windowed_mean_square() -> None:
    x = np.random.default_rng(0).normal(size=(3, 32, 32))
    taps = np.outer(spectral.hann(32), spectral.hann(32))
    want = ((x * taps) ** 2).sum(axis=(1, 2)) / (taps**2).sum()
    assert np.allclose(spectral.periodograms(x).sum(axis=(1, 2)), want, rtol=1e-12)
    assert np.array_equal(spectral.window_origins(70), [0, 16, 32, 38])  # the last window flush with the end
    assert np.array_equal(spectral.window_origins(32), [0])


def test_a_weak_grating_on_flat_ground_counts_and_noise_does_not() -> None:
    ref = _flat_photo()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=ref.shape[:2])
    # a 2/255 grating of period 3.5 px over a decode with slight noise: narrowband, the reference has none there
    grating = oracle.invented_detail(_with_luma(ref, _grating(ref.shape[:2], 2 / 255, 3.5) + 0.003 * noise), ref)
    noisy = oracle.invented_detail(_with_luma(ref, 0.01 * noise), ref)
    blurred = oracle.invented_detail(ndimage.gaussian_filter(ref, (1.0, 1.0, 0)).astype(np.float32), ref)
    assert grating.spectral > 0.5  # about its RMS amplitude in grey levels (1.41) minus what the window leaks
    assert grating.peak == max(grating.region, grating.spectral)
    assert noisy.spectral == 0.0  # a smooth spectrum has no narrowband peak
    assert blurred.spectral < 1e-3  # a blur leaves a scaled copy of the reference (rounding-level peaks only)


def test_structure_the_reference_has_at_that_frequency_is_excused() -> None:
    """A grating the reference already has, re-drawn a little stronger by the output: the reference's own
    periodogram at those bins (``SPECTRAL_REFERENCE`` x Q) excuses it; the same grating absent from the reference
    is counted."""
    base = _flat_photo()
    g = _grating(base.shape[:2], 6 / 255, 4.0)
    ref = _with_luma(base, g)
    out = _with_luma(base, 1.6 * g)
    assert oracle.invented_detail(out, ref).spectral == 0.0
    assert oracle.invented_detail(out, base).spectral > 1.0


def test_the_envelope_test_is_the_median_rule() -> None:
    """The tiers decide ``P > peak x median + ref x Q`` by counting neighbours below ``(P - ref Q) / peak``:
    the same bins as the oracle's median filter, on periodograms with peaks, ties and zeros."""
    rng = np.random.default_rng(2)
    p = rng.exponential(size=(40, 32, 32)) * (rng.random((40, 1, 1)) < 0.9)
    p[:, 5, 7] *= 60.0
    p[:, -5, -7] = p[:, 5, 7]
    p[:, 3:6, 3:6] = 1.0  # ties with the envelope
    p = (p + np.roll(np.flip(p, (1, 2)), 1, (1, 2))) / 2  # a real window's spectrum is point-symmetric
    q = rng.exponential(size=p.shape) * 0.1
    q = (q + np.roll(np.flip(q, (1, 2)), 1, (1, 2))) / 2
    want = np.where(spectral.narrowband(p, q), p, 0.0).sum(axis=(1, 2))
    half = torch.from_numpy(p[..., :17]).float(), torch.from_numpy(q[..., :17]).float()
    assert torch.equal(full_spectrum(half[0]), torch.from_numpy(p).float())
    for kernels in (True, False):
        dispatch.USE_KERNELS = kernels
        try:
            got = dispatch.narrowband_energy(*half, model.SPECTRAL_ENVELOPE, model.SPECTRAL_PEAK,
                                             model.SPECTRAL_REFERENCE).double().numpy()
        finally:
            dispatch.USE_KERNELS = True
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), kernels
    assert (want > 0).sum() > 20  # the peaks are found: not a comparison of zeros


@pytest.mark.parametrize("kernels", [True, False])
def test_the_tiers_match_the_oracle_on_the_same_fields(kernels: bool) -> None:
    rng = np.random.default_rng(3)
    shape = (100, 150)
    residual = 0.004 * rng.normal(size=shape) + _grating(shape, 2 / 255, 4.1, 1.1)
    residual[:, :60] = 0.004 * rng.normal(size=(100, 60))  # the grating on part of the image only
    ref_fine = 0.01 * rng.normal(size=shape)
    want = spectral.window_ratios(residual, ref_fine)
    dispatch.USE_KERNELS = kernels
    try:
        got = product.window_ratios(torch.from_numpy(residual).float()[None], torch.from_numpy(ref_fine).float()[None])
        score = product.spectral_score(torch.from_numpy(residual).float()[None],
                                       torch.from_numpy(ref_fine).float()[None])
    finally:
        dispatch.USE_KERNELS = True
    assert np.abs(got[0].double().numpy() - want).max() < 1e-5 * want.max()
    assert 0 < (want > 0).sum() < want.size  # some windows count, some do not
    assert float(score[0]) == pytest.approx(spectral.spectral_score(residual, ref_fine), rel=1e-5)


@pytest.mark.parametrize("kernels", [True, False])
def test_the_analysis_reads_the_spectral_rule_into_its_region_score(kernels: bool) -> None:
    ref = _flat_photo(96, 128)
    noise = np.random.default_rng(4).normal(size=ref.shape[:2])
    out = _with_luma(ref, _grating(ref.shape[:2], 3 / 255, 3.0, 0.7) + 0.002 * noise)
    want = oracle.invented_detail(out, ref)
    as_tensor = [torch.from_numpy(a).permute(2, 0, 1)[None].contiguous() for a in (out, ref)]
    dispatch.USE_KERNELS = kernels
    try:
        got = analysis.analyse(*as_tensor)
    finally:
        dispatch.USE_KERNELS = True
    assert want.spectral > 0.5
    assert float(got.spectral[0]) == pytest.approx(want.spectral, rel=0.02)
    assert float(got.peak[0]) == pytest.approx(max(float(got.region[0]), float(got.spectral[0])), rel=1e-12)
    assert got.result(0).spectral == float(got.spectral[0])


def test_images_smaller_than_a_window_have_no_spectral_reading() -> None:
    small = np.full((20, 40, 3), 0.5, np.float32)
    assert oracle.invented_detail(_with_luma(small, _grating((20, 40), 4 / 255, 3.0)), small).spectral == 0.0
    z = torch.zeros((2, 20, 40))
    assert torch.equal(product.spectral_score(z, z), torch.zeros(2, dtype=torch.float64))


def test_the_tiers_make_the_same_periodograms_bit_for_bit() -> None:
    """The compiled windows (gather and taper in one pass) are the torch tier's float32 products exactly, so both
    tiers' periodograms are the same numbers; origins with the flush last window."""
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(70, 101)).astype(np.float32))
    oy, ox = product.window_origins(70), product.window_origins(101)
    ys = torch.tensor(oy).repeat_interleave(len(ox))
    xs = torch.tensor(ox).repeat(len(oy))
    got = []
    for kernels in (True, False):
        dispatch.USE_KERNELS = kernels
        try:
            got.append(dispatch.periodograms(x, ys, xs, model.SPECTRAL_WINDOW))
        finally:
            dispatch.USE_KERNELS = True
    assert got[0].shape == (len(oy) * len(ox), 32, 17) and torch.equal(got[0], got[1])
    want = spectral.periodograms(np.stack([x.double().numpy()[y : y + 32, c : c + 32] for y, c in zip(ys.tolist(), xs.tolist(), strict=True)]))
    assert np.allclose(got[0].double().numpy(), want[..., :17], rtol=1e-4, atol=1e-7)
