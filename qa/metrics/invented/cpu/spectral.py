"""The spectral rule's compiled step with torch tensors in and out (:mod:`~qa.metrics.invented.cpu.spectral_kernels`):
the narrowband energy of each window, with the signature and numbers of the torch tier's step of the same name."""

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
