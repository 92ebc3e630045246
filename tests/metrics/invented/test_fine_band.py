"""The finest-band channel in torch (:mod:`qa.metrics.invented.fine_band`) and the surround noise model of every
band (:mod:`qa.metrics.invented.surround`) against the float64 oracle's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from qa.metrics.invented import dispatch, fine_band, model, oracle, surround
from qa.metrics.invented.local_fit import band_coarse, inside
from qa.metrics.invented.oracle.bands import all_band_stats
from qa.metrics.invented.oracle.fine import all_fine_stats, fine_channel, shift
from qa.metrics.invented.oracle.surround import benign_level
from qa.metrics.invented.tensor import pointwise as tensor_pointwise
from tests.metrics.invented.synth import add_luma, box, texture


@pytest.mark.parametrize("kernels", [True, False])
def test_surround_means_are_scipys_wide_gaussian(monkeypatch: pytest.MonkeyPatch, kernels: bool) -> None:
    """The sigma-64 surround from 4x4 block means (2x1 here: 150 x 203 px), brought back by bicubic: within 1e-4
    of scipy's full filter on a smooth field (the residual energies it is applied to are themselves window
    means) and within 1e-3 on white noise, on either tier; the second field is the window mean of the product."""
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    rng = np.random.default_rng(0)
    noise = rng.random((1, 150, 203))
    smooth = ndimage.gaussian_filter(noise, (0, 2.0, 2.0))
    for x, tol in ((smooth, 1e-4), (noise, 1e-3)):
        a = torch.from_numpy(x).float()
        mean_a, mean_ab, bh, bw = surround.surround_means(a, 2.0 * a, model.SURROUND_SIGMA)
        assert (bh, bw) == (2, 1)
        for field, target in ((mean_a, x[0]), (mean_ab, 2.0 * x[0] * x[0])):
            want = ndimage.gaussian_filter(target, 64.0, mode="reflect", truncate=4.0)
            got = dispatch.bicubic(field, bh, bw)[0].double().numpy()
            assert np.abs(got - want).max() < tol * np.abs(want).max()


def test_shift_pair_mirrors_like_numpy_pad() -> None:
    r = np.random.default_rng(1).random((13, 17))
    for dy, dx in model.PREDICT_OFFSETS:
        want = shift(r, dy, dx) + shift(r, -dy, -dx)
        got = tensor_pointwise.shift_pair(torch.from_numpy(r)[None], dy, dx)[0].numpy()
        assert np.allclose(got, want)


def test_fine_channel_matches_the_oracle(photo: np.ndarray) -> None:
    """Invented finest-band energy per pixel (after the map placement ``sharpen``) for a checkerboard, 1-px
    strokes, noise and JPEG-like blur."""
    side = photo.shape[0]
    yy, xx = np.indices((side, side))
    rng = np.random.default_rng(2)
    outs = {
        "checker": add_luma(photo, 0.03 * ((yy + xx) % 2 - 0.5) * box(10, 50, 40, 90)),
        "strokes": add_luma(photo, 0.08 * (xx % 6 == 0) * box(20, 70, 10, 60)),
        "noise": np.clip(photo + 0.02 * rng.normal(size=photo.shape), 0, 1).astype(np.float32),
        "texture": add_luma(photo, 0.05 * texture(0) * box(20, 60, 30, 70)),
    }
    yr = oracle.luma(photo)
    tr = torch.from_numpy(yr).float()[None]
    fr = tr - dispatch.blur2d(tr, model.FINE_SIGMA)
    for kind, out in outs.items():
        yo = oracle.luma(out)
        st = all_fine_stats(yo, yr)
        want = fine_channel(st) * st.sharpen  # method v3: placed where the pointwise residual lies
        to = torch.from_numpy(yo).float()[None]
        got_inv, got_ref, _ = fine_band.fine_invented(to - dispatch.blur2d(to, model.FINE_SIGMA), fr)
        got = got_inv[0].double().numpy()
        assert np.allclose(got_ref[0].double().numpy(), st.ref, rtol=1e-4, atol=1e-9), kind
        peak = max(float(want.max()), 1e-12)
        assert np.abs(got - want).max() < 0.02 * peak, kind
        assert abs(got.sum() - want.sum()) <= 1e-3 * max(want.sum(), 1e-12) + 1e-9, kind
    assert fine_channel(all_fine_stats(oracle.luma(outs["checker"]), yr)).sum() > 0  # not a comparison of zeros


@pytest.mark.parametrize("kernels", [True, False])
def test_coarse_band_surround_matches_the_oracle(monkeypatch: pytest.MonkeyPatch, photo: np.ndarray,
                                                 kernels: bool) -> None:
    """The three bands' surround, fitted on the coarse grid's samples (sigma 64 px = 32 samples), against the
    oracle's full-resolution :func:`benign_level` on the same band statistics: within 3% of the level's largest
    value at every image sample and 2% in the image mean, for noise and a planted
    texture. (On this 96-px crop the surround is wider than the image, so the edges' geometry dominates: the
    grid's mirror lies half a pixel from the image's. At 256 px the tune split's cases agree within 2% / 1%.)"""
    monkeypatch.setattr(dispatch, "USE_KERNELS", kernels)
    rng = np.random.default_rng(3)
    outs = {
        "noise": np.clip(photo + 0.02 * rng.normal(size=photo.shape), 0, 1).astype(np.float32),
        "texture": add_luma(photo, 0.05 * texture(0) * box(20, 60, 30, 70)),
    }
    yr = oracle.luma(photo)
    h, w = yr.shape
    for kind, out in outs.items():
        yo = oracle.luma(out)
        for s, st in zip(model.BAND_SIGMAS, all_band_stats(yo, yr), strict=True):
            want = model.SURROUND_FACTOR * benign_level(st.unexplained, st.ref)
            to, tr = (torch.from_numpy(v).float()[None] for v in (yo, yr))
            ob = dispatch.blur2d(to, s) - dispatch.blur2d(to, 2 * s)
            rb = dispatch.blur2d(tr, s) - dispatch.blur2d(tr, 2 * s)
            bc = band_coarse(ob, rb)
            got = inside(surround.coarse_excused(bc.unexplained, bc.ref, h, w), h, w)[0].double().numpy()
            assert np.abs(got - want[::2, ::2]).max() < 0.03 * want.max(), (kind, s)
            assert got.mean() == pytest.approx(float(want.mean()), rel=0.02), (kind, s)
