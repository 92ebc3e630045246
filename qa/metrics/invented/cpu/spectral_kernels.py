"""Compiled CPU kernels (numba) of the spectral rule: its tapered windows (a gather and a product, in one pass),
the power of their spectra, and its narrowband energy: the torch tier's
:func:`qa.metrics.invented.tensor.spectral.narrowband_energy` on half periodograms. Per window the full
periodogram is unfolded once into a circularly padded buffer; each bin's envelope test (at least (e^2 + 1) / 2 of
its e x e neighbours below ``(P - ref Q) / peak``, i.e. their median is) is evaluated once per conjugate pair of
bins, with an early exit once the count can no longer be reached."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def narrowband_energy(p: np.ndarray, q: np.ndarray, envelope: int, peak: float, ref: float,
                      out: np.ndarray) -> None:
    """``out[k]`` = summed full-spectrum energy of window ``k``'s narrowband bins (see the module), from (K, n,
    n // 2 + 1) float32 half periodograms ``p`` (residual) and ``q`` (reference)."""
    n_win, n, nh = p.shape
    half = envelope // 2
    need = (envelope * envelope + 1) // 2
    side = n + 2 * half
    for k in prange(n_win):
        full = np.empty((side, side), dtype=p.dtype)  # full[i + half, j + half] = P(i mod n, j mod n)
        for i in range(side):
            ky = (i - half) % n
            for j in range(side):
                kx = (j - half) % n
                full[i, j] = p[k, (n - ky) % n, n - kx] if kx > n // 2 else p[k, ky, kx]
        total = 0.0
        for ky in range(n):
            for kx in range(nh):
                if ky == 0 and kx == 0:
                    continue
                val = p[k, ky, kx]
                thr = (val - ref * q[k, ky, kx]) / peak
                if thr <= 0.0:
                    continue
                below = 0
                left = envelope * envelope
                for dy in range(envelope):
                    row = full[ky + dy]
                    for dx in range(envelope):
                        if row[kx + dx] < thr:
                            below += 1
                        left -= 1
                    if below >= need or below + left < need:
                        break
                if below >= need:
                    # bins of column 0 and (n even) column n / 2 are their own conjugates' column: counted once
                    total += val if kx == 0 or 2 * kx == n else 2.0 * val
        out[k] = total


@njit(cache=True, parallel=True)
def hann_windows(x: np.ndarray, ys: np.ndarray, xs: np.ndarray, taps: np.ndarray, out: np.ndarray) -> None:
    """``out[k, i, j] = x[ys[k] + i, xs[k] + j] * taps[i, j]`` (float32) for (H, W) ``x``, origins (K,) and
    (side, side) ``taps``."""
    side = taps.shape[0]
    for k in prange(ys.shape[0]):
        y0, x0 = ys[k], xs[k]
        for i in range(side):
            row = x[y0 + i]
            for j in range(side):
                out[k, i, j] = row[x0 + j] * taps[i, j]


@njit(cache=True, parallel=True)
def half_power(spec: np.ndarray, norm: float, out: np.ndarray) -> None:
    """``out = (re^2 + im^2) / norm`` in float32 (the torch tier's arithmetic: the normaliser rounded to float32)
    of half spectra ``spec`` (K, n, m, 2) float32 (real and imaginary parts) into (K, n, m)."""
    d = np.float32(norm)
    for k in prange(spec.shape[0]):
        for i in range(spec.shape[1]):
            for j in range(spec.shape[2]):
                re = spec[k, i, j, 0]
                im = spec[k, i, j, 1]
                out[k, i, j] = (re * re + im * im) / d
