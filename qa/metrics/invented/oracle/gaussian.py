"""The oracle's Gaussian filters (float64 numpy): scipy's for the analysis windows, an FFT one for the wide
surround."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=4.0)``."""
    return ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=4.0)


def wide_gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`gaussian` of an (H, W) array for wide Gaussians, by FFT: the same truncated kernel (radius
    int(4 sigma + 0.5)) and the same reflect extension, equal to it to about 1e-15 and several times faster for
    sigma = 64."""
    radius = int(4.0 * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        n = x.shape[axis]
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        xp = np.pad(x, pad, mode="symmetric")  # scipy's "reflect" (d c b a | a b c d), repeated if needed
        nfft = 1 << (xp.shape[axis] + kernel.size - 2).bit_length()
        shape = [1, 1]
        shape[axis] = -1
        spec = np.fft.rfft(xp, nfft, axis=axis) * np.fft.rfft(kernel, nfft).reshape(shape)
        x = np.take(np.fft.irfft(spec, nfft, axis=axis), np.arange(2 * radius, 2 * radius + n), axis=axis)
    return x
