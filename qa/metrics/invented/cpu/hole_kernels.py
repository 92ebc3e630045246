"""Compiled CPU kernel (numba) of the invented-detail map's hole filling: the grey reconstruction by erosion of
a map from its border (8-connected), by the hybrid algorithm of L. Vincent (IEEE Trans. Image Processing 2(2),
1993): a raster and an anti-raster scan, then a FIFO queue for what the scans left. The same values as the
torch tier's :func:`qa.metrics.invented.tensor.region_map.fill_holes` (min and max are exact)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _fill_one(f: np.ndarray, out: np.ndarray, queue: np.ndarray, queued: np.ndarray) -> None:
    """Fill the holes of one (H, W) map ``f`` into ``out``; ``queue`` (H * W,) int64 and ``queued`` (H, W) bool
    are scratch."""
    h, w = f.shape
    top = f.max() if h * w > 0 else np.float32(0.0)
    for y in range(h):
        for x in range(w):
            out[y, x] = f[y, x] if y == 0 or x == 0 or y == h - 1 or x == w - 1 else top
            queued[y, x] = False
    # raster scan: the neighbours above and to the left
    for y in range(h):
        for x in range(w):
            v = out[y, x]
            for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and out[yy, xx] < v:
                    v = out[yy, xx]
            out[y, x] = v if v > f[y, x] else f[y, x]
    # anti-raster scan: below and to the right; queue a pixel that can still lower a neighbour there
    head = 0
    tail = 0
    n = h * w
    for y in range(h - 1, -1, -1):
        for x in range(w - 1, -1, -1):
            v = out[y, x]
            for dy, dx in ((1, 1), (1, 0), (1, -1), (0, 1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and out[yy, xx] < v:
                    v = out[yy, xx]
            v = v if v > f[y, x] else f[y, x]
            out[y, x] = v
            for dy, dx in ((1, 1), (1, 0), (1, -1), (0, 1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and out[yy, xx] > v and out[yy, xx] > f[yy, xx]:
                    if not queued[y, x]:
                        queue[tail % n] = y * w + x
                        tail += 1
                        queued[y, x] = True
                    break
    # propagation: a queued pixel lowers each neighbour above its own value, down to that neighbour's map value
    while head < tail:
        p = queue[head % n]
        head += 1
        y, x = p // w, p % w
        queued[y, x] = False
        v = out[y, x]
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                if (dy != 0 or dx != 0) and 0 <= yy < h and 0 <= xx < w:
                    if out[yy, xx] > v and out[yy, xx] != f[yy, xx]:
                        out[yy, xx] = v if v > f[yy, xx] else f[yy, xx]
                        if not queued[yy, xx]:
                            queue[tail % n] = yy * w + xx
                            tail += 1
                            queued[yy, xx] = True


@njit(cache=True, parallel=True)
def fill_holes(maps: np.ndarray, out: np.ndarray) -> None:
    """The grey hole filling of every (H, W) plane of (N, H, W) float32 ``maps`` into ``out``: each pixel raised
    to the lowest level at which it is still enclosed (the smallest, over 8-connected paths to the border, of the
    largest value along the path)."""
    n_img, h, w = maps.shape
    for i in prange(n_img):
        _fill_one(maps[i], out[i], np.empty(h * w, dtype=np.int64), np.empty((h, w), dtype=np.bool_))
