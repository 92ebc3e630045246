"""Agreement of an output with its decoder's baseline: PSNR, SSIM and LPIPS of ``output`` against ``baseline``.

On the generate track the baseline is the source pipeline's image for the same prompt and seed (``l2p`` against
``ldm+vae``; ``ldm+pid`` against ``ldm+vae`` resized), so these say how closely a transferred model reproduces
its source; on the upscale track (PiD) it is the plain VAE decode upsampled, so they say how far the generative
decoder departs from the plain one. Same definitions as ``psnr``/``ssim``/``lpips_alex`` (see
:mod:`qa.metrics.functional.fidelity` and :mod:`qa.metrics.perceptual`), with the baseline in the reference's
place. Missing (never 0) when the decoder has no baseline or LPIPS's weights are absent.
"""

from __future__ import annotations

import numpy as np

from qa.metrics.base import ImageMetric, ImageSample, MetricInputError, MetricValue, NotApplicable
from qa.metrics.functional import fidelity as F


def _pair(metric: ImageMetric, sample: ImageSample) -> tuple[np.ndarray, np.ndarray]:
    reason = metric.missing_needs(sample)
    if reason is not None or sample.baseline is None:
        raise NotApplicable(reason or "not applicable: needs baseline")
    if sample.output.shape != sample.baseline.shape:
        raise MetricInputError(
            f"{metric.name}: {sample.case_id}: output {sample.output.shape} and baseline {sample.baseline.shape} differ"
        )
    return sample.output, sample.baseline


class AgreementPSNR(ImageMetric):
    """PSNR (dB, RGB, data range 1) of the output against the baseline; +inf when identical."""

    name = "agreement_psnr"
    version = "1"
    higher_is_better = True
    value_range = (0.0, float("inf"))
    needs = ("baseline",)
    unit = "dB"
    description = "PSNR against the decoder's baseline (generate: the source pipeline, same prompt and seed)"

    def compute(self, sample: ImageSample) -> MetricValue:
        out, base = _pair(self, sample)
        return MetricValue(F.psnr(out, base, data_range=1.0))


class AgreementSSIM(ImageMetric):
    """SSIM (MATLAB/paper variant, as ``ssim``) of the output against the baseline, in [-1, 1]."""

    name = "agreement_ssim"
    version = "1"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = ("baseline",)
    description = "SSIM against the decoder's baseline (generate: the source pipeline, same prompt and seed)"

    def compute(self, sample: ImageSample) -> MetricValue:
        out, base = _pair(self, sample)
        return MetricValue(float(np.mean(F.ssim_map(out, base))))


class AgreementLPIPS(ImageMetric):
    """LPIPS (AlexNet, v0.1) of the output against the baseline; lower is better; needs the LPIPS weights."""

    name = "agreement_lpips"
    version = "1"
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = ("baseline",)
    weights = ("alexnet", "lpips-alex-v0.1")
    description = "LPIPS (alex) against the decoder's baseline (generate: the source pipeline, same prompt and seed)"

    def __init__(self) -> None:
        from qa.metrics.perceptual import LPIPSAlex

        self._lpips = LPIPSAlex()

    def unavailable_reason(self) -> str | None:
        return self._lpips.unavailable_reason()

    def compute(self, sample: ImageSample) -> MetricValue:
        out, base = _pair(self, sample)
        value, _ = self._lpips.compute_batch([out], [base])
        return MetricValue(float(value[0]))
