"""The compiled separable passes with torch tensors in and out: Gaussians along H, W or both, decimated window
means of products and the interpolation back to full resolution (the kernels of
:mod:`~qa.metrics.invented.cpu.filter_kernels` and :mod:`~qa.metrics.invented.cpu.interp_kernels` on numpy
views of float32 CPU tensors). The same signatures and numbers (up to float32 rounding) as the torch tier's
:mod:`qa.metrics.invented.tensor.filters` and :mod:`qa.metrics.invented.tensor.interp`; the dispatcher decides
which one runs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numba
import numpy as np
import torch

from qa.metrics.invented.coefficients import gaussian_kernel, interp_taps, pass_geometry, reflect_index
from qa.metrics.invented.cpu import filter_kernels, interp_kernels, ssim_kernels
from qa.metrics.invented.cpu.threads import launch


@lru_cache(maxsize=64)
def taps_index(sigma: float, n: int, stride: int, extra: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(float32 kernel, int64 reflect-extended input indices, n_out) of a pass over ``n`` samples."""
    k = gaussian_kernel(sigma)
    n_out, before, _ = pass_geometry(n, len(k), stride, extra)
    span = stride * (n_out - 1) + len(k)
    idx = reflect_index(n, -before, span - before, "cpu").numpy().astype(np.int64)
    return k.numpy().astype(np.float32), idx, n_out


def blur_h(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along H of (..., H, W) (scipy reflect); decimated by ``stride`` with ``extra`` samples beyond
    each edge when asked: (..., n_out, W)."""
    h, w = x.shape[-2:]
    g, idx, n_out = taps_index(float(sigma), h, stride, extra)
    res = torch.empty((*x.shape[:-2], n_out, w), dtype=x.dtype)
    with launch():
        filter_kernels.blur_h(x.reshape(-1, h, w).contiguous().numpy(), g, idx, stride,
                              filter_kernels.COLUMN_CHUNK, res.view(-1, n_out, w).numpy())
    return res


def blur_w(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along W of (..., H, W), as :func:`blur_h`: (..., H, n_out)."""
    lead = x.shape[:-1]
    g, idx, n_out = taps_index(float(sigma), x.shape[-1], stride, extra)
    res = torch.empty((*lead, n_out), dtype=x.dtype)
    with launch():
        filter_kernels.blur_w(x.reshape(-1, x.shape[-1]).contiguous().numpy(), g, idx, stride,
                              res.view(-1, n_out).numpy())
    return res.view(*lead, n_out)


def blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Full-resolution Gaussian of the last two axes (scipy ``reflect``, ``truncate=4``)."""
    h, w = x.shape[-2:]
    g, ridx, _ = taps_index(float(sigma), h, 1, 0)
    _, cidx, _ = taps_index(float(sigma), w, 1, 0)
    out = torch.empty(x.shape, dtype=x.dtype)
    with launch():
        filter_kernels.blur2d(x.reshape(-1, h, w).contiguous().numpy(), g, ridx, cidx, numba.get_num_threads(),
                              out.view(-1, h, w).numpy())
    return out


def window_products(feats: Sequence[torch.Tensor], pairs: list[tuple[int, int]], sigma: float, stride: int,
                    extra: int) -> torch.Tensor:
    """Gaussian-window means of ``feats[i] * feats[j]`` for each pair, decimated along both axes: F tensors
    (N, H, W) -> (P, N, h', w') (a permuted view of a contiguous (h', P, N, w') tensor), both passes in one
    kernel without the intermediate field."""
    n, h, w = feats[0].shape
    g, cidx, w_out = taps_index(float(sigma), w, stride, extra)
    _, ridx, h_out = taps_index(float(sigma), h, stride, extra)
    ia = np.array([i for i, _ in pairs], dtype=np.int64)
    ib = np.array([j for _, j in pairs], dtype=np.int64)
    out = torch.empty((h_out, len(pairs), n, w_out), dtype=feats[0].dtype)
    with launch():
        filter_kernels.window_products(tuple(f.contiguous().numpy() for f in feats), ia, ib, g, cidx, ridx, stride,
                                       numba.get_num_threads(), out.numpy())
    return out.permute(1, 2, 0, 3)


def upsample_h(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., m, W) decimated samples along H -> (..., n, W) full resolution (``stride > 1``, ``extra >=
    INTERP_HALF``)."""
    m, w = c.shape[-2:]
    res = torch.empty((*c.shape[:-2], n, w), dtype=c.dtype)
    with launch():
        interp_kernels.upsample_h(c.reshape(-1, m, w).contiguous().numpy(), interp_taps(stride, float(sigma)), extra,
                                  filter_kernels.COLUMN_CHUNK, res.view(-1, n, w).numpy())
    return res


def upsample_w(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., H, m) decimated samples along W -> (..., H, n), as :func:`upsample_h`."""
    res = torch.empty((*c.shape[:-1], n), dtype=c.dtype)
    with launch():
        interp_kernels.upsample_w(c.reshape(-1, c.shape[-1]).contiguous().numpy(), interp_taps(stride, float(sigma)),
                                  extra, res.view(-1, n).numpy())
    return res


def filter_valid(x: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """Separable filter by ``outer(taps, taps)`` (symmetric, odd length k) of every (H, W) plane of (..., H, W),
    the valid region only (no border rule): (..., H - k + 1, W - k + 1) (the SSIM family's windows)."""
    h, w = x.shape[-2:]
    k = len(taps)
    out = torch.empty((*x.shape[:-2], h - k + 1, w - k + 1), dtype=x.dtype)
    with launch():
        filter_kernels.blur2d(x.reshape(-1, h, w).contiguous().numpy(), np.asarray(taps, np.float32),
                              np.arange(h, dtype=np.int64), np.arange(w, dtype=np.int64), numba.get_num_threads(),
                              out.view(-1, h - k + 1, w - k + 1).numpy())
    return out


def window_moments(x: torch.Tensor, y: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """Valid-region window means (separable ``outer(taps, taps)``, symmetric, odd length k) of x, y, x^2, y^2
    and xy of two (C, H, W) images: (5, C, H - k + 1, W - k + 1), a permuted view of a contiguous (h, 5, C, w)
    tensor (what :func:`ssim_means` reads). One pass of :func:`filter_kernels.window_products`: the products
    are formed row by row in the cache, never as planes; the same sums as :func:`filter_valid` of the planes."""
    n_c, h, w = x.shape
    k = len(taps)
    ia = np.array([0, 1, 0, 1, 0], dtype=np.int64)
    ib = np.array([-1, -1, 0, 1, 1], dtype=np.int64)  # x, y (themselves), x x, y y, x y
    out = torch.empty((h - k + 1, 5, n_c, w - k + 1), dtype=x.dtype)
    with launch():
        filter_kernels.window_products((x.contiguous().numpy(), y.contiguous().numpy()), ia, ib,
                                       np.asarray(taps, np.float32), np.arange(w, dtype=np.int64),
                                       np.arange(h, dtype=np.int64), 1, numba.get_num_threads(), out.numpy())
    return out.permute(1, 2, 0, 3)


def ssim_means(m: torch.Tensor, c1: float, c2: float, cov_norm: float, full: bool, want_map: bool,
               shift: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The SSIM family's formula on window means ``m`` (5, C, h, w) (x, y, x^2, y^2, xy): per-channel means
    (C,) float64 of the contrast-structure term (``full``: the SSIM) and, when asked, its (C, h, w) map. Read in
    the (h, 5, C, w) layout :func:`window_moments` makes (any other is copied into it first)."""
    _, n_c, h, w = m.shape
    sums = np.empty((n_c, h), dtype=np.float64)
    out = torch.empty((n_c, h, w) if want_map else (0, 0, 0), dtype=torch.float32)
    with launch():
        ssim_kernels.ssim_rows(m.permute(2, 0, 1, 3).contiguous().numpy(), float(c1), float(c2), float(cov_norm),
                               bool(full), shift[0].double().cpu().numpy(), shift[1].double().cpu().numpy(),
                               out.numpy(), sums)
    return torch.from_numpy(sums.sum(axis=1) / (h * w)), (out if want_map else None)
