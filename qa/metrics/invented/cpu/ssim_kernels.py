"""Compiled CPU kernel (numba) of the SSIM family's per-pixel formula: from the five window means of a pair
(x, y, x^2, y^2, xy) to the contrast-structure term or the whole SSIM, its per-row sums in float64 and, when
asked, the map; one pass over memory on the kernels' threads where torch ran a dozen element-wise ops (the
fidelity metrics of :mod:`qa.metrics.functional.fidelity_torch`, not the analysis). All arrays C-contiguous."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def ssim_rows(m: np.ndarray, c1: float, c2: float, cov_norm: float, full: bool, sx: np.ndarray, sy: np.ndarray,
              out_map: np.ndarray, sums: np.ndarray) -> None:
    """For ``m`` (h, 5, C, w) float32 window means (row i's five moments of every channel together, the layout
    :func:`~qa.metrics.invented.cpu.filter_kernels.window_products` writes): ``v = cov_norm (E - mu mu)`` for x,
    y and xy, ``cs = (2 v_xy + c2) / (v_x + v_y + c2)``, and with ``full`` the SSIM ``cs (2 mx my + c1) / (mx^2
    + my^2 + c1)``; ``sums`` (C, h) float64 gets each row's sum; ``out_map`` (C, h, w) float32 each value, unless
    it is empty. The moments are of images centred by a constant per channel (``sx``, ``sy``: (C,) float64, added
    back to the means of the luminance term): the variances are the same, without float32's loss where a bright,
    flat window's E[x^2] and E[x]^2 nearly cancel."""
    h, n_c, w = m.shape[0], m.shape[2], m.shape[3]
    write = out_map.size > 0
    for t in prange(n_c * h):
        c = t // h
        i = t % h
        acc = 0.0
        for j in range(w):
            mx = np.float64(m[i, 0, c, j])
            my = np.float64(m[i, 1, c, j])
            vx = cov_norm * (np.float64(m[i, 2, c, j]) - mx * mx)
            vy = cov_norm * (np.float64(m[i, 3, c, j]) - my * my)
            vxy = cov_norm * (np.float64(m[i, 4, c, j]) - mx * my)
            v = (2.0 * vxy + c2) / (vx + vy + c2)
            if full:
                ux = mx + sx[c]
                uy = my + sy[c]
                v *= (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1)
            if write:
                out_map[c, i, j] = v
            acc += v
        sums[c, i] = acc
