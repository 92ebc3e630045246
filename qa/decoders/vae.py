"""The ``vae`` family: diffusers autoencoders loaded from a local folder (``save_pretrained`` layout).

Backends: ``embedded`` (default: the zoo VAE shipped in ``qa/zoo/weights/vae``) and ``diffusers`` (any folder
given as ``path``). Supported classes, read from ``config.json``'s ``_class_name``: AutoencoderKL (SD 1.x/2.x,
SDXL, FLUX.1, SD3), AutoencoderTiny (TAESD), AutoencoderDC (DC-AE) and AutoencoderKLFlux2 where the installed
diffusers has it. Weights load only from ``*.safetensors`` with ``local_files_only=True``: nothing is downloaded.

Latent convention: the :class:`VAEEncoder` returns the *raw* latent that ``vae.decode`` consumes
(``latent_dist.mean`` for KL models, ``.latents`` for TAESD, ``.latent`` for DC-AE), before the diffusion
model's scaling, so ``decode(encode(x))`` is the autoencoder's own reconstruction whatever the config says.
Latents of a diffusion model (``(raw - shift_factor) * scaling_factor``, or Flux2's patchify + BatchNorm
normalisation) convert with :meth:`VAEDecoder.from_model_latents` / :meth:`VAEDecoder.to_model_latents`, which
read ``scaling_factor`` and ``shift_factor`` from the folder's config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from qa.decoders._common import finish, parse_dtype, require_latents
from qa.decoders.base import DecodeBatch, Decoder, Encoder
from qa.decoders.weights import SAFETENSORS_SUFFIXES, folder_weights_sha256, non_float_error, weight_files
from qa.errors import DecoderError, WeightsMissingError
from qa.zoo.models import ZOO_VAE_DIR

#: diffusers classes this family drives.
SUPPORTED_CLASSES: tuple[str, ...] = ("AutoencoderKL", "AutoencoderTiny", "AutoencoderDC", "AutoencoderKLFlux2")


def zoo_vae_dir() -> Path:
    """Folder of the embedded zoo VAE (:data:`qa.zoo.models.ZOO_VAE_DIR`)."""
    return Path(ZOO_VAE_DIR)


def read_vae_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a diffusers model folder, checked for a supported ``_class_name``."""
    cfg_path = folder / "config.json"
    if not folder.is_dir():
        raise WeightsMissingError(f"{folder}: VAE folder not found", "set `path` to a diffusers save_pretrained folder")
    if not cfg_path.is_file():
        raise WeightsMissingError(f"{cfg_path}: not found", "a diffusers model folder holds config.json")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecoderError(f"{cfg_path}: not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict):
        raise DecoderError(f"{cfg_path}: expected a JSON object")
    cls_name = cfg.get("_class_name")
    if cls_name not in SUPPORTED_CLASSES:
        raise DecoderError(
            f"{cfg_path}: _class_name {cls_name!r} is not a supported VAE",
            f"supported: {', '.join(SUPPORTED_CLASSES)}",
        )
    return cfg


def _diffusers_class(cls_name: str, where: Path) -> Any:
    import diffusers

    cls = getattr(diffusers, cls_name, None)
    if cls is None:
        raise DecoderError(
            f"{where}: the installed diffusers {diffusers.__version__} has no {cls_name}",
            "upgrade diffusers (pip install -U diffusers)",
        )
    return cls


def spatial_factor(cfg: dict[str, Any]) -> int:
    """Pixels per latent cell along each side, from the config."""
    cls_name = cfg["_class_name"]
    if cls_name in ("AutoencoderTiny", "AutoencoderDC"):
        channels = cfg.get("encoder_block_out_channels")
    else:
        channels = cfg.get("block_out_channels")
    if not channels:
        raise DecoderError(f"config of {cls_name} lacks its block_out_channels")
    return 2 ** (len(channels) - 1)


def load_diffusers_vae(folder: Path, device: torch.device, dtype: torch.dtype = torch.float32) -> Any:
    """Load the autoencoder in ``folder`` (safetensors only, no download) in eval mode on ``device``."""
    cfg = read_vae_config(folder)
    cls = _diffusers_class(cfg["_class_name"], folder)
    if not weight_files(folder, SAFETENSORS_SUFFIXES):
        others = [p.name for p in weight_files(folder)]
        raise WeightsMissingError(
            f"{folder}: no .safetensors weights" + (f" (found {', '.join(others)})" if others else ""),
            "qa loads only safetensors; convert with model.save_pretrained(folder, safe_serialization=True)",
        )
    check_float_weights(folder)
    try:
        model, info = cls.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, output_loading_info=True, torch_dtype=dtype
        )
    except Exception as exc:  # noqa: BLE001 - diffusers raises many kinds for bad files
        files = ", ".join(p.name for p in weight_files(folder, SAFETENSORS_SUFFIXES))
        raise DecoderError(
            f"{folder} ({files}): cannot load {cfg['_class_name']}: {type(exc).__name__}: {str(exc)[:300]}",
            "the weights are corrupt, truncated, or do not match config.json",
        ) from exc
    bad = {k: info.get(k) for k in ("missing_keys", "mismatched_keys", "unexpected_keys") if info.get(k)}
    if bad:
        summary = "; ".join(f"{k}: {list(v)[:3]}" for k, v in bad.items())
        raise DecoderError(f"{folder}: weights do not fit config.json ({summary})")
    return model.to(device).eval().requires_grad_(False)


#: the one integer tensor a floating-point torch model saves: BatchNorm's update counter (Flux2's ``bn``)
INTEGER_BUFFERS: tuple[str, ...] = ("num_batches_tracked",)


def check_float_weights(folder: Path) -> None:
    """:class:`DecoderError` naming the tensors and their dtype when a ``.safetensors`` file of ``folder`` holds a
    tensor that is not floating point (int8, uint8, bool, ...) other than an :data:`INTEGER_BUFFERS` counter:
    loading would cast it to float without a word (or fail obscurely when dtypes are mixed), and the model
    would compute something else. Reads the files' headers only; a file whose header cannot be read is left to
    the loader, which refuses it with its own error."""
    from safetensors import safe_open

    bad: list[str] = []
    for file in weight_files(folder, SAFETENSORS_SUFFIXES):
        try:
            with safe_open(str(file), framework="pt") as f:
                found = {k: f.get_slice(k).get_dtype() for k in f.keys()}
        except Exception:  # noqa: BLE001 - a corrupt file: the loader names the problem
            continue
        bad += [f"{file.name}:{k} {dtype}" for k, dtype in sorted(found.items())
                if not dtype.startswith(("F", "BF")) and k.rsplit(".", 1)[-1] not in INTEGER_BUFFERS]
    if bad:
        raise non_float_error(folder, bad)


class VAEEncoder(Encoder):
    """Pixels (N, 3, H, W) in [0, 1] -> raw latents (N, C, H/f, W/f) of the decoder's autoencoder (deterministic:
    the posterior mean for KL models)."""

    def __init__(self, decoder: VAEDecoder) -> None:
        self._decoder = decoder
        self.factor = decoder.factor
        self.name = f"{decoder.name}-encoder"

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._decoder.encode_pixels(images)

    def sha256(self) -> str:
        return self._decoder.weights_sha256()


class VAEDecoder(Decoder):
    """A diffusers autoencoder's decoder: raw latents (N, C, h, w) -> pixels (N, 3, f*h, f*w) in [0, 1].

    Settings: ``path`` (folder; default the zoo VAE), ``backend`` (``embedded`` | ``diffusers``, implied by
    ``path``), ``dtype`` (``float32`` default; ``bfloat16``/``float16`` on GPUs).
    """

    family = "vae"
    track = "decode"
    inputs = ("latent",)
    stochastic = False
    scale = 1
    max_batch = 4

    def __init__(
        self,
        name: str | None = None,
        device: str = "cpu",
        path: str | Path | None = None,
        backend: str | None = None,
        dtype: str = "float32",
        **settings: object,
    ) -> None:
        if settings:
            raise DecoderError(
                f"decoder {name or 'vae'!r}: unknown setting(s) {', '.join(sorted(settings))}",
                "the vae family takes path, backend, dtype",
            )
        if backend not in (None, "embedded", "diffusers"):
            raise DecoderError(f"decoder {name or 'vae'!r}: backend must be 'embedded' or 'diffusers', got {backend!r}")
        if backend == "diffusers" and path is None:
            raise DecoderError(f"decoder {name or 'vae'!r}: backend 'diffusers' needs `path` (a local folder)")
        self.backend = backend or ("embedded" if path is None else "diffusers")
        folder = Path(path).expanduser() if path is not None else zoo_vae_dir()
        super().__init__(name, device, backend=self.backend, path=str(folder), dtype=dtype)
        self.folder = folder
        self.dtype = parse_dtype(dtype, self.name)
        self._model: Any = None
        self._cfg: dict[str, Any] | None = None
        self._sha: str | None = None

    # -- lazy loading -------------------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The folder's ``config.json`` (read once)."""
        if self._cfg is None:
            self._cfg = read_vae_config(self.folder)
        return self._cfg

    @property
    def model(self) -> Any:
        """The loaded diffusers model (loaded on first use)."""
        if self._model is None:
            if self.backend == "embedded":
                self._model = self._load_zoo()
            else:
                self._model = load_diffusers_vae(self.folder, self.device, self.dtype)
        return self._model

    def _load_zoo(self) -> Any:
        """The zoo VAE through the zoo's own loader (``qa.zoo.models.load_zoo_vae``)."""
        reason = self.unavailable_reason()
        if reason:
            raise WeightsMissingError(reason, "the zoo VAE is trained by training.zoo.train_vae")
        from qa.zoo import models as zoo

        check_float_weights(self.folder)
        try:
            vae = zoo.load_zoo_vae(self.device, path=self.folder)
        except zoo.ZooWeightsError as exc:
            raise DecoderError(str(exc), "re-create the zoo weights (see the model card)") from exc
        return vae.to(self.dtype)

    @property
    def class_name(self) -> str:
        return str(self.config["_class_name"])

    @property
    def factor(self) -> int:
        """Pixels per latent cell along each side."""
        return spatial_factor(self.config)

    @property
    def latent_channels(self) -> int:
        return int(self.config.get("latent_channels", 4))

    def unavailable_reason(self) -> str | None:
        try:
            read_vae_config(self.folder)
            _diffusers_class(self.class_name, self.folder)
        except (DecoderError, WeightsMissingError) as exc:
            return str(exc)
        if not weight_files(self.folder, SAFETENSORS_SUFFIXES):
            return f"{self.folder}: no .safetensors weights"
        return None

    def weights_sha256(self) -> str:
        if self._sha is None:
            self._sha = folder_weights_sha256(self.folder, SAFETENSORS_SUFFIXES)
        return self._sha

    # -- encode / decode ----------------------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        return VAEEncoder(self)

    @torch.no_grad()
    def encode_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1], H and W multiples of :attr:`factor` -> raw latents (float32, input's device)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise DecoderError(f"encoder of {self.name!r}: images must be (N, 3, H, W), got {tuple(images.shape)}")
        f = self.factor
        if images.shape[-2] % f or images.shape[-1] % f:
            raise DecoderError(
                f"encoder of {self.name!r}: image size {tuple(images.shape[-2:])} is not a multiple of {f}",
                f"crop references to multiples of {f}",
            )
        x = (images.to(self.device, self.dtype) * 2.0 - 1.0).contiguous()
        out = self.model.encode(x)
        if self.class_name == "AutoencoderTiny":
            z = out.latents
        elif self.class_name == "AutoencoderDC":
            z = out.latent
        else:
            z = out.latent_dist.mean
        return z.float().to(images.device)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents (N, C, h, w) -> pixels (N, 3, f*h, f*w) in [0, 1], float32 on the latents' device."""
        y = self.model.decode(latents.to(self.device, self.dtype)).sample
        return ((y.float() + 1.0) / 2.0).clamp(0.0, 1.0).to(latents.device)

    def decode(self, batch: DecodeBatch, seed: int) -> torch.Tensor:
        z = require_latents(batch, self.name, self.latent_channels)
        return finish(self.decode_latents(z), batch, self.name)

    def baseline(self, batch: DecodeBatch, seed: int | None = None) -> torch.Tensor | None:
        """A VAE decode is itself the plain decode of its latent: the baseline of the invented-detail split
        (``invented_consistent`` / ``invented_contradicting``) and of ``hf_energy_ratio_baseline`` (= 1)."""
        return self.decode(batch, 0)

    # -- diffusion-model latent space ---------------------------------------------------------------------------
    def latent_scaling(self) -> tuple[float, float]:
        """(scaling_factor, shift_factor) from the config (1.0 and 0.0 when absent). Flux2 normalises with its
        BatchNorm statistics instead (see :meth:`to_model_latents`)."""
        scale = self.config.get("scaling_factor")
        shift = self.config.get("shift_factor")
        return float(1.0 if scale is None else scale), float(0.0 if shift is None else shift)

    @torch.no_grad()
    def to_model_latents(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw latents -> the diffusion model's latents: ``(raw - shift) * scale``; for Flux2, 2x2 patchify then
        ``(z - bn.running_mean) / sqrt(bn.running_var + eps)``."""
        if self.class_name == "AutoencoderKLFlux2":
            mean, std = self._bn_stats(raw)
            n, c, h, w = raw.shape
            z = raw.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)
            return (z - mean) / std
        scale, shift = self.latent_scaling()
        return (raw - shift) * scale

    @torch.no_grad()
    def from_model_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_model_latents`: a diffusion model's latents -> raw latents for :meth:`decode`."""
        if self.class_name == "AutoencoderKLFlux2":
            mean, std = self._bn_stats(z)
            z = z * std + mean
            n, c4, h, w = z.shape
            return z.reshape(n, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c4 // 4, h * 2, w * 2)
        scale, shift = self.latent_scaling()
        return z / scale + shift

    def _bn_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bn = self.model.bn
        eps = float(self.config.get("batch_norm_eps", bn.eps))
        mean = bn.running_mean.view(1, -1, 1, 1).to(like.device, torch.float32)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1).to(like.device, torch.float32) + eps)
        return mean, std
