"""The oracle's invented-detail map (the region closing of the invented energy) and the region score (the
strongest fixed-size region of invented energy against the reference detail there), float64 scipy."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from qa.metrics.invented.model import MAP_CLOSING, REGION_FLOOR, REGION_SIGMA
from qa.metrics.invented.oracle.gaussian import gaussian


def region_map(energy: np.ndarray) -> np.ndarray:
    """The map of an invented-energy field (H, W) luma^2 >= 0: the RMS amplitude (luma units, (H, W) float32)
    of its grey closing by a square of side 2 :data:`~qa.metrics.invented.model.MAP_CLOSING` + 1 (max filter
    then min filter, edges ``nearest``). The closing never lowers a pixel and never raises the maximum; it fills
    gaps narrower than the square between invented structures (the strokes of a re-drawn region, a hatching) up
    to the lower of the levels on either side, and leaves the outline of a solid region where it is."""
    size = 2 * MAP_CLOSING + 1
    closed = ndimage.grey_closing(np.asarray(energy, np.float64), size=(size, size), mode="nearest")
    return np.sqrt(closed).astype(np.float32)


def region_score(energy: np.ndarray, ref_energy: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The region score of an invented-energy field ``energy`` (H, W, luma^2 >= 0) against the reference's
    detail energy ``ref_energy`` (H, W, luma^2, all bands): ``sqrt(max_x G * energy / (G * ref_energy +
    REGION_FLOOR))`` with ``G`` the Gaussian of sigma :data:`REGION_SIGMA` (reflect at the edges, so a region
    at the border is averaged like one inside). Invented RMS amplitude of the strongest region relative to what
    masks it there, in [0, inf); it does not shrink with the invented area (a region of invention of a given
    contrast scores the same in any image size). Returned with the region's centre (y, x) in pixels (the first
    maximum in row-major order)."""
    num = gaussian(np.asarray(energy, np.float64), REGION_SIGMA)
    den = gaussian(np.asarray(ref_energy, np.float64), REGION_SIGMA) + REGION_FLOOR
    ratio = num / den
    y, x = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return float(np.sqrt(max(0.0, float(ratio[y, x])))), (int(y), int(x))
