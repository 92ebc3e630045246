"""Compiled CPU kernels (numba) of the local least-squares fit: the closed-form ridge solve of the 4 x 4
systems on the coarse grid (float64), the band features, the pointwise residual and a band's placed excess (the
coarse fields interpolated row by row where they are needed, never stored). Same numbers as the torch tier's
:mod:`qa.metrics.invented.tensor.fit` and ``tensor.pointwise.features`` up to float32 rounding."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qa.metrics.invented.cpu.interp_kernels import up_col, up_row


@njit(cache=True, parallel=True)
def residual(target: np.ndarray, feats: tuple, coef: np.ndarray, taps: np.ndarray, first: int,
             out: np.ndarray) -> None:
    """``out = target - sum_i c_i feats[i]`` ((N, H, W)) where ``c_i`` is the coarse coefficient field
    ``coef[i]`` ((4, N, m', w')) interpolated along H (:func:`upsample_h`'s arithmetic) and W
    (:func:`upsample_w`'s), one row at a time where it is needed."""
    n_img, h, w = target.shape
    stride = taps.shape[0] + 1
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        cb = np.empty((4, w), dtype=np.float32)
        col = np.empty(coef.shape[3], dtype=np.float32)
        buf = np.empty((w + stride - 1) // stride, dtype=np.float32)
        for i in range(4):
            up_col(coef[i, n], taps, first, y, col)
            up_row(col, taps, first, cb[i], buf)
        c0 = cb[0]
        c1 = cb[1]
        c2 = cb[2]
        c3 = cb[3]
        f0 = feats[0][n, y]
        f1 = feats[1][n, y]
        f2 = feats[2][n, y]
        f3 = feats[3][n, y]
        tr = target[n, y]
        o = out[n, y]
        for x in range(w):
            o[x] = tr[x] - (c0[x] * f0[x] + c1[x] * f1[x] + c2[x] * f2[x] + c3[x] * f3[x])


@njit(cache=True, parallel=True)
def placed_excess(excess: np.ndarray, floor: np.ndarray, near: np.ndarray, wide: np.ndarray,
                  taps: np.ndarray, first: int, accumulate: bool, inv: np.ndarray) -> None:
    """``v = max(0, excess - floor[n]) * (near / wide where wide > 0, else 0)`` per pixel, written to ``inv``
    (N, H, W) or added to it (``accumulate``): ``excess`` and ``wide`` are coarse (N, m', w') fields
    interpolated along H and W row by row as in :func:`residual`; ``near`` (N, H, W) full resolution."""
    n_img, h, w = inv.shape
    stride = taps.shape[0] + 1
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        e = np.empty(w, dtype=np.float32)
        wd = np.empty(w, dtype=np.float32)
        col = np.empty(excess.shape[2], dtype=np.float32)
        buf = np.empty((w + stride - 1) // stride, dtype=np.float32)
        up_col(excess[n], taps, first, y, col)
        up_row(col, taps, first, e, buf)
        up_col(wide[n], taps, first, y, col)
        up_row(col, taps, first, wd, buf)
        fl = floor[n]
        nr = near[n, y]
        o = inv[n, y]
        for x in range(w):
            ratio = nr[x] / wd[x] if wd[x] > 0 else np.float32(0.0)
            v = max(e[x] - fl, np.float32(0.0)) * ratio
            o[x] = o[x] + v if accumulate else v


@njit(cache=True, parallel=True)
def solve_fit(mom: np.ndarray, pidx: np.ndarray, ridge_rel: float, ridge_abs: float, coef: np.ndarray,
              explained: np.ndarray) -> None:
    """Per sample, the ridge least squares of :func:`qa.metrics.invented.local_fit.local_lsq`: ``mom`` (h',
    P, N, w') window means, ``pidx`` (5, 5) the index into P of feature pair (i, j) (4 = the target); writes
    ``coef`` (4, N, h', w') and ``explained`` (N, h', w'). Same closed form as ``solve4`` (unit-diagonal
    scaling, Cholesky, diagonal clamped at 1e-12), written out for 4 x 4 in float64, one row of samples at a
    time (slices: the loop over the row vectorises)."""
    hh, _, nn, ww = mom.shape
    for t in prange(hh * nn):
        y = t // nn
        n = t % nn
        m00 = mom[y, pidx[0, 0], n]
        m01 = mom[y, pidx[0, 1], n]
        m02 = mom[y, pidx[0, 2], n]
        m03 = mom[y, pidx[0, 3], n]
        m11 = mom[y, pidx[1, 1], n]
        m12 = mom[y, pidx[1, 2], n]
        m13 = mom[y, pidx[1, 3], n]
        m22 = mom[y, pidx[2, 2], n]
        m23 = mom[y, pidx[2, 3], n]
        m33 = mom[y, pidx[3, 3], n]
        b0 = mom[y, pidx[0, 4], n]
        b1 = mom[y, pidx[1, 4], n]
        b2 = mom[y, pidx[2, 4], n]
        b3 = mom[y, pidx[3, 4], n]
        c0o = coef[0, n, y]
        c1o = coef[1, n, y]
        c2o = coef[2, n, y]
        c3o = coef[3, n, y]
        eo = explained[n, y]
        for x in range(ww):
            a00 = np.float64(m00[x])
            a11 = np.float64(m11[x])
            a22 = np.float64(m22[x])
            a33 = np.float64(m33[x])
            ridge = ridge_rel * (a00 + a11 + a22 + a33) / 4.0 + ridge_abs
            d0 = 1.0 / np.sqrt(a00 + ridge)
            d1 = 1.0 / np.sqrt(a11 + ridge)
            d2 = 1.0 / np.sqrt(a22 + ridge)
            d3 = 1.0 / np.sqrt(a33 + ridge)
            # Cholesky of the unit-diagonal matrix (its first diagonal entry is 1)
            l10 = m01[x] * d1 * d0
            q1 = np.sqrt(max(1.0 - l10 * l10, 1e-12))
            l20 = m02[x] * d2 * d0
            l21 = (m12[x] * d2 * d1 - l20 * l10) / q1
            q2 = np.sqrt(max(1.0 - l20 * l20 - l21 * l21, 1e-12))
            l30 = m03[x] * d3 * d0
            l31 = (m13[x] * d3 * d1 - l30 * l10) / q1
            l32 = (m23[x] * d3 * d2 - l30 * l20 - l31 * l21) / q2
            q3 = np.sqrt(max(1.0 - l30 * l30 - l31 * l31 - l32 * l32, 1e-12))
            r0 = np.float64(b0[x])
            r1 = np.float64(b1[x])
            r2 = np.float64(b2[x])
            r3 = np.float64(b3[x])
            z0 = r0 * d0
            z1 = (r1 * d1 - l10 * z0) / q1
            z2 = (r2 * d2 - l20 * z0 - l21 * z1) / q2
            z3 = (r3 * d3 - l30 * z0 - l31 * z1 - l32 * z2) / q3
            c3 = z3 / q3
            c2 = (z2 - l32 * c3) / q2
            c1 = (z1 - l21 * c2 - l31 * c3) / q1
            c0 = z0 - l10 * c1 - l20 * c2 - l30 * c3
            c0 *= d0
            c1 *= d1
            c2 *= d2
            c3 *= d3
            c0o[x] = c0
            c1o[x] = c1
            c2o[x] = c2
            c3o[x] = c3
            eo[x] = c0 * r0 + c1 * r1 + c2 * r2 + c3 * r3


@njit(cache=True, parallel=True)
def features(b: np.ndarray, gx: np.ndarray, gy: np.ndarray, lap: np.ndarray) -> None:
    """The derivative features of (N, H, W) ``b`` (H, W >= 2) in one pass: ``numpy.gradient`` along W (``gx``)
    and H (``gy``; central differences, one-sided at the edges) and ``scipy.ndimage.laplace(mode="reflect")``."""
    n_img, h, w = b.shape
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        row = b[n, y]
        up = b[n, max(y - 1, 0)]
        down = b[n, min(y + 1, h - 1)]
        ox = gx[n, y]
        oy = gy[n, y]
        ol = lap[n, y]
        if y == 0:
            for x in range(w):
                oy[x] = b[n, 1, x] - row[x]
        elif y == h - 1:
            for x in range(w):
                oy[x] = row[x] - b[n, h - 2, x]
        else:
            for x in range(w):
                oy[x] = (down[x] - up[x]) * np.float32(0.5)
        ox[0] = row[1] - row[0]
        ox[w - 1] = row[w - 1] - row[w - 2]
        for x in range(1, w - 1):
            ox[x] = (row[x + 1] - row[x - 1]) * np.float32(0.5)
        ol[0] = up[0] + down[0] + row[0] + row[1] - np.float32(4.0) * row[0]
        ol[w - 1] = up[w - 1] + down[w - 1] + row[w - 2] + row[w - 1] - np.float32(4.0) * row[w - 1]
        for x in range(1, w - 1):
            ol[x] = up[x] + down[x] + row[x - 1] + row[x + 1] - np.float32(4.0) * row[x]
