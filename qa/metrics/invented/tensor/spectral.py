"""The spectral rule's steps in torch (any device), the oracle's
:mod:`qa.metrics.invented.oracle.spectral` on chunks of windows: the windows' Hann periodograms (half spectra,
``rfft2``) and the narrowband energy of each window.

The oracle's test ``P > peak x median_5x5(P) + ref x Q`` is decided without a median: the median of the 25
envelope bins (odd count) is below ``t = (P - ref Q) / peak`` exactly when at least 13 of them are, so each bin
counts its neighbours below ``t`` (25 comparisons of shifted, circularly padded periodograms).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


@lru_cache(maxsize=8)
def hann_taps(side: int, device: str = "cpu") -> tuple[torch.Tensor, float]:
    """(side, side) float32 2-D Hann taps ``sin^2(pi (i + 1/2) / side)`` (the outer product taken in float64) and
    the periodogram's normaliser ``side^2 sum(taps^2)`` (float64 taps)."""
    k = torch.arange(side, dtype=torch.float64)
    hann = torch.sin(math.pi * (k + 0.5) / side).square()
    taps = torch.outer(hann, hann)
    return taps.float().to(device), float(side * side) * float(taps.square().sum())


def hann_windows(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(K, side, side) float32: the ``side`` px windows of ``x`` (H, W) at origins (``ys[k]``, ``xs[k]``) (K,)
    int64, times ``taps`` (side, side) float32."""
    k = torch.arange(taps.shape[0], device=x.device)
    win = x[(ys[:, None, None] + k[None, :, None]), (xs[:, None, None] + k[None, None, :])]
    return win.float() * taps


def half_power(win: torch.Tensor, norm: float) -> torch.Tensor:
    """(K, side, side // 2 + 1) float32 half periodograms (``rfft2``) of tapered windows (K, side, side) / ``norm``."""
    spec = torch.fft.rfft2(win)
    return (spec.real.square() + spec.imag.square()) / norm


def periodograms(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, side: int) -> torch.Tensor:
    """(K, side, side // 2 + 1) float32 half periodograms (``rfft2``) of the ``side`` px windows of ``x`` (H, W)
    at origins (``ys[k]``, ``xs[k]``) (K,) int64, under the 2-D Hann taps (:func:`hann_taps`), normalised so that
    a window's full spectrum sums to its Hann^2-weighted mean square (luma^2)."""
    taps, norm = hann_taps(side, str(x.device))
    return half_power(hann_windows(x, ys, xs, taps), norm)


def full_spectrum(half: torch.Tensor) -> torch.Tensor:
    """(K, n, n) full periodograms of real windows from their (K, n, n // 2 + 1) halves (P(-k) = P(k))."""
    n = half.shape[-2]
    rest = half[:, :, 1 : n - n // 2].flip(-1)  # columns n - 1 .. n // 2 + 1 mirror columns 1 .. (n - 1) // 2
    rest = torch.roll(rest.flip(-2), 1, dims=-2)  # row ky of the mirrored half is row -ky
    return torch.cat([half, rest], dim=-1)


def narrowband_energy(p: torch.Tensor, q: torch.Tensor, envelope: int, peak: float, ref: float) -> torch.Tensor:
    """(K,) summed energy of the full spectrum's bins where the residual's periodogram exceeds ``peak`` x the
    median of the ``envelope``^2 bins around it (circular) + ``ref`` x the reference's; the constant bin
    excluded. ``p``, ``q``: (K, n, n // 2 + 1) half periodograms of the residual and the reference."""
    p, q = full_spectrum(p), full_spectrum(q)
    n, half = p.shape[-1], envelope // 2
    thr = (p - ref * q) / peak
    padded = torch.cat([p[:, -half:], p, p[:, :half]], dim=1)
    padded = torch.cat([padded[:, :, -half:], padded, padded[:, :, :half]], dim=2)
    below = torch.zeros(p.shape, dtype=torch.int32, device=p.device)
    for dy in range(envelope):
        for dx in range(envelope):
            below += padded[:, dy : dy + n, dx : dx + n] < thr
    counted = below >= (envelope * envelope + 1) // 2
    counted[:, 0, 0] = False
    return torch.where(counted, p, torch.zeros_like(p)).sum(dim=(1, 2))
