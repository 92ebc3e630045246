"""The invented-detail map in torch (any device): the region closing of the invented energy (the oracle's
:func:`qa.metrics.invented.oracle.region_map.region_map`)."""

from __future__ import annotations

import torch


def _running_max(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Max of ``x`` over ``[i - r, i + r]`` along ``dim`` (samples beyond the edges ignored), same shape: window
    maxima of doubling length (1, 2, 4, ...) and one last overlap, a few elementwise maxima per pass."""
    n, size = x.shape[dim], 2 * r + 1
    pad = [0, 0] * (x.ndim - 1 - dim % x.ndim) + [r, r]
    m = torch.nn.functional.pad(x, pad, value=float("-inf"))  # m[i] = max over span samples from i
    span = 1
    while 2 * span <= size:
        m = torch.maximum(m.narrow(dim, 0, m.shape[dim] - span), m.narrow(dim, span, m.shape[dim] - span))
        span *= 2
    if span < size:
        m = torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, size - span, n))
    return m.narrow(dim, 0, n)


def region_map(energy: torch.Tensor, r: int) -> torch.Tensor:
    """The square root of the grey closing of (..., H, W) invented energy (luma^2 >= 0) by a (2 ``r`` + 1)-px
    square, float32 luma units. Max then min filters, each separable (a row pass and a column pass); samples
    beyond the edges are ignored, which for a square is the oracle's ``nearest`` edge rule."""
    dilated = _running_max(_running_max(energy.float(), r, -1), r, -2)
    closed = -_running_max(_running_max(-dilated, r, -1), r, -2)
    return closed.clamp_min(0.0).sqrt()
