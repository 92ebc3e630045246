"""The strongest invented regions of a map: the few fixed-size windows where a per-pixel map is largest.

One concept, written once: a *region* is a square window of ``side`` pixels of an (H, W) map (for invented
detail: the RMS amplitude of invented band-pass luma, :attr:`~qa.metrics.invented.model.InventedResult.map`)
and its *score* is a statistic of the map inside it, in the map's units: the mean (default; exact at every
position through an integral image) or a quantile ``q`` in (0, 1] (evaluated on a grid of step ``stride``).
:func:`strongest_regions` returns the top ``k`` windows by score, greedily, each one suppressing every window
within ``separation`` pixels of it (non-maximum suppression: with ``separation = side``, the default, no two
chosen windows overlap), strongest first. Only windows that touch a non-zero map pixel count: a map that is zero
everywhere has no region. :func:`strongest_region_score` is the first region's score (0 for a zero map).

Why fixed-size windows: the scalar share of invented energy shrinks with the area of what was invented (a word
in a 2K image is a small share); the local amplitude over a window of the size of a word or a small object does
not. ``side`` sets that size (:data:`REGION_SIDE`, 64 px: a word or a logo at release resolution).

Pure numpy, no torch; the engine (which crops are stored), the report (where the compare view looks) and any
per-image score of "the strongest invented region" call this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: side (pixels) of a region window: the size of a word, a logo or a small object at release resolution
REGION_SIDE = 64


@dataclass(frozen=True)
class Region:
    """A window ``[x, x + side) x [y, y + side)`` of a map (pixels) and its score (the map's units)."""

    x: int
    y: int
    side: int
    score: float


def _checked(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"a region map must be (H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"a region map must be real numbers, got dtype {arr.dtype}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError("a region map contains NaN or Inf values (replace them before looking for regions)")
    return arr


def _box_sums(values: np.ndarray, side: int) -> np.ndarray:
    """(H - side + 1, W - side + 1) sums of every ``side`` x ``side`` window (float64 integral image)."""
    integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.float64)
    np.cumsum(np.cumsum(values, axis=0, dtype=np.float64), axis=1, out=integral[1:, 1:])
    return integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]


def window_means(values: np.ndarray, side: int) -> np.ndarray:
    """(H - side + 1, W - side + 1) mean of ``values`` over the window whose top-left corner is each pixel."""
    arr = _checked(values)
    if not 1 <= side <= min(arr.shape):
        raise ValueError(f"window side {side} must be in [1, {min(arr.shape)}] for a map of shape {arr.shape}")
    return _box_sums(arr, side) / float(side * side)


def _grid(n: int, side: int, stride: int) -> np.ndarray:
    """Window origins 0, stride, ... along one axis of length ``n``, the last window flush with the end."""
    last = n - side
    return np.unique(np.append(np.arange(0, last + 1, stride), last))


def window_quantiles(values: np.ndarray, side: int, q: float, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ys, xs, scores): the ``q`` quantile (linear interpolation) of ``values`` over each window whose origin is
    on the grid ``ys`` x ``xs`` (step ``stride``, the last row and column flush with the map's end)."""
    arr = _checked(values)
    if not 1 <= side <= min(arr.shape):
        raise ValueError(f"window side {side} must be in [1, {min(arr.shape)}] for a map of shape {arr.shape}")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile {q} must be in (0, 1]")
    if stride < 1:
        raise ValueError(f"stride {stride} must be >= 1")
    ys, xs = _grid(arr.shape[0], side, stride), _grid(arr.shape[1], side, stride)
    views = np.lib.stride_tricks.sliding_window_view(arr, (side, side))
    scores = np.empty((len(ys), len(xs)), np.float64)
    for i, y in enumerate(ys):  # one row of windows at a time: side^2 x len(xs) values in memory
        row = views[y, xs].reshape(len(xs), side * side)
        scores[i] = np.quantile(row, q, axis=1)
    return ys, xs, scores


def strongest_regions(values: np.ndarray, k: int = 3, side: int = REGION_SIDE, quantile: float | None = None,
                      separation: int | None = None, stride: int | None = None) -> list[Region]:
    """The top ``k`` windows of ``values`` (H, W) by score, strongest first, after non-maximum suppression.

    ``side``: window side in pixels (clipped to the map's shorter side); ``quantile`` None scores a window by
    its mean, else by that quantile in (0, 1] (windows on a grid of step ``stride``, default ``side // 4``);
    ``separation``: a chosen window suppresses every window whose origin is closer than this in both x and y
    (default ``side``: chosen windows never overlap). Windows that contain no non-zero pixel are never chosen,
    so fewer than ``k`` regions come back when the map has fewer separate non-zero places. Ties go to the
    first window in row-major order (deterministic).
    """
    arr = _checked(values)
    if k < 1:
        raise ValueError(f"k = {k}: ask for at least one region")
    if arr.size == 0:
        return []
    side = max(1, min(int(side), *arr.shape))
    sep = side if separation is None else int(separation)
    if sep < 1:
        raise ValueError(f"separation {sep} must be >= 1 pixel")
    # a window with no non-zero pixel is empty; the count is exact (integers), where a float sum may not be 0
    touched = _box_sums((arr != 0).astype(np.float64), side) > 0.5
    if quantile is None:
        scores = np.where(touched, window_means(arr, side), -np.inf)
        ys, xs = np.arange(scores.shape[0]), np.arange(scores.shape[1])
    else:
        ys, xs, q_scores = window_quantiles(arr, side, quantile, stride or max(1, side // 4))
        scores = np.where(touched[np.ix_(ys, xs)], q_scores, -np.inf)
    found: list[Region] = []
    while len(found) < k:
        flat = int(np.argmax(scores))
        iy, ix = divmod(flat, scores.shape[1])
        best = float(scores[iy, ix])
        if not np.isfinite(best):
            break
        y, x = int(ys[iy]), int(xs[ix])
        found.append(Region(x, y, side, best))
        # suppress every window origin within ``sep`` of the chosen one (in both axes)
        rows = (ys > y - sep) & (ys < y + sep)
        cols = (xs > x - sep) & (xs < x + sep)
        scores[np.ix_(rows, cols)] = -np.inf
    return found


def strongest_region_score(values: np.ndarray, side: int = REGION_SIDE, quantile: float | None = None) -> float:
    """The score of the strongest region of ``values`` (see :func:`strongest_regions`); 0.0 for a map with no
    non-zero pixel."""
    found = strongest_regions(values, k=1, side=side, quantile=quantile)
    return found[0].score if found else 0.0
