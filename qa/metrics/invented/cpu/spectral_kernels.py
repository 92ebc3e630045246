"""Compiled CPU kernel (numba) of the spectral rule's narrowband energy: the torch tier's
:func:`qa.metrics.invented.tensor.spectral.narrowband_energy` on half periodograms, each bin's envelope test
(at least (e^2 + 1) / 2 of its e x e circular neighbours below ``(P - ref Q) / peak``, i.e. their median is)
evaluated once per conjugate pair of bins, with an early exit."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _at(p: np.ndarray, k: int, ky: int, kx: int, n: int) -> float:
    """The full periodogram's bin (ky, kx) (any integers, circular) of window ``k`` from its half ``p``."""
    ky %= n
    kx %= n
    if kx > n // 2:
        return p[k, (n - ky) % n, n - kx]
    return p[k, ky, kx]


@njit(cache=True, parallel=True)
def narrowband_energy(p: np.ndarray, q: np.ndarray, envelope: int, peak: float, ref: float,
                      out: np.ndarray) -> None:
    """``out[k]`` = summed full-spectrum energy of window ``k``'s narrowband bins (see the module), from (K, n,
    n // 2 + 1) float32 half periodograms ``p`` (residual) and ``q`` (reference)."""
    n_win, n, nh = p.shape
    half = envelope // 2
    need = (envelope * envelope + 1) // 2
    for k in prange(n_win):
        total = 0.0
        for ky in range(n):
            for kx in range(nh):
                if ky == 0 and kx == 0:
                    continue
                # bins of column 0 and (n even) column n / 2 are their own conjugates' column: counted once
                weight = 1.0 if kx == 0 or 2 * kx == n else 2.0
                val = p[k, ky, kx]
                thr = (val - ref * q[k, ky, kx]) / peak
                if thr <= 0.0:
                    continue
                below = 0
                seen = 0
                for dy in range(-half, half + 1):
                    for dx in range(-half, half + 1):
                        if _at(p, k, ky + dy, kx + dx, n) < thr:
                            below += 1
                        seen += 1
                    if below >= need or below + envelope * envelope - seen < need:
                        break
                if below >= need:
                    total += weight * val
        out[k] = total
