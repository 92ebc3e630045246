"""The block-DCT codec cap in torch (any device): the oracle's rule (:mod:`qa.metrics.invented.oracle.codec`)
with the DCT as two products with the 8 x 8 DCT matrix. Orthonormal 2-D DCT-II of every whole block aligned to
the image origin, the per-coefficient excess ``max(0, |o| - 2 |c| - slack)`` when output and reference
coefficients have the same sign (``sign`` of 0 is 0), ``max(0, |o| - slack)`` otherwise, and every block's
invented energy scaled by ``min(1, factor x mean excess energy / its mean)``. Fields are (N, H, W) float32."""

from __future__ import annotations

import torch

from qa.metrics.invented.coefficients import dct_matrix
from qa.metrics.invented.model import CODEC_BLOCK, CODEC_FACTOR, CODEC_SLACK


def _blocks(y: torch.Tensor, b: int) -> torch.Tensor:
    """The whole b x b blocks of (N, H, W) as (N, H // b, W // b, b, b) (partial edge blocks dropped)."""
    n, h, w = y.shape
    hb, wb = h // b, w // b
    return y[:, : hb * b, : wb * b].reshape(n, hb, b, wb, b).transpose(2, 3)


def codec_excess(y_out: torch.Tensor, y_ref: torch.Tensor, block: int = CODEC_BLOCK,
                 slack: float = CODEC_SLACK) -> torch.Tensor:
    """Mean codec excess energy per pixel of every whole block, (N, H // block, W // block), luma^2, >= 0."""
    d = dct_matrix(block, str(y_out.device))
    co = d @ _blocks(y_out, block) @ d.T
    cr = d @ _blocks(y_ref, block) @ d.T
    ao, ar = co.abs(), cr.abs()
    same = torch.sign(co) == torch.sign(cr)
    excess = torch.where(same, (ao - 2.0 * ar - slack).clamp_min(0.0), (ao - slack).clamp_min(0.0))
    return excess.square().sum(dim=(3, 4)) / float(block * block)


def block_scale(inv: torch.Tensor, excess: torch.Tensor, block: int = CODEC_BLOCK,
                factor: float = CODEC_FACTOR) -> torch.Tensor:
    """(N, H, W) multiplier of the cap: each whole block's ``min(1, factor x excess / mean invented energy)``,
    1 on the partial blocks at the right and bottom edges."""
    hb, wb = excess.shape[-2:]
    mean = _blocks(inv, block).mean(dim=(3, 4))
    scale = torch.minimum(torch.ones_like(mean), factor * excess / mean.clamp_min(1e-30))
    out = torch.ones_like(inv)
    out[:, : hb * block, : wb * block] = scale.repeat_interleave(block, 1).repeat_interleave(block, 2)
    return out


def codec_caps(y_out: torch.Tensor, y_ref: torch.Tensor, totals: list[torch.Tensor], fine: torch.Tensor,
               block: int, slack: float, factor: float) -> list[torch.Tensor]:
    """The cap applied to each of ``totals`` (the bands' invented energy of the share, then of the region score)
    with the finest band's ``fine``: the blocks' codec excess computed once; each field's scaled total ``(field +
    fine) x scale`` (the unscaled ``fine`` for every field) written over it, then ``fine`` scaled per block, in
    place, by the first field's scale (the finest band keeps its share of the share's total); the fields
    returned."""
    excess = codec_excess(y_out, y_ref, block, slack)
    scales = [block_scale(inv + fine, excess, block, factor) for inv in totals]
    out = [inv.mul_(scale).add_(fine * scale).contiguous() for inv, scale in zip(totals, scales, strict=True)]
    fine.mul_(scales[0])
    return out
