"""The oracle's whole analysis of an image pair (float64 numpy): the bands' floors and surround, the finest band, the codec
cap and the summaries; the low-pass distortion, the HF energy and the seed std."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from qa.metrics.invented.model import (
    ABS_FLOOR,
    DISTORTION_SIGMA,
    HF_SIGMA,
    LOCAL_TOLERANCE,
    NOISE_FLOOR_FACTOR,
    NOISE_FLOOR_PERCENTILE,
    SURROUND_FACTOR,
    InventedResult,
)
from qa.metrics.invented.oracle.bands import BandStats, all_band_stats, luma
from qa.metrics.invented.oracle.codec import codec_cap, codec_excess
from qa.metrics.invented.oracle.fine import FineStats, all_fine_stats, fine_channel
from qa.metrics.invented.oracle.gaussian import gaussian
from qa.metrics.invented.oracle.region_map import region_map, region_score
from qa.metrics.invented.oracle.spectral import spectral_score
from qa.metrics.invented.oracle.surround import benign_level


def invented_from_stats(stats: list[BandStats], fine: FineStats | None = None,
                        codec: np.ndarray | None = None, change: np.ndarray | None = None) -> InventedResult:
    """Apply the noise floors to per-band statistics, add the finest band's invented energy
    (:func:`~qa.metrics.invented.oracle.fine.fine_channel`, when ``fine`` is given), cap every 8 x 8 block at
    what a block codec cannot explain (:func:`~qa.metrics.invented.oracle.codec.codec_cap`, when ``codec`` = the
    per-block :func:`~qa.metrics.invented.oracle.codec.codec_excess` is given) and summarise (see
    :class:`~qa.metrics.invented.model.InventedResult`).

    The three coarser bands are cut twice: for the share (``invented``, the map) at an image-wide floor
    (``NOISE_FLOOR_FACTOR`` x the ``NOISE_FLOOR_PERCENTILE``-th percentile of the unexplained energy), so a decoder
    that invents everywhere cannot raise its own tolerance; for the region score (``peak``) at
    ``SURROUND_FACTOR`` x the surround's benign level ``a + b R``
    (:func:`~qa.metrics.invented.oracle.surround.benign_level`), so what is spread like noise or codec error
    (grain, WebP, AVIF) is excused and what stands out from its surround counts, on flat ground too. The region
    score (``peak``) is the larger of the strongest region's reading and the spectral rule's
    (:func:`~qa.metrics.invented.oracle.spectral.spectral_score` of the finest band's residual, when ``fine`` is
    given): narrowband structure the reference lacks, over most of the image. ``change`` (output minus reference
    luma, (H, W)) bounds the map (:func:`~qa.metrics.invented.oracle.region_map.region_map`), never a scalar."""
    inv = np.zeros_like(stats[0].out)
    local = np.zeros_like(stats[0].out)
    lost = np.zeros_like(stats[0].out)
    floors = []
    for st in stats:
        floor = max(ABS_FLOOR, NOISE_FLOOR_FACTOR * float(np.percentile(st.unexplained, NOISE_FLOOR_PERCENTILE)))
        floors.append(floor)
        over = st.unexplained - LOCAL_TOLERANCE * st.ref
        inv += np.maximum(over - floor, 0.0) * st.sharpen
        excused = SURROUND_FACTOR * benign_level(st.unexplained, st.ref)
        local += np.maximum(over - ABS_FLOOR - excused, 0.0) * st.sharpen
        lost += np.maximum(st.ref - st.explained, 0.0)
    inv_fine = fine_channel(fine) * fine.sharpen if fine is not None else np.zeros_like(inv)
    local += inv_fine
    if codec is not None:  # the cap scales a block's total; the finest band keeps its share of it
        total = codec_cap(inv + inv_fine, codec)
        share = np.divide(total, inv + inv_fine, out=np.zeros_like(total), where=(inv + inv_fine) > 0)
        inv, inv_fine = inv * share, inv_fine * share
        local = codec_cap(local, codec)
    inv += inv_fine
    ref_detail = np.sum([st.ref for st in stats], axis=0) + (fine.ref if fine is not None else 0.0)
    out_e = float(sum(st.out.sum() for st in stats))
    ref_e = float(sum(st.ref.sum() for st in stats))
    denom = max(out_e, ref_e)
    invented = float(min(1.0, inv.sum() / denom)) if denom > 0 else 0.0
    fine_share = float(min(1.0, inv_fine.sum() / denom)) if denom > 0 else 0.0
    lost_frac = float(min(1.0, lost.sum() / ref_e)) if ref_e > 0 else 0.0
    region, peak_at = region_score(local, ref_detail)
    spectral = spectral_score(fine.point, fine.ref_point) if fine is not None else 0.0
    return InventedResult(
        map=region_map(inv, change),
        invented=invented,
        lost=lost_frac,
        invented_energy=inv,
        out_energy=out_e,
        ref_energy=ref_e,
        noise_floor=tuple(floors),
        fine_invented=fine_share,
        peak=max(region, spectral),
        peak_at=peak_at,
        region=region,
        spectral=spectral,
        change=None if change is None else np.asarray(change, np.float32),
    )


def invented_detail(output: np.ndarray, reference: np.ndarray) -> InventedResult:
    """Invented and lost detail of ``output`` against ``reference`` (both (H, W, 3) in [0, 1], same size)."""
    y_out, y_ref = luma(output), luma(reference)
    return invented_from_stats(all_band_stats(y_out, y_ref), all_fine_stats(y_out, y_ref), codec_excess(y_out, y_ref),
                               y_out - y_ref)


def distortion(output: np.ndarray, reference: np.ndarray, sigma: float = DISTORTION_SIGMA) -> float:
    """RMS difference (RGB, [0, 1] units, range [0, 1]) of the Gaussian low-passes (sigma pixels) of output and
    reference: colour and tone error, blind to fine detail."""
    o = ndimage.gaussian_filter(np.asarray(output, np.float64), (sigma, sigma, 0), mode="reflect")
    r = ndimage.gaussian_filter(np.asarray(reference, np.float64), (sigma, sigma, 0), mode="reflect")
    return float(np.sqrt(np.mean((o - r) ** 2)))


def hf_energy(img: np.ndarray, sigma: float = HF_SIGMA) -> float:
    """Mean squared high-pass luma, luma^2 units: mean((Y - G_sigma * Y)^2) (sigma = 1 px passes roughly
    frequencies above 0.2 cycles/pixel)."""
    y = luma(img)
    hp = y - gaussian(y, sigma)
    return float(np.mean(hp * hp))


def seed_std_map(outputs: list[np.ndarray]) -> np.ndarray:
    """Per-pixel population standard deviation of luma over seeds, (H, W) float32 in [0, 0.5]."""
    if len(outputs) < 2:
        raise ValueError(f"seed variance needs at least 2 outputs, got {len(outputs)}")
    shapes = {np.shape(o) for o in outputs}
    if len(shapes) != 1:
        raise ValueError(f"seed outputs differ in shape: {sorted(shapes)}")
    ys = np.stack([luma(o) for o in outputs])
    dev = ys - ys[:1]  # shift-invariant: identical outputs give exactly 0, not rounding noise
    return dev.std(axis=0).astype(np.float32)
