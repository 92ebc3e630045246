"""The invented-detail map: the region closing of the invented energy (part of the float64 oracle,
:mod:`qa.metrics.invented.functional`; the torch port is ``torch_analysis.region_map``)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: half-side (pixels) of the square grey closing that makes the map from the invented energy: gaps of up to
#: 2 x MAP_CLOSING px between invented structures (sparse strokes, hatching, hair) read as one region; equal to
#: the analysis window's sigma (``functional.WINDOW_SIGMA``), the scale at which the energy was measured (the
#: scalars never see the closing)
MAP_CLOSING = 4


def region_map(energy: np.ndarray) -> np.ndarray:
    """The map of an invented-energy field (H, W) luma^2 >= 0: the RMS amplitude (luma units, (H, W) float32)
    of its grey closing by a square of side 2 :data:`MAP_CLOSING` + 1 (max filter then min filter, edges
    ``nearest``). The closing never lowers a pixel and never raises the maximum; it fills gaps narrower than
    the square between invented structures (the strokes of a re-drawn region, a hatching) up to the lower of
    the levels on either side, and leaves the outline of a solid region where it is."""
    size = 2 * MAP_CLOSING + 1
    closed = ndimage.grey_closing(np.asarray(energy, np.float64), size=(size, size), mode="nearest")
    return np.sqrt(closed).astype(np.float32)
