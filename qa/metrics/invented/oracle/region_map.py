"""The oracle's invented-detail map: the region closing of the invented energy (float64 scipy)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from qa.metrics.invented.model import MAP_CLOSING


def region_map(energy: np.ndarray) -> np.ndarray:
    """The map of an invented-energy field (H, W) luma^2 >= 0: the RMS amplitude (luma units, (H, W) float32)
    of its grey closing by a square of side 2 :data:`~qa.metrics.invented.model.MAP_CLOSING` + 1 (max filter
    then min filter, edges ``nearest``). The closing never lowers a pixel and never raises the maximum; it fills
    gaps narrower than the square between invented structures (the strokes of a re-drawn region, a hatching) up
    to the lower of the levels on either side, and leaves the outline of a solid region where it is."""
    size = 2 * MAP_CLOSING + 1
    closed = ndimage.grey_closing(np.asarray(energy, np.float64), size=(size, size), mode="nearest")
    return np.sqrt(closed).astype(np.float32)
