"""Compiled CPU kernels (numba) of the finest band: the surround's block means and its level ``a + b ref``
(interpolated along W inside the kernel), and the combination of the band's fields into invented energy."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def fine_combine(u: np.ndarray, ref: np.ndarray, pred: np.ndarray, level: np.ndarray, near: np.ndarray,
                 consts: np.ndarray, out: np.ndarray) -> None:
    """The finest band's invented energy per pixel (see :func:`qa.metrics.invented.tensor.fine.fine_combine`),
    all (N, H, W) float32: ``d = max(0, u - floor - tol ref)``, ``periodic = clip((clip(pred, 0, 1) - pmin) /
    (1 - pmin), 0, 1)``, ``out = max(max(0, d - factor level), periodic d) x (near / u where u > 0, else 0)``;
    ``consts`` = (floor, tol, pmin, factor)."""
    n_img, h, w = u.shape
    floor = np.float32(consts[0])
    tol = np.float32(consts[1])
    pmin = np.float32(consts[2])
    factor = np.float32(consts[3])
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        ru = u[n, y]
        rr = ref[n, y]
        rp = pred[n, y]
        rl = level[n, y]
        rn = near[n, y]
        o = out[n, y]
        for x in range(w):
            d = max(ru[x] - floor - tol * rr[x], zero)
            p = min(max(rp[x], zero), one)
            periodic = min(max((p - pmin) / (one - pmin), zero), one)
            v = max(max(d - factor * rl[x], zero), periodic * d)
            o[x] = v * (rn[x] / ru[x]) if ru[x] > zero else zero


@njit(cache=True, parallel=True)
def block_means(a: np.ndarray, b: np.ndarray, bh: int, bw: int, out: np.ndarray) -> None:
    """Means over ``bh`` x ``bw`` blocks of ``a`` and of ``a * b`` ((N, H, W), H and W multiples of the block
    sides): ``out`` (2, N, H / bh, W / bw), ``out[0]`` of ``a``, ``out[1]`` of the product."""
    n_img, h, w = a.shape
    hb = h // bh
    wb = w // bw
    inv_area = 1.0 / (bh * bw)
    for t in prange(n_img * hb):
        n = t // hb
        i = t % hb
        sa = np.zeros(wb)
        sp = np.zeros(wb)
        for y in range(i * bh, i * bh + bh):
            ra = a[n, y]
            rb = b[n, y]
            for q in range(wb):
                acc_a = 0.0
                acc_p = 0.0
                for x in range(q * bw, q * bw + bw):
                    acc_a += ra[x]
                    acc_p += ra[x] * rb[x]
                sa[q] += acc_a
                sp[q] += acc_p
        for q in range(wb):
            out[0, n, i, q] = sa[q] * inv_area
            out[1, n, i, q] = sp[q] * inv_area


@njit(cache=True, parallel=True)
def level_w(ab: np.ndarray, starts: np.ndarray, wts: np.ndarray, ref: np.ndarray, out: np.ndarray) -> None:
    """``out = a + b ref`` ((N, H, W)) where ``a``, ``b`` are the rows of ``ab`` ((2, N, H, m)) interpolated
    along W by a banded matrix given per output column ``x`` as ``wts[x, t]`` at input ``starts[x] + t``."""
    n_img, h, w = out.shape
    taps = wts.shape[1]
    for t in prange(n_img * h):
        n = t // h
        y = t % h
        ra = ab[0, n, y]
        rb = ab[1, n, y]
        rr = ref[n, y]
        o = out[n, y]
        for x in range(w):
            s = starts[x]
            a = np.float32(0.0)
            b = np.float32(0.0)
            for k in range(taps):
                a += wts[x, k] * ra[s + k]
                b += wts[x, k] * rb[s + k]
            o[x] = a + b * rr[x]
