"""The invented-detail metric classes: what the registry names and the engine scores.

Per image, with a reference: ``invented_detail`` (+ map), ``invented_peak`` (its strongest region), ``lost_detail``, ``distortion``, ``hf_energy_ratio``;
with a baseline decode: ``hf_energy_ratio_baseline``; with the latent and an encoder: ``latent_consistency``;
with all of reference, baseline and ``redecoded``: ``invented_consistent`` / ``invented_contradicting`` (they
sum to ``invented_detail``). Per case, across seeds: ``seed_variance`` (+ map). Definitions and the validation
are in ``docs/hallucination.md``.

Every metric here runs the torch analysis (:mod:`qa.metrics.invented.analysis`) on its ``device``; the engine
calls ``prepare(samples)`` first, so each pair is analysed once, batched per image size, and shared by every
metric that needs it (:mod:`qa.metrics.invented.cache`).
"""

from __future__ import annotations

import numpy as np
import torch

from qa.metrics.base import (
    ImageMetric,
    ImageSample,
    MetricInputError,
    MetricValue,
    NotApplicable,
    all_finite,
    same_pixels,
)
from qa.metrics.batching import sample_pairs
from qa.metrics.invented import dispatch
from qa.metrics.invented.analysis import seed_std
from qa.metrics.invented.cache import CACHE, OnDevice, to_batch
from qa.metrics.invented.model import METHOD_VERSION, InventedResult

#: map value (luma RMS amplitude of invented detail) shown as full white in map PNGs; fixed across images
MAP_FULL_SCALE = 0.05

def _checked(name: str, label: str, img: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise MetricInputError(f"{name}: {label} must be an (H, W, 3) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise MetricInputError(
            f"{name}: {label} is {arr.shape[1]}x{arr.shape[0]} but the output is {shape[1]}x{shape[0]}",
            "compare images of the same size (qa resizes nothing silently)",
        )
    if not all_finite(arr):
        raise MetricInputError(f"{name}: {label} contains NaN or Inf values")
    return arr


def _reference(metric: ImageMetric, sample: ImageSample) -> tuple[np.ndarray, np.ndarray]:
    reason = metric.missing_needs(sample)
    if reason is not None:
        raise NotApplicable(reason)
    if sample.reference is None:  # unreachable after missing_needs; keeps the type checker informed
        raise NotApplicable("not applicable: needs reference")
    out = _checked(metric.name, "output", sample.output)
    return out, _checked(metric.name, "reference", sample.reference, out.shape)


def invented_result(output: np.ndarray, reference: np.ndarray, device: str = "cpu") -> InventedResult:
    """The invented-detail analysis of one pair (torch, on ``device``), shared by every metric that needs it
    (keyed by a hash of the pixels, so a changed array is never served a stale result; see
    :mod:`qa.metrics.invented.cache`)."""
    return CACHE.invented(output, reference, device)


class InventedDetail(OnDevice):
    """Fraction of band-pass luma energy that the output has and the reference does not explain, in [0, 1].

    Normalised by max(output, reference) band energy. ``map``: RMS amplitude of invented detail per pixel (luma
    units, 0 = none; PNG maps show ``MAP_FULL_SCALE`` as white), grey-closed so that gaps of up to 8 px between
    invented structures read as one region (:func:`~qa.metrics.invented.dispatch.region_map`). Blur, colour and tone shifts, JPEG, resampling,
    sub-pixel shifts and i.i.d. noise score near 0 (see ``docs/hallucination.md`` for the measured separation).
    """

    name = "invented_detail"
    version = METHOD_VERSION
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("reference",)
    unit = "fraction of band energy"
    description = "band-pass energy in the output that no local gain/shift/blur of the reference explains"
    analyses = (("output", "reference"),)

    def compute(self, sample: ImageSample) -> MetricValue:
        out, ref = _reference(self, sample)
        res = invented_result(out, ref, self.device)
        extra = {f"noise_floor_band{i}": f for i, f in enumerate(res.noise_floor)}
        extra["map_max"] = float(res.map.max())
        extra["fine_invented"] = res.fine_invented
        extra["peak"] = res.peak
        return MetricValue(res.invented, map=res.map, extra=extra)


class InventedPeak(OnDevice):
    """How strong the strongest invented structure of the image is, in [0, inf), lower is better: the larger of
    two readings of RMS invented luma amplitude relative to what masks it.

    - the strongest region: invented detail averaged over a fixed-size Gaussian region (sigma 8 px, about
      28 x 28 px: a word, a logo, a small object) relative to the RMS of the reference's detail there plus
      4/255, at the image's strongest region;
    - the spectral reading: narrowband structure of the finest band (periods 2 to about 5 px: gratings,
      checkerboards, moire) that the reference does not have, in the median 32-px window, relative to the
      reference's fine detail there plus 1/255 (one grey level: a periodic pattern over most of the image).

    0 = nothing invented; about 1 = invention as strong as the detail around it (or, on flat ground, a region of
    about 4/255, or a pattern of about 1/255 RMS over most of the image). Unlike ``invented_detail`` (a share of
    the whole image's detail energy) it does not shrink with the area of what was invented: a word or an object
    in one corner scores as it would in a small crop. It reads the same analysis as ``invented_detail``;
    ``extra`` holds the strongest region's centre (``peak_y``, ``peak_x``, pixels; where that region's reading
    is above 0), where the engine puts the first crop of the map. The release gate's worst-images rule reads it
    (``suites/README.md``).
    """

    name = "invented_peak"
    version = METHOD_VERSION
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = ("reference",)
    unit = "RMS invented / (RMS reference detail + floor): strongest 8-px region, or narrowband over the image"
    description = "strength of the strongest invented region against the reference detail that masks it there"
    analyses = (("output", "reference"),)

    def compute(self, sample: ImageSample) -> MetricValue:
        out, ref = _reference(self, sample)
        res = invented_result(out, ref, self.device)
        # the strongest region's centre, where its reading found invention (the engine's first crop goes there)
        where = {"peak_y": float(res.peak_at[0]), "peak_x": float(res.peak_at[1])} if res.region > 0 else {}
        return MetricValue(res.peak, extra=where)


class InventedDetailBaseline(OnDevice):
    """:class:`InventedDetail` with the decoder's baseline in the reference's place: the fraction of band-pass
    luma energy the output has that its baseline does not explain, in [0, 1], with the per-pixel map.

    On the generate track the baseline is the source pipeline's image for the same prompt and seed, so this is
    *where and how much detail a transferred model (l2p) invents beyond its source*, with no reference image
    needed; on the upscale track it is what the generative decoder adds to the plain decode of the same latent.
    """

    name = "invented_detail_baseline"
    version = METHOD_VERSION
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("baseline",)
    unit = "fraction of band energy"
    description = "band-pass energy in the output that no local gain/shift/blur of the baseline explains"
    shares = (("output", "baseline"),)

    def compute(self, sample: ImageSample) -> MetricValue:
        reason = self.missing_needs(sample)
        if reason is not None or sample.baseline is None:
            raise NotApplicable(reason or "not applicable: needs baseline")
        out = _checked(self.name, "output", sample.output)
        res = CACHE.invented_share(out, _checked(self.name, "baseline", sample.baseline, out.shape), self.device)
        return MetricValue(res.invented, map=res.map, extra={"map_max": float(res.map.max()), "lost": res.lost})


class LostDetail(OnDevice):
    """Fraction of the reference's band-pass luma energy the output does not reproduce, in [0, 1] (blur)."""

    name = "lost_detail"
    version = "1"
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("reference",)
    unit = "fraction of band energy"
    description = "reference detail missing from the output (blur, smoothing)"
    analyses = (("output", "reference"),)

    def compute(self, sample: ImageSample) -> MetricValue:
        out, ref = _reference(self, sample)
        return MetricValue(invented_result(out, ref, self.device).lost)


class Distortion(OnDevice):
    """RMS RGB difference of Gaussian low-passes (sigma 4 px) of output and reference, in [0, 1]: colour and
    tone error, blind to fine detail."""

    name = "distortion"
    version = "1"
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("reference",)
    unit = "RGB RMS, [0,1] units"
    description = "colour/tone error on the low-pass (sigma 4 px)"

    def compute(self, sample: ImageSample) -> MetricValue:
        out, ref = _reference(self, sample)
        return MetricValue(CACHE.distortion(out, ref, self.device))

    def prepare(self, samples: list[ImageSample]) -> None:
        """Batch the low-pass differences of every valid (output, reference) pair."""
        CACHE.prefill(samples, (), self.device, distortion=list(sample_pairs(samples, "output", "reference")))


def _ratio(num: float, den: float, what: str) -> float:
    if den <= 1e-12:  # luma^2; 8-bit quantisation noise alone is ~1e-6
        raise NotApplicable(f"not applicable: the {what} has no high-frequency energy (flat image)")
    return num / den


class HFEnergyRatio(OnDevice):
    """High-frequency luma energy of the output / the reference's (high-pass: Y - G_1px * Y). 1 = as much fine
    detail as the reference; above 1: more (possibly invented); below: less (blur). Range [0, inf)."""

    name = "hf_energy_ratio"
    version = "1"
    higher_is_better = False
    target = 1.0  # as much fine detail as the reference; a blur (0.05) is as far off as invented texture
    value_range = (0.0, float("inf"))
    needs = ("reference",)
    unit = "ratio"
    description = "output high-frequency energy / reference high-frequency energy"

    def compute(self, sample: ImageSample) -> MetricValue:
        out, ref = _reference(self, sample)
        return MetricValue(_ratio(CACHE.hf_energy(out, self.device), CACHE.hf_energy(ref, self.device), "reference"))

    def prepare(self, samples: list[ImageSample]) -> None:
        """Batch the HF energies of every valid output and reference."""
        CACHE.prefill(samples, (), self.device, hf=[a for p in sample_pairs(samples, "output", "reference") for a in p])


class HFEnergyRatioBaseline(OnDevice):
    """High-frequency luma energy of the output / that of the baseline decode of the same latent (e.g. PiD
    against its VAE decode: "54x the VAE's high-frequency energy"). Range [0, inf)."""

    name = "hf_energy_ratio_baseline"
    version = "1"
    higher_is_better = False
    target = "none"  # a generative decoder is meant to add detail to its baseline: a description, not a verdict
    value_range = (0.0, float("inf"))
    needs = ("baseline",)
    unit = "ratio"
    description = "output high-frequency energy / baseline decode's high-frequency energy"

    def compute(self, sample: ImageSample) -> MetricValue:
        reason = self.missing_needs(sample)
        if reason is not None or sample.baseline is None:
            raise NotApplicable(reason or "not applicable: needs baseline")
        out = _checked(self.name, "output", sample.output)
        base = _checked(self.name, "baseline", sample.baseline, out.shape)
        hf = CACHE.hf_energy
        return MetricValue(_ratio(hf(out, self.device), hf(base, self.device), "baseline decode"))

    def prepare(self, samples: list[ImageSample]) -> None:
        """Batch the HF energies of every valid output and baseline."""
        CACHE.prefill(samples, (), self.device, hf=[a for p in sample_pairs(samples, "output", "baseline") for a in p])


def latent_nrmse(latent: np.ndarray, reencoded: np.ndarray, device: str = "cpu") -> float:
    """RMS(E(D(z)) - z) / std(z) over all latent elements (float64; numpy on a CPU, torch on another
    ``device``); 0 = the output re-encodes exactly to its latent."""
    if np.shape(latent) != np.shape(reencoded):
        raise ValueError(f"latent {np.shape(latent)} and re-encoded latent {np.shape(reencoded)} differ in shape")
    if torch.device(device).type == "cpu":
        z = np.asarray(latent, np.float64)
        e = np.asarray(reencoded, np.float64)
        scale, rms = float(z.std()), float(np.sqrt(np.mean((e - z) ** 2)))
    else:
        zt = torch.as_tensor(np.asarray(latent), device=device).double()
        et = torch.as_tensor(np.asarray(reencoded), device=device).double()
        scale, rms = float(zt.std(correction=0)), float((et - zt).square().mean().sqrt())
    if scale == 0.0:
        raise ValueError("latent is constant (std 0): normalised error undefined")
    return rms / scale


class LatentConsistency(OnDevice):
    """Normalised RMSE between the re-encoded output E(D(z)) and the latent z: RMS(E(D(z)) - z) / std(z).
    0 = the output re-encodes exactly to its latent. Range [0, inf)."""

    name = "latent_consistency"
    version = "1"
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = ("latent", "encoder")
    unit = "RMS / std(z)"
    description = "re-encoding error of the output against the latent it was decoded from"

    def compute(self, sample: ImageSample) -> MetricValue:
        reason = self.missing_needs(sample)
        if reason is not None or sample.latent is None or sample.reencoded is None:
            raise NotApplicable(reason or "not applicable: needs latent and encoder")
        try:
            return MetricValue(latent_nrmse(sample.latent, sample.reencoded, self.device))
        except ValueError as exc:
            raise MetricInputError(f"{self.name}: {exc}") from exc


def split_invented(sample: ImageSample, name: str, device: str = "cpu") -> tuple[InventedResult, np.ndarray]:
    """Invented-detail result and the per-pixel contradicting invented energy (luma^2).

    The output's invention that moves the latent shows in ``redecoded`` = D(E(output)) against ``baseline`` =
    D(z): its unexplained band energy there, ``c(x)``. At each pixel the contradicting part of the invented
    energy ``i(x)`` is ``min(i(x), c(x))``; the rest re-encodes to the same latent (consistent).
    """
    if sample.reference is None:
        raise NotApplicable(f"not applicable: needs reference{f' ({sample.reference_note})' if sample.reference_note else ''}")
    if sample.baseline is None or sample.redecoded is None:
        raise NotApplicable(
            "not applicable: needs baseline and redecoded (the output re-encoded and decoded by the baseline "
            "decoder); available for decoders with an encoder and a baseline, or qa score --encoder area-xN"
        )
    out = _checked(name, "output", sample.output)
    ref = _checked(name, "reference", sample.reference, out.shape)
    base = _checked(name, "baseline", sample.baseline, out.shape)
    red = _checked(name, "redecoded", sample.redecoded, out.shape)
    res = invented_result(out, ref, device)
    contra = CACHE.invented_share(red, base, device)
    return res, np.minimum(res.invented_energy, contra.invented_energy)


def _denominator(res: InventedResult) -> float:
    return max(res.out_energy, res.ref_energy)


def _region_map(energy: np.ndarray, res: InventedResult) -> np.ndarray:
    """The map of an (H, W) float32 invented-energy field, a part of ``res``'s, as the analysis makes its own (on
    the CPU; bounded by ``res``'s change)."""
    change = None if res.change is None else torch.from_numpy(np.ascontiguousarray(res.change))[None]
    return dispatch.region_map(torch.from_numpy(np.ascontiguousarray(energy))[None], change)[0].numpy()


class InventedContradicting(OnDevice):
    """The part of ``invented_detail`` that moves the latent (an error: the latent says otherwise), in [0, 1].
    ``map``: its RMS amplitude per pixel (luma units)."""

    name = "invented_contradicting"
    version = METHOD_VERSION
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("reference", "baseline")
    unit = "fraction of band energy"
    description = "invented detail that re-encodes to a different latent"
    analyses = (("output", "reference"),)
    shares = (("redecoded", "baseline"),)

    def compute(self, sample: ImageSample) -> MetricValue:
        res, contra = split_invented(sample, self.name, self.device)
        den = _denominator(res)
        return MetricValue(float(contra.sum(dtype=np.float64) / den) if den > 0 else 0.0, map=_region_map(contra, res))


class InventedConsistent(OnDevice):
    """The part of ``invented_detail`` that re-encodes to the same latent (invisible to the latent: plausible,
    unverifiable), in [0, 1]; ``invented_consistent + invented_contradicting = invented_detail``."""

    name = "invented_consistent"
    version = METHOD_VERSION
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = ("reference", "baseline")
    unit = "fraction of band energy"
    description = "invented detail that re-encodes to the same latent"
    analyses = (("output", "reference"),)
    shares = (("redecoded", "baseline"),)

    def compute(self, sample: ImageSample) -> MetricValue:
        res, contra = split_invented(sample, self.name, self.device)
        cons = np.maximum(res.invented_energy - contra, 0.0)
        den = _denominator(res)
        return MetricValue(float(cons.sum(dtype=np.float64) / den) if den > 0 else 0.0, map=_region_map(cons, res))


class SeedVariance(OnDevice):
    """Per-pixel standard deviation of luma across seeds (population std), map (H, W) in [0, 0.5]; value = its
    mean. 0 for a deterministic decoder. Needs no reference."""

    name = "seed_variance"
    version = "1"
    higher_is_better = False
    target = "none"  # 0 = the seed is ignored, large = guessing: neither way is better; policies set bounds
    value_range = (0.0, 0.5)
    level = "case"
    needs = ("seeds",)
    unit = "luma std, [0,1] units"
    description = "where a stochastic decoder is guessing: per-pixel std over seeds"

    def compute(self, sample: ImageSample) -> MetricValue:
        reason = self.missing_needs(sample)
        if reason is not None:
            raise NotApplicable(reason + " (at least 2 seeds)")
        outs = [_checked(self.name, f"seed output {i}", o) for i, o in enumerate(sample.seed_outputs)]
        shapes = {o.shape for o in outs}
        if len(shapes) != 1:
            raise MetricInputError(f"{self.name}: seed outputs differ in shape: {sorted(shapes)}")
        if all(same_pixels(outs[0], o) for o in outs[1:]):  # a deterministic decoder: exactly 0 (as seed_std)
            std = np.zeros(shapes.pop()[:2], np.float32)
        else:
            std = seed_std([to_batch([o], torch.device(self.device)) for o in outs]).cpu().numpy()
        return MetricValue(float(std.mean()), map=std, extra={"max": float(std.max()), "n_seeds": len(outs)})
