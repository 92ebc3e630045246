"""The linear maps of the analysis as numbers, shared by both tiers of :mod:`qa.metrics.invented.dispatch`:
Gaussian taps, scipy's ``reflect`` indices, the interpolator that brings decimated window statistics back to
full resolution, bicubic and DCT matrices, and the geometry of a decimated pass.

Nothing here filters an image; the torch tier (:mod:`qa.metrics.invented.tensor`) multiplies by these
matrices, the compiled tier (:mod:`qa.metrics.invented.cpu`) loops over these taps, so both compute the same
linear map.

Decimated passes sample an axis of ``n`` pixels every ``stride`` px from ``-stride * extra`` (``extra``
samples beyond each edge, at least :data:`INTERP_HALF` so that the interpolation back is exact up to the
border): ``ceil(n / stride) + 2 extra + 1`` samples. A sigma-4 Gaussian passes ``exp(-2 pi^2 16 f^2)`` of
frequency ``f``: 3e-9 at the stride-2 Nyquist frequency 0.25 cycles/pixel, so the samples lose nothing; the
interpolator is a 12-tap least-squares fit of the ideal fractional shift weighted by the Gaussian's spectrum.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

#: Gaussian truncation radius in sigmas (scipy's default, used by the oracle)
TRUNCATE = 4.0
#: half-length (taps per side) of the interpolator of decimated samples (:func:`interp_taps`)
INTERP_HALF = 6


@lru_cache(maxsize=64)
def _gaussian(sigma: float) -> torch.Tensor:
    radius = int(TRUNCATE * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """scipy's 1-D Gaussian: ``2 r + 1`` taps, ``r = int(4 sigma + 0.5)``, normalised to sum 1, float64 (CPU)."""
    return _gaussian(float(sigma))


def pass_geometry(n: int, klen: int, stride: int, extra: int) -> tuple[int, int, int]:
    """(n_out, pad before, pad after) of a pass of a ``klen``-tap kernel over ``n`` samples: ``n`` outputs for
    ``stride=1, extra=0``, else the decimated samples of the module doc."""
    r = (klen - 1) // 2
    if stride == 1 and extra == 0:
        n_out, before = n, r
    else:
        n_out, before = -(-n // stride) + 2 * extra + 1, r + stride * extra
    after = max(0, stride * (n_out - 1) + klen - before - n)
    return n_out, before, after


def reflect_index(n: int, start: int, stop: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices ``start .. stop - 1`` of an axis of length ``n`` under scipy's ``reflect`` (half-sample
    symmetric, ``d c b a | a b c d | d c b a``) extension, any amount beyond the edges (the reflection repeats
    as scipy's does)."""
    idx = torch.arange(start, stop, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


@lru_cache(maxsize=32)
def _fractional(half: int, frac: float, sigma: float, stride: int) -> torch.Tensor:
    offsets = np.arange(-half + 1, half + 1) - frac
    nu = np.linspace(-0.5, 0.5, 2001)  # cycles per sample
    weight = np.exp(-(np.pi**2) * 4.0 * sigma**2 * (nu / stride) ** 2) ** 0.5
    a = np.exp(-2j * np.pi * nu[:, None] * offsets[None, :]) * weight[:, None]
    lhs = np.concatenate([a.real, a.imag])
    rhs = np.concatenate([weight, np.zeros_like(weight)])
    taps = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return torch.from_numpy(taps)


@lru_cache(maxsize=32)
def interp_taps(stride: int, sigma: float) -> np.ndarray:
    """(stride - 1, 2 INTERP_HALF) float32 taps: the value at ``p / stride`` (phase p = 1 .. stride - 1) between
    decimated samples 0 and 1, from samples ``-INTERP_HALF + 1 .. INTERP_HALF``, of a field low-passed by a
    Gaussian of ``sigma`` px and sampled every ``stride`` px (least-squares fit of the ideal fractional shift
    over frequency, weighted by that Gaussian's power spectrum)."""
    if stride <= 1:
        return np.zeros((0, 2 * INTERP_HALF), np.float32)
    return np.stack([_fractional(INTERP_HALF, p / stride, float(sigma), stride).numpy().astype(np.float32)
                     for p in range(1, stride)])


@lru_cache(maxsize=32)
def interp_matrix(n: int, stride: int, sigma: float, extra: int, device: str) -> torch.Tensor:
    """(n, m) float32 matrix taking the ``m`` decimated samples of an axis (module doc) to its ``n`` pixels:
    sample positions copied, the ``stride - 1`` positions between interpolated by :func:`interp_taps`."""
    if extra < INTERP_HALF:
        raise ValueError(f"interpolation needs at least {INTERP_HALF} extra samples per side, got {extra}")
    inside = -(-n // stride)
    u = torch.zeros((stride * inside, inside + 2 * extra + 1), dtype=torch.float32)
    taps = torch.from_numpy(interp_taps(stride, float(sigma)))
    for i in range(inside):
        u[stride * i, extra + i] = 1.0
        first = extra - INTERP_HALF + 1 + i  # position stride*i + p lies between samples extra+i and extra+i+1
        for p in range(1, stride):
            u[stride * i + p, first : first + 2 * INTERP_HALF] = taps[p - 1]
    return u[:n].contiguous().to(device)


def axis_weights(n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(m,) float64 weights with ``sum_j w_j c_j`` = the sum over the ``n`` pixels of the interpolated axis."""
    return interp_matrix(n, stride, float(sigma), extra, "cpu").sum(dim=0).double()


@lru_cache(maxsize=32)
def cubic_matrix(m: int, factor: int, device: str) -> torch.Tensor:
    """(m * factor, m) matrix of ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`` along
    one axis (bicubic in 2-D is this matrix applied along H and along W, borders clamped alike)."""
    eye = torch.eye(m, dtype=torch.float32)[:, None, :, None]  # (m, 1, m, 1): column j = unit sample j
    up = torch.nn.functional.interpolate(eye, scale_factor=(factor, 1), mode="bicubic", align_corners=False)
    return up[:, 0, :, 0].T.contiguous().to(device)


@lru_cache(maxsize=8)
def dct_matrix(b: int, device: str) -> torch.Tensor:
    """(b, b) float32 orthonormal DCT-II matrix: coefficients = D @ block @ D.T (scipy ``dctn(norm="ortho")``)."""
    k = torch.arange(b, dtype=torch.float64)[:, None]
    i = torch.arange(b, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2.0 * i + 1.0) * k / (2.0 * b)) * math.sqrt(2.0 / b)
    d[0] /= math.sqrt(2.0)
    return d.float().to(device)
