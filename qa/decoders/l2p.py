"""Decoders of the ``generate`` track: prompt + seed -> pixels.

Embedded (default, shipped weights in ``qa/generate/weights``):

* ``ldm+vae`` - the source pipeline: the miniature LDM samples a latent, the zoo VAE decoder decodes it;
* ``ldm+pid`` - the same latent decoded by the zoo PiD-mini (2x the VAE's native size);
* ``l2p`` - the pixel model built from the LDM by the L2P recipe (:mod:`training.generate.train_l2p`).

All three share prompts and seeds: case ``i`` with run seed ``s`` uses generator seed
``prompt_seed(s, caption_i)`` (:func:`qa.generate.text.prompt_seed`) for its initial noise (latent noise for
the LDM, pixel noise for l2p; PiD's sampler is seeded with the same number), so ``ldm+vae`` and ``ldm+pid`` start
from the same latent noise and an image never depends on its batch. The samplers are deterministic ODE solvers
after the initial noise (PiD's is a seeded SDE).

Size: the models generate at their native size (64x64 for ldm+vae and l2p, 128x128 for ldm+pid); the output is
then resized bicubically (antialiased when shrinking) to the requested ``batch.size`` - the reference's size,
so 4x (2x for ldm+pid) upsampling for the 256x256 default set. ``settings["resize_note"]`` says so in runs.

Measures of agreement with the source pipeline use two hooks (see :mod:`qa.decoders.base`):
``baseline(batch, seed)`` (l2p: the ``ldm+vae`` image for the same prompt and seed; ldm+pid: that image
bicubically resized, as PiD's baseline) and ``source_latents(batch, seed)`` (the LDM's raw latent for the same
prompt and seed, compared with ``encoder.encode(output)``: the zoo VAE encoder after resizing to 64x64).

Upstream: ``l2p`` with ``backend = "upstream"`` runs L2P (TencentYoutuResearch/T2I-L2P) through its DiffSynth
fork's ``ZImagePipeline`` on a local model folder; see :mod:`qa.decoders.l2p_upstream`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from qa.decoders._common import finish, resize
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.weights import files_sha256, weight_files
from qa.errors import DecoderError, WeightsMissingError
from qa.generate.nets import GEN_CFG, GEN_STEPS, L2P_DIR, LDM_DIR, load_model, read_config, sample
from qa.generate.noise import coupled_noise, initial_noise
from qa.generate.text import prompt_seed

NATIVE = 64  # native pixel side of ldm+vae and l2p
TRAIN_HINT = (
    "train them: python -m training.generate.train_ldm --out qa/generate/weights/ldm && "
    "python -m training.generate.train_l2p --ldm qa/generate/weights/ldm --out qa/generate/weights/l2p "
    "(needs the zoo VAE; see qa/generate/weights/MODEL_CARD.md)"
)


def _model_ok(folder: Path) -> bool:
    return (folder / "config.json").is_file() and bool(weight_files(folder, (".safetensors",)))


class NativeVAEEncoder(Encoder):
    """Resize to 64x64 (area) then the zoo VAE encoder's ``latent_dist.mean``: ``[N,3,H,W]`` -> ``[N,4,16,16]``.

    ``factor`` is the VAE's 4 on the native 64x64 image (a 256x256 output is first area-downsampled 4x).
    """

    factor = 4

    def __init__(self, owner: _GenerateBase) -> None:
        self.owner = owner
        self.name = "resize64+zoo-vae"

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise DecoderError(f"{self.name}: images must be (N, 3, H, W), got {tuple(images.shape)}")
        x = images.float()
        if tuple(x.shape[-2:]) != (NATIVE, NATIVE):
            x = F.interpolate(x, size=(NATIVE, NATIVE), mode="area")
        vae = self.owner.vae
        return vae.encode(x.to(self.owner.device) * 2 - 1).latent_dist.mean.to(images.device)

    def sha256(self) -> str:
        return files_sha256(weight_files(self.owner.vae_dir, (".safetensors",)))


class _GenerateBase(Decoder):
    """Shared by the embedded decoders: lazy models, per-prompt seeds, the source pipeline and its cache."""

    family = "l2p"
    backend = "embedded"
    track = "generate"
    inputs = ("caption",)
    stochastic = True
    scale = 1
    max_batch = 16
    needs_pid = False

    def __init__(self, name: str | None = None, device: str = "cpu", steps: int = GEN_STEPS,
                 cfg_scale: float | None = None, ldm_path: str | Path | None = None, l2p_path: str | Path | None = None,
                 vae_path: str | Path | None = None, pid_path: str | Path | None = None, pid_steps: int = 4,
                 degrade_sigma: float = 0.0, source_cfg_scale: float | None = None, **settings: object) -> None:
        if settings:
            raise DecoderError(
                f"decoder {name or self.family!r}: unknown setting(s) {', '.join(sorted(settings))}",
                "the embedded generate decoders take steps, cfg_scale, source_cfg_scale, ldm_path, l2p_path, "
                "vae_path, pid_path, pid_steps, degrade_sigma",
            )
        from qa.zoo import models as zoo

        self.ldm_dir = Path(ldm_path) if ldm_path else LDM_DIR
        self.l2p_dir = Path(l2p_path) if l2p_path else L2P_DIR
        self.vae_dir = Path(vae_path) if vae_path else Path(zoo.ZOO_VAE_DIR)
        self.pid_dir = Path(pid_path) if pid_path else Path(zoo.ZOO_PID_DIR)
        cfg_scale = self.default_cfg_scale() if cfg_scale is None else cfg_scale
        if int(steps) < 1 or float(cfg_scale) < 0:
            raise DecoderError(f"decoder {name!r}: steps must be >= 1 and cfg_scale >= 0 (got {steps}, {cfg_scale})")
        self.steps, self.cfg_scale = int(steps), float(cfg_scale)
        # guidance of the source pipeline's LDM: the ldm decoders' own cfg_scale; l2p's source keeps the default
        own_ldm = self.family == "ldm"
        self.source_cfg_scale = float(source_cfg_scale if source_cfg_scale is not None
                                      else (self.cfg_scale if own_ldm else GEN_CFG))
        self.pid_steps, self.degrade_sigma = int(pid_steps), float(degrade_sigma)
        native = NATIVE * (2 if self.needs_pid else 1)
        super().__init__(name, device, backend="embedded", steps=self.steps, cfg_scale=self.cfg_scale,
                         **({} if own_ldm else {"source_cfg_scale": self.source_cfg_scale}),
                         native_size=native, seeding="generator seed = sha256(run seed, prompt)",
                         resize_note=f"generated at {native}x{native}, resized bicubically to the requested size",
                         **({"pid_steps": self.pid_steps, "degrade_sigma": self.degrade_sigma} if self.needs_pid else {}))
        self._models: dict[str, Any] = {}
        self._source_cache: tuple[tuple[tuple[str, ...], int], tuple[torch.Tensor, torch.Tensor]] | None = None

    def default_cfg_scale(self) -> float:
        """Guidance when the settings name none: the sampler's default (a model may record its own)."""
        return GEN_CFG

    # -- weights ---------------------------------------------------------------------------------------------
    def _folders(self) -> list[tuple[Path, str]]:
        return [(self.ldm_dir, "LDM"), (self.vae_dir, "zoo VAE")]

    def unavailable_reason(self) -> str | None:
        for folder, what in self._folders():
            if not _model_ok(folder):
                hint = TRAIN_HINT if what in ("LDM", "L2P pixel model") else "train the zoo models (training.zoo.train_*)"
                return f"{folder}: the {what} weights are missing; {hint}"
        return None

    def weights_sha256(self) -> str:
        """sha256 over the weight files of every model the output depends on, in a fixed order."""
        files: list[Path] = []
        for folder, _ in self._folders():
            files += weight_files(folder, (".safetensors",))
        return files_sha256(files)

    def _load(self, key: str) -> Any:
        if key not in self._models:
            reason = self.unavailable_reason()
            if reason:
                raise WeightsMissingError(reason)
            from qa.zoo import models as zoo

            try:
                if key == "vae":
                    self._models[key] = zoo.load_zoo_vae(self.device, path=self.vae_dir)
                elif key == "pid":
                    self._models[key] = zoo.load_zoo_pid(self.device, path=self.pid_dir, vae=self.vae)
                else:
                    self._models[key] = load_model(self.ldm_dir if key == "ldm" else self.l2p_dir, self.device)
            except (zoo.ZooWeightsError, ValueError, FileNotFoundError) as exc:
                raise DecoderError(f"decoder {self.name!r}: {exc}", TRAIN_HINT) from exc
        return self._models[key]

    @property
    def vae(self) -> Any:
        return self._load("vae")

    @property
    def encoder(self) -> Encoder:
        return NativeVAEEncoder(self)

    # -- the source pipeline ------------------------------------------------------------------------------------
    def seeds_for(self, batch: DecodeBatch, seed: int) -> list[int]:
        """Per-case generator seeds (depend on the run seed and the case's prompt only)."""
        return [prompt_seed(seed, c) for c in batch.captions]

    def source(self, batch: DecodeBatch, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw LDM latents ``[N,4,16,16]``, ``ldm+vae`` pixels ``[N,3,64,64]`` in [0, 1]) for the batch and seed."""
        key = (tuple(batch.captions), int(seed))
        if self._source_cache is None or self._source_cache[0] != key:
            ldm, vae = self._load("ldm"), self.vae
            c = ldm.cfg
            noise = initial_noise((c.in_channels, c.size, c.size), self.seeds_for(batch, seed)).to(self.device)
            zn = sample(ldm, list(batch.captions), noise, steps=self.steps, cfg_scale=self.source_cfg_scale)
            z = zn / float(vae.config.scaling_factor)
            pixels = (vae.decode(z).sample.clamp(-1, 1) + 1) / 2
            self._source_cache = (key, (z, pixels))
        return self._source_cache[1]

    def source_latents(self, batch: DecodeBatch, seed: int) -> torch.Tensor | None:
        """The source pipeline's raw VAE latent for each case's prompt and ``seed`` (for re-encoding consistency)."""
        self._check(batch)
        return self.source(batch, seed)[0]

    def _check(self, batch: DecodeBatch) -> None:
        if len(batch.captions) != len(batch):
            raise DecoderError(f"decoder {self.name!r}: {len(batch.captions)} captions for {len(batch)} cases")


class LDMVAEDecoder(_GenerateBase):
    """``ldm+vae``: LDM latent decoded by the zoo VAE decoder (the source pipeline itself)."""

    family = "ldm"

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        self._check(batch)
        with torch.no_grad():
            return finish(resize(self.source(batch, seed)[1], batch.size), batch, self.name)


class LDMPiDDecoder(_GenerateBase):
    """``ldm+pid``: LDM latent decoded by the zoo PiD-mini (seeded with each case's generator seed)."""

    family = "ldm"
    scale = 2
    max_batch = 8
    needs_pid = True

    def _folders(self) -> list[tuple[Path, str]]:
        return super()._folders() + [(self.pid_dir, "zoo PiD-mini")]

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        self._check(batch)
        z, _ = self.source(batch, seed)
        pid = self._load("pid")
        with torch.no_grad():
            outs = [pid.sample(z[i:i + 1], degrade_sigma=self.degrade_sigma, seed=s, steps=self.pid_steps)
                    for i, s in enumerate(self.seeds_for(batch, seed))]
        return finish(resize(torch.cat(outs), batch.size), batch, self.name)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """The ``ldm+vae`` image of the same prompt and seed at the output size (PiD's plain-decode baseline)."""
        if seed is None:
            return None
        with torch.no_grad():
            return resize(self.source(batch, seed)[1], batch.size or (2 * NATIVE, 2 * NATIVE))


class L2PMiniDecoder(_GenerateBase):
    """``l2p`` (embedded): the pixel model sampled from pixel noise; its baseline is ``ldm+vae``.

    A model trained with ``noise = "coupled"`` (the shipped one) starts from pixel noise that contains the
    source's latent noise of the same prompt and seed (:mod:`qa.generate.noise`) and samples with the guidance
    it was distilled with (``cfg_scale`` in its config, 1.0); an ``independent`` model from plain pixel noise.
    """

    family = "l2p"

    def _model_config(self) -> dict[str, Any]:
        try:
            return dict(read_config(self.l2p_dir)["model"])
        except (FileNotFoundError, ValueError):
            return {}

    def default_cfg_scale(self) -> float:
        return float(self._model_config().get("cfg_scale", GEN_CFG))

    def _folders(self) -> list[tuple[Path, str]]:
        return [(self.l2p_dir, "L2P pixel model")] + super()._folders()

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        self._check(batch)
        pix = self._load("l2p")
        c = pix.cfg
        seeds = self.seeds_for(batch, seed)
        if c.noise == "coupled":
            ldm_cfg = self._load("ldm").cfg
            noise = coupled_noise(seeds, (ldm_cfg.in_channels, ldm_cfg.size, ldm_cfg.size))[1]
            if tuple(noise.shape[1:]) != (c.in_channels, c.size, c.size):
                raise DecoderError(f"decoder {self.name!r}: coupled noise {tuple(noise.shape[1:])} does not fit the "
                                   f"pixel model's input {(c.in_channels, c.size, c.size)}", TRAIN_HINT)
        else:
            noise = initial_noise((c.in_channels, c.size, c.size), seeds)
        x = sample(pix, list(batch.captions), noise.to(self.device), steps=self.steps, cfg_scale=self.cfg_scale)
        return finish(resize((x.clamp(-1, 1) + 1) / 2, batch.size), batch, self.name)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """The source pipeline's (``ldm+vae``) image for the same prompts and seed, at the output size."""
        if seed is None:
            return None
        with torch.no_grad():
            return resize(self.source(batch, seed)[1], batch.size)


def make_l2p(name: str | None = None, device: str = "cpu", backend: str = "embedded", **settings: object) -> Decoder:
    """Registry target of ``l2p``: the ``embedded`` miniature (default) or the ``upstream`` DiffSynth pipeline."""
    if backend == "embedded":
        return L2PMiniDecoder(name=name or "l2p", device=device, **settings)  # type: ignore[arg-type]
    if backend == "upstream":
        from qa.decoders.l2p_upstream import L2PUpstreamDecoder

        return L2PUpstreamDecoder(name=name or "l2p", device=device, **settings)  # type: ignore[arg-type]
    raise DecoderError(f"decoder {name or 'l2p'!r}: backend must be 'embedded' or 'upstream', got {backend!r}")

