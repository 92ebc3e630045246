"""The ``pid`` family: pixel-diffusion decoders on the upscale track (stochastic, seeded).

Backends:

* ``embedded`` (default): the zoo's PiD-mini (``qa.zoo.models.load_zoo_pid``), conditioned on the zoo VAE's
  raw latent; output 2x the VAE's native size, so ``scale = 2`` and the encoder is area downsampling x2
  followed by the zoo VAE encoder (``latent_dist.mean``): a reference of side S gives a latent of side S/8.
* ``upstream``: NVIDIA PiD (github.com/nv-tlabs/PiD, weights NSCLv1) through its Python API,
  ``load_model_from_checkpoint`` then ``generate_samples_from_batch(data_batch, cfg_scale, num_steps, seed,
  shift, image_size)`` with ``data_batch = {caption key: [...], "LQ_latent", "degrade_sigma"}``, as its
  ``from_clean`` demo does (the latent is forward-noised at ``degrade_sigma`` with upstream's ``add_noise``).
  Its encoder is area downsampling by the checkpoint's scale followed by PiD's own ``encode_lq_latent``.

Each case is sampled on its own with ``seed``, so an image never depends on which cases share its batch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from qa.decoders._common import finish, parse_dtype, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.weights import files_sha256, load_state_dict, weight_files
from qa.errors import DecoderError, WeightsMissingError

PID_INSTALL_HINT = (
    "install NVIDIA PiD: git clone https://github.com/nv-tlabs/PiD && pip install -e ./PiD (environment: its "
    "environment.yml); get a checkpoint as PiD's docs/checkpoints.md describes (NSCLv1 licence), "
    "then set [tool.qa.decoders.pid] backend = 'upstream', checkpoint = '.../model_ema_bf16.pth'"
)


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


def make_pid(name: str | None = None, device: str = "cpu", backend: str = "embedded", **settings: object) -> Decoder:
    """Registry target of ``pid``: the ``embedded`` (default) or ``upstream`` backend with its settings."""
    if backend == "embedded":
        return EmbeddedPiD(name=name or "pid", device=device, **settings)  # type: ignore[arg-type]
    if backend == "upstream":
        return UpstreamPiD(name=name or "pid", device=device, **settings)  # type: ignore[arg-type]
    raise DecoderError(f"decoder {name or 'pid'!r}: backend must be 'embedded' or 'upstream', got {backend!r}")


def _check_sigma(name: str, degrade_sigma: float, steps: int) -> None:
    if not 0.0 <= float(degrade_sigma) <= 1.0:
        raise DecoderError(f"decoder {name!r}: degrade_sigma must be in [0, 1], got {degrade_sigma}")
    if int(steps) < 1:
        raise DecoderError(f"decoder {name!r}: steps must be >= 1, got {steps}")


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
        _check_sigma(name or "pid", degrade_sigma, steps)
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


class UpstreamPiD(Decoder):
    """NVIDIA PiD through its package: PiD latents (N, C, h, w) -> (N, 3, s*f*h, s*f*w) in [0, 1], where f is
    the backbone VAE's compression and s the checkpoint's scale (4; 8 for siglip).

    Settings: ``checkpoint`` (path to ``model_ema_bf16.pth``; required), ``backbone`` (flux, flux2, sd3, sdxl,
    qwenimage, zimage, dinov2, siglip; default flux), ``checkpoint_type`` (2k | 2kto4k), ``experiment`` and
    ``config_file`` (default: PiD's checkpoint registry / ``pid/_src/configs/pid/config.py``),
    ``degrade_sigma`` (default 0), ``steps`` (default 4), ``cfg_scale`` (1.0), ``shift`` (None = model's),
    ``scale`` (default the registry's), ``dtype`` (bfloat16), ``load_ema_to_reg`` (False).
    """

    family = "pid"
    backend = "upstream"
    track = "upscale"
    inputs = ("latent", "caption")
    stochastic = True
    scale = 4
    max_batch = 1

    def __init__(
        self,
        name: str | None = None,
        device: str = "cuda",
        checkpoint: str | Path | None = None,
        backbone: str = "flux",
        checkpoint_type: str = "2k",
        experiment: str | None = None,
        config_file: str | Path | None = None,
        degrade_sigma: float = 0.0,
        steps: int = 4,
        cfg_scale: float = 1.0,
        shift: float | None = None,
        scale: int | None = None,
        dtype: str = "bfloat16",
        load_ema_to_reg: bool = False,
        **settings: object,
    ) -> None:
        if settings:
            raise DecoderError(
                f"decoder {name or 'pid'!r}: unknown setting(s) {', '.join(sorted(settings))}",
                "the upstream pid takes checkpoint, backbone, checkpoint_type, experiment, config_file, "
                "degrade_sigma, steps, cfg_scale, shift, scale, dtype, load_ema_to_reg",
            )
        _check_sigma(name or "pid", degrade_sigma, steps)
        super().__init__(
            name, device, backend="upstream", checkpoint=str(checkpoint) if checkpoint else None, backbone=backbone,
            checkpoint_type=checkpoint_type, degrade_sigma=float(degrade_sigma), steps=int(steps),
        )
        self.checkpoint = Path(checkpoint).expanduser() if checkpoint else None
        self.backbone, self.checkpoint_type = backbone, checkpoint_type
        self.experiment, self.config_file = experiment, config_file
        self.degrade_sigma, self.steps = float(degrade_sigma), int(steps)
        self.cfg_scale, self.shift = float(cfg_scale), shift
        self.dtype = parse_dtype(dtype, self.name)
        self.load_ema_to_reg = bool(load_ema_to_reg)
        self._scale_given = scale is not None
        if scale is not None:
            self.scale = int(scale)
        self._model: Any = None
        self._sha: str | None = None

    @staticmethod
    def package_available() -> bool:
        """Whether PiD's inference API (``pid._src.utils.model_loader``) can be imported."""
        try:
            return importlib.util.find_spec("pid._src.utils.model_loader") is not None
        except (ImportError, ValueError):
            return False

    def unavailable_reason(self) -> str | None:
        if not self.package_available():
            return f"the PiD package (module pid) is not importable; {PID_INSTALL_HINT}"
        if self.checkpoint is None:
            return f"no PiD checkpoint configured; {PID_INSTALL_HINT}"
        if not self.checkpoint.is_file():
            return f"{self.checkpoint}: PiD checkpoint not found"
        return None

    def weights_sha256(self) -> str:
        if self._sha is None:
            if self.checkpoint is None or not self.checkpoint.is_file():
                raise WeightsMissingError(f"no PiD checkpoint at {self.checkpoint}", PID_INSTALL_HINT)
            self._sha = files_sha256([self.checkpoint])
        return self._sha

    @property
    def model(self) -> Any:
        """PiD's model, loaded on first use through ``load_model_from_checkpoint``."""
        if self._model is None:
            reason = self.unavailable_reason()
            if reason:
                raise WeightsMissingError(reason)
            checkpoint = self.checkpoint
            if checkpoint is None:  # unreachable: unavailable_reason() covers it
                raise WeightsMissingError(f"no PiD checkpoint configured; {PID_INSTALL_HINT}")
            # qa's rule: a checkpoint must load without running pickled code. Check it that way first.
            if not checkpoint.name.endswith(".safetensors"):
                load_state_dict(checkpoint)
            import pid
            from pid._src.inference.checkpoint_registry import get_pid_checkpoint
            from pid._src.utils.model_loader import load_model_from_checkpoint

            experiment = self.experiment
            if experiment is None or not self._scale_given:
                try:
                    entry = get_pid_checkpoint(self.backbone, self.checkpoint_type)
                except KeyError as exc:
                    raise DecoderError(f"decoder {self.name!r}: {exc}") from exc
                experiment = experiment or entry.experiment
                self.scale = int(getattr(entry, "pid_scale", self.scale))
            config_file = self.config_file or Path(pid.__file__).resolve().parent / "_src/configs/pid/config.py"
            try:
                model, _ = load_model_from_checkpoint(
                    experiment_name=experiment, checkpoint_path=str(checkpoint), config_file=str(config_file),
                    enable_fsdp=False, experiment_opts=[], strict=False, load_ema_to_reg=self.load_ema_to_reg,
                )
            except Exception as exc:  # noqa: BLE001 - upstream raises many kinds
                raise DecoderError(f"{checkpoint}: PiD could not load it ({type(exc).__name__}: {exc})") from exc
            self._model = model.eval()
        return self._model

    @torch.no_grad()
    def _encode(self, x01: torch.Tensor) -> torch.Tensor:
        x = (x01 * 2 - 1).to(self.device, self.dtype)
        return self.model.encode_lq_latent(x).float().to(x01.device)

    @property
    def encoder(self) -> Encoder:
        compression = int(self.model.vae_encoder.spatial_compression_factor)
        return ChainEncoder(self.scale, self._encode, compression, f"{self.name}-encoder")

    @torch.no_grad()
    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        from pid._src.inference.decoder import add_noise

        model = self.model
        z = require_latents(batch, self.name)
        compression = int(model.vae_encoder.spatial_compression_factor)
        size = (z.shape[-2] * compression * self.scale, z.shape[-1] * compression * self.scale)
        outs = []
        for i in range(len(z)):
            g = torch.Generator(device=self.device).manual_seed(int(seed))
            lat = add_noise(z[i : i + 1].to(self.device).float(), self.degrade_sigma, g, self.backbone)
            data_batch = {
                model.config.input_caption_key: [batch.captions[i] if i < len(batch.captions) else ""],
                "LQ_latent": lat.to(self.dtype),
                "degrade_sigma": torch.tensor([self.degrade_sigma], device=self.device, dtype=torch.float32),
            }
            out = model.generate_samples_from_batch(
                data_batch, cfg_scale=self.cfg_scale, num_steps=self.steps, seed=int(seed), shift=self.shift,
                image_size=size,
            )
            out = out.float()
            if out.ndim == 5:  # (N, 3, T=1, H, W)
                out = out[:, :, 0]
            outs.append(((out.clamp(-1, 1) + 1) / 2).to(z.device))
        return finish(torch.cat(outs), batch, self.name)

    @torch.no_grad()
    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """PiD's own VAE decode of the clean latents, upsampled bicubically by ``scale``, in [0, 1]."""
        model = self.model
        z = require_latents(batch, self.name).to(self.device, self.dtype)
        y = model.vae_encoder.decode(z.unsqueeze(2))
        y = y[:, :, 0] if y.ndim == 5 else y
        up = F.interpolate((y.float().clamp(-1, 1) + 1) / 2, scale_factor=self.scale, mode="bicubic")
        return up.clamp(0, 1).to(batch.latents.device if batch.latents is not None else "cpu")
