"""The oracle's three difference-of-Gaussian bands: luma, the bands, the local least-squares explanation of
the output's band by the reference's, whole images in overlapping tiles (float64 numpy).

In every Gaussian window (sigma ``WINDOW_SIGMA``) the output's band is predicted from four *reference-derived*
features: the band itself (gain: contrast, colour and tone changes), its x and y derivatives (sub-pixel shifts,
resampling) and its Laplacian (blur and sharpening). What the prediction explains is detail the reference has,
possibly attenuated, amplified or moved; what it cannot explain is invented; reference energy the explained
part does not reproduce is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from qa.metrics.invented.model import BAND_SIGMAS, LUMA, MAP_SIGMA, RIDGE_ABS, RIDGE_REL, WINDOW_SIGMA
from qa.metrics.invented.oracle.gaussian import gaussian

#: tile side and margin for large images (the analysis is local, so tiles with a margin are exact)
TILE = 512
MARGIN = 48

Slices = tuple[slice, slice]


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (H, W, 3) image, float64 (H, W); an (H, W) input is returned as float64."""
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {arr.shape}")
    return arr[..., 0] * LUMA[0] + arr[..., 1] * LUMA[1] + arr[..., 2] * LUMA[2]


def band(y: np.ndarray, sigma: float) -> np.ndarray:
    """Difference-of-Gaussians band of luma ``y``: G_sigma * y - G_2sigma * y, same shape."""
    return gaussian(y, sigma) - gaussian(y, 2.0 * sigma)


@dataclass
class BandStats:
    """Local energies of one band (H, W), luma^2 units, averaged over the Gaussian window.

    ``out``: output band energy; ``ref``: reference band energy; ``explained``: energy of the least-squares
    prediction of the output band from the reference features; ``unexplained`` = out - explained (>= 0);
    ``sharpen`` = G_MAP_SIGMA * r^2 / G_WINDOW_SIGMA * r^2 of the pointwise residual ``r`` (>= 0, mean about 1):
    where inside its window the unexplained energy lies.
    """

    out: np.ndarray
    ref: np.ndarray
    explained: np.ndarray
    unexplained: np.ndarray
    sharpen: np.ndarray


def features(rb: np.ndarray) -> list[np.ndarray]:
    """The four reference features of a band: itself, its x and y derivatives and its Laplacian."""
    gy, gx = np.gradient(rb)
    lap = ndimage.laplace(rb, mode="reflect")
    return [rb, gx, gy, lap]


def local_lsq(target: np.ndarray, feats: list[np.ndarray], window: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel least squares of ``target`` on ``feats`` in a Gaussian window (sigma ``window`` px).

    Returns (coefficients (H, W, k), explained energy (H, W) = coef . (window mean of feats x target)), from the
    k x k normal equations at every pixel with a small ridge (``RIDGE_REL``, ``RIDGE_ABS``).
    """
    k = len(feats)
    h, w = target.shape
    m = np.empty((h, w, k, k))
    for i in range(k):
        for j in range(i, k):
            m[..., i, j] = m[..., j, i] = gaussian(feats[i] * feats[j], window)
    b = np.stack([gaussian(f * target, window) for f in feats], axis=-1)
    trace = np.trace(m, axis1=-2, axis2=-1)
    ridge = RIDGE_REL * trace / k + RIDGE_ABS
    m += ridge[..., None, None] * np.eye(k)
    coef = np.linalg.solve(m, b[..., None])[..., 0]
    return coef, np.einsum("...i,...i->...", coef, b)


def sharpen(r: np.ndarray, window: float) -> np.ndarray:
    """G_MAP_SIGMA * r^2 / G_window * r^2 (0 where the window's residual energy is 0)."""
    wide = gaussian(r * r, window)
    return np.divide(gaussian(r * r, MAP_SIGMA), wide, out=np.zeros_like(wide), where=wide > 0)


def band_stats(y_out: np.ndarray, y_ref: np.ndarray, sigma: float, window: float = WINDOW_SIGMA) -> BandStats:
    """Local least-squares explanation of the output's band ``sigma`` by the reference's (see module doc)."""
    ob = band(y_out, sigma)
    rb = band(y_ref, sigma)
    feats = features(rb)
    coef, explained = local_lsq(ob, feats, window)
    e_out = gaussian(ob * ob, window)
    e_ref = gaussian(rb * rb, window)
    explained = np.clip(explained, 0.0, e_out)
    r = ob - sum(coef[..., i] * f for i, f in enumerate(feats))
    return BandStats(out=e_out, ref=e_ref, explained=explained, unexplained=e_out - explained,
                     sharpen=sharpen(r, window))


def tiles(h: int, w: int) -> Iterator[tuple[Slices, Slices, Slices]]:
    """Yield (outer slice, inner slice relative to outer, destination slice) covering an (h, w) image in tiles
    of :data:`TILE` px with a :data:`MARGIN` (read at each call, so that tests can make the tiles small)."""
    tile, margin = TILE, MARGIN
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            oy0, ox0 = max(0, y0 - margin), max(0, x0 - margin)
            oy1, ox1 = min(h, y1 + margin), min(w, x1 + margin)
            yield (
                (slice(oy0, oy1), slice(ox0, ox1)),
                (slice(y0 - oy0, y1 - oy0), slice(x0 - ox0, x1 - ox0)),
                (slice(y0, y1), slice(x0, x1)),
            )


def all_band_stats(y_out: np.ndarray, y_ref: np.ndarray) -> list[BandStats]:
    """:func:`band_stats` for every band of ``BAND_SIGMAS``, computed in overlapping tiles (exact but for the
    reflect padding at tile borders inside the image, which the margin keeps out of the result)."""
    if y_out.shape != y_ref.shape:
        raise ValueError(f"output {y_out.shape} and reference {y_ref.shape} differ in size")
    h, w = y_out.shape
    result = []
    for s in BAND_SIGMAS:
        fields = {n: np.empty((h, w)) for n in ("out", "ref", "explained", "unexplained", "sharpen")}
        for outer, inner, dest in tiles(h, w):
            st = band_stats(y_out[outer], y_ref[outer], s)
            for n in fields:
                fields[n][dest] = getattr(st, n)[inner]
        result.append(BandStats(**fields))
    return result
