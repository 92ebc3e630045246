"""Separable Gaussian passes in torch (any device): scipy-compatible (``reflect`` borders, ``truncate=4``),
full-resolution or decimated (see :mod:`qa.metrics.invented.coefficients`), as blocks of a banded matrix
multiplied from the left (along H) or the right (along W) of the (..., H, W) layout, with no transposed copy:
the BLAS does the multiply-adds, much faster than a depthwise convolution with a long kernel. Each pass reads
its input in place (the BLAS takes strided blocks) and writes its output once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from qa.metrics.invented.coefficients import gaussian_kernel, pass_geometry, reflect_index

#: outputs per banded block (small: a banded block of ``b`` outputs does ``stride (b - 1) + len(kernel)``
#: multiply-adds per output, so short blocks waste fewer; 16 was the fastest of 4..32 at 2048 px on a 2-core
#: x86 CPU)
BLOCK = 16
#: planes of at least this many pixels are filtered one at a time along H (see :func:`blur_h`)
LARGE_PLANE = 1 << 18
#: image rows whose products are formed and filtered along W at once in :func:`window_products`
PRODUCT_ROWS = 128


@lru_cache(maxsize=64)
def banded(kernel_key: tuple[float, ...], stride: int, block: int, device: str) -> torch.Tensor:
    """(block, stride (block - 1) + len(kernel)) float32: row b holds the kernel from column ``stride b``."""
    k = torch.tensor(kernel_key, dtype=torch.float32)
    span = stride * (block - 1) + len(k)
    t = torch.zeros(block, span, dtype=torch.float32)
    for b in range(block):
        t[b, stride * b : stride * b + len(k)] = k
    return t.to(device)


def _blocks(n_out: int, klen: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(first output, outputs, first input, inputs) of each banded block."""
    return [(i0, min(BLOCK, n_out - i0), stride * i0, stride * (min(BLOCK, n_out - i0) - 1) + klen)
            for i0 in range(0, n_out, BLOCK)]


def span_of(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """Samples ``start .. start + length - 1`` of ``x`` along ``dim``, scipy ``reflect`` beyond the edges: a
    view inside the axis, a (small) copy where the span crosses an edge."""
    n = x.shape[dim]
    if start >= 0 and start + length <= n:
        return x.narrow(dim, start, length)
    return x.index_select(dim, reflect_index(n, start, start + length, x.device))


def blur_h(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along H of (..., H, W) (scipy reflect); decimated by ``stride`` with ``extra`` samples beyond
    each edge when asked: (..., n_out, W)."""
    h, w = x.shape[-2:]
    k = gaussian_kernel(sigma)
    n_out, before, _ = pass_geometry(h, len(k), stride, extra)
    t = banded(tuple(float(v) for v in k), stride, BLOCK, str(x.device))
    out = torch.empty((*x.shape[:-2], n_out, w), dtype=x.dtype, device=x.device)
    if x.ndim > 2 and h * w >= LARGE_PLANE:
        # large planes one at a time: each block's output rows are then contiguous (a batched out= copies)
        for xi, oi in zip(x.reshape(-1, h, w), out.view(-1, n_out, w), strict=True):
            for i0, nb, r0, span in _blocks(n_out, len(k), stride):
                torch.mm(t[:nb, :span], span_of(xi, 0, r0 - before, span), out=oi[i0 : i0 + nb])
        return out
    for i0, nb, r0, span in _blocks(n_out, len(k), stride):
        torch.matmul(t[:nb, :span], span_of(x, x.ndim - 2, r0 - before, span), out=out[..., i0 : i0 + nb, :])
    return out


def blur_w(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian along W of (..., H, W), as :func:`blur_h`: (..., H, n_out) (into ``out`` when given: a tensor
    of that shape)."""
    lead = x.shape[:-1]
    k = gaussian_kernel(sigma)
    n_out, before, _ = pass_geometry(x.shape[-1], len(k), stride, extra)
    rows = x.reshape(-1, x.shape[-1])
    t = banded(tuple(float(v) for v in k), stride, BLOCK, str(x.device))
    out = torch.empty((rows.shape[0], n_out), dtype=x.dtype, device=x.device) if out is None else out.view(-1, n_out)
    for i0, nb, r0, span in _blocks(n_out, len(k), stride):
        # addmm_ with beta=0 writes the strided column block in place (mm's out= goes through a copy)
        out[:, i0 : i0 + nb].addmm_(span_of(rows, 1, r0 - before, span), t[:nb, :span].T, beta=0)
    return out.reshape(*lead, n_out)


def blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Full-resolution Gaussian of the last two axes (scipy ``reflect``, ``truncate=4``)."""
    return blur_w(blur_h(x, sigma), sigma)


def window_products(feats: Sequence[torch.Tensor], pairs: list[tuple[int, int]], sigma: float, stride: int,
                    extra: int) -> torch.Tensor:
    """Gaussian-window means of ``feats[i] * feats[j]`` for each pair, decimated as :func:`blur_h` along both
    axes: ``feats`` F tensors (N, H, W) (or one (F, N, H, W)) -> (P, N, h', w') (a permuted view of an
    (h', P, N, w') tensor).

    The products are formed :data:`PRODUCT_ROWS` image rows at a time into one reused buffer and filtered along
    W (the contiguous axis) at once, which decimates them ``stride`` times while they are still in cache; the H
    pass then runs on that ``stride`` times smaller field. Every product is formed exactly once."""
    n, h, w = feats[0].shape
    dev, dtype = feats[0].device, feats[0].dtype
    w_out = pass_geometry(w, len(gaussian_kernel(sigma)), stride, extra)[0]
    mid = torch.empty((h, len(pairs), n, w_out), dtype=dtype, device=dev)
    buf = torch.empty((min(PRODUCT_ROWS, h), len(pairs), n, w), dtype=dtype, device=dev)
    for r0 in range(0, h, PRODUCT_ROWS):
        nr = min(PRODUCT_ROWS, h - r0)
        rows = [f[:, r0 : r0 + nr].transpose(0, 1) for f in feats]  # (nr, N, W) views
        for p, (i, j) in enumerate(pairs):
            torch.mul(rows[i], rows[j], out=buf[:nr, p])
        blur_w(buf[:nr], sigma, stride, extra, out=mid[r0 : r0 + nr])
    # H pass on (h, P*N*w_out): filter along the first axis of a 2-D view
    flat = mid.view(h, -1)
    return blur_h(flat, sigma, stride, extra).view(-1, len(pairs), n, w_out).permute(1, 2, 0, 3)


def filter_valid(x: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """Separable filter by ``outer(taps, taps)`` of every (H, W) plane of (..., H, W), valid region only:
    (..., H - k + 1, W - k + 1); a grouped convolution per axis on ``x``'s device and dtype."""
    h, w = x.shape[-2:]
    k = len(taps)
    planes = x.reshape(1, -1, h, w)
    n = planes.shape[1]
    g = torch.as_tensor(list(taps), dtype=x.dtype, device=x.device)
    out = torch.nn.functional.conv2d(planes, g.view(1, 1, 1, k).expand(n, 1, 1, k), groups=n)
    out = torch.nn.functional.conv2d(out, g.view(1, 1, k, 1).expand(n, 1, k, 1), groups=n)
    return out.reshape(*x.shape[:-2], h - k + 1, w - k + 1)


def moment_planes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(5, *x.shape): x, y, x^2, y^2, xy written into one tensor (no temporaries, no concatenation copy)."""
    planes = torch.empty((5, *x.shape), dtype=x.dtype, device=x.device)
    planes[0].copy_(x)
    planes[1].copy_(y)
    torch.mul(x, x, out=planes[2])
    torch.mul(y, y, out=planes[3])
    torch.mul(x, y, out=planes[4])
    return planes


def window_moments(x: torch.Tensor, y: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """Valid-region window means (separable ``outer(taps, taps)``) of x, y, x^2, y^2, xy of two (C, H, W)
    images: (5, C, H - k + 1, W - k + 1) (:func:`filter_valid` of :func:`moment_planes`)."""
    return filter_valid(moment_planes(x, y), taps)


def ssim_means(m: torch.Tensor, c1: float, c2: float, cov_norm: float, full: bool, want_map: bool,
               shift: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The SSIM family's formula on window means ``m`` (5, C, h, w) (x, y, x^2, y^2, xy) of images centred by
    ``shift`` ((C,) each, added back to the means of the luminance term), float32 element-wise ops on ``m``'s
    device: per-channel means (C,) float64 of the contrast-structure term (``full``: the SSIM) and, when asked,
    its (C, h, w) map."""
    mx, my, exx, eyy, exy = m
    sxx, syy, sxy = cov_norm * (exx - mx * mx), cov_norm * (eyy - my * my), cov_norm * (exy - mx * my)
    v = (2 * sxy + c2) / (sxx + syy + c2)
    if full:
        ux = mx + shift[0].to(mx.device, mx.dtype)[:, None, None]
        uy = my + shift[1].to(my.device, my.dtype)[:, None, None]
        v = v * ((2 * ux * uy + c1) / (ux * ux + uy * uy + c1))
    return v.sum(dim=(1, 2), dtype=torch.float64) / (v.shape[1] * v.shape[2]), (v if want_map else None)
