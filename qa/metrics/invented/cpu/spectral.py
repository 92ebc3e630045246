"""The spectral rule's compiled steps with torch tensors in and out (:mod:`~qa.metrics.invented.cpu.spectral_kernels`):
the periodograms (tapered windows and power compiled, torch's FFTs) and the narrowband energy of each window,
with the signatures and numbers of the torch tier's steps of the same names."""

from __future__ import annotations

import torch

from qa.metrics.invented.cpu import spectral_kernels
from qa.metrics.invented.cpu.threads import launch


def narrowband_energy(p: torch.Tensor, q: torch.Tensor, envelope: int, peak: float, ref: float) -> torch.Tensor:
    """(K,) narrowband energy of (K, n, n // 2 + 1) float32 half periodograms (residual ``p``, reference ``q``)."""
    out = torch.empty(p.shape[0], dtype=torch.float32)
    with launch():
        spectral_kernels.narrowband_energy(p.contiguous().numpy(), q.contiguous().numpy(), int(envelope),
                                           float(peak), float(ref), out.numpy())
    return out


def hann_windows(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(K, side, side) float32 windows of (H, W) float32 ``x`` at origins (``ys``, ``xs``) (K,), times ``taps``."""
    side = taps.shape[0]
    out = torch.empty((ys.shape[0], side, side), dtype=torch.float32)
    with launch():
        spectral_kernels.hann_windows(x.contiguous().numpy(), ys.to(torch.int64).contiguous().numpy(),
                                      xs.to(torch.int64).contiguous().numpy(), taps.contiguous().numpy(), out.numpy())
    return out


def periodograms(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, taps: torch.Tensor, norm: float) -> torch.Tensor:
    """(K, side, side // 2 + 1) float32 half periodograms of the windows of (H, W) float32 ``x`` at origins
    (``ys``, ``xs``) under ``taps`` (side, side), / ``norm``: the tapered windows and the power compiled, the FFTs
    torch's (``rfft2``)."""
    spec = torch.view_as_real(torch.fft.rfft2(hann_windows(x, ys, xs, taps)))
    out = torch.empty(spec.shape[:-1], dtype=torch.float32)
    with launch():
        spectral_kernels.half_power(spec.contiguous().numpy(), float(norm), out.numpy())
    return out
