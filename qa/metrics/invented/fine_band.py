"""The finest band's channel of the analysis (the oracle's ``fine_channel(all_fine_stats(...))``), as torch
tensors on any device, each step through :mod:`qa.metrics.invented.dispatch`:

- the finest band's local least-squares fit (sigma-4 window, four reference features) is solved on the coarse
  grid and its four coefficient fields are interpolated back, then applied pixel by pixel as in the oracle;
- the residual's predictability from its neighbours is a second local fit on the coarse grid (interpolated);
- the sigma-64 surround is :mod:`qa.metrics.invented.surround`'s, on full-resolution fields.

Fields are (N, H, W) float32 luma(-derived).
"""

from __future__ import annotations

import torch

from qa.metrics.invented import dispatch
from qa.metrics.invented.local_fit import features, local_lsq, residual, to_full
from qa.metrics.invented.model import (
    ABS_FLOOR,
    FINE_TOLERANCE,
    FINE_WINDOW,
    MAP_SIGMA,
    PERIODIC_MIN,
    PREDICT_OFFSETS,
    SURROUND_FACTOR,
    SURROUND_SIGMA,
    WINDOW_SIGMA,
)
from qa.metrics.invented.surround import Surround

#: coarse-grid strides of the finest band's fit (its coefficients multiply the features pixel by pixel, so they
#: must be accurate) and of the predictability fit
FIT_STRIDE = 2
PRED_STRIDE = 2


def fine_invented(fo: torch.Tensor, fr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Invented energy of the finest band per pixel (N, H, W), luma^2 >= 0, from the output's and reference's
    finest bands ``fo``, ``fr`` (``y - G_FINE_SIGMA * y``): the oracle's ``fine_channel(all_fine_stats(...))``,
    placed where the pointwise residual lies (``G_MAP_SIGMA * r^2 / G_FINE_WINDOW * r^2``); and the reference's
    finest-band energy (N, H, W) in its window (``G_FINE_WINDOW * fr^2``, the oracle's ``FineStats.ref``); and the
    pointwise residual ``r`` (N, H, W) of the fit (the oracle's ``FineStats.point``, what the spectral rule reads)."""
    h, w = fo.shape[-2:]
    feats = features(fr)
    fit = local_lsq(fo, feats, stride=FIT_STRIDE)
    r = residual(fo, feats, fit.coef, FIT_STRIDE)
    del feats
    r2 = dispatch.squared(r)
    u, ref = dispatch.blur2d(r2, FINE_WINDOW), dispatch.blur2d(dispatch.squared(fr), FINE_WINDOW)
    neighbours = dispatch.shift_pairs(r, PREDICT_OFFSETS)
    pred_fit = local_lsq(r, neighbours, stride=PRED_STRIDE)
    del neighbours
    pred = (pred_fit.explained / pred_fit.moment(4, 4).clamp_min(1e-30)).clamp(0.0, 1.0)
    pred = to_full(pred, h, w, WINDOW_SIGMA, PRED_STRIDE)
    surround = Surround(ref, SURROUND_SIGMA)
    level = surround.level(surround.robust_first(u))
    inv = dispatch.fine_combine(u, ref, pred, level, dispatch.blur2d(r2, MAP_SIGMA), ABS_FLOOR, FINE_TOLERANCE,
                                PERIODIC_MIN, SURROUND_FACTOR)
    return inv, ref, r
