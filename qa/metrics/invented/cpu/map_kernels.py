"""Compiled CPU kernels (numba) of the invented-detail map: the energy's bound by the squared change, the region
closing (max and min filters over a square, each a row and a column pass) and the square root. The same values
as the torch tier's :func:`qa.metrics.invented.tensor.region_map.region_map` (max and min are exact), without its
padded copies and elementwise maxima per doubling step."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _pick(a: np.ndarray, b: np.ndarray, largest: bool, o: np.ndarray) -> None:
    """``o = max(a, b)`` (``largest``) or ``min(a, b)`` elementwise, into an array that is neither input (an
    update in place compiles to masked stores, slow on this CPU)."""
    if largest:
        for j in range(o.shape[0]):
            o[j] = b[j] if b[j] > a[j] else a[j]
    else:
        for j in range(o.shape[0]):
            o[j] = b[j] if b[j] < a[j] else a[j]


@njit(cache=True, parallel=True)
def _extreme_h(x: np.ndarray, r: int, largest: bool, out: np.ndarray) -> None:
    """Running max (``largest``) or min over ``[y - r, y + r]`` along H of (N, H, W) ``x`` into ``out`` (rows
    beyond the edges ignored): per output row, the rows folded in pairwise between two row buffers."""
    n_img, h, w = x.shape
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        lo = max(0, y - r)
        hi = min(h, y + r + 1)
        bufs = np.empty((2, w), dtype=x.dtype)
        cur = x[n, lo]
        for k in range(lo + 1, hi):
            dst = out[n, y] if k == hi - 1 else bufs[k % 2]
            _pick(cur, x[n, k], largest, dst)
            cur = dst
        if hi - lo == 1:
            out[n, y, :] = cur


@njit(cache=True, parallel=True)
def _extreme_w(x: np.ndarray, r: int, largest: bool, out: np.ndarray) -> None:
    """:func:`_extreme_h` along W: each row padded with -inf (max) or +inf (min), then windows of doubling
    length (1, 2, 4, ...) and one last overlap, as :func:`qa.metrics.invented.tensor.region_map._running_max`."""
    n_img, h, w = x.shape
    size = 2 * r + 1
    fill = -np.inf if largest else np.inf
    for t in prange(n_img * h):
        src = x[t // h, t % h]
        m = np.full(w + 2 * r, fill, dtype=x.dtype)
        m[r : r + w] = src
        tmp = np.empty(w + 2 * r, dtype=x.dtype)
        n_m = w + 2 * r  # m[i] = extreme over `span` samples from i, for i < n_m
        span = 1
        while 2 * span <= size:
            _pick(m[: n_m - span], m[span:n_m], largest, tmp[: n_m - span])
            m, tmp = tmp, m
            n_m -= span
            span *= 2
        o = out[t // h, t % h]
        if span < size:
            _pick(m[:w], m[size - span : size - span + w], largest, o)
        else:
            o[:] = m[:w]


@njit(cache=True, parallel=True)
def _sqrt_clamped(x: np.ndarray) -> None:
    """``x = sqrt(max(x, 0))`` in place, (N, H, W)."""
    n_img, h, w = x.shape
    for t in prange(n_img * h):
        row = x[t // h, t % h]
        for j in range(w):
            row[j] = np.sqrt(max(row[j], np.float32(0.0)))


def closing_sqrt(energy: np.ndarray, r: int, out: np.ndarray, scratch: np.ndarray) -> None:
    """``sqrt(max(0, closing))`` of (N, H, W) float32 ``energy`` into ``out``: the grey closing by a (2r + 1)-px
    square (max filter, then min filter, each a row and a column pass; samples beyond the edges ignored), as
    :func:`qa.metrics.invented.tensor.region_map.region_map` makes it (max and min are exact: the same values)."""
    _extreme_w(energy, r, True, scratch)
    _extreme_h(scratch, r, True, out)
    _extreme_w(out, r, False, scratch)
    _extreme_h(scratch, r, False, out)
    _sqrt_clamped(out)


@njit(cache=True, parallel=True)
def change_bound(energy: np.ndarray, change: np.ndarray, out: np.ndarray) -> None:
    """``out = min(energy, change^2)`` of (N, H, W) float32 invented energy and output minus reference luma."""
    n_img, h, w = energy.shape
    for t in prange(n_img * h):
        e, c, o = energy[t // h, t % h], change[t // h, t % h], out[t // h, t % h]
        for j in range(w):
            c2 = c[j] * c[j]
            o[j] = c2 if c2 < e[j] else e[j]
