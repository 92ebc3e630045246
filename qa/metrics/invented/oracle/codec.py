"""The oracle's block-DCT codec test: what a JPEG-style block codec can explain (float64 numpy, pure).

A block transform codec (JPEG; luma in 8 x 8 blocks aligned to the image origin) stores every orthonormal
DCT coefficient ``c`` of a block as a multiple of its quantisation step ``q``: ``Q(c) = q round(c / q)``. So
it can zero a coefficient or round it, but never *create* one: when ``Q(c)`` is not 0, ``|c| >= q / 2`` and
``|Q(c)| <= |c| + q / 2 <= 2 |c|``, with the sign of ``c``. Whatever quality was used, an output coefficient
``o`` is consistent with quantising the reference's coefficient ``c`` when ``|o| <= SLACK`` or (same sign and
``|o| <= 2 |c| + SLACK``); the slack covers 8-bit rounding. The **codec excess** of a coefficient is by how much
it breaks that: ``max(0, |o| - 2 |c| - SLACK)`` with the same sign, ``max(0, |o| - SLACK)`` otherwise.

A planted checkerboard, grating or stroke on a smooth area creates coefficients the reference does not have
(large excess); JPEG blocking and ringing, blur and denoising only round or shrink them (excess about 0). The
method caps a block's invented energy at ``CODEC_FACTOR`` x the block's mean excess energy (:func:`codec_cap`),
so detail that a codec could have made from the reference is never counted as invented, at any quality and with
any chroma subsampling (luma is coded at full resolution). Noise, grain, shifts and invention create
coefficients, so there the cap does not bind and the rest of the analysis decides.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dctn

from qa.metrics.invented.model import CODEC_BLOCK, CODEC_FACTOR, CODEC_SLACK


def _blocks(y: np.ndarray, b: int) -> np.ndarray:
    """The whole b x b blocks of ``y`` (H, W) as (H // b, W // b, b, b) (partial blocks at the edges dropped)."""
    hb, wb = y.shape[0] // b, y.shape[1] // b
    return y[: hb * b, : wb * b].reshape(hb, b, wb, b).transpose(0, 2, 1, 3)


def codec_excess(y_out: np.ndarray, y_ref: np.ndarray, block: int = CODEC_BLOCK,
                 slack: float = CODEC_SLACK) -> np.ndarray:
    """Mean codec excess energy per pixel of every whole block, (H // block, W // block), luma^2 units, >= 0.

    Sum over the block's orthonormal DCT coefficients of the squared excess (module doc) / block**2: the
    energy per pixel that no quantisation of the reference's coefficients can produce.
    """
    if y_out.shape != y_ref.shape:
        raise ValueError(f"output {y_out.shape} and reference {y_ref.shape} differ in size")
    co = dctn(_blocks(np.asarray(y_out, np.float64), block), axes=(2, 3), norm="ortho")
    cr = dctn(_blocks(np.asarray(y_ref, np.float64), block), axes=(2, 3), norm="ortho")
    ao, ar = np.abs(co), np.abs(cr)
    excess = np.where(np.sign(co) == np.sign(cr), np.maximum(ao - 2.0 * ar - slack, 0.0), np.maximum(ao - slack, 0.0))
    return (excess * excess).sum(axis=(2, 3)) / float(block * block)


def codec_cap(inv: np.ndarray, excess: np.ndarray, block: int = CODEC_BLOCK,
              factor: float = CODEC_FACTOR) -> np.ndarray:
    """Invented energy ``inv`` (H, W) with every whole block's mean capped at ``factor`` x its codec excess
    (:func:`codec_excess`); the block is scaled uniformly, so the map keeps its shape inside it. Pixels of
    partial blocks at the right and bottom edges are left as they are."""
    hb, wb = excess.shape
    mean = _blocks(inv, block).mean(axis=(2, 3))
    scale = np.minimum(1.0, factor * excess / np.maximum(mean, 1e-30))
    out = np.array(inv, dtype=np.float64, copy=True)
    out[: hb * block, : wb * block] *= np.repeat(np.repeat(scale, block, axis=0), block, axis=1)
    return out
