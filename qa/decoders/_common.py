"""What the adapters share: checks of input latents, output pixels and sampler settings; the bicubic output
resize; the chained encoder of upsampling decoders (area downsampling, then a latent encoder)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from qa.decoders.base import DecodeBatch, Encoder
from qa.errors import DecoderError

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(value: object, name: str) -> torch.dtype:
    """``"float32" | "float16" | "bfloat16"`` (or a torch dtype) -> torch dtype; DecoderError otherwise."""
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    raise DecoderError(f"decoder {name!r}: dtype must be one of {', '.join(DTYPES)}, got {value!r}")


def require_latents(batch: DecodeBatch, name: str, channels: int | None = None) -> torch.Tensor:
    """``batch.latents`` as (N, C, h, w), checked against ``len(batch)`` and ``channels``."""
    z = batch.latents
    if z is None:
        raise DecoderError(f"decoder {name!r} needs latents, the batch has none (generate-track batch?)")
    if z.ndim != 4:
        raise DecoderError(f"decoder {name!r}: latents must be (N, C, h, w), got shape {tuple(z.shape)}")
    if len(batch) and z.shape[0] != len(batch):
        raise DecoderError(f"decoder {name!r}: {z.shape[0]} latents for {len(batch)} cases")
    if channels is not None and z.shape[1] != channels:
        raise DecoderError(
            f"decoder {name!r}: latents have {z.shape[1]} channels, this model takes {channels}",
            "encode the references with this decoder's own encoder",
        )
    return z


def finish(pixels: torch.Tensor, batch: DecodeBatch, name: str) -> torch.Tensor:
    """Check the decoded (N, 3, H, W) pixels (finite, size = ``batch.size`` when given) and return them as
    float32 clipped to [0, 1] on the CPU-or-same device."""
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise DecoderError(f"decoder {name!r} returned shape {tuple(pixels.shape)}, expected (N, 3, H, W)")
    if not torch.isfinite(pixels).all():
        raise DecoderError(f"decoder {name!r} returned NaN or Inf pixels")
    if batch.size is not None and tuple(pixels.shape[-2:]) != tuple(batch.size):
        raise DecoderError(
            f"decoder {name!r} returned {tuple(pixels.shape[-2:])} pixels, the batch wants {tuple(batch.size)}",
            "reference sides must be multiples of the encoder factor",
        )
    return pixels.float().clamp(0.0, 1.0)


def resize(images: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Bicubic resize of ``[N,3,h,w]`` in [0, 1] to ``size`` (antialiased when shrinking); clamped to [0, 1]."""
    if size is None or tuple(images.shape[-2:]) == tuple(size):
        return images.clamp(0, 1)
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=tuple(size), mode="bicubic", align_corners=False, antialias=shrink).clamp(0, 1)


def check_sigma(name: str, degrade_sigma: float, steps: int) -> None:
    """DecoderError unless ``degrade_sigma`` is in [0, 1] and ``steps`` >= 1 (PiD's sampler settings)."""
    if not 0.0 <= float(degrade_sigma) <= 1.0:
        raise DecoderError(f"decoder {name!r}: degrade_sigma must be in [0, 1], got {degrade_sigma}")
    if int(steps) < 1:
        raise DecoderError(f"decoder {name!r}: steps must be >= 1, got {steps}")


class ChainEncoder(Encoder):
    """Area downsampling by ``down`` then a latent encoder: (N, 3, H, W) -> (N, C, H/factor, W/factor)."""

    def __init__(self, down: int, inner: Any, inner_factor: int, name: str, sha: Any = None) -> None:
        self.down, self.inner, self.factor, self.name = down, inner, down * inner_factor, name
        self._sha = sha

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise DecoderError(f"{self.name}: images must be (N, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-2] % self.factor or images.shape[-1] % self.factor:
            raise DecoderError(
                f"{self.name}: image size {tuple(images.shape[-2:])} is not a multiple of {self.factor}",
                f"crop references to multiples of {self.factor}",
            )
        return self.inner(F.avg_pool2d(images, self.down, self.down))

    def sha256(self) -> str:
        return self._sha() if callable(self._sha) else ""
