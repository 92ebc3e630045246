"""Tests of the finest-band channel of invented detail: known answers of its parts (against independent
computations) and the behaviour the method promises on synthetic inputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from qa.metrics.invented import model, oracle
from qa.metrics.invented.oracle.fine import all_fine_stats, fine_stats, predictability
from qa.metrics.invented.oracle.gaussian import wide_gaussian
from qa.metrics.invented.oracle.surround import surround_level
from tests.metrics.invented.synth import add_luma, box


def _fine(kind: str, side: int = 96) -> np.ndarray:
    """Fine patterns of peak amplitude 1: a period-2 checkerboard, a 2.5-px grating at 30 degrees, 1-px strokes."""
    yy, xx = np.mgrid[:side, :side].astype(np.float64)
    if kind == "checker2":
        return np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    if kind == "grating":
        return np.sin(2 * np.pi * (xx * np.cos(np.pi / 6) + yy * np.sin(np.pi / 6)) / 2.5 + 0.3)
    canvas = np.zeros((side, side))
    rng = np.random.default_rng(7)
    for _ in range(150):  # 1-px line segments, 3-12 px long, any orientation
        y0, x0 = rng.uniform(0, side, 2)
        a, ln = rng.uniform(0, np.pi), rng.uniform(3, 12)
        t = np.linspace(0, ln, 30)
        canvas[np.clip(np.round(y0 + t * np.sin(a)).astype(int), 0, side - 1),
               np.clip(np.round(x0 + t * np.cos(a)).astype(int), 0, side - 1)] = 1.0
    return canvas


def _grain(photo: np.ndarray, rng: np.random.Generator, amp: float = 0.03) -> np.ndarray:
    g = ndimage.gaussian_filter(rng.normal(0, 1, photo.shape[:2]), 0.7)
    lum = oracle.luma(photo)
    return add_luma(photo, amp * g / g.std() * (0.4 + 2.4 * lum * (1 - lum)))


@pytest.mark.parametrize("kind", ["checker2", "grating", "strokes1"])
def test_fine_structure_is_found_in_its_box(photo: np.ndarray, kind: str) -> None:
    """Patterns finer than 4 px at 8/255 of luma (transposed-convolution checkerboards, aliasing, hair) in a box
    are invented detail, found where they were planted; i.i.d. noise or film grain of larger energy over the
    whole image score far lower."""
    m = box(30, 75, 20, 70)
    res = oracle.invented_detail(add_luma(photo, 8 / 255 * _fine(kind) * m), photo)
    assert res.fine_invented > 2e-4 and res.invented >= res.fine_invented
    assert m[np.unravel_index(int(np.argmax(res.map)), m.shape)]
    assert float(res.map[m].mean()) > 10 * float(res.map[~ndimage.binary_dilation(m, iterations=6)].mean() + 1e-6)
    rng = np.random.default_rng(1)
    noisy = np.clip(photo + rng.normal(0, 0.02, photo.shape), 0, 1).astype(np.float32)
    for benign in (noisy, _grain(photo, rng)):
        assert oracle.invented_detail(benign, photo).invented < res.invented / 4


def test_periodic_structure_over_the_whole_image_is_scored(photo: np.ndarray) -> None:
    """A checkerboard or grating painted over the whole image is not explained by its surround (it is periodic):
    a decoder that invents it everywhere cannot raise its own tolerance with it. Noise everywhere can."""
    for kind in ("checker2", "grating"):
        res = oracle.invented_detail(add_luma(photo, 8 / 255 * _fine(kind)), photo)
        assert res.fine_invented > 0.01, kind
    noisy = np.clip(photo + np.random.default_rng(3).normal(0, 0.03, photo.shape), 0, 1).astype(np.float32)
    assert oracle.invented_detail(noisy, photo).fine_invented < 1e-3


def test_codecs_and_sharpening_score_below_fine_invention(photo: np.ndarray) -> None:
    """JPEG 4:2:0 at quality 10 (blocking, ringing) and unsharp masking re-draw or amplify detail the reference
    has: they stay below a period-2 checkerboard of 8/255 in a box."""
    planted = oracle.invented_detail(add_luma(photo, 8 / 255 * _fine("checker2") * box(30, 75, 20, 70)), photo).invented
    buf = io.BytesIO()
    Image.fromarray((photo * 255 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=10, subsampling=2)
    jpeg = np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255
    sharp = np.clip(photo + 1.0 * (photo - ndimage.gaussian_filter(photo, (1.0, 1.0, 0))), 0, 1).astype(np.float32)
    for out in (jpeg, sharp):
        assert oracle.invented_detail(out, photo).invented < planted / 3


def test_predictability_known_answers() -> None:
    """A sinusoid of any period and orientation (and the period-2 checkerboard) is predicted from its neighbour
    pairs almost exactly; i.i.d. noise only by the fit's few degrees of freedom (4 of about 200 in the window)."""
    yy, xx = np.mgrid[:96, :96].astype(np.float64)
    for period, theta in ((2.3, 0.4), (3.7, 2.0), (5.0, 1.1)):
        s = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
        assert float(np.median(predictability(s))) > 0.99
    assert float(np.median(predictability(np.where((yy + xx) % 2 == 0, 1.0, -1.0)))) > 0.99
    noise = np.random.default_rng(0).normal(size=(96, 96))
    assert float(np.median(predictability(noise))) < 0.1


def test_wide_gaussian_equals_scipy() -> None:
    x = np.random.default_rng(1).random((70, 130))
    for sigma in (3.0, 64.0):
        np.testing.assert_allclose(wide_gaussian(x, sigma), ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=4.0),
                                   atol=1e-13)


def test_surround_level_is_the_weighted_least_squares_fit() -> None:
    """a + b x ref at a pixel equals an independent Gaussian-weighted least-squares fit of u on [1, ref]
    (np.linalg.lstsq over the whole reflect-extended window) when both coefficients come out positive."""
    rng = np.random.default_rng(2)
    ref = ndimage.gaussian_filter(rng.random((40, 40)), 3) ** 2
    u = 0.3 + 2.0 * ref + 0.05 * rng.random((40, 40))
    sr, srr = wide_gaussian(ref, model.SURROUND_SIGMA), wide_gaussian(ref * ref, model.SURROUND_SIGMA)
    level = surround_level(u, ref, sr, srr)
    r = int(4 * model.SURROUND_SIGMA + 0.5)
    # scipy's reflect extension of a 40-px image over a 256-px radius, as explicit indices
    idx = np.arange(-r, 40 + r) % 80
    idx = np.where(idx < 40, idx, 79 - idx)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / model.SURROUND_SIGMA) ** 2)
    k /= k.sum()
    for y, x in ((5, 7), (20, 33)):
        rows, cols = idx[y : y + 2 * r + 1], idx[x : x + 2 * r + 1]
        wts = np.sqrt(np.outer(k, k)).ravel()
        a_mat = np.stack([np.ones(wts.size), ref[np.ix_(rows, cols)].ravel()], axis=1) * wts[:, None]
        (a, b), *_ = np.linalg.lstsq(a_mat, u[np.ix_(rows, cols)].ravel() * wts, rcond=None)
        assert a > 0 and b > 0
        assert level[y, x] == pytest.approx(a + b * ref[y, x], rel=1e-6)


def test_fine_tiling_is_exact(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    big = np.concatenate([photo, photo[:, ::-1]], axis=1)
    out = add_luma(big, 8 / 255 * np.tile(_fine("grating"), (1, 2)))
    whole = fine_stats(oracle.luma(out), oracle.luma(big))
    monkeypatch.setattr("qa.metrics.invented.oracle.bands.TILE", 64)
    tiled = all_fine_stats(oracle.luma(out), oracle.luma(big))
    for name in ("residual", "ref", "predictability", "sharpen"):
        np.testing.assert_allclose(getattr(tiled, name), getattr(whole, name), atol=1e-9)
