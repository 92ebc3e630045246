"""Separable passes that keep the (..., H, W) layout: Gaussians, decimated window sums and interpolation as
blocks of banded matrices multiplied from the left (along H) or the right (along W), with no transposed copy.

Same numbers as the axis-0 versions in :mod:`qa.metrics.invented.torch_ops` (scipy ``reflect`` borders, ``truncate=4``,
samples at ``-stride * extra, -stride * extra + stride, ...`` for decimated passes); what differs is the memory
traffic: each pass reads its input in place (the BLAS takes strided blocks) and writes its output once.

On the CPU, float32 passes run the compiled kernels of :mod:`qa.metrics.invented.cpu_kernels` instead (same
numbers, a fraction of the work; :data:`USE_KERNELS`); the banded products serve every other device.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numba
import numpy as np
import torch

from qa.metrics.invented import cpu_kernels as K
from qa.metrics.invented import torch_ops as T

#: outputs per banded block (small: a banded block of ``b`` outputs does ``stride (b - 1) + len(kernel)`` multiply-adds
#: per output, so short blocks waste fewer; 16 was the fastest of 4..32 at 2048 px on a 2-core x86 CPU)
BLOCK = 16
#: planes of at least this many pixels are filtered one at a time along H (see :func:`blur_h`)
LARGE_PLANE = 1 << 18
#: full-resolution outputs per block of an interpolation (:func:`upsample_h`, :func:`upsample_w`)
INTERP_BLOCK = 32
#: run float32 CPU passes with the compiled kernels (:mod:`qa.metrics.invented.cpu_kernels`); False: the banded
#: matrix products everywhere (the tests compare the two)
USE_KERNELS = True


def kernel_ok(x: torch.Tensor) -> bool:
    """Whether a pass over ``x`` runs on the compiled CPU kernels."""
    return USE_KERNELS and x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad


@lru_cache(maxsize=64)
def _taps_index(sigma: float, n: int, stride: int, extra: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(float32 kernel, int64 reflect-extended input indices, n_out) of a pass over ``n`` samples."""
    k = T.gaussian_kernel(sigma)
    n_out, before, _ = _geometry(n, len(k), stride, extra)
    span = stride * (n_out - 1) + len(k)
    idx = T.reflect_index(n, before, span - n - before, "cpu").numpy().astype(np.int64)
    return k.numpy().astype(np.float32), idx, n_out


def _geometry(n: int, klen: int, stride: int, extra: int) -> tuple[int, int, int]:
    """(n_out, pad before, pad after) of a pass of a ``klen``-tap kernel over ``n`` samples (see module doc)."""
    r = (klen - 1) // 2
    if stride == 1 and extra == 0:
        n_out, before = n, r
    else:
        n_out, before = -(-n // stride) + 2 * extra + 1, r + stride * extra
    after = max(0, stride * (n_out - 1) + klen - before - n)
    return n_out, before, after


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
    idx = torch.arange(start, start + length, device=x.device) % (2 * n)
    return x.index_select(dim, torch.where(idx >= n, 2 * n - 1 - idx, idx))


def blur_h(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along H of (..., H, W) (scipy reflect); decimated by ``stride`` with ``extra`` samples beyond
    each edge when asked: (..., n_out, W)."""
    h, w = x.shape[-2:]
    if kernel_ok(x):
        g, idx, n_out = _taps_index(float(sigma), h, stride, extra)
        res = torch.empty((*x.shape[:-2], n_out, w), dtype=x.dtype)
        with K.launch():
            K.blur_h(x.reshape(-1, h, w).contiguous().numpy(), g, idx, stride, K.COLUMN_CHUNK,
                     res.view(-1, n_out, w).numpy())
        return res
    k = T.gaussian_kernel(sigma)
    n_out, before, _ = _geometry(x.shape[-2], len(k), stride, extra)
    t = T._banded(tuple(float(v) for v in k), stride, BLOCK, str(x.device))
    out = torch.empty((*x.shape[:-2], n_out, x.shape[-1]), dtype=x.dtype, device=x.device)
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
    """Gaussian along W of (..., H, W), as :func:`blur_h`: (..., H, n_out) (into ``out`` when given: a
    contiguous tensor of that shape)."""
    lead = x.shape[:-1]
    if kernel_ok(x) and (out is None or out.is_contiguous()):
        g, idx, n_out = _taps_index(float(sigma), x.shape[-1], stride, extra)
        res = torch.empty((*lead, n_out), dtype=x.dtype) if out is None else out
        with K.launch():
            K.blur_w(x.reshape(-1, x.shape[-1]).contiguous().numpy(), g, idx, stride, res.view(-1, n_out).numpy())
        return res.view(*lead, n_out)
    k = T.gaussian_kernel(sigma)
    n_out, before, _ = _geometry(x.shape[-1], len(k), stride, extra)
    rows = x.reshape(-1, x.shape[-1])
    t = T._banded(tuple(float(v) for v in k), stride, BLOCK, str(x.device))
    out = torch.empty((rows.shape[0], n_out), dtype=x.dtype, device=x.device) if out is None else out.view(-1, n_out)
    for i0, nb, r0, span in _blocks(n_out, len(k), stride):
        # addmm_ with beta=0 writes the strided column block in place (mm's out= goes through a copy)
        out[:, i0 : i0 + nb].addmm_(span_of(rows, 1, r0 - before, span), t[:nb, :span].T, beta=0)
    return out.reshape(*lead, n_out)


def blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Full-resolution Gaussian of the last two axes (scipy ``reflect``, ``truncate=4``)."""
    if kernel_ok(x):
        h, w = x.shape[-2:]
        g, ridx, _ = _taps_index(float(sigma), h, 1, 0)
        _, cidx, _ = _taps_index(float(sigma), w, 1, 0)
        out = torch.empty(x.shape, dtype=x.dtype)
        with K.launch():
            K.blur2d(x.reshape(-1, h, w).contiguous().numpy(), g, ridx, cidx, numba.get_num_threads(),
                     out.view(-1, h, w).numpy())
        return out
    return blur_w(blur_h(x, sigma), sigma)


#: image rows whose products are formed and filtered along W at once in :func:`window_products`
PRODUCT_ROWS = 128


def window_products(feats: Sequence[torch.Tensor], pairs: list[tuple[int, int]], sigma: float, stride: int,
                    extra: int) -> torch.Tensor:
    """Gaussian-window means of ``feats[i] * feats[j]`` for each pair, decimated as :func:`blur_h` along both
    axes: ``feats`` F tensors (N, H, W) (or one (F, N, H, W)) -> (P, N, h', w') (a permuted view of an
    (h', P, N, w') tensor).

    The products are formed :data:`PRODUCT_ROWS` image rows at a time into one reused buffer and filtered along
    W (the contiguous axis) at once, which decimates them ``stride`` times while they are still in cache; the H
    pass then runs on that ``stride`` times smaller field. Every product is formed exactly once. On the CPU the
    compiled kernel :func:`qa.metrics.invented.cpu_kernels.window_products` does both passes without the
    intermediate field."""
    n, h, w = feats[0].shape
    dev, dtype = feats[0].device, feats[0].dtype
    w_out = _geometry(w, len(T.gaussian_kernel(sigma)), stride, extra)[0]
    if all(kernel_ok(f) for f in feats):
        g, cidx, w_out = _taps_index(float(sigma), w, stride, extra)
        _, ridx, h_out = _taps_index(float(sigma), h, stride, extra)
        ia = np.array([i for i, _ in pairs], dtype=np.int64)
        ib = np.array([j for _, j in pairs], dtype=np.int64)
        out = torch.empty((h_out, len(pairs), n, w_out), dtype=dtype)
        with K.launch():
            K.window_products(tuple(f.contiguous().numpy() for f in feats), ia, ib, g, cidx, ridx, stride,
                              numba.get_num_threads(), out.numpy())
        return out.permute(1, 2, 0, 3)
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


@lru_cache(maxsize=32)
def _interp_matrix(n: int, stride: int, sigma: float, extra: int, device: str) -> torch.Tensor:
    """(n, m) matrix taking the m decimated samples of an axis (see module doc) to its n pixels."""
    m = -(-n // stride) + 2 * extra + 1
    eye = torch.eye(m, dtype=torch.float32)
    return T.upsample(eye, n, stride, sigma, extra).contiguous().to(device)


@lru_cache(maxsize=32)
def _cubic_matrix(m: int, factor: int, device: str) -> torch.Tensor:
    """(m * factor, m) matrix of ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`` along
    one axis (bicubic in 2-D is this matrix applied along H and along W, borders clamped alike)."""
    eye = torch.eye(m, dtype=torch.float32)[:, None, :, None]  # (m, 1, m, 1): column j = unit sample j
    up = torch.nn.functional.interpolate(eye, scale_factor=(factor, 1), mode="bicubic", align_corners=False)
    return up[:, 0, :, 0].T.contiguous().to(device)


_SPANS: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}


def _spans(u: torch.Tensor, key: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """(first output, outputs, first input, end input) of the row blocks of a banded (n, m) matrix ``u``."""
    if key not in _SPANS:
        out = []
        host = u.cpu()
        for i0 in range(0, host.shape[0], INTERP_BLOCK):
            nb = min(INTERP_BLOCK, host.shape[0] - i0)
            nz = torch.nonzero(host[i0 : i0 + nb].abs().sum(0) > 0)
            out.append((i0, nb, int(nz[0]), int(nz[-1]) + 1))
        _SPANS[key] = out
    return _SPANS[key]


def apply_h(c: torch.Tensor, u: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
    """``u @ c`` along H for a banded (n, m) matrix ``u`` and (..., m, W) ``c``: (..., n, W), block by block
    (``key`` names ``u``'s band structure for the cache of its blocks)."""
    out = torch.empty((*c.shape[:-2], u.shape[0], c.shape[-1]), dtype=c.dtype, device=c.device)
    for i0, nb, s0, s1 in _spans(u, key):
        torch.matmul(u[i0 : i0 + nb, s0:s1], c[..., s0:s1, :], out=out[..., i0 : i0 + nb, :])
    return out


def apply_w(c: torch.Tensor, u: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
    """``c @ u.T`` along W for a banded (n, m) ``u`` and (..., H, m) ``c``: (..., H, n), as :func:`apply_h`."""
    lead = c.shape[:-1]
    rows = c.reshape(-1, c.shape[-1])
    out = torch.empty((rows.shape[0], u.shape[0]), dtype=c.dtype, device=c.device)
    for i0, nb, s0, s1 in _spans(u, key):
        # addmm_ with beta=0 writes the strided column block in place (mm's out= goes through a copy)
        out[:, i0 : i0 + nb].addmm_(rows[:, s0:s1], u[i0 : i0 + nb, s0:s1].T, beta=0)
    return out.reshape(*lead, u.shape[0])


@lru_cache(maxsize=32)
def interp_taps(stride: int, sigma: float) -> np.ndarray:
    """(stride - 1, 2 INTERP_HALF) float32 taps of the phases 1 .. stride - 1 of :func:`T.upsample`."""
    return np.stack([T._interp_cpu(T.INTERP_HALF, p / stride, sigma, stride).numpy().astype(np.float32)
                     for p in range(1, stride)]) if stride > 1 else np.zeros((0, 2 * T.INTERP_HALF), np.float32)


def _interp_kernel_ok(c: torch.Tensor, stride: int, extra: int) -> bool:
    return kernel_ok(c) and stride > 1 and extra >= T.INTERP_HALF


def upsample_h(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., m, W) decimated samples along H -> (..., n, W) full resolution (interpolator fitted to a Gaussian
    of ``sigma`` px, :func:`qa.metrics.invented.torch_ops.upsample`)."""
    if _interp_kernel_ok(c, stride, extra):
        m, w = c.shape[-2:]
        res = torch.empty((*c.shape[:-2], n, w), dtype=c.dtype)
        with K.launch():
            K.upsample_h(c.reshape(-1, m, w).contiguous().numpy(), interp_taps(stride, float(sigma)), extra,
                         K.COLUMN_CHUNK, res.view(-1, n, w).numpy())
        return res
    u = _interp_matrix(n, stride, float(sigma), extra, str(c.device))
    return apply_h(c, u, (0, n, stride, int(sigma * 1000), extra))


def upsample_w(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., H, m) decimated samples along W -> (..., H, n), as :func:`upsample_h`."""
    if _interp_kernel_ok(c, stride, extra):
        res = torch.empty((*c.shape[:-1], n), dtype=c.dtype)
        with K.launch():
            K.upsample_w(c.reshape(-1, c.shape[-1]).contiguous().numpy(), interp_taps(stride, float(sigma)), extra,
                         res.view(-1, n).numpy())
        return res
    u = _interp_matrix(n, stride, float(sigma), extra, str(c.device))
    return apply_w(c, u, (0, n, stride, int(sigma * 1000), extra))


def bicubic(c: torch.Tensor, fh: int, fw: int) -> torch.Tensor:
    """``interpolate(c[:, None], scale_factor=(fh, fw), mode="bicubic", align_corners=False)[:, 0]`` of (..., h,
    w) as two banded matrix passes (the same numbers up to float32 rounding, several times faster on the CPU)."""
    h, w = c.shape[-2:]
    if fh > 1:
        c = apply_h(c, _cubic_matrix(h, fh, str(c.device)), (1, h, fh))
    if fw > 1:
        c = apply_w(c, _cubic_matrix(w, fw, str(c.device)), (1, w, fw))
    return c


def axis_weights(n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(m,) float64 weights with sum_j w_j c_j = the sum over n pixels of the interpolated axis."""
    return _interp_matrix(n, stride, float(sigma), extra, "cpu").sum(dim=0).double()

