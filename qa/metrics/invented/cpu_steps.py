"""Steps of the invented-detail analysis as compiled CPU kernels (:mod:`qa.metrics.invented.cpu_fused`, run on
the threads of :mod:`qa.metrics.invented.cpu_kernels`): the local fit's closed-form solve, the pointwise
residual, a band's placed excess, the band features, the codec cap, the finest band's combination, the
surround's block means and level. Each takes and returns the tensors of the torch path it replaces in
:mod:`qa.metrics.invented.torch_analysis` / :mod:`qa.metrics.invented.torch_fine` (same numbers up to float32
rounding; the solve runs in float64) and applies only where :func:`ok` says so: float32 CPU tensors with the
compiled kernels enabled (:data:`qa.metrics.invented.torch_passes.USE_KERNELS`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from qa.metrics.invented import cpu_fused as KF
from qa.metrics.invented import cpu_kernels as K
from qa.metrics.invented import cpu_map as KM
from qa.metrics.invented import cpu_pointwise as KP
from qa.metrics.invented import torch_codec as TC
from qa.metrics.invented import torch_ops as T
from qa.metrics.invented import torch_passes as P


def ok(*xs: torch.Tensor) -> bool:
    """Whether the fused kernels take these tensors."""
    return all(P.kernel_ok(x) for x in xs)


def interp_ok(stride: int, extra: int) -> bool:
    """Whether coarse fields (every ``stride`` px from ``-stride extra``) are interpolated inside the kernels
    (:func:`residual`, :func:`place`): a decimated grid with the interpolator's reach beyond the edges."""
    return stride > 1 and extra >= T.INTERP_HALF


def on_kernels(x: torch.Tensor) -> bool:
    """Whether an analysis of ``x`` runs (mostly) on the compiled kernels: a CPU tensor, kernels enabled."""
    return P.USE_KERNELS and x.device.type == "cpu"


torch_serial = K.torch_serial


def fit_ok(raw: torch.Tensor) -> bool:
    """Whether :func:`solve_fit` takes these window moments: (P, N, h', w'), a permuted view of a contiguous
    (h', P, N, w') float32 CPU tensor (as :func:`qa.metrics.invented.torch_passes.window_products` makes them)."""
    return ok(raw) and raw.permute(2, 0, 1, 3).is_contiguous()


def solve_fit(raw: torch.Tensor, pidx: np.ndarray, ridge_rel: float, ridge_abs: float
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The four coefficient fields (each (N, h', w')) and the explained energy (N, h', w') of the local ridge
    fits whose window moments are ``raw`` (see :func:`fit_ok`; ``pidx`` (5, 5): index of pair (i, j))."""
    _, n, hh, ww = raw.shape
    coef = torch.empty((4, n, hh, ww), dtype=torch.float32)
    explained = torch.empty((n, hh, ww), dtype=torch.float32)
    with K.launch():
        KF.solve_fit(raw.permute(2, 0, 1, 3).numpy(), pidx, float(ridge_rel), float(ridge_abs), coef.numpy(),
                    explained.numpy())
    return list(coef), explained


def _stacked(ts: list[torch.Tensor]) -> torch.Tensor:
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
    coarse = _stacked(coef).contiguous()  # (4, N, h', w')
    out = torch.empty_like(target)
    with K.launch():
        KF.residual(target.contiguous().numpy(), tuple(f.contiguous().numpy() for f in feats), coarse.numpy(),
                   P.interp_taps(stride, float(sigma)), extra, out.numpy())
    return out


def place(excess: torch.Tensor, floor: torch.Tensor, near: torch.Tensor, wide: torch.Tensor, stride: int,
          sigma: float, extra: int, into: torch.Tensor | None) -> torch.Tensor:
    """``max(0, excess - floor) * near / wide`` (0 where ``wide`` is 0) per pixel, (N, H, W): ``excess`` and
    ``wide`` coarse fields (N, h', w') interpolated to full resolution row by row, ``floor`` (N,), ``near`` (N,
    H, W); added into ``into`` when given (and returned)."""
    out = torch.empty_like(near) if into is None else into
    with K.launch():
        KF.placed_excess(excess.contiguous().numpy(), floor.to(torch.float32).cpu().numpy(),
                        near.contiguous().numpy(), wide.contiguous().numpy(), P.interp_taps(stride, float(sigma)),
                        extra, into is not None, out.numpy())
    return out



def features(rb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gx, gy, laplacian) of a band (N, H, W), H, W >= 2: ``numpy.gradient`` and ``scipy.ndimage.laplace``."""
    b = rb.contiguous()
    gx, gy, lap = torch.empty_like(b), torch.empty_like(b), torch.empty_like(b)
    with K.launch():
        KF.features(b.numpy(), gx.numpy(), gy.numpy(), lap.numpy())
    return gx, gy, lap


def codec_cap(y_out: torch.Tensor, y_ref: torch.Tensor, inv: torch.Tensor, fine: torch.Tensor, block: int,
              slack: float, factor: float) -> None:
    """The codec cap in place (see :func:`qa.metrics.invented.cpu_kernels.codec_cap`): ``fine`` scaled per
    block, ``inv`` replaced by the scaled total ``(inv + fine) x scale``. All (N, H, W) contiguous float32."""
    d = TC._dct_matrix(block, "cpu").numpy()
    with K.launch():
        KF.codec_cap(y_out.contiguous().numpy(), y_ref.contiguous().numpy(), d, float(slack), float(factor),
                    inv.numpy(), fine.numpy())


def fine_combine(u: torch.Tensor, ref: torch.Tensor, pred: torch.Tensor, level: torch.Tensor, near: torch.Tensor,
                 floor: float, tol: float, pmin: float, factor: float) -> torch.Tensor:
    """The finest band's per-pixel invented energy from its fields (all (N, H, W); see
    :func:`qa.metrics.invented.cpu_kernels.fine_combine`)."""
    out = torch.empty_like(u)
    consts = np.array([floor, tol, pmin, factor], dtype=np.float64)
    with K.launch():
        KF.fine_combine(u.contiguous().numpy(), ref.contiguous().numpy(), pred.contiguous().numpy(),
                       level.contiguous().numpy(), near.contiguous().numpy(), consts, out.numpy())
    return out


def block_means(a: torch.Tensor, b: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(2, N, H / bh, W / bw): block means of ``a`` and of ``a * b`` ((N, H, W), sides multiples of the blocks)."""
    n, h, w = a.shape
    out = torch.empty((2, n, h // bh, w // bw), dtype=torch.float32)
    with K.launch():
        KF.block_means(a.contiguous().numpy(), b.contiguous().numpy(), bh, bw, out.numpy())
    return out


def percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row ``numpy.percentile(row, q)`` (linear interpolation) of an (N, M) float32 CPU tensor: (N,)
    float32, the two order statistics by ``numpy.partition`` and the interpolation as
    :func:`qa.metrics.invented.torch_ops.percentile` makes it."""
    flat = x.contiguous().numpy()
    m = flat.shape[1]
    pos = q / 100.0 * (m - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, m - 1)
    part = np.partition(flat, (lo, hi), axis=1)
    v_lo = torch.from_numpy(part[:, lo].copy())
    return v_lo + (pos - lo) * (torch.from_numpy(part[:, hi].copy()) - v_lo)


@lru_cache(maxsize=16)
def _compact(m: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The banded (m x factor, m) bicubic matrix of :func:`qa.metrics.invented.torch_passes.bicubic` as (start
    column, weights over the band) per output: (n,) int64, (n, band) float32."""
    u = P._cubic_matrix(m, factor, "cpu").numpy()
    nz = u != 0
    first = nz.argmax(axis=1)
    last = u.shape[1] - 1 - nz[:, ::-1].argmax(axis=1)
    band = int((last - first).max()) + 1
    starts = np.minimum(first, u.shape[1] - band).astype(np.int64)
    wts = np.stack([u[i, s : s + band] for i, s in enumerate(starts)]).astype(np.float32)
    return starts, wts


def surround_level(ab: torch.Tensor, fh: int, fw: int, ref: torch.Tensor) -> torch.Tensor:
    """``a + b ref`` (N, H, W) from the coarse coefficients ``ab`` (2, N, H / fh, W / fw), bicubic to full
    resolution as :func:`qa.metrics.invented.torch_passes.bicubic` (along H by its banded products, along W
    row by row inside the kernel, never stored)."""
    two, n, hb, wb = ab.shape
    rows = P.bicubic(ab.reshape(two * n, hb, wb), fh, 1).reshape(two, n, hb * fh, wb).contiguous()
    starts, wts = _compact(wb, fw)
    out = torch.empty_like(ref)
    with K.launch():
        KF.level_w(rows.numpy(), starts, wts, ref.contiguous().numpy(), out.numpy())
    return out


def plane_sums(x: torch.Tensor, square: bool = False) -> torch.Tensor:
    """(B,) float64 sums over the planes of ``x`` (B, H, W) float32 (of the squares when ``square``)."""
    out = np.empty(x.shape[0])
    with K.launch():
        KF.plane_sums(x.contiguous().numpy(), square, out)
    return torch.from_numpy(out)


def region_map(energy: torch.Tensor, r: int) -> torch.Tensor:
    """:func:`qa.metrics.invented.torch_map.region_map` of (N, H, W) float32 CPU ``energy`` with the compiled
    kernels (:func:`qa.metrics.invented.cpu_map.closing_sqrt`): the same values."""
    x = energy.contiguous()
    out = torch.empty_like(x)
    scratch = torch.empty_like(x)
    with K.launch():
        KM.closing_sqrt(x.numpy(), r, out.numpy(), scratch.numpy())
    return out


def luma_into(rgb: torch.Tensor, out: torch.Tensor) -> None:
    """Rec. 601 luma of (N, 3, H, W) ``rgb`` written into (N, H, W) ``out``: the kernel for channels-last float32
    CPU images (the engine's (N, H, W, 3) arrays, permuted), :func:`qa.metrics.invented.torch_ops.luma` else."""
    hwc = rgb.permute(0, 2, 3, 1)
    if ok(hwc, out) and hwc.is_contiguous() and out.is_contiguous():
        with K.launch():
            KP.luma(hwc.numpy(), out.numpy())
    else:
        out.copy_(T.luma(rgb.float()))


def sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` for (B, H, W) fields of one shape (the kernel on float32 CPU tensors)."""
    if not (ok(a, b) and a.shape == b.shape and a.ndim == 3):
        return a - b
    out = torch.empty(a.shape, dtype=a.dtype)
    with K.launch():
        KP.diff(a.contiguous().numpy(), b.contiguous().numpy(), out.numpy())
    return out


def squared(x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """``x * x`` of a (B, H, W) field, written over ``x`` when ``in_place``."""
    if not (ok(x) and x.ndim == 3 and x.is_contiguous()):
        return x.square_() if in_place else x * x
    out = x if in_place else torch.empty_like(x)
    with K.launch():
        KP.square(x.numpy(), out.numpy())
    return out


def shift_pairs(r: torch.Tensor, offsets: tuple[tuple[int, int], ...]) -> list[torch.Tensor] | None:
    """``r(x + d) + r(x - d)`` of (N, H, W) ``r`` for each offset d, borders mirrored as
    :func:`qa.metrics.invented.torch_fine.shift_pair`: K (N, H, W) tensors, or None where the kernel does not
    apply (then the torch path runs)."""
    reach = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    if not (ok(r) and r.ndim == 3 and min(r.shape[-2:]) > reach):
        return None
    out = torch.empty((len(offsets), *r.shape), dtype=r.dtype)
    with K.launch():
        KP.shift_pairs(r.contiguous().numpy(), np.array(offsets, dtype=np.int64), out.numpy())
    return list(out)


def band(low: torch.Tensor, lower: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A band ``low - lower`` of (B, H, W) Gaussians and its energy per plane, (B,) float64 sums of squares."""
    if not (ok(low, lower) and low.shape == lower.shape and low.ndim == 3):
        out = low - lower
        return out, out.square().sum(dim=(1, 2), dtype=torch.float64)
    b, h, _ = low.shape
    out = torch.empty(low.shape, dtype=low.dtype)
    rows = np.empty(b * h)
    with K.launch():
        KP.band(low.contiguous().numpy(), lower.contiguous().numpy(), out.numpy(), rows)
    return out, torch.from_numpy(rows.reshape(b, h).sum(axis=1))
