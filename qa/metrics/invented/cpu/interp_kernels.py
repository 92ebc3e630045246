"""Compiled CPU kernels (numba) of the interpolation of decimated samples back to full resolution, along W
(:func:`upsample_w`) and along H (:func:`upsample_h`), with the interpolator taps of
:func:`qa.metrics.invented.coefficients.interp_taps`; :func:`up_row` and :func:`up_col` are their inner loops,
also inlined into the fused kernels that interpolate a coarse field row by row where it is needed."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qa.metrics.invented.cpu.loops import row_chunk


@njit(cache=True, inline="always")
def up_row(row: np.ndarray, taps: np.ndarray, first: int, o: np.ndarray, buf: np.ndarray) -> None:
    """One row of :func:`upsample_w` into ``o`` (``buf``: scratch of ceil(len(o) / stride) samples)."""
    stride = taps.shape[0] + 1
    half = taps.shape[1] // 2
    n = o.shape[0]
    m = (n + stride - 1) // stride
    for i in range(m):
        o[stride * i] = row[first + i]
    s0 = first - half + 1
    for p in range(1, stride):
        src = row[s0 : s0 + m]
        t0 = taps[p - 1, 0]
        for i in range(m):
            buf[i] = t0 * src[i]
        for t in range(1, taps.shape[1]):
            src = row[s0 + t : s0 + t + m]
            tt = taps[p - 1, t]
            for i in range(m):
                buf[i] += tt * src[i]
        for i in range((n - p + stride - 1) // stride):
            o[stride * i + p] = buf[i]


@njit(cache=True, inline="always")
def up_col(c: np.ndarray, taps: np.ndarray, first: int, y: int, o: np.ndarray) -> None:
    """Row ``y`` of :func:`upsample_h` of one (m', M) field ``c`` into ``o`` (M,), the same arithmetic: the
    H interpolation made row by row where it is needed, without the (n, M) field."""
    stride = taps.shape[0] + 1
    half = taps.shape[1] // 2
    i = y // stride
    p = y % stride
    if p == 0:
        s = c[first + i]
        for k in range(o.shape[0]):
            o[k] = s[k]
        return
    s0 = first - half + 1 + i
    s = c[s0]
    t0 = taps[p - 1, 0]
    for k in range(o.shape[0]):
        o[k] = t0 * s[k]
    for q in range(1, taps.shape[1]):
        s = c[s0 + q]
        tq = taps[p - 1, q]
        for k in range(o.shape[0]):
            o[k] += tq * s[k]


@njit(cache=True, parallel=True)
def upsample_w(c: np.ndarray, taps: np.ndarray, first: int, out: np.ndarray) -> None:
    """Interpolate every row of ``c`` (R, m') onto ``out`` (R, n): ``out[r, s i] = c[r, first + i]`` and, for
    the phases ``p = 1 .. s - 1`` (``s = len(taps) + 1``), ``out[r, s i + p] = sum_t taps[p - 1, t] c[r, first
    - half + 1 + i + t]`` (``half = taps.shape[1] // 2``), as :func:`qa.metrics.invented.coefficients.interp_matrix`."""
    stride = taps.shape[0] + 1
    m = (out.shape[1] + stride - 1) // stride
    for r in prange(c.shape[0]):
        buf = np.empty(m, dtype=np.float32)
        up_row(c[r], taps, first, out[r], buf)


@njit(cache=True, parallel=True)
def upsample_h(c: np.ndarray, taps: np.ndarray, first: int, chunk: int, out: np.ndarray) -> None:
    """:func:`upsample_w` along the middle axis: ``c`` (B, m', M) -> ``out`` (B, n, M), in chunks of ``chunk``
    columns."""
    nb, n, m_cols = out.shape
    n_chunks = (m_cols + chunk - 1) // chunk
    for t in prange(nb * n * n_chunks):
        b, y, c0, c1 = row_chunk(t, n, n_chunks, chunk, m_cols)
        up_col(c[b, :, c0:c1], taps, first, y, out[b, y, c0:c1])
