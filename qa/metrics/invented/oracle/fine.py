"""The oracle's finest band ``Y - G_0.8 * Y`` (periods 2 to about 5 px: period-2 checkerboards, fine gratings,
1-px strokes), a channel with its own noise model (float64 numpy).

i.i.d. noise, grain and codecs live at these frequencies too, so its residual counts where it stands out from
what its surround shows at the same level of reference detail (a pattern in a region), or anywhere where it is
periodic (linearly predictable from its neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.metrics.invented.model import (
    ABS_FLOOR,
    FINE_SIGMA,
    FINE_TOLERANCE,
    FINE_WINDOW,
    PERIODIC_MIN,
    PREDICT_OFFSETS,
    SURROUND_FACTOR,
    WINDOW_SIGMA,
)
from qa.metrics.invented.oracle.bands import features, local_lsq, sharpen, tiles
from qa.metrics.invented.oracle.gaussian import gaussian
from qa.metrics.invented.oracle.surround import benign_level


def fine_band(y: np.ndarray) -> np.ndarray:
    """The finest band of luma ``y``: y - G_FINE_SIGMA * y (periods 2 to about 5 px), same shape."""
    return y - gaussian(y, FINE_SIGMA)


def shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` moved so that result[i, j] = x[i + dy, j + dx] (reflect at the borders; |dy|, |dx| <= 2)."""
    p = np.pad(x, 2, mode="reflect")
    h, w = x.shape
    return p[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]


def predictability(r: np.ndarray, window: float = WINDOW_SIGMA) -> np.ndarray:
    """Share of ``r``'s local energy (Gaussian window) that a linear combination of its symmetric neighbour
    pairs ``r(x + d) + r(x - d)``, d in ``PREDICT_OFFSETS``, explains; (H, W) in [0, 1].

    A sinusoid of any period and orientation, a period-2 checkerboard and sums of two such patterns are
    predicted almost exactly (about 1); i.i.d. noise and film grain are not (about 0.2 to 0.9, see the doc).
    """
    q = [shift(r, dy, dx) + shift(r, -dy, -dx) for dy, dx in PREDICT_OFFSETS]
    _, explained = local_lsq(r, q, window)
    return np.clip(explained / np.maximum(gaussian(r * r, window), 1e-30), 0.0, 1.0)


@dataclass
class FineStats:
    """Local statistics of the finest band (H, W): ``residual`` = energy (luma^2, window ``FINE_WINDOW``) of
    the output's finest band minus its local least-squares prediction from the reference's (same four features
    and window as the other bands); ``ref`` = the reference's finest-band energy (same window);
    ``predictability`` = :func:`predictability` of that residual, in [0, 1]; ``sharpen`` = G_MAP_SIGMA * r^2 /
    G_FINE_WINDOW * r^2 of the pointwise residual ``r`` (as :class:`~qa.metrics.invented.oracle.bands.BandStats`);
    ``point`` = ``r`` itself and ``ref_point`` the reference's finest band (luma; what the spectral rule,
    :mod:`~qa.metrics.invented.oracle.spectral`, reads)."""

    residual: np.ndarray
    ref: np.ndarray
    predictability: np.ndarray
    sharpen: np.ndarray
    point: np.ndarray
    ref_point: np.ndarray


def fine_stats(y_out: np.ndarray, y_ref: np.ndarray) -> FineStats:
    """:class:`FineStats` of one (tile of a) pair of lumas."""
    fo, fr = fine_band(y_out), fine_band(y_ref)
    feats = features(fr)
    coef, _ = local_lsq(fo, feats, WINDOW_SIGMA)
    r = fo - sum(coef[..., i] * f for i, f in enumerate(feats))
    return FineStats(residual=gaussian(r * r, FINE_WINDOW), ref=gaussian(fr * fr, FINE_WINDOW),
                     predictability=predictability(r), sharpen=sharpen(r, FINE_WINDOW), point=r, ref_point=fr)


def fine_channel(st: FineStats) -> np.ndarray:
    """Invented energy of the finest band per pixel (luma^2, >= 0), from whole-image :class:`FineStats`.

    ``d`` = residual - ``ABS_FLOOR`` - ``FINE_TOLERANCE`` x reference energy (what the reference's own fine
    detail at the same place does not explain). It counts where it exceeds ``SURROUND_FACTOR`` x the benign
    level its surround shows at the same reference detail (fitted robustly: once, then
    again with the residual clipped at ``SURROUND_CLIP`` x the first fit;
    :func:`~qa.metrics.invented.oracle.surround.benign_level`), or, wherever it is periodic
    (predictability above ``PERIODIC_MIN``), in proportion to how periodic it is. The surround only explains
    residual that is spread like noise or codec error; periodic structure is counted even when it covers the
    whole image.
    """
    u, ref = st.residual, st.ref
    level = benign_level(u, ref)
    d = np.maximum(u - ABS_FLOOR - FINE_TOLERANCE * ref, 0.0)
    periodic = np.clip((st.predictability - PERIODIC_MIN) / (1.0 - PERIODIC_MIN), 0.0, 1.0)
    return np.maximum(np.maximum(d - SURROUND_FACTOR * level, 0.0), periodic * d)


def all_fine_stats(y_out: np.ndarray, y_ref: np.ndarray) -> FineStats:
    """:func:`fine_stats` of a whole image, computed in the same overlapping tiles as
    :func:`~qa.metrics.invented.oracle.bands.all_band_stats`."""
    if y_out.shape != y_ref.shape:
        raise ValueError(f"output {y_out.shape} and reference {y_ref.shape} differ in size")
    h, w = y_out.shape
    fields = {n: np.empty((h, w)) for n in ("residual", "ref", "predictability", "sharpen", "point", "ref_point")}
    for outer, inner, dest in tiles(h, w):
        st = fine_stats(y_out[outer], y_ref[outer])
        for n in fields:
            fields[n][dest] = getattr(st, n)[inner]
    return FineStats(**fields)
