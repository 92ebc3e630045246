"""Compiled CPU kernels (numba) of the block-DCT codec cap (:mod:`qa.metrics.invented.tensor.codec`'s rule):
the 8 x 8 DCTs of a row of blocks and their codec excess (once per pair), and the per-block scale, applied in
place (once per field capped)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _strip_dct(y: np.ndarray, y0: int, d: np.ndarray, wb: int, col: np.ndarray, out: np.ndarray) -> None:
    """The 2-D DCT (``d @ block @ d.T``) of the whole b x b blocks of rows ``y0 .. y0 + b - 1`` of ``y`` (H,
    W): ``out[k, m, j]`` = coefficient (k, m) of block j. Along H for the whole strip at once, then along W
    phase by phase (``col``: (b, b, wb) scratch), so that every loop runs over contiguous samples."""
    b = d.shape[0]
    for k in range(b):
        for j in range(b):
            dst = col[k, j]
            for q in range(wb):
                dst[q] = 0.0
    for k in range(b):  # along H: col[k, j, q] = sum_i d[k, i] y[y0 + i, b q + j]
        for i in range(b):
            dki = d[k, i]
            row = y[y0 + i]
            for j in range(b):
                dst = col[k, j]
                for q in range(wb):
                    dst[q] += dki * row[b * q + j]
    for k in range(b):  # along W: out[k, m, q] = sum_j d[m, j] col[k, j, q]
        for m in range(b):
            dst = out[k, m]
            for q in range(wb):
                dst[q] = 0.0
            for j in range(b):
                dmj = d[m, j]
                src = col[k, j]
                for q in range(wb):
                    dst[q] += dmj * src[q]


@njit(cache=True, parallel=True)
def codec_excess(y_out: np.ndarray, y_ref: np.ndarray, d: np.ndarray, slack: float, excess: np.ndarray) -> None:
    """``excess[n, r, q]``: the summed codec excess energy of whole block (r, q) of image n (float64, luma^2; see
    :mod:`qa.metrics.invented.tensor.codec`), one row of b x b blocks per work item (``d``: the (b, b)
    orthonormal DCT-II matrix, float32; ``y_out``, ``y_ref``: (N, H, W) float32 luma; ``excess``: (N, H // b,
    W // b))."""
    n_img, h, w = y_out.shape
    b = d.shape[0]
    hb = h // b
    wb = w // b
    for t in prange(n_img * hb):
        n = t // hb
        r = t % hb
        y0 = r * b
        col = np.empty((b, b, wb), dtype=np.float32)
        co = np.empty((b, b, wb), dtype=np.float32)
        cr = np.empty((b, b, wb), dtype=np.float32)
        _strip_dct(y_out[n], y0, d, wb, col, co)
        _strip_dct(y_ref[n], y0, d, wb, col, cr)
        out = excess[n, r]
        for q in range(wb):
            out[q] = 0.0
        for k in range(b):
            for m in range(b):
                a = co[k, m]
                c = cr[k, m]
                for q in range(wb):
                    ao = abs(a[q])
                    if np.sign(a[q]) == np.sign(c[q]):
                        e = max(ao - np.float32(2.0) * abs(c[q]) - np.float32(slack), np.float32(0.0))
                    else:
                        e = max(ao - np.float32(slack), np.float32(0.0))
                    out[q] += e * e


@njit(cache=True, parallel=True)
def codec_apply(excess: np.ndarray, b: int, factor: float, inv: np.ndarray, fine: np.ndarray,
                scale_fine: bool) -> None:
    """The codec cap applied in place with the blocks' summed excess ``excess`` (N, H // b, W // b) (from
    :func:`codec_excess`): with each whole block's scale ``min(1, factor x mean codec excess energy / mean (inv +
    fine))``, ``inv`` becomes ``(inv + fine) x scale`` and, where ``scale_fine``, ``fine`` is multiplied by it
    (scale 1 on the partial blocks at the right and bottom edges). ``inv``, ``fine``: (N, H, W) float32."""
    n_img, h, w = inv.shape
    hb = h // b
    wb = w // b
    for t in prange(n_img * hb):
        n = t // hb
        y0 = (t % hb) * b
        ex = excess[n, t % hb]
        total = np.zeros(wb)
        for i in range(y0, y0 + b):
            ri = inv[n, i]
            rf = fine[n, i]
            for q in range(wb):
                acc = 0.0
                for j in range(b * q, b * q + b):
                    acc += np.float64(ri[j]) + np.float64(rf[j])
                total[q] += acc
        for i in range(y0, y0 + b):
            ri = inv[n, i]
            rf = fine[n, i]
            for q in range(wb):
                mean = total[q] / (b * b)
                s32 = np.float32(min(1.0, factor * (ex[q] / (b * b)) / max(mean, 1e-30)))
                for j in range(b * q, b * q + b):
                    f = rf[j] * s32
                    if scale_fine:
                        rf[j] = f
                    ri[j] = ri[j] * s32 + f
    # partial blocks: scale 1
    for t in prange(n_img * h):
        n = t // h
        i = t % h
        x0 = 0 if i >= hb * b else wb * b
        ri = inv[n, i]
        rf = fine[n, i]
        for j in range(x0, w):
            ri[j] = ri[j] + rf[j]
