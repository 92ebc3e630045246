"""The block-DCT codec cap of the invented-detail analysis in torch float32 (the oracle's
:mod:`qa.metrics.invented.functional_codec`): what a JPEG-style 8 x 8 block codec can make from the reference
is never counted as invented.

Same rule and constants as the oracle: orthonormal 2-D DCT-II of every whole block aligned to the image origin
(here two products with the 8 x 8 DCT matrix), the per-coefficient excess ``max(0, |o| - 2 |c| - SLACK)`` when
output and reference coefficients have the same sign (``sign`` of 0 is 0), ``max(0, |o| - SLACK)`` otherwise,
and every block's invented energy scaled by ``min(1, FACTOR x mean excess energy / its mean)``. Tensors are
(N, H, W) float32 luma(-derived) fields.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from qa.metrics.invented import functional_codec as FC


@lru_cache(maxsize=8)
def _dct_matrix(b: int, device: str) -> torch.Tensor:
    """(b, b) orthonormal DCT-II matrix: coefficients = D @ block @ D.T (scipy ``dctn(norm="ortho")``)."""
    k = torch.arange(b, dtype=torch.float64)[:, None]
    i = torch.arange(b, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2.0 * i + 1.0) * k / (2.0 * b)) * math.sqrt(2.0 / b)
    d[0] /= math.sqrt(2.0)
    return d.float().to(device)


def _blocks(y: torch.Tensor, b: int) -> torch.Tensor:
    """The whole b x b blocks of (N, H, W) as (N, H // b, W // b, b, b) (partial edge blocks dropped)."""
    n, h, w = y.shape
    hb, wb = h // b, w // b
    return y[:, : hb * b, : wb * b].reshape(n, hb, b, wb, b).transpose(2, 3)


def codec_excess(y_out: torch.Tensor, y_ref: torch.Tensor, block: int = FC.CODEC_BLOCK,
                 slack: float = FC.CODEC_SLACK) -> torch.Tensor:
    """Mean codec excess energy per pixel of every whole block, (N, H // block, W // block), luma^2, >= 0."""
    d = _dct_matrix(block, str(y_out.device))
    co = d @ _blocks(y_out, block) @ d.T
    cr = d @ _blocks(y_ref, block) @ d.T
    ao, ar = co.abs(), cr.abs()
    same = torch.sign(co) == torch.sign(cr)
    excess = torch.where(same, (ao - 2.0 * ar - slack).clamp_min(0.0), (ao - slack).clamp_min(0.0))
    return excess.square().sum(dim=(3, 4)) / float(block * block)


def block_scale(inv: torch.Tensor, excess: torch.Tensor, block: int = FC.CODEC_BLOCK,
                factor: float = FC.CODEC_FACTOR) -> torch.Tensor:
    """(N, H, W) multiplier of the oracle's ``codec_cap``: each whole block's ``min(1, factor x excess / mean
    invented energy)``, 1 on the partial blocks at the right and bottom edges."""
    n, h, w = inv.shape
    hb, wb = excess.shape[-2:]
    mean = _blocks(inv, block).mean(dim=(3, 4))
    scale = torch.minimum(torch.ones_like(mean), factor * excess / mean.clamp_min(1e-30))
    out = torch.ones_like(inv)
    out[:, : hb * block, : wb * block] = scale.repeat_interleave(block, 1).repeat_interleave(block, 2)
    return out
