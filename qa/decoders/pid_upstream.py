"""The ``upstream`` backend of the ``pid`` family: NVIDIA PiD (github.com/nv-tlabs/PiD, weights NSCLv1).

It loads through PiD's ``load_model_from_checkpoint`` and samples with ``generate_samples_from_batch(data_batch,
cfg_scale, num_steps, seed, shift, image_size)`` where ``data_batch = {caption key: [...], "LQ_latent",
"degrade_sigma"}``, as PiD's ``from_clean`` demo does (the latent forward-noised at ``degrade_sigma`` with PiD's
``add_noise``). Its encoder is area downsampling by the checkpoint's scale followed by PiD's ``encode_lq_latent``.
A checkpoint must fit the net exactly (:mod:`qa.decoders.pid_checkpoint_keys`), and every case needs a caption
(PiD is caption-conditioned; its demo refuses a sample without one) unless ``allow_empty_caption`` is set.
See docs/pid.md for the setup and the backbone x checkpoint-type table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from qa.decoders import pid_upstream_env as env
from qa.decoders._common import ChainEncoder, check_sigma, finish, parse_dtype, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.pid_checkpoint_keys import check_dcp_fits, check_fits, checkpoint_keys, dcp_keys
from qa.decoders.weights import files_sha256, load_state_dict
from qa.errors import DecoderError

PID_INSTALL_HINT = (
    "git clone https://github.com/nv-tlabs/PiD, then set [tool.qa.decoders.pid] backend = 'upstream', "
    "repo = '<the checkout>' (docs/pid.md)"
)
TEXT_ENCODER_HINT = (
    f"download the text encoder once: huggingface-cli download {env.TEXT_ENCODER_HUB_ID} --local-dir "
    "<folder>, then set text_encoder_path = '<folder>' (qa never downloads it)"
)


def _files(path: Path) -> list[Path]:
    """``path`` itself, or every file under the folder ``path`` in sorted relative order."""
    if path.is_file():
        return [path]
    return sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())


class UpstreamPiD(Decoder):
    """NVIDIA PiD: PiD latents (N, C, h, w) -> (N, 3, s*f*h, s*f*w) in [0, 1], where f is the backbone VAE's
    compression (8 for flux) and s the checkpoint's scale (4; 8 for siglip). Runs on CUDA only (upstream
    hard-codes it; a ``cpu`` device means ``cuda``).

    Settings: ``repo`` (the PiD checkout; default an importable ``pid`` package's checkout), ``checkpoint``
    (``model_ema_bf16.pth`` or a DCP folder; required), ``vae_path`` (the backbone's VAE file; default the
    checkout's ``checkpoints/...``), ``text_encoder_path`` (a local Gemma-2-2b-it folder; required),
    ``backbone`` (default flux), ``checkpoint_type`` (default the backbone's first in docs/pid.md),
    ``experiment`` / ``config_file`` / ``experiment_opts`` (extra Hydra overrides), ``degrade_sigma`` (0..1,
    default 0), ``steps`` (1..4, default 4), ``cfg_scale`` (1.0), ``shift`` (None = model's), ``dtype`` of the
    encoder input (bfloat16), ``load_ema_to_reg`` (False), ``trust_dcp`` (False: a DCP folder's metadata is a
    pickle, so reading one needs this set), ``allow_empty_caption`` (False: a case without a caption is that
    case's error; True decodes it with the empty caption, which PiD was not trained for).
    """

    family = "pid"
    backend = "upstream"
    track = "upscale"
    inputs = ("latent", "caption")
    stochastic = True
    scale = 4
    max_batch = 1

    def __init__(
        self, name: str | None = None, device: str = "cuda", repo: str | Path | None = None,
        checkpoint: str | Path | None = None, vae_path: str | Path | None = None,
        text_encoder_path: str | Path | None = None, backbone: str = "flux", checkpoint_type: str | None = None,
        experiment: str | None = None, config_file: str | Path | None = None,
        experiment_opts: list[str] | tuple[str, ...] = (), degrade_sigma: float = 0.0, steps: int = 4,
        cfg_scale: float = 1.0, shift: float | None = None, dtype: str = "bfloat16", load_ema_to_reg: bool = False,
        trust_dcp: bool = False, allow_empty_caption: bool = False, **settings: object,
    ) -> None:
        label = name or "pid"
        if settings:
            raise DecoderError(
                f"decoder {label!r}: unknown setting(s) {', '.join(sorted(settings))}",
                "the upstream pid takes repo, checkpoint, vae_path, text_encoder_path, backbone, checkpoint_type, "
                "experiment, config_file, experiment_opts, degrade_sigma, steps, cfg_scale, shift, dtype, "
                "load_ema_to_reg, trust_dcp, allow_empty_caption",
            )
        check_sigma(label, degrade_sigma, steps)
        if int(steps) > env.SCHEDULE_STEPS:
            raise DecoderError(f"decoder {label!r}: steps = {steps}, but PiD's distilled schedule has "
                               f"{env.SCHEDULE_STEPS} steps (more would repeat timesteps)", "use steps = 1..4")
        if backbone not in env.CHECKPOINT_TYPES:
            raise DecoderError(f"decoder {label!r}: unknown backbone {backbone!r}",
                               f"one of {', '.join(env.CHECKPOINT_TYPES)}")
        types = env.CHECKPOINT_TYPES[backbone]
        checkpoint_type = checkpoint_type or types[0]
        if checkpoint_type not in types:
            raise DecoderError(f"decoder {label!r}: backbone {backbone!r} has no {checkpoint_type!r} checkpoint",
                               f"its checkpoint types: {', '.join(types)} (docs/pid.md)")
        if vae_path is not None and backbone not in env.DEFAULT_VAE:
            raise DecoderError(f"decoder {label!r}: backbone {backbone!r} reads its RAE files from the checkout's "
                               "checkpoints/ folder; vae_path applies to the VAE backbones only")
        torch_dtype = parse_dtype(dtype, label)
        super().__init__(
            name, device, backend="upstream", repo=str(repo or ""), checkpoint=str(checkpoint or ""),
            vae_path=str(vae_path or ""), text_encoder_path=str(text_encoder_path or ""), backbone=backbone,
            checkpoint_type=checkpoint_type, degrade_sigma=float(degrade_sigma), steps=int(steps),
            allow_empty_caption=bool(allow_empty_caption), cfg_scale=float(cfg_scale),
            shift=None if shift is None else float(shift), dtype=str(torch_dtype).removeprefix("torch."),
            experiment=str(experiment or ""), config_file=str(config_file or ""),
            experiment_opts=[str(o) for o in experiment_opts], load_ema_to_reg=bool(load_ema_to_reg),
        )
        if self.device.type != "cuda":
            self.device = torch.device("cuda")
        self.repo = Path(repo).expanduser().resolve() if repo else env.installed_checkout()
        self.checkpoint = Path(checkpoint).expanduser() if checkpoint else None
        self.text_encoder = Path(text_encoder_path).expanduser() if text_encoder_path else None
        self.vae_file: Path | None = Path(vae_path).expanduser() if vae_path else None
        if self.vae_file is None and self.repo is not None and backbone in env.DEFAULT_VAE:
            self.vae_file = self.repo / env.DEFAULT_VAE[backbone]
        self.backbone, self.checkpoint_type = backbone, checkpoint_type
        self.experiment, self.config_file = experiment, config_file
        self.experiment_opts = [str(o) for o in experiment_opts]
        self.degrade_sigma, self.steps = float(degrade_sigma), int(steps)
        self.cfg_scale, self.shift = float(cfg_scale), shift
        self.dtype = torch_dtype
        self.load_ema_to_reg, self.trust_dcp = bool(load_ema_to_reg), bool(trust_dcp)
        self.allow_empty_caption = bool(allow_empty_caption)
        self.scale = 8 if backbone == "siglip" else 4
        self._model: Any = None
        self._add_noise: Any = None
        self._sha: str | None = None

    # -- what is missing ------------------------------------------------------------------------------------
    def _missing(self) -> list[str]:
        """Each thing missing here, with its fix."""
        out: list[str] = []
        if self.repo is None:
            out.append(f"no PiD checkout: {PID_INSTALL_HINT}")
        elif not env.is_checkout(self.repo):
            out.append(f"{self.repo}: not a PiD checkout (no {env.CONFIG_FILE}); {PID_INSTALL_HINT}")
        modules = env.missing_modules()
        if modules:
            out.append(f"PiD's dependencies are not importable: {', '.join(modules)} (pip install {' '.join(modules)}; "
                       "the checkout's pyproject.toml lists the rest)")
        if self.checkpoint is None:
            out.append("no checkpoint: set checkpoint = '.../model_ema_bf16.pth' (PiD's docs/checkpoints.md)")
        elif not self.checkpoint.exists():
            out.append(f"{self.checkpoint}: PiD checkpoint not found (PiD's docs/checkpoints.md)")
        if self.backbone in env.DEFAULT_VAE and self.vae_file is not None and not self.vae_file.is_file():
            out.append(f"{self.vae_file}: VAE file not found; set vae_path = '<the {self.backbone} VAE file>'")
        if self.text_encoder is None:
            out.append(f"no local text encoder; {TEXT_ENCODER_HINT}")
        elif not (self.text_encoder / "config.json").is_file():
            out.append(f"{self.text_encoder}: no text encoder there (config.json missing); {TEXT_ENCODER_HINT}")
        cuda = env.cuda_reason()
        if cuda:
            out.append(cuda)
        return out

    def unavailable_reason(self) -> str | None:
        missing = self._missing()
        return "; ".join(missing) if missing else None

    def weights_sha256(self) -> str:
        """sha256 over the checkpoint (file, or a DCP folder's files), the VAE file and the text encoder folder."""
        if self._sha is None:
            parts = [self.checkpoint, self.vae_file, self.text_encoder]
            if any(p is None or not p.exists() for p in parts):
                raise DecoderError(f"decoder {self.name!r}: cannot hash its weights: {self.unavailable_reason()}")
            self._sha = files_sha256([f for p in parts if p is not None for f in _files(p)])
        return self._sha

    # -- loading --------------------------------------------------------------------------------------------
    def _check_files(self) -> tuple[Path, Path, Path]:
        """(checkout, checkpoint, text encoder) after checking every file; DecoderError naming the first bad one."""
        missing = self._missing()
        if missing:
            raise DecoderError(f"decoder {self.name!r} cannot load PiD: {missing[0]}")
        repo, ckpt, te = self.repo, self.checkpoint, self.text_encoder
        assert repo is not None and ckpt is not None and te is not None  # _missing() covers them
        if ckpt.is_dir():
            if not (ckpt / "model" / ".metadata").is_file():
                raise DecoderError(f"{ckpt}: not a DCP checkpoint folder (no model/.metadata)",
                                   "PiD loads a .pth file or a DCP folder")
            if not self.trust_dcp:
                raise DecoderError(f"{ckpt}: a DCP folder's metadata is a pickle, which runs code when read",
                                   "use the consolidated model_ema_bf16.pth, or set trust_dcp = true for a "
                                   "folder from a source you trust")
        elif ckpt.name.endswith(".pth"):
            load_state_dict(ckpt)  # qa's rule: must load with weights_only=True (raises DecoderError naming it)
        else:
            raise DecoderError(f"{ckpt}: PiD loads a .pth file or a DCP folder, not {ckpt.suffix or 'this file'}",
                               "use PiD's model_ema_bf16.pth")
        if self.vae_file is not None and not self.vae_file.name.endswith(".safetensors"):
            load_state_dict(self.vae_file)  # a pickle VAE (Qwen-Image) must be weights-only too
        return repo, ckpt, te

    def _overrides(self, te: Path) -> list[str]:
        opts = [f"model.config.text_encoder_name={env.hydra_string(str(te))}"]
        if self.vae_file is not None and self.backbone in env.DEFAULT_VAE:
            opts.append(f"++model.config.tokenizer.vae_pth={env.hydra_string(str(self.vae_file.resolve()))}")
        return opts + self.experiment_opts

    def _config_file(self, repo: Path) -> str:
        if not self.config_file:
            return env.CONFIG_FILE
        p = Path(self.config_file)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(repo)
            except ValueError as exc:
                raise DecoderError(f"{self.config_file}: PiD's config file must lie inside the checkout {repo}") from exc
        return p.as_posix()

    @property
    def model(self) -> Any:
        """PiD's model, loaded on first use. Every failure is a :class:`DecoderError` naming the checkpoint."""
        if self._model is None:
            repo, ckpt, te = self._check_files()
            try:
                with env.upstream_process(repo):
                    self._model = self._load(repo, ckpt, te)
            except (KeyboardInterrupt, SystemExit):
                raise
            except DecoderError:
                raise
            except BaseException as exc:  # noqa: BLE001 - upstream raises BaseException subclasses (DCP)
                raise DecoderError(f"{ckpt}: PiD could not load it ({type(exc).__name__}: {exc})",
                                   "check the checkpoint, vae_path, text_encoder_path and backbone settings") from exc
        return self._model

    def _load(self, repo: Path, ckpt: Path, te: Path) -> Any:
        from pid._src.inference.checkpoint_registry import get_pid_checkpoint
        from pid._src.inference.decoder import add_noise
        from pid._src.models import pixeldit_model
        from pid._src.utils.model_loader import load_model_from_checkpoint

        entry = get_pid_checkpoint(self.backbone, self.checkpoint_type)
        self.scale = int(entry.pid_scale)
        self._add_noise = add_noise
        # PiD accepts only names of its own table: register the local folder under its path while loading
        names = pixeldit_model._TEXT_ENCODER_DICT
        names[str(te)] = str(te.resolve())
        try:
            model, _ = load_model_from_checkpoint(
                experiment_name=self.experiment or entry.experiment, checkpoint_path=str(ckpt.resolve()),
                config_file=self._config_file(repo), enable_fsdp=False, experiment_opts=self._overrides(te),
                strict=False, load_ema_to_reg=self.load_ema_to_reg,
            )
        finally:
            names.pop(str(te), None)
        what = f"PiD's {self.backbone}/{self.checkpoint_type} net"
        if ckpt.name.endswith(".pth"):  # PiD loaded it with strict=False: refuse what does not fit (fail closed)
            check_fits(ckpt, checkpoint_keys(ckpt), model.net.state_dict().keys(), what)
        else:  # a DCP folder, loaded with allow_partial_load=True
            check_dcp_fits(ckpt, dcp_keys(ckpt / "model"), model.net.state_dict().keys(),
                           "net_ema." if self.load_ema_to_reg else "net.", what)
        t_list = getattr(model.config, "student_t_list", None)
        if t_list is not None and self.steps > len(t_list) - 1:
            raise DecoderError(f"decoder {self.name!r}: steps = {self.steps}, but {ckpt}'s schedule has "
                               f"{len(t_list) - 1} steps")
        return model.eval()

    # -- decoding -------------------------------------------------------------------------------------------
    def _vae_sha(self) -> str:
        return files_sha256([self.vae_file]) if self.vae_file is not None and self.vae_file.is_file() else ""

    @torch.no_grad()
    def _encode(self, x01: torch.Tensor) -> torch.Tensor:
        x = (x01 * 2 - 1).to(self.device, self.dtype)
        return self.model.encode_lq_latent(x).float().to(x01.device)

    @property
    def encoder(self) -> Encoder:
        """Area downsampling by ``scale`` then PiD's VAE encoder (the model loads on the first ``encode``)."""
        compression = env.COMPRESSION[self.backbone]
        return ChainEncoder(self.scale, self._encode, compression, f"{self.name}-encoder", self._vae_sha)

    def _size(self, z: torch.Tensor) -> tuple[int, int]:
        if self.backbone in env.FIXED_2048:
            return (2048, 2048)
        f = env.COMPRESSION[self.backbone] * self.scale
        return (z.shape[-2] * f, z.shape[-1] * f)

    def _captions(self, batch: DecodeBatch, n: int) -> list[str]:
        """Each case's caption; DecoderError naming the first case without one unless ``allow_empty_caption``."""
        captions = [batch.captions[i] if i < len(batch.captions) else "" for i in range(n)]
        empty = [batch.case_ids[i] if i < len(batch.case_ids) else str(i) for i, c in enumerate(captions)
                 if not c.strip()]
        if empty and not self.allow_empty_caption:
            raise DecoderError(
                f"decoder {self.name!r}: case {empty[0]!r} has no caption, and PiD is caption-conditioned (trained "
                "with captions; its own demo refuses a sample without one)",
                "give every image a caption in the reference set's manifest.csv (the 'caption' column; qa refset "
                f"build FOLDER --captions FILE), or set allow_empty_caption = true for decoder {self.name!r} to "
                "decode it unconditioned",
            )
        return captions

    @torch.no_grad()
    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        z = require_latents(batch, self.name)
        captions = self._captions(batch, len(z))  # before loading: a missing caption needs no model to tell
        model = self.model
        size = self._size(z)
        outs = []
        for i in range(len(z)):
            g = torch.Generator(device=self.device).manual_seed(int(seed))
            lat = self._add_noise(z[i : i + 1].to(self.device).float(), self.degrade_sigma, g, self.backbone)
            data_batch = {
                model.config.input_caption_key: [captions[i]],
                "LQ_latent": lat.to(self.dtype),
                "degrade_sigma": torch.tensor([self.degrade_sigma], device=self.device, dtype=torch.float32),
            }
            out = model.generate_samples_from_batch(
                data_batch, cfg_scale=self.cfg_scale, num_steps=self.steps, seed=int(seed), shift=self.shift,
                image_size=size,
            ).float()
            if out.ndim == 5:  # (N, 3, T=1, H, W)
                out = out[:, :, 0]
            outs.append(((out.clamp(-1, 1) + 1) / 2).to(z.device))
        return finish(torch.cat(outs), batch, self.name)

    @torch.no_grad()
    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """PiD's own VAE decode of the clean latents, upsampled bicubically to the decode size, in [0, 1]."""
        z = require_latents(batch, self.name)
        y = self.model.vae_encoder.decode(z.to(self.device, self.dtype).unsqueeze(2))
        y = y[:, :, 0] if y.ndim == 5 else y
        up = F.interpolate((y.float().clamp(-1, 1) + 1) / 2, size=self._size(z), mode="bicubic", align_corners=False)
        return up.clamp(0, 1).to(z.device)
