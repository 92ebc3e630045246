"""The ``pid`` family: pixel-diffusion decoders on the upscale track (stochastic, seeded).

Backends:

* ``embedded`` (default): the zoo's PiD-mini (``qa.zoo.models.load_zoo_pid``), conditioned on the zoo VAE's
  raw latent; output 2x the VAE's native size, so ``scale = 2`` and the encoder is area downsampling x2
  followed by the zoo VAE encoder (``latent_dist.mean``): a reference of side S gives a latent of side S/8.
* ``upstream``: NVIDIA PiD (github.com/nv-tlabs/PiD) run from its checkout; see :mod:`qa.decoders.pid_upstream`
  and docs/pid.md.

Each case is sampled on its own with ``seed``, so an image never depends on which cases share its batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from qa.decoders._common import ChainEncoder, check_sigma, finish, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.weights import files_sha256, weight_files
from qa.errors import DecoderError, WeightsMissingError


def make_pid(name: str | None = None, device: str = "cpu", backend: str = "embedded", **settings: object) -> Decoder:
    """Registry target of ``pid``: the ``embedded`` (default) or ``upstream`` backend with its settings."""
    if backend == "embedded":
        return EmbeddedPiD(name=name or "pid", device=device, **settings)  # type: ignore[arg-type]
    if backend == "upstream":
        from qa.decoders.pid_upstream import UpstreamPiD

        return UpstreamPiD(name=name or "pid", device=device, **settings)  # type: ignore[arg-type]
    raise DecoderError(f"decoder {name or 'pid'!r}: backend must be 'embedded' or 'upstream', got {backend!r}")


class EmbeddedPiD(Decoder):
    """PiD-mini from the zoo: raw zoo-VAE latents (N, 4, h, w) -> (N, 3, 8h, 8w) in [0, 1].

    Settings: ``degrade_sigma`` (latent noise in normalised latent units, trained on [0, 0.5]; default 0),
    ``steps`` (sampler steps, default 4), ``path`` / ``vae_path`` (override the zoo folders).
    """

    family = "pid"
    backend = "embedded"
    track = "upscale"
    inputs = ("latent",)
    stochastic = True
    scale = 2
    max_batch = 4

    def __init__(
        self,
        name: str | None = None,
        device: str = "cpu",
        degrade_sigma: float = 0.0,
        steps: int = 4,
        path: str | Path | None = None,
        vae_path: str | Path | None = None,
        **settings: object,
    ) -> None:
        if settings:
            raise DecoderError(
                f"decoder {name or 'pid'!r}: unknown setting(s) {', '.join(sorted(settings))}",
                "the embedded pid takes degrade_sigma, steps, path, vae_path",
            )
        check_sigma(name or "pid", degrade_sigma, steps)
        from qa.zoo import models as zoo

        self.folder = Path(path) if path is not None else Path(zoo.ZOO_PID_DIR)
        self.vae_folder = Path(vae_path) if vae_path is not None else Path(zoo.ZOO_VAE_DIR)
        super().__init__(name, device, backend="embedded", degrade_sigma=float(degrade_sigma), steps=int(steps))
        self.degrade_sigma, self.steps = float(degrade_sigma), int(steps)
        self._model: Any = None

    def unavailable_reason(self) -> str | None:
        for folder, what in ((self.folder, "PiD-mini"), (self.vae_folder, "VAE")):
            if not (folder / "config.json").is_file() or not weight_files(folder, (".safetensors",)):
                return f"{folder}: the zoo {what} weights are missing (train them with the qa.zoo training scripts)"
        return None

    @property
    def model(self) -> Any:
        """The loaded PiD-mini (with the zoo VAE inside); loaded on first use."""
        if self._model is None:
            from qa.zoo import models as zoo

            reason = self.unavailable_reason()
            if reason:
                raise WeightsMissingError(reason)
            try:
                vae = zoo.load_zoo_vae("cpu", path=self.vae_folder)
                self._model = zoo.load_zoo_pid(self.device, path=self.folder, vae=vae)
            except zoo.ZooWeightsError as exc:
                raise DecoderError(str(exc), "re-create the zoo weights (see the model card)") from exc
        return self._model

    def weights_sha256(self) -> str:
        """sha256 over PiD-mini's weight files then the VAE's (the output depends on both)."""
        return files_sha256(weight_files(self.folder, (".safetensors",)) + weight_files(self.vae_folder, (".safetensors",)))

    def _vae_sha(self) -> str:
        return files_sha256(weight_files(self.vae_folder, (".safetensors",)))

    @torch.no_grad()
    def _encode(self, x01: torch.Tensor) -> torch.Tensor:
        vae = self.model.vae
        return vae.encode(x01.to(self.device) * 2 - 1).latent_dist.mean.float().to(x01.device)

    @property
    def encoder(self) -> Encoder:
        return ChainEncoder(2, self._encode, 4, f"{self.name}-encoder", self._vae_sha)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        z = require_latents(batch, self.name, 4)
        zd = z.to(self.device).float()
        outs = [self.model.sample(zd[i : i + 1], self.degrade_sigma, int(seed), self.steps) for i in range(len(zd))]
        return finish(torch.cat(outs).to(z.device), batch, self.name)

    @torch.no_grad()
    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """The zoo VAE's decode of the same (clean) latents, upsampled 2x bicubically, in [0, 1]."""
        z = require_latents(batch, self.name, 4)
        y = self.model.vae.decode(z.to(self.device).float()).sample.clamp(-1, 1)
        up = F.interpolate((y + 1) / 2, scale_factor=2, mode="bicubic", align_corners=False)
        return up.clamp(0, 1).to(z.device)

