"""The finest band's channel of the analysis (the oracle's ``fine_channel(all_fine_stats(...))``), as torch
tensors on any device, each step through :mod:`qa.metrics.invented.dispatch`:

- the finest band's local least-squares fit (sigma-4 window, four reference features) is solved on the coarse
  grid and its four coefficient fields are interpolated back, then applied pixel by pixel as in the oracle;
- the residual's predictability from its neighbours is a second local fit on the coarse grid (interpolated);
- the sigma-64 surround, far smoother than any grid needs, is a 4x4 block mean, a Gaussian on that grid and a
  bicubic interpolation back (its error is below 1e-4 of the field, see
  ``tests/metrics/invented/test_fine_band.py``).

Fields are (N, H, W) float32 luma(-derived).
"""

from __future__ import annotations

import torch

from qa.metrics.invented import dispatch
from qa.metrics.invented.local_fit import features, local_lsq, residual, to_full
from qa.metrics.invented.model import (
    ABS_FLOOR,
    FINE_TOLERANCE,
    FINE_WINDOW,
    MAP_SIGMA,
    PERIODIC_MIN,
    PREDICT_OFFSETS,
    SURROUND_CLIP,
    SURROUND_FACTOR,
    SURROUND_SIGMA,
    WINDOW_SIGMA,
)

#: coarse-grid strides of the finest band's fit (its coefficients multiply the features pixel by pixel, so they
#: must be accurate) and of the predictability fit
FIT_STRIDE = 2
PRED_STRIDE = 2
#: block side of the decimated grid of the surround Gaussian
SURROUND_BLOCK = 4


def _block(n: int, block: int) -> int:
    """The largest of ``block``, ``block / 2``, ..., 1 that divides ``n`` (so that the block means keep the
    image's mirror symmetry at both borders, which scipy's ``reflect`` rule assumes)."""
    while n % block:
        block //= 2
    return block


def _blur_blocks(coarse: torch.Tensor, sigma: float, bh: int, bw: int) -> torch.Tensor:
    """The Gaussian (sigma px) of block means (K, H / bh, W / bw), on their grid (sigma reduced by the blocks'
    own variance)."""
    coarse = dispatch.blur_h(coarse, (sigma**2 - (bh**2 - 1) / 12.0) ** 0.5 / bh)
    return dispatch.blur_w(coarse, (sigma**2 - (bw**2 - 1) / 12.0) ** 0.5 / bw)


def surround_means(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The Gaussian window means (sigma ``SURROUND_SIGMA``) of ``a`` and ``a * b`` (each (N, H, W)) on the
    surround's block grid: the two (N, H / bh, W / bw) fields and the block sides (bh, bw), from block means of
    side ``SURROUND_BLOCK`` (or the largest power-of-two fraction of it that divides the axis) blurred on that
    grid. ``dispatch.bicubic(field, bh, bw)`` brings a field back to full resolution."""
    _, h, w = a.shape
    bh, bw = _block(h, SURROUND_BLOCK), _block(w, SURROUND_BLOCK)
    coarse = _blur_blocks(dispatch.block_means(a, b, bh, bw).flatten(0, 1), SURROUND_SIGMA, bh, bw)
    first, second = coarse.chunk(2)
    return first, second, bh, bw


def _level_coefficients(su: torch.Tensor, sru: torch.Tensor, sr: torch.Tensor, srr: torch.Tensor) -> torch.Tensor:
    """The oracle's ``surround_level`` fit from the window means of u, ref x u, ref and ref^2: (2, ...) = (a, b),
    the constrained least-squares optimum (a, b >= 0)."""
    b = (sru - sr * su) / (srr - sr * sr).clamp_min(1e-30)
    a = su - b * sr
    b = torch.where(a < 0, sru / srr.clamp_min(1e-30), b)
    a = torch.where(a < 0, torch.zeros_like(a), a)
    a = torch.where(b < 0, su, a)
    return torch.stack([a, b.clamp_min(0.0)])


class Surround:
    """The oracle's ``surround_level``: the benign residual level a + b x ref, (a, b) >= 0 fitted to a residual
    energy ``u`` by least squares in a Gaussian window of sigma ``SURROUND_SIGMA``. The reference-only window
    means (ref, ref^2) are computed once for both robust passes; the fit is made on the surround's block grid,
    where the window means live, and only a and b are brought to full resolution."""

    def __init__(self, ref: torch.Tensor) -> None:
        self.ref = ref
        self.sr, self.srr, self.bh, self.bw = surround_means(ref, ref)

    def level(self, u: torch.Tensor) -> torch.Tensor:
        """a + b ref, (N, H, W)."""
        su, sru, _, _ = surround_means(u, self.ref)
        ab = _level_coefficients(su, sru, self.sr, self.srr)  # (2, N, H / bh, W / bw)
        two, n, hb, wb = ab.shape
        rows = dispatch.bicubic(ab.reshape(two * n, hb, wb), self.bh, 1).reshape(two, n, hb * self.bh, wb)
        return dispatch.surround_level(rows, self.bw, self.ref)


def fine_invented(fo: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
    """Invented energy of the finest band per pixel (N, H, W), luma^2 >= 0, from the output's and reference's
    finest bands ``fo``, ``fr`` (``y - G_FINE_SIGMA * y``): the oracle's ``fine_channel(all_fine_stats(...))``,
    placed where the pointwise residual lies (``G_MAP_SIGMA * r^2 / G_FINE_WINDOW * r^2``)."""
    h, w = fo.shape[-2:]
    feats = features(fr)
    fit = local_lsq(fo, feats, stride=FIT_STRIDE)
    r = residual(fo, feats, fit.coef, FIT_STRIDE)
    del feats
    r2 = dispatch.squared(r)
    u, ref = dispatch.blur2d(r2, FINE_WINDOW), dispatch.blur2d(dispatch.squared(fr), FINE_WINDOW)
    neighbours = dispatch.shift_pairs(r, PREDICT_OFFSETS)
    pred_fit = local_lsq(r, neighbours, stride=PRED_STRIDE)
    del neighbours
    pred = (pred_fit.explained / pred_fit.moment(4, 4).clamp_min(1e-30)).clamp(0.0, 1.0)
    pred = to_full(pred, h, w, WINDOW_SIGMA, PRED_STRIDE)
    surround = Surround(ref)
    level = surround.level(torch.minimum(u, SURROUND_CLIP * surround.level(u)))
    return dispatch.fine_combine(u, ref, pred, level, dispatch.blur2d(r2, MAP_SIGMA), ABS_FLOOR, FINE_TOLERANCE,
                                 PERIODIC_MIN, SURROUND_FACTOR)
