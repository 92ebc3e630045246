"""Separable passes that keep the (..., H, W) layout: Gaussians, decimated window sums and interpolation as
blocks of banded matrices multiplied from the left (along H) or the right (along W), with no transposed copy.

Same numbers as the axis-0 versions in :mod:`qa.metrics.invented.torch_ops` (scipy ``reflect`` borders, ``truncate=4``,
samples at ``-stride * extra, -stride * extra + stride, ...`` for decimated passes); what differs is the memory
traffic: each pass reads its input in place (the BLAS takes strided blocks) and writes its output once.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from qa.metrics.invented import torch_ops as T

#: outputs per banded block
BLOCK = 32


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
    k = T.gaussian_kernel(sigma)
    n_out, before, _ = _geometry(x.shape[-2], len(k), stride, extra)
    t = T._banded(tuple(float(v) for v in k), stride, BLOCK, str(x.device))
    out = torch.empty((*x.shape[:-2], n_out, x.shape[-1]), dtype=x.dtype, device=x.device)
    for i0, nb, r0, span in _blocks(n_out, len(k), stride):
        torch.matmul(t[:nb, :span], span_of(x, x.ndim - 2, r0 - before, span), out=out[..., i0 : i0 + nb, :])
    return out


def blur_w(x: torch.Tensor, sigma: float, stride: int = 1, extra: int = 0) -> torch.Tensor:
    """Gaussian along W of (..., H, W), as :func:`blur_h`: (..., H, n_out)."""
    k = T.gaussian_kernel(sigma)
    n_out, before, _ = _geometry(x.shape[-1], len(k), stride, extra)
    lead = x.shape[:-1]
    rows = x.reshape(-1, x.shape[-1])
    t = T._banded(tuple(float(v) for v in k), stride, BLOCK, str(x.device))
    out = torch.empty((rows.shape[0], n_out), dtype=x.dtype, device=x.device)
    for i0, nb, r0, span in _blocks(n_out, len(k), stride):
        torch.mm(span_of(rows, 1, r0 - before, span), t[:nb, :span].T, out=out[:, i0 : i0 + nb])
    return out.reshape(*lead, n_out)


def blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Full-resolution Gaussian of the last two axes (scipy ``reflect``, ``truncate=4``)."""
    return blur_w(blur_h(x, sigma), sigma)


def window_products(feats: torch.Tensor, pairs: list[tuple[int, int]], sigma: float, stride: int,
                    extra: int) -> torch.Tensor:
    """Gaussian-window means of ``feats[i] * feats[j]`` for each pair, decimated as :func:`blur_h` along both
    axes: ``feats`` (F, N, H, W) -> (P, N, h', w'). The products are formed one block of rows at a time."""
    k = T.gaussian_kernel(sigma)
    _, n, h, w = feats.shape
    n_out, before, _ = _geometry(h, len(k), stride, extra)
    t = T._banded(tuple(float(v) for v in k), stride, BLOCK, str(feats.device))
    ii = torch.tensor([p[0] for p in pairs], device=feats.device)
    jj = torch.tensor([p[1] for p in pairs], device=feats.device)
    out = torch.empty((len(pairs), n, n_out, w), dtype=feats.dtype, device=feats.device)
    for i0, nb, r0, span in _blocks(n_out, len(k), stride):
        rows = span_of(feats, 2, r0 - before, span)
        torch.matmul(t[:nb, :span], rows.index_select(0, ii) * rows.index_select(0, jj), out=out[:, :, i0 : i0 + nb])
    return blur_w(out, sigma, stride, extra)


@lru_cache(maxsize=32)
def _interp_matrix(n: int, stride: int, sigma: float, extra: int, device: str) -> torch.Tensor:
    """(n, m) matrix taking the m decimated samples of an axis (see module doc) to its n pixels."""
    m = -(-n // stride) + 2 * extra + 1
    eye = torch.eye(m, dtype=torch.float32)
    return T.upsample(eye, n, stride, sigma, extra).contiguous().to(device)


def _row_span(u: torch.Tensor, i0: int, nb: int) -> tuple[int, int]:
    nz = torch.nonzero(u[i0 : i0 + nb].abs().sum(0) > 0)
    return int(nz[0]), int(nz[-1]) + 1


@lru_cache(maxsize=32)
def _interp_blocks(n: int, stride: int, sigma: float, extra: int, device: str) -> list[tuple[int, int, int, int]]:
    u = _interp_matrix(n, stride, sigma, extra, "cpu")
    out = []
    for i0 in range(0, n, 4 * BLOCK):
        nb = min(4 * BLOCK, n - i0)
        s0, s1 = _row_span(u, i0, nb)
        out.append((i0, nb, s0, s1))
    return out


def upsample_h(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., m, W) decimated samples along H -> (..., n, W) full resolution (interpolator fitted to a Gaussian
    of ``sigma`` px, :func:`qa.metrics.invented.torch_ops.upsample`)."""
    u = _interp_matrix(n, stride, float(sigma), extra, str(c.device))
    out = torch.empty((*c.shape[:-2], n, c.shape[-1]), dtype=c.dtype, device=c.device)
    for i0, nb, s0, s1 in _interp_blocks(n, stride, float(sigma), extra, str(c.device)):
        torch.matmul(u[i0 : i0 + nb, s0:s1], c[..., s0:s1, :], out=out[..., i0 : i0 + nb, :])
    return out


def upsample_w(c: torch.Tensor, n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(..., H, m) decimated samples along W -> (..., H, n), as :func:`upsample_h`."""
    u = _interp_matrix(n, stride, float(sigma), extra, str(c.device))
    lead = c.shape[:-1]
    rows = c.reshape(-1, c.shape[-1])
    out = torch.empty((rows.shape[0], n), dtype=c.dtype, device=c.device)
    for i0, nb, s0, s1 in _interp_blocks(n, stride, float(sigma), extra, str(c.device)):
        torch.mm(rows[:, s0:s1], u[i0 : i0 + nb, s0:s1].T, out=out[:, i0 : i0 + nb])
    return out.reshape(*lead, n)


def axis_weights(n: int, stride: int, sigma: float, extra: int) -> torch.Tensor:
    """(m,) float64 weights with sum_j w_j c_j = the sum over n pixels of the interpolated axis."""
    return _interp_matrix(n, stride, float(sigma), extra, "cpu").sum(dim=0).double()
