"""The spectral rule of the analysis (the oracle's :func:`~qa.metrics.invented.oracle.spectral.spectral_score`) as
torch tensors on any device: narrowband structure of the finest band's residual that the reference does not
have, read over the whole image (the median window) in the region score's unit. Each step through
:mod:`qa.metrics.invented.dispatch`; windows in chunks of :data:`CHUNK`."""

from __future__ import annotations

import torch

from qa.metrics.invented import dispatch
from qa.metrics.invented.model import (
    SPECTRAL_ENVELOPE,
    SPECTRAL_FLOOR,
    SPECTRAL_PEAK,
    SPECTRAL_REFERENCE,
    SPECTRAL_STEP,
    SPECTRAL_WINDOW,
)

#: windows per chunk (bounds the memory of the periodograms and the envelope test: about 1024 x 36 x 36 values)
CHUNK = 1024


def window_origins(n: int, side: int = SPECTRAL_WINDOW, step: int = SPECTRAL_STEP) -> list[int]:
    """Window origins 0, step, ... along an axis of length ``n >= side``, the last window flush with the end."""
    grid = list(range(0, n - side + 1, step))
    return grid if grid[-1] == n - side else [*grid, n - side]


def window_ratios(residual: torch.Tensor, ref_fine: torch.Tensor) -> torch.Tensor:
    """(N, K) float32 per window (row-major over the grid of :func:`window_origins`): the residual's narrowband
    energy the reference lacks / (the reference's finest-band energy in the window + ``SPECTRAL_FLOOR``), from
    (N, H, W) finest-band residuals and reference finest bands, H and W >= ``SPECTRAL_WINDOW``."""
    n, h, w = residual.shape
    dev = residual.device
    oy, ox = window_origins(h), window_origins(w)
    ys = torch.tensor(oy, device=dev).repeat_interleave(len(ox))
    xs = torch.tensor(ox, device=dev).repeat(len(oy))
    half = SPECTRAL_WINDOW // 2 + 1
    # each half-spectrum column but the constant and (even side) Nyquist ones stands for two bins of the full one
    weight = torch.full((half,), 2.0, device=dev)
    weight[0] = 1.0
    if SPECTRAL_WINDOW % 2 == 0:
        weight[-1] = 1.0
    out = torch.empty((n, len(ys)), dtype=torch.float32, device=dev)
    for i in range(n):
        for start in range(0, len(ys), CHUNK):
            sy, sx = ys[start : start + CHUNK], xs[start : start + CHUNK]
            p = dispatch.periodograms(residual[i], sy, sx, SPECTRAL_WINDOW)
            q = dispatch.periodograms(ref_fine[i], sy, sx, SPECTRAL_WINDOW)
            energy = dispatch.narrowband_energy(p, q, SPECTRAL_ENVELOPE, SPECTRAL_PEAK, SPECTRAL_REFERENCE)
            out[i, start : start + CHUNK] = energy / ((q * weight).sum(dim=(1, 2)) + SPECTRAL_FLOOR)
    return out


def spectral_score(residual: torch.Tensor, ref_fine: torch.Tensor) -> torch.Tensor:
    """(N,) float64 ``sqrt(median over windows of e / (m + SPECTRAL_FLOOR))`` of (N, H, W) finest-band residuals
    and reference finest bands (luma): ``e`` a window's narrowband residual energy the reference lacks, ``m`` the
    reference's finest-band energy there; in [0, inf), 0 for images smaller than one window."""
    n, h, w = residual.shape
    if min(h, w) < SPECTRAL_WINDOW:
        return torch.zeros(n, dtype=torch.float64, device=residual.device)
    return torch.quantile(window_ratios(residual, ref_fine).double(), 0.5, dim=1).clamp_min(0.0).sqrt()
