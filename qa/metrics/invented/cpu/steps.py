"""The compiled analysis steps with torch tensors in and out: the local fit's solve, residual and placed
excess, the band features, the codec cap, the finest band's block means, level and combination, percentiles,
the map's bound, closing and hole filling and the pointwise steps (luma, bands, differences, squares, plane
sums, neighbour pairs).

Each runs its kernel (:mod:`~qa.metrics.invented.cpu.fit_kernels`, ``codec_kernels``, ``fine_kernels``,
``pointwise_kernels``, ``map_kernels``, ``hole_kernels``) on numpy views of float32 CPU tensors, with the
signature and, up to float32 rounding, the numbers of the torch tier's step of the same name (the fit's solve
runs in float64); the dispatcher (:mod:`qa.metrics.invented.dispatch`) decides where they apply.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from qa.metrics.invented.coefficients import cubic_matrix, dct_matrix, interp_taps
from qa.metrics.invented.cpu import (
    box_kernels,
    codec_kernels,
    fine_kernels,
    fit_kernels,
    hole_kernels,
    map_kernels,
    pointwise_kernels,
)
from qa.metrics.invented.cpu.threads import launch


def solve_fit(raw: torch.Tensor, pidx: np.ndarray, ridge_rel: float, ridge_abs: float
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The four coefficient fields (each (N, h', w')) and the explained energy (N, h', w') of the local ridge
    fits whose window moments are ``raw``: (P, N, h', w'), a permuted view of a contiguous (h', P, N, w')
    tensor (as :func:`qa.metrics.invented.cpu.passes.window_products` makes it); ``pidx`` (5, 5): index of pair
    (i, j)."""
    _, n, hh, ww = raw.shape
    coef = torch.empty((4, n, hh, ww), dtype=torch.float32)
    explained = torch.empty((n, hh, ww), dtype=torch.float32)
    with launch():
        fit_kernels.solve_fit(raw.permute(2, 0, 1, 3).numpy(), pidx, float(ridge_rel), float(ridge_abs),
                              coef.numpy(), explained.numpy())
    return list(coef), explained


def stacked(ts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(ts)``, without the copy when the tensors are already consecutive, equal-shape, contiguous
    slices of one tensor (the solve's coefficient fields)."""
    first = ts[0]
    n = first.numel()
    same = all(t.is_contiguous() and t.shape == first.shape and t.dtype == first.dtype
               and t.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
               and t.storage_offset() == first.storage_offset() + i * n for i, t in enumerate(ts))
    if same and first.is_contiguous():
        return first.as_strided((len(ts), *first.shape), (n, *first.stride()), first.storage_offset())
    return torch.stack(ts)


def residual(target: torch.Tensor, feats: list[torch.Tensor], coef: list[torch.Tensor], stride: int,
             sigma: float, extra: int) -> torch.Tensor:
    """``target - sum_i c_i feats[i]`` ((N, H, W)) with the four coarse coefficient fields ``coef`` ((N, h', w')
    samples every ``stride`` px from ``-stride extra``) interpolated to full resolution row by row, never stored."""
    coarse = stacked(coef).contiguous()  # (4, N, h', w')
    out = torch.empty_like(target)
    with launch():
        fit_kernels.residual(target.contiguous().numpy(), tuple(f.contiguous().numpy() for f in feats),
                             coarse.numpy(), interp_taps(stride, float(sigma)), extra, out.numpy())
    return out


def place(excess: torch.Tensor, floor: torch.Tensor, near: torch.Tensor, wide: torch.Tensor, stride: int,
          sigma: float, extra: int, into: torch.Tensor | None) -> torch.Tensor:
    """``max(0, excess - floor) * near / wide`` (0 where ``wide`` is 0) per pixel, (N, H, W): ``excess`` and
    ``wide`` coarse fields (N, h', w') interpolated to full resolution row by row, ``floor`` (N,), ``near`` (N,
    H, W); added into ``into`` when given (and returned)."""
    out = torch.empty_like(near) if into is None else into
    with launch():
        fit_kernels.placed_excess(excess.contiguous().numpy(), floor.to(torch.float32).cpu().numpy(),
                                  near.contiguous().numpy(), wide.contiguous().numpy(),
                                  interp_taps(stride, float(sigma)), extra, into is not None, out.numpy())
    return out


def features(rb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gx, gy, laplacian) of a band (N, H, W), H, W >= 2: ``numpy.gradient`` and ``scipy.ndimage.laplace``."""
    b = rb.contiguous()
    gx, gy, lap = torch.empty_like(b), torch.empty_like(b), torch.empty_like(b)
    with launch():
        fit_kernels.features(b.numpy(), gx.numpy(), gy.numpy(), lap.numpy())
    return gx, gy, lap


def codec_caps(y_out: torch.Tensor, y_ref: torch.Tensor, totals: list[torch.Tensor], fine: torch.Tensor,
               block: int, slack: float, factor: float) -> list[torch.Tensor]:
    """The codec cap of each of ``totals``, in place (all (N, H, W) contiguous float32): the blocks' codec
    excess computed once, each field replaced by its scaled total ``(field + fine) x scale`` with the unscaled
    ``fine``, then ``fine`` scaled per block by the first field's scale; the fields returned."""
    d = dct_matrix(block, "cpu").numpy()
    n, h, w = y_out.shape
    excess = np.empty((n, h // block, w // block), np.float64)
    with launch():
        codec_kernels.codec_excess(y_out.contiguous().numpy(), y_ref.contiguous().numpy(), d, float(slack), excess)
        for k in range(len(totals) - 1, -1, -1):  # the first field last: it scales ``fine``
            codec_kernels.codec_apply(excess, int(block), float(factor), totals[k].numpy(), fine.numpy(), k == 0)
    return totals


def fine_combine(u: torch.Tensor, ref: torch.Tensor, pred: torch.Tensor, level: torch.Tensor, near: torch.Tensor,
                 floor: float, tol: float, pmin: float, factor: float) -> torch.Tensor:
    """The finest band's per-pixel invented energy from its fields (all (N, H, W); see
    :func:`qa.metrics.invented.cpu.fine_kernels.fine_combine`)."""
    out = torch.empty_like(u)
    consts = np.array([floor, tol, pmin, factor], dtype=np.float64)
    with launch():
        fine_kernels.fine_combine(u.contiguous().numpy(), ref.contiguous().numpy(), pred.contiguous().numpy(),
                                  level.contiguous().numpy(), near.contiguous().numpy(), consts, out.numpy())
    return out


def block_means(a: torch.Tensor, b: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(2, N, H / bh, W / bw): block means of ``a`` and of ``a * b`` ((N, H, W), sides multiples of the blocks)."""
    n, h, w = a.shape
    out = torch.empty((2, n, h // bh, w // bw), dtype=torch.float32)
    with launch():
        fine_kernels.block_means(a.contiguous().numpy(), b.contiguous().numpy(), bh, bw, out.numpy())
    return out


@lru_cache(maxsize=16)
def _compact(m: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The banded (m x factor, m) bicubic matrix (:func:`qa.metrics.invented.coefficients.cubic_matrix`) as
    (start column, weights over the band) per output: (n,) int64, (n, band) float32."""
    u = cubic_matrix(m, factor, "cpu").numpy()
    nz = u != 0
    first = nz.argmax(axis=1)
    last = u.shape[1] - 1 - nz[:, ::-1].argmax(axis=1)
    band = int((last - first).max()) + 1
    starts = np.minimum(first, u.shape[1] - band).astype(np.int64)
    wts = np.stack([u[i, s : s + band] for i, s in enumerate(starts)]).astype(np.float32)
    return starts, wts


def surround_level(rows: torch.Tensor, fw: int, ref: torch.Tensor) -> torch.Tensor:
    """``a + b ref`` (N, H, W) from the surround's coefficients ``rows`` (2, N, H, W / fw), already bicubic along
    H: bicubic along W row by row inside the kernel (the interpolated a and b are never stored)."""
    starts, wts = _compact(rows.shape[-1], fw)
    out = torch.empty_like(ref)
    with launch():
        fine_kernels.level_w(rows.contiguous().numpy(), starts, wts, ref.contiguous().numpy(), out.numpy())
    return out


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row ``numpy.percentile(row, q)`` (linear interpolation) of an (N, M) float32 CPU tensor: (N,)
    float32, the two order statistics by ``numpy.partition`` and the interpolation as the torch tier's
    :func:`qa.metrics.invented.tensor.pointwise.percentile` makes it."""
    flat = x.contiguous().numpy()
    m = flat.shape[1]
    pos = q / 100.0 * (m - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, m - 1)
    part = np.partition(flat, (lo, hi), axis=1)
    v_lo = torch.from_numpy(part[:, lo].copy())
    return v_lo + (pos - lo) * (torch.from_numpy(part[:, hi].copy()) - v_lo)


def region_map(energy: torch.Tensor, r: int) -> torch.Tensor:
    """The square root of the grey closing of (N, H, W) invented energy by a (2 ``r`` + 1)-px square
    (:func:`qa.metrics.invented.cpu.map_kernels.closing_sqrt`)."""
    x = energy.contiguous()
    out = torch.empty_like(x)
    scratch = torch.empty_like(x)
    with launch():
        map_kernels.closing_sqrt(x.numpy(), r, out.numpy(), scratch.numpy())
    return out


def change_bound(energy: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """``min(energy, change^2)`` of (N, H, W) float32 invented energy and output minus reference luma
    (:func:`qa.metrics.invented.cpu.map_kernels.change_bound`), a new tensor."""
    e = energy.contiguous()
    out = torch.empty_like(e)
    with launch():
        map_kernels.change_bound(e.numpy(), change.contiguous().numpy(), out.numpy())
    return out


def fill_holes(maps: torch.Tensor) -> torch.Tensor:
    """The grey hole filling of (N, H, W) float32 maps (:func:`qa.metrics.invented.cpu.hole_kernels.fill_holes`),
    a new tensor."""
    x = maps.contiguous()
    out = torch.empty_like(x)
    with launch():
        hole_kernels.fill_holes(x.numpy(), out.numpy())
    return out


def luma_into(rgb: torch.Tensor, out: torch.Tensor) -> None:
    """Rec. 601 luma of (N, 3, H, W) ``rgb`` stored channels-last (the engine's (N, H, W, 3) arrays, permuted)
    written into contiguous (N, H, W) ``out``."""
    with launch():
        pointwise_kernels.luma(rgb.permute(0, 2, 3, 1).numpy(), out.numpy())


def sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` for (B, H, W) fields of one shape."""
    out = torch.empty(a.shape, dtype=a.dtype)
    with launch():
        pointwise_kernels.diff(a.contiguous().numpy(), b.contiguous().numpy(), out.numpy())
    return out


def squared(x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """``x * x`` of a contiguous (B, H, W) field, written over ``x`` when ``in_place``."""
    out = x if in_place else torch.empty_like(x)
    with launch():
        pointwise_kernels.square(x.numpy(), out.numpy())
    return out


def shift_pairs(r: torch.Tensor, offsets: tuple[tuple[int, int], ...]) -> list[torch.Tensor]:
    """``r(x + d) + r(x - d)`` of (N, H, W) ``r`` for each offset d (|d| < H, W), borders mirrored as
    ``numpy.pad(mode="reflect")``: K (N, H, W) tensors."""
    out = torch.empty((len(offsets), *r.shape), dtype=r.dtype)
    with launch():
        pointwise_kernels.shift_pairs(r.contiguous().numpy(), np.array(offsets, dtype=np.int64), out.numpy())
    return list(out)


def band(low: torch.Tensor, lower: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A band ``low - lower`` of (B, H, W) Gaussians and its energy per plane, (B,) float64 sums of squares."""
    b, h, _ = low.shape
    out = torch.empty(low.shape, dtype=low.dtype)
    rows = np.empty(b * h)
    with launch():
        pointwise_kernels.band(low.contiguous().numpy(), lower.contiguous().numpy(), out.numpy(), rows)
    return out, torch.from_numpy(rows.reshape(b, h).sum(axis=1))


def plane_sums(x: torch.Tensor) -> torch.Tensor:
    """(B,) float64 sums over the planes of ``x`` (B, H, W) float32."""
    out = np.empty(x.shape[0])
    with launch():
        pointwise_kernels.plane_sums(x.contiguous().numpy(), out)
    return torch.from_numpy(out)


def window_sums(values: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(float64 sums, bool non-zero) of every ``side`` x ``side`` window of an (H, W) float32 or float64 map
    (:func:`qa.metrics.invented.cpu.box_kernels.window_sums`)."""
    out = (values.shape[0] - side + 1, values.shape[1] - side + 1)
    sums, nonzero = np.empty(out, np.float64), np.empty(out, np.bool_)
    with launch():
        box_kernels.window_sums(np.ascontiguousarray(values), int(side), sums, nonzero)
    return sums, nonzero
