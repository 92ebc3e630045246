"""Synthetic inputs with known support: band-limited textures, boxes."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIDE = 96


def texture(seed: int, side: int = SIDE) -> np.ndarray:
    """Band-limited random texture (difference of Gaussians 1..3 px of white noise), unit RMS, (side, side)."""
    w = np.random.default_rng(seed).normal(size=(side, side))
    t = ndimage.gaussian_filter(w, 1.0) - ndimage.gaussian_filter(w, 3.0)
    return t / t.std()


def box(y0: int, y1: int, x0: int, x1: int, side: int = SIDE) -> np.ndarray:
    """Boolean (side, side) mask of a rectangle."""
    m = np.zeros((side, side), bool)
    m[y0:y1, x0:x1] = True
    return m


def add_luma(img: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``img`` plus the same ``delta`` (H, W) on every channel, clipped to [0, 1]."""
    return np.clip(img + delta[..., None], 0.0, 1.0).astype(np.float32)
