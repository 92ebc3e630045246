"""Weightless decoders: ``identity`` (a no-op that must score perfectly) and ``bicubic`` (x4 upscale baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qa.decoders.base import DecodeBatch, Decoder, Encoder


class AreaDownsample(Encoder):
    """Area (box) downsampling by an integer ``factor``: the 'encoder' of a pixel-space upsampler."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.name = f"area-x{factor}"

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(images, kernel_size=self.factor, stride=self.factor)


class IdentityEncoder(Encoder):
    """Passes pixels through unchanged (the latent of ``identity`` is the image itself)."""

    name = "identity"
    factor = 1

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images


class IdentityDecoder(Decoder):
    """Returns its input: a built-in sanity check. PSNR must be infinite and SSIM 1 on every image."""

    family = "identity"
    backend = "builtin"
    track = "decode"
    max_batch = 32

    @property
    def encoder(self) -> Encoder:
        return IdentityEncoder()

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        if batch.latents is None:
            raise ValueError("identity needs latents (pixels)")
        return batch.latents.clone()


class BicubicDecoder(Decoder):
    """Bicubic upsampling by ``factor`` (default 4) of an area-downsampled image: the deterministic baseline
    of the upscale track. Output is clipped to [0, 1]."""

    family = "bicubic"
    backend = "builtin"
    track = "upscale"
    scale = 4
    max_batch = 32

    def __init__(self, name: str | None = None, device: str = "cpu", factor: int = 4, **settings: object) -> None:
        super().__init__(name, device, factor=factor, **settings)
        self.scale = int(factor)

    @property
    def encoder(self) -> Encoder:
        return AreaDownsample(self.scale)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        if batch.latents is None:
            raise ValueError("bicubic needs latents (low-resolution pixels)")
        out = F.interpolate(batch.latents, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out.clamp(0.0, 1.0)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        return self.decode(batch, 0)
