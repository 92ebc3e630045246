"""Test-only decoders and metrics for the gate tests: planted regressions, a decoder that always raises, and a
metric whose weights are absent."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from qa.decoders.base import DecodeBatch
from qa.decoders.simple import BicubicDecoder
from qa.metrics.base import ImageMetric, ImageSample, MetricValue


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class BlurryBicubic(BicubicDecoder):
    """Bicubic x4 followed by an extra Gaussian blur (sigma 1.5 px): a planted loss of detail."""

    family = "blurry-bicubic"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        return _gaussian_blur(super().decode(batch, seed), 1.5).clamp(0, 1)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        return super().decode(batch, 0)


class TexturedBicubic(BicubicDecoder):
    """Bicubic x4 plus an invented fine texture (a +-0.08 diagonal grating, period 3 px) on every image."""

    family = "textured-bicubic"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        h, w = out.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=out.dtype), torch.arange(w, dtype=out.dtype), indexing="ij")
        texture = 0.08 * torch.sin(2 * math.pi * (xx + yy) / 3.0)
        return (out + texture).clamp(0, 1)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        return super().decode(batch, 0)


class TunableBicubic(BicubicDecoder):
    """Bicubic x4 with a ``blur`` setting (Gaussian sigma in output pixels, 0 = plain bicubic): one decoder name
    whose candidates differ by a setting, like pid's ``degrade_sigma``."""

    family = "tunable-bicubic"

    def __init__(self, name: str | None = None, device: str = "cpu", factor: int = 4, blur: float = 0.0,
                 **settings: object) -> None:
        super().__init__(name, device, factor=factor, blur=float(blur), **settings)
        self.blur = float(blur)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        out = super().decode(batch, seed)
        return _gaussian_blur(out, self.blur).clamp(0, 1) if self.blur > 0 else out


class AlwaysRaising(BicubicDecoder):
    """A decoder that raises on every batch."""

    family = "always-raising"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        raise RuntimeError(f"planted failure decoding {', '.join(batch.case_ids)}")


class NeedsWeights(ImageMetric):
    """A metric whose weights are absent: every row is 'missing' with the reason below."""

    name = "needs_weights"
    higher_is_better = True
    needs = ("reference",)

    def unavailable_reason(self) -> str | None:
        return "weights 'fake-net' are not installed here; run `qa weights fetch fake-net`"

    def compute(self, sample: ImageSample) -> MetricValue:  # never called: unavailable
        raise AssertionError("unreachable")


def register() -> None:
    """Register the test decoders and metric (idempotent)."""
    from qa.decoders.catalog import DECODERS
    from qa.metrics.catalog import METRICS

    for name, cls in (("bicubic-twin", BicubicDecoder), ("blurry-bicubic", BlurryBicubic),
                      ("textured-bicubic", TexturedBicubic), ("always-raising", AlwaysRaising),
                      ("tunable", TunableBicubic)):
        if name not in DECODERS:
            DECODERS.register(name, cls)
    if "needs_weights" not in METRICS:
        METRICS.register("needs_weights", NeedsWeights)
