"""Pure functions behind the invented-detail metrics (numpy in, numpy out; no state, no I/O).

All images are float (H, W, 3) in [0, 1] (sRGB values, not linearised). Analysis runs on luma
``Y = 0.299 R + 0.587 G + 0.114 B`` (Rec. 601), in [0, 1].

The model (see ``docs/hallucination.md``): split luma into difference-of-Gaussian bands
``B_s = G_s * Y - G_2s * Y`` for ``s`` in :data:`BAND_SIGMAS`. In every Gaussian window (sigma
:data:`WINDOW_SIGMA`) predict the output's band from the reference's band by local least squares on four
*reference-derived* features: the band itself (gain: contrast, colour and tone changes), its x and y derivatives
(sub-pixel shifts, resampling) and its Laplacian (blur and sharpening). What the prediction explains is detail
the reference has, possibly attenuated, amplified or moved; what it cannot explain is **invented**; reference
energy that the explained part does not reproduce is **lost**. Spatially uniform unexplained energy (i.i.d.
noise, grain) is treated as a noise floor: per band, :data:`NOISE_FLOOR_FACTOR` times the
:data:`NOISE_FLOOR_PERCENTILE`-th percentile of the unexplained energy over the image is subtracted.

The **finest band** ``Y - G_0.8 * Y`` (periods 2 to about 5 px: period-2 checkerboards, fine gratings, 1-px
strokes) is a separate channel (:func:`fine_channel`) with its own noise model, because i.i.d. noise, grain and
codecs live there too: its residual counts where it stands out from what its surround shows at the same level
of reference detail (a pattern in a region), or anywhere where it is periodic (linearly predictable from its
neighbours). Its invented energy is added to the three bands' (same units, same denominator). Each window's
invented energy is placed where its pointwise residual lies (``sharpen``), and every 8 x 8 block is capped at
what no block codec can make from the reference (:mod:`qa.metrics.invented.functional_codec`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from qa.metrics.invented.functional_codec import codec_cap, codec_excess
from qa.metrics.invented.functional_map import region_map
from qa.metrics.invented.functional_wide import g_wide as _g_wide

#: luma weights (Rec. 601)
LUMA = (0.299, 0.587, 0.114)
#: inner sigmas (pixels) of the difference-of-Gaussian bands; band s spans roughly 1/(2 pi 2s)..1/(2 pi s) cyc/px
BAND_SIGMAS: tuple[float, ...] = (0.8, 1.6, 3.2)
#: sigma (pixels) of the Gaussian window of the local statistics
WINDOW_SIGMA = 4.0
#: noise floor = factor x percentile of the unexplained energy over the whole image, per band
NOISE_FLOOR_PERCENTILE = 25.0
NOISE_FLOOR_FACTOR = 2.0
#: unexplained energy below this fraction of the reference's local band energy is tolerated as model mismatch
#: (JPEG ringing, aliasing of resampling, non-linear tone curves all leave a residual that scales with detail)
LOCAL_TOLERANCE = 0.1
#: absolute floor per band (luma^2): below 8-bit quantisation noise, so clean images score 0
ABS_FLOOR = (1.0 / 255.0) ** 2 / 12.0
#: ridge added to the local normal equations, relative to their trace, plus an absolute term (luma^2)
RIDGE_REL = 1e-6
RIDGE_ABS = 1e-9
#: Gaussian low-pass (pixels) on which colour/tone distortion is measured
DISTORTION_SIGMA = 4.0
#: Gaussian sigma (pixels) that separates "high frequencies" in :func:`hf_energy`
HF_SIGMA = 1.0
#: finest band: Y - G_FINE_SIGMA * Y (periods 2 to about 5 px)
FINE_SIGMA = 0.8
#: Gaussian window (pixels) of the finest band's residual and reference energies (small: maps follow regions)
FINE_WINDOW = 2.0
#: Gaussian window (pixels) of the surround in which the benign residual level is fitted (see fine_channel)
SURROUND_SIGMA = 64.0
#: finest-band residual counts above SURROUND_FACTOR x the surround's benign level
SURROUND_FACTOR = 3.0
#: robust surround fit: the residual is clipped at SURROUND_CLIP x the first fit before the second
SURROUND_CLIP = 2.0
#: finest band: residual below this fraction of the reference's local finest-band energy is tolerated (smaller
#: than :data:`LOCAL_TOLERANCE`: the surround's ``b R`` term and the codec cap model what scales with detail)
FINE_TOLERANCE = 0.02
#: neighbour predictability (fraction of residual energy, [0, 1]) above which a residual is periodic structure
PERIODIC_MIN = 0.95
#: offsets (dy, dx) of the symmetric neighbour pairs that predict the finest-band residual
PREDICT_OFFSETS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (1, -1))
#: Gaussian (pixels) of the pointwise residual energy that places each window's invented energy in the map
MAP_SIGMA = 1.0
#: tile side and margin for large images (the analysis is local, so tiles with a margin are exact)
TILE = 512
MARGIN = 48


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (H, W, 3) image, float64 (H, W); an (H, W) input is returned as float64."""
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {arr.shape}")
    return arr[..., 0] * LUMA[0] + arr[..., 1] * LUMA[1] + arr[..., 2] * LUMA[2]


def _g(x: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=4.0)


def band(y: np.ndarray, sigma: float) -> np.ndarray:
    """Difference-of-Gaussians band of luma ``y``: G_sigma * y - G_2sigma * y, same shape."""
    return _g(y, sigma) - _g(y, 2.0 * sigma)


@dataclass
class BandStats:
    """Local energies of one band (H, W), luma^2 units, averaged over the Gaussian window.

    ``out``: output band energy; ``ref``: reference band energy; ``explained``: energy of the least-squares
    prediction of the output band from the reference features; ``unexplained`` = out - explained (>= 0);
    ``sharpen`` = G_MAP_SIGMA * r^2 / G_WINDOW_SIGMA * r^2 of the pointwise residual ``r`` (>= 0, mean about 1):
    where inside its window the unexplained energy lies (see :func:`invented_from_stats`).
    """

    out: np.ndarray
    ref: np.ndarray
    explained: np.ndarray
    unexplained: np.ndarray
    sharpen: np.ndarray


def _features(rb: np.ndarray) -> list[np.ndarray]:
    gy, gx = np.gradient(rb)
    lap = ndimage.laplace(rb, mode="reflect")
    return [rb, gx, gy, lap]


def _local_lsq(target: np.ndarray, feats: list[np.ndarray], window: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel least squares of ``target`` on ``feats`` in a Gaussian window (sigma ``window`` px).

    Returns (coefficients (H, W, k), explained energy (H, W) = coef . (window mean of feats x target)), from the
    k x k normal equations at every pixel with a small ridge (:data:`RIDGE_REL`, :data:`RIDGE_ABS`).
    """
    k = len(feats)
    h, w = target.shape
    m = np.empty((h, w, k, k))
    for i in range(k):
        for j in range(i, k):
            m[..., i, j] = m[..., j, i] = _g(feats[i] * feats[j], window)
    b = np.stack([_g(f * target, window) for f in feats], axis=-1)
    trace = np.trace(m, axis1=-2, axis2=-1)
    ridge = RIDGE_REL * trace / k + RIDGE_ABS
    m += ridge[..., None, None] * np.eye(k)
    coef = np.linalg.solve(m, b[..., None])[..., 0]
    return coef, np.einsum("...i,...i->...", coef, b)


def _sharpen(r: np.ndarray, window: float) -> np.ndarray:
    """G_MAP_SIGMA * r^2 / G_window * r^2 (0 where the window's residual energy is 0)."""
    wide = _g(r * r, window)
    return np.divide(_g(r * r, MAP_SIGMA), wide, out=np.zeros_like(wide), where=wide > 0)


def band_stats(y_out: np.ndarray, y_ref: np.ndarray, sigma: float, window: float = WINDOW_SIGMA) -> BandStats:
    """Local least-squares explanation of the output's band ``sigma`` by the reference's (see module doc)."""
    ob = band(y_out, sigma)
    rb = band(y_ref, sigma)
    feats = _features(rb)
    coef, explained = _local_lsq(ob, feats, window)
    e_out = _g(ob * ob, window)
    e_ref = _g(rb * rb, window)
    explained = np.clip(explained, 0.0, e_out)
    r = ob - sum(coef[..., i] * f for i, f in enumerate(feats))
    return BandStats(out=e_out, ref=e_ref, explained=explained, unexplained=e_out - explained,
                     sharpen=_sharpen(r, window))


def fine_band(y: np.ndarray) -> np.ndarray:
    """The finest band of luma ``y``: y - G_FINE_SIGMA * y (periods 2 to about 5 px), same shape."""
    return y - _g(y, FINE_SIGMA)


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` moved so that result[i, j] = x[i + dy, j + dx] (reflect at the borders; |dy|, |dx| <= 2)."""
    p = np.pad(x, 2, mode="reflect")
    h, w = x.shape
    return p[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]


def predictability(r: np.ndarray, window: float = WINDOW_SIGMA) -> np.ndarray:
    """Share of ``r``'s local energy (Gaussian window) that a linear combination of its symmetric neighbour
    pairs ``r(x + d) + r(x - d)``, d in :data:`PREDICT_OFFSETS`, explains; (H, W) in [0, 1].

    A sinusoid of any period and orientation, a period-2 checkerboard and sums of two such patterns are
    predicted almost exactly (about 1); i.i.d. noise and film grain are not (about 0.2 to 0.9, see the doc).
    """
    q = [_shift(r, dy, dx) + _shift(r, -dy, -dx) for dy, dx in PREDICT_OFFSETS]
    _, explained = _local_lsq(r, q, window)
    return np.clip(explained / np.maximum(_g(r * r, window), 1e-30), 0.0, 1.0)


@dataclass
class FineStats:
    """Local statistics of the finest band (H, W): ``residual`` = energy (luma^2, window :data:`FINE_WINDOW`) of
    the output's finest band minus its local least-squares prediction from the reference's (same four features
    and window as the other bands); ``ref`` = the reference's finest-band energy (same window);
    ``predictability`` = :func:`predictability` of that residual, in [0, 1]; ``sharpen`` = G_MAP_SIGMA * r^2 /
    G_FINE_WINDOW * r^2 of the pointwise residual ``r`` (as :class:`BandStats`)."""

    residual: np.ndarray
    ref: np.ndarray
    predictability: np.ndarray
    sharpen: np.ndarray


def fine_stats(y_out: np.ndarray, y_ref: np.ndarray) -> FineStats:
    """:class:`FineStats` of one (tile of a) pair of lumas."""
    fo, fr = fine_band(y_out), fine_band(y_ref)
    feats = _features(fr)
    coef, _ = _local_lsq(fo, feats, WINDOW_SIGMA)
    r = fo - sum(coef[..., i] * f for i, f in enumerate(feats))
    return FineStats(residual=_g(r * r, FINE_WINDOW), ref=_g(fr * fr, FINE_WINDOW), predictability=predictability(r),
                     sharpen=_sharpen(r, FINE_WINDOW))


def _surround_level(u: np.ndarray, ref: np.ndarray, sr: np.ndarray, srr: np.ndarray) -> np.ndarray:
    """Benign residual level a + b x ref at every pixel, (a, b) >= 0 fitted to ``u`` by least squares in a
    Gaussian window of sigma :data:`SURROUND_SIGMA` (a 2 x 2 system per pixel): a = residual that is there
    whatever the reference (noise, grain), b = residual per unit of reference detail (codecs, resampling).
    ``sr``, ``srr``: the window means of ``ref`` and ``ref**2`` (the window mean of 1 is 1: reflect padding)."""
    su, sru = _g_wide(u, SURROUND_SIGMA), _g_wide(ref * u, SURROUND_SIGMA)
    b = (sru - sr * su) / np.maximum(srr - sr * sr, 1e-30)
    a = su - b * sr
    # the constrained optimum when a or b comes out negative: the other one alone
    b = np.where(a < 0, sru / np.maximum(srr, 1e-30), b)
    a = np.where(a < 0, 0.0, a)
    a = np.where(b < 0, su, a)
    b = np.maximum(b, 0.0)
    return a + b * ref


def fine_channel(st: FineStats) -> np.ndarray:
    """Invented energy of the finest band per pixel (luma^2, >= 0), from whole-image :class:`FineStats`.

    ``d`` = residual - :data:`ABS_FLOOR` - :data:`FINE_TOLERANCE` x reference energy (what the reference's own
    fine detail at the same place does not explain). It counts where it exceeds :data:`SURROUND_FACTOR` x the
    benign level its surround shows at the same reference detail (:func:`_surround_level`, fitted robustly:
    once, then again with the residual clipped at :data:`SURROUND_CLIP` x the first fit), or, wherever it is
    periodic (predictability above :data:`PERIODIC_MIN`), in proportion to how periodic it is. The surround
    only explains residual that is spread like noise or codec error; periodic structure is counted even when it
    covers the whole image.
    """
    u, ref = st.residual, st.ref
    sr, srr = _g_wide(ref, SURROUND_SIGMA), _g_wide(ref * ref, SURROUND_SIGMA)
    first = _surround_level(u, ref, sr, srr)
    level = _surround_level(np.minimum(u, SURROUND_CLIP * first), ref, sr, srr)
    d = np.maximum(u - ABS_FLOOR - FINE_TOLERANCE * ref, 0.0)
    periodic = np.clip((st.predictability - PERIODIC_MIN) / (1.0 - PERIODIC_MIN), 0.0, 1.0)
    return np.maximum(np.maximum(d - SURROUND_FACTOR * level, 0.0), periodic * d)


def _tiles(h: int, w: int, tile: int = TILE, margin: int = MARGIN):  # type: ignore[no-untyped-def]
    """Yield (outer slice, inner slice relative to outer, destination slice) covering an (h, w) image."""
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            oy0, ox0 = max(0, y0 - margin), max(0, x0 - margin)
            oy1, ox1 = min(h, y1 + margin), min(w, x1 + margin)
            yield (
                (slice(oy0, oy1), slice(ox0, ox1)),
                (slice(y0 - oy0, y1 - oy0), slice(x0 - ox0, x1 - ox0)),
                (slice(y0, y1), slice(x0, x1)),
            )


def all_band_stats(y_out: np.ndarray, y_ref: np.ndarray) -> list[BandStats]:
    """:func:`band_stats` for every band of :data:`BAND_SIGMAS`, computed in overlapping tiles (exact but for
    the reflect padding at tile borders inside the image, which the margin keeps out of the result)."""
    if y_out.shape != y_ref.shape:
        raise ValueError(f"output {y_out.shape} and reference {y_ref.shape} differ in size")
    h, w = y_out.shape
    result = []
    for s in BAND_SIGMAS:
        fields = {n: np.empty((h, w)) for n in ("out", "ref", "explained", "unexplained", "sharpen")}
        for outer, inner, dest in _tiles(h, w):
            st = band_stats(y_out[outer], y_ref[outer], s)
            for n in fields:
                fields[n][dest] = getattr(st, n)[inner]
        result.append(BandStats(**fields))
    return result


def all_fine_stats(y_out: np.ndarray, y_ref: np.ndarray) -> FineStats:
    """:func:`fine_stats` of a whole image, computed in the same overlapping tiles as :func:`all_band_stats`."""
    if y_out.shape != y_ref.shape:
        raise ValueError(f"output {y_out.shape} and reference {y_ref.shape} differ in size")
    h, w = y_out.shape
    fields = {n: np.empty((h, w)) for n in ("residual", "ref", "predictability", "sharpen")}
    for outer, inner, dest in _tiles(h, w):
        st = fine_stats(y_out[outer], y_ref[outer])
        for n in fields:
            fields[n][dest] = getattr(st, n)[inner]
    return FineStats(**fields)


@dataclass
class InventedResult:
    """Everything :func:`invented_detail` computes for one output/reference pair.

    ``map``: (H, W) float32 RMS amplitude of invented band-pass detail, luma units (0 = none), after the
    region closing of :func:`region_map`; ``invented_energy`` is the energy before it (what ``invented`` sums).
    ``invented``: invented energy (three bands and the finest) / max(output, reference) energy of the three
    bands, clipped to [0, 1]. ``lost``: reference band energy the output does not reproduce / reference band
    energy, in [0, 1]. ``noise_floor``: per band, luma^2. ``fine_invented``: the finest band's share of
    ``invented``, in [0, 1].
    """

    map: np.ndarray
    invented: float
    lost: float
    invented_energy: np.ndarray
    out_energy: float
    ref_energy: float
    noise_floor: tuple[float, ...]
    fine_invented: float = 0.0


def invented_from_stats(stats: list[BandStats], fine: FineStats | None = None,
                        codec: np.ndarray | None = None) -> InventedResult:
    """Apply the noise floor to per-band statistics, add the finest band's invented energy
    (:func:`fine_channel`, when ``fine`` is given), cap every 8 x 8 block at what a block codec cannot explain
    (:func:`~qa.metrics.invented.functional_codec.codec_cap`, when ``codec`` = the per-block
    :func:`~qa.metrics.invented.functional_codec.codec_excess` is given) and summarise (see
    :class:`InventedResult`)."""
    inv = np.zeros_like(stats[0].out)
    lost = np.zeros_like(stats[0].out)
    floors = []
    for st in stats:
        floor = max(ABS_FLOOR, NOISE_FLOOR_FACTOR * float(np.percentile(st.unexplained, NOISE_FLOOR_PERCENTILE)))
        floors.append(floor)
        inv += np.maximum(st.unexplained - floor - LOCAL_TOLERANCE * st.ref, 0.0) * st.sharpen
        lost += np.maximum(st.ref - st.explained, 0.0)
    inv_fine = fine_channel(fine) * fine.sharpen if fine is not None else np.zeros_like(inv)
    if codec is not None:  # the cap scales a block's total; the finest band keeps its share of it
        total = codec_cap(inv + inv_fine, codec)
        share = np.divide(total, inv + inv_fine, out=np.zeros_like(total), where=(inv + inv_fine) > 0)
        inv, inv_fine = inv * share, inv_fine * share
    inv += inv_fine
    out_e = float(sum(st.out.sum() for st in stats))
    ref_e = float(sum(st.ref.sum() for st in stats))
    denom = max(out_e, ref_e)
    invented = float(min(1.0, inv.sum() / denom)) if denom > 0 else 0.0
    fine_share = float(min(1.0, inv_fine.sum() / denom)) if denom > 0 else 0.0
    lost_frac = float(min(1.0, lost.sum() / ref_e)) if ref_e > 0 else 0.0
    return InventedResult(
        map=region_map(inv),
        invented=invented,
        lost=lost_frac,
        invented_energy=inv,
        out_energy=out_e,
        ref_energy=ref_e,
        noise_floor=tuple(floors),
        fine_invented=fine_share,
    )


def invented_detail(output: np.ndarray, reference: np.ndarray) -> InventedResult:
    """Invented and lost detail of ``output`` against ``reference`` (both (H, W, 3) in [0, 1], same size)."""
    y_out, y_ref = luma(output), luma(reference)
    return invented_from_stats(all_band_stats(y_out, y_ref), all_fine_stats(y_out, y_ref), codec_excess(y_out, y_ref))


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
    hp = y - _g(y, sigma)
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


def latent_nrmse(latent: np.ndarray, reencoded: np.ndarray) -> float:
    """RMS(E(D(z)) - z) / std(z) over all latent elements; 0 = the output re-encodes exactly to its latent."""
    z = np.asarray(latent, np.float64)
    e = np.asarray(reencoded, np.float64)
    if z.shape != e.shape:
        raise ValueError(f"latent {z.shape} and re-encoded latent {e.shape} differ in shape")
    scale = float(z.std())
    if scale == 0.0:
        raise ValueError("latent is constant (std 0): normalised error undefined")
    return float(np.sqrt(np.mean((e - z) ** 2)) / scale)
