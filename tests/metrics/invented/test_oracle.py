"""Known-answer tests of the invented-detail oracle (:mod:`qa.metrics.invented.oracle`) on synthetic inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from qa.metrics.invented import model, oracle
from qa.metrics.invented.oracle.bands import all_band_stats, band_stats
from qa.metrics.invented.oracle.fine import all_fine_stats
from tests.metrics.invented.synth import add_luma, box, texture


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_identical_scores_zero(photo: np.ndarray) -> None:
    res = oracle.invented_detail(photo, photo)
    assert res.invented == 0.0 and res.lost < 1e-5
    assert float(res.map.max()) == 0.0
    assert oracle.distortion(photo, photo) == 0.0


@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])
def test_pure_blur_invents_nothing_but_loses_detail(photo: np.ndarray, sigma: float) -> None:
    blurred = ndimage.gaussian_filter(photo, (sigma, sigma, 0))
    res = oracle.invented_detail(blurred, photo)
    assert res.invented < 1e-3
    assert res.lost > 0.1 * sigma  # more blur, more loss
    planted = oracle.invented_detail(add_luma(photo, 0.05 * texture(0) * box(20, 60, 30, 70)), photo)
    assert planted.invented > 3 * max(res.invented, 1e-4)


def test_lost_detail_grows_with_blur(photo: np.ndarray) -> None:
    lost = [oracle.invented_detail(ndimage.gaussian_filter(photo, (s, s, 0)), photo).lost for s in (0.5, 1.0, 2.0, 4.0)]
    assert lost == sorted(lost) and lost[-1] > 0.7


def test_colour_and_tone_shift_is_distortion_not_invention(photo: np.ndarray) -> None:
    shifted = np.clip(photo * np.array([1.1, 0.9, 1.0]) + 0.04, 0, 1).astype(np.float32)
    gamma = (photo**1.4).astype(np.float32)
    for out in (shifted, gamma):
        res = oracle.invented_detail(out, photo)
        assert res.invented < 1e-3
        assert oracle.distortion(out, photo) > 0.02
    # distortion against an independent computation: RMS of the Gaussian low-passes
    lo = lambda x: ndimage.gaussian_filter(x.astype(np.float64), (4, 4, 0))  # noqa: E731
    assert oracle.distortion(shifted, photo) == pytest.approx(float(np.sqrt(np.mean((lo(shifted) - lo(photo)) ** 2))))


def test_added_texture_is_found_in_its_box(photo: np.ndarray) -> None:
    m = box(50, 90, 10, 50)
    res = oracle.invented_detail(add_luma(photo, 0.06 * texture(1) * m), photo)
    peak = np.unravel_index(int(np.argmax(res.map)), res.map.shape)
    assert m[peak]
    assert float(res.map[m].mean()) > 20 * float(res.map[~ndimage.binary_dilation(m, iterations=8)].mean() + 1e-6)
    assert _iou(res.map > 0.0075, m) > 0.6  # the benchmark's global threshold


def test_redrawn_detail_of_equal_energy_is_invented(photo: np.ndarray) -> None:
    """A region whose detail is replaced by different detail of the same energy: no energy excess, still found."""
    y = oracle.luma(photo)
    hp = y - ndimage.gaussian_filter(y, 2.0)
    m = box(10, 50, 30, 70)
    new = texture(2) * hp[m].std()
    res = oracle.invented_detail(add_luma(photo, (new - hp) * m), photo)
    assert float(res.map[m].mean()) > 5 * float(res.map[~m].mean() + 1e-6)


def test_subpixel_shift_and_noise_score_below_planted(photo: np.ndarray) -> None:
    shifted = np.clip(ndimage.shift(photo, (0.5, 0.5, 0), order=3, mode="reflect"), 0, 1)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.02, photo.shape), 0, 1)
    planted = oracle.invented_detail(add_luma(photo, 0.04 * texture(3) * box(20, 60, 20, 60)), photo).invented
    for out in (shifted, noisy):
        assert oracle.invented_detail(out.astype(np.float32), photo).invented < planted / 3


def test_tiling_is_exact(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    big = np.concatenate([photo, photo[:, ::-1]], axis=1)
    out = add_luma(big, 0.05 * texture(4, 2 * 96)[:96] * np.ones((96, 192)))
    whole = band_stats(oracle.luma(out), oracle.luma(big), model.BAND_SIGMAS[1])
    monkeypatch.setattr("qa.metrics.invented.oracle.bands.TILE", 64)
    tiled = all_band_stats(oracle.luma(out), oracle.luma(big))[1]
    np.testing.assert_allclose(tiled.unexplained, whole.unexplained, atol=1e-9)
    np.testing.assert_allclose(tiled.sharpen, whole.sharpen, atol=1e-9)


def test_placement_keeps_the_map_inside_the_region(photo: np.ndarray) -> None:
    """Placement (``sharpen``) moves a window's invented energy to where its residual is: the map of a texture
    planted in a box spills less outside the box than the same analysis with placement switched off, and the
    total changes little."""
    m = box(30, 70, 25, 65)
    out = add_luma(photo, 0.05 * texture(5) * m)
    yo, yr = oracle.luma(out), oracle.luma(photo)
    stats, fine = all_band_stats(yo, yr), all_fine_stats(yo, yr)
    placed = oracle.invented_from_stats(stats, fine).invented_energy
    flat = oracle.invented_from_stats([replace(st, sharpen=np.ones_like(st.sharpen)) for st in stats],
                                 replace(fine, sharpen=np.ones_like(fine.sharpen))).invented_energy
    outside = ~m.astype(bool)
    assert placed[outside].sum() / placed.sum() < 0.8 * flat[outside].sum() / flat.sum()
    assert placed.sum() == pytest.approx(flat.sum(), rel=0.15)


def test_hf_energy_ratio_known_answer(photo: np.ndarray) -> None:
    """Doubling the contrast about 0.5 (no clipping) quadruples the high-pass energy."""
    low = (0.25 + 0.5 * photo).astype(np.float64)
    assert oracle.hf_energy(photo) / oracle.hf_energy(low) == pytest.approx(4.0, rel=1e-6)


def test_seed_std_map() -> None:
    a = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    assert float(oracle.seed_std_map([a, a, a]).max()) == 0.0
    b = a.copy()
    b[:8, :8] = 1.0 - b[:8, :8]
    std = oracle.seed_std_map([a, b])
    expected = np.abs(oracle.luma(a) - oracle.luma(b)) / 2  # population std of two values
    np.testing.assert_allclose(std, expected, atol=1e-6)
    assert float(std[8:, :].max()) == 0.0 and float(std[:8, :8].mean()) > 0
    with pytest.raises(ValueError, match="at least 2"):
        oracle.seed_std_map([a])


def test_region_score_known_answers() -> None:
    """The region score against closed forms: a uniform invented energy E over uniform reference detail R gives
    sqrt(E / (R + floor)) (reflect edges: a border region is averaged like an inner one); a solid square of side
    s centred at c gives, at c, E (erf(s / (2 sqrt(2) sigma)))^2 / floor on flat ground, and its centre."""
    from scipy.special import erf

    e0, r0 = 4e-4, 1e-3
    score, _ = oracle.region_score(np.full((64, 80), e0), np.full((64, 80), r0))
    assert score == pytest.approx(np.sqrt(e0 / (r0 + model.REGION_FLOOR)), rel=1e-9)
    side, sigma = 30, model.REGION_SIGMA
    energy = np.zeros((128, 128))
    energy[40 : 40 + side, 50 : 50 + side] = e0
    score, at = oracle.region_score(energy, np.zeros_like(energy))
    inside = erf(side / (2 * np.sqrt(2) * sigma)) ** 2  # a square of even side: the centre between four pixels
    assert score**2 * model.REGION_FLOOR == pytest.approx(e0 * inside, rel=2e-3)
    assert at in {(40 + side // 2 - dy, 50 + side // 2 - dx) for dy in (0, 1) for dx in (0, 1)}
    assert oracle.region_score(np.zeros((32, 32)), np.ones((32, 32)))[0] == 0.0


def test_coarse_bands_cut_two_ways(photo: np.ndarray) -> None:
    """The three coarser bands, cut two ways (version 5). For the region score at the surround's benign level:
    noise over the whole image (blurred 1 px: band-limited like grain) is residual spread like noise and is
    excused, the same noise in a 40 x 40 box stands out from its surround and counts. For the share at the
    image-wide floor: invention that follows the reference's detail over the whole image (what a generative
    decoder's noise-driven detail looks like, and what the surround's ``b R`` term excuses) counts, more than the
    same invention in the box; the region score sees it weakly."""
    rng = np.random.default_rng(5)
    grain = ndimage.gaussian_filter(rng.normal(size=photo.shape[:2]), 1.0)
    grain /= grain.std()
    yr = oracle.luma(photo)
    detail = np.sqrt(ndimage.gaussian_filter((yr - ndimage.gaussian_filter(yr, 2.0)) ** 2, 4.0))
    detail /= detail.mean()
    in_box = box(30, 70, 20, 60)

    def coarse(delta: np.ndarray) -> model.InventedResult:
        return oracle.invented_from_stats(all_band_stats(oracle.luma(add_luma(photo, delta)), yr))

    noise, noise_box = coarse(0.06 * grain), coarse(0.06 * grain * in_box)
    assert noise_box.peak > 0.1
    assert noise.peak < noise_box.peak / 3
    drawn, drawn_box = coarse(0.03 * grain * detail), coarse(0.03 * grain * detail * in_box)
    assert drawn_box.invented > 0.0005
    assert drawn.invented > 1.5 * drawn_box.invented
    assert drawn.peak < noise_box.peak / 2
