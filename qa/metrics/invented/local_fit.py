"""The local least-squares fit of the analysis, on a coarse grid: a target field predicted in every Gaussian
window from four features by ridge least squares (the oracle's ``local_lsq``, ``band_stats``), as torch
tensors on any device, each step through :mod:`qa.metrics.invented.dispatch`.

The window statistics (the 15 local moments: the 4x4 normal matrix, the right-hand side and the target's
energy) are formed block by block and filtered on a coarse grid only, every :data:`WINDOW_STRIDE`-th pixel per
axis (a sigma-4 Gaussian passes 3e-9 of the stride-2 grid's Nyquist frequency, so the samples lose nothing; see
:mod:`qa.metrics.invented.coefficients`). The 4x4 systems are solved in closed form on that grid; coefficient
fields and window statistics come back to full resolution by the interpolator fitted to the window's spectrum.
Fields are (N, H, W) float32; coarse fields (N, h', w') with ``h' = ceil(H / stride) + 2 EXTRA + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qa.metrics.invented import dispatch
from qa.metrics.invented.coefficients import INTERP_HALF, axis_weights
from qa.metrics.invented.model import MAP_SIGMA, RIDGE_ABS, RIDGE_REL, WINDOW_SIGMA

#: feature order: reference band, its x and y derivatives, its Laplacian; then the target (the output band)
_RB, _GX, _GY, _LAP, _OB = range(5)
#: the local (windowed) means the fit needs: the 4x4 normal matrix (upper triangle; (0, 0) is also the
#: reference band energy), the right-hand side (feature x target) and the target's energy
PAIRS: list[tuple[int, int]] = (
    [(i, j) for i in range(4) for j in range(i, 4)] + [(i, _OB) for i in range(4)] + [(_OB, _OB)]
)
_IDX = {p: n for n, p in enumerate(PAIRS)}
#: (5, 5) index into PAIRS of the pair (i, j), either order (for the solvers)
_PIDX = np.array([[_IDX[(min(i, j), max(i, j))] for j in range(5)] for i in range(5)], dtype=np.int64)
#: the window statistics are evaluated on every WINDOW_STRIDE-th pixel per axis (see the module docstring)
WINDOW_STRIDE = 2
#: coarse samples kept beyond each image edge, so that the interpolation back is exact up to the border
EXTRA = INTERP_HALF


def coarse_windows(feats: torch.Tensor | list[torch.Tensor], pairs: list[tuple[int, int]], sigma: float,
                   stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """Gaussian-window means (sigma px, scipy ``reflect``) of ``feats[i] * feats[j]`` for each pair, sampled
    every ``stride`` px per axis from ``-stride * EXTRA``: (P, N, h', w'). ``feats``: (F, N, H, W) float32. The
    full-resolution products are formed block by block and never exist all at once."""
    return dispatch.window_products(list(feats), pairs, sigma, stride, EXTRA)


def to_full(coarse: torch.Tensor, h: int, w: int, sigma: float, stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """(N, h', w') samples made by :func:`coarse_windows` -> (N, H, W) full resolution (fitted interpolator)."""
    return dispatch.upsample_w(dispatch.upsample_h(coarse, h, stride, sigma, EXTRA), w, stride, sigma, EXTRA)


def full_sum(coarse: torch.Tensor, h: int, w: int, sigma: float, stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """(N,) float64 sum over the full-resolution pixels of the field :func:`to_full` would make from ``coarse``
    (N, h', w'), without making it: ``wy . coarse[n] . wx`` image by image, so an image's sum has the same bits
    whatever else is in the batch (a batched contraction's blocking, and so its rounding, depends on N)."""
    wy = axis_weights(h, stride, float(sigma), EXTRA).to(coarse.device)
    wx = axis_weights(w, stride, float(sigma), EXTRA).to(coarse.device)
    return torch.stack([wy @ (c @ wx) for c in coarse.double()])


def inside(coarse: torch.Tensor, h: int, w: int, stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """The samples of an (N, h', w') coarse field that lie inside the image: (N, ceil(H/s), ceil(W/s))."""
    return coarse[:, EXTRA : EXTRA + -(-h // stride), EXTRA : EXTRA + -(-w // stride)]


@dataclass
class LocalFit:
    """A local least-squares fit of a target on four features in a Gaussian window, on the coarse grid: the
    windowed moments ``mom`` (P, N, h', w') (see :data:`PAIRS`; feature 4 is the target), the four coefficient
    fields (N, h', w') and the explained energy (N, h', w') = coef . (window mean of features x target)."""

    mom: torch.Tensor
    coef: list[torch.Tensor]
    explained: torch.Tensor

    def moment(self, i: int, j: int) -> torch.Tensor:
        """Window mean of feature i x feature j (4 = the target), (N, h', w')."""
        return self.mom[_IDX[(min(i, j), max(i, j))]]


def local_lsq(target: torch.Tensor, feats: list[torch.Tensor], window: float = WINDOW_SIGMA,
              stride: int = WINDOW_STRIDE) -> LocalFit:
    """The per-pixel ridge least squares of ``target`` ((N, H, W)) on four ``feats`` in a Gaussian window
    (sigma ``window`` px), on the coarse grid (:func:`coarse_windows`, ``dispatch.solve_fit``)."""
    raw = coarse_windows([*feats, target], PAIRS, window, stride)  # (P, N, h', w')
    coef, explained = dispatch.solve_fit(raw, _PIDX, RIDGE_REL, RIDGE_ABS)
    return LocalFit(raw, coef, explained)


def features(rb: torch.Tensor) -> list[torch.Tensor]:
    """The four reference features of a band (N, H, W): the band, its x and y derivatives (``numpy.gradient``)
    and its Laplacian (``scipy.ndimage.laplace``, reflect)."""
    return [rb, *dispatch.features(rb)]


@dataclass
class BandCoarse:
    """One band's window statistics on the coarse grid, each (N, h', w') luma^2: the output's and reference's
    band energies and the energy of the least-squares explanation (0 <= explained <= out)."""

    out: torch.Tensor
    ref: torch.Tensor
    explained: torch.Tensor
    #: the fit's four coefficient fields on the coarse grid, each (N, h', w')
    coef: list[torch.Tensor]

    @property
    def unexplained(self) -> torch.Tensor:
        """Output band energy the reference does not explain (>= 0)."""
        return self.out - self.explained


def band_coarse(ob: torch.Tensor, rb: torch.Tensor, feats: list[torch.Tensor] | None = None) -> BandCoarse:
    """The oracle's ``band_stats`` for the output band ``ob`` and reference band ``rb`` ((N, H, W)), on the
    coarse grid: the local least-squares explanation of ``ob`` by ``rb``, its derivatives and Laplacian
    (``feats``: :func:`features` of ``rb`` when already made)."""
    fit = local_lsq(ob, features(rb) if feats is None else feats)
    out_e, ref_e = fit.moment(_OB, _OB), fit.moment(_RB, _RB)
    return BandCoarse(out=out_e, ref=ref_e, explained=torch.minimum(fit.explained.clamp_min(0.0), out_e),
                      coef=fit.coef)


def residual(target: torch.Tensor, feats: list[torch.Tensor], coef: list[torch.Tensor],
             stride: int = WINDOW_STRIDE) -> torch.Tensor:
    """The pointwise residual ``target - sum_i coef_i feat_i`` of a local fit, (N, H, W): the four coarse
    coefficient fields (N, h', w') interpolated to full resolution first."""
    return dispatch.residual(target, feats, coef, stride, WINDOW_SIGMA, EXTRA)


def near_energy(r: torch.Tensor) -> torch.Tensor:
    """``G_MAP_SIGMA * r^2`` of a band's pointwise residual ``r`` (N, H, W; squared here, in place): where inside
    its window the residual lies, the numerator of :func:`place_excess`."""
    return dispatch.blur2d(dispatch.squared(r, in_place=True), MAP_SIGMA)


def place_excess(excess: torch.Tensor, floor: torch.Tensor, near: torch.Tensor, wide: torch.Tensor,
                 into: torch.Tensor | None) -> torch.Tensor:
    """A band's invented energy per pixel (N, H, W): the coarse ``excess`` (N, h', w') interpolated, less the
    ``floor`` (N,), clamped at 0 and placed where the residual lies: times ``near / wide``, ``near`` =
    :func:`near_energy` (N, H, W) and ``wide`` (N, h', w') the coarse window energy of the residual (0 where it
    is 0); added into ``into`` when given."""
    return dispatch.place(excess, floor, near, wide, WINDOW_STRIDE, WINDOW_SIGMA, EXTRA, into)
