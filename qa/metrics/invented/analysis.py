"""The invented-detail analysis as it runs in the product: torch float32, batched over images of one size, on
any device. Same model, constants and outputs as the float64 oracle (:mod:`qa.metrics.invented.oracle`, against
which it is tested); every step runs through :mod:`qa.metrics.invented.dispatch` (compiled kernels on a CPU,
torch elsewhere).

What differs from the oracle is how it is computed: the window statistics live on a coarse grid
(:mod:`qa.metrics.invented.local_fit`), the share's noise floor's percentile is taken over that grid's samples,
the region score's surround noise model of the three coarser bands is fitted on them
(:func:`qa.metrics.invented.surround.coarse_excused`), and each band's excess over the tolerance (and the
surround; a smooth window statistic) is brought back to full resolution by the fitted interpolator before the
floor cuts it, pixel by pixel, as in the oracle; lost detail is a weighted sum over the coarse grid equal to the
sum of its interpolated field. The finest band is :mod:`qa.metrics.invented.fine_band`, the region score
:mod:`qa.metrics.invented.region_score`.

Images are (N, 3, H, W) float32 tensors in [0, 1] (sRGB values); luma is Rec. 601.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qa.metrics.base import MetricInputError
from qa.metrics.invented import dispatch
from qa.metrics.invented.coefficients import INTERP_HALF
from qa.metrics.invented.fine_band import fine_invented
from qa.metrics.invented.local_fit import (
    band_coarse,
    coarse_windows,
    features,
    full_sum,
    inside,
    near_energy,
    place_excess,
    residual,
    to_full,
)
from qa.metrics.invented.model import (
    ABS_FLOOR,
    BAND_SIGMAS,
    CODEC_BLOCK,
    CODEC_FACTOR,
    CODEC_SLACK,
    DISTORTION_SIGMA,
    FINE_SIGMA,
    HF_SIGMA,
    LOCAL_TOLERANCE,
    MIN_SIDE,
    NOISE_FLOOR_FACTOR,
    NOISE_FLOOR_PERCENTILE,
    WINDOW_SIGMA,
    InventedResult,
)
from qa.metrics.invented.region_score import region_score
from qa.metrics.invented.spectral import spectral_score
from qa.metrics.invented.surround import coarse_excused
from qa.metrics.torch_memory import keep_freed_memory


@dataclass
class InventedBatch:
    """The analysis of N output/reference pairs (all tensors on the analysis device).

    ``invented_energy``: (N, H, W) invented band energy per pixel, luma^2 (:meth:`result` adds image i's map,
    ``dispatch.region_map``: the square root of its region closing, luma RMS amplitude). ``invented``/``lost``: (N,) float64 fractions in [0, 1].
    ``out_energy``/``ref_energy``: (N,) summed energies of the three bands (luma^2). ``noise_floor``: (N,
    bands), the share's per-band floor (luma^2). ``fine_invented``: (N,) the finest band's
    share of ``invented``. ``peak``: (N,) float64 region score in [0, inf), the larger of ``region`` (the
    strongest region's reading; ``peak_at``: (N, 2) int64, its centre (y, x)) and ``spectral`` (the spectral
    rule's reading, :mod:`qa.metrics.invented.spectral`); NaN, and ``peak_at`` -1, in a share-only batch
    (``analyse(..., readings=False)``).
    """

    invented_energy: torch.Tensor
    invented: torch.Tensor
    lost: torch.Tensor
    out_energy: torch.Tensor
    ref_energy: torch.Tensor
    noise_floor: torch.Tensor
    fine_invented: torch.Tensor
    peak: torch.Tensor
    peak_at: torch.Tensor
    region: torch.Tensor
    spectral: torch.Tensor
    #: (N, H, W) output minus reference luma: bounds the map pixel by pixel (``dispatch.region_map``); None: no
    #: bound (nothing changed)
    change: torch.Tensor | None = None

    def result(self, i: int) -> InventedResult:
        """Image ``i`` as an :class:`~qa.metrics.invented.model.InventedResult` (numpy, on the CPU)."""
        inv = self.invented_energy[i].detach().cpu().numpy()
        change = None if self.change is None else self.change[i : i + 1]
        return InventedResult(
            map=dispatch.region_map(self.invented_energy[i : i + 1], change)[0].cpu().numpy(),
            invented=float(self.invented[i]),
            lost=float(self.lost[i]),
            invented_energy=inv,
            out_energy=float(self.out_energy[i]),
            ref_energy=float(self.ref_energy[i]),
            noise_floor=tuple(float(v) for v in self.noise_floor[i]),
            fine_invented=float(self.fine_invented[i]),
            peak=float(self.peak[i]),
            peak_at=(int(self.peak_at[i, 0]), int(self.peak_at[i, 1])),
            region=float(self.region[i]),
            spectral=float(self.spectral[i]),
            change=None if change is None else change[0].detach().cpu().numpy(),
        )


def analyse(outputs: torch.Tensor, references: torch.Tensor, readings: bool = True) -> InventedBatch:
    """Invented and lost detail of every output against its reference ((N, 3, H, W), same size, [0, 1]).

    ``readings=False``: the share only (invented energy, ``invented``, ``lost``, energies and floors, each the
    same bits as a whole analysis gives), without the region score's surround field, the spectral rule and the
    strongest region: ``peak``, ``region`` and ``spectral`` are NaN and ``peak_at`` is -1 (never a reading of 0).
    For a pair whose consumers read only the share (the latent split's re-decoded/baseline pair, the
    output/baseline pair of ``invented_detail_baseline``)."""
    if outputs.shape != references.shape or outputs.ndim != 4 or outputs.shape[1] != 3:
        raise ValueError(f"analyse: outputs {tuple(outputs.shape)} and references {tuple(references.shape)} must "
                         "both be (N, 3, H, W)")
    if min(outputs.shape[2:]) < MIN_SIDE:
        h, w = outputs.shape[2:]
        raise MetricInputError(f"invented-detail analysis: the images are {w}x{h} px; it needs both sides >= "
                               f"{MIN_SIDE} px (its derivative features take two samples per axis)",
                               "score images of at least 2 x 2 px")
    with dispatch.threads_for(outputs):
        return _analyse(outputs, references, readings)


def _analyse(outputs: torch.Tensor, references: torch.Tensor, readings: bool = True) -> InventedBatch:
    keep_freed_memory()
    n, _, h, w = outputs.shape
    ys = torch.empty((2 * n, h, w), dtype=torch.float32, device=outputs.device)  # outputs' luma, references'
    dispatch.luma_into(outputs, ys[:n])
    dispatch.luma_into(references, ys[n:])
    sigmas = sorted({FINE_SIGMA} | {s for b in BAND_SIGMAS for s in (b, 2.0 * b)})
    low = {s: dispatch.blur2d(ys, s) for s in sigmas}
    inv: torch.Tensor | None = None
    lost = torch.zeros(n, dtype=torch.float64, device=ys.device)
    out_sum = torch.zeros_like(lost)
    ref_sum = torch.zeros_like(lost)
    floors = []
    local: torch.Tensor | None = None  # the region score's invented energy (the surround noise model)
    ref_coarse: torch.Tensor | None = None  # the three bands' reference energies, summed on the coarse grid
    abs_floor = torch.full((n,), ABS_FLOOR, dtype=torch.float64, device=ys.device)
    for s in BAND_SIGMAS:
        bands, energy = dispatch.band(low[s], low[2.0 * s])  # energy: (2N,) summed squares, outputs then references
        ob, rb = bands[:n], bands[n:]
        feats = features(rb)
        st = band_coarse(ob, rb, feats)
        # the share's floor: a percentile of the unexplained energy over the image (the coarse grid's samples)
        flat = inside(st.unexplained, h, w).reshape(n, -1)
        floor = (NOISE_FLOOR_FACTOR * dispatch.percentile(flat, NOISE_FLOOR_PERCENTILE).double()).clamp_min(ABS_FLOOR)
        floors.append(floor)
        # the region score's: SURROUND_FACTOR x the surround's benign level a + b R
        excused = coarse_excused(st.unexplained, st.ref, h, w) if readings else None
        if readings:
            ref_coarse = st.ref.clone() if ref_coarse is None else ref_coarse.add_(st.ref)
        # the excess over the tolerance (and the surround) is smooth (a window statistic): interpolated, then cut
        # at the floor, placed where the fit's pointwise residual lies: G_1(r^2) / G_4(r^2), the window's one
        # smooth (coarse)
        r = residual(ob, feats, st.coef)
        del feats
        wide = coarse_windows([r], [(0, 0)], WINDOW_SIGMA)[0]
        near = near_energy(r)
        over = st.unexplained - LOCAL_TOLERANCE * st.ref
        inv = place_excess(over, floor, near, wide, inv)
        if excused is not None:
            local = place_excess(over.sub_(excused), abs_floor, near, wide, local)
        del near, wide, over, excused
        lost += full_sum((st.ref - st.explained).clamp_min(0.0), h, w, WINDOW_SIGMA)
        out_sum += energy[:n].to(out_sum.device)
        ref_sum += energy[n:].to(ref_sum.device)
    assert inv is not None  # BAND_SIGMAS is not empty
    finest = dispatch.sub(ys, low[FINE_SIGMA])  # the finest band y - G_0.8(y), outputs then references
    fine, fine_ref, fine_residual = fine_invented(finest[:n], finest[n:])
    spectral = spectral_score(fine_residual, finest[n:]) if readings else None
    del fine_residual
    # the codec cap scales every whole 8 x 8 block's total; the finest band keeps its share of it (the first
    # field's scale: the share's, so its total is the same with or without the region score's field)
    fields = [inv, local] if local is not None else [inv]
    capped = dispatch.codec_caps(ys[:n], ys[n:], fields, fine, CODEC_BLOCK, CODEC_SLACK, CODEC_FACTOR)
    inv_full = capped[0]
    fine_sum, inv_sum = dispatch.plane_sums(fine), dispatch.plane_sums(inv_full)
    denom = torch.maximum(out_sum, ref_sum)
    zero = torch.zeros_like(denom)
    invented = torch.where(denom > 0, (inv_sum / denom.clamp_min(1e-300)).clamp_max(1.0), zero)
    lost_frac = torch.where(ref_sum > 0, (lost / ref_sum.clamp_min(1e-300)).clamp_max(1.0), zero)
    fine_share = torch.where(denom > 0, (fine_sum / denom.clamp_min(1e-300)).clamp_max(1.0), zero)
    if not readings:  # the share only: no reading was made
        unread = torch.full_like(denom, float("nan"))
        return InventedBatch(inv_full, invented, lost_frac, out_sum, ref_sum, torch.stack(floors, 1), fine_share,
                             unread, torch.full((n, 2), -1, dtype=torch.int64, device=denom.device), unread.clone(),
                             unread.clone(), dispatch.sub(ys[:n], ys[n:]))
    assert ref_coarse is not None and spectral is not None  # made with the readings
    region, peak_at = region_score(capped[1], fine_ref.add_(to_full(ref_coarse, h, w, WINDOW_SIGMA)))
    region, spectral = region.to(zero.device), spectral.to(zero.device)
    return InventedBatch(inv_full, invented, lost_frac, out_sum, ref_sum, torch.stack(floors, 1), fine_share,
                         torch.maximum(region, spectral), peak_at, region, spectral, dispatch.sub(ys[:n], ys[n:]))


def analyse_identical(images: torch.Tensor, energy: torch.Tensor | None = None) -> InventedBatch:
    """:func:`analyse` of pairs whose output and reference are the same pixels ((N, 3, H, W), [0, 1]): nothing
    is invented or lost, so no fit runs. The energies are the three bands' (as :func:`analyse` sums them; given
    as ``energy`` (N,) float64 when an analysis of the same images already summed them, then nothing is
    filtered) and the floors the absolute floor (:func:`analyse` on equal images: invented and peak 0, lost
    about 1e-6 from the ridge, floors ``ABS_FLOOR``). Used for a decoder whose baseline is itself (output vs
    baseline)."""
    n, _, h, w = images.shape
    dev = images.device
    if energy is None:
        ys = dispatch.luma(images.float())
        energy = torch.zeros(n, dtype=torch.float64, device=dev)
        for s in BAND_SIGMAS:
            band = dispatch.blur2d(ys, s) - dispatch.blur2d(ys, 2.0 * s)
            energy += band.square().sum(dim=(1, 2), dtype=torch.float64)
    energy = energy.to(device=dev, dtype=torch.float64)
    zero = torch.zeros_like(energy)
    floors = torch.full((n, len(BAND_SIGMAS)), ABS_FLOOR, dtype=torch.float64, device=dev)
    return InventedBatch(torch.zeros((n, h, w), dtype=torch.float32, device=dev), zero, zero.clone(), energy,
                         energy.clone(), floors, zero.clone(), zero.clone(),
                         torch.zeros((n, 2), dtype=torch.int64, device=dev), zero.clone(), zero.clone())


def distortion(outputs: torch.Tensor, references: torch.Tensor, sigma: float = DISTORTION_SIGMA) -> torch.Tensor:
    """(N,) float64 RMS RGB difference of the Gaussian low-passes (sigma px) of outputs and references, [0, 1]."""
    h, w = outputs.shape[-2:]
    e = INTERP_HALF
    coarse = dispatch.blur_w(dispatch.blur_h(outputs.float() - references.float(), sigma, 2, e), sigma, 2, e)
    low = dispatch.upsample_w(dispatch.upsample_h(coarse, h, 2, sigma, e), w, 2, sigma, e)
    return low.square().mean(dim=(1, 2, 3), dtype=torch.float64).sqrt()


def hf_energy(images: torch.Tensor, sigma: float = HF_SIGMA) -> torch.Tensor:
    """(N,) float64 mean squared high-pass luma ``mean((Y - G_sigma * Y)^2)``, luma^2 units."""
    y = dispatch.luma(images.float())
    hp = y - dispatch.blur2d(y, sigma)
    return hp.square().mean(dim=(1, 2), dtype=torch.float64)


def seed_std(outputs: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """(H, W) population std of luma over S seed outputs: an (S, 3, H, W) batch or a list of S (1, 3, H, W)
    images (no stacked copy); exactly 0 for identical outputs.

    Deviations from the first seed's luma (so equal outputs give exactly 0), their mean and the mean squared
    deviation from it, one seed at a time (a reduction over a short leading axis is slow in torch on the CPU)."""
    s = len(outputs)
    if s < 2:
        raise ValueError(f"seed variance needs at least 2 outputs, got {s}")
    keep_freed_memory()

    def y(i: int) -> torch.Tensor:
        img = outputs[i] if isinstance(outputs, list) else outputs[i : i + 1]
        return dispatch.luma(img.float())[0]

    first = y(0)
    devs = [y(i) - first for i in range(1, s)]
    mean = torch.zeros_like(first)
    for d in devs:
        mean += d
    mean /= s
    var = mean.square()  # seed 0's deviation (0) minus the mean, squared
    for d in devs:
        var += (d - mean).square()
    return var.div_(s).sqrt_()
