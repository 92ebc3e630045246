"""Fidelity of a decoder's plain decode: the metric of its baseline image against the reference.

Every upscale decoder has a plain, non-generative decode of the same input at the same output size (its
:meth:`~qa.decoders.base.Decoder.baseline`): bicubic at its own factor for a pixel-input upsampler (Real-ESRGAN),
the plain decode of the same latent brought to its size for a latent-input decoder (PiD: the VAE decode,
upsampled). A policy's decoder-baseline rule (``baseline_decoder = "plain"``, :mod:`qa.gate.policy`) compares
each image's ``psnr`` with its ``baseline_psnr`` in the same run: a comparison that fits the candidate's input and
factor and needs no other run. The values mean exactly what the plain metric means, computed on the baseline
image in place of the output (no maps are stored for them).
"""

from __future__ import annotations

from dataclasses import replace

from qa.metrics.base import ImageSample, MetricValue, NotApplicable
from qa.metrics.fidelity import PSNR, SSIM
from qa.metrics.perceptual import LPIPSAlex

#: the prefix that names the plain-decode variant of a metric: ``psnr`` -> ``baseline_psnr``
PREFIX = "baseline_"


def as_baseline(sample: ImageSample, name: str) -> ImageSample:
    """``sample`` with the decoder's baseline image as its output (NotApplicable when the decoder has none)."""
    if sample.baseline is None:
        raise NotApplicable(f"not applicable: {name} needs the decoder's plain decode (its baseline image), and "
                            "this decoder has none")
    return replace(sample, output=sample.baseline)


class BaselinePSNR(PSNR):
    """PSNR (dB) of the decoder's plain decode against the reference."""

    name = "baseline_psnr"
    needs = ("reference", "baseline")  # type: ignore[assignment]
    description = "PSNR of the decoder's plain decode (its baseline image) against the reference"
    batched = ("psnr", ("baseline", "reference"))

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(super().compute(as_baseline(sample, self.name)).value)


class BaselineSSIM(SSIM):
    """SSIM of the decoder's plain decode against the reference (no map)."""

    name = "baseline_ssim"
    needs = ("reference", "baseline")  # type: ignore[assignment]
    description = "SSIM of the decoder's plain decode (its baseline image) against the reference"
    batched = ("ssim", ("baseline", "reference"))
    with_map = False

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(super().compute(as_baseline(sample, self.name)).value)


class BaselineLPIPSAlex(LPIPSAlex):
    """LPIPS (AlexNet) of the decoder's plain decode against the reference (no map)."""

    name = "baseline_lpips_alex"
    needs = ("reference", "baseline")  # type: ignore[assignment]
    description = ("LPIPS (AlexNet) of the decoder's plain decode (its baseline image) against the reference; "
                   "needs sides >= 31 px")
    pair = ("baseline", "reference")
    with_map = False

    def compute(self, sample: ImageSample) -> MetricValue:
        return MetricValue(super().compute(as_baseline(sample, self.name)).value)
