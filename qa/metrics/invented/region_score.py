"""The region score of the analysis (the oracle's :func:`~qa.metrics.invented.oracle.region_map.region_score`)
as torch tensors on any device: how strong the strongest fixed-size region of invented detail is against the
reference detail that masks it there. One small function, through :mod:`qa.metrics.invented.dispatch`."""

from __future__ import annotations

import torch

from qa.metrics.invented import dispatch
from qa.metrics.invented.model import REGION_FLOOR, REGION_SIGMA


def region_score(energy: torch.Tensor, ref_energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) float64 ``sqrt(max_x G * energy / (G * ref_energy + REGION_FLOOR))`` of (N, H, W) invented energy
    and reference detail energy (luma^2), ``G`` the Gaussian of sigma ``REGION_SIGMA`` (reflect edges): the RMS
    invented amplitude of the strongest region relative to the RMS reference detail there plus the floor, in
    [0, inf); and (N, 2) int64 (y, x), the region's centre (the first maximum in row-major order)."""
    n, _, w = energy.shape
    both = dispatch.blur2d(torch.cat([energy.float(), ref_energy.float()]), REGION_SIGMA)
    ratio = (both[:n] / (both[n:] + REGION_FLOOR)).reshape(n, -1)
    best, at = ratio.max(dim=1)
    return best.double().clamp_min(0.0).sqrt(), torch.stack([at // w, at % w], dim=1)
