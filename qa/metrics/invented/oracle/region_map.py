"""The oracle's invented-detail map (the region closing of the invented energy bounded by the change, its holes
filled) and the region score (the strongest fixed-size region of invented energy against the reference detail
there), float64 scipy and scikit-image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import morphology

from qa.metrics.invented.model import MAP_CLOSING, REGION_FLOOR, REGION_SIGMA
from qa.metrics.invented.oracle.gaussian import gaussian


def change_bound(energy: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Invented energy (H, W, luma^2 >= 0) bounded pixel by pixel by the squared change ``change`` (H, W, output
    minus reference luma) at the same pixel: ``min(energy, change^2)``, float64. A pixel where the output equals
    the reference invented nothing, whatever energy the analysis's windows spread onto it from a neighbour."""
    c = np.asarray(change, np.float64)
    return np.minimum(np.asarray(energy, np.float64), c * c)


def region_map(energy: np.ndarray, change: np.ndarray | None = None) -> np.ndarray:
    """The map of an invented-energy field (H, W) luma^2 >= 0: the RMS amplitude (luma units, (H, W) float32)
    of its grey closing by a square of side 2 :data:`~qa.metrics.invented.model.MAP_CLOSING` + 1 (max filter
    then min filter, edges ``nearest``), after the energy is bounded by the squared change (``change``: output
    minus reference luma, (H, W); :func:`change_bound`) when it is given. The closing never lowers a pixel and
    never raises the maximum; it fills gaps narrower than the square between invented structures (the strokes of
    a re-drawn region, a hatching, the letters of a word) up to the lower of the levels on either side, and
    leaves the outline of a solid region where it is; the bound puts that outline where the output changed, not
    where a window spread the energy (a band-pass window reaches 2-4 px past the edge of what changed). Then the
    closing's holes are filled (:func:`fill_holes`): what invented detail encloses is part of its region."""
    e = np.asarray(energy, np.float64) if change is None else change_bound(energy, change)
    size = 2 * MAP_CLOSING + 1
    closed = ndimage.grey_closing(e, size=(size, size), mode="nearest")
    return np.sqrt(fill_holes(closed)).astype(np.float32)


def fill_holes(field: np.ndarray) -> np.ndarray:
    """The grey hole filling of an (H, W) field (float64): scikit-image's reconstruction by erosion (3 x 3
    square, 8-connected) of the field from its border (the seed: the field on the border, its maximum inside).
    Each pixel is raised to the lowest level at which it is still enclosed: at every level ``t`` the pixels
    above ``t`` are those above ``t`` before, with every region they enclose (not connected to the border)
    filled. A region of invented detail whose inside the analysis left lower (a flat inside of an inserted
    object, the middle of a re-drawn patch) reads as the region; nothing outside every enclosing outline moves."""
    f = np.asarray(field, np.float64)
    if min(f.shape) <= 2:
        return f.copy()
    seed = f.copy()
    seed[1:-1, 1:-1] = f.max()
    return morphology.reconstruction(seed, f, method="erosion")


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
