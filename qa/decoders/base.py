"""The decoder and encoder interfaces every adapter implements.

Conventions (all adapters):
- pixels are torch float32 tensors of shape (N, 3, H, W) with values in [0, 1];
- an :class:`Encoder` maps a reference image at the *output* resolution to the latent the decoder consumes
  (``Encoder.factor`` = reference side / latent side). For a VAE that is ``vae.encode(x).latent_dist.mean``
  (unscaled); for a pixel upsampler it is area downsampling; for PiD it is area downsampling by PiD's scale
  followed by the VAE encoder. So ``decoder.decode(encoder.encode(ref))`` has ``ref``'s size, and
  re-encoding consistency is ``encoder.encode(decoder.decode(z))`` against ``z``;
- ``decode(batch, seed)`` must be a pure function of (batch, seed): same seed, same pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from qa.tracks import Track


@dataclass
class DecodeBatch:
    """What a decoder receives for N cases.

    ``latents``: (N, C, h, w) from the decoder's encoder, or None on the generate track.
    ``captions``: N strings (the reference set's captions; prompts on the generate track).
    ``size``: (H, W) of the wanted output in pixels (the reference's size; the generation size).
    """

    case_ids: list[str]
    captions: list[str]
    latents: torch.Tensor | None = None
    size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.case_ids)


class Encoder(ABC):
    """Maps reference pixels (N, 3, H, W) in [0, 1] to latents (N, C, H/factor, W/factor). Deterministic."""

    name: str = "encoder"
    factor: int = 1

    @abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latents of ``images``; same device as the input."""

    def sha256(self) -> str:
        """Hash of the encoder's weights ("" for a weightless encoder)."""
        return ""


@dataclass
class DecoderInfo:
    """What ``qa decoders`` lists for one decoder."""

    name: str
    family: str
    backend: str
    track: Track
    inputs: tuple[str, ...]
    stochastic: bool
    scale: int
    available: bool
    reason: str = ""
    settings: dict[str, object] = field(default_factory=dict)


class Decoder(ABC):
    """A decoder adapter. Subclasses set the class attributes and implement :meth:`decode`.

    ``scale``: output side / the side of the image the latent space natively encodes (1 for a VAE decode,
    4 for a x4 upsampler, 2 for the embedded PiD that upsamples 2x over its VAE).
    """

    family: str = "custom"
    backend: str = "custom"
    track: Track = "decode"
    inputs: tuple[str, ...] = ("latent",)
    stochastic: bool = False
    scale: int = 1
    #: cases per forward pass that fit comfortably in memory at 256x256 on a CPU (the engine scales it down by
    #: pixels for larger images; ``--batch-size`` replaces it at every size)
    max_batch: int = 8

    def __init__(self, name: str | None = None, device: str = "cpu", **settings: object) -> None:
        self.name = name or self.family
        self.device = torch.device(device)
        self.settings = settings

    @property
    def encoder(self) -> Encoder | None:
        """The encoder of this decoder's latent space (None on the generate track)."""
        return None

    @abstractmethod
    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        """Decode ``batch`` with ``seed``: (N, 3, H, W) in [0, 1] (values outside are clipped by the engine)."""

    @property
    def decodes_latents(self) -> bool:
        """Whether the engine encodes each case's reference into ``batch.latents`` for :meth:`decode` (the
        decoder declares ``"latent"`` among its :attr:`inputs`; the generate track's decoders take captions)."""
        return "latent" in self.inputs

    @property
    def reference_aligned(self) -> bool:
        """Whether output pixel (y, x) shows the case's reference at (y, x), so full-reference metrics apply.

        True for the decode and upscale tracks; False on the generate track (caption + seed -> pixels: the
        reference is only the distribution the outputs should resemble, and the baseline is what each output
        is compared with). Override for a decoder whose outputs are aligned differently."""
        return self.track != "generate"

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """A plain, non-generative decode of the same inputs at the same output size, if the family has one
        (e.g. PiD: the VAE decode upsampled bicubically; the generate track: the source pipeline's image for
        the same prompt and seed). Used for high-frequency energy ratios and agreement metrics.

        ``seed``: the seed of the output it is compared with. The engine asks once with ``seed=None``: a
        baseline that does not depend on the seed ignores it and is then computed once for all seeds (a
        stochastic decoder's plain decode); one that does returns None without a seed, and the engine asks
        again once per seed (the generate track's source pipeline for the same prompt and seed).
        """
        return None

    def source_latents(self, batch: DecodeBatch, seed: int) -> torch.Tensor | None:
        """Generate track: the source pipeline's latent (N, C, h, w) for the same prompts and ``seed``, in the
        space of :attr:`encoder`, so that re-encoding consistency compares ``encoder.encode(output)`` with it.
        None (the default) when the decoder has no source pipeline."""
        return None

    def weights_sha256(self) -> str:
        """sha256 of the weights this decoder runs ("" if weightless). Recorded with every run."""
        return ""

    def unavailable_reason(self) -> str | None:
        """None when the decoder can run here; otherwise why not and how to fix it."""
        return None

    def info(self) -> DecoderInfo:
        """Descriptor for listings."""
        reason = self.unavailable_reason()
        return DecoderInfo(
            name=self.name,
            family=self.family,
            backend=self.backend,
            track=self.track,
            inputs=self.inputs,
            stochastic=self.stochastic,
            scale=self.scale,
            available=reason is None,
            reason=reason or "",
            settings=dict(self.settings),
        )
