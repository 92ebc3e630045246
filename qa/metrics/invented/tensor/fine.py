"""The finest band's per-pixel steps in torch (any device): the surround's block means and level, and the
combination of its fields into invented energy. Fields are (N, H, W) float32."""

from __future__ import annotations

import torch
import torch.nn.functional as nn_functional

from qa.metrics.invented.tensor.interp import bicubic


def block_means(a: torch.Tensor, b: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(2, N, H / bh, W / bw): block means of ``a`` and of ``a * b`` ((N, H, W), sides multiples of the blocks)."""
    pooled = nn_functional.avg_pool2d(torch.cat([a, a * b])[:, None], (bh, bw))[:, 0]
    return pooled.unflatten(0, (2, a.shape[0]))


def surround_level(rows: torch.Tensor, fw: int, ref: torch.Tensor) -> torch.Tensor:
    """``a + b ref`` (N, H, W) from the surround's coefficients ``rows`` (2, N, H, W / fw), already bicubic along
    H: bicubic along W, then the level."""
    a, b = bicubic(rows.flatten(0, 1), 1, fw).chunk(2)
    return a + b * ref


def fine_combine(u: torch.Tensor, ref: torch.Tensor, pred: torch.Tensor, level: torch.Tensor, near: torch.Tensor,
                 floor: float, tol: float, pmin: float, factor: float) -> torch.Tensor:
    """The finest band's invented energy per pixel: ``d = max(0, u - floor - tol ref)``, ``periodic =
    clip((clip(pred, 0, 1) - pmin) / (1 - pmin), 0, 1)``, ``max(max(0, d - factor level), periodic d)``, placed
    by ``near / u`` (0 where ``u`` is 0)."""
    pred = pred.clamp(0.0, 1.0)
    d = (u - floor - tol * ref).clamp_min(0.0)
    periodic = ((pred - pmin) / (1.0 - pmin)).clamp(0.0, 1.0)
    inv = torch.maximum((d - factor * level).clamp_min(0.0), periodic * d)
    return inv.mul_(torch.where(u > 0, near / torch.where(u > 0, u, torch.ones_like(u)), torch.zeros_like(u)))
