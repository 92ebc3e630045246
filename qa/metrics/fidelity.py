"""Full-reference fidelity metrics (need a reference of the output's size): PSNR, SSIM variants, MS-SSIM.

Thin classes over :mod:`qa.metrics.functional.fidelity`; see there for the exact definitions.
"""

from __future__ import annotations

import numpy as np

from qa.metrics.base import ImageMetric, ImageSample, MetricValue, NotApplicable, paired
from qa.metrics.functional import fidelity as F
from qa.metrics.functional.fidelity_torch import ms_ssim_torch


class PSNR(ImageMetric):
    """Peak signal-to-noise ratio over RGB, data range 1 for [0, 1] images (= range 255 on uint8).

    Identical images give ``+inf`` (stored as a DuckDB double infinity; reports should show it as "identical").
    """

    name = "psnr"
    version = "1"
    higher_is_better = True
    value_range = (0.0, float("inf"))
    needs = ("reference",)
    unit = "dB"
    description = "PSNR over RGB, data range 1 ([0,1] floats); +inf when identical"

    def compute(self, sample: ImageSample) -> MetricValue:
        """PSNR of ``sample.output`` against ``sample.reference`` in dB."""
        out, ref = paired(self, sample)
        return MetricValue(F.psnr(out, ref, data_range=1.0))


class SSIM(ImageMetric):
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

    def __init__(self, downsample: bool = False) -> None:
        self.downsample = downsample

    def compute(self, sample: ImageSample) -> MetricValue:
        """Mean SSIM plus the dissimilarity map."""
        out, ref = paired(self, sample)
        smap = F.ssim_map(out, ref, downsample=self.downsample)
        value = float(np.mean(smap))
        dmap = None
        if not self.downsample:
            pad = (out.shape[0] - smap.shape[0]) // 2
            dmap = np.clip(1.0 - np.pad(smap, pad, mode="edge"), 0.0, 2.0).astype(np.float32)
        return MetricValue(value, map=dmap)


class SSIMSkimage(ImageMetric):
    """scikit-image's default SSIM (7x7 uniform window, sample covariance, per RGB channel), data range 1."""

    name = "ssim_skimage"
    version = "1"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = ("reference",)
    unit = ""
    description = "SSIM as skimage.metrics.structural_similarity defaults (7x7 uniform, ddof 1, RGB mean)"

    def compute(self, sample: ImageSample) -> MetricValue:
        """Mean SSIM over RGB channels."""
        out, ref = paired(self, sample)
        F.check_pair(out, ref, "ssim_skimage")
        return MetricValue(F.ssim_skimage(out, ref, data_range=1.0))


class MSSSIM(ImageMetric):
    """Multi-scale SSIM (Wang 2003), 5 scales on RGB, data range 1. Images need both sides > 160 pixels."""

    name = "ms_ssim"
    version = "1"
    higher_is_better = True
    value_range = (0.0, 1.0)
    needs = ("reference",)
    unit = ""
    description = "MS-SSIM, 5 scales, Gaussian sigma 1.5, RGB mean; needs sides > 160 px"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def compute(self, sample: ImageSample) -> MetricValue:
        """MS-SSIM (torch float32 on the run's device; within about 1e-6 of the float64
        :func:`qa.metrics.functional.fidelity.ms_ssim`); :class:`NotApplicable` for images too small for 5 scales."""
        out, ref = paired(self, sample)
        if min(out.shape[:2]) <= 160:
            raise NotApplicable(f"not applicable: ms_ssim needs both sides > 160 px, image is {out.shape[:2]}")
        return MetricValue(ms_ssim_torch(out, ref, data_range=1.0, device=self.device))
