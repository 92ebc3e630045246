"""Compiled CPU kernel (numba) of :mod:`qa.metrics.invented.regions`' window sums: the float64 integral image of
a map and the integer one of its non-zero pixels, and every ``side`` x ``side`` window's sum and whether it holds a
non-zero pixel. The same float64 numbers as numpy's ``cumsum`` along H then W and the four-corner difference
(sequential sums in the same order), in parallel passes and without the numpy path's temporaries."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: columns per work item of the pass along H
_COLUMNS = 64


@njit(cache=True, parallel=True)
def window_sums(values: np.ndarray, side: int, sums: np.ndarray, nonzero: np.ndarray) -> None:
    """``sums[y, x]``: float64 sum of ``values[y : y + side, x : x + side]`` as numpy's integral image gives it;
    ``nonzero[y, x]``: whether that window holds a non-zero value. ``values``: (H, W) float; ``sums``,
    ``nonzero``: (H - side + 1, W - side + 1)."""
    h, w = values.shape
    integral = np.zeros((h + 1, w + 1), dtype=np.float64)
    count = np.zeros((h + 1, w + 1), dtype=np.int64)
    for b in prange((w + _COLUMNS - 1) // _COLUMNS):  # along H (numpy's cumsum axis 0), a block of columns each
        j0 = b * _COLUMNS
        j1 = min(w, j0 + _COLUMNS)
        for j in range(j0, j1):
            integral[1, j + 1] = np.float64(values[0, j])
            count[1, j + 1] = 1 if values[0, j] != 0 else 0
        for i in range(1, h):
            for j in range(j0, j1):
                integral[i + 1, j + 1] = integral[i, j + 1] + np.float64(values[i, j])
                count[i + 1, j + 1] = count[i, j + 1] + (1 if values[i, j] != 0 else 0)
    for i in prange(h):  # along W (axis 1): a running sum from the row's first column sum
        row = integral[i + 1]
        crow = count[i + 1]
        run = row[1]
        crun = crow[1]
        for j in range(2, w + 1):
            run = run + row[j]
            row[j] = run
            crun += crow[j]
            crow[j] = crun
    for y in prange(h - side + 1):
        for x in range(w - side + 1):
            sums[y, x] = integral[y + side, x + side] - integral[y, x + side] - integral[y + side, x] + integral[y, x]
            nonzero[y, x] = count[y + side, x + side] - count[y, x + side] - count[y + side, x] + count[y, x] > 0
