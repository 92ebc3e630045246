"""The oracle's surround noise model (float64 numpy): the benign level of a band's unexplained energy.

In a wide Gaussian surround (sigma ``SURROUND_SIGMA``) the unexplained energy ``u`` is fitted as ``a + b R``
(``R``: the reference's band energy at the same place, (a, b) >= 0, least squares): ``a`` is residual that is
there whatever the content (noise, grain), ``b`` residual per unit of reference detail (codec re-drawing,
ringing, resampling). A planted region is small against the surround, so it barely lifts its own level; a
change spread over the whole image (noise, a codec) sets the level and is excused. Used by every band: the
finest (:mod:`~qa.metrics.invented.oracle.fine`) and the three coarser ones
(:mod:`~qa.metrics.invented.oracle.analysis`).
"""

from __future__ import annotations

import numpy as np

from qa.metrics.invented.model import SURROUND_CLIP, SURROUND_SIGMA
from qa.metrics.invented.oracle.gaussian import wide_gaussian


def surround_level(u: np.ndarray, ref: np.ndarray, sr: np.ndarray, srr: np.ndarray) -> np.ndarray:
    """Benign residual level a + b x ref at every pixel, (a, b) >= 0 fitted to ``u`` by least squares in a
    Gaussian window of sigma ``SURROUND_SIGMA`` (a 2 x 2 system per pixel). ``sr``, ``srr``: the window means
    of ``ref`` and ``ref**2`` (the window mean of 1 is 1: reflect padding)."""
    su, sru = wide_gaussian(u, SURROUND_SIGMA), wide_gaussian(ref * u, SURROUND_SIGMA)
    b = (sru - sr * su) / np.maximum(srr - sr * sr, 1e-30)
    a = su - b * sr
    # the constrained optimum when a or b comes out negative: the other one alone
    b = np.where(a < 0, sru / np.maximum(srr, 1e-30), b)
    a = np.where(a < 0, 0.0, a)
    a = np.where(b < 0, su, a)
    b = np.maximum(b, 0.0)
    return a + b * ref


def benign_level(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The robust benign level of ``u`` (H, W) given the reference energy ``ref`` (H, W), luma^2: the
    :func:`surround_level` fit, then the fit again with ``u`` clipped at ``SURROUND_CLIP`` x the first (so a
    planted region does not lift its own surround much)."""
    sr, srr = wide_gaussian(ref, SURROUND_SIGMA), wide_gaussian(ref * ref, SURROUND_SIGMA)
    first = surround_level(u, ref, sr, srr)
    return surround_level(np.minimum(u, SURROUND_CLIP * first), ref, sr, srr)
