"""Agreement of an output with its decoder's baseline: PSNR, SSIM and LPIPS of ``output`` against ``baseline``.

On the generate track the baseline is the source pipeline's image for the same prompt and seed (``l2p`` against
``ldm+vae``; ``ldm+pid`` against ``ldm+vae`` resized), so these say how closely a transferred model reproduces
its source; on the upscale track (PiD) it is the plain VAE decode upsampled, so they say how far the generative
decoder departs from the plain one. Same definitions as ``psnr``/``ssim``/``lpips_alex`` (see
:mod:`qa.metrics.functional.fidelity` and :mod:`qa.metrics.perceptual`), with the baseline in the reference's
place (:func:`qa.metrics.base.paired`). Missing (never 0) when the decoder has no baseline or LPIPS's weights are absent.
"""

from __future__ import annotations

import numpy as np

from qa.metrics.base import ImageMetric, ImageSample, MetricInputError, MetricValue, NotApplicable, paired
from qa.metrics.fidelity import SSIM, OnDeviceFidelity, psnr_on, ssim_on


class AgreementPSNR(OnDeviceFidelity):
    """PSNR (dB, RGB, data range 1) of the output against the baseline; +inf when identical."""

    name = "agreement_psnr"
    version = "1"
    higher_is_better = True
    value_range = (0.0, float("inf"))
    needs = ("baseline",)
    unit = "dB"
    description = "PSNR against the decoder's baseline (generate: the source pipeline, same prompt and seed)"
    averaged = "noise_power"
    batched = ("psnr", ("output", "baseline"))

    def compute(self, sample: ImageSample) -> MetricValue:
        out, base = paired(self, sample, "baseline")
        return MetricValue(psnr_on(self.device, out, base))


class AgreementSSIM(OnDeviceFidelity):
    """SSIM (MATLAB/paper variant, as ``ssim``) of the output against the baseline, in [-1, 1]."""

    name = "agreement_ssim"
    version = "1"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = ("baseline",)
    description = "SSIM against the decoder's baseline (generate: the source pipeline, same prompt and seed)"
    batched = ("ssim", ("output", "baseline"))
    min_side = SSIM.min_side

    def compute(self, sample: ImageSample) -> MetricValue:
        out, base = paired(self, sample, "baseline")
        return ssim_on(self.device, self.name, out, base, with_map=False)


class AgreementLPIPS(ImageMetric):
    """LPIPS (AlexNet, v0.1) of the output against the baseline; lower is better; needs the LPIPS weights."""

    name = "agreement_lpips"
    version = "1"
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = ("baseline",)
    weights = ("alexnet", "lpips-alex-v0.1")
    description = ("LPIPS (alex) against the decoder's baseline (generate: the source pipeline, same prompt and seed); "
                   "needs sides >= 31 px")

    def __init__(self, device: str = "cpu") -> None:
        from qa.metrics.perceptual import LPIPSAlex

        self._lpips = LPIPSAlex(device=device)

    def unavailable_reason(self) -> str | None:
        return self._lpips.unavailable_reason()

    def prepare(self, samples: list[ImageSample]) -> None:
        """Where the device batches, every (output, baseline) pair in one network call per image size."""
        self._lpips.prefill(samples, "output", "baseline", spatial=False)

    def compute(self, sample: ImageSample) -> MetricValue:
        out, base = paired(self, sample, "baseline")
        self._lpips.check_side(out, self.name)  # AlexNet: both sides >= 31 px, else not applicable
        done = self._lpips.prefilled(out, base)
        if done is not None:
            return MetricValue(done[0])
        value, _ = self._lpips.compute_batch([out], [base])
        return MetricValue(float(value[0]))


class SeedAlignment(OnDeviceFidelity):
    """How much closer each seed's output is to the baseline of *its own* seed than to the other seeds' (dB).

    For a case with seeds ``s = 1..S`` (outputs ``o_s``, per-seed baselines ``b_s``: on the generate track the
    source pipeline's image for the same prompt and seed)::

        mean_s PSNR(o_s, b_s)  -  mean_{s != t} PSNR(o_s, b_t)

    About 0 dB when the output is only another sample of the same distribution (it agrees with its source no
    better than with an unrelated seed of it: independent noise, a seed-ignoring or collapsed model, noise);
    large when the decoder reproduces its source per prompt and seed. Needs >= 2 seeds and a baseline that
    depends on the seed. ``extra``: the two means (dB).
    """

    name = "seed_alignment"
    version = "1"
    higher_is_better = True
    value_range = (float("-inf"), float("inf"))
    level = "case"
    needs = ("seeds", "baseline")
    unit = "dB"
    description = "PSNR to the same seed's source minus PSNR to other seeds' sources (0 = agrees only in distribution)"

    def compute(self, sample: ImageSample) -> MetricValue:
        reason = self.missing_needs(sample)
        if reason is not None:
            raise NotApplicable(reason + " (at least 2 seeds and a per-seed baseline)")
        outs, bases = sample.seed_outputs, sample.seed_baselines
        if len(bases) != len(outs):
            raise NotApplicable("not applicable: needs a per-seed baseline (this decoder's baseline does not "
                                "depend on the seed)")
        if all(np.array_equal(bases[0], b) for b in bases[1:]):
            raise NotApplicable("not applicable: the baselines of all seeds are identical")
        for i, (o, b) in enumerate(zip(outs, bases, strict=True)):
            if o.shape != b.shape:
                raise MetricInputError(f"{self.name}: {sample.case_id}: seed {i}: output {o.shape} and baseline "
                                       f"{b.shape} differ")
        # identical images give +inf PSNR; cap at 100 dB (1e-10 MSE) so that the difference stays finite
        p = [[min(psnr_on(self.device, o, b), 100.0) for b in bases] for o in outs]
        n = len(outs)
        same = float(np.mean([p[i][i] for i in range(n)]))
        other = float(np.mean([p[i][j] for i in range(n) for j in range(n) if i != j]))
        return MetricValue(same - other, detail=f"same seed {same:.2f} dB, other seeds {other:.2f} dB",
                           extra={"same_seed_psnr": same, "other_seed_psnr": other})
