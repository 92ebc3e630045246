"""Compiled CPU kernels (numba) of the analysis' pointwise steps on full-resolution fields: luma, differences
of Gaussians (the bands) and their energies, squares, plane sums and the finest band's neighbour sums. Each is
one pass over memory on the kernels' threads, where torch ran them on one thread inside the analysis
(:func:`qa.metrics.invented.cpu.threads.torch_serial`); the same values as the torch ops up to float32
rounding. All arrays float32, C-contiguous."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def luma(hwc: np.ndarray, out: np.ndarray) -> None:
    """Rec. 601 luma of (N, H, W, 3) RGB into (N, H, W): ``0.299 R + 0.587 G + 0.114 B``."""
    n_img, h, w, _ = hwc.shape
    wr, wg, wb = np.float32(0.299), np.float32(0.587), np.float32(0.114)
    for t in prange(n_img * h):
        src = hwc[t // h, t % h]
        o = out[t // h, t % h]
        for x in range(w):
            o[x] = wr * src[x, 0] + wg * src[x, 1] + wb * src[x, 2]


@njit(cache=True, inline="always")
def _row_diff(a: np.ndarray, b: np.ndarray, t: int, out: np.ndarray) -> np.ndarray:
    """Row ``t`` of the (B, H, W) planes: ``out = a - b`` there; returns that row of ``out``."""
    h = out.shape[1]
    ra = a[t // h, t % h]
    rb = b[t // h, t % h]
    o = out[t // h, t % h]
    for x in range(o.shape[0]):
        o[x] = ra[x] - rb[x]
    return o


@njit(cache=True, parallel=True)
def diff(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = a - b``, (B, H, W)."""
    for t in prange(out.shape[0] * out.shape[1]):
        _row_diff(a, b, t, out)


@njit(cache=True, parallel=True, fastmath={"reassoc", "nsz"})
def band(a: np.ndarray, b: np.ndarray, out: np.ndarray, sq_rows: np.ndarray) -> None:
    """``out = a - b`` (B, H, W) and, per row, the float64 sum of its squares into ``sq_rows`` (B * H,) (the
    summation order is free, so the sums vectorise)."""
    n_planes, h, w = out.shape
    for t in prange(n_planes * h):
        o = _row_diff(a, b, t, out)
        acc = 0.0
        for x in range(w):
            v = np.float64(o[x])
            acc += v * v
        sq_rows[t] = acc


@njit(cache=True, parallel=True)
def square(x: np.ndarray, out: np.ndarray) -> None:
    """``out = x * x``, (B, H, W) (``out`` may be ``x``)."""
    n_planes, h, w = out.shape
    for t in prange(n_planes * h):
        r = x[t // h, t % h]
        o = out[t // h, t % h]
        for j in range(w):
            o[j] = r[j] * r[j]


@njit(cache=True, inline="always")
def _reflect(i: int, n: int) -> int:
    """``numpy.pad(mode="reflect")`` index (mirror without repeating the edge sample), |overshoot| < n."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


@njit(cache=True, parallel=True)
def shift_pairs(r: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[k, n, y, x] = r[n, y + dy, x + dx] + r[n, y - dy, x - dx]`` for each offset ``(dy, dx)`` of (K, 2)
    ``offsets`` (|dy| < H, |dx| < W), borders as :func:`qa.metrics.invented.tensor.pointwise.shift_pair`
    (``numpy.pad(mode="reflect")``); ``r`` (N, H, W), ``out`` (K, N, H, W)."""
    n_img, h, w = r.shape
    for t in prange(offsets.shape[0] * n_img * h):
        k = t // (n_img * h)
        n = (t // h) % n_img
        y = t % h
        dy = offsets[k, 0]
        dx = offsets[k, 1]
        up = r[n, _reflect(y + dy, h)]
        down = r[n, _reflect(y - dy, h)]
        o = out[k, n, y]
        lo = abs(dx)
        hi = w - lo
        for x in range(min(lo, w)):
            o[x] = up[_reflect(x + dx, w)] + down[_reflect(x - dx, w)]
        for x in range(lo, hi):  # both neighbours inside: plain (vectorised) reads
            o[x] = up[x + dx] + down[x - dx]
        for x in range(max(hi, lo), w):
            o[x] = up[_reflect(x + dx, w)] + down[_reflect(x - dx, w)]


@njit(cache=True, parallel=True, fastmath={"reassoc", "nsz"})
def plane_sums(x: np.ndarray, out: np.ndarray) -> None:
    """``out[b]`` = the float64 sum over plane ``b`` of ``x`` (B, H, W) (the summation order is free, so the
    row sums vectorise)."""
    n_planes, h, w = x.shape
    rows = np.zeros(n_planes * h)
    for t in prange(n_planes * h):
        row = x[t // h, t % h]
        acc = 0.0
        for j in range(w):
            acc += np.float64(row[j])
        rows[t] = acc
    for b in range(n_planes):
        out[b] = rows[b * h : (b + 1) * h].sum()
