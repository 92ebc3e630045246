"""Where to look in a map of invented detail: the strongest invented region and the next few fixed-size windows.

The strongest invented region is located once, by the region score ``invented_peak``
(:mod:`qa.metrics.invented.region_score`: the largest ratio of invented energy to the reference's detail in a
Gaussian region of sigma :data:`~qa.metrics.invented.model.REGION_SIGMA`; its centre is the metric's
``peak_y``, ``peak_x``). This module does not locate it again: :func:`strongest_regions` puts the window of
``side`` pixels centred there first (``first``), then lists further places as the windows of an (H, W) map (for
invented detail: the RMS amplitude of invented band-pass luma,
:attr:`~qa.metrics.invented.model.InventedResult.map`) with the largest mean of the map (exact at every position
through an integral image), greedily, each chosen window suppressing every window within ``separation`` pixels
of it (non-maximum suppression: with ``separation = side``, the default, no two chosen windows overlap). Only
windows that touch a non-zero map pixel count: a map that is zero everywhere, with no located region, has no
region. ``side`` (:data:`REGION_SIDE`, 64 px) is the size of a word, a logo or a small object at release
resolution.

numpy, and a compiled kernel for the window sums (``dispatch.window_sums``: numpy's numbers); the engine calls this (which crops are stored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.metrics.invented import dispatch

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


def _window_sums(arr: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(sums, nonzero) of every ``side`` x ``side`` window of a checked (H, W) map: float64 sums as
    :func:`_box_sums` gives them and whether the window holds a non-zero value (compiled for float32 and float64
    maps, the same numbers; numpy otherwise)."""
    compiled = dispatch.window_sums(arr, side)
    if compiled is not None:
        return compiled
    # the count is exact (integers), where a float sum may not be 0
    return _box_sums(arr, side), _box_sums((arr != 0).astype(np.float64), side) > 0.5


def window_means(values: np.ndarray, side: int) -> np.ndarray:
    """(H - side + 1, W - side + 1) mean of ``values`` over the window whose top-left corner is each pixel."""
    arr = _checked(values)
    if not 1 <= side <= min(arr.shape):
        raise ValueError(f"window side {side} must be in [1, {min(arr.shape)}] for a map of shape {arr.shape}")
    return _window_sums(arr, side)[0] / float(side * side)


def _centred(y: int, x: int, side: int, h: int, w: int) -> tuple[int, int]:
    """Origin (y, x) of the ``side`` px window centred at pixel (y, x), clipped to an (h, w) map."""
    return min(max(0, y - side // 2), h - side), min(max(0, x - side // 2), w - side)


def strongest_regions(values: np.ndarray, k: int = 3, side: int = REGION_SIDE, separation: int | None = None,
                      first: tuple[int, int] | None = None) -> list[Region]:
    """Up to ``k`` windows of ``values`` (H, W): the located strongest region first, then the windows with the
    largest mean, after non-maximum suppression.

    ``side``: window side in pixels (clipped to the map's shorter side); ``first``: the centre (y, x) of the
    strongest region as the region score located it (``invented_peak``'s ``peak_y``, ``peak_x``): its window,
    centred there and clipped to the map, comes first whatever its mean; ``separation``: a chosen window
    suppresses every window whose origin is closer than this in both x and y (default ``side``: chosen windows
    never overlap). Further windows must contain a non-zero pixel, so fewer than ``k`` regions come back when the
    map has fewer separate non-zero places. Ties go to the first window in row-major order (deterministic).
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
    # a window with no non-zero pixel is empty
    sums, nonzero = _window_sums(arr, side)
    means = sums / float(side * side)
    scores = np.where(nonzero, means, -np.inf)
    found: list[Region] = []

    def choose(y: int, x: int) -> None:
        found.append(Region(x, y, side, float(means[y, x])))
        # suppress every window origin within ``sep`` of the chosen one (in both axes)
        scores[max(0, y - sep + 1) : y + sep, max(0, x - sep + 1) : x + sep] = -np.inf

    if first is not None:
        choose(*_centred(int(first[0]), int(first[1]), side, *arr.shape))
    while len(found) < k:
        y, x = divmod(int(np.argmax(scores)), scores.shape[1])
        if not np.isfinite(scores[y, x]):
            break
        choose(y, x)
    return found
