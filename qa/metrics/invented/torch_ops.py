"""Torch building blocks of the invented-detail analysis: scipy-compatible Gaussians as banded matrix products.

Every filter here matches ``scipy.ndimage.gaussian_filter(..., mode="reflect", truncate=4.0)`` (the float64
oracle in :mod:`qa.metrics.invented.functional`) up to float32 rounding. A separable pass along one axis is written as
blocks of a banded matrix times the image rows (``torch.mm``): the BLAS does the multiply-adds, on CPU and GPU
alike, much faster than a depthwise convolution with a long kernel.

Smooth results (the sigma-4 window statistics and the distortion low-pass) are evaluated on every second pixel
only (``stride=2``) and brought back to full resolution by a 12-tap interpolator fitted to the Gaussian's
spectrum (:func:`upsample`). A sigma-4 Gaussian passes ``exp(-2 pi^2 16 f^2)`` of frequency ``f``: 3e-9 at the
half-rate Nyquist frequency 0.25 cycles/pixel, so the samples lose nothing; the interpolation error, measured on
white noise (the worst case: no low-pass of its own), is below 1.5e-5 of the field's maximum
(``tests/invented/test_torch.py``). Narrower Gaussians (band edges, the sigma-2.5 energy window) run at full
resolution.

Layout convention: a filtered axis is always the first one of a contiguous 2-D ``(length, rest)`` view.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys
from functools import lru_cache

import numpy as np
import torch

#: Gaussian truncation radius in sigmas (scipy's default, used by the oracle)
TRUNCATE = 4.0
#: half-length (taps per side) of the half-pixel interpolator of :func:`upsample2`
INTERP_HALF = 6
#: outputs per banded block of a :func:`filter_rows` pass
BLOCK = 32


#: glibc ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: freed memory up to this many bytes stays in the process for reuse (see :func:`keep_freed_memory`)
KEEP_BYTES = 1 << 30


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Let glibc reuse freed CPU memory instead of returning it to the kernel (once per process; True if set).

    torch's CPU tensors come from ``malloc``; glibc serves blocks above its mmap threshold (128 KiB to 32 MiB,
    adaptive) with fresh ``mmap`` pages and unmaps them on ``free``, so every full-resolution intermediate (16
    MiB at 2048 px) is page-faulted and zeroed by the kernel again: measured here, a fresh 32 MiB ``x * x`` took
    38 ms against 5 ms into a reused buffer, and the analysis makes hundreds of such intermediates. Raising the
    mmap and trim thresholds to :data:`KEEP_BYTES` keeps up to 1 GiB of freed memory in the process for the next
    tensor. No effect (returns False) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * KEEP_BYTES))


@lru_cache(maxsize=64)
def _kernel_cpu(sigma: float) -> torch.Tensor:
    radius = int(TRUNCATE * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """scipy's 1-D Gaussian: ``2 r + 1`` taps, ``r = int(4 sigma + 0.5)``, normalised to sum 1, float64 (CPU)."""
    return _kernel_cpu(float(sigma))


@lru_cache(maxsize=32)
def _interp_cpu(half: int, frac: float, sigma: float, stride: int) -> torch.Tensor:
    """Taps for the value at ``frac`` in (0, 1) between samples 0 and 1, from samples -half+1 .. half, of a
    field low-passed by a Gaussian of ``sigma`` pixels and sampled every ``stride`` pixels: the least-squares
    fit of the ideal fractional shift over frequency, weighted by that Gaussian's power spectrum."""
    offsets = np.arange(-half + 1, half + 1) - frac
    nu = np.linspace(-0.5, 0.5, 2001)  # cycles per sample
    weight = np.exp(-(np.pi**2) * 4.0 * sigma**2 * (nu / stride) ** 2) ** 0.5
    a = np.exp(-2j * np.pi * nu[:, None] * offsets[None, :]) * weight[:, None]
    lhs = np.concatenate([a.real, a.imag])
    rhs = np.concatenate([weight, np.zeros_like(weight)])
    taps = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return torch.from_numpy(taps)


@lru_cache(maxsize=64)
def _banded(kernel_key: tuple[float, ...], stride: int, block: int, device: str) -> torch.Tensor:
    k = torch.tensor(kernel_key, dtype=torch.float32)
    span = stride * (block - 1) + len(k)
    t = torch.zeros(block, span, dtype=torch.float32)
    for b in range(block):
        t[b, stride * b : stride * b + len(k)] = k
    return t.to(device)


def filter_rows(x: torch.Tensor, kernel: torch.Tensor, n_out: int, stride: int = 1) -> torch.Tensor:
    """Correlate along the first axis: ``out[i] = sum_j kernel[j] x[stride i + j]`` for ``i < n_out``.

    ``x``: contiguous (L, M) float32 with ``L >= stride (n_out - 1) + len(kernel)`` (pad it first); returns a
    contiguous (n_out, M) tensor on ``x``'s device.
    """
    k = len(kernel)
    if x.shape[0] < stride * (n_out - 1) + k:
        raise ValueError(f"filter_rows: {x.shape[0]} rows cannot give {n_out} outputs of a {k}-tap kernel")
    x = x.contiguous()
    t = _banded(tuple(float(v) for v in kernel), stride, BLOCK, str(x.device))
    out = torch.empty((n_out, x.shape[1]), dtype=x.dtype, device=x.device)
    for i0 in range(0, n_out, BLOCK):
        nb = min(BLOCK, n_out - i0)
        r0, span = stride * i0, stride * (nb - 1) + k
        torch.mm(t[:nb, :span], x[r0 : r0 + span], out=out[i0 : i0 + nb])
    return out


def reflect_index(n: int, before: int, after: int, device: torch.device | str) -> torch.Tensor:
    """Indices of scipy's ``reflect`` (half-sample symmetric, ``d c b a | a b c d | d c b a``) extension of an
    axis of length ``n`` by ``before``/``after`` samples, any amount (repeats the reflection as scipy does)."""
    idx = torch.arange(-before, n + after, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def pad_axis(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """``x`` extended along ``dim`` with scipy's ``reflect`` rule."""
    n = x.shape[dim]
    if before <= n and after <= n:  # one reflection: two flipped slices (a copy, cheaper than a gather)
        return torch.cat([x.narrow(dim, 0, before).flip(dim), x, x.narrow(dim, n - after, after).flip(dim)], dim)
    return x.index_select(dim, reflect_index(n, before, after, x.device))


def blur_axis0(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian (scipy-compatible, reflect) along axis 0 of a (L, ...) tensor, returned as (n_out, ...).

    ``stride=1, extra=0``: the ordinary full-resolution filter (``n_out = L``). With ``stride=2`` the outputs are
    the filtered values at positions ``-2 extra, -2 extra + 2, ...`` (``n_out = ceil(L / 2) + 2 extra + 1``),
    the sampling :func:`upsample2` expects.
    """
    k = gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    n = x.shape[0]
    if stride == 1:
        n_out, before = n, r
    else:
        n_out, before = -(-n // stride) + 2 * extra + 1, r + stride * extra
    after = max(0, stride * (n_out - 1) + len(k) - before - n)
    rest = x.shape[1:]
    xp = pad_axis(x, 0, before, after).reshape(n + before + after, -1)
    return filter_rows(xp, k.to(x.device, torch.float32), n_out, stride).reshape(n_out, *rest)


def upsample(d: torch.Tensor, n: int, stride: int, sigma: float, extra: int = INTERP_HALF) -> torch.Tensor:
    """Full-resolution axis 0 of length ``n`` from samples at ``-stride extra, -stride extra + stride, ...`` (as
    made by :func:`blur_axis0` from a Gaussian of ``sigma`` px): sample positions copied, the ``stride - 1``
    between interpolated (:func:`_interp_cpu`)."""
    if extra < INTERP_HALF:
        raise ValueError(f"upsample needs at least {INTERP_HALF} extra samples per side, got {extra}")
    m = -(-n // stride)
    rest = d.shape[1:]
    flat = d.reshape(d.shape[0], -1)
    phases = [flat[extra : extra + m]]
    for p in range(1, stride):
        # position stride*i + p lies between samples extra+i and extra+i+1: taps extra+i-INTERP_HALF+1 ..
        c = _interp_cpu(INTERP_HALF, p / stride, float(sigma), stride).to(d.device, torch.float32)
        phases.append(filter_rows(flat[extra - INTERP_HALF + 1 :], c, m, 1))
    out = torch.stack(phases, dim=1).reshape(stride * m, -1)[:n]
    return out.reshape(n, *rest)


def blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Full-resolution separable Gaussian of the last two axes of a (..., H, W) tensor (scipy ``reflect``)."""
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    y = blur_axis0(x.reshape(-1, h, w).permute(1, 0, 2), sigma)  # (H, B, W)
    y = blur_axis0(y.permute(2, 1, 0), sigma)  # (W, B, H)
    return y.permute(1, 2, 0).reshape(*lead, h, w)


def smooth2d(x: torch.Tensor, sigma: float, stride: int = 2) -> torch.Tensor:
    """:func:`blur2d` for fields that the Gaussian leaves band-limited (sigma >= 2): evaluated on every second
    pixel in each axis and interpolated back (see the module docstring for the accuracy)."""
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    e = INTERP_HALF
    y = blur_axis0(x.reshape(-1, h, w).permute(1, 0, 2), sigma, stride, e)  # (h', B, W)
    y = blur_axis0(y.permute(2, 1, 0), sigma, stride, e)  # (w', B, h')
    y = upsample(y, w, stride, sigma, e)  # (W, B, h')
    y = upsample(y.permute(2, 1, 0), h, stride, sigma, e)  # (H, B, W)
    return y.permute(1, 0, 2).reshape(*lead, h, w)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of (N, 3, H, W) float32 images in [0, 1]: (N, H, W).

    Images stored channels-last (the (N, H, W, 3) arrays of the engine, permuted) are reduced by one matrix-vector
    product over their contiguous RGB triples (three times faster than three strided channel reads)."""
    hwc = rgb.permute(0, 2, 3, 1)
    if hwc.is_contiguous():
        w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
        return torch.mv(hwc.reshape(-1, 3), w).view(hwc.shape[:3])
    return rgb[:, 0] * 0.299 + rgb[:, 1] * 0.587 + rgb[:, 2] * 0.114


def gradient(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``numpy.gradient`` of (N, H, W) along H and W (central differences, one-sided at the edges): (gy, gx)."""
    out = []
    for dim in (1, 2):
        g = torch.empty_like(y)
        n = y.shape[dim]
        mid = (y.narrow(dim, 2, n - 2) - y.narrow(dim, 0, n - 2)) * 0.5
        g.narrow(dim, 1, n - 2).copy_(mid)
        g.narrow(dim, 0, 1).copy_(y.narrow(dim, 1, 1) - y.narrow(dim, 0, 1))
        g.narrow(dim, n - 1, 1).copy_(y.narrow(dim, n - 1, 1) - y.narrow(dim, n - 2, 1))
        out.append(g)
    return out[0], out[1]


def laplace(y: torch.Tensor) -> torch.Tensor:
    """``scipy.ndimage.laplace(mode="reflect")`` of (N, H, W): the 5-point Laplacian, edges reflected."""
    p = pad_axis(pad_axis(y, 1, 1, 1), 2, 1, 1)
    c = p[:, 1:-1, 1:-1]
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4.0 * c


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row ``numpy.percentile(row, q)`` (linear interpolation) of an (N, M) tensor: (N,)."""
    m = x.shape[1]
    pos = q / 100.0 * (m - 1)
    lo = int(math.floor(pos))
    frac = pos - lo
    v_lo = torch.kthvalue(x, lo + 1, dim=1).values
    if frac == 0.0 or lo + 1 >= m:
        return v_lo
    # the (lo + 2)-th smallest: v_lo again if it occurs that often, else the smallest value above it
    # (two cheap passes instead of a second selection)
    above = torch.where(x > v_lo[:, None], x, torch.full_like(x, float("inf"))).amin(dim=1)
    v_hi = torch.where((x <= v_lo[:, None]).sum(dim=1) >= lo + 2, v_lo, above)
    return v_lo + frac * (v_hi - v_lo)


def smooth_products_axis0(
    feats: torch.Tensor, pairs: list[tuple[int, int]], sigma: float, stride: int = 2, extra: int = INTERP_HALF
) -> torch.Tensor:
    """First (axis-0, stride-2) pass of :func:`smooth2d` applied to the products ``feats[i] * feats[j]`` for
    every ``(i, j)`` in ``pairs``, forming the products block by block (they never exist at full size at once).

    ``feats``: (F, L, M) float32 with axis 1 the filtered axis. Returns (n_out, P, M) with ``P = len(pairs)``,
    sampled as :func:`blur_axis0` with ``stride=2`` samples.
    """
    k = gaussian_kernel(sigma)
    klen = len(k)
    r = (klen - 1) // 2
    n = feats.shape[1]
    n_out, before = -(-n // stride) + 2 * extra + 1, r + stride * extra
    after = max(0, stride * (n_out - 1) + klen - before - n)
    fp = pad_axis(feats, 1, before, after).transpose(0, 1).contiguous()  # (L', F, M)
    ii = torch.tensor([p[0] for p in pairs], device=feats.device)
    jj = torch.tensor([p[1] for p in pairs], device=feats.device)
    t = _banded(tuple(float(v) for v in k), stride, BLOCK, str(feats.device))
    out = torch.empty((n_out, len(pairs), feats.shape[2]), dtype=feats.dtype, device=feats.device)
    for i0 in range(0, n_out, BLOCK):
        nb = min(BLOCK, n_out - i0)
        r0, span = stride * i0, stride * (nb - 1) + klen
        rows = fp[r0 : r0 + span]
        prod = (rows.index_select(1, ii) * rows.index_select(1, jj)).reshape(span, -1)
        torch.mm(t[:nb, :span], prod, out=out[i0 : i0 + nb].view(nb, -1))
    return out
