"""The oracle's spectral rule (float64 numpy): **narrowband structure the reference does not have**, an
image-wide reading of periodic invention (a weak grating, a checkerboard, moire over the whole image) in the
region score's unit.

Per square Hann window (side ``SPECTRAL_WINDOW``, on a grid of step ``SPECTRAL_STEP``, the last window flush
with the image), the periodogram ``P`` of the finest band's residual (the output's finest band minus its local
prediction from the reference's) is compared bin by bin with its *local spectral envelope* ``env`` (the median
of ``P`` over the ``SPECTRAL_ENVELOPE`` x ``SPECTRAL_ENVELOPE`` bins around it, circular in frequency) and with
the reference's finest-band periodogram ``Q`` at the same bin. A bin is narrowband structure the reference lacks
where ``P > SPECTRAL_PEAK env + SPECTRAL_REFERENCE Q`` (the constant bin excluded): a smooth spectrum (noise,
grain, blurred noise) has no such peak, and ringing or re-painting by a codec lies at frequencies where the
reference has energy. The window's narrowband energy ``e`` (those bins' sum; periodograms are normalised so
that all bins sum to the window's Hann^2-weighted mean square) is measured against the reference's finest-band
energy ``m`` in the window (all of ``Q``'s bins) plus ``SPECTRAL_FLOOR``; the reading is
``sqrt(median over windows of e / (m + SPECTRAL_FLOOR))``: an RMS amplitude relative to what masks it, like the
region score (:mod:`~qa.metrics.invented.oracle.region_map`). The median makes it a statement about most of the
image, not one window (a single window's maximum overlaps benign decodes: a re-drawn edge, resampling).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from qa.metrics.invented.model import (
    SPECTRAL_ENVELOPE,
    SPECTRAL_FLOOR,
    SPECTRAL_PEAK,
    SPECTRAL_REFERENCE,
    SPECTRAL_STEP,
    SPECTRAL_WINDOW,
)


def hann(n: int) -> np.ndarray:
    """The (n,) Hann taps ``sin^2(pi (k + 1/2) / n)``, symmetric about the window's centre, in (0, 1]."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


def window_origins(n: int, side: int = SPECTRAL_WINDOW, step: int = SPECTRAL_STEP) -> np.ndarray:
    """Window origins 0, step, ... along an axis of length ``n >= side``, the last window flush with the end."""
    last = n - side
    return np.unique(np.append(np.arange(0, last + 1, step), last))


def windows(x: np.ndarray, side: int = SPECTRAL_WINDOW) -> np.ndarray:
    """(K, side, side): the windows of ``x`` (H, W) at every grid origin (row-major)."""
    ys, xs = window_origins(x.shape[0], side), window_origins(x.shape[1], side)
    return np.stack([x[y : y + side, c : c + side] for y in ys for c in xs])


def periodograms(win: np.ndarray) -> np.ndarray:
    """(K, n, n) periodograms of (K, n, n) windows under the 2-D Hann taps, normalised so that each window's bins
    sum to its Hann^2-weighted mean square ``sum (h x)^2 / sum h^2`` (luma^2)."""
    n = win.shape[-1]
    taps = np.outer(hann(n), hann(n))
    spec = np.fft.fft2(win * taps)
    return (spec.real**2 + spec.imag**2) / (n * n * float((taps * taps).sum()))


def narrowband(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(K, n, n) bool: the bins of residual periodograms ``p`` that exceed ``SPECTRAL_PEAK`` x their local
    envelope (the circular median over ``SPECTRAL_ENVELOPE``^2 bins) + ``SPECTRAL_REFERENCE`` x the reference's
    periodogram ``q``; the constant bin never counts."""
    env = ndimage.median_filter(p, size=(1, SPECTRAL_ENVELOPE, SPECTRAL_ENVELOPE), mode="wrap")
    counted = p > SPECTRAL_PEAK * env + SPECTRAL_REFERENCE * q
    counted[:, 0, 0] = False
    return counted


def window_ratios(residual: np.ndarray, ref_fine: np.ndarray) -> np.ndarray:
    """(K,) per window: narrowband energy of the residual the reference lacks / (the reference's finest-band
    energy there + ``SPECTRAL_FLOOR``), from the finest band's pointwise residual and the reference's finest
    band (both (H, W), luma). Empty for an image smaller than one window."""
    if min(residual.shape) < SPECTRAL_WINDOW:
        return np.zeros(0)
    p = periodograms(windows(np.asarray(residual, np.float64)))
    q = periodograms(windows(np.asarray(ref_fine, np.float64)))
    energy = np.where(narrowband(p, q), p, 0.0).sum(axis=(1, 2))
    return energy / (q.sum(axis=(1, 2)) + SPECTRAL_FLOOR)


def spectral_score(residual: np.ndarray, ref_fine: np.ndarray) -> float:
    """The spectral reading ``sqrt(median over windows of e / (m + SPECTRAL_FLOOR))`` (see the module), in
    [0, inf), 0 for an image smaller than one window (``SPECTRAL_WINDOW`` px)."""
    ratios = window_ratios(residual, ref_fine)
    return float(np.sqrt(np.median(ratios))) if ratios.size else 0.0
