"""The surround noise model of every band (the oracle's :mod:`~qa.metrics.invented.oracle.surround`) as torch
tensors on any device, each step through :mod:`qa.metrics.invented.dispatch`: the benign level ``a + b R`` of
a band's unexplained energy, (a, b) >= 0 fitted by least squares in a wide Gaussian window.

The wide Gaussian, far smoother than any grid needs, is a block mean (side ``SURROUND_BLOCK``), a Gaussian on
that grid and a bicubic interpolation back (its error is below 1e-4 of the field, see
``tests/metrics/invented/test_fine_band.py``). The finest band fits it on full-resolution fields; the three
coarser bands on their coarse grid (samples every ``WINDOW_STRIDE`` px, the window's sigma in samples).
Fields are (N, H, W) float32 luma^2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nn_functional

from qa.metrics.invented import dispatch
from qa.metrics.invented.local_fit import EXTRA, WINDOW_STRIDE, inside
from qa.metrics.invented.model import SURROUND_CLIP, SURROUND_FACTOR, SURROUND_SIGMA

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


def surround_means(a: torch.Tensor, b: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The Gaussian window means (sigma px of the field's grid) of ``a`` and ``a * b`` (each (N, H, W)) on the
    surround's block grid: the two (N, H / bh, W / bw) fields and the block sides (bh, bw), from block means of
    side ``SURROUND_BLOCK`` (or the largest power-of-two fraction of it that divides the axis) blurred on that
    grid. ``dispatch.bicubic(field, bh, bw)`` brings a field back to the input's resolution."""
    _, h, w = a.shape
    bh, bw = _block(h, SURROUND_BLOCK), _block(w, SURROUND_BLOCK)
    coarse = _blur_blocks(dispatch.block_means(a, b, bh, bw).flatten(0, 1), sigma, bh, bw)
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
    energy ``u`` by least squares in a Gaussian window of ``sigma`` px of the fields' grid. The reference-only
    window means (ref, ref^2) are computed once for every fit; the fit is made on the surround's block grid,
    where the window means live, and only a and b are brought back to the fields' resolution."""

    def __init__(self, ref: torch.Tensor, sigma: float) -> None:
        self.ref, self.sigma = ref, sigma
        self.sr, self.srr, self.bh, self.bw = surround_means(ref, ref, sigma)

    def _fit(self, u: torch.Tensor) -> torch.Tensor:
        """(2, N, H / bh, W / bw): a and b on the block grid."""
        su, sru, _, _ = surround_means(u, self.ref, self.sigma)
        return _level_coefficients(su, sru, self.sr, self.srr)

    def level(self, u: torch.Tensor) -> torch.Tensor:
        """a + b ref, (N, H, W)."""
        ab = self._fit(u)
        two, n, hb, wb = ab.shape
        rows = dispatch.bicubic(ab.reshape(two * n, hb, wb), self.bh, 1).reshape(two, n, hb * self.bh, wb)
        return dispatch.surround_level(rows, self.bw, self.ref)

    def coefficients(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a and b, each (N, H, W)."""
        ab = self._fit(u)
        two, n, hb, wb = ab.shape
        a, b = dispatch.bicubic(ab.reshape(two * n, hb, wb), self.bh, self.bw).reshape(two, n, hb * self.bh,
                                                                                      wb * self.bw)
        return a, b

    def robust_first(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` clipped at ``SURROUND_CLIP`` x its first fit's level: what the second (robust) fit sees."""
        return torch.minimum(u, SURROUND_CLIP * self.level(u))


def coarse_excused(u: torch.Tensor, ref: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """What the surround excuses of a coarse band's unexplained energy: ``SURROUND_FACTOR`` x (a + b ref) on the
    coarse grid of :mod:`qa.metrics.invented.local_fit` ((N, h', w'), the window statistics ``u`` and ``ref`` of
    an (H, W) = (``h``, ``w``) image). The fit runs on the samples inside the image (a Gaussian of
    ``SURROUND_SIGMA`` px is ``SURROUND_SIGMA / WINDOW_STRIDE`` samples); a and b, flat at the image's edges (a
    reflected window mean), are extended to the samples beyond them by their edge values."""
    ui, ri = inside(u, h, w).contiguous(), inside(ref, h, w).contiguous()
    surround = Surround(ri, SURROUND_SIGMA / WINDOW_STRIDE)
    a, b = surround.coefficients(surround.robust_first(ui))
    hc, wc = ui.shape[-2:]
    pad = (EXTRA, u.shape[-1] - wc - EXTRA, EXTRA, u.shape[-2] - hc - EXTRA)
    ab = nn_functional.pad(torch.cat([a, b]), pad, mode="replicate")
    a_all, b_all = ab.chunk(2)
    return SURROUND_FACTOR * (a_all + b_all * ref)
