"""``taef2+esrgan``: a real latent-to-4x-pixels pipeline of two trained networks, on the upscale track.

FLUX.2 raw latent (N, 32, h, w) --TAEF2 decoder--> pixels (N, 3, 8h, 8w) --Real-ESRGAN x4plus--> (N, 3, 32h, 32w),
all in [0, 1] and deterministic: the job PiD does in one network, done by a tiny VAE decoder plus a GAN
upsampler. Its encoder is area downsampling x4 then the TAEF2 encoder (a reference of side S gives a latent of
side S/32), so ``latent_consistency`` re-encodes the 4x output into the latent it came from. Its baseline is the
plain pipeline without invention: the same TAEF2 decode upsampled bicubically x4.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from qa.decoders._common import ChainEncoder, finish, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.esrgan import ESRGANDecoder
from qa.decoders.taesd import TAESDDecoder
from qa.errors import DecoderError


class TAESDESRGAN(Decoder):
    """Tiny-autoencoder decode then Real-ESRGAN: raw latents (N, C, h, w) -> (N, 3, 8*s*h, 8*s*w) in [0, 1].

    Settings: ``variant`` / ``path`` / ``dtype`` (the tiny autoencoder, as the ``taesd`` family; default taef2
    from the weights store) and ``model`` / ``tile`` / ``tile_pad`` / ``threads`` (Real-ESRGAN, as the ``esrgan``
    family; default x4plus). ``scale`` is the upsampler's (4 for x4plus).
    """

    family = "taesd+esrgan"
    backend = "pth+ncnn"
    track = "upscale"
    inputs = ("latent",)
    stochastic = False
    scale = 4
    max_batch = 4

    _TAE_KEYS = ("variant", "path", "dtype")
    _SR_KEYS = ("model", "tile", "tile_pad", "threads")

    def __init__(self, name: str | None = None, device: str = "cpu", **settings: object) -> None:
        label = name or "taef2+esrgan"
        unknown = sorted(set(settings) - set(self._TAE_KEYS) - set(self._SR_KEYS))
        if unknown:
            raise DecoderError(f"decoder {label!r}: unknown setting(s) {', '.join(unknown)}",
                               f"takes {', '.join(self._TAE_KEYS + self._SR_KEYS)}")
        tae = {k: v for k, v in settings.items() if k in self._TAE_KEYS}
        sr = {k: v for k, v in settings.items() if k in self._SR_KEYS}
        self.tae = TAESDDecoder(name=f"{label}/tae", device=device, **tae)  # type: ignore[arg-type]
        self.sr = ESRGANDecoder(name=f"{label}/esrgan", device=device, **sr)  # type: ignore[arg-type]
        super().__init__(label, device, **{**self.tae.settings, **self.sr.settings})
        self.scale = self.sr.scale
        self.backend = f"{self.tae.backend}+ncnn"

    def unavailable_reason(self) -> str | None:
        reasons = [r for r in (self.tae.unavailable_reason(), self.sr.unavailable_reason()) if r]
        return "; ".join(reasons) if reasons else None

    def weights_sha256(self) -> str:
        """sha256 over the two parts' hashes (tiny decoder, then Real-ESRGAN), each as hex text."""
        return hashlib.sha256(f"{self.tae.weights_sha256()}+{self.sr.weights_sha256()}".encode()).hexdigest()

    @property
    def encoder(self) -> Encoder:
        return ChainEncoder(self.scale, self.tae.encode_pixels, self.tae.factor, f"{self.name}-encoder",
                            sha=self.tae.encoder_sha256)

    def _low(self, batch: DecodeBatch) -> torch.Tensor:
        """The tiny autoencoder's decode of the batch's latents (N, 3, 8h, 8w) in [0, 1]."""
        return self.tae.decode_latents(require_latents(batch, self.name, self.tae.latent_channels))

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        low = self._low(batch)
        up = self.sr.decode(DecodeBatch(batch.case_ids, batch.captions, latents=low, size=batch.size), seed)
        return finish(up, batch, self.name)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """The same tiny-autoencoder decode, upsampled bicubically by ``scale`` and clipped to [0, 1]."""
        up = F.interpolate(self._low(batch), scale_factor=self.scale, mode="bicubic", align_corners=False)
        return finish(up, batch, self.name)


def taef2_esrgan(name: str | None = None, device: str = "cpu", **settings: object) -> TAESDESRGAN:
    """Registry target of ``taef2+esrgan``: TAEF2 from the weights store, then Real-ESRGAN x4plus."""
    settings.setdefault("variant", "taef2")
    return TAESDESRGAN(name=name or "taef2+esrgan", device=device, **settings)
