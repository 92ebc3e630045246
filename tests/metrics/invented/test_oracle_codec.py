"""Tests of the block-DCT codec test of invented detail (:mod:`qa.metrics.invented.oracle.codec`): its excess against an
independent per-block computation, and what it explains (JPEG at any quality and subsampling) and what not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from qa.metrics.invented import model, oracle
from qa.metrics.invented.oracle import codec as oracle_codec
from qa.metrics.invented.oracle.bands import all_band_stats
from qa.metrics.invented.oracle.fine import all_fine_stats
from tests.metrics.invented.synth import add_luma, box


def _dct_matrix(n: int = 8) -> np.ndarray:
    """The orthonormal DCT-II matrix, written out from its definition (independent of scipy.fft)."""
    k, i = np.mgrid[:n, :n].astype(np.float64)
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m


def _jpeg(img: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
        buf, format="JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0


def test_excess_matches_a_per_block_loop() -> None:
    """codec_excess equals a plain loop over blocks with the DCT written as a matrix product, and ignores the
    partial blocks at the right and bottom edges."""
    rng = np.random.default_rng(3)
    yo, yr = rng.uniform(0, 1, (27, 35)), rng.uniform(0, 1, (27, 35))
    yo[:8, :8] = yr[:8, :8] * 0.5  # a block that only shrinks: excess 0
    d = _dct_matrix()
    want = np.zeros((3, 4))
    for by in range(3):
        for bx in range(4):
            o = d @ yo[8 * by:8 * by + 8, 8 * bx:8 * bx + 8] @ d.T
            r = d @ yr[8 * by:8 * by + 8, 8 * bx:8 * bx + 8] @ d.T
            for a, c in zip(o.ravel(), r.ravel(), strict=True):
                same = np.sign(a) == np.sign(c)
                e = max(0.0, abs(a) - 2 * abs(c) - model.CODEC_SLACK) if same else max(0.0, abs(a) - model.CODEC_SLACK)
                want[by, bx] += e * e / 64.0
    got = oracle_codec.codec_excess(yo, yr)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)
    assert got[0, 0] == 0.0 and got.min() < got.max()


def test_cap_scales_blocks_and_keeps_partial_ones() -> None:
    inv = np.ones((20, 20))
    excess = np.array([[0.0, 1.0], [0.125, 10.0]])
    got = oracle_codec.codec_cap(inv, excess, factor=4.0)
    assert np.all(got[:8, :8] == 0.0) and np.all(got[:8, 8:16] == 1.0)
    assert np.allclose(got[8:16, :8], 0.5) and np.all(got[8:16, 8:16] == 1.0)
    assert np.all(got[16:, :] == 1.0) and np.all(got[:, 16:] == 1.0)


@pytest.mark.parametrize("quality,subsampling", [(10, 2), (20, 0), (40, 2)])
def test_jpeg_of_the_reference_is_explained(photo: np.ndarray, quality: int, subsampling: int) -> None:
    """JPEG of the reference (quantisation of its block DCT) creates almost no excess and, after the cap, scores
    far below (and far below its uncapped value) a period-2 checkerboard of 8/255 in a box, whose excess the cap leaves alone."""
    out = _jpeg(photo, quality, subsampling)
    yo, yr = oracle.luma(out), oracle.luma(photo)
    yy, xx = np.mgrid[: photo.shape[0], : photo.shape[1]]
    checker = add_luma(photo, 8 / 255 * np.where((yy + xx) % 2 == 0, 1.0, -1.0) * box(30, 75, 20, 70))
    assert oracle_codec.codec_excess(yo, yr).mean() < 0.05 * oracle_codec.codec_excess(oracle.luma(checker), yr).mean()
    planted = oracle.invented_detail(checker, photo)
    uncapped = oracle.invented_from_stats(all_band_stats(oracle.luma(checker), yr), all_fine_stats(oracle.luma(checker), yr))
    assert planted.invented == pytest.approx(uncapped.invented, rel=0.05)
    capped = oracle.invented_detail(out, photo).invented
    assert capped < planted.invented / 50
    assert capped < oracle.invented_from_stats(all_band_stats(yo, yr), all_fine_stats(yo, yr)).invented / 5
