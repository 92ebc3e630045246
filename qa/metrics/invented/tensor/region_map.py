"""The invented-detail map in torch (any device): the invented energy bounded by the squared change, its region
closing and the closing's holes filled (the oracle's :func:`qa.metrics.invented.oracle.region_map.region_map`)."""

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


def change_bound(energy: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """``min(energy, change^2)`` of (..., H, W) invented energy (luma^2) and output minus reference luma, float32
    (the oracle's :func:`~qa.metrics.invented.oracle.region_map.change_bound`)."""
    return torch.minimum(energy.float(), change.float().square())


def region_map(energy: torch.Tensor, r: int) -> torch.Tensor:
    """The square root of the grey closing of (..., H, W) invented energy (luma^2 >= 0) by a (2 ``r`` + 1)-px
    square, float32 luma units. Max then min filters, each separable (a row pass and a column pass); samples
    beyond the edges are ignored, which for a square is the oracle's ``nearest`` edge rule."""
    dilated = _running_max(_running_max(energy.float(), r, -1), r, -2)
    closed = -_running_max(_running_max(-dilated, r, -1), r, -2)
    return closed.clamp_min(0.0).sqrt()


#: iterations of :func:`fill_holes` between two tests for convergence (each test waits for the device)
_FILL_CHECK = 16


def fill_holes(maps: torch.Tensor) -> torch.Tensor:
    """The grey hole filling of (..., H, W) maps: the reconstruction by erosion from the border (8-connected),
    ``s = max(maps, erosion_3x3(s))`` from ``s`` = the map on the border and its maximum inside, until nothing
    changes (one pixel of propagation per step). Each pixel is raised to the lowest level at which it is still
    enclosed (the smallest, over paths to the border, of the largest value along the path)."""
    f = maps.float()
    h, w = f.shape[-2:]
    if h <= 2 or w <= 2:
        return f.clone()
    s = f.clone()
    s[..., 1:-1, 1:-1] = f.amax(dim=(-2, -1), keepdim=True)
    while True:
        before = s
        for _ in range(_FILL_CHECK):
            s = torch.maximum(f, -_running_max(_running_max(-s, 1, -1), 1, -2))
        if not bool((s < before).any()):  # s only falls; a NaN compares False, so the loop ends on NaN too
            return s
