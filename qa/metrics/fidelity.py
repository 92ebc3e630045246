"""Full-reference fidelity metrics (need a reference of the output's size): PSNR, SSIM variants, MS-SSIM.

Thin classes over :mod:`qa.metrics.functional.fidelity` (the definitions, float64 numpy) and
:mod:`qa.metrics.functional.fidelity_torch` (the same in torch on the run's device: every metric here but PSNR on
a CPU, which numpy does faster, runs there). A pair of identical images is not filtered: its SSIMs are exactly 1
(every formula here gives 1 on equal planes) and its PSNR +inf.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as tf

from qa.metrics.base import (
    ImageMetric,
    ImageSample,
    MetricInputError,
    MetricValue,
    NotApplicable,
    paired,
    same_pixels,
)
from qa.metrics.batching import batches_on, sample_pairs
from qa.metrics.functional import fidelity as F
from qa.metrics.functional import fidelity_torch as T


class OnDeviceFidelity(ImageMetric):
    """A fidelity metric with a torch ``device`` whose ``prepare`` shares per-image planes across the samples'
    pairs (:func:`qa.metrics.functional.fidelity_torch.planes_of`) and, on a device that batches
    (:func:`qa.metrics.batching.batches_on`: not a CPU), computes the value of every pair it will be asked for
    in one torch call per image size (:func:`~qa.metrics.functional.fidelity_torch.prefill`)."""

    #: what ``prepare`` batches: the kind of value (see ``fidelity_torch.prefill``) and the sample fields it
    #: compares; None: nothing
    batched: tuple[str, tuple[str, str]] | None = None
    #: the smallest image side the kind's window needs (smaller pairs are left to ``compute``'s error)
    min_side = 1

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def prepare(self, samples: list[ImageSample]) -> None:
        """Start sharing the images' planes among the metrics scoring ``samples``; batch their pairs where the
        device batches (valid pairs of different pixels only: ``compute`` answers or rejects the others)."""
        T.enter_scope(samples)
        if self.batched is None or not batches_on(self.device):
            return
        kind, (first, second) = self.batched
        pairs = [(a, b) for a, b in sample_pairs(samples, first, second)
                 if min(a.shape[:2]) >= self.min_side and not same_pixels(a, b)]
        T.prefill(kind, pairs, self.device)


def psnr_on(device: str, out: np.ndarray, other: np.ndarray) -> float:
    """PSNR (dB, RGB, range 1) of a checked pair: numpy on a CPU (faster there), torch on another device."""
    if torch.device(device).type == "cpu":
        return F.psnr(out, other, data_range=1.0)
    F.check_pair(out, other, "psnr")
    with torch.inference_mode():
        return T.psnr_torch(T.planes_of(out, device), T.planes_of(other, device))


def ssim_on(device: str, name: str, out: np.ndarray, other: np.ndarray, with_map: bool) -> MetricValue:
    """The MATLAB SSIM of a pair (torch on ``device``) and, when asked, its dissimilarity map ``1 - SSIM``
    clipped to [0, 2] at the output's resolution (the valid region edge-padded back to (H, W))."""
    F.check_pair(out, other, name)
    if min(out.shape[:2]) < F.MS_SSIM_WINDOW:
        raise MetricInputError(f"{name}: image {out.shape[:2]} is smaller than the {F.MS_SSIM_WINDOW}x{F.MS_SSIM_WINDOW} "
                               "window")
    if same_pixels(out, other):
        return MetricValue(1.0, map=np.zeros(out.shape[:2], np.float32) if with_map else None)
    with torch.inference_mode():
        value, smap = T.ssim_gray(T.planes_of(out, device), T.planes_of(other, device), want_map=with_map)
        dmap = None
        if smap is not None:
            full = tf.pad(smap[None, None], (5, 5, 5, 5), mode="replicate")[0, 0]
            dmap = torch.clamp(1.0 - full, 0.0, 2.0).cpu().numpy()
    return MetricValue(value, map=dmap)


class PSNR(OnDeviceFidelity):
    """Peak signal-to-noise ratio over RGB, data range 1 for [0, 1] images (= range 255 on uint8).

    Identical images give ``+inf`` (stored as a DuckDB double infinity; reports should show it as "identical").
    Averaged over seeds and sets in noise power (:mod:`qa.averaging`): the PSNR of the mean squared error.
    """

    name = "psnr"
    version = "1"
    higher_is_better = True
    value_range = (0.0, float("inf"))
    needs = ("reference",)
    unit = "dB"
    description = "PSNR over RGB, data range 1 ([0,1] floats); +inf when identical; set mean: PSNR of the mean MSE"
    averaged = "noise_power"
    batched = ("psnr", ("output", "reference"))

    def compute(self, sample: ImageSample) -> MetricValue:
        """PSNR of ``sample.output`` against ``sample.reference`` in dB."""
        out, ref = paired(self, sample)
        return MetricValue(psnr_on(self.device, out, ref))


class SSIM(OnDeviceFidelity):
    """SSIM as papers and MATLAB report it: uint8 rgb2gray luma, Gaussian 11x11 sigma 1.5, population covariance.

    ``map``: 1 - SSIM (clipped to [0, 2]; dissimilarity, 0 = identical) at the output's resolution (the valid
    region is edge-padded back to (H, W)).
    """

    name = "ssim"
    version = "1"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = ("reference",)
    unit = ""
    description = "SSIM (Wang et al.; MATLAB rgb2gray on uint8, Gaussian sigma 1.5 window, population cov.)"
    batched: tuple[str, tuple[str, str]] | None = ("ssim", ("output", "reference"))
    min_side = F.MS_SSIM_WINDOW  # the MATLAB SSIM's Gaussian window (the taps MS-SSIM uses too)

    #: whether the value comes with its dissimilarity map
    with_map = True

    def __init__(self, downsample: bool = False, device: str = "cpu") -> None:
        super().__init__(device)
        self.downsample = downsample
        if downsample:  # the 2009 variant runs in numpy, a pair at a time
            self.batched = None

    def compute(self, sample: ImageSample) -> MetricValue:
        """Mean SSIM plus the dissimilarity map (the 2009 downsampling variant: numpy, no map)."""
        out, ref = paired(self, sample)
        if self.downsample:
            return MetricValue(float(np.mean(F.ssim_map(out, ref, downsample=True))))
        return ssim_on(self.device, self.name, out, ref, with_map=self.with_map)


class SSIMSkimage(OnDeviceFidelity):
    """scikit-image's default SSIM (7x7 uniform window, sample covariance, per RGB channel), data range 1."""

    name = "ssim_skimage"
    version = "1"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = ("reference",)
    unit = ""
    description = "SSIM as skimage.metrics.structural_similarity defaults (7x7 uniform, ddof 1, RGB mean)"
    batched = ("ssim_skimage", ("output", "reference"))
    min_side = T.SKIMAGE_WIN

    def compute(self, sample: ImageSample) -> MetricValue:
        """Mean SSIM over RGB channels."""
        out, ref = paired(self, sample)
        F.check_pair(out, ref, "ssim_skimage")
        if min(out.shape[:2]) < T.SKIMAGE_WIN:
            raise MetricInputError(f"ssim_skimage: image {out.shape} is smaller than the {T.SKIMAGE_WIN}-pixel window")
        if same_pixels(out, ref):
            return MetricValue(1.0)
        with torch.inference_mode():
            return MetricValue(T.ssim_skimage_value(T.planes_of(out, self.device), T.planes_of(ref, self.device)))


class MSSSIM(OnDeviceFidelity):
    """Multi-scale SSIM (Wang 2003), 5 scales on RGB, data range 1. Images need both sides >= 176 pixels
    (``MS_SSIM_MIN_SIDE``: the window fits the coarsest scale)."""

    name = "ms_ssim"
    version = "1"
    higher_is_better = True
    value_range = (0.0, 1.0)
    needs = ("reference",)
    unit = ""
    description = "MS-SSIM, 5 scales, Gaussian sigma 1.5, RGB mean; needs sides >= 176 px"
    batched = ("ms_ssim", ("output", "reference"))
    min_side = F.MS_SSIM_MIN_SIDE

    def compute(self, sample: ImageSample) -> MetricValue:
        """MS-SSIM (torch float32 on the run's device; within about 1e-6 of the float64
        :func:`qa.metrics.functional.fidelity.ms_ssim`); :class:`NotApplicable` for images too small for 5 scales."""
        out, ref = paired(self, sample)
        if min(out.shape[:2]) < F.MS_SSIM_MIN_SIDE:
            raise NotApplicable(f"not applicable: ms_ssim needs both sides >= {F.MS_SSIM_MIN_SIDE} px, image is "
                                f"{out.shape[:2]}")
        F.check_ms_ssim_pair(out, ref)
        if same_pixels(out, ref):
            return MetricValue(1.0)
        with torch.inference_mode():
            return MetricValue(T.ms_ssim_planes(T.planes_of(out, self.device), T.planes_of(ref, self.device)))
